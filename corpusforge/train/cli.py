"""Subcommands: train, eval-ppl, quality-eval (torch is imported only when one of them runs)."""

from __future__ import annotations

import argparse
import json
import os


def _cmd_train(args) -> int:
    from corpusforge.train.trainer import TrainArgs, summary, train

    _threads(args)
    r = train(TrainArgs(data=args.data, out=args.out, config=args.config, steps=args.steps, batch_size=args.batch_size,
                        lr=args.lr, warmup=args.warmup, seed=args.seed, seq_len=args.seq_len, eval_every=args.eval_every,
                        checkpoint_every=args.checkpoint_every, device=args.device, resume=args.resume,
                        overwrite=args.overwrite, stop_at=args.stop_at, progress=not args.no_progress))
    print(summary(r, args.out))
    return 0


def _cmd_eval_ppl(args) -> int:
    from corpusforge.train import evaluate

    _threads(args)
    res = evaluate.eval_ppl(args.model, args.data, args.out, args.text_field, args.device, args.write_cutoffs)
    print(json.dumps(res, ensure_ascii=False))
    return 0


def _cmd_quality_eval(args) -> int:
    from corpusforge.errors import CorpusforgeError
    from corpusforge.train import ablate, quality_eval

    if (args.config is None) == (args.ablate is None):
        raise CorpusforgeError("bad_argument", "quality-eval takes CONFIG.yaml or --ablate CONFIG.yaml (one of them)")
    _threads(args)
    mod = ablate if args.ablate else quality_eval
    cfg = mod.load_config(args.ablate or args.config)
    if args.out:
        cfg.out = os.path.abspath(args.out)
    rep = mod.run(cfg, progress=not args.no_progress)
    print(mod.table(rep))
    out = cfg.path(cfg.out)
    print(f"written: {os.path.join(out, 'ablation.json')}, ablation.md, quality_eval.json, variants/" if args.ablate
          else f"written: {os.path.join(out, 'quality_eval.json')}, quality_eval.md")
    return 0


def _threads(args) -> None:
    if getattr(args, "threads", None):
        from corpusforge.train import require_torch

        require_torch().set_num_threads(args.threads)


