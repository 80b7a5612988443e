"""Human evaluation (PanGu-α §3: reviewers rated fluency and flagged ads, repeated short sentences
and sensitive words): ratings of deterministic samples of kept documents, stored in
RUN_DIR/human_eval.json (atomic rewrite; outside kept/rejects/quarantine, so the audit ignores it)."""

from __future__ import annotations

import math
import threading

from corpusforge.errors import CorpusforgeError
from corpusforge.io import fs, store
from corpusforge.io.writers import write_json

FILE = "human_eval.json"
FLAGS = {"ads": "ads / promotion", "repeated": "repeated short sentences", "sensitive": "sensitive words",
         "garbled": "garbled / not fluent Chinese"}
LOW_FLUENCY = 2  # fluency 1–5; at or below this a rating counts as low quality
# Sampling rules a rating was given under: the run's own kept sample, or (with `report serve A B --compare`)
# documents this run kept and the other run did not. Ratings before rules existed are kept samples.
RULES = {"kept": "kept sample (smallest blake2b(seed, id))", "flipped": "kept here, not kept by the other run"}
_lock = threading.Lock()


def load(run_dir: str) -> dict:
    path = fs.join(run_dir, FILE)
    if not store.exists(path):
        return {"ratings": {}}
    try:
        d = store.read_json(path)
    except ValueError as e:
        raise CorpusforgeError("bad_ratings", f"{path}: {e}") from None
    return d if isinstance(d, dict) and isinstance(d.get("ratings"), dict) else {"ratings": {}}


def save_rating(run_dir: str, doc_id: str, reviewer: str, fluency: int, flags: list[str], rule: str = "kept") -> dict:
    """One rating per (document, reviewer); a new one replaces the old. Read-modify-write under a
    lock (the server is threaded), written atomically."""
    if not 1 <= fluency <= 5:
        raise CorpusforgeError("bad_rating", "fluency must be 1–5")
    bad = sorted(set(flags) - set(FLAGS))
    if bad:
        raise CorpusforgeError("bad_rating", f"unknown flags {bad}")
    if rule not in RULES:
        raise CorpusforgeError("bad_rating", f"unknown sampling rule {rule!r}")
    with _lock:
        d = load(run_dir)
        d["ratings"].setdefault(doc_id, {})[reviewer] = {"fluency": fluency, "flags": sorted(set(flags)), "rule": rule}
        write_json(fs.join(run_dir, FILE), d)
    return d


def wilson(k: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion k/n (sound for small n and for k = 0 or n)."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    den = 1 + z * z / n
    mid = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return max(0.0, mid - half), min(1.0, mid + half)


def is_low(r: dict) -> bool:
    return bool(r.get("flags")) or int(r.get("fluency", 5)) <= LOW_FLUENCY


def mean_ci(xs: list[int], z: float = 1.959964) -> tuple[float | None, float | None, float | None]:
    """Mean and its normal-approximation 95 % interval (sample standard deviation; none below 2 ratings)."""
    n = len(xs)
    if not n:
        return None, None, None
    m = sum(xs) / n
    if n < 2:
        return m, None, None
    half = z * math.sqrt(sum((x - m) ** 2 for x in xs) / (n - 1) / n)
    return m, m - half, m + half


def aggregate(d: dict, rule: str | None = None) -> dict:
    """Ratings of every rule, or of one (`rule`)."""
    per_doc = {doc: {rv: r for rv, r in per.items() if rule is None or r.get("rule", "kept") == rule} for doc, per in d["ratings"].items()}
    per_doc = {doc: per for doc, per in per_doc.items() if per}
    ratings = [r for per in per_doc.values() for r in per.values()]
    n, k = len(ratings), sum(is_low(r) for r in ratings)
    lo, hi = wilson(k, n)
    mean, flo, fhi = mean_ci([int(r["fluency"]) for r in ratings])
    return {"ratings": n, "documents": len(per_doc), "reviewers": len({rv for per in per_doc.values() for rv in per}),
            "low_quality": k, "low_quality_ratio": (k / n) if n else None, "ci95": [lo, hi],
            "mean_fluency": mean, "fluency_ci95": [flo, fhi],
            "flags": {f: sum(f in r.get("flags", []) for r in ratings) for f in FLAGS}}
