"""`corpusforge audit RUN_DIR`: recompute every count from the persisted files and compare."""

from __future__ import annotations

from collections import Counter

import pyarrow.compute as pc
import pyarrow.parquet as pq

from corpusforge.io import fs, store
from corpusforge.io.writers import TMP_MARK
from corpusforge.rules_files import sha256_file
from corpusforge.runner import OUTPUT_DIRS
from corpusforge.schema import INGEST


def _group(paths: list[str]) -> Counter:
    c: Counter = Counter()
    for p in paths:
        t = pq.read_table(store.source(p), columns=["stage", "reason"])
        for row in t.group_by(["stage", "reason"]).aggregate([([], "count_all")]).to_pylist():
            c[(row["stage"], row["reason"])] += row["count_all"]
    return c


def audit(run_dir: str) -> list[str]:
    """Returns a list of problems (empty = the run is consistent)."""
    problems = []
    mpath = fs.join(run_dir, "manifest.json")
    if not store.exists(mpath):
        return [f"{mpath}: missing (the run did not finish)"]
    m = store.read_json(mpath)
    listed = {fi["path"]: fi for fi in m["files"]}
    for d in OUTPUT_DIRS:
        dpath = fs.join(run_dir, d)
        for name in sorted(store.listdir(dpath)) if store.isdir(dpath) else []:
            rel = f"{d}/{name}"
            if name.startswith(TMP_MARK):
                problems.append(f"{rel}: leftover temp file")
            elif rel not in listed:
                problems.append(f"{rel}: not listed in the manifest")
    for rel, fi in listed.items():
        p = fs.join(run_dir, rel)
        if not store.isfile(p):
            problems.append(f"{rel}: listed in the manifest but missing")
            continue
        if sha256_file(p) != fi["sha256"]:
            problems.append(f"{rel}: sha256 differs from the manifest")
        try:
            rows = pq.ParquetFile(store.source(p)).metadata.num_rows
        except Exception:  # whatever it holds now is not Parquet
            problems.append(f"{rel}: not a Parquet file")
            continue
        if rows != fi["rows"]:
            problems.append(f"{rel}: row count differs from the manifest")
    if problems:
        return problems

    paths = {k: [fs.join(run_dir, p) for p, fi in listed.items() if fi["kind"] == k] for k in OUTPUT_DIRS}
    kept_rows = sum(pq.ParquetFile(store.source(p)).metadata.num_rows for p in paths["kept"])
    rejected = _group(paths["rejects"])
    quarantined = _group(paths["quarantine"])
    # duplicate ids in kept output would mean a part was committed twice
    ids = set()
    for p in paths["kept"]:
        col = pq.read_table(store.source(p), columns=["id"]).column("id")
        if pc.count_distinct(col).as_py() != len(col):
            problems.append(f"{p[len(run_dir):].lstrip('/')}: duplicate ids")
        ids.update(col.to_pylist())
    if len(ids) != kept_rows:
        problems.append("duplicate ids across kept parts")

    stages = m["stages"]
    problems += _check_duplicate_of(paths["rejects"], ids, [st["name"] for st in stages])
    # Recompute the chain from the data: ingest → stage 1 → … → kept files.
    flow = kept_rows + sum(rejected.values()) + sum(v for (s, _), v in quarantined.items() if s != INGEST)
    expect = {}
    ingest_q = Counter({r: v for (s, r), v in quarantined.items() if s == INGEST})
    expect[INGEST] = {"in": flow + sum(ingest_q.values()), "kept": flow, "dropped": {}, "quarantined": dict(ingest_q)}
    n_in = flow
    for st in stages[1:]:
        dropped = {r: v for (s, r), v in rejected.items() if s == st["name"]}
        q = {r: v for (s, r), v in quarantined.items() if s == st["name"]}
        kept = n_in - sum(dropped.values()) - sum(q.values())
        expect[st["name"]] = {"in": n_in, "kept": kept, "dropped": dropped, "quarantined": q}
        n_in = kept
    if n_in != kept_rows:
        problems.append(f"kept files hold {kept_rows} rows but the stage chain ends at {n_in}")
    for st in stages:
        e = expect[st["name"]]
        got = {k: st[k] for k in ("in", "kept", "dropped", "quarantined")}
        if got != {k: e[k] if not isinstance(e[k], dict) else dict(sorted(e[k].items())) for k in got}:
            problems.append(f"stage {st['name']}: manifest {got} != recomputed {e}")
        if st["in"] != st["kept"] + sum(st["dropped"].values()) + sum(st["quarantined"].values()):
            problems.append(f"stage {st['name']}: in != kept + dropped + quarantined")
    if m["totals"]["kept"] != kept_rows:
        problems.append(f"totals.kept {m['totals']['kept']} != {kept_rows} rows in kept files")
    return problems


def _check_duplicate_of(reject_paths: list[str], kept_ids: set, stage_names: list[str]) -> list[str]:
    """A dedup reject's `duplicate_of` must name a document that survived that stage: kept, or dropped by a later stage."""
    order = {n: i for i, n in enumerate(stage_names)}
    dropped_at: dict = {}
    dups = []
    for p in reject_paths:
        t = pq.read_table(store.source(p), columns=["id", "stage", "duplicate_of"])
        for i, s, d in zip(*(t.column(c).to_pylist() for c in ("id", "stage", "duplicate_of"))):
            dropped_at[i] = order.get(s, -1)
            if d is not None:
                dups.append((i, order.get(s, -1), d))
    bad = [(i, d) for i, s, d in dups if d == i or not (d in kept_ids or dropped_at.get(d, -1) > s)]
    if bad:
        return [f"{len(bad)} rejects have a duplicate_of that did not survive their stage (e.g. {bad[0][0]} -> {bad[0][1]})"]
    return []


def summary(run_dir: str) -> str:
    """The line printed for a run that audits clean."""
    m = store.read_json(fs.join(run_dir, "manifest.json"))
    return (f"audit ok: {len(m['stages'])} stages balance, {m['totals']['kept']} kept of {m['totals']['records']} records, "
            f"{len(m['files'])} files match the manifest")
