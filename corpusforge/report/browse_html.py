"""HTML of `report serve`'s document browser: /browse (a GET filter form, one page of rows, links to
page on) and /doc (one row whole). No script: tables are links, filters a plain GET <form>, paging
and opening a document are links. Every string from the data or the URL goes through render.e
(highlight marks wrap escaped pieces only); raw quarantine bytes are shown as escaped text."""

from __future__ import annotations

import urllib.parse

from pyarrow import ArrowException

from corpusforge.errors import CorpusforgeError
from corpusforge.report import browse, render
from corpusforge.report.browse_params import FILTERS

e = render.e
PARAMS = set(FILTERS) | {"table", "page", "per_page", "start", "offset"}
STYLE = render.STYLE + """
nav.tables a.current,nav.pages a.current{font-weight:bold;text-decoration:none;color:#222}
form.filters label{margin-right:1em;white-space:nowrap}
form.filters input[type=text]{width:12em}
td.preview{white-space:pre-wrap;word-break:break-all;max-width:60em;font-size:13px}
mark.hit-q{background:#b6e3ff}
.doc.full{max-height:none}
p.ledger{font-family:monospace;word-break:break-all}
"""
COLUMNS = {  # (header, row key) of a listed row
    "kept": [("source", "source"), ("characters", "chars"), ("text", "text")],
    "rejects": [("source", "source"), ("stage", "stage"), ("reason", "reason"), ("duplicate of", "duplicate_of"), ("preview", "text_preview")],
    "quarantine": [("stage", "stage"), ("file", "file"), ("line", "line"), ("byte offset", "byte_offset"), ("reason", "reason"),
                   ("detail", "detail"), ("raw", "raw")],
}


def _head(title: str) -> str:
    return (f'<!doctype html><html lang="zh"><head><meta charset="utf-8"><title>{e(title)}</title><style>{STYLE}</style></head><body>'
            '<nav><a href="/">report</a><a href="/browse">browse documents</a><a href="/human-eval">human evaluation</a></nav>')


def _url(path: str, params: dict) -> str:
    return path + "?" + urllib.parse.urlencode({k: v for k, v in params.items() if v not in (None, "")})


def _marked(text, q: str | None) -> str:
    """Escaped text with every occurrence of q marked."""
    text = "" if text is None else str(text)
    if not q:
        return e(text)
    return f'<mark class="hit-q">{e(q)}</mark>'.join(e(p) for p in text.split(q))


def _select(name: str, label: str, options: list, current: str | None) -> str:
    opts = "".join(f'<option value="{e(o)}"{" selected" if o == current else ""}>{e(o)}</option>' for o in options)
    return f'<label>{e(label)} <select name="{e(name)}"><option value="">any</option>{opts}</select></label>'


def _text(name: str, label: str, value) -> str:
    return f'<label>{e(label)} <input type="text" name="{e(name)}" value="{e("" if value is None else value)}"></label>'


def _form(table: str, ch: dict, f: dict, per_page: int) -> str:
    has = browse.TABLES[table][0]
    parts = [f'<form method="get" action="/browse" class="filters"><input type="hidden" name="table" value="{e(table)}">']
    if per_page != browse.PER_PAGE:
        parts.append(f'<input type="hidden" name="per_page" value="{per_page}">')
    if "stage" in has:
        parts.append(_select("stage", "stage", ch["stages"], f.get("stage")))
        parts.append(_select("reason", "reason", ch["reasons"], f.get("reason")))
    if "source" in has:
        parts.append(_select("source", "source", ch["sources"], f.get("source")))
    if "score" in has:
        parts.append(_select("score", "score", ch["scores"], f.get("score")))
        parts += [_text("min", "min", f.get("min")), _text("max", "max", f.get("max"))]
    parts += [_text("id", "id", f.get("id")), _text("q", "text contains" if table != "quarantine" else "raw contains", f.get("q")),
              '<button type="submit">filter</button> <a href="/browse?table=' + e(table) + '">clear</a></form>']
    return "".join(parts)


def _doc_link(table: str, r: dict, label: str) -> str:
    return f'<a class="open" href="{e(_url("/doc", {"table": table, "id": r.get("id"), "at": r["ref"]}))}">{e(label)}</a>'


