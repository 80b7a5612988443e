"""Spark engine: the driver's plan (corpusforge/driver.py) with Spark doing the work.

* Per-row phases: one Spark task per input part, launched with `mapInArrow` over a DataFrame of part
  numbers. The task streams the part's RecordBatches through the stages and commits its kept, rejects
  and quarantine files plus a marker, exactly as a local worker does, so outputs are byte-identical to
  the local engine and a retried or speculative task is idempotent (temp file + rename). Stage
  `setup()` runs once per Python worker (cached per plan; `spark.python.worker.reuse` is Spark's default).
* Global stages (dedup): `SparkPrimitives` implement the engine primitives with DataFrames —
  `mapInArrow` with the declared schema, `groupBy().agg()`, joins, connected components. Every shuffle
  is materialized as Parquet under the run's work folder (bounded memory, no lineage recomputation);
  map steps are fused into the job that consumes them; those over the staged documents run one task
  per file that reads the file in Python.
* Counts come from the committed part markers and files, never from accumulators.

The output folder must be visible to the driver and every executor at the same path (local disk for
`local[N]` or one host, a shared mount such as NFS/Lustre on a cluster).
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import sys
from collections.abc import Callable, Iterator

import pyarrow as pa

from corpusforge import faults
from corpusforge.config import DEFAULT_WORKERS
from corpusforge import driver, parttask
from corpusforge.engines.spark_classes import _class_archive, _finish_archive, _java_binary
from corpusforge.errors import CorpusforgeError
from corpusforge.primitives import Primitives, check_aggs, conform, join_schema
from corpusforge.runner import Plan, resume_key, stable_hash
from corpusforge.schema import DECISION_SCHEMA

MARKER_SCHEMA = pa.schema([pa.field("part", pa.int32()), pa.field("marker", pa.string())])


def _require():
    try:
        import pyspark  # noqa: F401
    except ImportError:
        raise CorpusforgeError("missing_dependency", "the Spark engine needs pyspark: pip install 'corpusforge[spark]'") from None
    if _java_binary() is None:
        where = f"JAVA_HOME={os.environ['JAVA_HOME']} has no bin/java" if os.environ.get("JAVA_HOME") else "no java on PATH"
        raise CorpusforgeError("missing_dependency", f"the Spark engine needs Java 17 or 21 ({where}): install a JRE and "
                               "set JAVA_HOME or put java on PATH (the local engine needs no Java)")


def session(options: dict | None = None, workers: int = 2, app: str = "corpusforge"):
    """The active SparkSession (spark-submit's), or a new one from `engine.options` (Spark conf keys;
    `master` defaults to local[workers]; `jvm_class_cache: false` turns the class archive off)."""
    _require()
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    opts = {k: str(v) for k, v in (options or {}).items()}
    class_cache = opts.pop("jvm_class_cache", "true").lower() not in ("false", "0", "no")
    b = SparkSession.builder.appName(app)
    master = opts.get("spark.master") or os.environ.get("MASTER")  # None: spark-submit's --master, or ours
    if master is None and "--master" not in os.environ.get("PYSPARK_SUBMIT_ARGS", ""):
        master = opts.get("master", f"local[{max(1, workers)}]")
        b = b.master(master)
    opts.pop("master", None)
    # Python workers must import the same corpusforge: the driver's interpreter unless told otherwise
    # (SparkContext reads PYSPARK_PYTHON when it starts)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    opts.setdefault("spark.sql.shuffle.partitions", str(max(2, 2 * workers)))
    opts.setdefault("spark.ui.showConsoleProgress", "true")
    archive = None
    if SparkContext._gateway is None and not os.environ.get("PYSPARK_GATEWAY_PORT"):  # this process starts the JVM
        if (master or "").startswith("local"):
            # a local session serves nobody else: everything (RPC, block manager, UI if enabled) binds loopback,
            # and the UI is off unless asked for (spark.ui.enabled=true): it adds start-up time
            os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
            opts.setdefault("spark.ui.enabled", "false")
            # the JVM here plans jobs and moves small tables; Python does the heavy work. C1-only JIT spends far
            # less CPU compiling, which the Python workers need: the bench pipeline at 200 MB on 2 cores took
            # 48.3 s instead of 53.3 (set spark.driver.extraJavaOptions to choose otherwise)
            opts.setdefault("spark.driver.extraJavaOptions", "-XX:TieredStopAtLevel=1")
            # the JVM's share of a local run is many small queries, each planned once: generating and compiling
            # Java for each cost more than interpreting its few rows (bench_engines 100 MB: 1.44-1.48x -> 1.40x)
            opts.setdefault("spark.sql.codegen.wholeStage", "false")
            opts.setdefault("spark.sql.codegen.factoryMode", "NO_CODEGEN")
        try:
            flag, archive = _class_archive() if class_cache else ("", None)
        except OSError:  # e.g. a read-only cache folder: start without the archive
            flag, archive = "", None
        if flag:
            java_opts = opts.get("spark.driver.extraJavaOptions", "")
            opts["spark.driver.extraJavaOptions"] = f"{java_opts} {flag}".strip()
    for k, v in opts.items():
        b = b.config(k, v)
    spark = b.getOrCreate()
    if archive is not None:
        atexit.register(_finish_archive, spark, archive)
    return spark


def _spark_schema(schema: pa.Schema):
    from pyspark.sql.pandas.types import from_arrow_schema

    # Spark treats non-nullable Arrow fields strictly; nullability is not part of our contract
    return from_arrow_schema(pa.schema([f.with_nullable(True) for f in schema]))


class _MapFn:
    """Picklable mapInArrow body: one or more map steps (fn, declared schema) applied in turn to every batch,
    each output cast to its step's schema. Consecutive maps run as one body: one Python worker per task."""

    def __init__(self, steps: list[tuple[Callable, pa.Schema]]):
        self.steps = [(fn, pa.schema([f.with_nullable(True) for f in schema])) for fn, schema in steps]
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


