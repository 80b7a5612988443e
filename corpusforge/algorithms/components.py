"""Connected components with a deterministic representative (the minimum id).

Union-find over integer node indices; ids are sorted first so that "smallest index" == "smallest id"
(byte-wise UTF-8 order, the order Spark and Arrow use for strings) and union-by-minimum makes every
root the component's minimum id, independent of edge order.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from corpusforge.errors import CorpusforgeError


class UnionFind:
    """Array-backed union-find; the root of a set is always its smallest element."""

    def __init__(self, n: int):
        self.parent = np.arange(n, dtype=np.int64)

    def find(self, x: int) -> int:
        p = self.parent
        root = x
        while p[root] != root:
            root = p[root]
        while p[x] != root:  # path compression
            p[x], x = root, p[x]
        return int(root)

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            lo, hi = (ra, rb) if ra < rb else (rb, ra)
            self.parent[hi] = lo

    def roots(self) -> np.ndarray:
        p = self.parent
        while True:  # pointer jumping: every node ends pointing at its root
            q = p[p]
            if np.array_equal(q, p):
                return p
            p = q


def components_min_id(src: pa.ChunkedArray | pa.Array, dst: pa.ChunkedArray | pa.Array,
                      max_nodes: int | None = None) -> tuple[pa.Array, pa.Array]:
    """Edges (src[i], dst[i]) -> (node ids sorted, component = min id of the node's component)."""
    allids = pa.chunked_array([*_chunks(src), *_chunks(dst)], pa.string())
    nodes = pc.unique(allids).sort()
    if max_nodes is not None and len(nodes) > max_nodes:
        raise CorpusforgeError("components_too_large", f"{len(nodes)} nodes in dedup edges exceed the in-memory "
                               f"union-find limit {max_nodes}")
    if not len(nodes):
        return pa.array([], pa.string()), pa.array([], pa.string())
    si = pc.index_in(pa.chunked_array(_chunks(src), pa.string()), value_set=nodes).to_numpy()
    di = pc.index_in(pa.chunked_array(_chunks(dst), pa.string()), value_set=nodes).to_numpy()
    uf = UnionFind(len(nodes))
    for a, b in zip(si.tolist(), di.tolist()):
        uf.union(a, b)
    roots = uf.roots()
    return nodes, nodes.take(pa.array(roots))


def _chunks(a):
    return a.chunks if isinstance(a, pa.ChunkedArray) else [a]


# ------------------------------------------------------------------------------ distributed rounds
# For edge sets too large for one process: minimum-label propagation written against the engine
# primitives only (map, combine-min, join, count), so every engine can run it. Each round every node
# takes the minimum of its label and its neighbours' labels; it converges to the component's minimum id
# in (diameter + 1) rounds, which is small for dedup's star edges (each node points at a bucket minimum).

_LABEL = pa.schema([pa.field("id", pa.string()), pa.field("label", pa.string())])
_ADJ = pa.schema([pa.field("id", pa.string()), pa.field("nbr", pa.string())])
_MSG = pa.schema([pa.field("id", pa.string()), pa.field("m", pa.string())])
_JOINED = pa.schema([pa.field("id", pa.string()), pa.field("label", pa.string()), pa.field("m", pa.string())])


def _both_directions(batch: pa.RecordBatch) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays([pa.concat_arrays([batch.column("src"), batch.column("dst")]),
                                       pa.concat_arrays([batch.column("dst"), batch.column("src")])], schema=_ADJ)


def _initial_label(batch: pa.RecordBatch) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays([batch.column("id"), pc.min_element_wise(batch.column("id"), batch.column("m"))],
                                      schema=_LABEL)


def _send(batch: pa.RecordBatch) -> pa.RecordBatch:
    # (id, nbr, label of id) -> message to nbr
    return pa.RecordBatch.from_arrays([batch.column("nbr"), batch.column("label")], schema=_MSG)


def _update(batch: pa.RecordBatch) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays([batch.column("id"), pc.min_element_wise(batch.column("label"), batch.column("m"))],
                                      schema=_LABEL)


def _improved(batch: pa.RecordBatch) -> pa.RecordBatch:
    return batch.filter(pc.less(batch.column("m"), batch.column("label")))


def _as_component(batch: pa.RecordBatch) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays([batch.column("id"), batch.column("label")], names=["id", "component"])


def components_by_rounds(engine, edges, name: str = "cc", max_rounds: int = 100):
    """(src, dst) edges -> (id, component = min id), using only engine primitives."""
    adj = engine.map_batches(edges, _both_directions, _ADJ, f"{name}-adj")
    labels = engine.map_batches(engine.combine(adj, ["id"], [("nbr", "min", "m")], f"{name}-init"), _initial_label,
                                _LABEL, f"{name}-labels0")
    for r in range(1, max_rounds + 1):
        msgs = engine.map_batches(engine.join(adj, labels, ["id"], f"{name}-join{r}"), _send, _MSG, f"{name}-send{r}")
        best = engine.combine(msgs, ["id"], [("m", "min", "m")], f"{name}-min{r}")
        joined = engine.join(labels, best, ["id"], f"{name}-cmp{r}")
        if engine.count(engine.map_batches(joined, _improved, _JOINED, f"{name}-changed{r}")) == 0:
            return engine.map_batches(labels, _as_component, pa.schema([("id", pa.string()), ("component", pa.string())]),
                                      f"{name}-out")
        labels = engine.map_batches(joined, _update, _LABEL, f"{name}-labels{r}")
    raise CorpusforgeError("components_rounds", f"connected components did not converge in {max_rounds} rounds")
