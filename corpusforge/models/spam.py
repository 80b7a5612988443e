"""fastText supervised spam classifier: train (fixed seed, one thread), evaluate, score.

fastText 0.9.3's Python `predict` breaks under numpy 2 (np.array(copy=False)); scoring goes through
the C++ binding `f.multilinePredict`, which returns plain lists."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

from corpusforge.errors import CorpusforgeError
from corpusforge.models.common import check_data, is_heldout, prf, write_sidecar
from corpusforge.models.featurize import MAX_UNITS, batch_units, fasttext_line, fasttext_lines

KIND = "spam_fasttext"
SPAM, HAM = "__label__spam", "__label__ham"
# Small on purpose: bigrams are explicit tokens (wordNgrams=1, no subwords → no hash buckets), so the
# model size is vocabulary × dim; minCount trims rare bigrams. thread=1 + seed → same bytes every run.
HYPER = {"lr": 0.1, "epoch": 15, "dim": 8, "wordNgrams": 1, "minn": 0, "maxn": 0, "minCount": 5,
         "loss": "softmax", "thread": 1, "seed": 1234}


_FIT = ("import sys, json, fasttext\n"
        "try:\n"
        "    m = fasttext.train_supervised(input=sys.argv[1], verbose=0, **json.loads(sys.argv[3]))\n"
        "except (RuntimeError, ValueError) as e:\n"
        "    sys.exit(f'fastText: {e}')\n"
        "m.save_model(sys.argv[2])\n")


def _order(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest()


def load(path: str):
    import fasttext

    return fasttext.load_model(path)


def spam_prob(model, texts, max_units: int = MAX_UNITS, ids=None) -> np.ndarray:
    """P(spam) per text (list of str or Arrow strings; ids: see featurize.hashed_matrix); the same model
    file and text give the same float on every run and worker. Compiled prediction over the featurizer's
    units when the model is of the kind corpusforge trains (models/fasttext_kernel.py), else fastText's."""
    if not len(texts):
        return np.zeros(0)
    predict = _compiled(model)
    if predict is not None:
        return predict(batch_units(texts, max_units, ids))
    return spam_prob_fasttext(model, fasttext_lines(texts, max_units, ids))


def spam_prob_fasttext(model, lines: list[str]) -> np.ndarray:
    """P(spam) per fastText input line, by fastText's own predict."""
    labels, probs = model.f.multilinePredict(lines, 2, 0.0, "replace")
    if len(labels) != len(lines) or len(probs) != len(lines):  # zip would leave np.empty garbage as scores
        raise CorpusforgeError("classifier_error", f"fastText returned {len(labels)} predictions for {len(lines)} texts")
    out = np.empty(len(lines))
    for i, (ls, ps) in enumerate(zip(labels, probs)):
        d = dict(zip(ls, ps))
        # no label at all: NaN, which the pipeline quarantines (score_invalid), never a keep by accident
        out[i] = d.get(SPAM, 1.0 - d[HAM]) if (SPAM in d or HAM in d) else np.nan
    return out


def _compiled(model):
    """The compiled predictor for this loaded model (built once), or None."""
    if not hasattr(model, "_cf_predict"):
        try:
            from corpusforge.models.fasttext_kernel import Predictor

            model._cf_predict = Predictor(model, SPAM)
        except (ImportError, ValueError, AttributeError):  # no numba, a model kind it does not replicate
            model._cf_predict = None
    return model._cf_predict


def train(ham: list[str], spam: list[str], out: str, *, holdout: float = 0.1, threshold: float = 0.5,
          hyper: dict | None = None, info: dict | None = None, max_units: int = MAX_UNITS) -> dict:
    """Train on all but a hash-chosen `holdout` share; report P/R/F1 (spam = positive class) on it."""
    check_data(ham, spam)
    hp = {**HYPER, **(hyper or {})}
    rows = [(HAM, t) for t in ham] + [(SPAM, t) for t in spam]
    # fastText with one thread reads the file in order: interleave classes by a hash order, or the
    # last class in the file wins the decaying learning rate.
    train_rows = sorted((r for r in rows if not is_heldout(r[1], holdout)), key=lambda r: _order(r[1]))
    test_rows = [r for r in rows if is_heldout(r[1], holdout)]
    if len({lab for lab, _ in train_rows}) < 2:
        raise CorpusforgeError("degenerate_training_data", "training split holds only one class")
    with tempfile.TemporaryDirectory(prefix="cf-spam-") as d:
        path = os.path.join(d, "train.txt")
        with open(path, "w", encoding="utf-8") as f:
            for lab, t in train_rows:
                f.write(f"{lab} {fasttext_line(t, max_units)}\n")
        # Trained in a fresh interpreter: in fastText 0.9.3 a second train_supervised in one process
        # (after an earlier training or predictions) can fail with "Encountered NaN" on data that
        # trains fine on its own; a clean process gives the same bytes every time.
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        res = subprocess.run([sys.executable, "-c", _FIT, path, out, json.dumps(hp)], capture_output=True, text=True)
        if res.returncode != 0:
            msg = (res.stderr.strip().splitlines() or ["no output"])[-1]
            code = "degenerate_training_data" if "NaN" in msg or "empty" in msg.lower() else "training_failed"
            raise CorpusforgeError(code, f"fastText failed: {msg}")
    model = load(out)
    metrics = {}
    if test_rows:
        p = spam_prob(model, [t for _, t in test_rows], max_units)
        metrics["heldout"] = prf(np.array([lab == SPAM for lab, _ in test_rows]), p >= threshold)
    write_sidecar(out, KIND, {"hyperparameters": hp, "holdout": holdout, "threshold": threshold,
                              "max_units": max_units, "n_train": len(train_rows), "metrics": metrics,
                              **(info or {})})
    return metrics
