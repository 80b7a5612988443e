"""`corpusforge report RUN_A RUN_B --compare`: which documents a change flipped, from the persisted
kept/rejects/quarantine tables only.

Memory is bounded by one hash bucket, never by the run: pass 1 streams each run's (id, fate) rows in
Parquet batches into BUCKETS local Arrow files by blake2b(id); pass 2 joins A and B one bucket at a
time (each document meets its other fate there), counts every transition, writes every flip to an
optional Parquet list and keeps a deterministic sample per transition (the smallest blake2b keys, as
the report's samples are chosen); pass 3 reads texts only for the sampled ids. Kept documents whose
text differs between the runs are the "edited" transition (a cleaning change), shown as a diff."""

from __future__ import annotations

import hashlib
import math
import os

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from tqdm import tqdm

from corpusforge.errors import CorpusforgeError
from corpusforge.io import staging
from corpusforge.report.data import TEXT_CHARS, TopK, _batches, _paths, load_manifest, sample_keys

BUCKET_ROWS = 200_000  # rows of one run per bucket: a bucket pair joined in memory is a few tens of MB
KEPT = "kept"
SALT = "corpusforge-compare"
_FATE = pa.schema([pa.field("id", pa.string()), pa.field("source", pa.string()), pa.field("fate", pa.string()),
                   pa.field("th", pa.binary()), pa.field("key", pa.uint64())])
FLIP_SCHEMA = pa.schema([pa.field("id", pa.string()), pa.field("source", pa.string()),
                         pa.field("a", pa.string()), pa.field("b", pa.string())], metadata={"corpusforge": "flips"})


def _input_key(m: dict) -> list:
    return sorted((i.get("source"), i["path"], i.get("size"), i.get("sha256")) for i in m.get("inputs", []))


def check_same_inputs(ma: dict, mb: dict, a: str, b: str) -> None:
    ia, ib = _input_key(ma), _input_key(mb)
    if ia != ib:
        diff = sorted(set(ia) ^ set(ib))
        first = diff[0] if diff else ia[0]
        raise CorpusforgeError("different_inputs", f"{a} and {b} read different inputs (first difference: source {first[0]!r} "
                               f"file {first[1]!r}, {first[2]} bytes, sha256 {str(first[3])[:12]}); a comparison of fates needs the same documents")


def _fate_batches(run_dir: str, m: dict):
    """(ids, sources, fates, text hashes) per Parquet batch of the run's three tables."""
    for b in _batches(_paths(run_dir, m, "kept"), ["id", "source", "text"]):
        th = [hashlib.blake2b(t.encode("utf-8"), digest_size=12).digest() for t in b.column("text").to_pylist()]
        yield b.column("id"), b.column("source"), pa.array([KEPT] * b.num_rows), pa.array(th, pa.binary())
    for b in _batches(_paths(run_dir, m, "rejects"), ["id", "source", "stage", "reason"]):
        yield b.column("id"), b.column("source"), b.column("reason"), pa.nulls(b.num_rows, pa.binary())  # reasons are stage:check
    for b in _batches(_paths(run_dir, m, "quarantine"), ["id", "stage", "reason"]):
        b = b.filter(pc.is_valid(b.column("id")))  # ingest quarantine has no id: it is in the counts, not in the join
        fate = pc.binary_join_element_wise(pa.array(["quarantined"] * b.num_rows), b.column("stage"), b.column("reason"), " ")
        yield b.column("id"), pa.nulls(b.num_rows, pa.string()), fate, pa.nulls(b.num_rows, pa.binary())


