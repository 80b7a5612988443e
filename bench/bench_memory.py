"""G8 resource bounds (RELIABILITY.md §3): peak RSS of `corpusforge run` (the whole process tree, via
RUSAGE_CHILDREN in a wrapper process) against the limits:

  giant line  2 GiB file holding one 1.5 GiB line (quarantined)     < 1 GiB
  bomb        1 GiB of zeros gzipped to ~1 MiB (aborted)            < 512 MiB and < 10 s
  pipeline    synth-zh M (200k docs, ~400 MB), 2 workers, every
              filtering stage + MinHash dedup                       < 8 GiB

    .venv/bin/python bench/bench_memory.py [--docs 200000] [--only giant,bomb,pipeline] [--tmp DIR]

Fixtures are generated under --tmp (deleted afterwards). The last line printed is the worst ratio of
measured peak RSS to its limit (< 1.0 passes); the exit status is 1 if any limit is exceeded.
tests/reliability/test_resources.py runs the first two as `slow` tests."""

from __future__ import annotations

import argparse
import gzip
import json
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.reliability.test_resources import peak_rss_mb, write_giant_line  # noqa: E402  (shared with the tests)
from tests.util import write_config  # noqa: E402

SHARED = REPO.parent / "shared" / "data"
STAGES = [{"use": "normalize"}, {"use": "clean"}, {"use": "t2s"}, {"use": "pangu_rules"}, {"use": "sensitive_words"},
          {"use": "spam_fasttext"}, {"use": "quality_lr"}, {"use": "dedup_exact"}, {"use": "dedup_minhash"},
          {"use": "text_sanity", "with": {"min_chars": 100}}]


def giant(tmp: Path):
    path = tmp / "huge.jsonl"
    write_giant_line(path)
    return write_config(tmp, [path], input_opts={"split_mb": 4096}, out="out_giant", name="giant.yaml"), 1024


def bomb(tmp: Path):
    path = tmp / "bomb.jsonl.gz"
    with gzip.open(path, "wb", compresslevel=9) as f:
        for _ in range(1024):
            f.write(b"\0" * (1 << 20))
    return write_config(tmp, [path], out="out_bomb", name="bomb.yaml"), 512


def synth_zh(tmp: Path, docs: int) -> Path:
    """Seeded pseudo-documents: 3–12 real paragraphs (Wikipedia, Lu Xun, web, e-mail) drawn at random,
    so documents are distinct (a few planted exact copies), ~2 KB each."""
    paras = []
    for rel in ("prose/zhwiki_articles_100.jsonl", "prose/luxun_fiction_essays.jsonl",
                "web/commoncrawl_2021-43_zh_100docs.jsonl", "spam/trec06c_email_sample.jsonl"):
        for line in open(SHARED / rel, encoding="utf-8"):
            paras += [p for p in json.loads(line)["text"].split("\n") if len(p) >= 20]
    rng = random.Random(1234)
    path = tmp / "synth.jsonl"
    with open(path, "w", encoding="utf-8") as f:
        prev = ""
        for i in range(docs):
            text = prev if i % 97 == 0 and prev else "\n".join(rng.choice(paras)[:400] for _ in range(rng.randint(3, 12)))
            f.write(json.dumps({"id": f"s{i}", "text": text}, ensure_ascii=False) + "\n")
            prev = text
    return path


def pipeline(tmp: Path, docs: int):
    src = synth_zh(tmp, docs)
    print(f"synth-zh: {docs} docs, {src.stat().st_size / 2**20:.0f} MiB", flush=True)
    cfg = write_config(tmp, [src], stages=STAGES, input_opts={"split_mb": 32}, out="out_pipe", name="pipe.yaml")
    text = cfg.read_text(encoding="utf-8").replace("workers: 1", "workers: 2")
    cfg.write_text(text, encoding="utf-8")
    return cfg, 8192


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=200_000, help="synth-zh size for the pipeline check (M = 200000)")
    ap.add_argument("--only", default="giant,bomb,pipeline")
    ap.add_argument("--tmp", default=None, help="where to generate fixtures (needs ~3 GiB free)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="cf-bench-mem-", dir=args.tmp))
    ratios = {}
    try:
        for name in args.only.split(","):
            cfg, limit = {"giant": giant, "bomb": bomb, "pipeline": lambda t: pipeline(t, args.docs)}[name](tmp)
            t0 = time.monotonic()
            rc, mb = peak_rss_mb(cfg)
            sec = time.monotonic() - t0
            ratios[name] = mb / limit
            if name == "bomb" and sec > 10:
                ratios[name] = max(ratios[name], sec / 10)
            print(f"{name}: exit {rc}, peak RSS {mb} MiB (limit {limit} MiB, ratio {mb / limit:.3f}), {sec:.1f} s", flush=True)
            if rc != 0:
                print(f"{name}: run failed (exit {rc})")
                ratios[name] = float("inf")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    worst = max(ratios, key=ratios.get)
    print(f"worst peak-RSS / limit: {ratios[worst]:.3f} ({worst})")
    return 0 if ratios[worst] < 1.0 else 1


if __name__ == "__main__":
    sys.exit(main())
