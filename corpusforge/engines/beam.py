"""Apache Beam engine: the driver's plan (corpusforge/driver.py) with Beam doing the work.

* Per-row phases: a pipeline `Create(task numbers) | Reshuffle | ParDo(part task)`; the DoFn runs stage
  `setup()` in `DoFn.setup()` (once per worker), streams its input part through the stages and commits the
  part's kept, rejects and quarantine files plus a marker exactly as a local worker does. A retried bundle
  rewrites the same bytes (temp file + rename), so outputs are byte-identical to the local engine.
* Global stages (dedup): `BeamPrimitives` run each primitive as a Beam pipeline over Parquet files —
  `ReadAllFromParquetBatched` → `ParDo`/`Map` over RecordBatches → `WriteToParquetBatched`, `CombinePerKey`
  for combine, `CoGroupByKey` for joins — so every step is materialized and memory stays bounded.
* Counts come from the committed part markers and files, never from Beam metrics.

Runner options come from `engine.options` (or `pipelines/beam_run.py` argv): the default is the
DirectRunner in multi-processing mode with `workers` processes. With another runner (Dataflow, Flink) or
`run.scratch` set, the engine is distributed: global stages read the staged parts where they are and put
their intermediates under the scratch location (a gs:// or s3:// prefix the workers reach through Beam's
filesystems), never on the driver's disk (docs/storage.md).
"""

from __future__ import annotations

import glob
import json
import logging
from collections.abc import Callable

import pyarrow as pa

from corpusforge.config import DEFAULT_WORKERS
from corpusforge import driver, parttask
from corpusforge.engines.local_primitives import LocalPrimitives
from corpusforge.primitives import aggregate_schema, check_aggs, conform, join_schema, two_phase
from corpusforge.errors import CorpusforgeError
from corpusforge.io import fs, store
from corpusforge.runner import Plan, resume_key, stable_hash


def _beam():
    try:
        logging.getLogger("apache_beam").setLevel(logging.ERROR)
        import apache_beam as beam
    except ImportError:
        raise CorpusforgeError("missing_dependency", "the Beam engine needs apache-beam: pip install 'corpusforge[beam]'") from None
    return beam


def pipeline_options(options: dict | list | None, workers: int):
    """(part options, primitive options) from a dict (engine.options) or argv list. Default: the DirectRunner,
    multi-processing with `workers` processes for the part tasks, and in-memory for the many small
    global-stage steps (a multi-process DirectRunner pays seconds of worker start-up per pipeline)."""
    from apache_beam.options.pipeline_options import PipelineOptions

    argv = list(options) if isinstance(options, list) else \
        [f"--{k}" if v in ("", True) else f"--{k}={v}" for k, v in (options or {}).items()]
    if any(a.startswith("--runner") for a in argv):
        return PipelineOptions(argv), PipelineOptions(argv)
    direct = argv + ["--runner=DirectRunner"]
    return (PipelineOptions(direct + ["--direct_running_mode=multi_processing", f"--direct_num_workers={max(1, workers)}"]),
            PipelineOptions(direct + ["--direct_running_mode=in_memory"]))


# ----------------------------------------------------------------------------------- per-row phases


def _part_fn_class():
    beam = _beam()

    class RunParts(beam.DoFn):
        """One (phase, part) task per element; emits the committed marker."""

        def __init__(self, plan: Plan, plan_key: str, todo: list):
            self.plan, self.plan_key, self.todo = plan, plan_key, todo

        def setup(self):
            parttask.setup_worker(self.plan, self.plan_key)

        def process(self, i):
            rec = parttask.run_task(self.plan, self.plan_key, self.todo[i])
            yield json.dumps({"part": rec["part"], "counts": rec["counts"]}, sort_keys=True)

    return RunParts


# ------------------------------------------------------------------------------------ global stages


class _ApplyFn:
    def __init__(self, fn: Callable, schema: pa.Schema):
        self.fn, self.schema = fn, schema

    def __call__(self, table: pa.Table) -> pa.Table:
        out = pa.concat_tables([conform(self.fn(b), self.schema) for b in table.to_batches()] or [self.schema.empty_table()])
        return out


