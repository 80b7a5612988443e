"""Document browser over a finished run's kept, rejects and quarantine tables (`report serve`'s
/browse and /doc), read lazily from Parquet: row groups whose statistics (min/max of stage, reason,
source, id, the score column) rule a filter out are skipped unread; of the others only the filter
columns are read, a few row groups at a time (READ_BUDGET uncompressed bytes, at least one row
group, growing from one so an early page stops early), and the display columns are read only for
the row groups that hold the page's rows. The scan stops once the page plus one row is found; that
row's position is the `start` cursor of the "next" link, so paging on by links never rescans.

Counts come from metadata where they are cheap (unfiltered: the footers; stage / reason only: the
manifest's per-stage counts) or from a scan that ran to the end; otherwise the page says "more".
Filter choices come from the manifest (and the kept footer's score columns), never from a scan.
Footers are cached by (path, sha256 from the manifest): committed files never change."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from contextlib import contextmanager

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from corpusforge.errors import CorpusforgeError
from corpusforge.io import fs, store
from corpusforge.report.browse_params import MAX_PAGE, MAX_PER_PAGE, PER_PAGE, TABLES, BadQuery, NotFound, parse_filters, parse_int

READ_BUDGET = 32 << 20  # uncompressed bytes of filter columns read at once (at least one row group)
SCAN_BUDGET = 0.25  # seconds a page's scan may read before it answers with the rows found so far
PREVIEW = 160  # characters of text per listed row

_lock = threading.Lock()
_manifests: dict = {}
_footers: OrderedDict = OrderedDict()  # (path, sha256) → (FileMetaData, {column path: index})
FOOTERS_CACHED = 4096


def _manifest(run_dir: str) -> dict:
    from corpusforge.report.data import load_manifest

    path = fs.join(run_dir, "manifest.json")
    try:
        key = (run_dir, fs.size_mtime(path))
    except (OSError, CorpusforgeError):
        key = None
    with _lock:
        hit = _manifests.get(run_dir)
    if hit is not None and key is not None and hit[0] == key:
        return hit[1]
    m = load_manifest(run_dir)
    with _lock:
        _manifests[run_dir] = (key, m)
    return m


def _files(run_dir: str, m: dict, table: str) -> list[tuple[str, str]]:
    return [(fs.join(run_dir, f["path"]), f.get("sha256", "")) for f in m.get("files", []) if f.get("kind") == table]


def _footer(path: str, sha: str):
    with _lock:
        hit = _footers.get((path, sha))
    if hit is None:
        src = store.source(path)
        try:
            md = pq.read_metadata(src)
        finally:
            if not isinstance(src, str):
                src.close()
        cols = {md.schema.column(j).path: j for j in range(md.num_columns)}
        hit = (md, cols)
        with _lock:
            _footers[(path, sha)] = hit
            while len(_footers) > FOOTERS_CACHED:
                _footers.popitem(last=False)
    return hit


@contextmanager
def _open(path: str, md):
    """A ParquetFile on a cached footer; closes what it opened."""
    src = store.source(path)
    pf = pq.ParquetFile(src, metadata=md)
    try:
        yield pf
    finally:
        pf.close()
        if not isinstance(src, str):
            src.close()


def score_columns(run_dir: str, m: dict | None = None) -> list[str]:
    """Numeric `<stage>__<score>` columns of the kept table (its first footer, not a scan)."""
    m = m or _manifest(run_dir)
    for path, sha in _files(run_dir, m, "kept"):
        schema = _footer(path, sha)[0].schema.to_arrow_schema()
        return [f.name for f in schema if "__" in f.name and (pa.types.is_integer(f.type) or pa.types.is_floating(f.type))]
    return []


def choices(run_dir: str, extra_sources=()) -> dict:
    """Filter choices per table from the manifest: {table: {stages, reasons, sources, scores}}."""
    m = _manifest(run_dir)
    stages = m.get("stages", [])
    blocks = m.get("config", {}).get("input", [])
    sources = {i["source"] for i in m.get("inputs", []) if i.get("source")}
    sources |= {b["source"] for b in (blocks if isinstance(blocks, list) else [blocks]) if b.get("source") and not b.get("source_field")}
    sources = sorted(sources | set(extra_sources))
    scores = score_columns(run_dir, m)
    drop = {"stages": [s["name"] for s in stages if s.get("dropped")], "reasons": sorted({r for s in stages for r in s.get("dropped", {})})}
    quar = {"stages": [s["name"] for s in stages if s.get("quarantined")], "reasons": sorted({r for s in stages for r in s.get("quarantined", {})})}
    return {"kept": {"stages": [], "reasons": [], "sources": sources, "scores": scores},
            "rejects": {**drop, "sources": sources, "scores": scores},
            "quarantine": {**quar, "sources": [], "scores": []}}


def _locator(s: str, files: list, cursor: bool = False) -> tuple[int, ...]:
    """'FILE.ROWGROUP.ROW' (indices into the table's manifest files, its row groups, the group's rows); a
    cursor adds '.SKIP' (matches still to skip) and may point one row group past a file's last."""
    parts = s.split(".") if isinstance(s, str) else []
    if len(parts) != 3 + cursor or not all(p.isdigit() and len(p) < 10 for p in parts):
        raise BadQuery(f"bad position {s!r} (expected FILE.ROWGROUP.ROW{'.SKIP' if cursor else ''})")
    fi, rg, row, *rest = map(int, parts)
    if fi >= len(files):
        raise BadQuery(f"position {s!r}: no file {fi}")
    md = _footer(*files[fi])[0]
    end = cursor and rg == md.num_row_groups and row == 0
    if not end and (rg >= md.num_row_groups or row >= md.row_group(rg).num_rows):
        raise BadQuery(f"position {s!r} is past the end of its file")
    return (fi, rg, row, *rest)


