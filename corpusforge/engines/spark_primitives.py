"""The engine primitives over Spark DataFrames, for global stages (dedup) on the Spark engine.

Every dataset that is data at rest is a list of Parquet files under the run's scratch location (a local
folder, a cluster filesystem or an object store): a DataFrame reads it with one Spark task per file that
reads its file in Python through corpusforge's storage layer, and a shuffle result (combine, annotate,
join) is written by one task per Spark partition, also in Python through the storage layer. So
executors need no shared directory and no Hadoop connector jars (S3A, GCS): whatever the driver and its
executors can reach through pyarrow.fs is enough. Shuffles are materialized (bounded memory, no lineage
recomputation); map steps are lazy `mapInArrow`s fused into the job that consumes them. Results that are
files are counted and read from their footers and files on the driver, not by a job."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from corpusforge.io import fs, store
from corpusforge.io.writers import ParquetSink
from corpusforge.primitives import Primitives, check_aggs, conform, join_schema

FILES_SCHEMA = pa.schema([pa.field("path", pa.string()), pa.field("rows", pa.int64())])


def _nullable(schema: pa.Schema) -> pa.Schema:
    # Spark treats non-nullable Arrow fields strictly; nullability is not part of our contract
    return pa.schema([f.with_nullable(True) for f in schema])


def spark_schema(schema: pa.Schema):
    from pyspark.sql.pandas.types import from_arrow_schema

    return from_arrow_schema(_nullable(schema))


def _arrow_schema(df) -> pa.Schema:
    from pyspark.sql.pandas.types import to_arrow_schema

    return _nullable(to_arrow_schema(df.schema))


class _MapFn:
    """Picklable mapInArrow body: map steps (fn, declared schema) applied in turn to every batch, each
    output cast to its step's schema. Consecutive maps run as one body: one Python worker per task."""

    def __init__(self, steps: list[tuple[Callable, pa.Schema]]):
        self.steps = [(fn, _nullable(schema)) for fn, schema in steps]
        self.schema = self.steps[-1][1]

    def __call__(self, batches):
        for b in batches:
            yield from self._apply(b, 0)

    def _apply(self, batch, i: int):
        fn, schema = self.steps[i]
        for out in conform(fn(batch), schema).to_batches():
            if i + 1 == len(self.steps):
                yield out
            else:
                yield from self._apply(out, i + 1)


class _FileMap:
    """mapInArrow body over file numbers: the Python worker reads its Parquet file itself through the
    storage layer (documents never pass through JVM rows on the way in), then applies the map steps."""

    def __init__(self, paths: list[str], columns: list[str], body: _MapFn | None, storage: dict, batch_rows: int = 8192):
        self.paths, self.columns, self.body, self.storage, self.batch_rows = paths, columns, body, storage, batch_rows

    def __call__(self, batches):
        fs.configure(self.storage)  # an executor's process: the plan's storage options, never logged
        for b in batches:
            for i in b.column("id").to_pylist():
                f = pq.ParquetFile(store.source(self.paths[i]))
                read = f.iter_batches(batch_size=self.batch_rows, columns=self.columns)
                yield from (self.body(read) if self.body is not None else read)


class _WriteParts:
    """mapInArrow body that commits its Spark partition's rows as one Parquet file under `prefix` through
    the storage layer and yields (path, rows). A retried or speculative attempt writes the same rows under
    the same name (one atomic object or rename), so whichever lands last is as good."""

    def __init__(self, prefix: str, schema: pa.Schema, storage: dict):
        self.prefix, self.schema, self.storage = prefix, schema, storage

    def __call__(self, batches):
        from pyspark import TaskContext

        fs.configure(self.storage)
        store.makedirs(self.prefix)
        path = fs.join(self.prefix, f"part-{TaskContext.get().partitionId():05d}.parquet")
        sink = ParquetSink(path, self.schema)
        try:
            for b in batches:
                sink.write(conform(b, self.schema))  # Spark marks some columns non-nullable
        except BaseException:
            sink.abort()
            raise
        if not sink.rows:
            sink.abort()
            return
        sink.commit()
        yield pa.RecordBatch.from_pydict({"path": [path], "rows": [sink.rows]}, schema=FILES_SCHEMA)


