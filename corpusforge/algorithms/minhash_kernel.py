"""minhash.py's compiled paths at module level, so numba's on-disk cache holds them (as nested closures
they were compiled again in every process, ~0.45 s per run). minhash.py keeps the numpy reference path
and tests both equal."""

from __future__ import annotations

import numba
import numpy as np

from corpusforge.algorithms.utf8 import next_cp

_POLY = np.uint64(0x100000001B3)
_M1, _M2 = np.uint64(0xFF51AFD7ED558CCD), np.uint64(0xC4CEB9FE1A85EC53)
_S33, _S16, _S13 = np.uint64(33), np.uint32(16), np.uint32(13)
_C1, _C2, _LOW = np.uint32(0x85EBCA6B), np.uint32(0xC2B2AE35), np.uint64(0xFFFFFFFF)


@numba.njit(cache=True, nogil=True)
def decode_kept(u8, boffs, drop, cp, offs):
    """UTF-8 of the strings [boffs[i], boffs[i+1]) to code points, dropping those marked in `drop`;
    fills cp and offs, returns the count kept."""
    k = 0
    for d in range(boffs.shape[0] - 1):
        i, end = boffs[d], boffs[d + 1]
        while i < end:
            c, i = next_cp(u8, i)
            if not drop[c]:
                cp[k] = c
                k += 1
        offs[d + 1] = k
    return k


@numba.njit(cache=True, nogil=True)
def signatures(cp, offs, n, a, b, sig):
    """The poly64 → fmix64 → fmix32 → affine32 → min pipeline of shingle_hashes + signatures_from_hashes,
    fused per shingle so no batch-sized temporaries are made."""
    nperm = a.shape[0]
    a64 = a.astype(np.uint64)
    b64 = b.astype(np.uint64)
    for d in range(offs.shape[0] - 1):
        start, length = offs[d], offs[d + 1] - offs[d]
        if length == 0:
            continue
        width = n if length >= n else length  # a text shorter than n is one shingle
        for w in range(length - width + 1):
            h = np.uint64(0)
            for j in range(width):
                h = h * _POLY + np.uint64(cp[start + w + j])
            h ^= h >> _S33
            h *= _M1
            h ^= h >> _S33
            h *= _M2
            h ^= h >> _S33
            x = np.uint32(h & _LOW)
            x ^= x >> _S16
            x = np.uint32(np.uint64(x) * np.uint64(_C1) & _LOW)
            x ^= x >> _S13
            x = np.uint32(np.uint64(x) * np.uint64(_C2) & _LOW)
            x ^= x >> _S16
            x64 = np.uint64(x)
            row = sig[d]
            for k in range(nperm):  # branch-free so it vectorizes
                row[k] = min(row[k], np.uint32((a64[k] * x64 + b64[k]) & _LOW))