def _columns(table: str, f: dict) -> list[str]:
    cols = [c for c in ("stage", "reason", "source", "id") if c in f]
    if "score" in f:
        cols.append(f["score"] if table == "kept" else "scores")
    if "q" in f:
        cols.append(TABLES[table][1])
    return cols


def _prunes(rg, cols: dict, table: str, f: dict) -> bool:
    """True when the row group's statistics prove no row matches (min/max bounds stay valid when truncated)."""
    conds = [(c, f[c], f[c]) for c in ("stage", "reason", "source", "id") if c in f]
    if "score" in f:
        lo, hi = f.get("min"), f.get("max")
        if table == "kept":
            conds.append((f["score"], lo, hi))
        else:
            conds += [("scores.key_value.key", f["score"], f["score"]), ("scores.key_value.value", lo, hi)]
    for path, lo, hi in conds:
        j = cols.get(path)
        st = rg.column(j).statistics if j is not None else None
        if st is None or not st.has_min_max:
            continue
        if (hi is not None and st.min > hi) or (lo is not None and st.max < lo):
            return True
    return False


def _mask(t: pa.Table, table: str, f: dict) -> np.ndarray:
    m = np.ones(t.num_rows, bool)
    for c in ("stage", "reason", "source", "id"):
        if c in f:
            m &= pc.fill_null(pc.equal(t[c], f[c]), False).to_numpy(zero_copy_only=False)
    if "score" in f:
        lo, hi = f.get("min", -np.inf), f.get("max", np.inf)
        if table == "kept":
            v = t[f["score"]].to_numpy(zero_copy_only=False).astype(np.float64)
            m &= (v >= lo) & (v <= hi)
        else:
            col = t["scores"].combine_chunks().cast(pa.list_(pa.struct([pa.field("key", pa.string()), pa.field("value", pa.float64())])))
            flat, parents = pc.list_flatten(col), pc.list_parent_indices(col).to_numpy()
            v = flat.field(1).to_numpy(zero_copy_only=False)
            key = pc.equal(flat.field(0), f["score"]).to_numpy(zero_copy_only=False)
            hit = np.zeros(t.num_rows, bool)
            hit[parents[key & (v >= lo) & (v <= hi)]] = True
            m &= hit
    if "q" in f:
        col = t[TABLES[table][1]]
        if pa.types.is_binary(col.type):
            hit = pc.match_substring(col, f["q"])
        else:  # RE2 on a literal finds a substring ~5x faster than match_substring (memchr on its first bytes)
            hit = pc.match_substring_regex(col, "".join(c if c.isalnum() or ord(c) > 127 else f"\\x{{{ord(c):02x}}}" for c in f["q"]))
        m &= pc.fill_null(hit, False).to_numpy(zero_copy_only=False)
    return m


