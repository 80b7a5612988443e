"""The default engine: streams each part through the stages in a process pool, bounded memory,
one committed set of files + ledger marker per part, so --resume skips what is done.

Global stages (dedup) split the stage list into phases. Phase 0 reads the input; every phase runs its
per-row stages part by part. A phase that ends at a global stage writes its survivors to a staging
area (OUT/_global/s<k>/, committed per part with its own marker, like final parts); then the global
stage runs once over all staged parts through the engine primitives (spilling to Parquet) and commits
its decisions partitioned by part (OUT/_global/g<k>/, marker last). The next phase applies those
decisions per part (rejects carry `duplicate_of`), runs the following per-row stages, and so on; the
last phase writes OUT/kept|rejects|quarantine and the final ledger marker in OUT/_parts exactly as a
run without global stages does, so resume, manifests and the audit are unchanged."""

from __future__ import annotations

import functools
import json
import multiprocessing as mp
import os
import queue
import shutil
import threading
import time
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from tqdm import tqdm

from corpusforge import faults, ledger, procs
from corpusforge.config import DEFAULT_WORKERS
from corpusforge.engines.local_primitives import LocalPrimitives
from corpusforge.errors import CorpusforgeError
from corpusforge.io import outputs
from corpusforge.io.readers import quarantine_table, read_part
from corpusforge.io.writers import TMP_MARK, ParquetSink, write_json
from corpusforge.pipeline import apply_stages, check_rule_guard, reject_rows
from corpusforge.runner import Job, Phase, Plan, file_entry, files_intact, finish, part_name, phases, prepare_output
from corpusforge.schema import DECISION_SCHEMA, INGEST, PART_COL, QUARANTINE_SCHEMA, REJECT_SCHEMA
from corpusforge.stage import GlobalStage

_worker: dict = {}
GLOBAL_DIR = "_global"
CLUSTER_META = "_cf_dedup_cluster"  # meta key on dedup rejects: the cluster id


def _init_worker(plan: Plan, progress) -> None:
    for s in plan.stages:
        if not isinstance(s, GlobalStage):
            s.setup()
    _worker.update(plan=plan, progress=progress, phases=phases(plan))


def _init_pool_worker(plan: Plan, progress) -> None:
    procs.lean()  # the pool's processes are corpusforge's alone
    _init_worker(plan, progress)


def _staged(out: str, k: int) -> str:
    return os.path.join(out, GLOBAL_DIR, f"s{k}")


def _decided(out: str, k: int) -> str:
    return os.path.join(out, GLOBAL_DIR, f"g{k}")


def _load_decisions(out: str, k: int, part: int) -> tuple[dict, dict]:
    """(id → (reason, duplicate_of, cluster_id), fix → n) of one part."""
    with open(os.path.join(_decided(out, k), "done.json"), encoding="utf-8") as f:
        done = json.load(f)
    files = done["parts"].get(str(part), [])
    t = pa.concat_tables([pq.read_table(os.path.join(out, p)) for p in files]) if files else DECISION_SCHEMA.empty_table()
    return ({i: (r, d, c) for i, r, d, c in zip(*(t.column(n).to_pylist() for n in ("id", "reason", "duplicate_of", "cluster_id")))},
            done.get("fixes", {}).get(str(part), {}))


def _apply_decisions(stage: GlobalStage, batch: pa.RecordBatch, decisions: dict, counts: dict, used: list):
    """Routes the rows a global stage decided to remove into rejects (with duplicate_of and the cluster id)."""
    c = counts.setdefault(stage.name, ledger.new_counts())
    c["in"] += batch.num_rows
    ids = batch.column("id").to_pylist()
    idx = np.array([i for i, x in enumerate(ids) if x in decisions], np.int64)
    rejects = None
    if len(idx):
        dec = [decisions[ids[i]] for i in idx]
        used[0] += len(idx)
        reasons = [f"{stage.name}:{r}" for r, _, _ in dec]
        for r in reasons:
            c["dropped"][r] += 1
        rejects = reject_rows(batch, idx, stage.name, reasons, [d for _, d, _ in dec])
        metas = [list(m or []) + [(CLUSTER_META, cl)] for m, (_, _, cl) in zip(rejects.column("meta").to_pylist(), dec)]
        rejects = rejects.set_column(rejects.schema.get_field_index("meta"), "meta",
                                     pa.array(metas, REJECT_SCHEMA.field("meta").type))
        keep = np.ones(batch.num_rows, bool)
        keep[idx] = False
        batch = batch.filter(pa.array(keep))
    c["kept"] += batch.num_rows
    return batch, rejects


