"""The engine contract (DESIGN §4): the small interface every engine implements once, and that every
global stage (dedup, sampling) is written against. No implementation lives here (engines/local_primitives.py,
spark.py, beam.py); stages import this module, never an engine. No stage has an engine-specific twin, so local,
Spark and Beam give the same answer for the same plan.

Contract shared by all engines
------------------------------
* A dataset handle is opaque to stages: they only pass it between primitives. Local handles are
  ordered lists of Parquet files (`Dataset`); Spark may use a DataFrame, Beam a PCollection.
* Row order inside a dataset is unspecified; stages that persist results sort them first.
* Functions given to `map_batches` are picklable, pure and deterministic:
  `fn(pa.RecordBatch) -> pa.RecordBatch | pa.Table` with exactly the declared schema, any row count.
* `combine` aggregates per key with min / max / sum / count (associative: engines may pre-combine
  per batch, e.g. Spark partial aggregation, Beam combiner lifting). min/max work on strings too
  (byte-wise UTF-8 order, the same on every engine).
* `join` is an inner equi-join; output = left columns + right non-key columns (a name clash is an
  error, rename first). `annotate` appends per-key aggregates to every row (keys are never null).
* Engines may fuse a map step into the step that consumes it (Spark does), so a map step consumed by
  two steps may be computed twice: stages consume an expensive map's output once.
* `connected_components(edges)`: edges have string columns `src`, `dst`; output (id, component)
  for every node seen in an edge, component = the minimum id of the component.
* Key hashing for partitioning uses `hash_column` (never Python's hash()), so partitions are the
  same in every process and run.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from corpusforge.errors import CorpusforgeError
from corpusforge.schema import AGG_OPS, COMPONENT_SCHEMA, EDGE_SCHEMA


class Primitives(abc.ABC):
    """What a global stage may ask of an engine. `name` arguments label steps (spill folders, UI)."""

    components_rows = 500_000  # more edges than this: label-propagation rounds instead of one in-memory union-find

    @abc.abstractmethod
    def map_batches(self, ds, fn: Callable, schema: pa.Schema, name: str):
        """Apply fn to every batch of ds; returns a dataset with `schema`."""

    @abc.abstractmethod
    def select(self, ds, columns: list[str]):
        """The same rows with only `columns`: a lazy projection, never a copy (later steps read less)."""

    @abc.abstractmethod
    def combine(self, ds, keys: list[str], aggs: list[tuple[str, str, str]], name: str):
        """Group ds by keys; aggs = [(column, op, output name)], op in AGG_OPS. Output: keys + outputs."""

    @abc.abstractmethod
    def annotate(self, ds, keys: list[str], aggs: list[tuple[str, str, str]], name: str):
        """Every row of ds with its key group's aggregates appended (as `combine` computes them): what
        `join(ds, combine(ds, ...))` gives, in one shuffle (Spark: a window; Beam: GroupByKey)."""

    @abc.abstractmethod
    def join(self, left, right, on: list[str], name: str):
        """Inner equi-join on `on`."""

    def connected_components(self, edges, name: str, max_nodes: int | None = None):
        """(src, dst) string edges -> (id, component = min id in its component)."""
        from corpusforge.algorithms.components import components_by_rounds, components_min_id

        edges = self._countable(edges, name)
        if self.count(edges) > self.components_rows:
            return components_by_rounds(self, edges, name)
        t = pa.Table.from_batches(list(self.read(edges)), schema=EDGE_SCHEMA)
        ids, comp = components_min_id(t.column("src"), t.column("dst"), max_nodes=max_nodes)
        return self.from_table(pa.table({"id": ids, "component": comp}, schema=COMPONENT_SCHEMA), name)

    def _countable(self, ds, name: str):
        """ds in a form that is cheap to count and then read (an engine that fuses lazily materializes it)."""
        return ds

    @abc.abstractmethod
    def from_table(self, table: pa.Table, name: str):
        """A small driver-side table as a dataset."""

    @abc.abstractmethod
    def read(self, ds) -> Iterator[pa.RecordBatch]:
        """Stream a dataset back to the driver (only for results known to be small, or streaming writes)."""

    @abc.abstractmethod
    def count(self, ds) -> int:
        ...


# ------------------------------------------------------------------------------------------ hashing


def fmix64(h: np.ndarray) -> np.ndarray:
    """MurmurHash3 64-bit finalizer (a bijection): spreads structured integers over all bits."""
    h = h.astype(np.uint64, copy=True)
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xFF51AFD7ED558CCD)
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xC4CEB9FE1A85EC53)
    h ^= h >> np.uint64(33)
    return h


def _string_hash64(arr: pa.Array) -> np.ndarray:
    """Vectorized 64-bit hash of each UTF-8 string: polynomial over bytes mod 2^64, then fmix64."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if arr.null_count:
        arr = pc.fill_null(arr, "")
    if pa.types.is_string(arr.type):
        arr = arr.cast(pa.large_string())
    elif pa.types.is_binary(arr.type):
        arr = arr.cast(pa.large_binary())
    n = len(arr)
    offs = np.frombuffer(arr.buffers()[1], np.int64)[arr.offset: arr.offset + n + 1]
    data = np.frombuffer(arr.buffers()[2], np.uint8) if arr.buffers()[2] is not None else np.zeros(0, np.uint8)
    lo, hi = offs[:-1], offs[1:]
    data = data[offs[0]:offs[-1]]
    lens = hi - lo
    if not len(data):
        return fmix64(lens.astype(np.uint64))
    pos = np.arange(len(data), dtype=np.int64) - np.repeat(lo - offs[0], lens)
    powers = np.cumprod(np.full(int(lens.max()) + 1, 0x100000001B3, np.uint64)) if lens.max() else np.ones(1, np.uint64)
    with np.errstate(over="ignore"):
        contrib = data.astype(np.uint64) * powers[pos]
        cs = np.concatenate([np.zeros(1, np.uint64), np.cumsum(contrib, dtype=np.uint64)])
        h = cs[hi - offs[0]] - cs[lo - offs[0]]
        return fmix64(h ^ lens.astype(np.uint64))


