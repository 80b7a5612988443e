"""`corpusforge sample`: mixture → tokenized, shuffled Megatron shards, reproducibly, in bounded memory.

1. Tokenize every source once (the `tokenize` MapStage, one task per input part, in a process pool);
   ids, token counts and tokens are spilled to DIR/_work/tok/ in task order. Round-trip failures and
   unreadable records are quarantined (DIR/quarantine.parquet, shards.json "quarantined").
2. Plan: per source, target tokens from the mixture. Each source is up-sampled by whole repeats
   (floor(target / available)) plus a remainder, and down-sampled by the same remainder rule:
   documents in the order of blake2b(seed, source, id) are taken while they fit in the remaining
   tokens (a document that would overshoot is skipped, later smaller ones may still fit), so the
   draw lands within about one small document of the target. Selection depends only on (seed, id).
3. Shuffle: each drawn (document, repeat) gets a 64-bit blake2b key; copies are appended to 2^k
   bucket files by the key's top bits (buckets sized to a quarter of the buffer memory), then each bucket
   is sorted in memory and streamed into shards, so the global order is "sorted by key".
Nothing depends on worker count, batch sizes or process: --workers 1 and 2 write the same bytes."""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from corpusforge.errors import CorpusforgeError
from corpusforge.io import overlap, staging
from corpusforge.io.writers import ParquetSink, atomic_file, write_json
from corpusforge.rules_files import sha256_file
from corpusforge.sample import shards as S
from corpusforge.sample.docs import tasks_for
from corpusforge.sample.mix import Mixture, targets
from corpusforge.sample.spill import tokenize_all
from corpusforge.sample.tokenizer import write_hf_files
from corpusforge.stages.tokenize import TOKENS, TokenizeParams
from corpusforge.schema import QUARANTINE_SCHEMA

WORK = "_work"
QUARANTINE = "quarantine.parquet"
_REC = np.dtype([("key", "<u8"), ("n", "<u4")])


def _key(seed: int, *parts: str | int) -> int:
    h = hashlib.blake2b(digest_size=8, person=b"cf-sample")
    h.update(str(seed).encode())
    for p in parts:
        h.update(b"\x1f" + str(p).encode("utf-8", "surrogatepass"))
    return int.from_bytes(h.digest(), "big")


# ------------------------------------------------------------------ 1. tokenize: corpusforge/sample/spill.py


# ------------------------------------------------------------------ 2. plan


def select(keys: np.ndarray, sizes: np.ndarray, target: int) -> np.ndarray:
    """Copies per document so that they sum to about `target` tokens: whole repeats, then a
    remainder filled in key order with the documents that still fit."""
    avail = int(sizes.sum(dtype=np.int64))
    full, rem = divmod(target, avail)
    reps = np.full(len(sizes), full, np.uint32)
    if rem:
        order = np.argsort(keys, kind="stable")
        cum = np.cumsum(sizes[order].astype(np.int64))
        k = int(np.searchsorted(cum, rem, side="right"))  # the prefix that fits
        reps[order[:k]] += 1
        gap = rem - (int(cum[k - 1]) if k else 0)
        for i in order[k:]:
            if gap <= 0:
                break
            if sizes[i] <= gap:
                reps[i] += 1
                gap -= int(sizes[i])
    return reps


def _read_cols(spills: list[str], cols: list[str]):
    for p in spills:
        if os.path.getsize(p):
            pf = pq.ParquetFile(p)
            for b in pf.iter_batches(batch_size=256, columns=cols):
                yield b


# ------------------------------------------------------------------ 3. shuffle + write