def setup_worker(plan: Plan, plan_key: str) -> None:
    """Stage setup() on a cluster worker, once per process and plan."""
    if _worker.get("key") != plan_key:
        _init_worker(plan, None)
        _worker["key"] = plan_key


def run_task(plan: Plan, plan_key: str, task: tuple[int, Job]) -> dict:
    """One (phase, part) on a cluster worker."""
    setup_worker(plan, plan_key)
    return _run_part(task)


def _run_part(task: tuple[int, Job]) -> dict:
    k, job = task
    plan: Plan = _worker["plan"]
    ph: Phase = _worker["phases"][k]
    progress = _worker["progress"]
    out, name = plan.out, part_name(job.part.index)
    final = ph.last
    if final:
        sinks = {"kept": ParquetSink(os.path.join(out, "kept", f"{name}.parquet"), plan.kept_schema),
                 "rejects": ParquetSink(os.path.join(out, "rejects", f"{name}.parquet"), REJECT_SCHEMA)}
    else:
        sdir = _staged(out, k)
        sinks = {"kept": ParquetSink(os.path.join(sdir, f"{name}.parquet"), ph.out_schema.append(pa.field(PART_COL, pa.int32()))),
                 "rejects": ParquetSink(os.path.join(sdir, f"rejects-{name}.parquet"), REJECT_SCHEMA)}
    counts: dict = {}
    seconds: dict = {}  # stage → wall time, for run_info.json (never in committed files: timings vary)
    q_rows: list[dict] = []
    t_part = time.perf_counter()
    try:
        if k == 0:
            batches, reader = read_part(job.part, job.read)
            prev, decisions = None, None
        else:
            with open(os.path.join(_staged(out, k - 1), f"{name}.json"), encoding="utf-8") as f:
                prev = json.load(f)
            for p in prev["files"]:
                if p["kind"] == "rejects":
                    sinks["rejects"].write(pq.read_table(os.path.join(out, p["path"])))
            decisions, fixes = _load_decisions(out, k, job.part.index)
            if fixes:
                counts.setdefault(ph.global_stage.name, ledger.new_counts())["fixes"] = Counter(fixes)
            src = pq.ParquetFile(os.path.join(_staged(out, k - 1), f"{name}.parquet"))
            batches = (b.drop_columns([PART_COL]) for b in src.iter_batches(batch_size=plan.config.limits.batch_rows))
            reader = None
        used = [0]
        for batch in batches:
            n_in = batch.num_rows
            if decisions is not None:
                batch, rej = _apply_decisions(ph.global_stage, batch, decisions, counts, used)
                if rej is not None:
                    sinks["rejects"].write(rej)
            kept, rejects, quarantine = apply_stages(ph.stages, ph.schemas, batch, counts, seconds)
            if not final:
                kept = pa.RecordBatch.from_arrays(kept.columns + [pa.array(np.full(kept.num_rows, job.part.index, np.int32))],
                                                  schema=sinks["kept"].schema)
            sinks["kept"].write(kept)
            for r in rejects:
                sinks["rejects"].write(r)
            q_rows += quarantine
            if progress is not None and final:
                progress.put((n_in, batch.column("text").nbytes, kept.num_rows))
        if decisions is not None and used[0] != len(decisions):
            raise CorpusforgeError("global_mismatch", f"{ph.global_stage.name}: {len(decisions) - used[0]} decisions for "
                                   f"part {job.part.index} name ids that are not in the part")
        if reader is not None and reader.discarded:
            # the reader discarded the part (truncated/corrupt file): so is everything derived from it
            for key, s in list(sinks.items()):
                s.abort()
                sinks[key] = ParquetSink(s.final, s.schema)
            counts, q_rows = {}, []
        lim = plan.config.limits
        check_rule_guard(ph.stages, counts, lim.max_rule_drop_fraction, lim.rule_guard_min_docs,
                         f"{job.part.file.rel} (part {job.part.index})")
        if prev is None:
            ing = ledger.new_counts()
            ing.update(**{"in": reader.stats.records, "kept": reader.stats.docs})
            ing["quarantined"].update(reader.stats.quarantined)
            ing["fixes"] = reader.stats.fixes
            if reader.stats.records == 0:
                ing["fixes"]["empty_input_files"] = 1
            all_counts = {INGEST: ing}
            hints = reader.stats.hints
            q_prev = reader.quarantine
        else:
            all_counts = {s: ledger.from_json(c) for s, c in prev["counts"].items()}
            hints = prev["hints"]
            q_prev = []
        for s, c in counts.items():
            ledger.merge(all_counts.setdefault(s, ledger.new_counts()), c)
        files = []
        q_files = [p for p in (prev or {}).get("files", []) if p["kind"] == "quarantine"]
        if q_prev or q_rows or q_files:
            qpath = os.path.join(out, "quarantine", f"{name}.parquet") if final else os.path.join(sdir, f"quarantine-{name}.parquet")
            qs = ParquetSink(qpath, QUARANTINE_SCHEMA)
            sinks["quarantine"] = qs
            for p in q_files:
                qs.write(pq.read_table(os.path.join(out, p["path"])))
            if q_prev or q_rows:
                qs.write(quarantine_table(q_prev + q_rows))
        for kind, s in sinks.items():
            if kind == "kept" or s.rows:
                s.commit()
                files.append(file_entry(out, s.final, kind, s.rows))
            else:
                s.abort()
        rec = {"part": job.part.index, "input": job.part.file.rel, "start": job.part.start,
               "counts": {s: ledger.to_json(c) for s, c in all_counts.items()}, "files": files, "hints": hints}
        faults.point("part:before_marker")
        write_json(os.path.join(out, "_parts", f"{name}.json") if final else os.path.join(sdir, f"{name}.json"), rec)
        faults.point("part:after_marker")
        seconds["read+write"] = time.perf_counter() - t_part - sum(seconds.values())  # ingest, decisions, Parquet
        return {**rec, "seconds": seconds}
    except BaseException:
        for s in sinks.values():
            s.abort()
        raise