def hash_column(col) -> np.ndarray:
    """Deterministic uint64 hash of an Arrow column (strings, integers)."""
    t = col.type
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return _string_hash64(col)
    if pa.types.is_integer(t):
        v = np.asarray(col.to_numpy(zero_copy_only=False))
        return fmix64(v.astype(np.int64).view(np.uint64))
    raise CorpusforgeError("bad_key", f"cannot partition on a column of type {t}")


def partition_of(table: pa.Table | pa.RecordBatch, keys: list[str], nparts: int) -> np.ndarray:
    h = np.zeros(table.num_rows, np.uint64)
    with np.errstate(over="ignore"):
        for k in keys:
            h = h * np.uint64(0x9E3779B97F4A7C15) + hash_column(table.column(k))
    return (fmix64(h) % np.uint64(nparts)).astype(np.int64)


_FINAL_OP = {"min": "min", "max": "max", "sum": "sum", "count": "sum"}  # how partial aggregates combine


def two_phase(aggs: list[tuple[str, str, str]]) -> tuple[list[tuple[str, str]], list[str], list[tuple[str, str]]]:
    """(partial aggregates per batch, their column names, how those names combine into the final value)."""
    partial = [(c, op) for c, op, _ in aggs]
    names = [f"{c}_{op}" for c, op in partial]
    return partial, names, [(n, _FINAL_OP[op]) for n, (_, op) in zip(names, partial)]


def final_aggregate(t: pa.Table, keys: list[str], final: list[tuple[str, str]], out_names: list[str]) -> pa.Table:
    """Combines partial aggregates of one key partition: keys + aggregates named out_names."""
    g = t.group_by(keys, use_threads=False).aggregate(final)
    return g.select(keys + [f"{n}_{o}" for n, o in final]).rename_columns(keys + out_names)


def check_aggs(aggs: list[tuple[str, str, str]]) -> None:
    for _, op, _ in aggs:
        if op not in AGG_OPS:
            raise CorpusforgeError("bad_aggregate", f"aggregate op {op!r} not in {AGG_OPS}")


def aggregate_schema(schema: pa.Schema, keys: list[str], aggs: list[tuple[str, str, str]]) -> pa.Schema:
    """keys + aggregate outputs, typed as Arrow's group_by gives them (count: int64)."""
    probe = schema.empty_table().group_by(keys).aggregate([(c, op) for c, op, _ in aggs])
    return pa.schema([schema.field(k) for k in keys] + [pa.field(o, probe.schema.field(f"{c}_{op}").type) for c, op, o in aggs])


def conform(out: pa.Table | pa.RecordBatch, schema: pa.Schema) -> pa.Table:
    """A map function's output as a table with exactly its declared schema (column order and types)."""
    t = out if isinstance(out, pa.Table) else pa.Table.from_batches([out])
    return t if t.schema == schema else t.select(schema.names).cast(schema)


def join_schema(left: pa.Schema, right: pa.Schema, on: list[str], name: str) -> pa.Schema:
    """left columns + right non-key columns; a shared non-key name is an error (rename first)."""
    clash = (set(left.names) & set(right.names)) - set(on)
    if clash:
        raise CorpusforgeError("join_clash", f"join {name}: both sides have {sorted(clash)}; rename first")
    return pa.schema(list(left) + [f for f in right if f.name not in on])
