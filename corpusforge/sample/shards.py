"""Megatron-LM MMIDIDX shards: `<prefix>.bin` (token ids back to back) + `<prefix>.idx`.

Layout of `.idx` (little endian), as read by Megatron-LM's `IndexedDataset`:
  magic b"MMIDIDX\\x00\\x00" | version u64 (=1) | dtype code u8 | sequence count u64 |
  document count u64 | sizes i32[seq] | pointers i64[seq] (byte offsets into .bin) |
  document indices i64[doc] (= 0..seq, so doc = seq + 1)
A shard directory holds the pairs, `tokenizer.json` and `shards.json` (per-file sha256, counts,
the resolved mix). `verify()` checks all of it without trusting any one file (RELIABILITY #41/#42).
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from typing import Iterable

import numpy as np

from corpusforge.errors import CorpusforgeError
from corpusforge.io.writers import atomic_file
from corpusforge.rules_files import sha256_file

MAGIC = b"MMIDIDX\x00\x00"
VERSION = 1
FORMAT = "corpusforge-shards/1"
MANIFEST = "shards.json"
TOKENIZER = "tokenizer.json"
# Megatron-LM DType codes (megatron/core/datasets/indexed_dataset.py).
DTYPE_CODES = {np.dtype(np.uint8): 1, np.dtype(np.int8): 2, np.dtype(np.int16): 3, np.dtype(np.int32): 4,
               np.dtype(np.int64): 5, np.dtype(np.float64): 6, np.dtype(np.float32): 7, np.dtype(np.uint16): 8}
CODE_DTYPES = {v: k for k, v in DTYPE_CODES.items()}
_HEADER = struct.Struct("<9sQBQQ")


def token_dtype(vocab_size: int) -> np.dtype:
    """Megatron's DType.optimal_dtype: uint16 below 65500 ids, else int32."""
    return np.dtype(np.uint16) if vocab_size < 65500 else np.dtype(np.int32)


class _HashingWriter:
    """Writes through to a file while hashing, so the sha256 costs no second read."""

    def __init__(self, f):
        self.f, self.h, self.n = f, hashlib.sha256(), 0

    def write(self, b) -> None:
        mv = memoryview(b).cast("B")
        self.f.write(mv)
        self.h.update(mv)
        self.n += mv.nbytes


def write_shard(prefix: str, docs: Iterable[np.ndarray], vocab_size: int) -> dict:
    """Write `<prefix>.bin/.idx` atomically (temp + fsync + rename); return their names, counts, hashes.

    Every id is checked against [0, vocab_size) before anything is committed (RELIABILITY #41)."""
    dtype = token_dtype(vocab_size)
    sizes: list[int] = []
    bin_final, idx_final = prefix + ".bin", prefix + ".idx"
    with atomic_file(bin_final) as f:
        w = _HashingWriter(f)
        for d in docs:
            d = np.asarray(d)
            if d.size and (int(d.min()) < 0 or int(d.max()) >= vocab_size):
                raise CorpusforgeError("token_out_of_range", f"{bin_final}: token id outside [0, {vocab_size}) "
                                       f"in document {len(sizes)} (min {int(d.min())}, max {int(d.max())})")
            w.write(np.ascontiguousarray(d, dtype=dtype))
            sizes.append(int(d.size))
        bin_sha = w.h.hexdigest()
    sz = np.asarray(sizes, dtype=np.int32)
    pointers = np.zeros(len(sz), dtype=np.int64)
    if len(sz) > 1:
        np.cumsum(sz[:-1].astype(np.int64) * dtype.itemsize, out=pointers[1:])
    doc_idx = np.arange(len(sz) + 1, dtype=np.int64)
    with atomic_file(idx_final) as f:
        w = _HashingWriter(f)
        w.write(_HEADER.pack(MAGIC, VERSION, DTYPE_CODES[dtype], len(sz), len(doc_idx)))
        w.write(sz)
        w.write(pointers)
        w.write(doc_idx)
        idx_sha = w.h.hexdigest()
    return {"bin": os.path.basename(bin_final), "idx": os.path.basename(idx_final), "docs": len(sz),
            "tokens": int(sz.sum(dtype=np.int64)), "sha256_bin": bin_sha, "sha256_idx": idx_sha}


