"""The word-list matcher's two text forms compiled (numba), one pass each over the Arrow UTF-8 buffer:
the skeleton (rulepack.skeleton: characters of SKELETON_DROP_RE removed, the rest lower-cased by Arrow's
per-character utf8_lower, both read off a table built with those very kernels) and the ASCII word line
(wordmatch.words). tests/unit/test_kernels.py checks both against the Arrow reference."""

from __future__ import annotations


import numba
import numpy as np

from corpusforge.algorithms import tablecache
from corpusforge.algorithms.clean_scan import DROP
from corpusforge.algorithms.utf8 import next_cp, arrow_utf8, every_code_point, large_string_array, put

_N = 0x110000


@tablecache.cached
def table(drop_re: str) -> np.ndarray:
    """int32 per code point: DROP, or the code point utf8_lower makes of it."""
    import pyarrow.compute as pc

    valid, every = every_code_point()
    low = pc.utf8_lower(every)
    lower = np.frombuffer(bytes(low.buffers()[2])[:int(np.frombuffer(low.buffers()[1], np.int32)[-1])]
                          .decode("utf-8").encode("utf-32-le"), np.uint32)
    if len(lower) != len(valid):
        raise ImportError("utf8_lower changes the length of some code point: keep the Arrow path")
    t = np.full(_N, DROP, np.int32)
    t[valid] = lower.astype(np.int32)
    t[valid[np.asarray(pc.match_substring_regex(every, drop_re))]] = DROP
    return t


@numba.njit(cache=True, nogil=True)
def _skeleton(u8, offs, table):
    out = np.empty(u8.shape[0] + 4 * (offs.shape[0] - 1), np.uint8)  # lower-casing may lengthen the UTF-8
    oo = np.zeros(offs.shape[0], np.int64)
    k = 0
    for d in range(offs.shape[0] - 1):
        i, e = offs[d], offs[d + 1]
        if out.shape[0] - k < 2 * (e - i):
            out = np.concatenate((out[:k], np.empty(2 * (e - i) + out.shape[0], np.uint8)))
        while i < e:
            c, i = next_cp(u8, i)
            t = table[c]
            if t != DROP:
                k = put(np.uint32(t), out, k)
        oo[d + 1] = k
    return out[:k], oo


@numba.njit(cache=True, nogil=True)
def _words(u8, offs):
    """" " + ASCII letters and digits, lower-cased, every run of anything else → one space + " "."""
    out = np.empty(u8.shape[0] + 2 * (offs.shape[0] - 1), np.uint8)
    oo = np.zeros(offs.shape[0], np.int64)
    k = 0
    for d in range(offs.shape[0] - 1):
        out[k] = 0x20
        k += 1
        run = False
        for i in range(offs[d], offs[d + 1]):
            b = u8[i]
            if 0x30 <= b <= 0x39 or 0x61 <= b <= 0x7A or 0x41 <= b <= 0x5A:
                out[k] = b + 0x20 if b <= 0x5A and b >= 0x41 else b
                k += 1
                run = False
            elif (b & 0xC0) != 0x80 and not run:  # a lead byte of a non-alnum character opens a run
                out[k] = 0x20
                k += 1
                run = True
        out[k] = 0x20
        k += 1
        oo[d + 1] = k
    return out[:k], oo


def skeleton(texts, drop_re: str):
    return large_string_array(*_skeleton(*arrow_utf8(texts), table(drop_re)))


def words(texts):
    return large_string_array(*_words(*arrow_utf8(texts)))
