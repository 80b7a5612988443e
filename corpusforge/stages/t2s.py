"""[t2s] Traditional → simplified Chinese with OpenCC. The converter is built once per worker."""

from __future__ import annotations

from difflib import SequenceMatcher
from typing import Literal

import numpy as np
import pyarrow as pa

from corpusforge.schema import score_column
from corpusforge.stage import MapStage, Params, register

_SEP = "\ue000"  # a private-use character: in no OpenCC dictionary (clean removes it from text anyway)
_CHUNK_CHARS = 32_768  # characters per OpenCC call (bigger single calls get slower again)

def chars_changed(a: str, b: str) -> int:
    """Characters that differ: positionwise for the usual same-length conversion; phrase conversions
    that change the length (tw2sp: 滑鼠→鼠标) are aligned line by line (OpenCC keeps line breaks), so
    the quadratic alignment only ever sees one line."""
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b))
    la, lb = a.split("\n"), b.split("\n")
    if len(la) != len(lb):
        la, lb = [a], [b]
    n = 0
    for x, y in zip(la, lb):
        if len(x) == len(y):
            n += sum(p != q for p, q in zip(x, y))
        else:
            sm = SequenceMatcher(None, x, y, autojunk=False)
            n += max(len(x), len(y)) - sum(m.size for m in sm.get_matching_blocks())
    return n


@register
class T2S(MapStage):
    """OpenCC conversion: t2s (characters), tw2s / hk2s (regional characters), tw2sp (+ Taiwan phrases)."""

    name = "t2s"

    class Params(Params):
        config: Literal["t2s", "tw2s", "tw2sp", "hk2s"] = "t2s"


    def files(self) -> list[str]:
        """The OpenCC config and every dictionary it chains: hashed into the manifest and the resume key,
        so a different OpenCC data version cannot silently change conversions (RELIABILITY #29)."""
        import json
        import os

        import opencc

        d = os.path.join(os.path.dirname(opencc.__file__), "clib", "share", "opencc")
        cfg = os.path.join(d, f"{self.params.config}.json")
        if not os.path.isfile(cfg):
            return []  # an OpenCC build without bundled data files: nothing on disk to pin

        def dicts(node):
            if isinstance(node, dict):
                if isinstance(node.get("file"), str):
                    yield node["file"]
                for v in node.values():
                    yield from dicts(v)
            elif isinstance(node, list):
                for v in node:
                    yield from dicts(v)

        with open(cfg, encoding="utf-8") as f:
            names = sorted(set(dicts(json.load(f))))
        return [cfg] + [os.path.join(d, n) for n in names if os.path.isfile(os.path.join(d, n))]

    def setup(self) -> None:
        import opencc

        self._cc = opencc.OpenCC(f"{self.params.config}.json")

    def output_schema(self, schema: pa.Schema) -> pa.Schema:
        return schema.append(pa.field(score_column(self.name, "chars_changed"), pa.int64()))

    def convert(self, texts: pa.Array) -> tuple[pa.Array, np.ndarray]:
        vals = texts.to_pylist()
        out = pa.array(self._convert_all(vals), pa.string())
        try:
            from corpusforge.algorithms.utf8 import positional_diffs
        except ImportError:  # no numba
            return out, self.changed_reference(vals, out.to_pylist())
        changed = positional_diffs(texts, out)  # the usual same-length conversion, compiled
        for i in np.flatnonzero(changed < 0):  # a phrase conversion changed the length (tw2sp)
            changed[i] = chars_changed(vals[i], out[int(i)].as_py())
        return out, changed

    @staticmethod
    def changed_reference(olds: list, news: list) -> np.ndarray:
        return np.array([0 if o is None else chars_changed(o, n) for o, n in zip(olds, news)], np.int64)

    def _convert_all(self, vals: list[str | None]) -> list[str | None]:
        """OpenCC over many documents per call, joined by a private-use separator: no dictionary entry
        contains it, so no phrase match crosses it and the result equals one call per document, at
        ~2x the speed for paragraph-sized documents (the per-call overhead dominates them)."""
        out: list[str | None] = list(vals)
        chunk: list[int] = []
        size = 0

        def flush():
            nonlocal size
            if chunk:
                parts = self._cc.convert(_SEP.join(vals[i] for i in chunk)).split(_SEP)
                if len(parts) != len(chunk):  # cannot happen (the separator is never converted): stay exact
                    parts = [self._cc.convert(vals[i]) for i in chunk]
                for i, p in zip(chunk, parts):
                    out[i] = p
                chunk.clear()
                size = 0

        for i, v in enumerate(vals):
            if v is None:
                continue
            if _SEP in v:
                out[i] = self._cc.convert(v)
                continue
            chunk.append(i)
            size += len(v)
            if size >= _CHUNK_CHARS:
                flush()
        flush()
        return out

    def map(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        out, changed = self.convert(batch.column("text"))
        arrays = [out if n == "text" else batch.column(n) for n in batch.schema.names] + [pa.array(changed, pa.int64())]
        return pa.RecordBatch.from_arrays(arrays, schema=self.output_schema(batch.schema))
