"""The driver of every engine: claims the output, runs the plan phase by phase, writes the manifest.

The work itself is done by an `Executor`: the local process pool, Spark or Beam. Each runs the same
(phase, part) tasks (corpusforge/parttask.py) on its workers and supplies the primitives global stages
run on; the files, markers and commit protocol are the driver's and the task's, so every engine's output
is byte-identical.

Global stages (dedup) split the stage list into phases. Phase 0 reads the input; every phase runs its
per-row stages part by part. A phase that ends at a global stage writes its survivors to a staging
area (OUT/_global/s<k>/, committed per part with its own marker, like final parts); then the global
stage runs once over all staged parts through the engine primitives and commits its decisions
partitioned by part (OUT/_global/g<k>/, marker last). The next phase applies those decisions per part
(rejects carry `duplicate_of`), runs the following per-row stages, and so on; the last phase writes
OUT/kept|rejects|quarantine and the final ledger marker in OUT/_parts exactly as a run without global
stages does, so resume, manifests and the audit are unchanged."""

from __future__ import annotations

import abc
import contextlib
import functools
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from tqdm import tqdm

from corpusforge import faults
from corpusforge.engines.local_primitives import LocalPrimitives
from corpusforge.errors import CorpusforgeError
from corpusforge.io import fs, outputs, store
from corpusforge.io.writers import ParquetSink, write_json
from corpusforge.pipeline import rows_of_sources
from corpusforge.parttask import GLOBAL_DIR, decided_dir, staged_dir
from corpusforge.primitives import Primitives
from corpusforge.runner import Plan, finish, part_name, phases, prepare_output, stable_hash, sweep_uncommitted
from corpusforge.schema import DECISION_SCHEMA, EDIT_SCHEMA, PART_COL


class Executor(abc.ABC):
    """What an engine supplies to the driver."""

    name: str
    distributed = False  # True: workers on other hosts, which read staged parts and write scratch through the store

    @abc.abstractmethod
    def execute(self, plan: Plan, tasks: list, workers: int, bar, on_progress: Callable, timings: dict) -> None:
        """Runs every (phase, job) task through parttask (run_part / run_task) on the engine's workers and
        returns once each one's marker is committed. bar: a tqdm to advance per task, or None; on_progress:
        takes (docs, bytes, kept) as final-phase batches finish; timings: stage → seconds, added to."""

    def primitives(self, plan: Plan, work: str, scratch: str, workers: int) -> tuple[Primitives, Callable | None]:
        """The primitives global stages run on, and a function that lands their result as local Parquet
        files (None when the result already is local Parquet). work: a local folder of the driver;
        scratch: where the engine puts intermediates (a folder in work unless `distributed`)."""
        return LocalPrimitives(scratch, workers=workers, batch_rows=plan.config.limits.batch_rows), None


def add_seconds(total: dict, part: dict) -> None:
    for k, v in part.items():
        total[k] = total.get(k, 0.0) + v


def run(plan: Plan, executor: Executor, workers: int, resume: bool = False, overwrite: bool = False,
        progress: bool | None = None) -> dict:
    started = time.time()
    with outputs.claim(plan.out, plan.kind, overwrite=overwrite, resume=resume) as resuming:
        done = prepare_output(plan, resuming)
        stage_seconds: dict = {}  # for run_info.json (Beam part tasks report no stage timings)
        bar = tqdm(total=len(plan.jobs), initial=len(done), unit="part", dynamic_ncols=True,
                   disable=progress is False if progress is not None else None, desc=f"corpusforge {plan.config.run.name}")
        if len(done) < len(plan.jobs):
            _run_phases(plan, executor, workers, done, bar, _progress_line(bar, started), stage_seconds)
        bar.close()
        manifest = finish(plan, executor.name, started, workers, stage_seconds)
        store.delete_tree(fs.join(plan.out, GLOBAL_DIR))
        return manifest


def _progress_line(bar, started: float) -> Callable:
    stats = {"docs": 0, "bytes": 0, "kept": 0}

    def on_progress(msg):
        stats["docs"] += msg[0]
        stats["bytes"] += msg[1]
        stats["kept"] += msg[2]
        rate = stats["docs"] / max(time.time() - started, 1e-6)
        bar.set_postfix_str(f"docs={stats['docs']} MB={stats['bytes'] / 2**20:.1f} docs/s={rate:.0f} "
                            f"kept={stats['kept']} dropped={stats['docs'] - stats['kept']}", refresh=True)

    return on_progress


def _run_phases(plan: Plan, executor: Executor, workers: int, done: set[int], bar, on_progress, seconds: dict) -> None:
    phs = phases(plan)
    for k, ph in enumerate(phs):
        if ph.last:
            todo = [(k, j) for j in plan.jobs if j.part.index not in done]
            executor.execute(plan, todo, workers, bar, on_progress, seconds)
        elif not store.exists(fs.join(decided_dir(plan.out, k + 1), "done.json")):
            d = staged_dir(plan.out, k)
            store.makedirs(d)
            staged = sweep_uncommitted(plan.out, d, [d], len(plan.jobs))
            executor.execute(plan, [(k, j) for j in plan.jobs if j.part.index not in staged], workers, None, on_progress, seconds)
            t0 = time.perf_counter()
            _run_global(plan, k + 1, workers, executor)
            seconds[phs[k + 1].global_stage.name] = time.perf_counter() - t0


