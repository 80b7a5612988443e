"""Atomic, durable writes. Local: temp name → fsync(file) → rename → fsync(dir); temp names never look
final. Object store (no rename): the bytes go to a local spool file, then one upload under the final key,
which appears whole or not at all (io/store.py)."""

from __future__ import annotations

import json
import os
from contextlib import contextmanager

import pyarrow as pa
import pyarrow.parquet as pq

from corpusforge import faults
from corpusforge.io import fs, store
from corpusforge.errors import CorpusforgeError

TMP_MARK = ".tmp-"


def tmp_path(final: str) -> str:
    """Where `final` is written before it is committed: beside it locally, a local spool file for an object."""
    if fs.is_remote(final):
        return store.spool_path(final)
    d, b = os.path.split(final)
    return os.path.join(d, f"{TMP_MARK}{os.getpid()}-{b}")


def fsync_dir(d: str) -> None:
    fd = os.open(d, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def commit(tmp: str, final: str) -> None:
    if fs.is_remote(final):
        store.upload(tmp, final)
        os.unlink(tmp)
        return
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, final)
    fsync_dir(os.path.dirname(final) or ".")


@contextmanager
def atomic_file(final: str, mode: str = "wb"):
    tmp = tmp_path(final)
    try:
        with open(tmp, mode) as f:
            yield f
        commit(tmp, final)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_error(path: str, e: OSError) -> CorpusforgeError:
    """ENOSPC, EROFS, EACCES...: one line naming the file (an OSError from write() carries no path)."""
    return CorpusforgeError("write_failed", f"{path}: {e.strerror or e} (the file was not committed; "
                            "free space or fix permissions, then rerun with --resume)")


def write_json(final: str, obj) -> None:
    data = (json.dumps(obj, ensure_ascii=False, indent=1, sort_keys=True) + "\n").encode("utf-8")
    if fs.is_remote(final):
        store.put_bytes(final, data)
        return
    try:
        with atomic_file(final) as f:
            f.write(data)
    except OSError as e:
        raise write_error(final, e) from None


class ParquetSink:
    """Streams batches into a temp Parquet file; commit() makes it visible under its final name."""

    def __init__(self, final: str, schema: pa.Schema, compression: str = "zstd"):
        self.final, self.schema, self.tmp, self.compression = final, schema, tmp_path(final), compression
        self.rows, self.sha256 = 0, None
        self._w = pq.ParquetWriter(self.tmp, schema, compression=compression)

    def write(self, batch: pa.RecordBatch | pa.Table) -> None:
        if batch.num_rows:
            try:
                if isinstance(batch, pa.Table):
                    self._w.write_table(batch)
                else:
                    self._w.write_batch(batch)
            except OSError as e:
                raise write_error(self.final, e) from None
            self.rows += batch.num_rows
            faults.point("write:mid")

    def commit(self) -> None:
        try:
            self._w.close()
            self.sha256 = fs.sha256(self.tmp)  # of the bytes committed: no read-back from the store
            faults.point("write:before_rename")
            commit(self.tmp, self.final)
        except OSError as e:
            raise write_error(self.final, e) from None
        faults.point("write:after_rename")

    def abort(self) -> None:
        try:
            self._w.close()
        finally:
            if os.path.exists(self.tmp):
                os.unlink(self.tmp)