def _clean_staged(out: str, k: int, nparts: int) -> set[int]:
    """Committed staging parts of phase k; removes temp files and files no marker lists."""
    d = _staged(out, k)
    os.makedirs(d, exist_ok=True)
    done, listed = set(), set()
    for name in sorted(os.listdir(d)):
        if not name.endswith(".json") or name.startswith(TMP_MARK):
            continue
        path = os.path.join(d, name)
        try:
            with open(path, encoding="utf-8") as f:
                rec = json.load(f)
        except (OSError, ValueError):
            os.unlink(path)
            continue
        if rec.get("part", nparts) >= nparts or not files_intact(out, rec):
            os.unlink(path)
            continue
        done.add(rec["part"])
        listed.update(os.path.basename(fi["path"]) for fi in rec["files"])
        listed.add(name)
    for name in os.listdir(d):
        if name not in listed:
            os.unlink(os.path.join(d, name))
    return done


def _run_global(plan: Plan, k: int, workers: int, backend=None) -> None:
    """Runs global stage k over all staged parts of phase k-1; commits decisions per part, marker last.

    backend(workdir) -> (primitives, to_local): another engine's primitives for the stage's plan, and a
    function that lands their decisions as local Parquet files; the per-part commit is the same for all."""
    ph = phases(plan)[k]
    gdir = _decided(plan.out, k)
    if os.path.exists(os.path.join(gdir, "done.json")):
        return
    shutil.rmtree(gdir, ignore_errors=True)
    os.makedirs(gdir)
    local = LocalPrimitives(os.path.join(gdir, "work"), workers=workers, batch_rows=plan.config.limits.batch_rows)
    engine, to_local = backend(os.path.join(gdir, "work", "engine")) if backend else (local, None)
    sdir = _staged(plan.out, k - 1)
    docs = engine.dataset([os.path.join(sdir, f"{part_name(j.part.index)}.parquet") for j in plan.jobs])
    decisions = ph.global_stage.run(engine, docs)
    decisions, fixes = decisions if isinstance(decisions, tuple) else (decisions, None)
    fix_counts: dict = {}  # part → fix → n, from the persisted rows (a handful: one per part and counter)
    for b in (engine.read(fixes) if fixes is not None else ()):
        for part, fix, n in zip(*(b.column(c).to_pylist() for c in (PART_COL, "fix", "n"))):
            of_part = fix_counts.setdefault(str(part), {})
            of_part[fix] = of_part.get(fix, 0) + n
    if to_local is not None:
        decisions = local.dataset(to_local(decisions), DECISION_SCHEMA)
    by_part = local.partition_by_value(decisions, PART_COL, len(plan.jobs), "by-part")
    parts, total = {}, 0
    for part, paths in enumerate(by_part):
        if not paths:
            continue
        t = pa.concat_tables([pq.read_table(p) for p in paths]).cast(DECISION_SCHEMA)
        t = t.take(pc.sort_indices(t, [("id", "ascending")]))
        if pc.count_distinct(t.column("id")).as_py() != t.num_rows:
            raise CorpusforgeError("global_mismatch", f"{ph.global_stage.name}: a document got two decisions")
        rel = os.path.join(GLOBAL_DIR, f"g{k}", f"decisions-{part_name(part)}.parquet")
        s = ParquetSink(os.path.join(plan.out, rel), DECISION_SCHEMA)
        s.write(t)
        s.commit()
        parts[str(part)] = [rel.replace(os.sep, "/")]
        total += t.num_rows
    shutil.rmtree(os.path.join(gdir, "work"), ignore_errors=True)
    faults.point("global:before_marker")
    write_json(os.path.join(gdir, "done.json"), {"stage": ph.global_stage.key, "decisions": total, "parts": parts,
                                                 "fixes": dict(sorted(fix_counts.items()))})


