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
    with open(part.file.path, "rb") as f:
        raw = f.read(opts.max_record_bytes + 1)
    if len(raw) > opts.max_record_bytes:
        out.quarantine_row(1, 0, "record_too_large", f"> {opts.max_record_bytes} bytes", None)
        return
    res, err = _safe_extract(raw, None if opts.encoding in ("utf-8", "auto") else opts.encoding, opts.extractor)
    if err:
        out.quarantine_row(1, 0, "html_extract_failed", err, raw)
        return
    text, title, url = res
    out.doc(1, 0, opts.source, text, [(k, v) for k, v in (("title", title), ("url", url)) if v])
    yield out.take_batch()


def read_warc(part, opts, out):
    """WARC (HTML responses → extracted text) and WET (conversion records → text as is), gzip or plain."""
    from fastwarc.warc import ArchiveIterator, WarcRecordType

    with open(part.file.path, "rb") as f:
        for no, rec in enumerate(ArchiveIterator(f, record_types=WarcRecordType.response | WarcRecordType.conversion,
                                                 parse_http=True), 1):
            url = rec.headers.get("WARC-Target-URI")
            body = rec.reader.read(opts.max_record_bytes + 1)
            if len(body) > opts.max_record_bytes:
                out.quarantine_row(no, rec.stream_pos, "record_too_large", f"> {opts.max_record_bytes} bytes", None)
                continue
            if rec.record_type == WarcRecordType.conversion:
                text, title = body.decode("utf-8", "replace"), None
            else:
                ctype = (rec.http_headers.get("Content-Type") or "") if rec.http_headers else ""
                if "html" not in ctype.lower():
                    out.quarantine_row(no, rec.stream_pos, "not_html", ctype[:100] or "no Content-Type", None)
                    continue
                declared = ctype.lower().split("charset=")[1].strip(' "\';') if "charset=" in ctype.lower() else None
                res, err = _safe_extract(body, declared, opts.extractor)
                if err:
                    out.quarantine_row(no, rec.stream_pos, "html_extract_failed", err, body)
                    continue
                text, title, _ = res
            out.doc(no, rec.stream_pos, opts.source, text, [(k, v) for k, v in (("title", title), ("url", url)) if v])
            if out.full():
                yield out.take_batch()
    b = out.take_batch()
    if b is not None:
        yield b