class _Buckets:
    """Append-only bucket files of (key, n) records and their tokens; buffers flushed past a byte cap."""

    def __init__(self, d: str, nbits: int, dtype: np.dtype, cap: int):
        self.d, self.nbits, self.dtype, self.cap = d, nbits, dtype, cap
        os.makedirs(d, exist_ok=True)
        self.buf: dict[int, tuple[list, list]] = {}
        self.buffered = 0

    def path(self, b: int, ext: str) -> str:
        return os.path.join(self.d, f"b{b:05d}.{ext}")

    def add(self, key: int, toks: np.ndarray) -> None:
        b = key >> (64 - self.nbits) if self.nbits else 0
        recs, arrs = self.buf.setdefault(b, ([], []))
        recs.append((key, len(toks)))
        arrs.append(toks)
        self.buffered += toks.nbytes + _REC.itemsize
        if self.buffered >= self.cap:
            self.flush()

    def flush(self) -> None:
        for b, (recs, arrs) in sorted(self.buf.items()):
            with open(self.path(b, "keys"), "ab") as f:
                f.write(np.array(recs, _REC).tobytes())
            with open(self.path(b, "tok"), "ab") as f:
                f.write(np.concatenate(arrs).astype(self.dtype, copy=False).tobytes())
        self.buf.clear()
        self.buffered = 0

    def sorted_docs(self):
        """Every document, in global key order: bucket by bucket, each sorted in memory."""
        for b in range(1 << self.nbits):
            if not os.path.exists(self.path(b, "keys")):
                continue
            recs = np.fromfile(self.path(b, "keys"), _REC)
            toks = np.fromfile(self.path(b, "tok"), self.dtype)
            starts = np.zeros(len(recs), np.int64)
            np.cumsum(recs["n"][:-1].astype(np.int64), out=starts[1:])
            for i in np.argsort(recs["key"], kind="stable"):
                yield toks[starts[i]:starts[i] + recs["n"][i]]
            del recs, toks
            os.unlink(self.path(b, "keys"))
            os.unlink(self.path(b, "tok"))


def _write_shards(docs, d: str, vocab: int, shard_tokens: int) -> list[dict]:
    it = iter(docs)
    head = [next(it, None)]
    entries = []
    while head[0] is not None:
        def one_shard():
            n = 0
            while head[0] is not None and n < shard_tokens:
                yield head[0]
                n += len(head[0])
                head[0] = next(it, None)

        entries.append(S.write_shard(os.path.join(d, f"shard-{len(entries):05d}"), one_shard(), vocab))
    return entries


# ------------------------------------------------------------------ driver


# A fresh `corpusforge sample` process after loading (interpreter, pyarrow, tokenizer: ~92 MB measured),
# and what it needs beyond that and its sized buffers: the tokenizer's and Arrow's working memory and one
# reader batch (bench/bench_sample_memory.py measures the total against the budget). Constants, not the
# caller's current RSS: called inside a bigger process (a notebook, a test run), the sampler adds the same.
START_MB = 96
RESERVE_MB = 64
MIN_BUFFER_MB = 16


def buffer_bytes(memory_mb: float, where: str) -> int:
    """The shuffle/batch buffer size that keeps a sampler process within memory_mb of peak RSS."""
    buf = int((memory_mb - START_MB - RESERVE_MB) * (1 << 20))
    if buf < MIN_BUFFER_MB << 20:
        raise CorpusforgeError("memory_budget", f"{where}: --memory-mb {memory_mb:g} is below what sampling needs: "
                               f"a sampler process starts at ~{START_MB} MB, tokenizing needs ~{RESERVE_MB} MB more and "
                               f"the buffers at least {MIN_BUFFER_MB} MB; use --memory-mb "
                               f"{START_MB + RESERVE_MB + MIN_BUFFER_MB} or more")
    return buf


def sample(mix: Mixture, out: str, workers: int = 1, memory_mb: float = 1024, progress: bool = True,
           overwrite: bool = False, where: str = "mixture", buffer_mb: float | None = None) -> dict:
    """memory_mb bounds each sampler process's peak RSS (run as the `sample` command); buffers get what is
    left after START_MB and RESERVE_MB. Inside another process the sampler adds at most memory_mb - START_MB.
    buffer_mb sets the buffers directly instead (no check; tests use it to force many small buckets)."""
    from corpusforge.sample.tokenizer import eod_id, load

    tok_path = mix.resolve(mix.tokenizer)
    with staging.local_file(tok_path) as tok_local:
        tok = load(tok_local)
        vocab, eod = tok.get_vocab_size(with_added_tokens=True), eod_id(tok, tok_path)
        del tok
        return _sample(mix, out, tok_path, tok_local, vocab, eod, workers, memory_mb, progress, overwrite, where, buffer_mb)


