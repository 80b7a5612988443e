"""`corpusforge demo`: the default pipeline on the bundled sample, then an audit of the result."""

from __future__ import annotations

import os
from importlib import resources

from corpusforge.audit import audit
from corpusforge.config import load_config
from corpusforge.engines import local
from corpusforge.runner import make_plan


def run_demo(outdir: str, workers: int = 2) -> int:
    cfg_path = str(resources.files("corpusforge").joinpath("data/demo.yaml"))
    cfg = load_config(cfg_path, [f"run.output={os.path.abspath(outdir)}"])
    plan = make_plan(cfg)
    manifest = local.run(plan, workers=workers, overwrite=True)
    from corpusforge.cli import _print_funnel

    _print_funnel(manifest, plan.out)
    problems = audit(plan.out)
    print("audit: ok, every record accounted for" if not problems else f"audit: {len(problems)} problems: {problems[0]}")
    return 1 if problems else 0
