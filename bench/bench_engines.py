"""The same pipeline on the same corpus on the three engines, 2 cores each, timed in one run.

Corpus: JSONL built from the shared real Chinese data (bench_local_io.build_corpus: prose, web, spam
e-mail repeated with unique ids), at each size given. Pipeline: clean → t2s → pangu_rules →
sensitive_words → dedup_exact → dedup_minhash. Engines: local (2 workers), Spark local[2], Beam
DirectRunner (multi-processing, 2 workers). Every engine's output is checked byte-identical to the
local engine's before its time counts. Prints each engine's wall time as a ratio to the local engine's.
Usage: python bench/bench_engines.py [--mb 100 200] [--engines local spark beam]"""

from __future__ import annotations

import argparse
import json
import shutil
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=int, nargs="+", default=[100, 200])
    ap.add_argument("--engines", nargs="+", default=["local", "spark", "beam"])
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="cf-bench-engines-"))
    ratios = {}
    try:
        for mb in args.mb:
            src = work / f"corpus-{mb}.jsonl"
            docs = build_corpus(src, mb)
            times = {}
            for engine in ["local"] + [e for e in args.engines if e != "local"]:
                out = work / f"{engine}-{mb}"
                times[engine] = run_engine(engine, src, out)
                if engine != "local":
                    assert outputs(out) == outputs(work / f"local-{mb}"), f"{engine} output differs from local at {mb} MB"
                    ratios[(engine, mb)] = times[engine] / times["local"]
                print(f"{mb} MB ({docs} docs)  {engine:<6} {times[engine]:7.1f} s  {src.stat().st_size / 2**20 / times[engine]:6.2f} MB/s"
                      + (f"  {times[engine] / times['local']:.2f}x local" if engine != "local" else ""), flush=True)
                info = json.loads((out / "run_info.json").read_text())["stage_seconds"]  # dedups: wall s; others: s summed over parts
                print("    " + "  ".join(f"{k} {v:.1f}" for k, v in sorted(info.items())), flush=True)
            shutil.rmtree(work / f"spark-{mb}", ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("time / local engine time (identical outputs): "
          + ", ".join(f"{e} {mb} MB {r:.2f}x" for (e, mb), r in sorted(ratios.items())))


if __name__ == "__main__":
    main()