def _sample(mix: Mixture, out: str, tok_path: str, tok_local: str, vocab: int, eod: int, workers: int,
            memory_mb: float, progress: bool, overwrite: bool, where: str, buffer_mb: float | None) -> dict:
    budget_bytes = (int(buffer_mb * (1 << 20)) if buffer_mb is not None
                    else buffer_bytes(memory_mb, where))
    names = list(mix.sources)
    # Reader batches scale with the budget so one batch of text + tokens stays a small part of it.
    batch_rows = int(min(1024, max(16, budget_bytes // (64 << 10))))
    src_tasks = [[t for p in mix.sources[n].path for t in tasks_for(p, mix.base_dir, mix.sources[n].text_field, batch_rows,
                                                           int(max(1 << 16, min(16 << 20, budget_bytes // 16))),
                                                           mix.sources[n].source)]
                 for n in names]
    overlap.check_no_overlap(out, [mix.resolve(p) for n in names for p in mix.sources[n].path] + [tok_path])
    # only an earlier shard directory is ever emptied; on a store shards.json is uploaded last
    with staging.output_dir(out, "sample", overwrite=overwrite, last=(S.MANIFEST,)) as (folder, _):
        work = os.path.join(folder, WORK)
        os.makedirs(os.path.join(work, "tok"))
        shutil.copyfile(tok_local, os.path.join(work, S.TOKENIZER))
        tok_sha = sha256_file(os.path.join(work, S.TOKENIZER))
        params = TokenizeParams(tokenizer=os.path.join(work, S.TOKENIZER), sha256=tok_sha,
                                encode_chars=int(max(4096, min(1 << 20, budget_bytes // 128))),
                                bpe_cache=int(min(10_000, budget_bytes // 8192)))
        jobs = [(si, t, os.path.join(work, "tok", f"s{si:03d}-t{ti:05d}.parquet"), batch_rows)
                for si, ts in enumerate(src_tasks) for ti, t in enumerate(ts)]
        results = tokenize_all(jobs, params, workers, progress)  # 1. tokenize
        spills = {n: [r["spill"] for r in results if r["source"] == si] for si, n in enumerate(names)}
        available = {n: sum(r["tokens"] for r in results if r["source"] == si) for si, n in enumerate(names)}
        want, req_epochs, budget = targets(mix, available, where)
        reps, plan_sha = _plan(mix.seed, names, spills, want)  # 2. plan
        dtype = S.token_dtype(vocab)
        buckets, drawn, docs_drawn = _shuffle(mix.seed, names, spills, reps, dtype, budget_bytes, work)  # 3. shuffle
        entries = _write_shards(buckets.sorted_docs(), folder, vocab, mix.shard_tokens)  # ... and write
        total = sum(drawn.values())
        sources = {}
        for si, n in enumerate(names):
            sources[n] = {"requested_share": want[n] / budget, "achieved_share": drawn[n] / total if total else 0.0,
                          "requested_epochs": req_epochs[n], "achieved_epochs": drawn[n] / available[n],
                          "tokens_available": available[n], "tokens_target": want[n], "tokens_drawn": drawn[n],
                          "docs_available": sum(r["docs"] for r in results if r["source"] == si),
                          "docs_drawn": docs_drawn[n],
                          "chars_available": sum(r["chars"] for r in results if r["source"] == si)}
        quarantine = [q for r in results for q in r["quarantine"]]
        return _commit(folder, work, mix, tok_path, {"path": S.TOKENIZER, "sha256": tok_sha, "vocab_size": vocab}, {
            "seq_len": mix.seq_len, "seed": mix.seed, "mix": None, "plan_sha256": plan_sha, "eod_id": eod,
            "dtype": dtype.name, "shards": entries, "sources": sources,
            "quarantined": dict(sorted(Counter(q["reason"] for q in quarantine).items())), "tokens": total,
            "docs": sum(e["docs"] for e in entries)}, quarantine, budget)


def _plan(seed: int, names: list[str], spills: dict, want: dict) -> tuple[dict[str, np.ndarray], str]:
    """Copies per document, from (seed, source, id) only, and the plan's sha256."""
    plan_h = hashlib.sha256()
    reps: dict[str, np.ndarray] = {}
    for n in names:
        ids, sizes = [], []
        for b in _read_cols(spills[n], ["id", "n"]):
            ids += b.column("id").to_pylist()
            sizes.append(b.column("n").to_numpy())
        sizes = np.concatenate(sizes) if sizes else np.zeros(0, np.int32)
        keys = np.array([_key(seed, n, i) for i in ids], np.uint64)
        reps[n] = select(keys, sizes, want[n])
        plan_h.update(json.dumps([n, ids, reps[n].tolist()], ensure_ascii=False).encode())
        del ids, keys
    return reps, plan_h.hexdigest()


def _shuffle(seed: int, names: list[str], spills: dict, reps: dict, dtype, budget_bytes: int, work: str):
    """Every drawn (document, copy) into the bucket of its shuffle key; (buckets, tokens and docs drawn per source)."""
    drawn_bytes = sum(int((reps[n].astype(np.int64) * _sizes(spills[n])).sum()) for n in names) * dtype.itemsize
    nbits = max(0, math.ceil(math.log2(max(1, drawn_bytes / (budget_bytes / 4)))))
    buckets = _Buckets(os.path.join(work, "buckets"), nbits, dtype, budget_bytes // 8)
    drawn, docs_drawn = Counter(), Counter()
    for n in names:
        row = 0
        for b in _read_cols(spills[n], ["id", TOKENS]):
            ids = b.column("id").to_pylist()
            col = b.column(TOKENS)
            offs = col.offsets.to_numpy()
            flat = col.values.to_numpy()
            for j, doc in enumerate(ids):
                r = int(reps[n][row])
                row += 1
                if not r:
                    continue
                toks = flat[offs[j]:offs[j + 1]]
                for k in range(r):
                    buckets.add(_key(seed, "shuffle", n, doc, k), toks)
                drawn[n] += r * len(toks)
                docs_drawn[n] += r
    buckets.flush()
    return buckets, drawn, docs_drawn


def _commit(out: str, work: str, mix: Mixture, tok_path: str, tok_entry: dict, manifest: dict, quarantine: list,
            budget: int) -> dict:
    """Quarantine file, tokenizer, then shards.json last: its presence means the directory is complete."""
    if quarantine:
        sink = ParquetSink(os.path.join(out, QUARANTINE), QUARANTINE_SCHEMA)
        sink.write(pa.Table.from_pylist(quarantine, schema=QUARANTINE_SCHEMA))
        sink.commit()
    with atomic_file(os.path.join(out, S.TOKENIZER)) as f, open(os.path.join(work, S.TOKENIZER), "rb") as src:
        shutil.copyfileobj(src, f)
    write_hf_files(out, mix.seq_len)  # AutoTokenizer.from_pretrained(shard dir) works
    resolved = mix.model_dump(mode="json")
    resolved["tokenizer"] = staging.absolute(tok_path)
    resolved["total_tokens"] = budget
    for s in resolved["sources"].values():
        s["path"] = [staging.absolute(mix.resolve(p)) for p in s["path"]]
    manifest = {"format": S.FORMAT, "tokenizer": tok_entry, **manifest, "mix": resolved}
    shutil.rmtree(work)
    write_json(os.path.join(out, S.MANIFEST), manifest)
    return manifest


def _sizes(spills: list[str]) -> np.ndarray:
    parts = [b.column("n").to_numpy() for b in _read_cols(spills, ["n"])]
    return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)


def format_table(m: dict) -> str:
    lines = [f"{'source':<16}{'available':>12}{'drawn':>12}{'share req':>11}{'share got':>11}"
             f"{'epochs req':>12}{'epochs got':>12}{'docs':>9}"]
    for n, s in m["sources"].items():
        lines.append(f"{n:<16}{s['tokens_available']:>12}{s['tokens_drawn']:>12}{100 * s['requested_share']:>10.2f}%"
                     f"{100 * s['achieved_share']:>10.2f}%{s['requested_epochs']:>12.3f}{s['achieved_epochs']:>12.3f}"
                     f"{s['docs_drawn']:>9}")
    q = ", ".join(f"{k}={v}" for k, v in m["quarantined"].items()) or "none"
    lines.append(f"{m['tokens']} tokens in {m['docs']} documents, {len(m['shards'])} shard(s); quarantined: {q}")
    return "\n".join(lines)
