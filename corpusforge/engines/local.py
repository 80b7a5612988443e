"""The default engine: the driver's (phase, part) tasks in a process pool (fork), or in this process for
one worker or one task; bounded memory (each task streams its part), global stages on LocalPrimitives."""

from __future__ import annotations

import multiprocessing as mp
import queue
import threading
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from corpusforge import driver, parttask
from corpusforge.config import DEFAULT_WORKERS
from corpusforge.driver import add_seconds
from corpusforge.errors import CorpusforgeError
from corpusforge.runner import Plan


class LocalExecutor(driver.Executor):
    name = "local"

    def execute(self, plan: Plan, tasks: list, workers: int, bar, on_progress, timings: dict) -> None:
        if workers > 1 and len(tasks) > 1:
            return _parallel(plan, tasks, workers, bar, on_progress, timings)
        q: queue.Queue = queue.Queue()
        parttask.init_worker(plan, q)
        for task in tasks:
            add_seconds(timings, parttask.run_part(task)["seconds"])
            while not q.empty():
                on_progress(q.get())
            if bar is not None:
                bar.update(1)


def run(plan: Plan, workers: int = DEFAULT_WORKERS, resume: bool = False, overwrite: bool = False,
        progress: bool | None = None) -> dict:
    return driver.run(plan, LocalExecutor(), workers, resume=resume, overwrite=overwrite, progress=progress)


def _parallel(plan: Plan, tasks: list, workers: int, bar, on_progress, timings: dict) -> None:
    parttask.init_worker(plan, None)  # once, here: the forked workers inherit the set-up stages
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
        with ProcessPoolExecutor(workers, mp_context=ctx, initializer=parttask.init_pool_worker,
                                 initargs=(plan, progress)) as pool:
            pending = {pool.submit(parttask.run_part, task) for task in tasks}
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
