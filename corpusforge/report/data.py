"""Report data from a run's persisted tables (never from counters), streamed in Parquet batches with
only the columns each aggregate needs. Memory is bounded by the batch size and by the number of
distinct sources, reasons and dedup clusters, never by the amount of text: kept texts are only
measured, and only the few sampled documents keep theirs.

Two passes: the first reads numbers only (score ranges for the histogram bins, dedup cluster sizes,
so the sample clusters are known before texts are read); the second does everything else."""

from __future__ import annotations

import glob
import hashlib
import json
import os

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from corpusforge.io import fs, staging, store
from corpusforge.schema import PREVIEW_CHARS

BATCH = 16384
HIST_BINS = 30
TEXT_CHARS = 3000  # text kept per sampled document (samples are for reading, not for export)
CLUSTER_MEMBERS = 12  # members listed per sample cluster


def sample_keys(ids, salt: str) -> np.ndarray:
    """Deterministic sample order: blake2b of (salt, id); the smallest keys are the sample."""
    key = salt.encode("utf-8")[:64]
    return np.fromiter((int.from_bytes(hashlib.blake2b(i.encode("utf-8"), digest_size=8, key=key).digest(), "big")
                        for i in ids), np.uint64, len(ids))


class TopK:
    """The k items with the smallest (key, id) seen so far; the same set whatever the batch order."""

    def __init__(self, k: int):
        self.k, self.items = k, []

    def offer(self, keys: np.ndarray, ids: list, rows: np.ndarray, payload) -> None:
        if not self.k or not len(rows):
            return
        if len(self.items) == self.k:
            rows = rows[keys[rows] <= self.items[-1][0]]
        rows = rows[np.argsort(keys[rows], kind="stable")[: self.k]]
        self.items += [(int(keys[i]), ids[i], payload(int(i))) for i in rows]
        self.items.sort(key=lambda x: (x[0], x[1]))
        del self.items[self.k:]

    def values(self) -> list:
        return [p for _, _, p in self.items]


def load_manifest(run_dir: str) -> dict:
    from corpusforge.report.extras import read_json

    return read_json(fs.join(run_dir, "manifest.json"),
                     ("not_a_run", f"{run_dir}: no manifest.json (not a finished run directory)"), "bad_manifest")


def _paths(run_dir: str, m: dict, kind: str) -> list[str]:
    return [fs.join(run_dir, f["path"]) for f in m["files"] if f["kind"] == kind]


def _batches(paths: list[str], columns: list[str]):
    for p in paths:
        pf = pq.ParquetFile(store.source(p))
        names = pf.schema_arrow.names
        yield from pf.iter_batches(batch_size=BATCH, columns=[c for c in columns if c in names])


def _is_score(field: pa.Field) -> bool:
    return "__" in field.name and (pa.types.is_integer(field.type) or pa.types.is_floating(field.type))


def _flat_scores(batch: pa.RecordBatch):
    """(key, value, row index) of every entry of the rejects' `scores` map, as Arrow/numpy arrays."""
    col = batch.column("scores")
    col = col.cast(pa.list_(pa.struct([pa.field("key", pa.string()), pa.field("value", pa.float64())])))
    flat = pc.list_flatten(col)
    parents = pc.list_parent_indices(col).to_numpy()
    return flat.field(0), flat.field(1), parents


