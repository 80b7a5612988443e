"""Diagnostics of the model filters in a finished run, for the report: per stage, histograms of the
score for documents it kept vs dropped, keep ratio per source, and (quality_lr) the keep curve.
Read from OUT's kept/rejects files only; written wherever the caller says (not into OUT, whose files
the manifest lists)."""

from __future__ import annotations

import glob
import os

import numpy as np
import pyarrow.parquet as pq

from corpusforge.models.quality import keep_curve

COLUMNS = {"spam_fasttext": "spam_fasttext__prob", "quality_lr": "quality_lr__score"}


def _read(out: str, kind: str):
    files = sorted(glob.glob(os.path.join(out, kind, "part-*.parquet")))
    return [pq.read_table(f) for f in files]


def diagnostics(out: str, bins: int = 10, alpha: float = 9.0) -> dict:
    edges = np.linspace(0.0, 1.0, bins + 1)
    kept = _read(out, "kept")
    rejects = _read(out, "rejects")
    res = {}
    for stage, col in COLUMNS.items():
        k_scores, k_src = [], []
        for t in kept:
            if col in t.column_names:
                k_scores += t.column(col).to_pylist(); k_src += t.column("source").to_pylist()
        d_scores, d_src = [], []
        for t in rejects:
            for st, sc, src in zip(t.column("stage").to_pylist(), t.column("scores").to_pylist(), t.column("source").to_pylist()):
                if st == stage:
                    d_scores.append(dict(sc or []).get(col)); d_src.append(src)
        if not k_scores and not d_scores:
            continue
        # documents kept by this stage = the stage's survivors (later stages may still drop them:
        # those are in rejects under their own stage and still passed this one)
        for t in rejects:
            for st, sc, src in zip(t.column("stage").to_pylist(), t.column("scores").to_pylist(), t.column("source").to_pylist()):
                v = dict(sc or []).get(col)
                if st != stage and v is not None:
                    k_scores.append(v); k_src.append(src)
        hist = lambda xs: np.histogram([x for x in xs if x is not None], bins=edges)[0].tolist()  # noqa: E731
        sources = sorted(set(k_src) | set(d_src))
        res[stage] = {
            "bins": edges.round(3).tolist(),
            "kept_hist": hist(k_scores), "dropped_hist": hist(d_scores),
            "keep_ratio_by_source": {s: round(k_src.count(s) / (k_src.count(s) + d_src.count(s)), 4) for s in sources},
        }
        if stage == "quality_lr":
            res[stage]["keep_curve"] = [[s, round(p, 4)] for s, p in keep_curve(alpha)]
    return res