def _run_global(plan: Plan, k: int, workers: int, executor: Executor) -> None:
    """Runs global stage k over all staged parts of phase k-1; commits decisions per part, marker last."""
    gdir = decided_dir(plan.out, k)
    if store.exists(fs.join(gdir, "done.json")):
        return
    store.delete_tree(gdir)
    store.makedirs(gdir)
    # the driver's own spill files and landed results: beside the decisions locally, a local temporary
    # folder for an object-store output
    work = tempfile.mkdtemp(prefix="corpusforge-global-") if fs.is_remote(plan.out) else os.path.join(gdir, "work")
    try:
        with _scratch(plan, k, work, executor) as scratch:
            _decide(plan, k, workers, executor, work, scratch)
    finally:
        shutil.rmtree(work, ignore_errors=True)


@contextlib.contextmanager
def _scratch(plan: Plan, k: int, work: str, executor: Executor):
    """Where the engine puts the global stage's intermediates. A local pool spills in the driver's work
    folder. A distributed engine's workers need a place they all reach, deleted afterwards: under
    `run.scratch` when set, else beside the decisions (in the output, which every part-writing worker reaches)."""
    if not executor.distributed:
        yield os.path.join(work, "engine")
        return
    if plan.config.run.scratch:
        place = outputs.scratch(fs.join(plan.config.run.scratch, f"corpusforge-{stable_hash(plan.out)[:16]}-g{k}"))
    else:
        place = _deleted_after(fs.join(decided_dir(plan.out, k), "scratch") if fs.is_remote(plan.out)
                               else os.path.join(work, "engine"))
    with place as d:
        print(f"corpusforge: {phases(plan)[k].global_stage.name}: intermediates under {d}", file=sys.stderr)
        yield d


@contextlib.contextmanager
def _deleted_after(d: str):
    try:
        yield d
    finally:
        store.delete_tree(d)


def _staged_parts(plan: Plan, k: int, work: str, executor: Executor) -> list[str]:
    """The staged parts a global stage reads: where they are for a distributed engine (its workers read
    them through the storage layer), else as local files (copied from an object store first)."""
    paths = [fs.join(staged_dir(plan.out, k - 1), f"{part_name(j.part.index)}.parquet") for j in plan.jobs]
    if executor.distributed or not fs.is_remote(plan.out):
        return paths
    local = os.path.join(work, "staged")
    os.makedirs(local)
    for p in paths:
        store.download(p, os.path.join(local, os.path.basename(p)))
    return [os.path.join(local, os.path.basename(p)) for p in paths]


def _decide(plan: Plan, k: int, workers: int, executor: Executor, work: str, scratch: str) -> None:
    ph = phases(plan)[k]
    gdir = decided_dir(plan.out, k)
    batch_rows = plan.config.limits.batch_rows
    local = LocalPrimitives(work, workers=workers, batch_rows=batch_rows)
    engine, to_local = executor.primitives(plan, work, scratch, workers)
    docs = engine.dataset(_staged_parts(plan, k, work, executor))
    scope = plan.scopes.get(ph.global_stage.name)
    if scope is not None:  # documents of other sources take no part: never removed, never anyone's duplicate
        docs = engine.map_batches(docs, functools.partial(rows_of_sources, sources=scope),
                                  phases(plan)[k - 1].out_schema.append(pa.field(PART_COL, pa.int32())), "in-sources")
    res = ph.global_stage.run(engine, docs)
    fix_counts: dict = {}  # part → fix → n, from the persisted rows (a handful: one per part and counter)
    for b in (engine.read(res.fixes) if res.fixes is not None else ()):
        for part, fix, n in zip(*(b.column(c).to_pylist() for c in (PART_COL, "fix", "n"))):
            of_part = fix_counts.setdefault(str(part), {})
            of_part[fix] = of_part.get(fix, 0) + n
    marker = {"stage": ph.global_stage.key}
    for kind, ds, schema, unique in (("decisions", res.decisions, DECISION_SCHEMA, ["id"]),
                                     ("edits", res.edits, EDIT_SCHEMA, ["id", "line"])):
        if ds is None:
            continue
        if to_local is not None:
            ds = local.dataset(to_local(ds, schema, kind), schema)
        marker[kind], marker[f"{kind}_parts"] = _commit_by_part(plan, k, local, ds, kind, unique)
    faults.point("global:before_marker")
    write_json(fs.join(gdir, "done.json"), {**marker, "fixes": dict(sorted(fix_counts.items()))})


def _commit_by_part(plan: Plan, k: int, local: LocalPrimitives, ds, kind: str, unique: list[str]) -> tuple[int, dict]:
    """A global stage's rows as one sorted file per part (OUT/_global/g<k>/<kind>-<part>.parquet): (rows, part → files)."""
    name = phases(plan)[k].global_stage.name
    parts, total = {}, 0
    for part, paths in enumerate(local.partition_by_value(ds, PART_COL, len(plan.jobs), f"{kind}-by-part")):
        if not paths:
            continue
        t = pa.concat_tables([pq.read_table(p) for p in paths]).cast(ds.schema)
        t = t.take(pc.sort_indices(t, [(c, "ascending") for c in unique]))
        if t.group_by(unique).aggregate([]).num_rows != t.num_rows:
            raise CorpusforgeError("global_mismatch", f"{name}: {kind} name one {'/'.join(unique)} twice")
        rel = f"{GLOBAL_DIR}/g{k}/{kind}-{part_name(part)}.parquet"
        s = ParquetSink(fs.join(plan.out, rel), ds.schema)
        s.write(t)
        s.commit()
        parts[str(part)] = [rel]
        total += t.num_rows
    return total, parts
