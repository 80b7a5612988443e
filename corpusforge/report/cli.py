"""`corpusforge report RUN_DIR... --out F` and `corpusforge report serve RUN_DIR`.

One parser: a first positional `serve` switches to the server (argparse cannot nest a subcommand
beside a variadic positional); a run directory literally named serve is written ./serve."""

from __future__ import annotations

from corpusforge.errors import CorpusforgeError

_SERVE_ONLY = ("host", "port", "allow_remote", "allowed_host")


def _cmd_report(args) -> int:
    dirs = list(args.run_dirs)
    if dirs[0] == "serve":
        from corpusforge.report.serve import serve

        if len(dirs) != (3 if args.compare else 2):
            raise CorpusforgeError("bad_args", "usage: corpusforge report serve RUN_DIR, or report serve RUN_A RUN_B --compare")
        if args.flips:
            raise CorpusforgeError("bad_args", "--flips is for writing the flip list with `report RUN_A RUN_B --compare`")
        if args.out:
            raise CorpusforgeError("bad_args", "--out is for writing a file; `report serve` serves the pages instead")
        if len(args.shards or []) > 1:
            raise CorpusforgeError("bad_args", "report serve takes one --shards")
        return serve(dirs[1:], args.host or "127.0.0.1", 8765 if args.port is None else args.port, args.allow_remote,
                     args.allowed_host or [], args.eval_samples, (args.shards or [None])[0], args.train or [], args.quality_eval or [],
                     args.ablation or [], args.compare, args.samples)
    used = [o for o in _SERVE_ONLY if getattr(args, o) not in (None, False, [])]
    if used:
        raise CorpusforgeError("bad_args", f"--{used[0].replace('_', '-')} is an option of `corpusforge report serve`")
    from corpusforge.report.build import build_report

    out = args.out or "report.html"
    build_report(dirs, out, args.shards or [], args.train or [], args.quality_eval or [], args.samples, args.eval_samples,
                 args.compare, args.flips, progress=True, ablation=args.ablation or [])
    print(f"report: {out}")
    return 0


def add_cli(sub) -> None:
    r = sub.add_parser(
        "report", help="quality report of runs (HTML file), or `report serve RUN_DIR` with a human-evaluation page",
        usage="corpusforge report RUN_DIR [RUN_DIR ...] [--out report.html] [options]\n"
              "       corpusforge report RUN_A RUN_B --compare [--flips FLIPS.parquet] [--out report.html]\n"
              "       corpusforge report serve RUN_DIR [--host 127.0.0.1] [--port 8765] [--allow-remote] [options]\n"
              "       corpusforge report serve RUN_A RUN_B --compare [options]",
        description="Build one self-contained HTML file (inline SVG charts, no script, no network) from finished runs' "
        "persisted tables: funnel per stage and per source, drop reasons with sample documents, score distributions "
        "kept vs dropped with thresholds, dedup clusters, sampler mixture, training loss / PPL across runs, "
        "human-evaluation results, stage ablations and the manifest. `report RUN_A RUN_B --compare` adds which documents a "
        "change flipped (two runs of the same inputs). `report serve RUN_DIR` serves the same report on loopback plus a "
        "/browse document browser and a /human-eval page where reviewers rate sampled kept documents; ratings go to "
        "RUN_DIR/human_eval.json. `report serve RUN_A RUN_B --compare` also serves /compare and human-eval pages of the "
        "documents each run kept and the other did not. "
        "Shards (shards.json), training logs (log.jsonl), quality_eval.json and ablation.json inside a run directory (or "
        "one level down) are found without options.")
    r.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="finished run directories (with manifest.json); first word `serve` starts the server")
    r.add_argument("--out", help="HTML file to write (default: report.html)")
    r.add_argument("--shards", action="append", metavar="DIR",
                   help="sampler output directory with shards.json, for the mixture table and tokens per source; "
                        "repeatable, the i-th belongs to the i-th RUN_DIR")
    r.add_argument("--train", action="append", metavar="RUN", help="trainer run directory with log.jsonl (loss and eval PPL curves); repeatable")
    r.add_argument("--quality-eval", action="append", metavar="FILE", help="quality_eval.json from `corpusforge quality-eval`; repeatable")
    r.add_argument("--ablation", action="append", metavar="FILE",
                   help="ablation.json from `corpusforge quality-eval --ablate` (found without this inside a run directory); repeatable")
    r.add_argument("--samples", type=int, default=3, help="sample documents per drop reason (default 3)")
    r.add_argument("--eval-samples", type=int, default=30, help="kept documents offered for human evaluation (default 30)")
    r.add_argument("--compare", action="store_true",
                   help="with two runs of the same inputs (RUN_A RUN_B): add a comparison: counts per stage and source in both runs "
                        "and their difference, every fate change (kept in A, dropped in B with B's reason, and the reverse) with "
                        "deterministic samples, and before/after diffs of documents both kept with different text")
    r.add_argument("--flips", metavar="FILE.parquet", help="with --compare: also write every document whose fate changed (id, source, fate in A, fate in B)")
    g = r.add_argument_group("serve options (only with `report serve`)")
    g.add_argument("--host", help="address to listen on (default 127.0.0.1; a non-loopback address needs --allow-remote)")
    g.add_argument("--port", type=int, help="port (default 8765; 0 picks a free one and prints it)")
    g.add_argument("--allow-remote", action="store_true", help="allow a non-loopback --host (prints a warning: anyone who can reach it can rate)")
    g.add_argument("--allowed-host", action="append", metavar="NAME",
                   help="extra Host header name accepted (e.g. the machine's DNS name with --allow-remote); repeatable")
    from corpusforge.cli import add_storage_opt

    add_storage_opt(r)
    r.set_defaults(fn=_cmd_report)