def browse_page(run_dir: str, params: dict, sources=()) -> str:
    table = params.get("table") or "kept"
    filters = {k: params[k] for k in FILTERS if k in params}
    res = browse.query(run_dir, table, filters, params.get("page") or 1, params.get("per_page") or browse.PER_PAGE, params.get("start"),
                       params.get("offset"))
    f, page, per = res["filters"], res["page"], res["per_page"]
    ch = browse.choices(run_dir, sources)[table]
    fmt = {k: str(params[k]) for k in f}  # as typed: links carry the filters unchanged
    tabs = "".join(f'<a href="/browse?table={t}"{" class=current" if t == table else ""}>{t}</a>' for t in browse.TABLES)
    out = [_head(f"browse {table}"), f'<h1>Browse documents: {e(table)}</h1><nav class="tables">{tabs}</nav>', _form(table, ch, fmt, per)]
    lo, hi = res["offset"] + 1, res["offset"] + len(res["rows"])
    if not res["rows"]:
        summary = "no rows match" if not res["offset"] and not res["partial"] else "no rows here"
    else:
        summary = f"rows {lo:,}–{hi:,}" + (f" of {res['total']:,}" if res["total"] is not None else "") + (", more follow" if res["more"] and not res["partial"] else "")
    if res["partial"]:
        summary += (f"; the search stopped after {browse.SCAN_BUDGET:g} s at part {res['stopped_at'] + 1:,} of {res['files']:,} "
                    "(no statistics can skip a text search): search on by the next link")
    rg = res["row_groups"]
    out.append(f'<p class="summary" data-total="{e(res["total"])}" data-more="{int(res["more"])}" data-partial="{int(res["partial"])}">{e(summary)}</p>'
               f'<p class="muted scan">row groups read {rg["read"]:,}, skipped by their statistics {rg["skipped"]:,}</p>')
    if res["rows"]:
        cols = COLUMNS[table][:]
        if "score" in f:
            cols.insert(len(cols) - 1, (f["score"], f["score"]))
        head = "".join(f"<th>{e(h)}</th>" for h, _ in [("id", "id")] + cols)
        body = []
        for r in res["rows"]:
            first = _doc_link(table, r, r.get("id") or f"open {r['ref']}")
            cells = []
            for h, k in cols:
                v = r.get(k)
                if k in ("text", "text_preview", "raw"):
                    cells.append(f'<td class="preview" data-k="{e(h)}">{_marked(v, f.get("q"))}</td>')
                elif isinstance(v, (int, float)) and not isinstance(v, bool):
                    cells.append(f'<td class="n" data-k="{e(h)}" data-v="{e(v)}">{render.num(v)}</td>')
                else:
                    cells.append(f'<td data-k="{e(h)}">{e(v)}</td>')
            body.append(f'<tr data-id="{e(r.get("id"))}" data-ref="{e(r["ref"])}"><td data-k="id">{first}</td>{"".join(cells)}</tr>')
        out.append(f'<table class="rows"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>')
    keep = {"table": table, **fmt, "per_page": per if per != browse.PER_PAGE else None}
    pages = []
    if page > 1:
        pages += [f'<a class="first" href="{e(_url("/browse", keep))}">first</a>',
                  f'<a class="prev" href="{e(_url("/browse", {**keep, "page": page - 1}))}">previous</a>']
    if res["more"]:
        nxt = {**keep, "page": res["next_page"], "start": res["next"], "offset": res["next_offset"]}
        pages.append(f'<a class="next" href="{e(_url("/browse", nxt))}">{"search on" if res["partial"] else "next"}</a>')
    out.append(f'<nav class="pages">{"".join(pages)}</nav></body></html>')
    return "".join(out)


def _fields(rows: list[tuple[str, object]]) -> str:
    return ('<table class="fields"><tbody>' + "".join(f'<tr><th>{e(k)}</th><td data-k="{e(k)}">{v if isinstance(v, render.Safe) else e(v)}</td></tr>'
                                                     for k, v in rows) + "</tbody></table>")


