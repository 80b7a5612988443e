"""The same pipeline on the same corpus on the three engines, 2 cores each, timed in one run.

Corpus: JSONL built from the shared real Chinese data (bench_local_io.build_corpus: prose, web, spam
e-mail repeated with unique ids), at each size given. Pipeline: clean → t2s → pangu_rules →
sensitive_words → dedup_exact → dedup_minhash. Engines: local (2 workers), Spark local[2], Beam
DirectRunner (multi-processing, 2 workers). Every engine's output is checked byte-identical to the
local engine's before its time counts. Each run is a fresh Python process (so every Spark run pays its
JVM start, as a user's would); the engines take turns, `--repeat` rounds per size, and the ratio is of
the median times (this machine's noise is ±1–2 s per run). Prints each engine's median wall time as a
ratio to the local engine's, and every round's times.
Usage: python bench/bench_engines.py [--mb 100 200] [--engines local spark beam] [--repeat 3]"""

from __future__ import annotations

import argparse
import json
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

from bench_local_io import build_corpus  # noqa: E402

STAGES = [{"use": "clean"}, {"use": "t2s"}, {"use": "pangu_rules"}, {"use": "sensitive_words"},
          {"use": "dedup_exact"}, {"use": "dedup_minhash"}]


def run_engine(engine: str, src: Path, out: Path) -> float:
    from corpusforge.config import load_config
    from corpusforge.runner import make_plan

    cfg = out.parent / f"{engine}.yaml"
    cfg.write_text(json.dumps({"run": {"name": "bench", "output": str(out)}, "input": {"paths": [str(src)], "split_mb": 16},
                               "stages": STAGES, "engine": {"kind": engine, "workers": 2,
                                                            "options": {"master": "local[2]"} if engine == "spark" else {}}}))
    plan = make_plan(load_config(str(cfg)))
    mod = __import__(f"corpusforge.engines.{engine}", fromlist=["run"])
    t = time.perf_counter()
    mod.run(plan, workers=2, overwrite=True, progress=False)
    return time.perf_counter() - t


def outputs(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for k in ("kept", "rejects", "quarantine") for p in sorted((out / k).glob("*.parquet"))}


def timed_run(engine: str, src: Path, out: Path) -> float:
    """One engine run in a fresh interpreter; its wall time from inside (excludes interpreter start-up)."""
    r = subprocess.run([sys.executable, __file__, "--one", engine, str(src), str(out)], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"{engine} run failed:\n{r.stderr[-3000:]}")
    return float(next(line for line in r.stdout.splitlines() if line.startswith("SECONDS "))[8:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=int, nargs="+", default=[100, 200])
    ap.add_argument("--engines", nargs="+", default=["local", "spark", "beam"])
    ap.add_argument("--repeat", type=int, default=3, help="rounds per size; the ratio is of median times")
    ap.add_argument("--one", nargs=3, metavar=("ENGINE", "SRC", "OUT"), help=argparse.SUPPRESS)  # internal: one timed run
    args = ap.parse_args()
    if args.one:
        engine, src, out = args.one
        print(f"SECONDS {run_engine(engine, Path(src), Path(out))}")  # marked: the run may print too
        return
    work = Path(tempfile.mkdtemp(prefix="cf-bench-engines-"))
    engines = ["local"] + [e for e in args.engines if e != "local"]
    ratios = {}
    try:
        for mb in args.mb:
            src = work / f"corpus-{mb}.jsonl"
            docs = build_corpus(src, mb)
            times: dict[str, list[float]] = {e: [] for e in engines}
            for rnd in range(args.repeat):
                for engine in engines:
                    out = work / f"{engine}-{mb}"
                    times[engine].append(timed_run(engine, src, out))
                    if rnd == 0:
                        if engine != "local":
                            assert outputs(out) == outputs(work / f"local-{mb}"), f"{engine} output differs from local at {mb} MB"
                        info = json.loads((out / "run_info.json").read_text())["stage_seconds"]  # dedups: wall s; others: summed over parts
                        print(f"{mb} MB  {engine:<6} stage seconds: " + "  ".join(f"{k} {v:.1f}" for k, v in sorted(info.items())), flush=True)
                print(f"{mb} MB  round {rnd + 1}: " + "  ".join(f"{e} {times[e][-1]:.1f} s" for e in engines)
                      + "".join(f"  {e}/local {times[e][-1] / times['local'][-1]:.2f}x" for e in engines[1:]), flush=True)
            med = {e: statistics.median(t) for e, t in times.items()}
            for e in engines:
                print(f"{mb} MB ({docs} docs)  {e:<6} median {med[e]:6.1f} s  {src.stat().st_size / 2**20 / med[e]:6.2f} MB/s"
                      + (f"  {med[e] / med['local']:.2f}x local" if e != "local" else ""), flush=True)
                if e != "local":
                    ratios[(e, mb)] = med[e] / med["local"]
            for e in engines:
                shutil.rmtree(work / f"{e}-{mb}", ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"median time / local engine median time, {args.repeat} rounds (identical outputs): "
          + ", ".join(f"{e} {mb} MB {r:.2f}x" for (e, mb), r in sorted(ratios.items())))


if __name__ == "__main__":
    main()
