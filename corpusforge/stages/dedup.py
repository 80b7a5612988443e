"""Exact and MinHash-LSH near-duplicate dedup, written once as plans over the engine primitives
(corpusforge/primitives.py), so local, Spark and Beam remove the same documents.

Input: the documents that reached the stage (`id, source, text, …, _cf_part`).
Output: one decision row per removed document (primitives.DECISION_SCHEMA); the representative of a
cluster (the minimum id) is kept, every other member gets `duplicate_of` = representative and
`cluster_id` = the cluster's minimum id.
"""

from __future__ import annotations

import functools
import hashlib
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field, model_validator

from corpusforge.algorithms.minhash import MinHasher, band_hashes, jaccard_pairs, normalize_codepoints, optimal_bands
from corpusforge.schema import DECISION_SCHEMA, EDGE_SCHEMA, FIX_SCHEMA, PART_COL
from corpusforge.errors import CorpusforgeError
from corpusforge.stage import GlobalResult, GlobalStage, Params, register

KEY_SCHEMA = pa.schema([pa.field("id", pa.string()), pa.field(PART_COL, pa.int32()), pa.field("key", pa.string())])
BAND_SCHEMA = pa.schema([pa.field("id", pa.string()), pa.field("band", pa.int32()), pa.field("bhash", pa.int64())])


# ------------------------------------------------------------------------------------- batch fns
# Module-level functions (bound with functools.partial) so every engine can pickle them.


def exact_keys(batch: pa.RecordBatch, strip_punct: bool) -> pa.RecordBatch:
    # the normalized texts of the whole batch at once, hashed as code points (equal texts ⇔ equal bytes)
    cp, offs = normalize_codepoints(batch.column("text"), strip_punct)
    raw = cp.tobytes()
    keys = [hashlib.blake2b(raw[4 * a:4 * b], digest_size=16).hexdigest()
            for a, b in zip(offs[:-1].tolist(), offs[1:].tolist())]
    return pa.RecordBatch.from_arrays([batch.column("id"), batch.column(PART_COL).cast(pa.int32()), pa.array(keys, pa.string())],
                                      schema=KEY_SCHEMA)


def exact_decisions(batch: pa.RecordBatch) -> pa.RecordBatch:
    keep = pc.not_equal(batch.column("id"), batch.column("min_id"))
    b = batch.filter(keep)
    n = b.num_rows
    return pa.RecordBatch.from_arrays(
        [b.column("id"), b.column(PART_COL), pa.array(["exact_duplicate"] * n, pa.string()), b.column("min_id"), b.column("min_id")],
        schema=DECISION_SCHEMA)


SKIPPED_BAND = -1  # band of the one row per document without shingles; its bhash is the document's part


def minhash_bands(batch: pa.RecordBatch, num_perm: int, seed: int, ngram: int, strip_punct: bool, bands: int,
                  rows: int) -> pa.RecordBatch:
    hasher = _hasher(num_perm, seed, ngram, strip_punct)
    sig, has = hasher.signatures(batch.column("text"))
    idx = np.flatnonzero(has)  # documents without any shingle (empty after normalization) are never near-dups,
    skip = np.flatnonzero(~has)  # but they are counted (RELIABILITY #35): one (SKIPPED_BAND, part) row each
    bh = band_hashes(sig[idx], bands, rows)
    ids = batch.column("id").take(pa.array(np.concatenate([np.repeat(idx, bands), skip])))
    band = np.concatenate([np.tile(np.arange(bands, dtype=np.int32), len(idx)), np.full(len(skip), SKIPPED_BAND, np.int32)])
    parts = batch.column(PART_COL).to_numpy(zero_copy_only=False)[skip].astype(np.int64)
    return pa.RecordBatch.from_arrays([ids, pa.array(band), pa.array(np.concatenate([bh.reshape(-1), parts]))],
                                      schema=BAND_SCHEMA)


def skipped_counts(batch: pa.RecordBatch) -> pa.RecordBatch:
    """One row per part from the annotated bands: the part's shingle-less documents form one group."""
    b = batch.filter(pc.and_(pc.equal(batch.column("band"), SKIPPED_BAND), pc.equal(batch.column("id"), batch.column("min_id"))))
    return pa.RecordBatch.from_arrays([b.column("bhash").cast(pa.int32()), pa.array(["dedup_skipped_too_short"] * b.num_rows,
                                                                                  pa.string()), b.column("n")], schema=FIX_SCHEMA)


