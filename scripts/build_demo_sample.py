"""Rebuilds the demo sample's derived files from the shared test data (run from the repo root):

    python scripts/build_demo_sample.py [SHARED_DATA_DIR]

* open_debian_zhtw.jsonl — Debian Reference zh-TW paragraphs (tradsimp/), the first 36 of each chapter
  joined into documents of 12 consecutive paragraphs (an "open dataset" in traditional script).
* cc_2021-43.warc.wet.gz — the 100 Common Crawl 2021-43 documents of web/ as WET conversion records
  (what a Common Crawl WET file holds), one gzip member per record as Common Crawl writes them.
* encyclopedia_versions.jsonl — 10 articles × 3 versions from neardup/zhwiki_versions_pool.jsonl
  (near-duplicates for the dedup stages).
* news/*.html — the 8 smallest raw news pages of web/html/gne (menus, ads, footers included).
* heldout_zhwiki.jsonl — 12 Wikipedia articles that are in no demo source: the perplexity held-out set.
Inputs that come straight from shared data are copied byte for byte."""

import gzip
import json
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "corpusforge" / "data" / "sample"
SHARED = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO.parent / "shared" / "data"


def jsonl(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def open_data() -> None:
    by: dict[str, list[dict]] = {}
    for p in jsonl(SHARED / "tradsimp" / "debian_reference_zhcn_zhtw_paragraphs.jsonl"):
        by.setdefault(p["chapter"], []).append(p)
    docs = []
    for ch in sorted(by):
        paras = by[ch][:36]
        for i in range(0, len(paras), 12):
            group = paras[i:i + 12]
            docs.append({"id": group[0]["id"], "text": "\n".join(x["zh_tw"] for x in group), "chapter": ch, "license": "GPL-2+"})
    write_jsonl(SAMPLE / "open_debian_zhtw.jsonl", docs)


def wet() -> None:
    with open(SAMPLE / "cc_2021-43.warc.wet.gz", "wb") as out:
        for k, r in enumerate(jsonl(SHARED / "web" / "commoncrawl_2021-43_zh_100docs.jsonl")):
            body = r["text"].encode("utf-8")
            head = (f"WARC/1.0\r\nWARC-Type: conversion\r\nWARC-Target-URI: {r['url']}\r\n"
                    f"WARC-Date: 2021-10-20T00:00:00Z\r\nWARC-Record-ID: <urn:uuid:00000000-0000-4000-8000-{k:012d}>\r\n"
                    f"Content-Type: text/plain\r\nContent-Length: {len(body)}\r\n\r\n").encode("utf-8")
            out.write(gzip.compress(head + body + b"\r\n\r\n", mtime=0))


def versions() -> None:
    pool = jsonl(SHARED / "neardup" / "zhwiki_versions_pool.jsonl")
    by: dict[str, list[dict]] = {}
    for r in pool:
        by.setdefault(r["cluster_id"], []).append(r)
    picked = [c for c in sorted(by) if len(by[c]) >= 3][:10]
    write_jsonl(SAMPLE / "encyclopedia_versions.jsonl",
                [{"id": r["id"], "text": r["text"], "cluster_id": c, "license": r["license"]} for c in picked for r in by[c][:3]])


def news() -> None:
    pages = sorted((SHARED / "web" / "html" / "gne").glob("*.html"), key=lambda p: (p.stat().st_size, p.name))[:8]
    for p in pages:
        shutil.copyfile(p, SAMPLE / "news" / p.name)


def heldout() -> None:
    used = {r["id"] for r in jsonl(SAMPLE / "encyclopedia_zhwiki.jsonl")}
    rows = [r for r in jsonl(SHARED / "prose" / "zhwiki_articles_100.jsonl") if r["id"] not in used]
    write_jsonl(SAMPLE / "heldout_zhwiki.jsonl", [{"id": r["id"], "title": r["title"], "text": r["text"]} for r in rows[-12:]])


if __name__ == "__main__":
    (SAMPLE / "news").mkdir(exist_ok=True)
    open_data()
    wet()
    versions()
    news()
    heldout()