def _split(run_dir: str, m: dict, tmp: str, tag: str, buckets: int, bar) -> dict:
    """Pass 1: the run's fates into `buckets` Arrow files; returns per-source counts by fate kind."""
    writers = [pa.ipc.new_file(os.path.join(tmp, f"{tag}-{i:04d}.arrow"), _FATE) for i in range(buckets)]
    sources: dict[str, dict[str, int]] = {}
    try:
        for ids, src, fate, th in _fate_batches(run_dir, m):
            keys = sample_keys(ids.to_pylist(), SALT)
            bar.update(len(ids))
            bucket = (keys % np.uint64(buckets)).astype(np.int64)
            t = pa.RecordBatch.from_arrays([ids, src, fate, th, pa.array(keys)], schema=_FATE)
            order = np.argsort(bucket, kind="stable")
            bounds = np.searchsorted(bucket[order], np.arange(buckets + 1))
            t = t.take(pa.array(order))
            for i in range(buckets):
                if bounds[i + 1] > bounds[i]:
                    writers[i].write_batch(t.slice(bounds[i], bounds[i + 1] - bounds[i]))
            if src.null_count < len(src):
                kinds = pc.if_else(pc.equal(fate, KEPT), "kept", "dropped")
                vc = pa.Table.from_arrays([src, kinds], ["s", "k"]).group_by(["s", "k"]).aggregate([([], "count_all")])
                for s, k, n in zip(*(vc.column(c).to_pylist() for c in ("s", "k", "count_all"))):
                    if s is not None:
                        d = sources.setdefault(s, {"kept": 0, "dropped": 0})
                        d[k] += n
    finally:
        for w in writers:
            w.close()
    return sources


def _read(path: str) -> pa.Table:
    with pa.memory_map(path) as src:
        return pa.ipc.open_file(src).read_all()


def _stage_counts(ma: dict, mb: dict) -> list[dict]:
    """Per stage the manifests' ledgers of both runs and B − A (stages of either run, in pipeline order)."""
    sa, sb = {s["name"]: s for s in ma["stages"]}, {s["name"]: s for s in mb["stages"]}
    names = list(dict.fromkeys([*sa, *sb]))
    out = []
    for n in names:
        a, b = sa.get(n), sb.get(n)
        row = {"stage": n, "a": _ledger(a), "b": _ledger(b)}
        row["diff"] = {k: (row["b"][k] or 0) - (row["a"][k] or 0) for k in ("in", "kept", "dropped", "quarantined")}
        reasons = sorted({*(a or {}).get("dropped", {}), *(b or {}).get("dropped", {})})
        row["reasons"] = {r: [(a or {}).get("dropped", {}).get(r, 0), (b or {}).get("dropped", {}).get(r, 0)] for r in reasons}
        out.append(row)
    return out


def _ledger(s: dict | None) -> dict:
    if s is None:
        return {"in": None, "kept": None, "dropped": None, "quarantined": None}
    return {"in": s["in"], "kept": s["kept"], "dropped": sum(s["dropped"].values()), "quarantined": sum(s["quarantined"].values())}


def compare(run_a: str, run_b: str, samples: int = 5, eval_samples: int = 30, flips_out=None,
            bucket_rows: int = BUCKET_ROWS, progress: bool = False) -> dict:
    """The comparison of two finished runs of the same inputs. `flips_out` (a path or a binary file):
    Parquet listing every document whose fate changed (id, source, fate in A, fate in B)."""
    ma, mb = load_manifest(run_a), load_manifest(run_b)
    check_same_inputs(ma, mb, run_a, run_b)
    rows = max(ma["totals"]["records"], mb["totals"]["records"], 1)
    buckets = max(1, math.ceil(rows / bucket_rows))
    transitions: dict[tuple[str, str], dict] = {}
    evals = {"a": TopK(eval_samples), "b": TopK(eval_samples)}
    flips = pq.ParquetWriter(flips_out, FLIP_SCHEMA, compression="zstd") if flips_out else None
    total = sum(f["rows"] for m in (ma, mb) for f in m["files"] if f["kind"] in ("kept", "rejects", "quarantine"))
    bar = tqdm(total=total, unit="doc", desc="compare", dynamic_ncols=True, disable=not progress)
    try:
        with staging.temp_folder("cf-compare-") as tmp:  # the buckets: ours alone, removed whole at the end
            src_a = _split(run_a, ma, tmp, "a", buckets, bar)
            src_b = _split(run_b, mb, tmp, "b", buckets, bar)
            for i in range(buckets):
                _join_bucket(_read(os.path.join(tmp, f"a-{i:04d}.arrow")), _read(os.path.join(tmp, f"b-{i:04d}.arrow")),
                             transitions, samples, evals, flips)
    finally:
        bar.close()
        if flips:
            flips.close()
    out = {"a": {"run_dir": run_a, "name": _name(run_a), "totals": ma["totals"]},
           "b": {"run_dir": run_b, "name": _name(run_b), "totals": mb["totals"]},
           "stages": _stage_counts(ma, mb),
           "sources": {s: {"a": src_a.get(s, {"kept": 0, "dropped": 0}), "b": src_b.get(s, {"kept": 0, "dropped": 0})}
                       for s in sorted({*src_a, *src_b})},
           "transitions": [], "flipped": 0, "edited": 0}
    want = {}
    for (fa, fb), t in sorted(transitions.items(), key=lambda kv: (-kv[1]["n"], kv[0])):
        items = t["top"].values()
        out["transitions"].append({"a": fa, "b": fb, "n": t["n"], "samples": items})
        out["edited" if fa == fb else "flipped"] += t["n"]
        for x in items:
            want.setdefault(x["id"], []).append(x)
    for side in ("a", "b"):
        out[f"eval_{side}"] = evals[side].values()
        for x in out[f"eval_{side}"]:
            want.setdefault(x["id"], []).append(x)
    _fill_texts(run_a, ma, run_b, mb, want)
    return out