def add_cli(sub) -> None:
    from corpusforge.cli import add_storage_opt
    from corpusforge.train.quality_eval import MIN_DOCS  # no torch: the module imports it only in run()

    t = sub.add_parser("train", help="train a compact PanGu-α on shards from `corpusforge sample`",
                       description="Train PanGu-α (pre-LN decoder + top query layer) on the shards of `corpusforge sample`: "
                       "memory-mapped, document-level train/validation split, AdamW with linear warmup and cosine decay, "
                       "gradient clipping, periodic validation and checkpoints. Writes OUT/log.jsonl (one JSON row per step: "
                       "step, tokens, loss, lr; eval rows: eval_loss, eval_ppl), OUT/config.json, OUT/tokenizer.json, "
                       "OUT/checkpoint.pt and, when finished, OUT/model.pt.")
    t.add_argument("--data", required=True, metavar="SHARDS", help="shard directory written by `corpusforge sample` (on an object store it is "
                   "copied into a local cache first, checked by sha256)")
    t.add_argument("--out", required=True, metavar="RUN", help="run directory to create (or continue with --resume); on an object store "
                   "it is uploaded at each checkpoint")
    t.add_argument("--config", default="tiny", choices=["tiny", "350m", "2.6b", "13b", "200b"],
                   help="model shape (default tiny: 2 layers, d_model 64, trains on a laptop CPU; 350m is the paper's eval model)")
    t.add_argument("--steps", type=int, default=200, help="optimizer steps (default 200); also the cosine schedule's length")
    t.add_argument("--batch-size", type=int, default=8, help="sequences per step (default 8)")
    t.add_argument("--lr", type=float, default=3e-3, help="peak learning rate (default 3e-3; decays to 0.1x by cosine)")
    t.add_argument("--warmup", type=int, help="linear warmup steps (default 10%% of --steps, at most 200)")
    t.add_argument("--seed", type=int, default=1234, help="seeds the model init and the data order (default 1234)")
    t.add_argument("--seq-len", type=int, help="context length (default: the config's; tiny 128, paper shapes 1024)")
    t.add_argument("--eval-every", type=int, default=50, help="validate every N steps (default 50, and at the end)")
    t.add_argument("--checkpoint-every", type=int, help="checkpoint every N steps (default: --eval-every, and at the end)")
    t.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt; the loss curve is the same "
                   "as an uninterrupted run's")
    t.add_argument("--overwrite", action="store_true", help="start over in an OUT that already holds a run")
    t.add_argument("--stop-at", type=int, metavar="STEP", help="stop after STEP with a checkpoint, as an interruption would "
                   "(the schedule still spans --steps)")
    t.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="auto: CUDA when present, else CPU")
    t.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_storage_opt(t)
    t.set_defaults(fn=_cmd_train)

    e = sub.add_parser("eval-ppl", help="perplexity of a trained run on held-out data",
                       description="Perplexity (exp of the mean per-token loss; every document scored on its own from an "
                       "EOD context) of RUN on HELDOUT. Prints and writes JSON {ppl, loss, tokens, docs}.")
    e.add_argument("--model", required=True, metavar="RUN", help="a finished `corpusforge train` run directory")
    e.add_argument("--data", required=True, metavar="HELDOUT", help="a shard directory (same tokenizer), a corpusforge run "
                   "directory, or .jsonl/.parquet/.txt text, tokenized with RUN/tokenizer.json")
    e.add_argument("--text-field", default="text", help="text field of .jsonl/.parquet inputs (default text)")
    e.add_argument("--out", metavar="FILE", help="where to write the JSON (default RUN/eval_ppl.json)")
    e.add_argument("--write-cutoffs", action="store_true", help="also write RUN/ppl_cutoffs.json: head/middle/tail "
                   "per-document PPL cutoffs (33rd/67th percentiles of HELDOUT) for the perplexity stage's neural backend")
    e.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="auto: CUDA when present, else CPU")
    e.add_argument("--threads", type=int, help="torch CPU threads")
    add_storage_opt(e)
    e.set_defaults(fn=_cmd_eval_ppl)

    q = sub.add_parser("quality-eval", help="judge corpora by the held-out PPL of a model trained on each",
                       description="PanGu-α's loop: for every candidate corpus sample the same token budget (the sampler), "
                       "train the same model config with the same seeds, and evaluate PPL on one held-out high-quality "
                       "set (which must not overlap any candidate). Writes OUT/quality_eval.json and OUT/quality_eval.md. "
                       "With --ablate, the candidates are variants of one pipeline (docs/train.md): raw (its input, no "
                       "stages), full (as configured) and minus_STAGE for each stage, each an ordinary run on the "
                       "pipeline's engine, cached by config hash in OUT/variants/; the table gives each variant's PPL, "
                       "its delta vs full (> 0: what the variant lacks helps) and whether that sign holds on every seed; "
                       f"also OUT/ablation.json and OUT/ablation.md. A candidate whose sample holds fewer than {MIN_DOCS} "
                       "distinct documents is refused (budget_too_small): fewer reversed results in our measurement.",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="config file (paths relative to it):\n  out: qe_out\n  tokenizer: tok.json\n"
                       "  heldout: hq_heldout.jsonl\n  candidates:\n    raw: raw.jsonl\n    cleaned: runs/cleaned   # a run dir\n"
                       "  budget_tokens: 150000\n  seeds: [1, 2, 3]\n  model: tiny\n  seq_len: 128\n"
                       "  train: {steps: 200, batch_size: 8, lr: 0.003, device: auto}\n\n"
                       "--ablate config: the same without candidates, plus\n  pipeline: my_run.yaml   # a `corpusforge run` config\n"
                       "  variants: [raw, full, minus_dedup_minhash]   # optional; default raw, full, every minus_STAGE")
    q.add_argument("config", nargs="?", metavar="CONFIG.yaml", help="quality-eval config (see below)")
    q.add_argument("--ablate", metavar="CONFIG.yaml", help="ablation config: judge each stage of a pipeline (see below)")
    q.add_argument("--out", help="override the config's out")
    q.add_argument("--threads", type=int, help="torch CPU threads")
    q.add_argument("--no-progress", action="store_true", help="no progress bars (the one line per variant stays)")
    q.set_defaults(fn=_cmd_quality_eval)