class _KeyRows:
    """Table → (key tuple, row dict) pairs, for CoGroupByKey."""

    def __init__(self, on: list[str]):
        self.on = on

    def __call__(self, table: pa.Table):
        for r in table.to_pylist():
            yield tuple(r[k] for k in self.on), r


class _PreCombine:
    """Map-side combiner per batch (like the local engine's): (key tuple, tuple of partial aggregates)."""

    def __init__(self, keys: list[str], aggs: list[tuple[str, str, str]]):
        self.keys = keys
        self.partial, self.names, _ = two_phase(aggs)

    def __call__(self, table: pa.Table):
        g = table.group_by(self.keys, use_threads=False).aggregate(self.partial)
        cols = [g.column(k).to_pylist() for k in self.keys]
        vals = [g.column(n).to_pylist() for n in self.names]
        for i in range(g.num_rows):
            yield tuple(c[i] for c in cols), tuple(v[i] for v in vals)


class _Joined:
    """CoGroupByKey result → the joined rows (left columns + right non-key columns)."""

    def __init__(self, on: list[str]):
        self.on = on

    def __call__(self, item):
        _, groups = item
        for lr in groups["left"]:
            for rr in groups["right"]:
                yield {**lr, **{k: v for k, v in rr.items() if k not in self.on}}


class _Annotated:
    """GroupByKey result → each member row with its group's aggregates."""

    def __init__(self, aggs: list[tuple[str, str, str]]):
        self.aggs = aggs

    def __call__(self, item):
        rows = list(item[1])
        extra = {}
        for col, op, out in self.aggs:
            vals = [r[col] for r in rows if r[col] is not None]
            extra[out] = len(vals) if op == "count" else ({"min": min, "max": max, "sum": sum}[op](vals) if vals else None)
        for r in rows:
            yield {**r, **extra}


def _rows_to_table(schema: pa.Schema):
    return lambda rows: pa.Table.from_pylist(list(rows), schema=schema)


class BeamPrimitives(LocalPrimitives):
    """Each primitive is one Beam pipeline from Parquet files to Parquet files; IO helpers (read, count,
    from_table) are the local engine's, since datasets are the same kind of handle: Parquet file lists."""

    def __init__(self, workdir: str, options):
        super().__init__(workdir)
        self.options = options

    def _run(self, build: Callable, name: str, schema: pa.Schema):
        beam = _beam()
        from apache_beam.io import parquetio

        d = self._dir(name)
        prefix = fs.join(d, "part")
        with beam.Pipeline(options=self.options) as p:
            tables = build(p)
            tables | "write" >> parquetio.WriteToParquetBatched(prefix, schema, file_name_suffix=".parquet")
        written = fs.glob(prefix + "*.parquet") if fs.is_remote(prefix) else glob.glob(prefix + "*.parquet")
        return self.dataset(sorted(written), schema)

    def _source(self, p, ds, label: str):
        beam = _beam()
        from apache_beam.io import parquetio

        if not ds.paths:
            return p | f"{label}-none" >> beam.Create([])
        return (p | f"{label}-files" >> beam.Create(list(ds.paths))
                | f"{label}-read" >> parquetio.ReadAllFromParquetBatched(columns=ds.schema.names, label=f"{label}-readall"))

    def map_batches(self, ds, fn: Callable, schema: pa.Schema, name: str):
        beam = _beam()
        return self._run(lambda p: self._source(p, ds, "in") | "map" >> beam.Map(_ApplyFn(fn, schema)), name, schema)

    def combine(self, ds, keys: list[str], aggs: list[tuple[str, str, str]], name: str):
        beam = _beam()
        check_aggs(aggs)
        final = {"min": min, "max": max, "sum": sum, "count": sum}  # partial counts add up
        schema = aggregate_schema(ds.schema, keys, aggs)
        names = schema.names

        def build(p):
            return (self._source(p, ds, "in")
                    | "precombine" >> beam.FlatMap(_PreCombine(keys, aggs))
                    | "combine" >> beam.CombinePerKey(beam.combiners.TupleCombineFn(*[final[op] for _, op, _ in aggs]))
                    | "rows" >> beam.Map(lambda kv: dict(zip(names, (*kv[0], *kv[1]))))
                    | "batch" >> beam.BatchElements(min_batch_size=1024, max_batch_size=65536)
                    | "table" >> beam.Map(_rows_to_table(schema)))

        return self._run(build, name, schema)

    def annotate(self, ds, keys: list[str], aggs: list[tuple[str, str, str]], name: str):
        beam = _beam()
        check_aggs(aggs)
        agg_schema = aggregate_schema(ds.schema, keys, aggs)
        schema = pa.schema(list(ds.schema) + [f for f in agg_schema if f.name not in keys])

        def build(p):
            return (self._source(p, ds, "in") | "key" >> beam.FlatMap(_KeyRows(keys)) | "group" >> beam.GroupByKey()
                    | "annotated" >> beam.FlatMap(_Annotated(aggs))
                    | "batch" >> beam.BatchElements(min_batch_size=1024, max_batch_size=65536)
                    | "table" >> beam.Map(_rows_to_table(schema)))

        return self._run(build, name, schema)

    def join(self, left, right, on: list[str], name: str):
        beam = _beam()
        schema = join_schema(left.schema, right.schema, on, name)

        def build(p):
            lk = self._source(p, left, "left") | "key-left" >> beam.FlatMap(_KeyRows(on))
            rk = self._source(p, right, "right") | "key-right" >> beam.FlatMap(_KeyRows(on))
            return ({"left": lk, "right": rk} | "cogroup" >> beam.CoGroupByKey()
                    | "joined" >> beam.FlatMap(_Joined(on))
                    | "batch" >> beam.BatchElements(min_batch_size=1024, max_batch_size=65536)
                    | "table" >> beam.Map(_rows_to_table(schema)))

        return self._run(build, name, schema)


