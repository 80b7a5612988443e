"""Peak RSS of `corpusforge sample` when the draw is >10x its --memory-mb budget.

Data: seven shared JSONL files (~13 MB UTF-8, ~2.9M tokens with an 8,000-id BPE trained here),
each drawn for 12 epochs: ~34M tokens, ~68 MB of uint16 shuffle payload, against --memory-mb 6
(the payload spills into 2^k bucket files). Peer in the same run: the same draw with --memory-mb 4096
(one in-memory sort). Each run is its own process, reporting its baseline RSS (interpreter, pyarrow,
tokenizer loaded) and its peak RSS (ru_maxrss); the budget governs what is above the baseline.
Run: .venv/bin/python bench/bench_sample_memory.py"""

from __future__ import annotations

import json
import os
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
EPOCHS = 12.0
CHILD = r"""
import json, resource, sys
sys.path.insert(0, sys.argv[1])
from corpusforge.sample.mix import load_mixture
from corpusforge.sample.sampler import sample
from corpusforge.sample.tokenizer import load
mix = load_mixture(sys.argv[2])
tok = load(mix.resolve(mix.tokenizer))  # count the tokenizer in the baseline, as sample() loads it too
rss = lambda: int(next(l for l in open("/proc/self/status") if l.startswith("VmRSS")).split()[1]) * 1024
base = rss()
m = sample(mix, sys.argv[3], memory_mb=float(sys.argv[4]), progress=False)
print(json.dumps({"base": base, "peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                  "tokens": m["tokens"], "itemsize": 2 if m["dtype"] == "uint16" else 4, "shards": len(m["shards"])}))
"""


def run(mix: Path, out: Path, mb: float) -> dict:
    r = subprocess.run([sys.executable, "-c", CHILD, str(REPO), str(mix), str(out), str(mb)],
                       capture_output=True, text=True, check=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    sys.path.insert(0, str(REPO))
    import yaml

    from corpusforge.sample import tokenizer as T
    from corpusforge.sample.docs import iter_texts

    budget = 6.0
    with tempfile.TemporaryDirectory(prefix="bench-sample-mem-") as d:
        tok = os.path.join(d, "tok.json")
        T.train((t for _, t in iter_texts([str(DATA / "prose/zhwiki_articles_100.jsonl")])), 8000, tok)
        mix = Path(d) / "mix.yaml"
        mix.write_text(yaml.safe_dump({"seed": 3, "tokenizer": tok, "shard_tokens": 1 << 24, "sources": {
            n: {"path": str(DATA / f), "epochs": EPOCHS, "text_field": fld} for n, (f, fld) in SOURCES.items()}}))
        small = run(mix, Path(d) / "small", budget)
        big = run(mix, Path(d) / "big", 4096)
        same = all((Path(d) / "small" / f).read_bytes() == (Path(d) / "big" / f).read_bytes()
                   for f in os.listdir(Path(d) / "big"))
        payload = small["tokens"] * small["itemsize"]
        mb = 1 << 20
        print(f"draw: {small['tokens']} tokens ({EPOCHS:g} epochs of {len(SOURCES)} files), payload {payload / mb:.1f} MB "
              f"= {payload / mb / budget:.1f}x the {budget:g} MB budget; outputs identical across budgets: {same}")
        for name, r, b in (("--memory-mb 6", small, budget), ("--memory-mb 4096 (peer)", big, 4096)):
            print(f"{name:<24} baseline {r['base'] / mb:7.1f} MB  peak {r['peak'] / mb:7.1f} MB  "
                  f"above baseline {(r['peak'] - r['base']) / mb:7.1f} MB")
        print(f"above-baseline RSS / budget at {budget:g} MB: {(small['peak'] - small['base']) / mb / budget:.2f} "
              f"(peer with one in-memory sort: {(big['peak'] - big['base']) / mb:.1f} MB above baseline)")


if __name__ == "__main__":
    main()
