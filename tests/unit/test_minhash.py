"""MinHash building blocks against datasketch and brute force, on real Chinese text."""

from __future__ import annotations

import json
import random

import numpy as np
import pyarrow as pa
import pytest
from datasketch import MinHash
from datasketch.lsh import _optimal_param

from corpusforge.algorithms.components import UnionFind, components_min_id
from corpusforge.algorithms.minhash import (MinHasher, band_hashes, jaccard_pairs, normalize_codepoints, optimal_bands,
                                            shingle_hash32, shingle_hash64, shingle_hashes, shingles)
from corpusforge.engines.local_primitives import LocalPrimitives
from corpusforge.primitives import hash_column


@pytest.fixture(scope="module")
def pool(shared_data):
    return [json.loads(line) for line in open(shared_data / "neardup" / "zhwiki_versions_pool.jsonl", encoding="utf-8")]


@pytest.fixture(scope="module")
def pairs(shared_data):
    return [json.loads(line) for line in open(shared_data / "neardup" / "zhwiki_versions_pairs.jsonl", encoding="utf-8")]


def test_signatures_equal_datasketch_for_the_same_hash_function(pool):
    texts = [d["text"] for d in pool[::7]] + ["", "。，", "短文", "abcdE"]  # incl. empty and shorter than n
    sig, has = MinHasher(num_perm=64, seed=7, ngram=5).signatures(texts)
    for i, t in enumerate(texts):
        m = MinHash(num_perm=64, seed=7, hashfunc=shingle_hash32)
        m.update_batch(shingles(t, 5))
        assert np.array_equal(m.hashvalues, sig[i]), i
        assert has[i] == bool(shingles(t, 5))
    assert not has[-4] and not has[-3] and has[-2]


def test_numba_and_numpy_paths_give_identical_code_points_and_signatures(pool, monkeypatch):
    """The compiled kernels (UTF-8 decode + drop, fused shingle hash + MinHash) against the numpy array path,
    on real text plus 1-4 byte UTF-8, emoji beyond plane 2, punctuation-only and short texts."""
    from corpusforge.algorithms import minhash as M

    assert M._numba_kernel() is not None and M._numba_decoder() is not None  # numba is a dependency
    texts = [d["text"] for d in pool[::5]] + ["", "。，", "短文", "abcdE", "Ünïcödé 𠀋𠀍 🙂🙂🙂 ＡＢＣ", "a\u00a0b\u3000c\td", None]
    h = MinHasher(num_perm=128, seed=3, ngram=5)
    fast = [M.normalize_codepoints(texts, sp) for sp in (True, False)], h.signatures(texts, kernel="numba")
    monkeypatch.setattr(M, "_numba_decoder", lambda: None)
    slow = [M.normalize_codepoints(texts, sp) for sp in (True, False)], h.signatures(texts, kernel="numpy")
    for (cf, of), (cs, os_) in zip(fast[0], slow[0]):
        assert np.array_equal(cf, cs) and np.array_equal(of, os_)
    assert np.array_equal(fast[1][0], slow[1][0]) and np.array_equal(fast[1][1], slow[1][1])


def test_sha1_mode_equals_datasketch_default_minhash(pool):
    texts = [d["text"][:800] for d in pool[:6]]
    sig, _ = MinHasher(num_perm=128, seed=1, ngram=5, hash="sha1").signatures(texts)
    for i, t in enumerate(texts):
        m = MinHash(num_perm=128, seed=1)  # datasketch defaults: sha1_hash32, affine32 scheme
        m.update_batch([s.encode("utf-8") for s in shingles(t, 5)])
        assert np.array_equal(m.hashvalues, sig[i])


def test_vectorized_shingle_hashes_match_the_scalar_reference(pool):
    texts = [pool[3]["text"][:300], "春眠不觉晓", "处处闻啼鸟。夜来 风雨声", "ab", ""]
    for n in (1, 3, 5, 9):
        cp, offs = normalize_codepoints(texts)
        h, doc = shingle_hashes(cp, offs, n)
        want = [(shingle_hash64(s), i) for i, t in enumerate(texts) for s in shingles(t, n)]
        assert h.tolist() == [w for w, _ in want] and doc.tolist() == [i for _, i in want]


@pytest.mark.parametrize("num_perm", [64, 128])
def test_band_rows_match_datasketch_optimisation(num_perm):
    for t in (0.3, 0.5, 0.7, 0.8, 0.85, 0.9, 0.95):
        assert optimal_bands(t, num_perm) == _optimal_param(t, num_perm, 0.5, 0.5), t


def test_exact_jaccard_equals_set_jaccard_and_labels(pool, pairs):
    text = {d["id"]: d["text"] for d in pool}
    sample = pairs[::9]
    a, b = [text[p["a"]] for p in sample], [text[p["b"]] for p in sample]
    got = jaccard_pairs(a, b, 5)
    for g, x, y in zip(got, a, b):
        sx, sy = set(shingles(x, 5)), set(shingles(y, 5))
        assert g == pytest.approx(len(sx & sy) / len(sx | sy))
    # the labels use whitespace-only normalization: same shingles up to punctuation handling
    nopunct = jaccard_pairs(a, b, 5, strip_punct=False)
    assert np.abs(nopunct - np.array([p["jaccard_char5"] for p in sample])).max() < 0.03


