"""Engines: local (default), spark, beam. Each module's run(plan, workers, resume, overwrite, progress)
runs a plan through the one driver (corpusforge/driver.py)."""

from __future__ import annotations

import importlib

ENGINES = ("local", "spark", "beam")


def run(plan, engine: str = "local", **kw) -> dict:
    """Runs a plan on the named engine; imported only when used (Spark and Beam are optional)."""
    return importlib.import_module(f"corpusforge.engines.{engine}").run(plan, **kw)


def funnel(manifest: dict, out: str) -> str:
    """The per-stage funnel table printed after a run."""
    lines = [f"{'stage':<22}{'in':>10}{'kept':>10}{'dropped':>10}{'quarant.':>10}"]
    for st in manifest["stages"]:
        lines.append(f"{st['name']:<22}{st['in']:>10}{st['kept']:>10}{sum(st['dropped'].values()):>10}"
                     f"{sum(st['quarantined'].values()):>10}")
    lines.append(f"output: {out}/kept  rejects: {out}/rejects  quarantine: {out}/quarantine  manifest: {out}/manifest.json")
    return "\n".join(lines)
