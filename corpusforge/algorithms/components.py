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
