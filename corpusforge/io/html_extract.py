"""Text from raw HTML pages and WARC/WET records, for the `html` and `warc` input formats.

Extractors (chosen by measurement against readability's gold and GNE's output, see docs/rules.md):
  trafilatura  trafilatura (default: char-bigram F1 0.985 on the 4 readability gold pages, 0.96
               against GNE's output on 12 pages; ~10 ms a page)
  main         resiliparse main-content heuristics (~10x faster, F1 0.84 / 0.68: keeps comments
               and sidebars on blogs)
  page         every visible text line (what a WET record holds): keeps menus and tables of
               contents, so that pangu_rules can recognise navigation pages itself
The page's <title> and URL (canonical link or og:url) go to meta as `title` and `url`."""

from __future__ import annotations

import re
from typing import Literal

from corpusforge.io import fs, warc
from corpusforge.io.streams import FileLevelError, HashingRaw, read_whole

Extractor = Literal["trafilatura", "main", "page"]
_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([A-Za-z0-9_\-]+)""", re.I)
_URL = re.compile(r"""<link[^>]+rel=["']canonical["'][^>]*href=["']([^"']+)|<meta[^>]+property=["']og:url["'][^>]*content=["']([^"']+)""", re.I)


def decode_html(raw: bytes, declared: str | None = None) -> str:
    """Declared charset (HTTP header or <meta>), else UTF-8, else GB18030 (a superset of GBK/GB2312)."""
    cands = []
    if declared:
        cands.append(declared)
    m = _CHARSET.search(raw[:4096])
    if m:
        cands.append(m.group(1).decode("ascii").lower())
    cands += ["utf-8", "gb18030"]
    for enc in cands:
        enc = "gb18030" if enc in ("gb2312", "gbk") else enc
        try:
            return raw.decode(enc)
        except (LookupError, UnicodeDecodeError):
            continue
    return raw.decode("utf-8", "replace")


def extract(html: str, extractor: Extractor = "trafilatura") -> tuple[str, str | None, str | None]:
    """(text, title, url) of one page."""
    from resiliparse.extract.html2text import extract_plain_text
    from resiliparse.parse.html import HTMLTree

    tree = HTMLTree.parse(html)
    title = (tree.title or "").strip() or None
    m = _URL.search(html[:65536])
    url = (m.group(1) or m.group(2)) if m else None
    if extractor == "trafilatura":
        import trafilatura

        text = trafilatura.extract(html, include_comments=False, include_tables=True, favor_precision=True) or ""
    else:
        text = extract_plain_text(tree, main_content=extractor == "main", preserve_formatting=True,
                                  list_bullets=False, links=False, alt_texts=False, noscript=False)
    return text, title, url


def _safe_extract(raw: bytes, declared: str | None, extractor: Extractor):
    try:
        return extract(decode_html(raw, declared), extractor), None
    except Exception as e:  # noqa: BLE001 - a broken page is quarantined, never fatal
        return None, f"{type(e).__name__}: {e}"


def read_html(part, opts, out):
    """One document per .html file: main text, with meta title and url."""
    raw = read_whole(part, opts.max_record_bytes)
    if raw is None:
        out.quarantine_row(1, 0, "record_too_large", f"> {opts.max_record_bytes} bytes", None)
        return
    res, err = _safe_extract(raw, None if opts.encoding in ("utf-8", "auto") else opts.encoding, opts.extractor)
    if err:
        out.quarantine_row(1, 0, "html_extract_failed", err, raw)
        return
    text, title, url = res
    out.doc(1, 0, opts.source, text, [(k, v) for k, v in (("title", title), ("url", url)) if v])
    yield out.take_batch()


def _http(block: bytes) -> tuple[str | None, bytes]:
    """(Content-Type, payload) of an HTTP response block; (None, block) when it has no HTTP header."""
    if not block.startswith(b"HTTP/"):
        return None, block
    m = re.search(rb"\r?\n\r?\n", block)
    head, payload = (block, b"") if m is None else (block[:m.start()], block[m.end():])
    for line in head.split(b"\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-type":
            return value.strip().decode("latin-1"), payload
    return "", payload


def _warc_doc(rec, opts) -> tuple[str, str | None] | tuple[None, tuple[str, str, bytes | None]]:
    """(text, title) of a response or conversion record, or (None, (reason, detail, raw))."""
    if rec.headers["warc-type"] == "conversion":
        try:
            return rec.block.decode("utf-8"), None
        except UnicodeDecodeError as e:
            return None, ("invalid_utf8", str(e), rec.block)
    ctype, payload = _http(rec.block)
    if "html" not in (ctype or "").lower():
        return None, ("not_html", (ctype or "")[:100] or "no Content-Type", None)
    declared = ctype.lower().split("charset=")[1].strip(' "\';') if "charset=" in ctype.lower() else None
    res, err = _safe_extract(payload, declared, opts.extractor)
    if err:
        return None, ("html_extract_failed", err, payload)
    return res[0], res[1]


def read_warc(part, opts, out):
    """WARC (HTML responses → extracted text) and WET (conversion records → text as is), gzip or plain.
    Records are numbered 1, 2, ... over the response and conversion records and the unreadable ones
    (bytes between records take no number); other record types (warcinfo, request, metadata, ...) are counted in fixes.warc_non_document_records."""
    no = 0
    with fs.open_read(part.file.path) as f:
        gz = f.read(2) == b"\x1f\x8b"
        f.seek(0)
        raw = HashingRaw(f, part)
        try:
            for rec in warc.records(raw, gz, opts):
                if isinstance(rec, warc.BadRecord):
                    no += rec.is_record
                    out.quarantine_row(no if rec.is_record else None, rec.offset, rec.reason, rec.detail, None)
                    continue
                if rec.headers.get("warc-type") not in ("response", "conversion"):
                    out.stats.fixes["warc_non_document_records"] += 1
                    continue
                no += 1
                if rec.block is None:
                    out.quarantine_row(no, rec.offset, "record_too_large", f"{rec.length} bytes > {opts.max_record_bytes}", None)
                    continue
                text, extra = _warc_doc(rec, opts)
                if text is None:
                    out.quarantine_row(no, rec.offset, *extra)
                    continue
                url = rec.headers.get("warc-target-uri")
                out.doc(no, rec.offset, opts.source, text, [(k, v) for k, v in (("title", extra), ("url", url)) if v])
                if out.full():
                    yield out.take_batch()
            raw.verify()
        except FileLevelError as e:
            if opts.salvage_truncated and e.reason == "truncated_input":
                out.stats.fixes["salvaged_prefix_lines"] += out.stats.records
            else:
                out.reset()
            out.quarantine_row(no, e.offset, e.reason, f"{e.detail}; last complete record {no}", None)
    b = out.take_batch()
    if b is not None:
        yield b
