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


class _CApi:
    """OpenCC's C API (opencc.h), from the library its Python binding ships and already loaded: UTF-8 in,
    UTF-8 out. The binding's convert() returns a str, which cost a decode there and an encode here (~9 %
    of t2s). The C call returns a NUL-terminated copy, so NUL-free input only (the caller checks)."""

    def __init__(self, config_path: str):
        import ctypes
        import weakref

        from opencc.clib import opencc_clib

        lib = ctypes.CDLL(opencc_clib.__file__)
        lib.opencc_open.restype, lib.opencc_open.argtypes = ctypes.c_void_p, [ctypes.c_char_p]
        lib.opencc_convert_utf8.restype = ctypes.c_void_p
        lib.opencc_convert_utf8.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]
        lib.opencc_convert_utf8_free.argtypes = [ctypes.c_void_p]
        lib.opencc_close.argtypes = [ctypes.c_void_p]
        h = lib.opencc_open(config_path.encode())
        if not h or h == ctypes.c_void_p(-1).value:  # (opencc_t) -1: the config did not load
            raise OSError(f"opencc_open({config_path}) failed")
        self._lib, self._h, self._string_at = lib, h, ctypes.string_at
        weakref.finalize(self, lib.opencc_close, h)

    def __call__(self, b: bytes) -> bytes:
        p = self._lib.opencc_convert_utf8(self._h, b, len(b))
        if not p:
            raise OSError("opencc_convert_utf8 failed")
        try:
            return self._string_at(p)
        finally:
            self._lib.opencc_convert_utf8_free(p)


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
        try:
            self._c = _CApi(self._cc.config)
        except (OSError, AttributeError):  # a build without the C symbols: the binding's call
            self._c = None
        self.convert(pa.array(["預熱"]))  # loads the compiled kernels (see model_filters)

    def output_schema(self, schema: pa.Schema) -> pa.Schema:
        return schema.append(pa.field(score_column(self.name, "chars_changed"), pa.int64()))

    def convert(self, texts: pa.Array) -> tuple[pa.Array, np.ndarray]:
        try:
            out, changed = self._convert_utf8(texts)  # changed: the usual same-length conversion, compiled
        except ImportError:  # no numba: one Python str per document
            vals = texts.to_pylist()
            out = pa.array(self._convert_all(vals), pa.string())
            return out, self.changed_reference(vals, out.to_pylist())
        for i in np.flatnonzero(changed < 0):  # a phrase conversion changed the length (tw2sp)
            changed[i] = chars_changed(texts[int(i)].as_py(), out[int(i)].as_py())
        return out, changed

    def _convert_utf8(self, texts: pa.Array) -> tuple[pa.Array, np.ndarray]:
        """_convert_all without a Python str per document: OpenCC's C++ call gets the UTF-8 of ~_CHUNK_CHARS
        characters of documents straight from the Arrow buffer, joined by the separator; the calls' results,
        joined by it too, are split back into an Arrow array (nulls stay null) in one pass per batch. Also
        the characters each document changed position by position (-1 where its length changed)."""
        import opencc

        from corpusforge.algorithms import utf8

        call = functools.partial(opencc.clib.opencc_clib._OpenCC.convert, self._cc)

        def raw(b: bytes) -> bytes:
            if self._c is not None and b"\0" not in b:
                return self._c(b)
            return call(b, len(b)).encode("utf-8")

        sep = np.frombuffer(_SEP.encode("utf-8"), np.uint8)
        u8, offs = utf8.arrow_utf8(texts)
        n = len(texts)
        # a call starts at each document whose start crosses into the next ~_CHUNK_CHARS (3 bytes each)
        cuts = np.r_[np.flatnonzero(np.diff(offs[:-1] // (_CHUNK_CHARS * 3), prepend=-1)), n]
        whole = _SEP.encode("utf-8").join(raw(utf8.join(u8, offs, d0, d1, sep).tobytes()) for d0, d1 in zip(cuts[:-1], cuts[1:]))
        data, loc, changed = utf8.split(np.frombuffer(whole, np.uint8), sep, n, u8, offs) if n else \
            (np.zeros(0, np.uint8), np.zeros(1, np.int64), np.zeros(0, np.int64))
        if not len(loc):  # a document holds the separator itself: one call each, exact
            parts = [np.frombuffer(raw(u8[offs[d]:offs[d + 1]].tobytes()), np.uint8) for d in range(n)]
            loc = np.zeros(n + 1, np.int64)
            np.cumsum([len(x) for x in parts], out=loc[1:])
            data = np.concatenate(parts)
            changed = utf8.diffs(u8, offs, data, loc)
        valid = texts.buffers()[0] if texts.null_count else None
        if valid is not None and texts.offset:
            valid = pc.is_valid(texts).buffers()[1]
        return utf8.string_array(data, loc, valid), changed

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