def test_signature_agreement_estimates_jaccard(pool, pairs):
    text = {d["id"]: d["text"] for d in pool}
    sample = [p for p in pairs if p["same_source"]][:150]
    mh = MinHasher(num_perm=256, seed=3)
    sa, _ = mh.signatures([text[p["a"]] for p in sample])
    sb, _ = mh.signatures([text[p["b"]] for p in sample])
    est = (sa == sb).mean(axis=1)
    true = jaccard_pairs([text[p["a"]] for p in sample], [text[p["b"]] for p in sample])
    assert np.abs(est - true).mean() < 0.03


def test_band_hashes_equal_iff_band_values_equal():
    rng = np.random.default_rng(0)
    sig = rng.integers(0, 2**32, (50, 12), dtype=np.uint64).astype(np.uint32)
    sig[1] = sig[0]
    sig[2, :4] = sig[0, :4]
    h = band_hashes(sig, 3, 4)
    assert (h[1] == h[0]).all() and h[2, 0] == h[0, 0] and (h[2, 1:] != h[0, 1:]).all()
    assert len(set(h[:, 0].tolist())) == 48  # only rows 0/1/2 share band 0
    assert h[0, 0] != band_hashes(sig[:, [4, 5, 6, 7, 0, 1, 2, 3]], 2, 4)[0, 1]  # band index is mixed in


def test_components_min_id_against_bfs():
    rnd = random.Random(5)
    ids = [f"d{rnd.randrange(10**6):07d}" for _ in range(300)]
    edges = [(rnd.choice(ids), rnd.choice(ids)) for _ in range(220)]
    nodes, comp = components_min_id(pa.array([a for a, _ in edges]), pa.array([b for _, b in edges]))
    adj: dict = {}
    for a, b in edges:
        adj.setdefault(a, set()).add(b)
        adj.setdefault(b, set()).add(a)
    for n, c in zip(nodes.to_pylist(), comp.to_pylist()):
        seen, stack = {n}, [n]
        while stack:
            for m in adj[stack.pop()] - seen:
                seen.add(m)
                stack.append(m)
        assert c == min(seen)
    # the answer does not depend on edge order
    rnd.shuffle(edges)
    _, comp2 = components_min_id(pa.array([b for _, b in edges]), pa.array([a for a, _ in edges]))
    assert comp2.to_pylist() == comp.to_pylist()
    uf = UnionFind(4)
    uf.union(3, 2)
    uf.union(2, 1)
    assert uf.find(3) == 1 and uf.roots().tolist() == [0, 1, 1, 1]


def test_local_primitives_combine_and_join(tmp_path):
    eng = LocalPrimitives(str(tmp_path), partition_rows=4)  # forces several hash partitions
    rnd = random.Random(1)
    keys = [rnd.randrange(9) for _ in range(60)]
    ids = [f"x{rnd.randrange(1000):04d}" for _ in range(60)]
    ds = eng.from_table(pa.table({"k": pa.array(keys, pa.int64()), "id": ids}), "in")
    got = eng.read_table(eng.combine(ds, ["k"], [("id", "min", "mn"), ("id", "count", "n")], "c")).to_pylist()
    want = {k: (min(i for kk, i in zip(keys, ids) if kk == k), keys.count(k)) for k in set(keys)}
    assert {r["k"]: (r["mn"], r["n"]) for r in got} == want
    right = eng.from_table(pa.table({"k": pa.array(range(0, 9, 2), pa.int64()), "v": [f"v{i}" for i in range(0, 9, 2)]}), "r")
    want = sorted((i, k, f"v{k}") for k, i in zip(keys, ids) if k % 2 == 0)
    j = eng.read_table(eng.join(ds, right, ["k"], "j")).to_pylist()  # both sides hash-partitioned
    assert sorted((r["id"], r["k"], r["v"]) for r in j) == want
    big = LocalPrimitives(str(tmp_path / "b"))  # small side held in memory, the other streamed past it
    for left, right_ in ((ds, right), (right, ds)):
        j = big.read_table(big.join(left, right_, ["k"], "j")).to_pylist()
        assert sorted((r["id"], r["k"], r["v"]) for r in j) == want
    assert hash_column(pa.array(["a", "b"])).tolist() == hash_column(pa.chunked_array([["a"], ["b"]])).tolist()


def test_components_by_rounds_on_primitives_equals_union_find(tmp_path):
    from corpusforge.algorithms.components import components_by_rounds

    rnd = random.Random(11)
    ids = [f"n{rnd.randrange(10**5):05d}" for _ in range(400)]
    edges = [(rnd.choice(ids), rnd.choice(ids)) for _ in range(300)]
    edges += [(ids[i], ids[i + 1]) for i in range(0, 15)]  # a chain: several rounds
    src, dst = pa.array([a for a, _ in edges]), pa.array([b for _, b in edges])
    nodes, comp = components_min_id(src, dst)
    eng = LocalPrimitives(str(tmp_path), partition_rows=64)  # small partitions: every join/combine shuffles
    got = eng.read_table(components_by_rounds(eng, eng.from_table(pa.table({"src": src, "dst": dst}), "edges")))
    assert dict(zip(got.column("id").to_pylist(), got.column("component").to_pylist())) == \
        dict(zip(nodes.to_pylist(), comp.to_pylist()))
    # the local engine switches to rounds when the edges exceed one partition
    cc = eng.read_table(eng.connected_components(eng.from_table(pa.table({"src": src, "dst": dst}), "e2"), "cc"))
    assert sorted(zip(cc.column("id").to_pylist(), cc.column("component").to_pylist())) == \
        sorted(zip(nodes.to_pylist(), comp.to_pylist()))