class SparkPrimitives(Primitives):
    """Primitives over DataFrames whose data at rest is Parquet under `scratch`; `local` is a folder of
    the driver where `to_local` lands results (default: scratch, which must then be local)."""

    def __init__(self, spark, scratch: str, local: str | None = None, storage: dict | None = None):
        self.spark, self.scratch, self._seq = spark, scratch, 0
        self.local, self.storage = local or scratch, dict(storage or {})
        # id(df) → (df, files, schema, documents?) for DataFrames that are plain Parquet files; holds df,
        # so its id is never reused meanwhile
        self._files: dict[int, tuple] = {}
        self._maps: dict[int, tuple] = {}  # id(df) → (df, input that is not a map, _MapFn): lazy map steps
        store.makedirs(scratch)

    def _of_files(self, paths: list[str], schema: pa.Schema, docs: bool = False, body: _MapFn | None = None):
        """A DataFrame of the rows of Parquet files (one task per file), `body` applied to them if given."""
        paths = list(paths)
        out_schema = body.schema if body is not None else _nullable(schema)
        if paths:
            files = self.spark.range(0, len(paths), 1, len(paths))
            df = files.mapInArrow(_FileMap(paths, schema.names, body, self.storage), spark_schema(out_schema))
        else:
            df = self.spark.createDataFrame([], spark_schema(out_schema))
        if body is None:
            self._files[id(df)] = (df, paths, _nullable(schema), docs)
        return df

    def _source(self, ds):
        src = self._files.get(id(ds))
        return src if src and src[0] is ds else None

    def _lazy(self, ds):
        lazy = self._maps.get(id(ds))
        return lazy if lazy and lazy[0] is ds else None

    def _on_driver(self, ds):
        """The lazy map behind ds when its input is a result's Parquet files (not the documents): rows the
        driver takes anyway (read, to_local) are mapped there, with no job."""
        lazy = self._lazy(ds)
        src = self._source(lazy[1]) if lazy else None
        return lazy if src and not src[3] else None

    def _path(self, name: str) -> str:
        self._seq += 1
        return fs.join(self.scratch, f"{self._seq:03d}-{name}")

    def _materialize(self, df, name: str):
        schema = _arrow_schema(df)
        rows = df.mapInArrow(_WriteParts(self._path(name), schema, self.storage), spark_schema(FILES_SCHEMA)).collect()
        return self._of_files(sorted(r["path"] for r in rows), schema)

    def dataset(self, paths, schema: pa.Schema | None = None):
        schema = schema or (pq.read_schema(store.source(paths[0])) if paths else None)
        return self._of_files(paths, schema, docs=True)

    def from_table(self, table: pa.Table, name: str):
        sink = ParquetSink(self._path(name) + ".parquet", table.schema)
        sink.write(table)
        sink.commit()
        return self._of_files([sink.final], table.schema)

    def _tables(self, src) -> Iterator[pa.Table]:
        _, paths, schema, _ = src
        return (pq.read_table(store.source(f), columns=schema.names) for f in paths)

    def read(self, ds) -> Iterator[pa.RecordBatch]:
        lazy = self._on_driver(ds)
        if lazy is not None:  # every row comes to the driver anyway: map it here
            yield from lazy[2](self.read(lazy[1]))
            return
        src = self._source(ds) or self._source(self._materialize(ds, "read"))
        for t in self._tables(src):
            yield from t.to_batches()

    def count(self, ds) -> int:
        src = self._source(ds)
        if src is None:
            return ds.count()
        return sum(pq.read_metadata(store.source(f)).num_rows for f in src[1])

    def select(self, ds, columns: list[str]):
        src = self._source(ds)
        if src is None:
            return ds.select(*columns)
        _, paths, schema, docs = src
        return self._of_files(paths, pa.schema([schema.field(c) for c in columns]), docs)  # read only those columns

    def map_batches(self, ds, fn: Callable, schema: pa.Schema, name: str):
        lazy = self._lazy(ds)
        base, steps = (lazy[1], lazy[2].steps) if lazy else (ds, [])  # a map over a map: one body
        body = _MapFn(steps + [(fn, schema)])
        src = self._source(base)
        if src is not None:  # over files: the task that reads a file maps its rows
            out = self._of_files(src[1], src[2], src[3], body)
        else:
            out = base.mapInArrow(body, spark_schema(schema))
        self._maps[id(out)] = (out, base, body)  # holds out, like _files
        return out

    def combine(self, ds, keys: list[str], aggs: list[tuple[str, str, str]], name: str):
        from pyspark.sql import functions as F

        check_aggs(aggs)
        return self._materialize(ds.groupBy(*keys).agg(*[getattr(F, op)(F.col(c)).alias(o) for c, op, o in aggs]), name)

    def annotate(self, ds, keys: list[str], aggs: list[tuple[str, str, str]], name: str):
        from pyspark.sql import Window
        from pyspark.sql import functions as F

        check_aggs(aggs)
        w = Window.partitionBy(*keys)
        return self._materialize(ds.select("*", *[getattr(F, op)(F.col(c)).over(w).alias(o) for c, op, o in aggs]), name)

    def join(self, left, right, on: list[str], name: str):
        join_schema(pa.schema([(c, pa.null()) for c in left.columns]), pa.schema([(c, pa.null()) for c in right.columns]), on, name)
        out = left.join(right, on=on, how="inner")
        return self._materialize(out.select(*left.columns, *[c for c in right.columns if c not in on]), name)

    def _countable(self, ds, name: str):
        return ds if self._source(ds) is not None else self._materialize(ds, f"{name}-edges")  # counted, then read: computed once

    def to_local(self, ds, schema: pa.Schema, name: str = "result") -> list[str]:
        """Land a result as local Parquet files of the driver with exactly `schema` (file by file, bounded memory)."""
        path = os.path.join(self.local, name)
        os.makedirs(path, exist_ok=True)
        lazy = self._on_driver(ds)
        if lazy is not None:  # map each result file here, as read() would
            _, src, body = lazy
            tables = (pa.Table.from_batches(list(body(t.to_batches())), body.schema) for t in self._tables(self._source(src)))
        else:
            tables = self._tables(self._source(ds) or self._source(self._materialize(ds, name)))
        out = []
        for i, t in enumerate(tables):
            dst = os.path.join(path, f"part-{i:05d}.parquet")
            pq.write_table(t.select(schema.names).cast(schema), dst)
            out.append(dst)
        return out
