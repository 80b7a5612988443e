"""Shared by both trainers: JSONL loading, a hash-keyed held-out split, metrics, sidecar files."""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np

from corpusforge.errors import CorpusforgeError
from corpusforge.rules_files import sha256_file


def read_texts(path: str, text_field: str = "text") -> list[str]:
    """Texts of a JSONL file (one record a line) or of a plain .txt file (one document a line); a local
    path or a URI. A line that is not JSON is a one-line error naming the file and line."""
    from corpusforge.io.staging import local_file

    out, jsonl = [], path.endswith((".jsonl", ".json"))
    with local_file(path) as local, open(local, encoding="utf-8") as f:
        for no, ln in enumerate(f, 1):
            if not ln.strip():
                continue
            try:
                t = json.loads(ln).get(text_field) if jsonl else ln.rstrip("\n")
            except (json.JSONDecodeError, AttributeError) as e:
                raise CorpusforgeError("bad_input", f"{path}:{no}: not a JSON object ({e})") from None
            if isinstance(t, str) and t.strip():
                out.append(t)
    return out


def is_heldout(text: str, frac: float, seed: int = 0) -> bool:
    """Deterministic split keyed by the text itself (blake2b), so reruns pick the same rows."""
    h = int.from_bytes(hashlib.blake2b(f"{seed}:{text}".encode("utf-8"), digest_size=8).digest(), "big")
    return (h / 2**64) < frac


def check_data(pos: list[str], neg: list[str], min_per_class: int = 20) -> None:
    for name, xs in (("positive", pos), ("negative", neg)):
        if len(xs) < min_per_class:
            raise CorpusforgeError("degenerate_training_data",
                                   f"{len(xs)} {name} examples; need at least {min_per_class} per class")
    if len(set(pos) | set(neg)) < len(pos) + len(neg) and not (set(pos) - set(neg)):
        raise CorpusforgeError("degenerate_training_data", "positive and negative examples are identical")


def prf(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    tp = int(np.sum(y_true & y_pred)); fp = int(np.sum(~y_true & y_pred)); fn = int(np.sum(y_true & ~y_pred))
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return {"precision": round(p, 4), "recall": round(r, 4), "f1": round(2 * p * r / (p + r) if p + r else 0.0, 4),
            "n": int(len(y_true))}


def auc(y_true: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC by the rank-sum formula (ties get average ranks)."""
    order = np.argsort(score, kind="mergesort")
    ranks = np.empty(len(score)); s = score[order]
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and s[j + 1] == s[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    npos = int(y_true.sum()); nneg = len(y_true) - npos
    return float((ranks[y_true].sum() - npos * (npos + 1) / 2) / (npos * nneg))


def write_sidecar(model_path: str, kind: str, info: dict) -> str:
    side = model_path + ".json"
    info = {"kind": kind, "model_sha256": sha256_file(model_path), **info}
    with open(side, "w", encoding="utf-8") as f:
        json.dump(info, f, ensure_ascii=False, indent=2, sort_keys=True)
        f.write("\n")
    return side


def check_sidecar(model_path: str, kind: str) -> dict:
    """Model file + its sidecar must exist, be of `kind`, and match by sha256: fail before processing."""
    side = model_path + ".json"
    for p in (model_path, side):
        if not os.path.isfile(p):
            raise CorpusforgeError("missing_model", f"{p}: model file not found")
    with open(side, encoding="utf-8") as f:
        info = json.load(f)
    if info.get("kind") != kind:
        raise CorpusforgeError("model_mismatch", f"{model_path}: a {info.get('kind')!r} model, not {kind!r}")
    if info.get("model_sha256") != sha256_file(model_path):
        raise CorpusforgeError("model_mismatch", f"{model_path}: sha256 differs from its sidecar {side}")
    return info


def data_hashes(paths: list[str]) -> dict:
    return {os.path.basename(p): sha256_file(p) for p in paths}


def max_units(info: dict) -> int:
    """How much of a document the model reads (sidecars before the unit-capped featurizer say max_chars)."""
    from corpusforge.models.featurize import MAX_UNITS

    return int(info.get("max_units", info.get("max_chars", MAX_UNITS)))


def sidecar_threshold(info: dict) -> float:
    """The threshold chosen for the model (on validation, by the recipe); sidecars from before say none: 0.5."""
    return float(info.get("threshold", 0.5))