class _Hist:
    """Min/max in pass 1, then fixed-edge histograms of kept and dropped values in pass 2."""

    def __init__(self):
        self.lo, self.hi = np.inf, -np.inf
        self.edges = None

    def see(self, v: np.ndarray) -> None:
        v = v[np.isfinite(v)]
        if v.size:
            self.lo, self.hi = min(self.lo, float(v.min())), max(self.hi, float(v.max()))

    def freeze(self) -> None:
        lo, hi = (self.lo, self.hi) if np.isfinite(self.lo) else (0.0, 1.0)
        # long-tailed counts (characters, hits, perplexity) are unreadable on a linear axis
        self.log = lo >= 0 and hi > 100 * max(lo, 1.0)
        t0, t1 = (np.log10(1 + lo), np.log10(1 + hi)) if self.log else (lo, hi)
        if t1 <= t0:
            t1 = t0 + 1.0
        self.edges = np.linspace(t0, t1, HIST_BINS + 1)
        self.kept = np.zeros(HIST_BINS, np.int64)
        self.dropped = np.zeros(HIST_BINS, np.int64)

    def add(self, v: np.ndarray, dropped: bool) -> None:
        v = v[np.isfinite(v)]
        if v.size:
            t = np.log10(1 + np.maximum(v, 0)) if self.log else v
            h = np.histogram(np.clip(t, self.edges[0], self.edges[-1]), bins=self.edges)[0]
            (self.dropped if dropped else self.kept).__iadd__(h)

    def result(self) -> dict:
        edges = (10 ** self.edges - 1) if self.log else self.edges
        return {"edges": [round(float(e), 6) for e in edges], "scale": "log1p" if self.log else "linear",
                "kept": self.kept.tolist(), "dropped": self.dropped.tolist(),
                "min": self.lo if np.isfinite(self.lo) else None, "max": self.hi if np.isfinite(self.hi) else None}


def _stage_of(score: str) -> str:
    return score.split("__", 1)[0]


def _counts(table: pa.Table, keys: list[str], sums: tuple[str, ...] = ()) -> list[dict]:
    aggs = [([], "count_all")] + [(s, "sum") for s in sums]
    return table.group_by(keys).aggregate(aggs).to_pylist()


def collect(run_dir: str, samples: int = 3, eval_samples: int = 30, clusters: int = 8) -> dict:
    """Everything the report shows about one run (JSON-able): pass 1 reads numbers only (histogram
    ranges, dedup cluster sizes), then the clusters to show are picked, then pass 2 reads kept and
    rejected rows once each for counts per source, samples and histograms."""
    m = load_manifest(run_dir)
    kept_paths, rej_paths, q_paths = (_paths(run_dir, m, k) for k in ("kept", "rejects", "quarantine"))
    seed = str(m.get("config", {}).get("run", {}).get("seed", 0))
    kept_schema = pq.ParquetFile(store.source(kept_paths[0])).schema_arrow if kept_paths else pa.schema([])
    kept_scores = [f.name for f in kept_schema if _is_score(f)]
    hists, dup_sizes = _numbers(kept_paths, kept_scores, rej_paths)
    picked = _pick_clusters(dup_sizes, seed, clusters)
    acc = _Pass2(seed, {r for reps in picked.values() for r in reps}, hists, samples)
    evals, cleaned = _kept_pass(acc, kept_paths, kept_schema, kept_scores, eval_samples)
    _rejects_pass(acc, rej_paths)
    return {
        "run_dir": staging.absolute(run_dir),
        "name": m.get("config", {}).get("run", {}).get("name") or staging.absolute(run_dir).rstrip("/").rsplit("/", 1)[-1],
        "manifest": m, "sources": dict(sorted(acc.by_source.items())),
        "reasons_from_data": {f"{st}\x1f{r}": n for (st, r), n in sorted(acc.recount.items())},
        "reason_samples": {f"{st}\x1f{r}": tk.values() for (st, r), tk in sorted(acc.reason_samples.items())},
        "scores": {c: h.result() for c, h in sorted(hists.items())},
        "clean_samples": [dict(s, before=_raw_text(m, s["meta"])) for s in cleaned.values()],
        "eval_samples": evals.values(),
        "dedup": {st: _dedup_summary(sizes, picked[st], acc.rep_text, acc.members) for st, sizes in sorted(dup_sizes.items())},
        "quarantine": _quarantine(q_paths, samples, seed),
    }