def _name(run_dir: str) -> str:
    return os.path.basename(run_dir.rstrip("/")) or run_dir


def _join_bucket(a: pa.Table, b: pa.Table, transitions: dict, samples: int, evals: dict, flips) -> None:
    j = a.join(b, keys="id", join_type="full outer", left_suffix="_a", right_suffix="_b", coalesce_keys=True)
    fa = pc.fill_null(j.column("fate_a"), "absent").combine_chunks()
    fb = pc.fill_null(j.column("fate_b"), "absent").combine_chunks()
    edited = pc.and_(pc.and_(pc.equal(fa, KEPT), pc.equal(fb, KEPT)), pc.not_equal(j.column("th_a"), j.column("th_b")))
    changed = pc.or_(pc.not_equal(fa, fb), pc.fill_null(edited, False))
    j = j.filter(changed)
    if not j.num_rows:
        return
    fa, fb = pc.fill_null(j.column("fate_a"), "absent"), pc.fill_null(j.column("fate_b"), "absent")
    src = pc.coalesce(j.column("source_a"), j.column("source_b"))
    key = pc.coalesce(j.column("key_a"), j.column("key_b")).to_numpy(zero_copy_only=False)
    ids, fal, fbl, srcl = j.column("id").to_pylist(), fa.to_pylist(), fb.to_pylist(), src.to_pylist()
    if flips:
        flips.write_table(pa.table([j.column("id"), src, fa, fb], schema=FLIP_SCHEMA))
    groups: dict[tuple[str, str], list[int]] = {}
    for r, pair in enumerate(zip(fal, fbl)):
        groups.setdefault(pair, []).append(r)
    for pair, rs in groups.items():
        t = transitions.setdefault(pair, {"n": 0, "top": TopK(samples)})
        t["n"] += len(rs)
        t["top"].offer(key, ids, np.asarray(rs), lambda r: {"id": ids[r], "source": srcl[r], "a": fal[r], "b": fbl[r]})
    # human evaluation of what the change flipped: documents one run kept and the other did not
    for side, mine, other in (("a", fal, fbl), ("b", fbl, fal)):
        rs = np.asarray([r for r in range(len(ids)) if mine[r] == KEPT and other[r] != KEPT], np.int64)
        evals[side].offer(key, ids, rs, lambda r: {"id": ids[r], "source": srcl[r], "a": fal[r], "b": fbl[r]})


def _fill_texts(run_a: str, ma: dict, run_b: str, mb: dict, want: dict) -> None:
    """Pass 3: texts (kept) and previews (rejects) of the sampled ids only, into the sample dicts
    (`want`: id -> the sample dicts that show it)."""
    if not want:
        return
    ids = pa.array(sorted(want), pa.string())
    for side, run, m in (("a", run_a, ma), ("b", run_b, mb)):
        for kind, col in (("kept", "text"), ("rejects", "text_preview")):
            for b in _batches(_paths(run, m, kind), ["id", col]):
                b = b.filter(pc.is_in(b.column("id"), value_set=ids))
                for i, t in zip(b.column("id").to_pylist(), b.column(col).to_pylist()):
                    for x in want[i]:
                        x[f"text_{side}"], x[f"chars_{side}"], x[f"preview_{side}"] = t[:TEXT_CHARS], len(t), kind == "rejects"