def _scan(files: list, table: str, f: dict, skip: int, need: int, start=(0, 0, 0), stats: dict | None = None,
          vals: dict | None = None, budget: float | None = None):
    """Positions (file, row group, row) of matches skip..skip+need-1 from `start`, and where to resume:
    None at the end of the table or once `need` are found; (file, row group, 0, matches still to skip) when
    the scan stopped after `budget` seconds. `vals` gets the filter columns' values of matched rows."""
    cols, out, want, skip0 = _columns(table, f), [], 1, skip
    stats = stats if stats is not None else {}
    deadline = None if budget is None else time.perf_counter() + budget
    done = lambda resume=None: (stats.update(before=skip0 - skip, end=resume is None and len(out) < need), (out, resume))[1]  # noqa: E731
    for fi in range(start[0], len(files)):
        md, paths = _footer(*files[fi])
        if f.get("score") and table == "kept" and f["score"] not in paths:
            continue
        rgs = []
        for rg in range(start[1] if fi == start[0] else 0, md.num_row_groups):
            if _prunes(md.row_group(rg), paths, table, f):
                stats["skipped"] = stats.get("skipped", 0) + 1
            else:
                rgs.append(rg)
        first = lambda rg: start[2] if (fi, rg) == start[:2] else 0  # noqa: E731
        if not cols:  # nothing to read: rows are positions
            for rg in rgs:
                n = md.row_group(rg).num_rows - first(rg)
                if skip >= n:
                    skip -= n
                    continue
                out += [(fi, rg, first(rg) + r) for r in range(skip, min(n, skip + need - len(out)))]
                skip = 0
                if len(out) >= need:
                    return done()
            continue
        leaves = [j for p, j in paths.items() if p.split(".")[0] in cols]
        cost = {rg: sum(md.row_group(rg).column(j).total_uncompressed_size for j in leaves) for rg in rgs}
        with _open(files[fi][0], md) as pf:
            i = 0
            while i < len(rgs):
                chunk, size = [], 0
                while i < len(rgs) and (not chunk or (len(chunk) < want and size + cost[rgs[i]] <= READ_BUDGET)):
                    chunk.append(rgs[i])
                    size += cost[rgs[i]]
                    i += 1
                want *= 2
                stats["read"] = stats.get("read", 0) + len(chunk)
                t = pf.read_row_groups(chunk, columns=cols, use_threads=False)
                mask, base, got = _mask(t, table, f), 0, []
                for rg in chunk:
                    n = md.row_group(rg).num_rows
                    idx = np.flatnonzero(mask[base + first(rg):base + n]) + first(rg)
                    if skip >= len(idx):
                        skip -= len(idx)
                    elif len(out) < need:
                        picked = idx[skip:skip + need - len(out)]
                        out += [(fi, rg, int(r)) for r in picked]
                        got += [base + int(r) for r in picked]
                        skip = 0
                    base += n
                if got and vals is not None:  # what the filter read already holds is not read again for display
                    for p, d in zip(out[-len(got):], t.take(got).to_pylist()):
                        vals[p] = d
                if len(out) >= need:
                    return done()
                if deadline is not None and time.perf_counter() > deadline and (i < len(rgs) or fi + 1 < len(files)):
                    return done((fi, chunk[-1] + 1, 0, skip))  # row group index == count: the next file
    return done()


def _rows(files: list, pos: list, columns: list[str], have: dict | None = None) -> list[dict]:
    """The rows at `pos` (in order), reading `columns` (less those in `have`) of only the row groups that hold them."""
    have = have or {}
    got = {p: dict(have.get(p, {})) for p in pos}
    for fi in sorted({p[0] for p in pos}):
        md = _footer(*files[fi])[0]
        names = set(md.schema.to_arrow_schema().names)
        with _open(files[fi][0], md) as pf:
            for rg in sorted({p[1] for p in pos if p[0] == fi}):
                rows = [p[2] for p in pos if p[:2] == (fi, rg)]
                cols = [c for c in columns if c in names and not all(c in got[(fi, rg, r)] for r in rows)]
                if not cols:
                    continue
                t = pf.read_row_group(rg, columns=cols, use_threads=False).take(rows)
                for r, d in zip(rows, t.to_pylist()):
                    got[(fi, rg, r)].update(d)
    return [dict(got[p], ref=f"{p[0]}.{p[1]}.{p[2]}") for p in pos]


def _cheap_total(m: dict, files: list, table: str, f: dict) -> int | None:
    if not f:
        return sum(_footer(*x)[0].num_rows for x in files)
    if table != "kept" and set(f) <= {"stage", "reason"}:
        key = "dropped" if table == "rejects" else "quarantined"
        return sum(n for s in m.get("stages", []) if f.get("stage", s["name"]) == s["name"]
                   for r, n in s.get(key, {}).items() if f.get("reason", r) == r)
    return None