def _numbers(kept_paths: list[str], kept_scores: list[str], rej_paths: list[str]) -> tuple[dict, dict]:
    """Pass 1: score ranges (frozen histogram bins) and dedup stage → representative → removed members."""
    hists: dict[str, _Hist] = {}
    for b in _batches(kept_paths, kept_scores):
        for c in kept_scores:
            hists.setdefault(c, _Hist()).see(b.column(c).to_numpy(zero_copy_only=False).astype(np.float64))
    dup_sizes: dict[str, dict[str, int]] = {}
    for b in _batches(rej_paths, ["stage", "scores", "duplicate_of"]):
        k, v, _ = _flat_scores(b)
        if len(k):
            t = pa.table({"k": k, "v": pc.cast(v, pa.float64())})
            for r in t.group_by("k").aggregate([("v", "min"), ("v", "max")]).to_pylist():
                hists.setdefault(r["k"], _Hist()).see(np.array([r["v_min"], r["v_max"]], np.float64))
        t = pa.table({"s": b.column("stage"), "d": b.column("duplicate_of")}).filter(pc.is_valid(b.column("duplicate_of")))
        for r in _counts(t, ["s", "d"]):
            per = dup_sizes.setdefault(r["s"], {})
            per[r["d"]] = per.get(r["d"], 0) + r["count_all"]
    for h in hists.values():
        h.freeze()
    return hists, dup_sizes


