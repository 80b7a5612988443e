"""GPT-3 Appendix A style quality scorer: hashed unigram+bigram features and logistic regression
(full-batch Adam in numpy: deterministic, no extra dependency), exported as a small .npy that any
engine scores with numpy. Keep rule: keep iff pareto(α) > 1 − score, with a per-document draw."""

from __future__ import annotations

import hashlib
import os

import numpy as np

from corpusforge.errors import CorpusforgeError
from corpusforge.models.common import auc, check_data, is_heldout, write_sidecar
from corpusforge.models.featurize import MAX_UNITS, hashed_matrix

KIND = "quality_lr"
DIM = 1 << 18  # 262,144 buckets: ~1 MB of float32 weights; bigram collisions are rare at this size
HYPER = {"dim": DIM, "l2": 1e-4, "lr": 0.05, "steps": 300}


def _margin(w, b, ptr, ind, dat):
    # Per-document sums (reduceat), not differences of one running cumsum: a document's score must
    # not depend on which batch or position it arrives in.
    out = np.zeros(len(ptr) - 1)
    nz = np.diff(ptr) > 0
    if nz.any():
        out[nz] = np.add.reduceat(w[ind] * dat, ptr[:-1][nz])
    return out + b


def fit(ptr, ind, dat, y, dim, l2, lr, steps):
    w = np.zeros(dim); b = 0.0
    m1 = np.zeros(dim + 1); m2 = np.zeros(dim + 1)
    lengths = np.diff(ptr); n = len(y)
    for t in range(1, steps + 1):
        p = 1.0 / (1.0 + np.exp(-_margin(w, b, ptr, ind, dat)))
        err = (p - y) / n
        g = np.bincount(ind, weights=dat * np.repeat(err, lengths), minlength=dim) + l2 * w
        g = np.append(g, err.sum())
        if not np.all(np.isfinite(g)):
            raise CorpusforgeError("degenerate_training_data", "logistic regression diverged (non-finite gradient)")
        m1 = 0.9 * m1 + 0.1 * g; m2 = 0.999 * m2 + 0.001 * g * g
        step = lr * (m1 / (1 - 0.9**t)) / (np.sqrt(m2 / (1 - 0.999**t)) + 1e-8)
        w -= step[:-1]; b -= step[-1]
    return w, b


class QualityModel:
    def __init__(self, path: str, max_units: int = MAX_UNITS):
        wb = np.load(path, allow_pickle=False).astype(np.float64)
        self.w, self.b, self.max_units = wb[:-1], float(wb[-1]), max_units
        self.dim = len(self.w)

    def score(self, texts, ids=None) -> np.ndarray:
        ptr, ind, dat = hashed_matrix(texts, self.dim, self.max_units, ids)
        return 1.0 / (1.0 + np.exp(-_margin(self.w, self.b, ptr, ind, dat)))


def train(hq: list[str], lq: list[str], out: str, *, holdout: float = 0.1, hyper: dict | None = None,
          info: dict | None = None, max_units: int = MAX_UNITS) -> dict:
    check_data(hq, lq)
    hp = {**HYPER, **(hyper or {})}
    rows = [(1.0, t) for t in hq] + [(0.0, t) for t in lq]
    tr = [r for r in rows if not is_heldout(r[1], holdout)]
    te = [r for r in rows if is_heldout(r[1], holdout)]
    if len({y for y, _ in tr}) < 2:
        raise CorpusforgeError("degenerate_training_data", "training split holds only one class")
    ptr, ind, dat = hashed_matrix([t for _, t in tr], hp["dim"], max_units)
    w, b = fit(ptr, ind, dat, np.array([y for y, _ in tr]), hp["dim"], hp["l2"], hp["lr"], hp["steps"])
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    # One .npy (weights, then the bias as the last element): np.savez zips with the current time,
    # which would make retrained files differ byte-wise.
    with open(out, "wb") as f:
        np.save(f, np.append(w, b).astype(np.float32), allow_pickle=False)
    metrics = {}
    m = QualityModel(out, max_units)
    if te and len({y for y, _ in te}) == 2:
        s = m.score([t for _, t in te])
        metrics["heldout_auc"] = round(auc(np.array([y == 1.0 for y, _ in te]), s), 4)
        metrics["n_heldout"] = len(te)
    write_sidecar(out, KIND, {"hyperparameters": hp, "holdout": holdout, "max_units": max_units,
                              "n_train": len(tr), "metrics": metrics, **(info or {})})
    return metrics


def uniform(seed: int, ids) -> np.ndarray:
    """One uniform in (0, 1) per document from blake2b(seed, id): engine-, worker- and rerun-independent."""
    out = np.empty(len(ids))
    for i, d in enumerate(ids):
        h = int.from_bytes(hashlib.blake2b(f"{seed}:{d}".encode("utf-8"), digest_size=8).digest(), "big")
        out[i] = ((h >> 11) + 0.5) / 2**53
    return out


def pareto_draw(u: np.ndarray, alpha: float) -> np.ndarray:
    """numpy's `pareto(α)` (Lomax: P(X > x) = (1 + x)^−α) by inverse CDF of the per-document uniform."""
    return (1.0 - u) ** (-1.0 / alpha) - 1.0


def keep_probability(score, alpha: float):
    """P(pareto(α) > 1 − s) = (2 − s)^−α: ≈ 0.026 at s = 0.5, 0.42 at s = 0.9 for α = 9."""
    return (2.0 - np.asarray(score, dtype=np.float64)) ** (-alpha)


def keep_curve(alpha: float, points=(0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0)) -> list:
    return [(s, float(keep_probability(s, alpha))) for s in points]
