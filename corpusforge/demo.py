"""`corpusforge demo`: the whole PanGu-α flow on the bundled sample of real Chinese text, each step
printed as the command a user would type and run through the same library calls
(corpusforge/data/pangu.yaml and pangu_mix.yaml):

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

from corpusforge import engines
from corpusforge.config import DEFAULT_WORKERS
from corpusforge.errors import CorpusforgeError
from corpusforge.io import outputs


def _data(name: str) -> str:
    return str(resources.files("corpusforge").joinpath("data", name))


def _step(title: str, argv: list[str]) -> None:
    print(f"\n== {title}: corpusforge {' '.join(argv)}", flush=True)


def _failed(title: str, problems: list[str]) -> None:
    for p in problems:
        print(f"{title}: {p}")
    if problems:
        raise CorpusforgeError("demo_failed", f"demo step {title!r} failed; see the messages above")


def run_demo(outdir: str, workers: int = DEFAULT_WORKERS, engine: str = "local", steps: int = 800, vocab: int = 8000,
             progress: bool = True) -> int:
    t0 = time.time()
    out = os.path.abspath(outdir)
    with outputs.claim(out, "demo", overwrite=True):  # only ever replaces an earlier demo (its marker)
        _demo(out, workers, engine, steps, vocab, progress, t0)
    return 0


def _demo(out: str, workers: int, engine: str, steps: int, vocab: int, progress: bool, t0: float) -> None:
    from corpusforge.audit import audit
    from corpusforge.config import load_config
    from corpusforge.report.build import build_report
    from corpusforge.runner import make_plan
    from corpusforge.sample import shards as S
    from corpusforge.sample import tokenizer as T
    from corpusforge.sample.mix import load_mixture
    from corpusforge.sample.sampler import format_table, sample

    corpus, tok, shards, train_dir = (os.path.join(out, n) for n in ("corpus", "tokenizer.json", "shards", "train"))
    quiet = [] if progress else ["--no-progress"]
    mix = os.path.join(out, "mix.yaml")
    shutil.copyfile(_data("pangu_mix.yaml"), mix)  # its paths are relative: corpus/, tokenizer.json
    _step("clean the corpus", ["run", _data("pangu.yaml"), "--set", f"run.output={corpus}", "--engine", engine,
                               "--workers", str(workers), *quiet])
    cfg = load_config(_data("pangu.yaml"), [f"run.output={corpus}"])
    plan = make_plan(cfg)
    print(engines.funnel(engines.run(plan, engine, workers=workers, progress=None if progress else False), plan.out))
    _step("audit", ["audit", corpus])
    _failed("audit", audit(corpus))
    _step("train the tokenizer", ["tokenizer", "train", corpus, "--vocab-size", str(vocab), "--out", tok])
    print(T.describe(tok, T.train_on([corpus], vocab, tok)))
    _step("sample the mixture", ["sample", mix, "--out", shards, "--workers", str(workers), *quiet])
    print(format_table(sample(load_mixture(mix), shards, workers=workers, progress=progress, where=mix)))
    _step("verify the shards", ["shards", "verify", shards])
    _failed("shards verify", S.verify(shards))
    print(S.summary(shards))
    trained = importlib.util.find_spec("torch") is not None
    heldout = _data("sample/heldout_zhwiki.jsonl")
    if trained:
        from corpusforge.train.evaluate import eval_ppl
        from corpusforge.train.trainer import TrainArgs, summary, train

        eval_every = max(1, steps // 4)
        _step("train PanGu-α tiny", ["train", "--data", shards, "--config", "tiny", "--out", train_dir, "--steps", str(steps),
                                     "--eval-every", str(eval_every), *quiet])
        print(summary(train(TrainArgs(data=shards, out=train_dir, config="tiny", steps=steps, eval_every=eval_every,
                                      progress=progress)), train_dir))
        _step("held-out perplexity", ["eval-ppl", "--model", train_dir, "--data", heldout])
        print(json.dumps(eval_ppl(train_dir, heldout), ensure_ascii=False))
    else:
        print("\n== training skipped: torch is not installed (pip install torch==2.13.0 'corpusforge[train]')")
    report = os.path.join(out, "report.html")
    _step("quality report", ["report", corpus, "--out", report, "--shards", shards, *(["--train", train_dir] if trained else [])])
    build_report([corpus], report, [shards], [train_dir] if trained else [])
    print(f"report: {report}")
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
