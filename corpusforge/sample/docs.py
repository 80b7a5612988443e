"""Where the sampler and tokenizer trainer get documents: corpusforge run directories (their
kept/part-*.parquet, ids kept as the run assigned them), or plain .parquet/.jsonl(.gz/.zst)/.txt
files and globs read through the project's readers (stable ids, malformed records quarantined)."""

from __future__ import annotations

import dataclasses
import glob
import os
from dataclasses import dataclass
from typing import Iterator

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from corpusforge.errors import CorpusforgeError
from corpusforge.io import fs, store
from corpusforge.io.inputs import Part, expand_inputs, plan_parts
from corpusforge.io.readers import ReadOptions, read_part

COLUMNS = ["id", "source", "text"]


@dataclass(frozen=True)
class Task:
    """One unit of reading: a kept part of a run (`kept`), or a part of a plain input file."""

    kept: str | None = None
    part: Part | None = None
    opts: ReadOptions | None = None
    source: str | None = None  # only documents whose `source` column equals this (one source of a multi-source run)

    @property
    def label(self) -> str:
        return self.kept or self.part.file.path


def _format_of(path: str) -> str:
    p = path.lower()
    for suffix in (".gz", ".zst", ".zstd"):
        p = p.removesuffix(suffix)
    if p.endswith(".parquet"):
        return "parquet"
    if p.endswith(".txt"):
        return "txt"
    if p.endswith(".jsonl") or p.endswith(".json") or p.endswith(".ndjson"):
        return "jsonl"
    raise CorpusforgeError("bad_input", f"{path}: unknown format (expected a run directory, .parquet, .jsonl or .txt)")


def tasks_for(path: str, base_dir: str = ".", text_field: str = "text", batch_rows: int = 1024,
              batch_bytes: int = 16 << 20, source: str | None = None) -> list[Task]:
    """Read tasks of one input spec, in a deterministic order (sorted files, then parts)."""
    return [dataclasses.replace(t, source=source) for t in _tasks(path, base_dir, text_field, batch_rows, batch_bytes)]


def _tasks(path: str, base_dir: str, text_field: str, batch_rows: int, batch_bytes: int) -> list[Task]:
    full = fs.under(base_dir, path)
    if store.isdir(full) and store.isfile(fs.join(full, "manifest.json")):
        kept = sorted(fs.join(full, "kept", n) for n in _listdir(fs.join(full, "kept"))
                      if n.startswith("part-") and n.endswith(".parquet"))
        if not kept:
            raise CorpusforgeError("no_input_files", f"{full}: a corpusforge run with no kept/part-*.parquet")
        return [Task(kept=k) for k in kept]
    if fs.is_remote(full):
        matches = fs.glob(full)
    else:
        matches = sorted(glob.glob(full, recursive=True)) or ([full] if os.path.exists(full) else [])
    if not matches:
        raise CorpusforgeError("no_input_files", f"{path!r} matches no files")
    if any(store.isdir(m) for m in matches):
        raise CorpusforgeError("bad_input", f"{path}: a directory that is not a corpusforge run (no manifest.json)")
    tasks: list[Task] = []
    by_fmt: dict[str, list[str]] = {}
    for m in matches:
        by_fmt.setdefault(_format_of(m), []).append(m)
    for fmt, files in sorted(by_fmt.items()):
        infiles = expand_inputs(files, base_dir, None, fmt).files
        opts = ReadOptions(format=fmt, text_field=text_field, batch_rows=batch_rows, batch_bytes=batch_bytes)
        tasks += [Task(part=p, opts=opts) for p in plan_parts(infiles, fmt, 32 << 20)]
    return tasks


def _listdir(d: str) -> list[str]:
    return store.listdir(d) if store.isdir(d) else []


def read_task(task: Task, batch_rows: int = 1024) -> tuple[Iterator[pa.RecordBatch], list[dict]]:
    """(batches with id/source/text, quarantine rows — complete once the batches are exhausted)."""
    if task.kept:
        pf = pq.ParquetFile(store.source(task.kept))
        missing = [c for c in COLUMNS if c not in pf.schema_arrow.names]
        if missing:
            raise CorpusforgeError("bad_input", f"{task.kept}: no column(s) {missing}")
        return _only(task.source, pf.iter_batches(batch_size=batch_rows, columns=COLUMNS)), []
    batches, out = read_part(task.part, task.opts)
    return _only(task.source, (b.select(COLUMNS) for b in batches)), out.quarantine


def _only(source: str | None, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    for b in batches:
        if source is not None:
            b = b.filter(pc.equal(b.column("source"), source))
        if b.num_rows:
            yield b


def iter_texts(paths: list[str], text_field: str = "text") -> Iterator[tuple[str, str]]:
    """(id, text) of every readable document of the inputs, in order."""
    for p in paths:
        for t in tasks_for(p, text_field=text_field):
            batches, _ = read_task(t)
            for b in batches:
                yield from zip(b.column("id").to_pylist(), b.column("text").to_pylist())
