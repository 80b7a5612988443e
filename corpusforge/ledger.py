"""Per-stage counts. Invariant for every stage: in == kept + Σ dropped + Σ quarantined."""

from __future__ import annotations

from collections import Counter


def new_counts() -> dict:
    return {"in": 0, "kept": 0, "dropped": Counter(), "quarantined": Counter()}


def merge(into: dict, other: dict) -> None:
    into["in"] += other["in"]
    into["kept"] += other["kept"]
    into["dropped"].update(other["dropped"])
    into["quarantined"].update(other["quarantined"])
    if "fixes" in other:
        into.setdefault("fixes", Counter()).update(other["fixes"])


def to_json(c: dict) -> dict:
    out = {"in": c["in"], "kept": c["kept"], "dropped": dict(sorted(c["dropped"].items())),
           "quarantined": dict(sorted(c["quarantined"].items()))}
    if "fixes" in c:
        out["fixes"] = dict(sorted(c["fixes"].items()))
    return out


def from_json(d: dict) -> dict:
    c = {"in": d["in"], "kept": d["kept"], "dropped": Counter(d["dropped"]), "quarantined": Counter(d["quarantined"])}
    if "fixes" in d:
        c["fixes"] = Counter(d["fixes"])
    return c


def balanced(c: dict) -> bool:
    return c["in"] == c["kept"] + sum(c["dropped"].values()) + sum(c["quarantined"].values())