def query(run_dir: str, table: str, filters: dict | None = None, page: int = 1, per_page: int = PER_PAGE, start: str | None = None,
          offset: int | None = None, budget: float | None = SCAN_BUDGET) -> dict:
    """One page of `table` rows matching `filters` (stage, reason, source, score + min/max, id, q); rows are
    dicts with `ref` (their FILE.ROWGROUP.ROW position). Page N by number rescans from the first row; the
    "next" link's `start` cursor (and `offset`, the matches before it) resumes where this scan stopped.
    A scan that reads columns stops after `budget` seconds with the rows found so far (`partial`)."""
    m = _manifest(run_dir)
    f = parse_filters(table, filters, lambda: score_columns(run_dir, m))
    page, per_page = parse_int(page, "page", 1, MAX_PAGE), parse_int(per_page, "per_page", 1, MAX_PER_PAGE)
    offset = (page - 1) * per_page if offset is None else parse_int(offset, "offset", 0, MAX_PAGE * MAX_PER_PAGE)
    files = _files(run_dir, m, table)
    unique = "id" in f and table != "quarantine"  # every document ends kept or dropped once
    fi, rg, row, skip = _locator(start, files, cursor=True) if start else (0, 0, 0, offset)
    stats: dict = {}
    vals: dict = {}
    at = (fi, rg, row)
    pos, resume = _scan(files, table, f, skip, 1 if unique else per_page + 1, at, stats, vals, budget)
    cols = TABLES[table][2] + ([f["score"]] if table == "kept" and "score" in f else []) + (["scores"] if table == "rejects" and "score" in f else [])
    rows = _rows(files, pos[:per_page], cols, vals)
    for r in rows:
        if table == "kept":
            r["chars"] = len(r["text"])
            r["text"] = snippet(r["text"], f.get("q"))
        elif table == "rejects":
            r["text_preview"] = snippet(r["text_preview"] or "", f.get("q"))
            if "score" in f:
                r[f["score"]] = dict(r.pop("scores") or []).get(f["score"])
        else:
            r["raw"] = safe_bytes((r["raw"] or b"")[:PREVIEW * 2])
    total = _cheap_total(m, files, table, f)
    if total is None and (stats["end"] or (unique and pos)):
        total = offset - skip + stats["before"] + len(pos)  # every match from the cursor on was seen
    if len(pos) > per_page:
        nxt = f"{pos[per_page][0]}.{pos[per_page][1]}.{pos[per_page][2]}.0"
    else:
        nxt = ".".join(map(str, resume)) if resume else None
    return {"table": table, "filters": f, "page": page, "per_page": per_page, "offset": offset, "rows": rows,
            "more": nxt is not None, "partial": resume is not None, "next": nxt, "next_offset": offset + len(rows),
            "next_page": page + 1 if len(rows) == per_page else page, "total": total, "files": len(files),
            "stopped_at": resume[0] if resume else None,
            "row_groups": {"read": stats.get("read", 0), "skipped": stats.get("skipped", 0)}}


def snippet(text: str, q: str | None) -> str:
    """PREVIEW characters of text: from the start, or around the first hit of q ("…" where cut)."""
    at = text.find(q) if q else -1
    lo = 0 if at < PREVIEW // 3 else at - PREVIEW // 3
    out = text[lo:lo + PREVIEW]
    return ("…" if lo else "") + out + ("…" if lo + PREVIEW < len(text) else "")


def safe_bytes(b: bytes) -> str:
    """Raw bytes as unambiguous text: a backslash as \\\\, invalid UTF-8 bytes as \\xNN, control and other
    unprintable characters (but newline and tab) as \\xNN / \\uNNNN."""
    def one(c: str) -> str:
        o = ord(c)
        if c == "\\":
            return "\\\\"
        if 0xDC80 <= o <= 0xDCFF:  # surrogateescape: an undecodable byte
            return f"\\x{o - 0xDC00:02x}"
        if c.isprintable() or c in "\n\t":
            return c
        return f"\\x{o:02x}" if o < 256 else f"\\u{o:04x}" if o < 0x10000 else f"\\U{o:08x}"
    return "".join(map(one, b.decode("utf-8", "surrogateescape")))


def doc(run_dir: str, table: str, id: str | None = None, at: str | None = None) -> dict:
    """One row whole: kept (text, scores, meta), rejects (preview, stage, reason, scores, duplicate_of) or
    quarantine (the ledger line; raw bytes as escaped text). `at`: its position, checked against `id`."""
    m = _manifest(run_dir)
    f = parse_filters(table, {}, lambda: score_columns(run_dir, m))
    files = _files(run_dir, m, table)
    pos = None
    if at:
        pos = _locator(at, files)
        if id and _rows(files, [pos], ["id"])[0].get("id") != id:
            pos = None
    if pos is None:
        if not id:
            raise BadQuery("need id (or at=FILE.ROWGROUP.ROW)")
        found, _ = _scan(files, table, {**f, "id": id}, 0, 1)
        if not found:
            raise NotFound(f"no {table} row has id {id!r}")
        pos = found[0]
    schema = _footer(*files[pos[0]])[0].schema.to_arrow_schema()
    r = _rows(files, [pos], schema.names)[0]
    r["table"] = table
    r["meta"] = dict(r.get("meta") or [])
    if table == "kept":
        r["scores"] = {c: r.pop(c) for c in schema.names if "__" in c}
    elif table == "rejects":
        r["scores"] = dict(r.get("scores") or [])
    else:
        r["raw_bytes"] = len(r["raw"] or b"")
        r["raw"] = safe_bytes(r["raw"] or b"")
    return r
