"""Lists every replacement the pii stage (all kinds, qq and wechat included) makes on the shared data,
keeping the labels already given in real_matches.jsonl; new matches get "label": null until someone labels
them. Run: .venv/bin/python tests/data/pii/list_matches.py [shared data dir]"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
LABELS = HERE / "real_matches.jsonl"
# file → its text fields (the Debian Reference rows are zh_CN/zh_TW pairs)
FILES = {
    "diverse/news_thucnews_sina.jsonl": ["text"],
    "diverse/news_sogoucs_sohu.jsonl": ["text"],
    "web/commoncrawl_2021-43_zh_100docs.jsonl": ["text"],
    "spam/sms_mudou_labelled.jsonl": ["text"],
    "spam/trec06c_email_sample.jsonl": ["text"],
    "prose/zhwiki_articles_100.jsonl": ["text"],
    "prose/luxun_fiction_essays.jsonl": ["text"],
    "tradsimp/debian_reference_zhcn_zhtw_paragraphs.jsonl": ["zh_cn", "zh_tw"],
    "quality/chinesewebtext_clean_vs_dirty.jsonl": ["text"],
}
ALL_KINDS = ["email", "ipv6", "ipv4", "id_card", "bank_card", "phone", "qq", "wechat"]


def documents(shared: Path):
    """(file, id, field, text) for every text of FILES, in file order."""
    for f, fields in FILES.items():
        with open(shared / f, encoding="utf-8") as fh:
            for line in fh:
                row = json.loads(line)
                for field in fields:
                    if row.get(field):
                        yield f, row["id"], field, row[field]


def key(m: dict) -> tuple:
    return m["file"], m["id"], m["field"], m["start"], m["kind"], m["match"]


def matches(shared: Path) -> list[dict]:
    """Every span the stage replaces, found through Pii.map (prefilter included) on one batch per file."""
    import pyarrow as pa

    from corpusforge.stages.pii import Pii, find_spans

    stage = Pii(Pii.Params(kinds=ALL_KINDS))
    stage.setup()
    docs = list(documents(shared))
    out = stage.map(pa.RecordBatch.from_pydict({"text": [d[3] for d in docs]}))
    res = []
    for (f, i, field, text), n in zip(docs, out.column("pii__replaced").to_pylist()):
        if not n:
            continue
        spans = find_spans(text, ALL_KINDS)
        assert len(spans) == n, (f, i)
        for s, e, kind in spans:
            ctx = text[max(0, s - 30):s] + "【" + text[s:e] + "】" + text[e:e + 30]
            res.append({"file": f, "id": i, "field": field, "start": s, "kind": kind, "match": text[s:e],
                        "context": ctx.replace("\n", " ")})
    return res


# Strings that look like PII and are not replaced, so precision is not measured on an empty set.
NEAR_MISSES = {
    "18-char digit runs that fail the ID check": r"(?<![0-9A-Za-z])[0-9]{17}[0-9Xx](?![0-9A-Za-z])",
    "11-digit runs that are not a mobile number": r"(?<![0-9A-Za-z])[0-9]{11}(?![0-9A-Za-z])",
    "16-19-digit runs that fail Luhn/issuer": r"(?<![0-9A-Za-z])[0-9]{16,19}(?![0-9A-Za-z])",
    "dotted quads a.b.c.d that are not an IPv4": r"(?<![0-9A-Za-z.])[0-9]+(?:\.[0-9]+){3}(?![0-9A-Za-z]|\.[0-9])",
    "colon groups h:m:s (clock times, ratios) not IPv6": r"(?<![0-9A-Za-z:])[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){2,}(?![0-9A-Za-z:])",
    "x@y.z strings that are not a mailbox": r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+",
    "dates 2008-08-08 / 2008年8月8日 / 20080808": r"(?<![0-9A-Za-z])(?:(?:19|20)[0-9]{2}[-/.年][01]?[0-9][-/.月][0-3]?[0-9]|(?:19|20)[0-9]{2}[01][0-9][0-3][0-9](?![0-9]))",
}


def near_misses(shared: Path, examples: int = 0) -> dict[str, int]:
    """How many NEAR_MISSES candidates the data has that no replacement of the stage touches."""
    import re

    from corpusforge.stages.pii import find_spans

    pats = {k: re.compile(p) for k, p in NEAR_MISSES.items()}
    counts = dict.fromkeys(NEAR_MISSES, 0)
    for f, i, field, text in documents(shared):
        spans = None
        for k, p in pats.items():
            for m in p.finditer(text):
                spans = find_spans(text, ALL_KINDS) if spans is None else spans
                if not any(s < m.end() and m.start() < e for s, e, _ in spans):
                    counts[k] += 1
                    if counts[k] <= examples:
                        print(f"  {k[:12]}: {text[max(0, m.start() - 12):m.end() + 12]!r}")
    return counts


def main(shared: Path) -> None:
    old = {}
    if LABELS.exists():
        old = {key(m): m for m in map(json.loads, LABELS.read_text(encoding="utf-8").splitlines())}
    rows = []
    for m in matches(shared):
        prev = old.get(key(m), {})
        rows.append({**m, "label": prev.get("label"), "note": prev.get("note", "")})
    LABELS.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    todo = sum(r["label"] is None for r in rows)
    gone = len(set(old) - {key(r) for r in rows})
    print(f"{len(rows)} matches, {todo} unlabelled, {gone} labelled matches no longer made")
    for k, n in near_misses(shared).items():
        print(f"not replaced: {n:5d} {k}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE.parents[2].parent / "shared" / "data")
