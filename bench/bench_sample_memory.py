"""Peak RSS of `corpusforge sample` when the draw is >10x its --memory-mb budget (the whole process's RSS).

Data: seven shared JSONL files (~13 MB UTF-8, ~4.0M tokens per epoch with an 8,000-id BPE trained here),
each drawn for many epochs: the big draw is ~2.1 GB of uint16 shuffle payload (~1.05G tokens) against
--memory-mb 200, so it spills into 2^k bucket files; a draw a quarter that size at the same budget shows
the peak does not grow with the draw. Peer in the same run: the big draw with an unlimited budget (one
in-memory sort, what a sampler without spilling needs). Each run is its own process, started like the
`corpusforge sample` command (corpusforge.procs.lean), and reports its VmHWM (ru_maxrss would include
this parent's size: it survives exec).
Run: .venv/bin/python bench/bench_sample_memory.py   (~5 minutes, ~6 GB of temporary disk)"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("CORPUSFORGE_SHARED", REPO.parent / "shared")) / "data"
SOURCES = {"wiki": ("prose/zhwiki_articles_100.jsonl", "text"), "luxun": ("prose/luxun_fiction_essays.jsonl", "text"),
           "wiki_versions": ("neardup/zhwiki_versions_pool.jsonl", "text"),
           "email": ("spam/trec06c_email_sample.jsonl", "text"), "sms": ("spam/sms_mudou_labelled.jsonl", "text"),
           "web": ("web/commoncrawl_2021-43_zh_100docs.jsonl", "text"),
           "debian": ("tradsimp/debian_reference_zhcn_zhtw_paragraphs.jsonl", "zh_cn")}
BUDGET_MB = 200
EPOCHS = 262.0  # ~2.1 GB of uint16 payload: 10.5x the budget
CHILD = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
from corpusforge import procs
procs.lean(system_arrow_pool=True)  # as the `corpusforge sample` command starts
from corpusforge.sample.mix import load_mixture
from corpusforge.sample.sampler import sample
mix = load_mixture(sys.argv[2])
t0 = time.perf_counter()
m = sample(mix, sys.argv[3], memory_mb=float(sys.argv[4]), progress=False)
print(json.dumps({"peak": procs.peak_rss_bytes(), "s": time.perf_counter() - t0,
                  "tokens": m["tokens"], "itemsize": 2 if m["dtype"] == "uint16" else 4, "shards": len(m["shards"])}))
"""


def run(mix: Path, out: Path, mb: float) -> dict:
    r = subprocess.run([sys.executable, "-c", CHILD, str(REPO), str(mix), str(out), str(mb)],
                       capture_output=True, text=True, check=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


def write_mix(path: Path, tok: str, epochs: float) -> Path:
    import yaml

    path.write_text(yaml.safe_dump({"seed": 3, "tokenizer": tok, "shard_tokens": 1 << 24, "sources": {
        n: {"path": str(DATA / f), "epochs": epochs, "text_field": fld} for n, (f, fld) in SOURCES.items()}}))
    return path


def main() -> None:
    sys.path.insert(0, str(REPO))
    from corpusforge.sample import tokenizer as T
    from corpusforge.sample.docs import iter_texts

    mb = 1 << 20
    with tempfile.TemporaryDirectory(prefix="bench-sample-mem-") as d:
        tok = os.path.join(d, "tok.json")
        T.train((t for _, t in iter_texts([str(DATA / "prose/zhwiki_articles_100.jsonl")])), 8000, tok)
        big_mix, quarter_mix = write_mix(Path(d) / "big.yaml", tok, EPOCHS), write_mix(Path(d) / "q.yaml", tok, EPOCHS / 4)
        rows = []
        for name, mix, budget in (("quarter draw", quarter_mix, BUDGET_MB), ("big draw", big_mix, BUDGET_MB),
                                  ("big draw, one in-memory sort (peer)", big_mix, 1 << 20)):
            out = Path(d) / "out"
            r = run(mix, out, budget)
            shutil.rmtree(out)
            payload = r["tokens"] * r["itemsize"]
            rows.append((name, budget, payload, r))
            lim = f"--memory-mb {budget}" if budget < 1 << 20 else "unlimited"
            print(f"{name:<38} {lim:<16} payload {payload / mb:8.1f} MB ({payload / mb / BUDGET_MB:5.2f}x {BUDGET_MB} MB)  "
                  f"peak RSS {r['peak'] / mb:7.1f} MB  {r['s']:6.1f} s", flush=True)
        (_, _, _, q), (_, _, payload, big), (_, _, _, peer) = rows
        print(f"peak grows {big['peak'] / q['peak']:.2f}x for a 4x larger draw; the peer needs {peer['peak'] / big['peak']:.1f}x "
              f"our memory")
        print(f"peak RSS / budget with a {payload / mb / BUDGET_MB:.1f}x draw: {big['peak'] / mb / BUDGET_MB:.2f} "
              f"(<= 1 holds the budget)")


if __name__ == "__main__":
    main()