def _pick_clusters(dup_sizes: dict, seed: str, clusters: int) -> dict[str, list[str]]:
    """Per dedup stage the largest clusters, then a deterministic random few (blake2b of the cluster id)."""
    picked: dict[str, list[str]] = {}
    for st, sizes in dup_sizes.items():
        largest = sorted(sizes, key=lambda r: (-sizes[r], r))[: clusters // 2]
        rest = [r for r in sizes if r not in set(largest)]
        keys = sample_keys(rest, f"cluster:{seed}")
        picked[st] = largest + [rest[i] for i in np.argsort(keys, kind="stable")[: clusters - len(largest)]]
    return picked


class _Pass2:
    """What pass 2 accumulates over kept and rejected rows."""

    def __init__(self, seed: str, wanted: set[str], hists: dict, samples: int):
        self.seed, self.wanted, self.hists, self.samples = seed, wanted, hists, samples
        self.wanted_arr = pa.array(sorted(wanted), pa.string())
        self.rep_text: dict[str, str] = {}
        self.members: dict[str, list] = {r: [] for r in wanted}
        self.by_source: dict[str, dict] = {}
        self.reason_samples: dict[tuple[str, str], TopK] = {}
        self.recount: dict[tuple[str, str], int] = {}

    def src(self, s: str) -> dict:
        return self.by_source.setdefault(s, {"kept": 0, "kept_chars": 0, "dropped": {}, "dropped_preview_chars": 0})


def _kept_pass(acc: _Pass2, kept_paths: list[str], kept_schema: pa.Schema, kept_scores: list[str], eval_samples: int):
    """Kept rows: counts per source, histograms, human-evaluation and clean samples, representatives' texts."""
    seed = acc.seed
    has_clean = "clean__chars_removed" in kept_schema.names
    evals, cleaned = TopK(eval_samples), TopK(acc.samples * 2)
    kept_cols = ["id", "source", "text"] + kept_scores + (["meta"] if has_clean else [])
    for b in _batches(kept_paths, kept_cols):
        lens = pc.utf8_length(b.column("text"))
        for r in _counts(pa.table({"s": b.column("source"), "n": lens}), ["s"], ("n",)):
            e = acc.src(r["s"])
            e["kept"] += r["count_all"]
            e["kept_chars"] += r["n_sum"] or 0
        for c in kept_scores:
            acc.hists[c].add(b.column(c).to_numpy(zero_copy_only=False).astype(np.float64), dropped=False)
        ids = b.column("id").to_pylist()
        texts = b.column("text")
        sources = b.column("source")
        keys = sample_keys(ids, f"human-eval:{seed}")
        evals.offer(keys, ids, np.arange(len(ids)), lambda i: {
            "id": ids[i], "source": sources[i].as_py(), "text": texts[i].as_py()[:TEXT_CHARS], "chars": lens[i].as_py()})
        if has_clean:
            changed = (b.column("clean__chars_removed").to_numpy(zero_copy_only=False) > 0)
            ck = sample_keys(ids, f"clean:{seed}")
            cols = {c: b.column(c) for c in ("clean__chars_removed", "clean__dup_paragraphs", "clean__rule_hits") if c in b.schema.names}
            cleaned.offer(ck, ids, np.flatnonzero(changed), lambda i: {
                "id": ids[i], "source": sources[i].as_py(), "after": texts[i].as_py()[:TEXT_CHARS],
                "meta": dict(b.column("meta")[i].as_py() or []), **{c: v[i].as_py() for c, v in cols.items()}})
        if acc.wanted:
            hit = pc.is_in(b.column("id"), value_set=acc.wanted_arr)
            for i in np.flatnonzero(hit.to_numpy(zero_copy_only=False)):
                acc.rep_text[ids[i]] = texts[i].as_py()[:TEXT_CHARS]
    return evals, cleaned


def _rejects_pass(acc: _Pass2, rej_paths: list[str]) -> None:
    """Rejected rows: drops per source and reason, histograms, reason samples, cluster members."""
    for b in _batches(rej_paths, ["id", "source", "stage", "reason", "scores", "duplicate_of", "text_preview"]):
        plen = pc.utf8_length(b.column("text_preview"))
        t = pa.table({"s": b.column("source"), "st": b.column("stage"), "r": b.column("reason"), "n": plen})
        for r in _counts(t, ["s", "st", "r"], ("n",)):
            e = acc.src(r["s"])
            e["dropped"][r["st"]] = e["dropped"].get(r["st"], 0) + r["count_all"]
            e["dropped_preview_chars"] += r["n_sum"] or 0
            acc.recount[(r["st"], r["r"])] = acc.recount.get((r["st"], r["r"]), 0) + r["count_all"]
        # histograms: an entry counts as dropped only for the stage that wrote it and dropped the row
        k, v, parents = _flat_scores(b)
        if len(k):
            row_stage = pc.take(b.column("stage"), pa.array(parents))
            kd = pc.dictionary_encode(k)
            vals = pc.cast(v, pa.float64()).to_numpy(zero_copy_only=False)
            codes = kd.indices.to_numpy()
            for code, name in enumerate(kd.dictionary.to_pylist()):
                sel = codes == code
                dropped = pc.equal(row_stage.filter(pa.array(sel)), _stage_of(name)).to_numpy(zero_copy_only=False)
                acc.hists[name].add(vals[sel][dropped], dropped=True)
                acc.hists[name].add(vals[sel][~dropped], dropped=False)
        ids = b.column("id").to_pylist()
        stages, reasons = b.column("stage"), b.column("reason")
        keys = sample_keys(ids, f"reason:{acc.seed}")
        enc = pc.dictionary_encode(pc.binary_join_element_wise(stages, reasons, "\x1f"))
        codes = enc.indices.to_numpy()
        for code, sr in enumerate(enc.dictionary.to_pylist()):
            st, reason = sr.split("\x1f", 1)
            acc.reason_samples.setdefault((st, reason), TopK(acc.samples)).offer(keys, ids, np.flatnonzero(codes == code), lambda i: {
                "id": ids[i], "source": b.column("source")[i].as_py(), "preview": b.column("text_preview")[i].as_py(),
                "preview_truncated": plen[i].as_py() >= PREVIEW_CHARS,
                "scores": {kk: vv for kk, vv in (b.column("scores")[i].as_py() or [])},
                "duplicate_of": b.column("duplicate_of")[i].as_py()})
        if acc.wanted:
            dup = b.column("duplicate_of")
            is_member = pc.fill_null(pc.is_in(dup, value_set=acc.wanted_arr), False).to_numpy(zero_copy_only=False)
            is_rep = pc.is_in(b.column("id"), value_set=acc.wanted_arr).to_numpy(zero_copy_only=False)
            for i in np.flatnonzero(is_member):
                lst = acc.members[dup[i].as_py()]
                if len(lst) < CLUSTER_MEMBERS:
                    lst.append({"id": ids[i], "source": b.column("source")[i].as_py(), "preview": b.column("text_preview")[i].as_py()})
            for i in np.flatnonzero(is_rep):  # a representative removed by a later stage: its preview only
                acc.rep_text.setdefault(ids[i], b.column("text_preview")[i].as_py())


def _dedup_summary(sizes: dict[str, int], picked: list[str], rep_text: dict, members: dict) -> dict:
    hist: dict[int, int] = {}
    for n in sizes.values():
        hist[n + 1] = hist.get(n + 1, 0) + 1
    return {"clusters": len(sizes), "removed": sum(sizes.values()), "size_histogram": dict(sorted(hist.items())),
            "sample_clusters": [{"representative": r, "size": sizes[r] + 1, "text": rep_text.get(r), "members": members[r]}
                                for r in picked]}


def _quarantine(paths: list[str], samples: int, seed: str) -> dict:
    counts: dict[str, int] = {}
    picks: dict[str, TopK] = {}
    for b in _batches(paths, ["stage", "file", "line", "reason", "detail"]):
        rows = b.to_pylist()  # no `raw` column: quarantine rows are small
        ids = [f"{r['file']}\x1f{r['line']}\x1f{r['reason']}" for r in rows]
        keys = sample_keys(ids, f"quarantine:{seed}")
        groups: dict[str, list[int]] = {}
        for i, r in enumerate(rows):
            groups.setdefault(f"{r['stage']}\x1f{r['reason']}", []).append(i)
        for k, idx in groups.items():
            counts[k] = counts.get(k, 0) + len(idx)
            picks.setdefault(k, TopK(samples)).offer(keys, ids, np.array(idx), lambda j: rows[j])
    return {"counts": dict(sorted(counts.items())), "samples": {k: v.values() for k, v in sorted(picks.items())}}


def _glob(pattern: str) -> list[str]:
    return fs.glob(pattern) if fs.is_remote(pattern) else glob.glob(pattern, recursive=True)


def _raw_text(m: dict, meta: dict) -> str | None:
    """The document as it was read, from the input file at its recorded byte offset (plain JSONL and
    txt only, and only while the file still has the size the manifest recorded); None otherwise."""
    rel, off = meta.get("_cf_file"), meta.get("_cf_offset")
    if rel is None or off is None:
        return None
    sizes = {i["path"]: i["size"] for i in m.get("inputs", [])}
    blocks = m.get("config", {}).get("input", [])
    for blk in blocks if isinstance(blocks, list) else [blocks]:
        files = sorted({p for pat in blk.get("paths", []) for p in _glob(pat)})
        if not files:
            continue
        root = blk.get("root") or "/".join(os.path.commonprefix([p.rsplit("/", 1)[0].split("/") for p in files]))
        path = fs.join(root, rel)
        if path not in files or fs.size_mtime(path)[0] != sizes.get(rel):
            continue
        with fs.open_read(path) as f:
            if f.read(4)[:2] in (b"\x1f\x8b", b"\x28\xb5"):
                return None  # compressed: the offset is into the decompressed stream
            if blk.get("format") == "txt":
                f.seek(0)
                return f.read().decode("utf-8", "replace")[:TEXT_CHARS]
            if blk.get("format") != "jsonl":
                return None
            f.seek(int(off))
            try:
                rec = json.loads(f.readline())
            except ValueError:
                return None
            text = rec.get(blk.get("text_field") or "text") if isinstance(rec, dict) else None
            return text[:TEXT_CHARS] if isinstance(text, str) else None
    return None
