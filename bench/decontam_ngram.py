"""The n of `decontaminate`, measured: false hits on unrelated real text and recall on planted overlaps.

Evaluation items: tests/data/evals/*.jsonl (CMMLU test items: question and the four choices, each field
indexed on its own; see tests/data/evals/README.md). Unrelated text: all of ../shared/data (every JSONL
row's text fields, every raw HTML/text file, every lexicon line), none of it written from CMMLU.

For each n: documents with at least one verified n-gram in common with an eval item ("false hits"),
the grams behind them, and the items that cannot be checked (no field of n normalized characters).
Then recall: every checkable item is planted into a real document (Wikipedia / news / Common Crawl) three
ways (the longest field verbatim; the same with spaces, line breaks, full-width Latin and digits, upper
case and swapped punctuation, which the normalization absorbs; a partial span of n+2 characters), and
run through the stage in drop and strip mode.

    .venv/bin/python bench/decontam_ngram.py [--shared ../shared/data] [--n 6,8,10,12,13,15,20,24,26]

The last line is the headline.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from corpusforge.algorithms.minhash import normalized_text  # noqa: E402
from corpusforge.stages.decontaminate import DEFAULT_N, Decontaminate, EvalIndex, read_items  # noqa: E402

EVAL_DIR = REPO / "tests" / "data" / "evals"
FIELDS = ["question", "A", "B", "C", "D"]
TEXT_FIELDS = ("text", "zh_cn", "zh_tw", "input", "expected", "title", "subject")


def eval_specs() -> list[dict]:
    return [{"path": str(p), "fields": FIELDS} for p in sorted(EVAL_DIR.glob("*.jsonl"))]


def shared_docs(root: Path) -> list[tuple[str, str]]:
    """(file relative to root, text) for every text of the shared data."""
    docs = []
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        if p.suffix == ".jsonl":
            for ln in p.read_text(encoding="utf-8").splitlines():
                if ln.strip():
                    rec = json.loads(ln)
                    docs += [(rel, rec[k]) for k in TEXT_FIELDS if isinstance(rec.get(k), str) and rec[k]]
        elif p.suffix == ".txt":  # lexicon lists, readability expected text: one text a line
            docs += [(rel, ln) for ln in p.read_text(encoding="utf-8", errors="replace").splitlines() if ln.strip()]
        elif p.suffix in (".html", ".htm"):
            docs.append((rel, p.read_bytes().decode("utf-8", errors="replace")))
    return docs


def false_hits(index: EvalIndex, texts: list[str], chunk: int = 2048):
    """(hit doc indices, Counter of the normalized grams behind the hits, Counter of the items hit)."""
    docs, grams, items = set(), Counter(), Counter()
    for lo in range(0, len(texts), chunk):
        d, pos, k, cp, offs = index.windows(texts[lo:lo + chunk])
        for dd, pp in zip(d, pos):
            grams[cp[offs[dd] + pp: offs[dd] + pp + index.n].tobytes().decode("utf-32-le")] += 1
        dd, it = index.doc_items(d, k)
        docs.update((dd + lo).tolist())
        items.update(index.item_key(i) for i in it)
    return sorted(docs), grams, items


FULL = {c: chr(ord(c) + 0xFEE0) for c in "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"}
PUNCT = {"，": ",", "。": ". ", "“": '"', "”": '"', "：": ":", "；": ";", "（": "(", "）": ")", "、": " / "}


def disguise(s: str, rng: random.Random) -> str:
    """What the normalization absorbs: spacing, line breaks, full width, case, punctuation style."""
    out = []
    for c in s:
        c = PUNCT.get(c, c)
        c = FULL.get(c.upper(), c) if c.isascii() and c.isalnum() and rng.random() < 0.5 else c
        out.append(c + (rng.choice([" ", "\n", "\u3000", "　"]) if rng.random() < 0.15 else ""))
    return "".join(out)


def plants(stage, hosts: list[str], seed: int = 0):
    """[(text, item key, host prefix, planted string, host suffix, kind)]: every checkable item, three ways."""
    from corpusforge.algorithms.minhash import normalize_codepoints

    rng, n = random.Random(seed), stage.params.n
    out = []
    for ev in stage.params.evals:
        for row, fields in enumerate(read_items(ev)):
            lens = np.diff(normalize_codepoints(fields)[1])
            if lens.max() < n:
                continue  # unchecked: no field of n normalized characters
            f = fields[int(lens.argmax())]
            chars = [i for i, c in enumerate(f) if np.diff(normalize_codepoints([c])[1])[0]]  # kept characters
            m = min(n + 2, len(chars))
            a = rng.randrange(0, len(chars) - m + 1)
            span = f[chars[a]: chars[a + m - 1] + 1]  # m >= n normalized characters, kept ones at both ends
            for kind, s in (("whole", f), ("disguised", disguise(f, rng)), ("partial", span)):
                h = hosts[rng.randrange(len(hosts))]
                cut = rng.randrange(len(h) + 1)
                while 0 < cut < len(h) and not ("\u4e00" <= h[cut - 1] <= "\u9fff"):  # plant after a Han char
                    cut -= 1
                out.append((h[:cut] + s + h[cut:], f"{ev.eval_name}#{row}", h[:cut], s, h[cut:], kind))
    return out


def recall(shared: Path, n: int) -> dict:
    hosts = [t for rel, t in shared_docs(shared) if rel.startswith(("prose/zhwiki", "diverse/news", "web/common"))]
    drop = Decontaminate(Decontaminate.Params(evals=eval_specs(), n=n))
    strip = Decontaminate(Decontaminate.Params(evals=eval_specs(), n=n, mode="strip"))
    drop.setup()
    strip.setup()
    cases = plants(drop, hosts)
    batch = pa.RecordBatch.from_pydict({"text": [c[0] for c in cases]})
    items = drop.score(batch)["items"].to_pylist()
    found = [bool(got) and c[1] in got.split(",") for c, got in zip(cases, items)]
    out = strip.map(batch).column("text").to_pylist()
    strip_ = Counter()
    for c, o in zip(cases, out):
        pre, suf = c[2], c[4]
        if o == pre + suf:
            strip_["exact"] += 1
        elif o.startswith(pre) and o.endswith(suf) and not normalized_text(o[len(pre):len(o) - len(suf)]):
            strip_["edge punctuation/space of the plant left"] += 1
        else:  # the host's neighbouring characters continue the item's text: they are cut with it
            strip_["host neighbours cut too"] += 1
    return {"cases": len(cases), "found": sum(found), "kinds": dict(Counter(c[5] for c in cases)),
            "found_by_kind": dict(Counter(c[5] for c, ok in zip(cases, found) if ok)), "strip": dict(strip_),
            "strip_left": int((drop.score(pa.RecordBatch.from_pydict({"text": out}))["hits"].to_numpy() > 0).sum())}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default=os.environ.get("CORPUSFORGE_SHARED_DATA", str(REPO.parent / "shared" / "data")))
    ap.add_argument("--n", default="6,8,10,11,12,13,15,20,23,24,26")
    args = ap.parse_args()
    root = Path(args.shared)
    docs = shared_docs(root)
    texts = [t for _, t in docs]
    mb = sum(len(t.encode("utf-8")) for t in texts) / 2**20
    specs = eval_specs()
    names = [Path(s["path"]).stem for s in specs]
    files = [read_items(Decontaminate.Params(evals=[s]).evals[0]) for s in specs]
    print(f"unrelated text: {len(texts):,} texts, {mb:.1f} MB from {root}; eval items: "
          + ", ".join(f"{nm} {len(f)}" for nm, f in zip(names, files)))
    show = {int(x) for x in args.n.split(",")}
    print("\n| n | texts with a false hit | items behind them | unchecked items (" + " + ".join(names) + ") | top grams (hits) |")
    print("|---|---|---|---|---|")
    longest: dict[str, int] = {}  # item → the longest run it shares with the unrelated text
    clean = None
    for n in range(6, max(show | {DEFAULT_N}) + 1):
        ix = EvalIndex(names, files, n)
        hit, grams, items = false_hits(ix, texts)
        longest.update({k: n for k in items})
        if clean is None and not hit:
            clean = n
        if n in show:
            top = ", ".join(f"{g} ({c})" for g, c in grams.most_common(3))
            print(f"| {n} | {len(hit)} | {len(items)} | {' + '.join(str(int(u)) for u in ix.unchecked)} | {top or '-'} |")
    runs = sorted(longest.values(), reverse=True)
    print(f"\nitems sharing a run of >= 6 normalized characters with unrelated text: {len(runs)}; "
          f"their longest runs: {dict(sorted(Counter(runs).items()))}")
    for k, v in sorted(longest.items(), key=lambda kv: -kv[1])[:2]:
        print(f"  {k}: {v} characters")
    print(f"smallest n with no false hit: {clean}; default n = {DEFAULT_N}")
    r = recall(root, DEFAULT_N)
    print(f"recall at n={DEFAULT_N}: {r['found']}/{r['cases']} planted ({r['found_by_kind']} of {r['kinds']}); "
          f"strip: {r['strip']} of {r['cases']}; texts still overlapping after strip: {r['strip_left']}")
    fh = len(false_hits(EvalIndex(names, files, DEFAULT_N), texts)[0])
    print(f"decontaminate: default n={DEFAULT_N} (smallest clean n {clean} + 2): {fh} false-hit texts of {len(texts):,} "
          f"unrelated ({mb:.0f} MB), recall {100 * r['found'] / r['cases']:.1f}% ({r['found']}/{r['cases']} planted)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