def _read_index(idx_path: str) -> tuple[np.dtype, np.ndarray, np.ndarray, np.ndarray]:
    """Parse and check one .idx in isolation; CorpusforgeError('bad_shard') names the file."""

    def bad(msg: str):
        return CorpusforgeError("bad_shard", f"{idx_path}: {msg}")

    with open(idx_path, "rb") as f:
        raw = f.read()
    if len(raw) < _HEADER.size:
        raise bad(f"{len(raw)} bytes, shorter than the {_HEADER.size}-byte header")
    magic, version, code, seq, ndoc = _HEADER.unpack_from(raw)
    if magic != MAGIC:
        raise bad(f"bad magic {magic!r}")
    if version != VERSION:
        raise bad(f"unsupported version {version}")
    if code not in CODE_DTYPES or CODE_DTYPES[code].kind not in "iu":
        raise bad(f"bad dtype code {code}")
    want = _HEADER.size + seq * 4 + seq * 8 + ndoc * 8
    if len(raw) != want:
        raise bad(f"{len(raw)} bytes, header (sequences={seq}, documents={ndoc}) implies {want}")
    o = _HEADER.size
    sizes = np.frombuffer(raw, np.int32, seq, o)
    pointers = np.frombuffer(raw, np.int64, seq, o + 4 * seq)
    doc_idx = np.frombuffer(raw, np.int64, ndoc, o + 12 * seq)
    dtype = CODE_DTYPES[code]
    if seq and int(sizes.min()) < 0:
        raise bad(f"negative size at sequence {int(np.argmax(sizes < 0))}")
    expect = np.zeros(seq, dtype=np.int64)
    if seq > 1:
        np.cumsum(sizes[:-1].astype(np.int64) * dtype.itemsize, out=expect[1:])
    if seq and not np.array_equal(pointers, expect):
        raise bad(f"pointer of sequence {int(np.argmax(pointers != expect))} is not the sum of the sizes before it")
    if ndoc == 0 or doc_idx[0] != 0 or doc_idx[-1] != seq or (ndoc > 1 and bool(np.any(np.diff(doc_idx) <= 0))):
        raise bad("document indices are not strictly increasing from 0 to the sequence count")
    return dtype, sizes, pointers, doc_idx


class IndexedShard:
    """Read-only view of one shard; documents are zero-copy slices of a memmap over the .bin."""

    def __init__(self, prefix: str):
        self.prefix = prefix
        self.dtype, self.sizes, self.pointers, self.doc_idx = _read_index(prefix + ".idx")
        total = int(self.sizes.sum(dtype=np.int64))
        nbytes = os.path.getsize(prefix + ".bin")
        if nbytes != total * self.dtype.itemsize:
            raise CorpusforgeError("bad_shard", f"{prefix}.bin: {nbytes} bytes, index says "
                                   f"{total} tokens x {self.dtype.itemsize} = {total * self.dtype.itemsize}")
        self.offsets = self.pointers // self.dtype.itemsize
        # np.memmap cannot map an empty file.
        self.tokens = (np.memmap(prefix + ".bin", dtype=self.dtype, mode="r") if total
                       else np.zeros(0, dtype=self.dtype))

    def __len__(self) -> int:
        return len(self.sizes)

    def __getitem__(self, i: int) -> np.ndarray:
        if not -len(self) <= i < len(self):
            raise IndexError(i)
        o = int(self.offsets[i])
        return self.tokens[o:o + int(self.sizes[i])]