class SparkPrimitives(Primitives):
    """Engine primitives over DataFrames. Shuffles (combine, annotate, join) are written to Parquet under
    `workdir` and read back, so no lineage is recomputed; map steps are lazy `mapInArrow`s that Spark
    fuses into the job that consumes them. A map over the documents runs one task per file that reads
    the file in Python. Results that are Parquet files are counted and read from their footers and
    files on the driver, not by a job."""

    def __init__(self, spark, workdir: str):
        self.spark, self.workdir, self._seq = spark, workdir, 0
        # id(df) → (df, files, columns, documents?) for DataFrames that are plain Parquet files; holds df,
        # so its id is never reused meanwhile
        self._files: dict[int, tuple] = {}
        self._maps: dict[int, tuple] = {}  # id(df) → (df, input that is not a map, _MapFn): lazy map steps
        os.makedirs(workdir, exist_ok=True)

    def _of_files(self, df, paths, columns, docs: bool = False):
        self._files[id(df)] = (df, list(paths), list(columns), docs)
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
        return os.path.join(self.workdir, f"{self._seq:03d}-{name}")

    def _materialize(self, df, name: str):
        path = self._path(name)
        df.write.mode("overwrite").parquet(path)
        out = self.spark.read.schema(df.schema).parquet(path)  # known schema: no footer-reading job
        return self._of_files(out, sorted(os.path.join(path, f) for f in os.listdir(path) if f.endswith(".parquet")), out.columns)

    def dataset(self, paths, schema: pa.Schema | None = None):
        import pyarrow.parquet as pq

        schema = schema or (pq.read_schema(paths[0]) if paths else None)
        df = self.spark.read.schema(_spark_schema(schema)).parquet(*paths)
        return self._of_files(df, paths, schema.names, docs=True)

    def from_table(self, table: pa.Table, name: str):
        import pyarrow.parquet as pq

        path = self._path(name) + ".parquet"
        pq.write_table(table, path)
        return self._of_files(self.spark.read.schema(_spark_schema(table.schema)).parquet(path), [path], table.schema.names)

    def read(self, ds) -> Iterator[pa.RecordBatch]:
        lazy = self._on_driver(ds)
        if lazy is not None:  # every row comes to the driver anyway: map it here
            yield from lazy[2](self.read(lazy[1]))
            return
        src = self._source(ds)
        if src is None:
            yield from ds.toArrow().to_batches()
            return
        import pyarrow.parquet as pq

        for f in src[1]:
            yield from pq.read_table(f, columns=src[2]).to_batches()

    def count(self, ds) -> int:
        src = self._source(ds)
        if src is None:
            return ds.count()
        import pyarrow.parquet as pq

        return sum(pq.read_metadata(f).num_rows for f in src[1])

    def select(self, ds, columns: list[str]):
        src = self._source(ds)
        out = ds.select(*columns)
        return self._of_files(out, src[1], columns, src[3]) if src else out

    def map_batches(self, ds, fn: Callable, schema: pa.Schema, name: str):
        lazy = self._lazy(ds)
        base, steps = (lazy[1], lazy[2].steps) if lazy else (ds, [])  # a map over a map: one body
        body = _MapFn(steps + [(fn, schema)])
        src = self._source(base)
        if src and src[3]:  # over the documents: one task per file that reads it in Python
            _, paths, columns, _ = src
            files = self.spark.range(0, len(paths), 1, max(1, len(paths)))
            out = files.mapInArrow(_FileMap(paths, columns, body), _spark_schema(schema))
        else:
            out = base.mapInArrow(body, _spark_schema(schema))
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

    def to_local(self, ds, schema: pa.Schema) -> list[str]:
        """Land a result as local Parquet files with exactly `schema` (file by file, bounded memory)."""
        import pyarrow.parquet as pq

        path = os.path.join(self.workdir, "result")
        os.makedirs(path, exist_ok=True)
        lazy = self._on_driver(ds)
        if lazy is not None:  # map each result file here, as read() would
            _, src, body = lazy
            _, paths, columns, _ = self._source(src)
            tables = (pa.Table.from_batches(list(body(pq.read_table(f, columns=columns).to_batches())), body.schema)
                      for f in paths)
        else:
            ds.write.mode("overwrite").parquet(path + "-spark")
            tables = (pq.read_table(os.path.join(path + "-spark", f))
                      for f in sorted(f for f in os.listdir(path + "-spark") if f.endswith(".parquet")))
        out = []
        for i, t in enumerate(tables):
            dst = os.path.join(path, f"part-{i:05d}.parquet")
            pq.write_table(t.select(schema.names).cast(schema), dst)
            out.append(dst)
        return out