def run(plan: Plan, workers: int = DEFAULT_WORKERS, resume: bool = False, overwrite: bool = False, progress: bool | None = None,
        engine: str = "local", execute=None, backend=None) -> dict:
    """Runs a plan. The Spark and Beam engines reuse this driver with their own `execute(plan, tasks, ...)`
    (runs `run_task` for each (phase, job) on the cluster) and global-stage `backend` (see _run_global):
    the unit of work, its files and the commit protocol are the same, so results are byte-identical."""
    stage_seconds: dict = {}  # for run_info.json (Beam part tasks report no stage timings)
    execute = functools.partial(execute or _execute, timings=stage_seconds)
    started = time.time()
    with outputs.claim(plan.out, plan.kind, overwrite=overwrite, resume=resume) as resuming:
        return _run(plan, workers, prepare_output(plan, resuming), progress, engine, execute, backend, started,
                    stage_seconds)


def _run(plan: Plan, workers: int, done: set[int], progress, engine: str, execute, backend, started: float,
         stage_seconds: dict) -> dict:
    phs = phases(plan)
    bar = tqdm(total=len(plan.jobs), initial=len(done), unit="part", disable=progress is False if progress is not None else None,
               dynamic_ncols=True, desc=f"corpusforge {plan.config.run.name}")
    stats = {"docs": 0, "bytes": 0, "kept": 0}

    def on_progress(msg):
        stats["docs"] += msg[0]
        stats["bytes"] += msg[1]
        stats["kept"] += msg[2]
        rate = stats["docs"] / max(time.time() - started, 1e-6)
        bar.set_postfix_str(f"docs={stats['docs']} MB={stats['bytes'] / 2**20:.1f} docs/s={rate:.0f} "
                            f"kept={stats['kept']} dropped={stats['docs'] - stats['kept']}", refresh=True)

    if len(done) < len(plan.jobs):
        for k, ph in enumerate(phs):
            if ph.last:
                todo = [(k, j) for j in plan.jobs if j.part.index not in done]
                execute(plan, todo, workers, bar, on_progress)
            elif not os.path.exists(os.path.join(_decided(plan.out, k + 1), "done.json")):
                staged = _clean_staged(plan.out, k, len(plan.jobs))
                execute(plan, [(k, j) for j in plan.jobs if j.part.index not in staged], workers, None, on_progress)
                t0 = time.perf_counter()
                _run_global(plan, k + 1, workers, backend)
                stage_seconds[phs[k + 1].global_stage.name] = time.perf_counter() - t0
    bar.close()
    manifest = finish(plan, engine, started, workers, stage_seconds)
    shutil.rmtree(os.path.join(plan.out, GLOBAL_DIR), ignore_errors=True)
    return manifest


def add_seconds(total: dict, part: dict) -> None:
    for k, v in part.items():
        total[k] = total.get(k, 0.0) + v


def _execute(plan: Plan, todo: list, workers: int, bar, on_progress, timings: dict) -> None:
    if workers <= 1 or len(todo) <= 1:
        q: queue.Queue = queue.Queue()
        _init_worker(plan, q)
        for task in todo:
            add_seconds(timings, _run_part(task)["seconds"])
            while not q.empty():
                on_progress(q.get())
            if bar is not None:
                bar.update(1)
    else:
        _parallel(plan, todo, workers, bar, on_progress, timings)


def _parallel(plan: Plan, todo: list, workers: int, bar, on_progress, timings: dict) -> None:
    ctx = mp.get_context("fork")
    progress = ctx.Queue()
    stop = threading.Event()

    def drain():
        while not stop.is_set():
            try:
                on_progress(progress.get(timeout=0.2))
            except queue.Empty:
                pass
            except (EOFError, OSError):
                return

    t = threading.Thread(target=drain, daemon=True)
    t.start()
    try:
        with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_pool_worker, initargs=(plan, progress)) as pool:
            pending = {pool.submit(_run_part, task) for task in todo}
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for f in finished:
                    add_seconds(timings, f.result()["seconds"])
                    if bar is not None:
                        bar.update(1)
    except BrokenProcessPool:
        raise CorpusforgeError("worker_died", "a worker process died (killed or out of memory); "
                               "committed parts are kept: rerun with --resume") from None
    finally:
        stop.set()
        t.join()