# ------------------------------------------------------------------------------------------- driver


class BeamExecutor(driver.Executor):
    """Part tasks as one Beam pipeline per phase; global stages as Beam pipelines (BeamPrimitives)."""

    name = "beam"

    def __init__(self, opts, step_opts, plan_key: str, distributed: bool = False):
        self.opts, self.step_opts, self.plan_key, self.distributed = opts, step_opts, plan_key, distributed

    def execute(self, plan: Plan, tasks: list, workers: int, bar, on_progress, timings: dict) -> None:
        if not tasks:
            return
        beam = _beam()
        with beam.Pipeline(options=self.opts) as p:
            (p | "tasks" >> beam.Create(list(range(len(tasks))))
             | "spread" >> beam.Reshuffle()
             | "parts" >> beam.ParDo(_part_fn_class()(plan, self.plan_key, tasks)))
        missing = [j.part.index for k, j in tasks if not store.exists(parttask.marker_path(plan, k, j))]
        if missing:
            raise CorpusforgeError("incomplete_run", f"beam finished without committing parts {missing[:5]}")
        if bar is not None:
            bar.update(len(tasks))

    def primitives(self, plan: Plan, work: str, scratch: str, workers: int):
        return BeamPrimitives(scratch, _with_s3(self.step_opts) if self.distributed else self.step_opts), None


def _with_s3(opts):
    """Beam's S3 filesystem (boto3) gets the endpoint and keys of the storage options, so it reaches the
    same store as the storage layer; AWS_* variables and ~/.aws reach boto3 themselves."""
    from apache_beam.options.pipeline_options import PipelineOptions

    names = {"endpoint": "s3_endpoint_url", "region": "s3_region_name", "access_key": "s3_access_key_id",
             "secret_key": "s3_secret_access_key", "session_token": "s3_session_token"}
    extra = {b: str(fs.options()[k]) for k, b in names.items() if fs.options().get(k)}
    return PipelineOptions.from_dictionary(opts.get_all_options(drop_default=True) | extra) if extra else opts


def run(plan: Plan, workers: int = DEFAULT_WORKERS, resume: bool = False, overwrite: bool = False, progress: bool | None = None,
        options=None) -> dict:
    opts, step_opts = pipeline_options(options if options is not None else plan.config.engine.options, workers)
    runner = opts.get_all_options().get("runner") or "DirectRunner"
    distributed = bool(plan.config.run.scratch) or runner.rsplit(".", 1)[-1] not in ("DirectRunner", "direct")
    return driver.run(plan, BeamExecutor(opts, step_opts, stable_hash(resume_key(plan)), distributed), workers,
                      resume=resume, overwrite=overwrite, progress=progress)
