"""`corpusforge report`: collect every run, its extras, render one self-contained HTML file."""

from __future__ import annotations

import os

import pyarrow as pa
import pyarrow.parquet as pq

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


def gather_extra(run_dirs: list[str], found: list[dict], train: list[str] = (), quality_eval: list[str] = (),
                 ablation: list[str] = ()) -> dict:
    from corpusforge.report import ablation_render

    def given_and_found(given, key):
        return list(dict.fromkeys([*given, *(x for f in found for x in f.get(key, []))]))

    return {"train": [extras.load_train(t) for t in given_and_found(train, "train")],
            "quality_eval": [extras.load_quality_eval(q) for q in given_and_found(quality_eval, "quality_eval")],
            "ablation": [ablation_render.load(a) for a in given_and_found(ablation, "ablation")]}


def page(reports: list[RunReport], extra: dict, served: bool = False) -> str:
    # ratings are re-read on every render (the server calls this after each rating); tables are not
    cur = [r.current() for r in reports]
    more = []
    if extra.get("ablation"):
        from corpusforge.report import ablation_render

        more.append(("ablation", "ablation", ablation_render.section(extra["ablation"])))
    if extra.get("compare"):
        from corpusforge.report import compare_render

        human = compare_render.human_of(reports[0].run_dir, reports[1].run_dir)
        more.append(("compare", "comparison", compare_render.section(extra["compare"], human, served,
                                                                     [r.highlighter for r in reports])))
    return render.render_runs(cur, extra, [r.highlighter for r in reports], more)


def build_report(run_dirs: list[str], out: str, shards: list[str] = (), train: list[str] = (), quality_eval: list[str] = (),
                 samples: int = 3, eval_samples: int = 30, compare: bool = False, flips: str | None = None,
                 progress: bool = False, ablation: list[str] = ()) -> str:
    if compare and len(run_dirs) != 2:
        raise CorpusforgeError("bad_args", f"--compare takes exactly two run directories (RUN_A RUN_B), got {len(run_dirs)}")
    if flips and not compare:
        raise CorpusforgeError("bad_args", "--flips is the list of a comparison; add --compare")
    if len(shards) > len(run_dirs):
        raise CorpusforgeError("bad_args", f"{len(shards)} --shards for {len(run_dirs)} run directories (one per run, in order)")
    for d in run_dirs:
        if not store.isdir(d):
            raise CorpusforgeError("not_a_run", f"{d}: not a directory")
    replace_file_check(out, (render.GENERATOR.encode(),), "report")
    reports = [RunReport(d, shards[i] if i < len(shards) else None, samples, eval_samples) for i, d in enumerate(run_dirs)]
    extra = gather_extra(run_dirs, [r.found for r in reports], train, quality_eval, ablation)
    if compare:
        extra["compare"] = compare_runs(run_dirs[0], run_dirs[1], samples, eval_samples, flips, progress)
    html_text = page(reports, extra)
    if not fs.is_remote(out):
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with staging.output_file(out) as local, atomic_file(local) as f:
        f.write(html_text.encode("utf-8"))
    return out



def compare_runs(run_a: str, run_b: str, samples: int, eval_samples: int, flips: str | None, progress: bool = False) -> dict:
    """compare.compare(), writing the flip list (if asked) atomically, and only over a flip list of ours."""
    from corpusforge.report.compare import FLIP_SCHEMA, compare

    if not flips:
        return compare(run_a, run_b, samples, eval_samples, progress=progress)
    if store.isdir(flips):
        raise CorpusforgeError("bad_output", f"{flips} is a folder; name the flip list file (.parquet) to write")
    if store.exists(flips):
        try:
            ours = pq.read_schema(store.source(flips)).metadata == FLIP_SCHEMA.metadata
        except (OSError, pa.ArrowInvalid):
            ours = False
        if not ours:
            raise CorpusforgeError("output_not_ours", f"{flips} exists and is not a corpusforge flip list, so it is left untouched; pick another --flips")
    with staging.output_file(flips) as local, atomic_file(local) as f:
        return compare(run_a, run_b, samples, eval_samples, f, progress=progress)
