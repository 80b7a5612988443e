"""The local engine's primitives: every intermediate spilled to Parquet, bounded memory per step."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from corpusforge.io import fs, store
from corpusforge.primitives import Primitives, aggregate_schema, check_aggs, conform, final_aggregate, join_schema, partition_of, two_phase

@dataclass(frozen=True)
class Dataset:
    """Local dataset handle: Parquet files in a fixed order, all with `schema`."""

    paths: tuple[str, ...]
    schema: pa.Schema

    def rows(self) -> int:
        return sum(_file(p).metadata.num_rows for p in self.paths)


class SpillSink:
    """Parquet spill file of an intermediate step: lz4, no fsync. Spills are never final output: a global
    step is committed by the engine's marker after its decisions are written durably, and a crashed step is
    recomputed from scratch, so paying for durability here would buy nothing."""

    def __init__(self, path: str, schema: pa.Schema):
        self.path, self.schema, self.rows, self._stream = path, schema, 0, None
        if fs.is_remote(path):  # a scratch prefix on a store (Beam with run.scratch): one object, complete on close
            f, inner = fs.resolve(path)
            self._stream = f.open_output_stream(inner, compression=None)
        self._w = pq.ParquetWriter(self._stream or path, schema, compression="lz4")

    def write(self, t: pa.Table | pa.RecordBatch) -> None:
        if t.num_rows:
            if isinstance(t, pa.Table):
                self._w.write_table(t)
            else:
                self._w.write_batch(t)
            self.rows += t.num_rows

    def commit(self) -> None:
        self._w.close()
        if self._stream is not None:  # ParquetWriter leaves a stream it was given open
            self._stream.close()

    def abort(self) -> None:
        self.commit()
        if store.exists(self.path):
            store.delete(self.path)


def _file(p: str) -> pq.ParquetFile:
    return pq.ParquetFile(store.source(p))


def _table(p: str, columns: list[str]) -> pa.Table:
    return pq.read_table(store.source(p), columns=columns)


def _map_file(args) -> tuple[str, int]:
    src, columns, dst, fn, schema, batch_rows = args
    sink = SpillSink(dst, schema)
    try:
        for b in _file(src).iter_batches(batch_size=batch_rows, columns=columns):
            sink.write(conform(fn(b), schema))
        sink.commit()
    except BaseException:
        sink.abort()
        raise
    return dst, sink.rows


class LocalPrimitives(Primitives):
    """Spills every intermediate to Parquet under `workdir`; memory per step is bounded by one input
    batch (map), or one hash partition of ~`partition_rows` rows (combine, join)."""

    def __init__(self, workdir: str, workers: int = 1, batch_rows: int = 8192, partition_rows: int = 500_000,
                 partition_bytes: int = 32 * 2**20):
        self.workdir, self.workers, self.batch_rows = workdir, workers, batch_rows
        self.partition_rows, self.partition_bytes = partition_rows, partition_bytes
        self.components_rows = partition_rows  # one in-memory union-find holds at most one partition
        store.makedirs(workdir)
        self._seq = 0

    def _dir(self, name: str) -> str:
        self._seq += 1
        d = fs.join(self.workdir, f"{self._seq:03d}-{name}")
        store.makedirs(d)
        return d

    # -- IO
    def from_table(self, table: pa.Table, name: str) -> Dataset:
        d = self._dir(name)
        p = fs.join(d, "part-00000.parquet")
        s = SpillSink(p, table.schema)
        s.write(table)
        s.commit()
        return Dataset((p,), table.schema)

    def dataset(self, paths: Iterable[str], schema: pa.Schema | None = None) -> Dataset:
        paths = tuple(paths)
        if schema is None:
            schema = _file(paths[0]).schema_arrow if paths else pa.schema([])
        return Dataset(paths, schema)

    def select(self, ds: Dataset, columns: list[str]) -> Dataset:
        return Dataset(ds.paths, pa.schema([ds.schema.field(c) for c in columns]))

    def read(self, ds: Dataset) -> Iterator[pa.RecordBatch]:
        for p in ds.paths:
            yield from _file(p).iter_batches(batch_size=self.batch_rows, columns=ds.schema.names)

    def read_table(self, ds: Dataset) -> pa.Table:
        return pa.Table.from_batches(list(self.read(ds)), schema=ds.schema)

    def count(self, ds: Dataset) -> int:
        return ds.rows()

    # -- map
    def map_batches(self, ds: Dataset, fn: Callable, schema: pa.Schema, name: str) -> Dataset:
        d = self._dir(name)
        jobs = [(src, ds.schema.names, fs.join(d, f"part-{i:05d}.parquet"), fn, schema, self.batch_rows)
                for i, src in enumerate(ds.paths)]
        if self.workers > 1 and len(jobs) > 1:
            import multiprocessing as mp

            with ProcessPoolExecutor(min(self.workers, len(jobs)), mp_context=mp.get_context("fork")) as pool:
                done = list(pool.map(_map_file, jobs))
        else:
            done = [_map_file(j) for j in jobs]
        return Dataset(tuple(p for p, _ in done), schema)

    # -- shuffle: hash-partition rows by key into nparts spill files (bounded buffers)
    def _nparts(self, *dss: Dataset) -> int:
        rows = sum(d.rows() for d in dss)
        metas = [_file(p).metadata for d in dss for p in d.paths]
        size = sum(m.row_group(i).total_byte_size for m in metas for i in range(m.num_row_groups))
        return max(1, math.ceil(rows / self.partition_rows), math.ceil(size / self.partition_bytes))

    def partition_by_value(self, ds: Dataset, col: str, nparts: int, name: str) -> list[list[str]]:
        """Spill files per value of an integer column in [0, nparts) (e.g. decisions per part)."""
        return self._shuffle(ds, [col], nparts, name, by_value=True)

    def _shuffle(self, ds: Dataset, keys: list[str], nparts: int, name: str,
                 pre: Callable[[pa.Table], pa.Table] | None = None, schema: pa.Schema | None = None,
                 by_value: bool = False) -> list[list[str]]:
        schema = schema or ds.schema
        if nparts == 1 and pre is None and not by_value:
            return [list(ds.paths)]
        d = self._dir(name)
        files: list[list[str]] = [[] for _ in range(nparts)]
        buf: list[list[pa.Table]] = [[] for _ in range(nparts)]
        buffered = buffered_bytes = 0

        def flush():
            nonlocal buffered, buffered_bytes
            for k in range(nparts):
                if buf[k]:
                    p = fs.join(d, f"p{k:05d}-{len(files[k]):05d}.parquet")
                    s = SpillSink(p, schema)
                    s.write(pa.concat_tables(buf[k]))
                    s.commit()
                    files[k].append(p)
                    buf[k] = []
            buffered = buffered_bytes = 0

        for b in self.read(ds):
            t = pa.Table.from_batches([b])
            if pre is not None:
                t = pre(t)
            if nparts == 1 and not by_value:
                buf[0].append(t)
            else:
                part = (np.asarray(t.column(keys[0]).to_numpy(), np.int64) if by_value
                        else partition_of(t, keys, nparts))
                order = np.argsort(part, kind="stable")
                t, part = t.take(pa.array(order)), part[order]
                bounds = np.searchsorted(part, np.arange(nparts + 1))
                for k in range(nparts):
                    if bounds[k + 1] > bounds[k]:
                        buf[k].append(t.slice(bounds[k], bounds[k + 1] - bounds[k]))
            buffered += t.num_rows
            buffered_bytes += t.nbytes
            if buffered >= self.partition_rows or buffered_bytes >= self.partition_bytes:
                flush()
        flush()
        return files

    def _read_files(self, paths: list[str], schema: pa.Schema) -> pa.Table:
        return pa.concat_tables([_table(p, schema.names) for p in paths]) if paths else schema.empty_table()

    # -- combine per key
    def combine(self, ds: Dataset, keys: list[str], aggs: list[tuple[str, str, str]], name: str) -> Dataset:
        check_aggs(aggs)
        partial, pre_names, final = two_phase(aggs)
        # pre-combine each batch (the map-side combiner) so hot keys never pile up in one partition

        def precombine(t: pa.Table) -> pa.Table:
            g = t.group_by(keys, use_threads=False).aggregate(partial)
            return g.select(keys + pre_names)

        pre_schema = precombine(ds.schema.empty_table()).schema
        parts = self._shuffle(ds, keys, self._nparts(ds), name + "-shuffle", pre=precombine, schema=pre_schema)
        d = self._dir(name)
        out_fields = [ds.schema.field(k) for k in keys]
        out = []
        for k, files in enumerate(parts):
            g = final_aggregate(self._read_files(files, pre_schema), keys, final, [o for _, _, o in aggs])
            if not out_fields[len(keys):]:
                out_fields += [g.schema.field(o) for _, _, o in aggs]
            p = fs.join(d, f"part-{k:05d}.parquet")
            s = SpillSink(p, g.schema)
            s.write(g)
            s.commit()
            out.append((p, g.schema))
        return Dataset(tuple(p for p, _ in out), out[0][1])

    def annotate(self, ds: Dataset, keys: list[str], aggs: list[tuple[str, str, str]], name: str) -> Dataset:
        check_aggs(aggs)
        agg_schema = aggregate_schema(ds.schema, keys, aggs)
        out_schema = pa.schema(list(ds.schema) + [f for f in agg_schema if f.name not in keys])
        partial, names, final = two_phase(aggs)
        d = self._dir(name)
        paths = []
        # a key's rows all land in one hash partition, spilled as files of at most one buffer each: aggregate
        # the partition file by file, then join each file with the (one row per key) aggregates. A hot key never
        # holds more than one file in memory.
        for k, files in enumerate(self._shuffle(ds, keys, self._nparts(ds), name + "-shuffle")):
            parts = [_table(f, ds.schema.names).group_by(keys, use_threads=False).aggregate(partial)
                     .select(keys + names) for f in files]
            p = fs.join(d, f"part-{k:05d}.parquet")
            s = SpillSink(p, out_schema)
            if parts:
                g = final_aggregate(pa.concat_tables(parts), keys, final, agg_schema.names[len(keys):])
                for f in files:
                    t = _table(f, ds.schema.names)
                    s.write(t.join(g, keys=keys, join_type="inner", use_threads=False).select(out_schema.names).cast(out_schema))
            s.commit()
            paths.append(p)
        return Dataset(tuple(paths), out_schema)

    # -- join on key
    def join(self, left: Dataset, right: Dataset, on: list[str], name: str) -> Dataset:
        out_schema = join_schema(left.schema, right.schema, on, name)
        for small, big in ((right, left), (left, right)):
            if self._nparts(small) == 1:
                return self._broadcast_join(left, right, small is left, on, out_schema, name)
        n = self._nparts(left, right)
        lp = self._shuffle(left, on, n, name + "-left")
        rp = self._shuffle(right, on, n, name + "-right")
        d = self._dir(name)
        paths = []
        for k in range(n):
            lt, rt = self._read_files(lp[k], left.schema), self._read_files(rp[k], right.schema)
            j = lt.join(rt, keys=on, join_type="inner", use_threads=False) if lt.num_rows and rt.num_rows \
                else out_schema.empty_table()
            j = j.select(out_schema.names).cast(out_schema)
            p = fs.join(d, f"part-{k:05d}.parquet")
            s = SpillSink(p, out_schema)
            s.write(j)
            s.commit()
            paths.append(p)
        return Dataset(tuple(paths), out_schema)

    def _broadcast_join(self, left: Dataset, right: Dataset, left_small: bool, on: list[str], out_schema: pa.Schema,
                        name: str) -> Dataset:
        """One side fits one partition: hold it, stream the other side through (no shuffle of the big side)."""
        small = self._read_files(list(left.paths if left_small else right.paths), left.schema if left_small else right.schema)
        big = right if left_small else left
        d = self._dir(name)
        p = fs.join(d, "part-00000.parquet")
        s = SpillSink(p, out_schema)
        if small.num_rows:
            # only the big side's rows whose first key the small side holds reach the join (the same inner join:
            # a row without such a key matches nothing), so a few edges joined to every text copy a few texts
            keys = pc.unique(small.column(on[0]))
            for t in self._chunks(big):
                t = t.filter(pc.is_in(t.column(on[0]), value_set=keys))
                j = small.join(t, keys=on, join_type="inner", use_threads=False) if left_small else \
                    t.join(small, keys=on, join_type="inner", use_threads=False)
                s.write(j.select(out_schema.names).cast(out_schema))
        s.commit()
        return Dataset((p,), out_schema)

    def _chunks(self, ds: Dataset) -> Iterator[pa.Table]:
        """The dataset in tables of up to one partition (partition_rows / partition_bytes): each join call
        rebuilds its hash table, so joining batch by batch is quadratic (measured: 61 s vs 2 s for 4x data)."""
        buf, rows, size = [], 0, 0
        for b in self.read(ds):
            buf.append(b)
            rows, size = rows + b.num_rows, size + b.nbytes
            if rows >= self.partition_rows or size >= self.partition_bytes:
                yield pa.Table.from_batches(buf, schema=ds.schema)
                buf, rows, size = [], 0, 0
        if buf:
            yield pa.Table.from_batches(buf, schema=ds.schema)