def doc_page(run_dir: str, params: dict, highlighter=None) -> str:
    table = params.get("table") or "kept"
    d = browse.doc(run_dir, table, params.get("id") or None, params.get("at") or None)
    hl = highlighter.html if highlighter is not None else e
    back = f'<p><a class="back" href="/browse?table={e(table)}">all {e(table)} rows</a></p>'
    meta = d.get("meta") or {}
    where = [("input file", meta.get("_cf_file")), ("input line", meta.get("_cf_line")), ("input byte offset", meta.get("_cf_offset"))]
    other = _fields([(k, v) for k, v in sorted(meta.items()) if not k.startswith("_cf_")])
    scores = _fields([(k, render.num(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v) for k, v in d.get("scores", {}).items()])
    if table == "kept":
        out = [f'<h1>Kept document {e(d["id"])}</h1>', back, _fields([("id", d["id"]), ("source", d["source"]), ("characters", f"{len(d['text']):,}"), *where]),
               f'<h2>text</h2><div class="doc full" id="text">{hl(d["text"])}</div><h2>scores</h2>{scores}<details><summary>meta</summary>{other}</details>']
    elif table == "rejects":
        dup = d.get("duplicate_of")
        dup_cell = render.Safe(f'<a class="dup" href="{e(_url("/doc", {"table": "kept", "id": dup}))}">{e(dup)}</a>') if dup else ""
        out = [f'<h1>Rejected document {e(d["id"])}</h1>', back,
               _fields([("id", d["id"]), ("source", d["source"]), ("stage", d["stage"]), ("reason", d["reason"]), ("duplicate of", dup_cell), *where]),
               f'<h2>preview</h2><p class="muted">rejects keep the first 300 characters of the text</p><div class="doc full" id="text">{hl(d["text_preview"])}</div>'
               f'<h2>scores</h2>{scores}<details><summary>meta</summary>{other}</details>']
    else:
        line = f'{d["file"]}:{d["line"] if d["line"] is not None else "?"} (byte {d["byte_offset"] if d["byte_offset"] is not None else "?"}) {d["stage"]} {d["reason"]}'
        out = [f'<h1>Quarantined record {e(d["file"])}:{e(d["line"])}</h1>', back, f'<p class="ledger">{e(line)}{": " + e(d["detail"]) if d["detail"] else ""}</p>',
               _fields([("stage", d["stage"]), ("file", d["file"]), ("line", d["line"]), ("byte offset", d["byte_offset"]), ("reason", d["reason"]),
                        ("detail", d["detail"]), ("id", d["id"]), ("raw sha1", d["raw_sha1"]), ("raw bytes", f'{d["raw_bytes"]:,}')]),
               f'<h2>raw (escaped: invalid UTF-8 and control bytes as \\xNN)</h2><pre class="doc full raw" id="raw">{e(d["raw"])}</pre>']
    return _head(f"{table} {d.get('id') or d['ref']}") + "".join(out) + "</body></html>"


def error_page(status: int, message: str) -> str:
    return _head(f"{status}") + f'<h1>{status}</h1><p class="bad error">{e(message)}</p><p><a href="/browse">browse documents</a></p></body></html>'


def handle(path: str, query: dict[str, list[str]], run_dir: str, highlighter=None, sources=()) -> tuple[int, str]:
    """(HTTP status, page) for /browse or /doc; bad parameters are a 400 page with a one-line reason."""
    try:
        allowed = PARAMS if path == "/browse" else {"table", "id", "at"}
        bad = sorted(set(query) - allowed)
        if bad:
            raise browse.BadQuery(f"unknown parameter {bad[0]!r} (this page takes {', '.join(sorted(allowed))})")
        many = [k for k, v in query.items() if len(v) > 1]
        if many:
            raise browse.BadQuery(f"parameter {many[0]!r} given {len(query[many[0]])} times (one value each)")
        params = {k: v[0] for k, v in query.items()}
        return 200, (browse_page(run_dir, params, sources) if path == "/browse" else doc_page(run_dir, params, highlighter))
    except (browse.BadQuery, browse.NotFound) as err:
        return err.status, error_page(err.status, err.message)
    except CorpusforgeError as err:  # an unreadable table or manifest
        return 500, error_page(500, err.message)
    except (OSError, ArrowException) as err:
        return 500, error_page(500, f"{type(err).__name__}: {err}".splitlines()[0])
