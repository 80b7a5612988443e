"""Cost per stage per GB of the PanGu pipeline (pipelines/configs/pangu.yaml's stages) at two corpus sizes,
on the local engine with 2 workers, beside the I/O floor measured in the same run.

Corpus: the shared real Chinese text (prose, Common Crawl web, spam e-mail), each document repeated
with seeded character substitutions — 12 % of characters for most copies (distinct documents:
exact and near-dup dedup keep them), 2 % for every 20th copy (a near-duplicate dedup must remove) —
so every stage sees realistic, non-identical input at any size. Stage seconds come from the run's
run_info.json (summed over workers); the floor is pyarrow read_json → write_parquet of the same file.
Prints seconds per GB per stage at both sizes (of the median run) and the growth of the whole pipeline's
cost per GB; the last line is the median pipeline time over the median floor at the larger size.
Usage: python bench/bench_scaling.py [--mb 25 100] [--repeat 3]"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(REPO))

from bench_local_io import SHARED, floor  # noqa: E402


def build(path: Path, target_mb: int) -> int:
    base = []
    for f in ["prose/luxun_fiction_essays.jsonl", "prose/zhwiki_articles_100.jsonl",
              "web/commoncrawl_2021-43_zh_100docs.jsonl", "spam/trec06c_email_sample.jsonl"]:
        base += [json.loads(x)["text"] for x in (SHARED / f).read_text(encoding="utf-8").splitlines()]
    alphabet = sorted({c for t in base[:200] for c in t if "\u4e00" <= c <= "\u9fff"})
    size, i = 0, 0
    with open(path, "w", encoding="utf-8") as out:
        while size < target_mb << 20:
            text, copy = base[i % len(base)], i // len(base)
            if copy:
                rng = random.Random(i)
                rate = 0.02 if copy % 20 == 0 else 0.12
                text = "".join(rng.choice(alphabet) if rng.random() < rate and "\u4e00" <= c <= "\u9fff" else c for c in text)
            line = json.dumps({"id": f"doc-{i}", "text": text}, ensure_ascii=False) + "\n"
            out.write(line)
            size += len(line.encode("utf-8"))
            i += 1
    return i


def run_pipeline(src: Path, out: Path, config: Path) -> dict:
    import yaml

    stages = yaml.safe_load(config.read_text(encoding="utf-8"))["stages"]
    for s in stages:
        s.pop("sources", None)  # one source here
    cfg = out.parent / "cfg.yaml"
    cfg.write_text(json.dumps({"run": {"output": str(out)}, "input": {"paths": [str(src)], "split_mb": 8},
                               "stages": stages, "limits": {"max_quarantine_fraction": 1.0}}))
    r = subprocess.run([sys.executable, __file__, "--one", str(cfg)], capture_output=True, text=True)
    if r.returncode:
        sys.exit(f"pipeline run failed:\n{r.stderr[-3000:]}")
    info = json.loads((out / "run_info.json").read_text())
    m = json.loads((out / "manifest.json").read_text())
    return {**json.loads(r.stdout.strip().splitlines()[-1]), "stages": info["stage_seconds"],
            "funnel": {s["name"]: s["in"] for s in m["stages"]}}


def one(cfg: str) -> None:
    """One run in a fresh process, as `corpusforge run` would be, so the workers' RSS is theirs and not this
    bench's (its corpora and floor table). Prints the run's wall time (from the plan to the manifest, as
    the floor counts no interpreter start either) and the largest worker's peak RSS: the forked pool
    processes are this process's children, and ru_maxrss counts the pages they share with it."""
    from corpusforge.config import load_config
    from corpusforge.engines import local
    from corpusforge.runner import make_plan

    plan = make_plan(load_config(cfg))
    t = time.perf_counter()
    local.run(plan, workers=2, overwrite=True, progress=False)
    print(json.dumps({"wall": time.perf_counter() - t, "rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=int, nargs=2, default=[25, 100])
    ap.add_argument("--config", type=Path, default=REPO / "corpusforge/data/pangu.yaml",
                    help="the pipeline whose stages run (default pangu.yaml; pangu_plus.yaml adds dedup_lines, "
                         "decontaminate and pii, and prints dedup_lines' cost against dedup_exact's)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per size (pipeline and floor in turns); medians are "
                    "reported (this machine's noise is about ±15 %% per run)")
    ap.add_argument("--one", help=argparse.SUPPRESS)  # internal: one run of this config
    args = ap.parse_args()
    if args.one:
        return one(args.one)
    work = Path(tempfile.mkdtemp(prefix="cf-bench-scaling-"))
    res = {}
    try:
        for mb in args.mb:
            src = work / f"c{mb}.jsonl"
            docs = build(src, mb)
            gb = src.stat().st_size / 2**30
            runs = []
            for _ in range(args.repeat):  # floor and pipeline take turns: both see the same load
                fl = floor(src, work / f"floor{mb}.parquet")
                runs.append((fl, run_pipeline(src, work / f"out{mb}", args.config)))
                shutil.rmtree(work / f"out{mb}")
            fl = statistics.median(f for f, _ in runs)
            r = sorted((r for _, r in runs), key=lambda r: r["wall"])[len(runs) // 2]  # the median run, stages and all
            r["rss_mb"] = max(r_["rss_mb"] for _, r_ in runs)
            res[mb] = (gb, fl, r)
            walls, floors = ", ".join(f"{r_['wall']:.1f}" for _, r_ in runs), ", ".join(f"{f:.2f}" for f, _ in runs)
            print(f"{mb} MB, {docs} docs: pipeline {r['wall']:.1f} s wall ({r['wall'] / gb:,.0f} s/GB; runs {walls}), I/O floor "
                  f"{fl:.2f} s (runs {floors}): {r['wall'] / fl:.1f}x the floor; peak RSS of the largest worker "
                  f"{r['rss_mb']:,.0f} MB", flush=True)
        a, b = args.mb
        print(f"\n{'stage':<18}{'docs in ' + str(a):>14}{'docs in ' + str(b):>14}{'s/GB @' + str(a):>12}{'s/GB @' + str(b):>12}{'growth':>8}")
        for st in res[a][2]["stages"]:
            ga, gb_ = res[a][2]["stages"][st] / res[a][0], res[b][2]["stages"].get(st, 0.0) / res[b][0]
            print(f"{st:<18}{res[a][2]['funnel'].get(st, 0):>14}{res[b][2]['funnel'].get(st, 0):>14}{ga:>12,.0f}{gb_:>12,.0f}"
                  f"{gb_ / ga if ga else float('nan'):>8.2f}")
        if "dedup_lines" in res[b][2]["stages"]:
            lines, exact = res[b][2]["stages"]["dedup_lines"], res[b][2]["stages"]["dedup_exact"]
            print(f"dedup_lines {lines / res[b][0]:,.0f} s/GB = {lines / exact:.2f}x dedup_exact's {exact / res[b][0]:,.0f} "
                  f"s/GB at {b} MB (both: the global plan's wall time on 2 workers)")
        wa, wb = res[a][2]["wall"] / res[a][0], res[b][2]["wall"] / res[b][0]
        print(f"whole pipeline on 2 workers: {wa:,.0f} s/GB at {a} MB, {wb:,.0f} s/GB at {b} MB: cost per GB x{wb / wa:.2f} "
              f"for {b / a:.0f}x the data; {res[b][2]['wall'] / res[b][1]:.1f}x the I/O floor")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
