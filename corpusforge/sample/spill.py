"""Step 1 of `corpusforge sample`: every source tokenized once (the `tokenize` MapStage, one task per
input part, in a process pool), its ids, token counts and tokens spilled to Parquet in task order;
round-trip failures and unreadable records come back as quarantine rows."""

from __future__ import annotations

import hashlib
import multiprocessing as mp
import queue
import threading
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from tqdm import tqdm

from corpusforge import procs
from corpusforge.io import fs
from corpusforge.io.writers import ParquetSink
from corpusforge.sample.docs import Task, read_task
from corpusforge.stages.tokenize import ROUNDTRIP, TOKENS, TokenizeParams, TokenizeStage

SPILL_SCHEMA = pa.schema([pa.field("id", pa.string()), pa.field("n", pa.int32()), pa.field(TOKENS, pa.list_(pa.int32()))])
_worker: dict = {}


def _init_pool(params: TokenizeParams, storage: dict) -> None:
    procs.lean(system_arrow_pool=True)  # a pool process is the sampler's alone
    fs.configure(storage)  # a spawned process starts with none: inputs may be on an object store
    _init(params)


def _init(params: TokenizeParams) -> None:
    stage = TokenizeStage(params)
    stage.setup()
    _worker["stage"] = stage


def _prefetch(it, depth: int = 2):
    """Parse the next batches in a thread: the reader holds the GIL, encode_batch releases it."""
    q: queue.Queue = queue.Queue(depth)
    done = object()

    def fill():
        try:
            for x in it:
                q.put(x)
            q.put(done)
        except BaseException as e:  # re-raised in the consumer
            q.put(e)

    threading.Thread(target=fill, daemon=True).start()
    while (x := q.get()) is not done:
        if isinstance(x, BaseException):
            raise x
        yield x


def _tokenize_task(job: tuple[int, Task, str, int]) -> dict:
    """Tokenize one input part into a spill file; returns counts and quarantine rows."""
    si, task, spill, batch_rows = job
    stage = _worker["stage"]
    batches, ingest_q = read_task(task, batch_rows)
    batches = _prefetch(batches)
    sink = ParquetSink(spill, SPILL_SCHEMA)
    quarantine, docs, tokens, chars = [], 0, 0, 0
    try:
        for b in batches:
            t = stage.map(b)
            bad = t.column(ROUNDTRIP).is_valid().to_numpy(zero_copy_only=False)
            if bad.any():
                for i in np.flatnonzero(bad):
                    text = b.column("text")[int(i)].as_py()
                    raw = text.encode("utf-8", "surrogatepass")
                    quarantine.append({"id": b.column("id")[int(i)].as_py(), "stage": "tokenize", "file": task.label,
                                       "line": None, "byte_offset": None, "reason": "tokenizer_roundtrip",
                                       "detail": t.column(ROUNDTRIP)[int(i)].as_py(),
                                       "raw_sha1": hashlib.sha1(raw).hexdigest(), "raw": raw[:65536]})
                t = t.filter(pa.array(~bad))
            toks = t.column(TOKENS)
            n = pa.array(np.diff(toks.offsets.to_numpy()).astype(np.int32)) if len(t) else pa.array([], pa.int32())
            sink.write(pa.RecordBatch.from_arrays([t.column("id"), n, toks], schema=SPILL_SCHEMA))
            docs += len(t)
            tokens += int(pc.sum(n).as_py() or 0)
            chars += sum(len(x) for x in b.column("text").to_pylist())
        sink.commit()
    except BaseException:
        sink.abort()
        raise
    for q in ingest_q:
        quarantine.append({**q, "file": task.label})
    return {"source": si, "spill": spill, "docs": docs, "tokens": tokens, "chars": chars, "quarantine": quarantine}


def tokenize_all(jobs, params: TokenizeParams, workers: int, progress: bool) -> list[dict]:
    bar = tqdm(total=len(jobs), unit="part", desc="tokenize", disable=not progress)
    out = []
    try:
        if workers <= 1:
            _init(params)
            for j in jobs:
                out.append(_tokenize_task(j))
                bar.update(1)
                bar.set_postfix(tokens=sum(r["tokens"] for r in out))
        else:
            # spawn: the parent may already hold a tokenizer (and its thread pool), which fork would corrupt.
            with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=_init_pool,
                                     initargs=(params, fs.options())) as pool:
                for r in pool.map(_tokenize_task, jobs):
                    out.append(r)
                    bar.update(1)
                    bar.set_postfix(tokens=sum(r["tokens"] for r in out))
    finally:
        bar.close()
    return out


