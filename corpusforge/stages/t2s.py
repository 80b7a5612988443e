"""[t2s] Traditional → simplified Chinese with OpenCC. The converter is built once per worker."""

from __future__ import annotations

import functools
from difflib import SequenceMatcher
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from corpusforge.schema import score_column
from corpusforge.stage import MapStage, Params, register

_SEP = "\ue000"  # a private-use character: in no OpenCC dictionary (clean removes it from text anyway)
_CHUNK_CHARS = 16_384  # characters per OpenCC call: measured fastest at 10-20k (50 KB); 40k+ is ~30 % slower

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
        self.convert(pa.array(["預熱"]))  # loads the compiled kernels (see model_filters)

    def output_schema(self, schema: pa.Schema) -> pa.Schema:
        return schema.append(pa.field(score_column(self.name, "chars_changed"), pa.int64()))

    def convert(self, texts: pa.Array) -> tuple[pa.Array, np.ndarray]:
        try:
            from corpusforge.algorithms.utf8 import positional_diffs
        except ImportError:  # no numba: one Python str per document
            vals = texts.to_pylist()
            out = pa.array(self._convert_all(vals), pa.string())
            return out, self.changed_reference(vals, out.to_pylist())
        out = self._convert_utf8(texts)
        changed = positional_diffs(texts, out)  # the usual same-length conversion, compiled
        for i in np.flatnonzero(changed < 0):  # a phrase conversion changed the length (tw2sp)
            changed[i] = chars_changed(texts[int(i)].as_py(), out[int(i)].as_py())
        return out, changed

    def _convert_utf8(self, texts: pa.Array) -> pa.Array:
        """_convert_all without a Python str per document: OpenCC's C++ call gets the UTF-8 of ~_CHUNK_CHARS
        characters of documents straight from the Arrow buffer, joined by the separator, and the result
        is split back into an Arrow array (nulls stay null)."""
        import opencc

        from corpusforge.algorithms import utf8

        call = functools.partial(opencc.clib.opencc_clib._OpenCC.convert, self._cc)

        def raw(b: bytes) -> bytes:
            return call(b, len(b)).encode("utf-8")

        sep = np.frombuffer(_SEP.encode("utf-8"), np.uint8)
        u8, offs = utf8.arrow_utf8(texts)
        # a call starts at each document whose start crosses into the next ~_CHUNK_CHARS (3 bytes each)
        cuts = np.r_[np.flatnonzero(np.diff(offs[:-1] // (_CHUNK_CHARS * 3), prepend=-1)), len(texts)]
        data, lens = [], []
        for d0, d1 in zip(cuts[:-1], cuts[1:]):
            out = raw(utf8.join(u8, offs, d0, d1, sep).tobytes())
            part, loc = utf8.split(np.frombuffer(out, np.uint8), sep, d1 - d0)
            if not len(loc):  # a document holds the separator itself: one call each, exact
                part = [np.frombuffer(raw(u8[offs[d]:offs[d + 1]].tobytes()), np.uint8) for d in range(d0, d1)]
                loc = np.cumsum([0] + [len(x) for x in part])
                part = np.concatenate(part)
            data.append(part)
            lens.append(np.diff(loc))
        lens = np.concatenate(lens) if lens else np.zeros(0, np.int64)
        offsets = np.zeros(len(texts) + 1, np.int64)
        np.cumsum(lens, out=offsets[1:])
        valid = texts.buffers()[0] if texts.null_count else None
        if valid is not None and texts.offset:
            valid = pc.is_valid(texts).buffers()[1]
        return utf8.string_array(np.concatenate(data) if data else np.zeros(0, np.uint8), offsets, valid)

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
