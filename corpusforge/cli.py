"""Command line: corpusforge run | dedup | stages | audit | demo, plus the subcommands of _SUBCOMMAND_MODULES. Errors are one line on stderr, non-zero exit."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from corpusforge import __version__, engines
from corpusforge.errors import CorpusforgeError


STORAGE_OPT_HELP = ("object-store setting merged into storage.options for s3:// gs:// hdfs:// abfs:// inputs and outputs: "
                    "endpoint=http://127.0.0.1:9000, region=eu-west-1, anonymous=true, max_attempts=10, lease_seconds=60; credentials "
                    "come from the store's standard chain (AWS_* env, ~/.aws, GOOGLE_APPLICATION_CREDENTIALS); repeatable")


def _cmd_run(args) -> int:
    from corpusforge.config import load_config, override
    from corpusforge.runner import make_plan

    cfg = load_config(args.config, args.set or [])
    cfg.engine = override(cfg.engine, "--workers", workers=args.workers)
    cfg.engine.options.update(_key_values("--engine-opt", getattr(args, "engine_opt", None)))
    cfg.storage.options.update(_key_values("--storage-opt", args.storage_opt))
    workers = cfg.engine.workers
    engine = args.engine or cfg.engine.kind
    plan = make_plan(cfg, kind=getattr(args, "kind", "run"))
    manifest = engines.run(plan, engine, workers=workers, resume=args.resume, overwrite=args.overwrite,
                           progress=False if args.no_progress else None)
    print(engines.funnel(manifest, plan.out))
    return 0


def add_storage_opt(p) -> None:
    p.add_argument("--storage-opt", action="append", metavar="KEY=VALUE", help=STORAGE_OPT_HELP)


def _key_values(flag: str, items: list[str] | None) -> dict[str, str]:
    out = {}
    for kv in items or []:
        k, sep, v = kv.partition("=")
        if not sep or not k:
            raise CorpusforgeError("bad_option", f"{flag} {kv!r}: expected KEY=VALUE")
        out[k] = v
    return out


def _cmd_dedup(args) -> int:
    """Shortcut: a generated config (normalize → dedup_exact → dedup_minhash) run exactly like `run`."""
    import tempfile

    import yaml

    from corpusforge.io import fs

    remote = fs.is_remote(args.input)
    src = args.input if remote else os.path.abspath(args.input)
    fmt = args.format or ("txt" if not remote and os.path.isdir(src) else "parquet" if src.endswith(".parquet") else "jsonl")
    stages = [{"use": "normalize"}]
    if not args.no_exact:
        stages.append({"use": "dedup_exact"})
    given = {"threshold": args.threshold, "ngram": args.ngram, "num_perm": args.num_perm}  # the rest: the stage's defaults
    stages.append({"use": "dedup_minhash", "with": {k: v for k, v in given.items() if v is not None}})
    args.kind = "dedup"  # its output is marked as a dedup output: `run --overwrite` will not empty it
    cfg = {"run": {"name": "dedup", "output": args.output if fs.is_remote(args.output) else os.path.abspath(args.output)},
           "input": {"format": fmt, "paths": [os.path.join(src, "**", "*.txt") if fmt == "txt" and not remote else src],
                     "text_field": args.text_field, **({"root": src} if fmt == "txt" else {})},
           "stages": stages, "engine": {"kind": args.engine or "local"}}
    with tempfile.TemporaryDirectory(prefix="corpusforge-dedup-") as d:
        args.config = os.path.join(d, "dedup.yaml")
        with open(args.config, "w", encoding="utf-8") as f:
            yaml.safe_dump(cfg, f, allow_unicode=True)
        args.set = []
        return _cmd_run(args)


def _cmd_stages(args) -> int:
    from corpusforge.stage import registry

    for name, versions in sorted(registry().items()):
        for v, cls in sorted(versions.items()):
            kind = next(k.__name__ for k in cls.__mro__[1:] if k.__name__ in ("MapStage", "FilterStage", "GlobalStage"))
            print(f"{name}@{v}  ({kind})  {(cls.__doc__ or '').strip().splitlines()[0]}")
            for pname, field in cls.Params.model_fields.items():
                ann = getattr(field.annotation, "__name__", str(field.annotation))
                print(f"    {pname}: {ann} " + ("(required)" if field.is_required() else f"= {field.default!r}"))
    return 0


def _cmd_audit(args) -> int:
    from corpusforge.audit import audit, summary
    problems = audit(args.run_dir)
    for p in problems:
        print(f"audit: {p}", file=sys.stderr)
    if problems:
        return 1
    print(summary(args.run_dir))
    return 0


def _cmd_demo(args) -> int:
    from corpusforge.config import EngineConfig, override
    from corpusforge.demo import run_demo

    workers = override(EngineConfig(), "--workers", workers=args.workers).workers
    return run_demo(args.outdir, workers=workers, engine=args.engine, steps=args.steps, progress=not args.no_progress)


# Modules that add their own subcommands (each has add_cli(subparsers)).
_SUBCOMMAND_MODULES = (
    "corpusforge.models.cli",  # train-spam, train-quality
    "corpusforge.sample.cli",  # tokenizer, sample, shards
    "corpusforge.train.cli",  # train, eval-ppl, quality-eval
    "corpusforge.report.cli",  # report
)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="corpusforge",
        description="Build PanGu-α-style pretraining corpora: clean, filter, dedup, sample, train. "
        "Every input record ends kept, dropped with a reason, or quarantined with a reason.",
    )
    p.add_argument("--version", action="version", version=f"corpusforge {__version__}")
    p.add_argument("--debug", action="store_true", help="show Python tracebacks on errors")
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    r = sub.add_parser("run", help="run a pipeline config", description="Run the pipeline described by a YAML config. "
                       "Writes OUT/kept, OUT/rejects, OUT/quarantine (Parquet) and OUT/manifest.json.")
    r.add_argument("config", help="YAML config (run/input/stages/engine)")
    r.add_argument("--workers", type=int, help="worker processes (default: engine.workers); never changes results")
    r.add_argument("--engine", choices=engines.ENGINES, help="override engine.kind")
    r.add_argument("--resume", action="store_true", help="continue an interrupted run, skipping committed parts")
    r.add_argument("--overwrite", action="store_true", help="empty an earlier output of this command first (only a folder "
                   "corpusforge marked as its own run output; anything else is refused with output_not_ours)")
    r.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a config value, e.g. --set stages.0.with.min_chars=200 (repeatable)")
    r.add_argument("--engine-opt", action="append", metavar="KEY=VALUE",
                   help="engine setting merged into engine.options: a Spark conf (spark.executor.memory=4g, "
                   "master=spark://host:7077, jvm_class_cache=false) or a Beam pipeline option (runner=FlinkRunner); repeatable")
    add_storage_opt(r)
    r.add_argument("--no-progress", action="store_true", help="no progress bar")
    r.set_defaults(fn=_cmd_run)

    dd = sub.add_parser("dedup", help="exact + MinHash-LSH near-duplicate dedup of a corpus (shortcut for `run`)",
                        description="Normalize, drop exact duplicates, then near-duplicates (MinHash-LSH, verified by exact "
                        "Jaccard). Kept documents go to OUTPUT/kept, removed ones to OUTPUT/rejects with duplicate_of.")
    dd.add_argument("input", help="a .jsonl(.gz/.zst) or .parquet file, or a directory of .txt files")
    dd.add_argument("output", help="output directory")
    dd.add_argument("--threshold", type=float, help="Jaccard similarity of char n-gram sets (default: dedup_minhash's, 0.8)")
    dd.add_argument("--ngram", type=int, help="shingle size in characters (default: dedup_minhash's, 5)")
    dd.add_argument("--num-perm", type=int, help="MinHash permutations (default: dedup_minhash's, 128)")
    dd.add_argument("--no-exact", action="store_true", help="skip the exact-duplicate pass")
    dd.add_argument("--format", choices=["jsonl", "parquet", "txt"], help="input format (default: from the path)")
    dd.add_argument("--text-field", default="text", help="field holding the text (default: text)")
    dd.add_argument("--workers", type=int, help="worker processes (never changes results)")
    dd.add_argument("--engine", choices=engines.ENGINES, help="engine (default local)")
    dd.add_argument("--resume", action="store_true", help="continue an interrupted run")
    dd.add_argument("--overwrite", action="store_true", help="empty an earlier dedup output first (only a folder "
                    "corpusforge marked as its own dedup output)")
    add_storage_opt(dd)
    dd.add_argument("--no-progress", action="store_true", help="no progress bar")
    dd.set_defaults(fn=_cmd_dedup)

    s = sub.add_parser("stages", help="list registered stages and their parameters",
                       description="List every registered stage (name@version), its kind and its parameters with defaults.")
    s.set_defaults(fn=_cmd_stages)

    a = sub.add_parser("audit", help="recompute all counts of a run from its files",
                       description="Recompute every count from the persisted kept/rejects/quarantine files; exit 1 if "
                       "any stage does not balance (in != kept + dropped + quarantined) or the manifest disagrees.")
    a.add_argument("run_dir", help="a run's output folder or URI (s3://bucket/run, gs://..., hdfs://...)")
    add_storage_opt(a)
    a.set_defaults(fn=_cmd_audit)

    for mod in _SUBCOMMAND_MODULES:
        importlib.import_module(mod).add_cli(sub)

    d = sub.add_parser("demo", help="the whole PanGu-α flow on the bundled sample of real Chinese text",
                       description="Clean the bundled sample (five sources: open data, encyclopedia, e-books, Common Crawl "
                       "WET, news HTML) with the PanGu-α pipeline (corpusforge/data/pangu.yaml), audit it, train a tokenizer, "
                       "sample a Table-3 mixture into shards, train the tiny PanGu-α model, measure held-out perplexity "
                       "and write the HTML report. No cluster, no network; a few minutes on 2 cores.")
    d.add_argument("outdir", nargs="?", default="corpusforge-demo", help="output directory (default: ./corpusforge-demo; "
                   "an earlier demo there is replaced)")
    d.add_argument("--workers", type=int, help="worker processes (default 2, as engine.workers); never changes results")
    d.add_argument("--engine", choices=engines.ENGINES, default="local", help="engine for the cleaning run")
    d.add_argument("--steps", type=int, default=800, help="training steps of the tiny model (default 800)")
    d.add_argument("--no-progress", action="store_true", help="no progress bars")
    d.set_defaults(fn=_cmd_demo)
    return p


def console() -> int:
    """The `corpusforge` command (and `python -m corpusforge`): a process of its own, so commands that never
    touch Spark, Beam or pandas run lean (corpusforge.procs.lean); main() is for callers' processes."""
    if sys.argv[1:2] and sys.argv[1] in ("sample", "tokenizer", "shards", "audit"):
        from corpusforge import procs

        procs.lean(system_arrow_pool=sys.argv[1] == "sample")
    return main()


