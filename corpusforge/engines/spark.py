"""Spark engine: the local driver's plan (corpusforge/engines/local.py) with Spark doing the work.

* Per-row phases: one Spark task per input part, launched with `mapInArrow` over a DataFrame of part
  numbers. The task streams the part's RecordBatches through the stages and commits its kept, rejects
  and quarantine files plus a marker, exactly as a local worker does, so outputs are byte-identical to
  the local engine and a retried or speculative task is idempotent (temp file + rename). Stage
  `setup()` runs once per Python worker (cached per plan; `spark.python.worker.reuse` is Spark's default).
* Global stages (dedup): `SparkPrimitives` implement the engine primitives with DataFrames —
  `mapInArrow` with the declared schema, `groupBy().agg()`, joins, connected components. Every step is
  materialized as Parquet under the run's work folder (bounded memory, no lineage recomputation). Map
  steps over the staged documents run one task per file that reads the file in Python.
* Counts come from the committed part markers and files, never from accumulators.

The output folder must be visible to the driver and every executor at the same path (local disk for
`local[N]` or one host, a shared mount such as NFS/Lustre on a cluster).
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import sys
from collections.abc import Callable, Iterator

import pyarrow as pa

from corpusforge import faults
from corpusforge.engines import local
from corpusforge.engines.primitives import AGG_OPS, COMPONENT_SCHEMA, DECISION_SCHEMA, Primitives
from corpusforge.errors import CorpusforgeError
from corpusforge.runner import Plan, resume_key, stable_hash

MARKER_SCHEMA = pa.schema([pa.field("part", pa.int32()), pa.field("marker", pa.string())])


def _require():
    try:
        import pyspark  # noqa: F401
    except ImportError:
        raise CorpusforgeError("missing_dependency", "the Spark engine needs pyspark: pip install 'corpusforge[spark]'") from None
    java_home = os.environ.get("JAVA_HOME")
    if not (java_home and os.path.exists(os.path.join(java_home, "bin", "java"))) and shutil.which("java") is None:
        raise CorpusforgeError("missing_dependency", "the Spark engine needs Java 17 or 21: install a JRE and set JAVA_HOME "
                               "or put java on PATH (the local engine needs no Java)")


def session(options: dict | None = None, workers: int = 2, app: str = "corpusforge"):
    """The active SparkSession (spark-submit's), or a new one from `engine.options` (Spark conf keys;
    `master` defaults to local[workers])."""
    _require()
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    opts = dict(options or {})
    b = SparkSession.builder.appName(app)
    if "spark.master" not in opts and not os.environ.get("MASTER") and "--master" not in os.environ.get("PYSPARK_SUBMIT_ARGS", ""):
        b = b.master(opts.pop("master", f"local[{max(1, workers)}]"))
    opts.pop("master", None)
    # Python workers must import the same corpusforge: the driver's interpreter unless told otherwise
    # (SparkContext reads PYSPARK_PYTHON when it starts)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    opts.setdefault("spark.sql.shuffle.partitions", str(max(2, 2 * workers)))
    opts.setdefault("spark.ui.showConsoleProgress", "true")
    for k, v in opts.items():
        b = b.config(k, str(v))
    return b.getOrCreate()


def _spark_schema(schema: pa.Schema):
    from pyspark.sql.pandas.types import from_arrow_schema

    # Spark treats non-nullable Arrow fields strictly; nullability is not part of our contract
    return from_arrow_schema(pa.schema([f.with_nullable(True) for f in schema]))


def _conform(out, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    t = out if isinstance(out, pa.Table) else pa.Table.from_batches([out])
    t = t.select(schema.names).cast(schema)
    yield from t.to_batches()


class _MapFn:
    """Picklable mapInArrow body: applies fn to every batch and casts to the declared schema."""

    def __init__(self, fn: Callable, schema: pa.Schema):
        self.fn, self.schema = fn, pa.schema([f.with_nullable(True) for f in schema])

    def __call__(self, batches):
        for b in batches:
            yield from _conform(self.fn(b), self.schema)


class SparkPrimitives(Primitives):
    """Engine primitives over DataFrames; each result is written to Parquet under `workdir` and read back."""

    def __init__(self, spark, workdir: str):
        self.spark, self.workdir, self._seq = spark, workdir, 0
        self._files: dict[int, tuple] = {}  # id(df) → (df, paths, columns) for DataFrames that are plain Parquet files
        os.makedirs(workdir, exist_ok=True)

    def _of_files(self, df, paths, columns):
        self._files[id(df)] = (df, list(paths), list(columns))  # holds df: its id is never reused meanwhile
        return df

    def _materialize(self, df, name: str):
        self._seq += 1
        path = os.path.join(self.workdir, f"{self._seq:03d}-{name}")
        df.write.mode("overwrite").parquet(path)
        return self.spark.read.parquet(path)

    def dataset(self, paths, schema: pa.Schema | None = None):
        df = self.spark.read.parquet(*paths)
        return self._of_files(df, paths, df.columns)

    def from_table(self, table: pa.Table, name: str):
        self._seq += 1
        path = os.path.join(self.workdir, f"{self._seq:03d}-{name}.parquet")
        import pyarrow.parquet as pq

        pq.write_table(table, path)
        return self.spark.read.parquet(path)

    def read(self, ds) -> Iterator[pa.RecordBatch]:
        yield from ds.toArrow().to_batches()

    def count(self, ds) -> int:
        return ds.count()

    def select(self, ds, columns: list[str]):
        src = self._files.get(id(ds))
        out = ds.select(*columns)
        return self._of_files(out, src[1], columns) if src and src[0] is ds else out

    def map_batches(self, ds, fn: Callable, schema: pa.Schema, name: str):
        src = self._files.get(id(ds))
        if src and src[0] is ds:  # one task per file, read in Python
            _, paths, columns = src
            files = self.spark.range(0, len(paths), 1, len(paths))
            return self._materialize(files.mapInArrow(_FileMap(paths, columns, fn, schema), _spark_schema(schema)), name)
        return self._materialize(ds.mapInArrow(_MapFn(fn, schema), _spark_schema(schema)), name)

    def combine(self, ds, keys: list[str], aggs: list[tuple[str, str, str]], name: str):
        from pyspark.sql import functions as F

        exprs = []
        for col, op, out in aggs:
            if op not in AGG_OPS:
                raise CorpusforgeError("bad_aggregate", f"combine op {op!r} not in {AGG_OPS}")
            exprs.append(getattr(F, op)(F.col(col)).alias(out))
        return self._materialize(ds.groupBy(*keys).agg(*exprs), name)

    def join(self, left, right, on: list[str], name: str):
        clash = (set(left.columns) & set(right.columns)) - set(on)
        if clash:
            raise CorpusforgeError("join_clash", f"join {name}: both sides have {sorted(clash)}; rename first")
        out = left.join(right, on=on, how="inner")
        return self._materialize(out.select(*left.columns, *[c for c in right.columns if c not in on]), name)

    def connected_components(self, edges, name: str, max_nodes: int | None = None):
        from corpusforge.algorithms.components import components_by_rounds, components_min_id

        if self.count(edges) > 500_000:  # beyond one in-memory union-find: label propagation rounds on Spark
            return components_by_rounds(self, edges, name)
        t = edges.toArrow()
        ids, comp = components_min_id(t.column("src"), t.column("dst"), max_nodes=max_nodes)
        return self.from_table(pa.table({"id": ids, "component": comp}, schema=COMPONENT_SCHEMA), name)

    def to_local(self, ds, schema: pa.Schema) -> list[str]:
        """Land a result as local Parquet files with exactly `schema` (file by file, bounded memory)."""
        import pyarrow.parquet as pq

        path = os.path.join(self.workdir, "result")
        ds.write.mode("overwrite").parquet(path + "-spark")
        os.makedirs(path, exist_ok=True)
        out = []
        for i, f in enumerate(sorted(f for f in os.listdir(path + "-spark") if f.endswith(".parquet"))):
            dst = os.path.join(path, f"part-{i:05d}.parquet")
            pq.write_table(pq.read_table(os.path.join(path + "-spark", f)).select(schema.names).cast(schema), dst)
            out.append(dst)
        return out


class _FileMap:
    """mapInArrow body over file numbers: the Python worker reads its Parquet file itself, so documents
    never pass through JVM rows and Arrow conversion on the way in (their text is most of the bytes)."""

    def __init__(self, paths: list[str], columns: list[str], fn: Callable, schema: pa.Schema, batch_rows: int = 8192):
        self.paths, self.columns, self.batch_rows = paths, columns, batch_rows
        self.map = _MapFn(fn, schema)

    def __call__(self, batches):
        import pyarrow.parquet as pq

        for b in batches:
            for i in b.column("id").to_pylist():
                yield from self.map(pq.ParquetFile(self.paths[i]).iter_batches(batch_size=self.batch_rows, columns=self.columns))


class _PartTasks:
    """mapInArrow body of a per-row phase: runs the (phase, part) tasks its rows number, yields their markers."""

    def __init__(self, plan: Plan, plan_key: str, todo: list):
        self.plan, self.plan_key, self.todo = plan, plan_key, todo

    def __call__(self, batches):
        from pyspark import TaskContext

        faults.set_attempt(TaskContext.get().attemptNumber())
        for b in batches:
            for i in b.column("id").to_pylist():
                rec = local.run_task(self.plan, self.plan_key, self.todo[i])
                yield pa.RecordBatch.from_pydict({"part": [rec["part"]], "marker": [json.dumps(rec, sort_keys=True)]},
                                                 schema=MARKER_SCHEMA)


def run(plan: Plan, workers: int = 2, resume: bool = False, overwrite: bool = False, progress: bool | None = None,
        spark=None) -> dict:
    spark = spark or session(plan.config.engine.options, workers, f"corpusforge {plan.config.run.name}")
    plan_key = stable_hash(resume_key(plan))

    def execute(plan: Plan, todo: list, workers: int, bar, on_progress) -> None:
        if not todo:
            return
        # one Spark partition per part (range partitions are contiguous): a part is the unit of retry and commit
        df = spark.range(0, len(todo), 1, len(todo))
        rows = df.mapInArrow(_PartTasks(plan, plan_key, todo), _spark_schema(MARKER_SCHEMA)).collect()
        if len(rows) != len(todo):
            raise CorpusforgeError("incomplete_run", f"spark returned {len(rows)} of {len(todo)} part markers")
        if bar is not None:
            bar.update(len(rows))

    def backend(workdir: str):
        prims = SparkPrimitives(spark, workdir)
        return prims, functools.partial(prims.to_local, schema=DECISION_SCHEMA)

    return local.run(plan, workers=workers, resume=resume, overwrite=overwrite, progress=progress,
                     engine="spark", execute=execute, backend=backend)