class _FileMap:
    """mapInArrow body over file numbers: the Python worker reads its Parquet file itself, so documents
    never pass through JVM rows and Arrow conversion on the way in (their text is most of the bytes)."""

    def __init__(self, paths: list[str], columns: list[str], body: _MapFn, batch_rows: int = 8192):
        self.paths, self.columns, self.batch_rows = paths, columns, batch_rows
        self.map = body

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
                rec = parttask.run_task(self.plan, self.plan_key, self.todo[i])
                yield pa.RecordBatch.from_pydict({"part": [rec["part"]], "marker": [json.dumps(rec, sort_keys=True)]},
                                                 schema=MARKER_SCHEMA)


class SparkExecutor(driver.Executor):
    """Part tasks as one Spark partition each; global stages on SparkPrimitives."""

    name = "spark"

    def __init__(self, spark, plan_key: str):
        self.spark, self.plan_key = spark, plan_key

    def execute(self, plan: Plan, tasks: list, workers: int, bar, on_progress, timings: dict) -> None:
        if not tasks:
            return
        # one Spark partition per part (range partitions are contiguous): a part is the unit of retry and commit
        df = self.spark.range(0, len(tasks), 1, len(tasks))
        rows = df.mapInArrow(_PartTasks(plan, self.plan_key, tasks), _spark_schema(MARKER_SCHEMA)).collect()
        if len(rows) != len(tasks):
            raise CorpusforgeError("incomplete_run", f"spark returned {len(rows)} of {len(tasks)} part markers")
        for r in rows:
            driver.add_seconds(timings, json.loads(r["marker"])["seconds"])
        if bar is not None:
            bar.update(len(rows))

    def primitives(self, workdir: str, workers: int, batch_rows: int):
        prims = SparkPrimitives(self.spark, workdir)
        return prims, functools.partial(prims.to_local, schema=DECISION_SCHEMA)


def run(plan: Plan, workers: int = DEFAULT_WORKERS, resume: bool = False, overwrite: bool = False, progress: bool | None = None,
        spark=None) -> dict:
    spark = spark or session(plan.config.engine.options, workers, f"corpusforge {plan.config.run.name}")
    return driver.run(plan, SparkExecutor(spark, stable_hash(resume_key(plan))), workers, resume=resume,
                      overwrite=overwrite, progress=progress)
