"""Subcommands: `tokenizer train|eval`, `sample`, `shards verify`."""

from __future__ import annotations

import argparse
import sys


def _cmd_tokenizer_train(args) -> int:
    from corpusforge.io import fs, staging
    from corpusforge.sample import tokenizer as T

    if fs.is_remote(args.out):
        T.check_replace(args.out)  # before the (long) training, not after it; train_on checks the spool file
    with staging.output_file(args.out) as out:
        r = T.train_on(args.inputs, args.vocab_size, out, args.min_frequency, args.holdout, args.text_field)
    T.write_hf_files(T.folder_of(args.out))
    print(T.describe(args.out, r))
    return 0


def _cmd_tokenizer_eval(args) -> int:
    from corpusforge.io import staging
    from corpusforge.sample import tokenizer as T
    from corpusforge.sample.docs import iter_texts

    with staging.local_file(args.tokenizer) as path:
        tok = T.load(path)
    r = T.evaluate(tok, (t for _, t in iter_texts(args.inputs, args.text_field)))
    print(f"{r['docs']} documents, {r['chars']} chars, {r['tokens']} tokens, {r['chars_per_token']:.3f} chars/token, "
          f"{r['roundtrip_failures']} round-trip failures")
    return 0


def _cmd_sample(args) -> int:
    from corpusforge.config import EngineConfig, override
    from corpusforge.io import staging
    from corpusforge.sample.mix import load_mixture
    from corpusforge.sample.sampler import format_table, sample

    workers = override(EngineConfig(workers=1), "--workers", workers=args.workers).workers
    mix = override(load_mixture(args.mixture), "--shard-tokens", shard_tokens=args.shard_tokens)
    m = sample(mix, staging.absolute(args.out), workers=workers, memory_mb=args.memory_mb,
               progress=not args.no_progress, overwrite=args.overwrite, where=args.mixture)
    print(format_table(m))
    print(f"shards: {args.out}  (verify with: corpusforge shards verify {args.out})")
    return 0


def _cmd_shards_verify(args) -> int:
    from corpusforge.io import staging
    from corpusforge.sample.shards import summary, verify

    with staging.local_tree(args.dir) as d:  # an object store's shards are checked on a local copy
        def named(msg: str) -> str:
            return msg.replace(d, args.dir.rstrip("/")) if d != args.dir else msg

        problems = [named(p) for p in verify(d)]
        ok = None if problems else named(summary(d))
    for p in problems:
        print(f"shards verify: {p}", file=sys.stderr)
    if problems:
        return 1
    print(ok)
    return 0


def add_cli(sub) -> None:
    from corpusforge.cli import add_storage_opt

    t = sub.add_parser("tokenizer", help="train or evaluate a byte-level BPE tokenizer",
                       description="Byte-level BPE tokenizers (HF tokenizers) for the sampler.")
    tsub = t.add_subparsers(dest="tokenizer_cmd", required=True, metavar="ACTION")
    tr = tsub.add_parser("train", help="train a tokenizer.json on corpora",
                         description="Train a byte-level BPE (special tokens <eod>, <pad>) and save it as a standard "
                         "tokenizer.json. A stable hash of each document id holds out --holdout of the documents; "
                         "characters per token and round-trip failures on them are printed.")
    tr.add_argument("inputs", nargs="+", metavar="INPUT",
                    help="corpusforge run directories (their kept/*.parquet), or .parquet/.jsonl(.gz/.zst)/.txt files or globs")
    tr.add_argument("--vocab-size", type=int, default=40000, help="vocabulary size incl. specials (default 40000, as PanGu-α)")
    tr.add_argument("--out", required=True, metavar="TOK.json", help="where to write tokenizer.json; tokenizer_config.json "
                    "and special_tokens_map.json (eos/bos <eod>, pad <pad>) go beside it, for transformers' AutoTokenizer")
    tr.add_argument("--min-frequency", type=int, default=2, help="merges need a pair seen this often (default 2)")
    tr.add_argument("--holdout", type=float, default=0.05, help="fraction of documents held out for evaluation (default 0.05)")
    tr.add_argument("--text-field", default="text", help="text field of .jsonl/.parquet inputs (default text)")
    add_storage_opt(tr)
    tr.set_defaults(fn=_cmd_tokenizer_train)
    ev = tsub.add_parser("eval", help="characters per token and round-trip failures on corpora",
                         description="Tokenize INPUTs and print characters per token and decode(encode(t)) != t counts.")
    ev.add_argument("tokenizer", help="tokenizer.json")
    ev.add_argument("inputs", nargs="+", metavar="INPUT", help="run directories or .parquet/.jsonl/.txt files or globs")
    ev.add_argument("--text-field", default="text", help="text field of .jsonl/.parquet inputs (default text)")
    add_storage_opt(ev)
    ev.set_defaults(fn=_cmd_tokenizer_eval)

    s = sub.add_parser("sample", help="sample a weighted, epoch-aware mixture into tokenized Megatron shards",
                       description="Count tokens per source, plan the draw (weights / epochs, hashed by (seed, id)), "
                       "shuffle deterministically in bounded memory and write Megatron-LM .bin/.idx shards, "
                       "tokenizer.json and shards.json into --out. Prints achieved vs requested shares and epochs.",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="mixture file:\n  seed: 1\n  seq_len: 1024\n  total_tokens: 2000000\n  tokenizer: tok.json\n"
                       "  shard_tokens: 268435456   # optional\n  sources:\n    web:  {path: runs/cc, weight: 0.8}\n"
                       "    wiki: {path: 'wiki/*.jsonl', weight: 0.2, max_epochs: 4}\n    books: {path: runs/books, epochs: 2.5}")
    s.add_argument("mixture", metavar="MIX.yaml", help="mixture file (see below)")
    s.add_argument("--out", required=True, metavar="DIR", help="shard directory to create (a local folder or a URI: s3://bucket/shards, gs://...)")
    s.add_argument("--workers", type=int, default=1, help="tokenizer processes (default 1); never changes the output")
    s.add_argument("--memory-mb", type=int, default=1024,
                   help="peak RSS budget of each sampler process (default 1024; at least 176): what the process "
                   "and the tokenizer do not use goes to shuffle buffers and batches; larger draws spill to disk")
    s.add_argument("--shard-tokens", type=int, help="override the mixture's shard_tokens (tokens per shard, cut at a document end)")
    s.add_argument("--overwrite", action="store_true", help="replace an existing shard directory")
    s.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_storage_opt(s)
    s.set_defaults(fn=_cmd_sample)

    sh = sub.add_parser("shards", help="check shard directories", description="Shard directory tools.")
    shsub = sh.add_subparsers(dest="shards_cmd", required=True, metavar="ACTION")
    v = shsub.add_parser("verify", help="check headers, sizes, offsets and sha256 of every shard",
                         description="Check every .idx header (magic, version, dtype), sizes vs .bin length, offsets, "
                         "document indices, token range, and sha256 of each file against shards.json. Prints each "
                         "problem with the broken file's path; exits 1 if there are any.")
    v.add_argument("dir", metavar="DIR", help="a directory written by `corpusforge sample` (a local folder or a URI: s3://bucket/shards, gs://...)")
    add_storage_opt(v)
    v.set_defaults(fn=_cmd_shards_verify)
