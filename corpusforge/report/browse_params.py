"""The document browser's query parameters, checked into filters: one-line 400s, never a traceback."""

from __future__ import annotations

import re

import numpy as np

from corpusforge.errors import CorpusforgeError

PER_PAGE, MAX_PER_PAGE, MAX_PAGE = 50, 500, 10_000_000
FILTERS = ("stage", "reason", "source", "score", "min", "max", "id", "q")
TABLES = {  # filters each table has, its searchable text column, the columns a listed row shows
    "kept": ({"source", "score", "id", "q"}, "text", ["id", "source", "text"]),
    "rejects": ({"stage", "reason", "source", "score", "id", "q"}, "text_preview",
                ["id", "source", "stage", "reason", "duplicate_of", "text_preview"]),
    "quarantine": ({"stage", "reason", "id", "q"}, "raw", ["id", "stage", "file", "line", "byte_offset", "reason", "detail", "raw"]),
}


class BadQuery(CorpusforgeError):
    status = 400

    def __init__(self, message: str):
        super().__init__("bad_query", message)


class NotFound(CorpusforgeError):
    status = 404

    def __init__(self, message: str):
        super().__init__("not_found", message)


def parse_filters(table: str, filters: dict, score_columns) -> dict:
    """The filters of a query, checked (score_columns(): the run's score columns, read only when asked)."""
    if table not in TABLES:
        raise BadQuery(f"unknown table {table!r}: one of kept, rejects, quarantine")
    allowed = TABLES[table][0]
    f = {k: str(v) for k, v in (filters or {}).items() if k in FILTERS and v is not None and str(v) != ""}
    unknown = sorted(set(filters or {}) - set(FILTERS))
    if unknown:
        raise BadQuery(f"unknown filter {unknown[0]!r}: filters are {', '.join(FILTERS)}")
    for k in f:
        if k not in allowed and k not in ("min", "max"):
            raise BadQuery(f"the {table} table has no {k!r} filter (its filters: {', '.join(sorted(allowed))})")
    for k in ("min", "max"):
        if k in f:
            try:
                f[k] = float(f[k])
            except ValueError:
                raise BadQuery(f"{k}={f[k]!r} is not a number") from None
            if f[k] != f[k]:
                raise BadQuery(f"{k} is NaN")
            if "score" not in f:
                raise BadQuery(f"{k} needs a score column (score=<stage>__<name>)")
    if "score" in f:
        known = score_columns()
        if f["score"] not in known and (known or not re.fullmatch(r"\w+__\w+", f["score"])):
            raise BadQuery(f"unknown score column {f['score']!r} (score columns: {', '.join(known) or 'none'})")
        if f.get("min", -np.inf) > f.get("max", np.inf):
            raise BadQuery(f"min {f['min']:g} > max {f['max']:g}")
    return f


def parse_int(v, name: str, lo: int, hi: int) -> int:
    try:
        n = int(v)
    except (TypeError, ValueError):
        raise BadQuery(f"{name}={v!r} is not a whole number") from None
    if not lo <= n <= hi:
        raise BadQuery(f"{name}={n} is out of range ({lo}..{hi})")
    return n
