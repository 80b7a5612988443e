"""Spark engine: the driver's plan (corpusforge/driver.py) with Spark doing the work.

* Per-row phases: one Spark task per input part, launched with `mapInArrow` over a DataFrame of part
  numbers. The task streams the part's RecordBatches through the stages and commits its kept, rejects
  and quarantine files plus a marker, exactly as a local worker does, so outputs are byte-identical to
  the local engine and a retried or speculative task is idempotent (temp file + rename). Stage
  `setup()` runs once per Python worker (cached per plan; `spark.python.worker.reuse` is Spark's default).
* Global stages (dedup): `SparkPrimitives` (engines/spark_primitives.py) implement the engine
  primitives with DataFrames whose data at rest is Parquet under the run's scratch location, read and
  written by tasks in Python through the storage layer.
* Counts come from the committed part markers and files, never from accumulators.

Executors share nothing with the driver but what the storage layer reaches: the output and `run.scratch`
may be object-store URIs (no Hadoop connector jars), or local paths on `local[N]` / a shared mount.
"""

from __future__ import annotations

import atexit
import json
import os
import sys

import pyarrow as pa

from corpusforge import faults
from corpusforge.config import DEFAULT_WORKERS
from corpusforge import driver, parttask
from corpusforge.engines.spark_classes import _class_archive, _finish_archive, _java_binary
from corpusforge.errors import CorpusforgeError
from corpusforge.engines.spark_primitives import SparkPrimitives, spark_schema
from corpusforge.runner import Plan, resume_key, stable_hash

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
    distributed = True

    def __init__(self, spark, plan_key: str):
        self.spark, self.plan_key = spark, plan_key

    def execute(self, plan: Plan, tasks: list, workers: int, bar, on_progress, timings: dict) -> None:
        if not tasks:
            return
        # one Spark partition per part (range partitions are contiguous): a part is the unit of retry and commit
        df = self.spark.range(0, len(tasks), 1, len(tasks))
        rows = df.mapInArrow(_PartTasks(plan, self.plan_key, tasks), spark_schema(MARKER_SCHEMA)).collect()
        if len(rows) != len(tasks):
            raise CorpusforgeError("incomplete_run", f"spark returned {len(rows)} of {len(tasks)} part markers")
        for r in rows:
            driver.add_seconds(timings, json.loads(r["marker"])["seconds"])
        if bar is not None:
            bar.update(len(rows))

    def primitives(self, plan: Plan, work: str, scratch: str, workers: int):
        prims = SparkPrimitives(self.spark, scratch, local=work, storage=plan.config.storage.as_options())
        return prims, prims.to_local


def run(plan: Plan, workers: int = DEFAULT_WORKERS, resume: bool = False, overwrite: bool = False, progress: bool | None = None,
        spark=None) -> dict:
    spark = spark or session(plan.config.engine.options, workers, f"corpusforge {plan.config.run.name}")
    return driver.run(plan, SparkExecutor(spark, stable_hash(resume_key(plan))), workers, resume=resume,
                      overwrite=overwrite, progress=progress)
