"""Dedup report data read back from a finished run's persisted tables (never from counters)."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from corpusforge.io import fs, store


def report(run_dir: str, samples: int = 3, stages: tuple[str, ...] = ("dedup_exact", "dedup_minhash")) -> dict:
    """Dedup report data from the persisted tables of a finished run (never from counters):
    per stage the cluster-size histogram, duplicates per source, and sample clusters with their
    members' texts (the representative's full text when it was kept, previews for removed members)."""
    files = store.read_json(fs.join(run_dir, "manifest.json"))["files"]
    rej = [pq.read_table(store.source(fs.join(run_dir, fi["path"])), columns=["id", "source", "stage", "duplicate_of", "text_preview"])
           for fi in files if fi["kind"] == "rejects"]
    rejects = pa.concat_tables(rej) if rej else None
    out = {}
    for st in stages:
        if rejects is None:
            break
        t = rejects.filter(pc.equal(rejects.column("stage"), st))
        if not t.num_rows:
            continue
        t = t.take(pc.sort_indices(t, [("duplicate_of", "ascending"), ("id", "ascending")]))
        sizes = t.group_by("duplicate_of").aggregate([([], "count_all")])
        hist: dict[int, int] = {}
        for n in sizes.column("count_all").to_pylist():
            hist[n + 1] = hist.get(n + 1, 0) + 1
        per_source = {r["source"]: r["count_all"] for r in t.group_by("source").aggregate([([], "count_all")]).to_pylist()}
        top = sorted(zip(sizes.column("duplicate_of").to_pylist(), sizes.column("count_all").to_pylist()),
                     key=lambda x: (-x[1], x[0]))[:samples]
        reps = {r for r, _ in top}
        rep_text = {}
        for fi in files:
            if fi["kind"] in ("kept", "rejects") and len(rep_text) < len(reps):
                col = "text" if fi["kind"] == "kept" else "text_preview"
                kt = pq.read_table(store.source(fs.join(run_dir, fi["path"])), columns=["id", col])
                kt = kt.filter(pc.is_in(kt.column("id"), pa.array(sorted(reps), pa.string())))
                rep_text.update(zip(kt.column("id").to_pylist(), kt.column(col).to_pylist()))
        clusters = []
        for rep, n in top:
            m = t.filter(pc.equal(t.column("duplicate_of"), rep))
            clusters.append({"cluster_id": rep, "size": n + 1, "representative": {"id": rep, "text": rep_text.get(rep)},
                             "members": [{"id": i, "source": s, "text_preview": p} for i, s, p in
                                         zip(*(m.column(c).to_pylist() for c in ("id", "source", "text_preview")))]})
        out[st] = {"removed": t.num_rows, "clusters": len(sizes), "cluster_size_histogram": dict(sorted(hist.items())),
                   "duplicates_per_source": dict(sorted(per_source.items())), "sample_clusters": clusters}
    return out
