"""Text from raw HTML pages and WARC/WET records, for the `html` and `warc` input formats.

Extractors (chosen by measurement against readability's gold and GNE's output, see docs/rules.md):
  main         resiliparse main-content extraction (default: fastest, best on the gold pages)
  trafilatura  trafilatura's extractor (slower; a second opinion)
  page         every visible text line (what a WET record holds): keeps menus and tables of
               contents, so that pangu_rules can recognise navigation pages itself
The page's <title> and URL (canonical link or og:url) go to meta as `title` and `url`."""

from __future__ import annotations

import re
from typing import Literal

Extractor = Literal["main", "trafilatura", "page"]
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


def extract(html: str, extractor: Extractor = "main") -> tuple[str, str | None, str | None]:
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
