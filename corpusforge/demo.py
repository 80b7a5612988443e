"""`corpusforge demo`: the whole PanGu-α flow on the bundled sample of real Chinese text, each step the
same command a user would type (corpusforge/data/pangu.yaml and pangu_mix.yaml):

  run (clean → t2s → pangu_rules → sensitive_words → spam_fasttext → quality_lr → dedup_exact →
  dedup_minhash → perplexity) → audit → tokenizer train → sample (Table-3 epochs) → shards verify →
  train tiny → eval-ppl on held-out Wikipedia → report, then a short summary."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import time
from importlib import resources

from corpusforge.config import DEFAULT_WORKERS
from corpusforge.errors import CorpusforgeError
from corpusforge.io import outputs


def _data(name: str) -> str:
    return str(resources.files("corpusforge").joinpath("data", name))


def _step(title: str, argv: list[str]) -> None:
    from corpusforge.cli import main

    print(f"\n== {title}: corpusforge {' '.join(argv)}", flush=True)
    rc = main(argv)
    if rc != 0:
        raise CorpusforgeError("demo_failed", f"demo step {title!r} failed (exit {rc}); see the message above")


def run_demo(outdir: str, workers: int = DEFAULT_WORKERS, engine: str = "local", steps: int = 800, vocab: int = 8000,
             progress: bool = True) -> int:
    t0 = time.time()
    out = os.path.abspath(outdir)
    with outputs.claim(out, "demo", overwrite=True):  # only ever replaces an earlier demo (its marker)
        _demo(out, workers, engine, steps, vocab, progress, t0)
    return 0


def _demo(out: str, workers: int, engine: str, steps: int, vocab: int, progress: bool, t0: float) -> None:
    corpus, tok, shards, train_dir = (os.path.join(out, n) for n in ("corpus", "tokenizer.json", "shards", "train"))
    quiet = [] if progress else ["--no-progress"]
    shutil.copyfile(_data("pangu_mix.yaml"), os.path.join(out, "mix.yaml"))  # its paths are relative: corpus/, tokenizer.json
    _step("clean the corpus", ["run", _data("pangu.yaml"), "--set", f"run.output={corpus}", "--engine", engine,
                               "--workers", str(workers), *quiet])
    _step("audit", ["audit", corpus])
    _step("train the tokenizer", ["tokenizer", "train", corpus, "--vocab-size", str(vocab), "--out", tok])
    _step("sample the mixture", ["sample", os.path.join(out, "mix.yaml"), "--out", shards, "--workers", str(workers), *quiet])
    _step("verify the shards", ["shards", "verify", shards])
    trained = importlib.util.find_spec("torch") is not None
    heldout = _data("sample/heldout_zhwiki.jsonl")
    if trained:
        _step("train PanGu-α tiny", ["train", "--data", shards, "--config", "tiny", "--out", train_dir, "--steps", str(steps),
                                     "--eval-every", str(max(1, steps // 4)), *quiet])
        _step("held-out perplexity", ["eval-ppl", "--model", train_dir, "--data", heldout])
    else:
        print("\n== training skipped: torch is not installed (pip install torch==2.13.0 'corpusforge[train]')")
    report = os.path.join(out, "report.html")
    _step("quality report", ["report", corpus, "--out", report, "--shards", shards, *(["--train", train_dir] if trained else [])])
    _summary(out, corpus, shards, train_dir if trained else None, report, time.time() - t0)


def _summary(out: str, corpus: str, shards: str, train_dir: str | None, report: str, seconds: float) -> None:
    with open(os.path.join(corpus, "manifest.json"), encoding="utf-8") as f:
        m = json.load(f)
    with open(os.path.join(shards, "shards.json"), encoding="utf-8") as f:
        sh = json.load(f)
    print("\n== summary")
    print("funnel:  " + " → ".join(f"{s['name']} {s['kept']}" for s in m["stages"]))
    print(f"corpus:  {m['totals']['kept']} of {m['totals']['records']} documents kept  ({corpus}/kept)")
    print(f"shards:  {sum(s['tokens'] for s in sh['shards'])} tokens in {len(sh['shards'])} shard(s)  ({shards})")
    if train_dir:
        with open(os.path.join(train_dir, "eval_ppl.json"), encoding="utf-8") as f:
            ev = json.load(f)
        from corpusforge.train.trainer import losses

        loss = losses(train_dir)
        print(f"model:   tiny, train loss {loss[0]:.3f} → {loss[-1]:.3f}; held-out PPL {ev['ppl']:.1f} "
              f"on {ev['docs']} Wikipedia articles ({ev['tokens']} tokens)")
    print(f"report:  {report}")
    print(f"time:    {seconds:.0f} s")
