"""Helpers for tests that run whole pipelines through the CLI."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow.parquet as pq
import yaml

from corpusforge.audit import audit
from corpusforge.cli import main


def write_config(tmp: Path, paths, stages=(), input_opts=None, out="out", limits=None, name="cfg.yaml") -> Path:
    cfg = {
        "run": {"name": "t", "output": str(tmp / out)},
        "input": {"format": "jsonl", "paths": [str(p) for p in paths], **(input_opts or {})},
        "stages": list(stages),
        "engine": {"kind": "local", "workers": 1},
        "limits": {"max_quarantine_fraction": 1.0, **(limits or {})},
    }
    path = tmp / name
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    return path


def torch_threads(n: int):
    """A module-scoped autouse fixture that sets torch's thread count while the module's tests run (not
    at import: pytest imports every module first, and float results, so loss curves, depend on it)."""
    import pytest

    @pytest.fixture(scope="module", autouse=True)
    def _threads():
        import torch

        before = torch.get_num_threads()
        torch.set_num_threads(n)
        yield
        torch.set_num_threads(before)

    return _threads


def read_jsonl(path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(ln) for ln in f if ln.strip()]


def write_jsonl(path: Path, texts) -> Path:
    """One {"text": t} record a line."""
    path.write_text("".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in texts), encoding="utf-8")
    return path


def run(cfg: Path, *extra: str) -> int:
    return main(["run", str(cfg), "--no-progress", *extra])


def manifest(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text(encoding="utf-8"))


def table(out: Path, kind: str):
    files = sorted((out / kind).glob("part-*.parquet"))
    if not files:
        return None
    import pyarrow as pa

    return pa.concat_tables([pq.read_table(f) for f in files])


def quarantine_rows(out: Path) -> list[dict]:
    t = table(out, "quarantine")
    return [] if t is None else t.drop(["raw"]).to_pylist()


def assert_audit_ok(out: Path) -> None:
    problems = audit(str(out))
    assert problems == [], problems


def committed_outputs(out: Path) -> dict[str, bytes]:
    """Bytes of every kept, rejects and quarantine Parquet file of a run (what engines must agree on)."""
    return {str(p.relative_to(out)): p.read_bytes() for kind in ("kept", "rejects", "quarantine")
            for p in sorted((out / kind).glob("*.parquet"))}


def tree_digest(out: Path) -> dict[str, bytes]:
    """Every committed file's bytes, except run_info.json (timings)."""
    res = {}
    for root, _, files in os.walk(out):
        for f in files:
            p = Path(root) / f
            rel = str(p.relative_to(out))
            if rel != "run_info.json":
                res[rel] = p.read_bytes()
    return res


REPO_ROOT = Path(__file__).resolve().parent.parent
