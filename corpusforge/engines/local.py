"""The default engine: streams each part through the stages in a process pool, bounded memory,
one committed set of files + ledger marker per part, so --resume skips what is done."""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from tqdm import tqdm

from corpusforge import faults, ledger
from corpusforge.errors import CorpusforgeError
from corpusforge.io.readers import quarantine_table, read_part
from corpusforge.io.writers import ParquetSink, write_json
from corpusforge.pipeline import apply_stages
from corpusforge.runner import Job, Plan, file_entry, finish, part_name, prepare_output
from corpusforge.schema import INGEST, QUARANTINE_SCHEMA, REJECT_SCHEMA

_worker: dict = {}


def _init_worker(plan: Plan, progress) -> None:
    for s in plan.stages:
        s.setup()
    _worker.update(plan=plan, progress=progress)


def _run_part(job: Job) -> dict:
    plan: Plan = _worker["plan"]
    progress = _worker["progress"]
    out, name = plan.out, part_name(job.part.index)
    sinks = {
        "kept": ParquetSink(os.path.join(out, "kept", f"{name}.parquet"), plan.kept_schema),
        "rejects": ParquetSink(os.path.join(out, "rejects", f"{name}.parquet"), REJECT_SCHEMA),
    }
    counts: dict = {}
    q_rows: list[dict] = []
    try:
        batches, reader = read_part(job.part, job.read)
        for batch in batches:
            kept, rejects, quarantine = apply_stages(plan.stages, plan.schemas, batch, counts)
            sinks["kept"].write(kept)
            for r in rejects:
                sinks["rejects"].write(r)
            q_rows += quarantine
            if progress is not None:
                progress.put((batch.num_rows, batch.column("text").nbytes, kept.num_rows))
        if reader.discarded:
            # the reader discarded the part (truncated/corrupt file): so is everything derived from it
            for k, s in list(sinks.items()):
                s.abort()
                sinks[k] = ParquetSink(s.final, s.schema)
            counts, q_rows = {}, []
        ing = ledger.new_counts()
        ing.update(**{"in": reader.stats.records, "kept": reader.stats.docs})
        ing["quarantined"].update(reader.stats.quarantined)
        ing["fixes"] = reader.stats.fixes
        if reader.stats.records == 0:
            ing["fixes"]["empty_input_files"] = 1
        files = []
        q_all = reader.quarantine + q_rows
        if q_all:
            qs = ParquetSink(os.path.join(out, "quarantine", f"{name}.parquet"), QUARANTINE_SCHEMA)
            sinks["quarantine"] = qs
            qs.write(quarantine_table(q_all))
        for kind, s in sinks.items():
            if kind == "kept" or s.rows:
                s.commit()
                files.append(file_entry(out, s.final, kind, s.rows))
            else:
                s.abort()
        rec = {"part": job.part.index, "input": job.part.file.rel, "start": job.part.start,
               "counts": {INGEST: ledger.to_json(ing), **{k: ledger.to_json(v) for k, v in counts.items()}},
               "files": files, "hints": reader.stats.hints}
        faults.point("part:before_marker")
        write_json(os.path.join(out, "_parts", f"{name}.json"), rec)
        faults.point("part:after_marker")
        return rec
    except BaseException:
        for s in sinks.values():
            s.abort()
        raise


def run(plan: Plan, workers: int = 1, resume: bool = False, overwrite: bool = False, progress: bool | None = None) -> dict:
    started = time.time()
    done = prepare_output(plan, resume, overwrite)
    todo = [j for j in plan.jobs if j.part.index not in done]
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

    if workers <= 1 or len(todo) <= 1:
        q: queue.Queue = queue.Queue()
        _init_worker(plan, q)
        for job in todo:
            _run_part(job)
            while not q.empty():
                on_progress(q.get())
            bar.update(1)
    else:
        _parallel(plan, todo, workers, bar, on_progress)
    bar.close()
    return finish(plan, "local", started, workers)


def _parallel(plan: Plan, todo: list[Job], workers: int, bar, on_progress) -> None:
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
        with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=(plan, progress)) as pool:
            pending = {pool.submit(_run_part, j) for j in todo}
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for f in finished:
                    f.result()
                    bar.update(1)
    except BrokenProcessPool:
        raise CorpusforgeError("worker_died", "a worker process died (killed or out of memory); "
                               "committed parts are kept: rerun with --resume") from None
    finally:
        stop.set()
        t.join()
