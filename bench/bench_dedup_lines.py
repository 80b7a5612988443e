"""Precision of dedup_lines' removals, and the boilerplate it leaves, on real pages with hand labels.

Corpus: 40 news pages of 9 sites (GNE's test pages, `page` extraction = what a WET record holds:
tests/data/dedup_lines/gne_site_pages.jsonl, one source per site) + the shared 100 Common Crawl documents
(one source). Labels: tests/data/dedup_lines/labels.jsonl — a seeded sample of the distinct lines that the
most aggressive setting (min_docs 2, min_chars 4) removes, and of the lines no setting removes, each labelled
boilerplate or content (README.md there says who labelled and how).
For each (min_docs, min_chars) the real stage runs after dedup_exact and dedup_minhash, as in pangu_plus.yaml
(a duplicated page shares every line with its copy: document dedup comes first) (local engine, scope: source); precision = boilerplate share
of the labelled lines it removed; left = estimated share of boilerplate among the distinct lines it kept.
Usage: python bench/bench_dedup_lines.py [--write-sample]   (the last line is the default's precision)"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

DATA = REPO / "tests/data/dedup_lines"
SHARED = Path(__file__).resolve().parents[2] / "shared/data"
GRID = [(md, mc) for md in (2, 3, 4, 5) for mc in (4, 6, 8, 12)]


def corpus(d: Path) -> Path:
    rows = [json.loads(x) for x in (DATA / "gne_site_pages.jsonl").read_text(encoding="utf-8").splitlines()]
    rows += [{"id": r["id"], "source": "cc", "text": r["text"]}
             for r in map(json.loads, (SHARED / "web/commoncrawl_2021-43_zh_100docs.jsonl").read_text(encoding="utf-8").splitlines())]
    p = d / "pages.jsonl"
    p.write_text("".join(json.dumps({"id": r["id"], "source": r["source"], "text": r["text"]}, ensure_ascii=False) + "\n"
                         for r in rows), encoding="utf-8")
    return p


def removed_lines(src: Path, d: Path, min_docs: int, min_chars: int) -> tuple[set, set]:
    """Runs dedup_lines; (removed, kept) distinct (source, normalized line) of the corpus."""
    import pyarrow.parquet as pq
    import yaml

    from corpusforge.algorithms.minhash import normalized_text
    from corpusforge.cli import main

    out = d / f"out-{min_docs}-{min_chars}"
    cfg = {"run": {"name": "lines", "output": str(out)},
           "input": {"format": "jsonl", "paths": [str(src)], "source_field": "source"},
           "stages": [{"use": "dedup_exact"}, {"use": "dedup_minhash"}, {"use": "dedup_lines", "with": {"min_docs": min_docs, "min_chars": min_chars, "scope": "source"}}],
           "engine": {"kind": "local", "workers": 1}}
    (d / "cfg.yaml").write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    assert main(["run", str(d / "cfg.yaml"), "--no-progress", "--overwrite"]) == 0
    kept_text = {dict(r["meta"])["id"]: r["text"] for f in sorted((out / "kept").glob("*.parquet"))
                 for r in pq.read_table(f).to_pylist()}
    gone = {dict(r["meta"])["id"] for f in sorted((out / "rejects").glob("*.parquet")) for r in pq.read_table(f).to_pylist()
            if r["stage"] == "dedup_lines"}
    removed, kept = set(), set()
    for r in map(json.loads, src.read_text(encoding="utf-8").splitlines()):
        if r["id"] not in kept_text and r["id"] not in gone:  # a duplicate page: not dedup_lines' to judge
            continue
        after = kept_text[r["id"]].split("\n") if r["id"] in kept_text else []
        j = 0
        for line in r["text"].split("\n"):  # kept lines are a subsequence of the input's lines
            key = (r["source"], normalized_text(line))
            if j < len(after) and after[j] == line:
                j += 1
                kept.add(key)
            else:
                removed.add(key)
    return removed, kept - removed


def write_sample(src: Path, d: Path) -> None:
    from corpusforge.algorithms.minhash import normalized_text

    removed, kept = removed_lines(src, d, 2, 4)
    rng = random.Random(2026)
    first = {}
    for r in map(json.loads, src.read_text(encoding="utf-8").splitlines()):
        for line in r["text"].split("\n"):
            first.setdefault((r["source"], normalized_text(line)), line)
    pick = rng.sample(sorted(removed), min(300, len(removed))) + rng.sample(sorted(k for k in kept if k[1]), 200)
    with open(DATA / "labels.jsonl", "w", encoding="utf-8") as f:
        for s, n in pick:
            f.write(json.dumps({"source": s, "line": first[(s, n)], "removed_at_2_4": (s, n) in removed, "label": None,
                                "note": ""}, ensure_ascii=False) + "\n")
    print(f"wrote {len(pick)} lines to label ({len(removed)} removed, {len(kept)} kept at min_docs 2, min_chars 4)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--write-sample", action="store_true", help="write the unlabelled sample (overwrites labels.jsonl)")
    args = ap.parse_args()
    from corpusforge.algorithms.minhash import normalized_text
    from corpusforge.stages.dedup_lines import DedupLines

    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        src = corpus(d)
        if args.write_sample:
            return write_sample(src, d)
        labels = {}
        for r in map(json.loads, (DATA / "labels.jsonl").read_text(encoding="utf-8").splitlines()):
            labels[(r["source"], normalized_text(r["line"]))] = (r["label"] == "boilerplate", r["removed_at_2_4"])
        pop_removed, pop_kept = removed_lines(src, d, 2, 4)
        s_removed = [b for b, rem in labels.values() if rem]
        s_kept = [b for b, rem in labels.values() if not rem]
        bp_kept_rate = sum(s_kept) / len(s_kept)  # boilerplate among lines no setting removes
        print(f"corpus: {len(src.read_text(encoding='utf-8').splitlines())} documents, {src.stat().st_size / 2**20:.2f} MB; "
              f"labelled {len(s_removed)} of {len(pop_removed)} lines removed at (2, 4) and {len(s_kept)} of {len(pop_kept)} others")
        print(f"{'min_docs':>8} {'min_chars':>9} {'removed':>8} {'labelled':>8} {'precision':>9} {'boilerplate left':>16}")
        default = DedupLines.Params()
        headline = None
        for md, mc in GRID:
            removed, kept = removed_lines(src, d, md, mc)
            lab = [labels[k][0] for k in removed if k in labels]
            prec = sum(lab) / len(lab) if lab else float("nan")
            # boilerplate left among kept lines: labelled rate of the (2,4)-removed lines this setting keeps,
            # scaled to their population, plus the rate of the never-removed sample over the rest
            back = [labels[k][0] for k in pop_removed - removed if k in labels]
            n_back = len(pop_removed - removed)
            left = ((sum(back) / len(back) if back else 0) * n_back + bp_kept_rate * len(pop_kept)) / max(n_back + len(pop_kept), 1)
            mark = " <- default" if (md, mc) == (default.min_docs, default.min_chars) else ""
            print(f"{md:>8} {mc:>9} {len(removed):>8} {len(lab):>8} {prec:>9.3f} {left:>16.3f}{mark}")
            if mark:
                headline = (prec, len(lab), left)
        print(f"dedup_lines precision {headline[0]:.3f} on {headline[1]} labelled removed lines at the default "
              f"(min_docs {default.min_docs}, min_chars {default.min_chars}); boilerplate left {headline[2]:.3f}")


if __name__ == "__main__":
    main()