@functools.lru_cache(maxsize=4)
def _hasher(num_perm, seed, ngram, strip_punct) -> MinHasher:
    return MinHasher(num_perm, seed, ngram, strip_punct=strip_punct)


def star_edges(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Each member of a bucket to the bucket's minimum id (members of one-document buckets are their own minimum)."""
    b = batch.filter(pc.and_(pc.not_equal(batch.column("id"), batch.column("min_id")), pc.not_equal(batch.column("band"), SKIPPED_BAND)))
    return pa.RecordBatch.from_arrays([b.column("id"), b.column("min_id")], schema=EDGE_SCHEMA)


PAIR_HALF_SCHEMA = pa.schema([pa.field("src", pa.string()), pa.field("src_text", pa.string()), pa.field("id", pa.string())])


def src_as_id(batch: pa.RecordBatch) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays([batch.column("src"), batch.column("dst")], names=["id", "dst"])


def dst_as_id(batch: pa.RecordBatch) -> pa.RecordBatch:
    """(id=src, dst, text) -> (src, src_text, id=dst), ready to fetch the other end's text."""
    return pa.RecordBatch.from_arrays([batch.column("id"), batch.column("text"), batch.column("dst")], schema=PAIR_HALF_SCHEMA)


VERIFIED_SCHEMA = pa.schema([pa.field("src", pa.string()), pa.field("dst", pa.string()), pa.field("jaccard", pa.float64())])


def verify_edges(batch: pa.RecordBatch, threshold: float, ngram: int, strip_punct: bool) -> pa.RecordBatch:
    j = jaccard_pairs(batch.column("src_text"), batch.column("text"), ngram, strip_punct)  # text = the dst's text
    keep = j >= threshold
    return pa.RecordBatch.from_arrays([batch.column("src").filter(keep), batch.column("id").filter(keep),
                                       pa.array(j[keep], pa.float64())], schema=VERIFIED_SCHEMA)


def drop_jaccard(batch: pa.RecordBatch) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays([batch.column("src"), batch.column("dst")], schema=EDGE_SCHEMA)


def near_decisions(batch: pa.RecordBatch) -> pa.RecordBatch:
    rep = batch.column("rep") if "rep" in batch.schema.names else batch.column("component")
    keep = pc.not_equal(batch.column("id"), rep)
    b, rep = batch.filter(keep), rep.filter(keep)
    n = b.num_rows
    return pa.RecordBatch.from_arrays(
        [b.column("id"), b.column(PART_COL), pa.array(["near_duplicate"] * n, pa.string()), rep, b.column("component")],
        schema=DECISION_SCHEMA)


RANK_SCHEMA = pa.schema([pa.field("id", pa.string()), pa.field("rank", pa.string())])


def rank_keys(batch: pa.RecordBatch, column: str) -> pa.RecordBatch:
    """A string that sorts by score descending, then id ascending: min(rank) per cluster = the representative.
    Floats map to order-preserving 64-bit words (NaN/null rank last), written as fixed-width hex."""
    if column not in batch.schema.names:
        raise CorpusforgeError("bad_config", f"dedup_minhash: keep=max_score needs column {column!r}, which no stage "
                               f"before it writes (have: {', '.join(batch.schema.names)})")
    v = pc.cast(batch.column(column), pa.float64()).to_numpy(zero_copy_only=False)
    v = np.where(np.isnan(v), -np.inf, v)
    bits = v.astype(np.float64).view(np.uint64)
    asc = np.where(bits >> np.uint64(63) == 1, ~bits, bits | np.uint64(1 << 63))  # order-preserving
    desc = ~asc
    ranks = [f"{k:016x}|{i}" for k, i in zip(desc.tolist(), batch.column("id").to_pylist())]
    return pa.RecordBatch.from_arrays([batch.column("id"), pa.array(ranks, pa.string())], schema=RANK_SCHEMA)


def best_rank(batch: pa.RecordBatch) -> pa.RecordBatch:
    reps = pc.utf8_slice_codeunits(batch.column("best"), 17)
    return pa.RecordBatch.from_arrays([batch.column("component"), reps], names=["component", "rep"])


# ----------------------------------------------------------------------------------------- stages


@register
class DedupExact(GlobalStage):
    """Exact dedup on a hash of the normalized text (NFKC, lowercase, no whitespace/punctuation); keeps the minimum id."""

    name = "dedup_exact"

    class Params(Params):
        strip_punct: bool = True  # ignore punctuation as well as whitespace when comparing texts

    def run(self, engine: Any, docs: Any) -> Any:
        keys = engine.map_batches(engine.select(docs, ["id", "text", PART_COL]),
                                  functools.partial(exact_keys, strip_punct=self.params.strip_punct), KEY_SCHEMA, "exact-keys")
        members = engine.annotate(keys, ["key"], [("id", "min", "min_id")], "exact-groups")
        return GlobalResult(engine.map_batches(members, exact_decisions, DECISION_SCHEMA, "exact-decisions"))


@register
class DedupMinhash(GlobalStage):
    """MinHash-LSH near-duplicate dedup: char n-gram shingles, bucket minimum, star edges, Jaccard check, components."""

    name = "dedup_minhash"

    class Params(Params):
        threshold: float = Field(0.8, gt=0, lt=1)  # Jaccard similarity of shingle sets
        ngram: int = Field(5, ge=1, le=32)
        num_perm: int = Field(128, ge=2, le=1024)
        seed: int = 1
        bands: int | None = Field(None, ge=1)  # default: optimal for threshold (with rows)
        rows: int | None = Field(None, ge=1)
        verify: bool = True  # exact Jaccard of candidate pairs before they are merged
        # weights of the band/row optimisation; default (0.5, 0.5) without verification, and (0.01, 0.99) with it:
        # verification removes false candidates, so missing true pairs is the costlier error
        fn_weight: float | None = Field(None, gt=0, lt=1)
        strip_punct: bool = True
        max_cluster_size: int = Field(10_000, ge=2)  # larger clusters stop the run (false-positive guard)
        max_components_nodes: int = Field(50_000_000, ge=1)
        # stop the run if near-dup dedup removes more than this fraction of one source's documents (off by default)
        max_source_removal: float | None = Field(None, gt=0, le=1)
        keep: Literal["min_id", "max_score"] = "min_id"  # representative: minimum id, or highest `score` (ties: min id)
        score: str | None = None  # a score column written by an earlier stage, e.g. quality__score

        @model_validator(mode="after")
        def _score_for_max(self):
            if self.keep == "max_score" and not self.score:
                raise ValueError("keep: max_score needs `score` (a score column such as quality__score)")
            return self

        @model_validator(mode="after")
        def _bands_fit(self):  # checked with the config, before any input is read
            if self.bands and self.rows and self.bands * self.rows > self.num_perm:
                raise ValueError(f"bands*rows {self.bands * self.rows} > num_perm {self.num_perm}")
            return self

    def band_rows(self) -> tuple[int, int]:
        p = self.params
        if p.bands and p.rows:
            return p.bands, p.rows
        fn = p.fn_weight if p.fn_weight is not None else (0.99 if p.verify else 0.5)
        return optimal_bands(p.threshold, p.num_perm, 1 - fn, fn)

    def run(self, engine: Any, docs: Any) -> Any:
        p = self.params
        b, r = self.band_rows()
        fn = functools.partial(minhash_bands, num_perm=p.num_perm, seed=p.seed, ngram=p.ngram, strip_punct=p.strip_punct,
                               bands=b, rows=r)
        bands = engine.map_batches(engine.select(docs, ["id", "text", PART_COL]), fn, BAND_SCHEMA, "minhash-bands")
        # every band row with its bucket's minimum id and size: one shuffle, never a materialized bucket list
        buckets = engine.annotate(bands, ["band", "bhash"], [("id", "min", "min_id"), ("id", "count", "n")], "minhash-buckets")
        edges = engine.map_batches(buckets, star_edges, EDGE_SCHEMA, "minhash-star")
        edges = engine.combine(edges, ["src", "dst"], [("src", "count", "bands")], "minhash-edges")
        edges = engine.map_batches(edges, drop_jaccard, EDGE_SCHEMA, "minhash-distinct")
        if p.verify:
            texts = engine.select(docs, ["id", "text"])  # serves both ends
            pairs = engine.join(engine.map_batches(edges, src_as_id, pa.schema([("id", pa.string()), ("dst", pa.string())]),
                                                   "edges-by-src"), texts, ["id"], "pairs-src")
            pairs = engine.join(engine.map_batches(pairs, dst_as_id, PAIR_HALF_SCHEMA, "edges-by-dst"), texts, ["id"],
                                "pairs-dst")
            verified = engine.map_batches(pairs, functools.partial(verify_edges, threshold=p.threshold, ngram=p.ngram,
                                                                   strip_punct=p.strip_punct), VERIFIED_SCHEMA, "verify")
            edges = engine.map_batches(verified, drop_jaccard, EDGE_SCHEMA, "verified")
        comps = engine.connected_components(edges, "components", max_nodes=p.max_components_nodes)
        self._guard(engine, comps)
        ids = engine.select(docs, ["id", PART_COL])
        members = engine.join(comps, ids, ["id"], "components-part")
        if p.keep == "max_score":
            ranks = engine.join(comps, engine.map_batches(docs, functools.partial(rank_keys, column=p.score), RANK_SCHEMA,
                                                          "rank"), ["id"], "components-rank")
            best = engine.combine(ranks, ["component"], [("rank", "min", "best")], "representatives")
            reps = engine.map_batches(best, best_rank, pa.schema([("component", pa.string()), ("rep", pa.string())]), "reps")
            members = engine.join(members, reps, ["component"], "components-rep")
        decisions = engine.map_batches(members, near_decisions, DECISION_SCHEMA, "near-decisions")
        if p.max_source_removal is not None:
            self._source_guard(engine, docs, decisions)
        return GlobalResult(decisions, engine.map_batches(buckets, skipped_counts, FIX_SCHEMA, "skipped-too-short"))

    def _source_guard(self, engine: Any, docs: Any, decisions: Any) -> None:
        src = engine.select(docs, ["id", "source"])
        total = {r["source"]: r["n"] for b in engine.read(engine.combine(src, ["source"], [("id", "count", "n")], "source-docs"))
                 for r in b.to_pylist()}
        gone = engine.combine(engine.join(decisions, src, ["id"], "removed-source"), ["source"],
                              [("id", "count", "n"), ("duplicate_of", "min", "example")], "source-removed")
        for r in sorted((r for b in engine.read(gone) for r in b.to_pylist()), key=lambda r: r["source"]):
            frac = r["n"] / total[r["source"]]
            if frac > self.params.max_source_removal:
                raise CorpusforgeError(
                    "dedup_source_removal",
                    f"{self.name}: would remove {r['n']} of {total[r['source']]} documents ({frac:.0%}) of source "
                    f"{r['source']!r} > max_source_removal {self.params.max_source_removal:.0%} (e.g. duplicates of "
                    f"{r['example']}): likely shared boilerplate; check the source or raise the threshold")

    def _guard(self, engine: Any, comps: Any) -> None:
        if engine.count(comps) <= self.params.max_cluster_size:  # no cluster can be too big: skip the grouping
            return
        sizes = engine.combine(comps, ["component"], [("id", "count", "size")], "cluster-sizes")
        big = [row for b in engine.read(sizes) for row in b.to_pylist() if row["size"] > self.params.max_cluster_size]
        if big:
            worst = max(big, key=lambda r: (r["size"], r["component"]))
            members = sorted(i for b in engine.read(comps) for i, c in zip(b.column("id").to_pylist(), b.column("component").to_pylist())
                             if c == worst["component"])[:5]
            raise CorpusforgeError(
                "dedup_mega_cluster",
                f"{self.name}: cluster {worst['component']} has {worst['size']} members (e.g. {', '.join(members)}) > max_cluster_size "
                f"{self.params.max_cluster_size} ({len(big)} such clusters): likely shared boilerplate or a transitive "
                "chain; raise the threshold, keep verify on, or raise max_cluster_size")
