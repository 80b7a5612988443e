"""Megatron MMIDIDX format of corpusforge/sample/shards.py, checked by an independent reader written
here from the format description (struct + np.frombuffer). Documents are real prose; token ids are
their UTF-8 bytes (uint16 path) or code points with a > 65500 vocabulary (int32 path)."""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

import numpy as np
import pytest

from corpusforge.errors import CorpusforgeError
from corpusforge.sample.shards import IndexedShard, write_shard


def megatron_read(prefix: Path) -> tuple[int, list[np.ndarray]]:
    """Independent reader: dtype code and every document, from the layout alone."""
    idx = (prefix.with_suffix(".idx")).read_bytes()
    assert idx[:9] == b"MMIDIDX\x00\x00"
    (version,) = struct.unpack_from("<Q", idx, 9)
    (code,) = struct.unpack_from("<B", idx, 17)
    seq, ndoc = struct.unpack_from("<QQ", idx, 18)
    assert version == 1
    dtype = {1: np.uint8, 2: np.int8, 3: np.int16, 4: np.int32, 5: np.int64, 8: np.uint16}[code]
    off = 34
    sizes = np.frombuffer(idx, np.int32, seq, off)
    pointers = np.frombuffer(idx, np.int64, seq, off + 4 * seq)
    doc_idx = np.frombuffer(idx, np.int64, ndoc, off + 12 * seq)
    assert len(idx) == off + 12 * seq + 8 * ndoc
    assert doc_idx.tolist() == list(range(seq + 1))
    data = (prefix.with_suffix(".bin")).read_bytes()
    item = np.dtype(dtype).itemsize
    docs = [np.frombuffer(data, dtype, int(n), int(p)) for n, p in zip(sizes, pointers)]
    assert sum(int(n) for n in sizes) * item == len(data)
    return code, docs


@pytest.fixture(scope="module")
def prose(shared_data) -> list[str]:
    rows = [json.loads(ln) for ln in (shared_data / "prose" / "luxun_fiction_essays.jsonl").open(encoding="utf-8")]
    return [r["text"] for r in rows[:40]]


def test_uint16_bytes_roundtrip_through_independent_reader(tmp_path, prose):
    docs = [np.frombuffer(t.encode("utf-8"), np.uint8).astype(np.int64) for t in prose] + [np.zeros(0, np.int64)]
    info = write_shard(str(tmp_path / "s"), iter(docs), vocab_size=256)
    code, got = megatron_read(tmp_path / "s")
    assert code == 8  # uint16
    assert len(got) == len(docs) == info["docs"]
    assert [bytes(g.astype(np.uint8)).decode("utf-8") for g in got[:-1]] == prose
    assert got[-1].size == 0
    assert info["tokens"] == sum(len(d) for d in docs)
    assert info["sha256_bin"] == hashlib.sha256((tmp_path / "s.bin").read_bytes()).hexdigest()
    assert info["sha256_idx"] == hashlib.sha256((tmp_path / "s.idx").read_bytes()).hexdigest()
    s = IndexedShard(str(tmp_path / "s"))
    assert len(s) == len(docs) and s.dtype == np.uint16
    for i in (0, 7, len(docs) - 1):
        assert np.array_equal(s[i], got[i])
    assert s.offsets.tolist() == np.concatenate([[0], np.cumsum([len(d) for d in docs])[:-1]]).tolist()


def test_int32_code_points_for_large_vocab(tmp_path, prose):
    docs = [np.array([ord(c) for c in t], np.int64) for t in prose]
    write_shard(str(tmp_path / "c"), docs, vocab_size=0x110000)
    code, got = megatron_read(tmp_path / "c")
    assert code == 4  # int32
    assert ["".join(map(chr, g)) for g in got] == prose
    assert IndexedShard(str(tmp_path / "c")).dtype == np.int32


def test_out_of_range_id_is_an_error_before_commit(tmp_path, prose):
    docs = [np.array([ord(c) for c in prose[0]], np.int64)]  # CJK code points >= 256
    with pytest.raises(CorpusforgeError, match="token_out_of_range"):
        write_shard(str(tmp_path / "bad"), docs, vocab_size=256)
    assert list(tmp_path.iterdir()) == []  # nothing committed, no temp left


def test_reader_rejects_inconsistent_index(tmp_path, prose):
    docs = [np.frombuffer(t.encode("utf-8"), np.uint8) for t in prose[:5]]
    write_shard(str(tmp_path / "s"), docs, vocab_size=256)
    idx = bytearray((tmp_path / "s.idx").read_bytes())
    idx[34] ^= 1  # first size: pointers no longer follow the sizes
    (tmp_path / "s.idx").write_bytes(bytes(idx))
    with pytest.raises(CorpusforgeError, match=r"s\.idx: pointer of sequence 1"):
        IndexedShard(str(tmp_path / "s"))
