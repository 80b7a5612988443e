"""`corpusforge report`: collect every run, its extras, render one self-contained HTML file."""

from __future__ import annotations

import os

from corpusforge.errors import CorpusforgeError
from corpusforge.io import fs, staging, store
from corpusforge.io.outputs import replace_file_check
from corpusforge.io.writers import atomic_file
from corpusforge.report import data, extras, human_eval, render
from corpusforge.report.highlight import Highlighter


class RunReport:
    """One run's collected data plus what only needs the small files (ratings, thresholds), so the
    server can re-render after a rating without re-reading the tables."""

    def __init__(self, run_dir: str, shards: str | None = None, samples: int = 3, eval_samples: int = 30):
        self.run_dir = run_dir
        self.data = data.collect(run_dir, samples=samples, eval_samples=eval_samples)
        stages = extras.stage_objects(self.data["manifest"])
        self.data["thresholds"] = extras.thresholds(self.data["manifest"])
        found = extras.discover(run_dir)
        shard_dir = shards or (found["shards"][0] if found["shards"] else None)
        self.data["mixture"] = extras.load_shards(shard_dir) if shard_dir else None
        self.found = found
        self.highlighter = Highlighter(stages)

    def current(self) -> dict:
        return dict(self.data, human=human_eval.aggregate(human_eval.load(self.run_dir)))


def gather_extra(run_dirs: list[str], found: list[dict], train: list[str] = (), quality_eval: list[str] = ()) -> dict:
    train_dirs = list(dict.fromkeys([*train, *(t for f in found for t in f["train"])]))
    qe = list(dict.fromkeys([*quality_eval, *(q for f in found for q in f["quality_eval"])]))
    return {"train": [extras.load_train(t) for t in train_dirs], "quality_eval": [extras.load_quality_eval(q) for q in qe]}


def page(reports: list[RunReport], extra: dict) -> str:
    # ratings are re-read on every render (the server calls this after each rating); tables are not
    cur = [r.current() for r in reports]
    return render.render_runs(cur, extra, [r.highlighter for r in reports])


def build_report(run_dirs: list[str], out: str, shards: list[str] = (), train: list[str] = (), quality_eval: list[str] = (),
                 samples: int = 3, eval_samples: int = 30) -> str:
    if len(shards) > len(run_dirs):
        raise CorpusforgeError("bad_args", f"{len(shards)} --shards for {len(run_dirs)} run directories (one per run, in order)")
    for d in run_dirs:
        if not store.isdir(d):
            raise CorpusforgeError("not_a_run", f"{d}: not a directory")
    replace_file_check(out, (render.GENERATOR.encode(),), "report")
    reports = [RunReport(d, shards[i] if i < len(shards) else None, samples, eval_samples) for i, d in enumerate(run_dirs)]
    extra = gather_extra(run_dirs, [r.found for r in reports], train, quality_eval)
    html_text = page(reports, extra)
    if not fs.is_remote(out):
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with staging.output_file(out) as local, atomic_file(local) as f:
        f.write(html_text.encode("utf-8"))
    return out