_LOCAL_ONLY = ("quality-eval", "demo")  # experiment harnesses on local folders (docs/storage.md)


def _local_paths_only(args) -> None:
    from corpusforge.io import fs

    for v in vars(args).values():
        for s in v if isinstance(v, list) else [v]:
            if isinstance(s, str) and "://" in s and s.split("://", 1)[0].lower() in fs.SCHEMES:
                raise CorpusforgeError("unsupported_storage", f"{args.cmd} reads and writes local paths only, not {s}; "
                                       "copy the data down first (docs/storage.md)")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.cmd in _LOCAL_ONLY:
            _local_paths_only(args)
        if getattr(args, "storage_opt", None):  # run and dedup merge it into the config's storage block too
            from corpusforge.io import fs

            fs.configure(_key_values("--storage-opt", args.storage_opt))
        return args.fn(args)
    except CorpusforgeError as e:
        if args.debug:
            raise
        print(f"corpusforge: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("corpusforge: interrupted (committed parts are kept; rerun with --resume)", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `corpusforge stages | head`: the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as e:  # a bug, not bad input: still one line unless --debug
        if args.debug:
            raise
        print(f"corpusforge: internal error: {type(e).__name__}: {e} (rerun with --debug for a traceback)", file=sys.stderr)
        return 1