def load_manifest(d: str) -> dict:
    p = os.path.join(d, MANIFEST)
    try:
        with open(p, encoding="utf-8") as f:
            m = json.load(f)
    except FileNotFoundError:
        raise CorpusforgeError("bad_shard", f"{p}: missing (not a shard directory)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CorpusforgeError("bad_shard", f"{p}: not valid JSON ({e})") from None
    if not isinstance(m, dict) or m.get("format") != FORMAT:
        raise CorpusforgeError("bad_shard", f"{p}: format is not {FORMAT!r}")
    return m


def _prefix(d: str, entry: dict) -> str:
    return os.path.join(d, entry["bin"][: -len(".bin")])


def open_shards(d: str) -> list[IndexedShard]:
    """Every shard of a directory, in shards.json order."""
    return [IndexedShard(_prefix(d, e)) for e in load_manifest(d)["shards"]]


def verify(d: str) -> list[str]:
    """All problems of a shard directory, each naming the broken file; [] when it is intact."""
    try:
        m = load_manifest(d)
    except CorpusforgeError as e:
        return [str(e).partition(": ")[2]]
    problems: list[str] = []
    tok = m.get("tokenizer") or {}
    tok_path = os.path.join(d, tok.get("path", TOKENIZER))
    vocab = tok.get("vocab_size")
    if not os.path.isfile(tok_path):
        problems.append(f"{tok_path}: missing")
    elif sha256_file(tok_path) != tok.get("sha256"):
        problems.append(f"{tok_path}: sha256 differs from {MANIFEST}")
    seen = set()
    for i, e in enumerate(m.get("shards", [])):
        try:
            names = (e["bin"], e["idx"])
        except (KeyError, TypeError):
            problems.append(f"{os.path.join(d, MANIFEST)}: shard entry {i} lacks bin/idx")
            continue
        if any(n in seen or os.path.basename(n) != n or not n.endswith(ext) for n, ext in zip(names, (".bin", ".idx"))):
            problems.append(f"{os.path.join(d, MANIFEST)}: shard entry {i} has an unsafe or repeated name {names}")
            continue
        seen.update(names)
        bin_p, idx_p = (os.path.join(d, n) for n in names)
        missing = [p for p in (bin_p, idx_p) if not os.path.isfile(p)]
        if missing:
            problems.extend(f"{p}: missing" for p in missing)
            continue
        # Hashes first: a swapped or edited file is caught even when it parses.
        bad_hash = False
        for p, key in ((idx_p, "sha256_idx"), (bin_p, "sha256_bin")):
            if sha256_file(p) != e.get(key):
                problems.append(f"{p}: sha256 differs from {MANIFEST}")
                bad_hash = True
        try:
            s = IndexedShard(_prefix(d, e))
        except CorpusforgeError as err:
            problems.append(str(err).partition(": ")[2])
            continue
        if len(s) != e.get("docs") or int(s.sizes.sum(dtype=np.int64)) != e.get("tokens"):
            problems.append(f"{idx_p}: {len(s)} docs / {int(s.sizes.sum())} tokens, {MANIFEST} says "
                            f"{e.get('docs')} / {e.get('tokens')}")
        if vocab is not None and s.dtype != token_dtype(vocab):
            problems.append(f"{idx_p}: dtype {s.dtype} does not fit vocab_size {vocab}")
        elif vocab is not None and not bad_hash and len(s.tokens) and int(s.tokens.max()) >= vocab:
            problems.append(f"{bin_p}: token id {int(s.tokens.max())} >= vocab_size {vocab}")
    # a pair that no entry lists would be trained on by a loader that globs the folder
    problems.extend(f"{os.path.join(d, n)}: not listed in {MANIFEST}" for n in sorted(os.listdir(d))
                    if n.endswith((".bin", ".idx")) and n not in seen and os.path.isfile(os.path.join(d, n)))
    return problems


def summary(d: str) -> str:
    """The line printed for a shard directory that verifies clean."""
    m = load_manifest(d)
    return (f"shards ok: {len(m['shards'])} shard(s), {sum(e['docs'] for e in m['shards'])} documents, "
            f"{sum(e['tokens'] for e in m['shards'])} tokens; headers, offsets, sizes and sha256 match {d}/shards.json")
