"""A set of code-point strings for compiled kernels: open addressing over an FNV-style hash of the code
points, with an exact comparison on every probe (no false hit, whatever the hash does)."""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True, inline="always")
def cp_hash(cps, a, b):
    h = np.uint64(0xCBF29CE484222325)
    for q in range(a, b):
        h = (h ^ np.uint64(cps[q])) * np.uint64(0x100000001B3)
    return h ^ (h >> np.uint64(29))


@numba.njit(cache=True, nogil=True)
def _build(wcps, woff, cap):
    slots = np.full(cap, -1, np.int64)
    for w in range(woff.shape[0] - 1):
        s = cp_hash(wcps, woff[w], woff[w + 1]) & np.uint64(cap - 1)
        while slots[s] >= 0:
            s = (s + np.uint64(1)) & np.uint64(cap - 1)
        slots[s] = w
    return slots


@numba.njit(cache=True, nogil=True)
def find(cps, a, b, wcps, woff, slots):
    """Index of the string cps[a:b] in the set, or -1."""
    s = cp_hash(cps, a, b) & np.uint64(slots.shape[0] - 1)
    while True:
        w = slots[s]
        if w < 0:
            return -1
        if woff[w + 1] - woff[w] == b - a:
            same = True
            for i in range(b - a):
                if wcps[woff[w] + i] != cps[a + i]:
                    same = False
                    break
            if same:
                return w
        s = (s + np.uint64(1)) & np.uint64(slots.shape[0] - 1)


def table(strings: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(code points, offsets, slots) of these strings, for find(); string i has index i."""
    wcps = np.frombuffer("".join(strings).encode("utf-32-le"), np.uint32) if strings else np.zeros(0, np.uint32)
    woff = np.zeros(len(strings) + 1, np.int64)
    np.cumsum([len(s) for s in strings], out=woff[1:])
    cap = 2
    while cap < 2 * len(strings):
        cap *= 2
    return wcps, woff, _build(wcps, woff, cap)


@numba.njit(cache=True, nogil=True)
def run_hashes(cps, offs):
    """cp_hash of every run cps[offs[i]:offs[i+1]] (dedup_lines' line keys)."""
    out = np.empty(offs.shape[0] - 1, np.uint64)
    for i in range(out.shape[0]):
        out[i] = cp_hash(cps, offs[i], offs[i + 1])
    return out
