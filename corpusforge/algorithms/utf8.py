"""UTF-8 straight from Arrow string buffers, for the compiled kernels: the buffers of an array, a decoder,
and the per-document count of code points that differ between two arrays of equal-length strings."""

from __future__ import annotations

import numba
import numpy as np


def arrow_utf8(arr):
    """(UTF-8 bytes, int64 offsets) of an Arrow string array or a list of str (nulls read as empty strings)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not isinstance(arr, (pa.Array, pa.ChunkedArray)):
        arr = pa.array(arr, pa.string())
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks else pa.array([], pa.string())
    arr = pc.fill_null(arr, "").cast(pa.large_string())
    n = len(arr)
    if not n:
        return np.zeros(0, np.uint8), np.zeros(1, np.int64)
    offs = np.frombuffer(arr.buffers()[1], np.int64)[arr.offset: arr.offset + n + 1]
    data = arr.buffers()[2]
    return (np.frombuffer(data, np.uint8) if data is not None else np.zeros(0, np.uint8)), offs


@numba.njit(cache=True, nogil=True)
def decode(u8, i, end, out, limit=-1):
    """The code points of the valid UTF-8 u8[i:end] (at most `limit` of them if >= 0) into out; their count."""
    k = 0
    while i < end and k != limit:
        c = np.uint32(u8[i])
        if c < 0x80:
            i += 1
        elif c < 0xE0:
            c = ((c & 0x1F) << 6) | (u8[i + 1] & 0x3F)
            i += 2
        elif c < 0xF0:
            c = ((c & 0x0F) << 12) | ((u8[i + 1] & 0x3F) << 6) | (u8[i + 2] & 0x3F)
            i += 3
        else:
            c = ((c & 0x07) << 18) | ((u8[i + 1] & 0x3F) << 12) | ((u8[i + 2] & 0x3F) << 6) | (u8[i + 3] & 0x3F)
            i += 4
        out[k] = c
        k += 1
    return k


@numba.njit(cache=True, nogil=True)
def _diffs(a8, aoff, b8, boff):
    """Per row: code points that differ position by position, or -1 where the lengths differ."""
    nd = aoff.shape[0] - 1
    out = np.zeros(nd, np.int64)
    x = np.empty(1024, np.uint32)
    y = np.empty(1024, np.uint32)
    for d in range(nd):
        if aoff[d + 1] - aoff[d] > x.shape[0]:
            x = np.empty(aoff[d + 1] - aoff[d], np.uint32)
        if boff[d + 1] - boff[d] > y.shape[0]:
            y = np.empty(boff[d + 1] - boff[d], np.uint32)
        n = decode(a8, aoff[d], aoff[d + 1], x)
        m = decode(b8, boff[d], boff[d + 1], y)
        if n != m:
            out[d] = -1
            continue
        k = 0
        for i in range(n):
            k += x[i] != y[i]
        out[d] = k
    return out


def positional_diffs(a, b) -> np.ndarray:
    """For two Arrow string arrays of the same length: per row the code points that differ position by
    position, -1 where the two strings differ in length."""
    return _diffs(*arrow_utf8(a), *arrow_utf8(b))
