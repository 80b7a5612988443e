"""UTF-8 straight from Arrow string buffers, for the compiled kernels: the buffers of an array, a decoder,
and the per-document count of code points that differ between the rows of two string buffers."""

from __future__ import annotations

import numba
import numpy as np


def arrow_utf8(arr):
    """(UTF-8 bytes, int64 offsets) of an Arrow string array or a list of str (nulls read as empty strings).
    The bytes are Arrow's own buffer (no copy); only 32-bit offsets are widened."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not isinstance(arr, (pa.Array, pa.ChunkedArray)):
        arr = pa.array(arr, pa.string())
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks else pa.array([], pa.string())
    if arr.null_count:
        arr = pc.fill_null(arr, "")
    if arr.type not in (pa.string(), pa.large_string()):
        arr = arr.cast(pa.large_string())
    n = len(arr)
    if not n:
        return np.zeros(0, np.uint8), np.zeros(1, np.int64)
    offs = np.frombuffer(arr.buffers()[1], np.int32 if arr.type == pa.string() else np.int64)[arr.offset: arr.offset + n + 1]
    data = arr.buffers()[2]
    return (np.frombuffer(data, np.uint8) if data is not None else np.zeros(0, np.uint8)), offs.astype(np.int64, copy=False)


def large_string_array(data: np.ndarray, offs: np.ndarray, valid=None):
    """An Arrow large_string array over kernel output (bytes, int64 offsets from 0), without a copy."""
    import pyarrow as pa

    return pa.LargeStringArray.from_buffers(len(offs) - 1, pa.py_buffer(offs), pa.py_buffer(data), valid)


def string_array(data: np.ndarray, offs: np.ndarray, valid=None):
    """The same as Arrow's string type: 32-bit offsets, no copy of the bytes (a batch over 2 GiB of text
    fails as that type must)."""
    import pyarrow as pa

    if offs[-1] >= 2**31:
        return large_string_array(data, offs, valid).cast(pa.string())
    return pa.StringArray.from_buffers(len(offs) - 1, pa.py_buffer(offs.astype(np.int32)), pa.py_buffer(data), valid)


def every_code_point():
    """(code points, Arrow string array of them, one per row): every code point but the surrogates, to read
    a character class or a per-character map off Arrow's own kernels (built per table, not kept)."""
    import pyarrow as pa

    valid = np.r_[0:0xD800, 0xE000:0x110000].astype(np.uint32)
    data = valid.tobytes().decode("utf-32-le").encode("utf-8")
    offs = np.zeros(len(valid) + 1, np.int32)
    np.cumsum(1 + (valid >= 0x80) + (valid >= 0x800) + (valid >= 0x10000), out=offs[1:])
    return valid, pa.StringArray.from_buffers(len(valid), pa.py_buffer(offs), pa.py_buffer(data))


@numba.njit(cache=True, nogil=True, inline="always")
def put(c, out, i):
    """Writes code point c as UTF-8 at out[i]; the index after it."""
    if c < 0x80:
        out[i] = c
        return i + 1
    if c < 0x800:
        out[i] = 0xC0 | (c >> 6)
        out[i + 1] = 0x80 | (c & 0x3F)
        return i + 2
    if c < 0x10000:
        out[i] = 0xE0 | (c >> 12)
        out[i + 1] = 0x80 | ((c >> 6) & 0x3F)
        out[i + 2] = 0x80 | (c & 0x3F)
        return i + 3
    out[i] = 0xF0 | (c >> 18)
    out[i + 1] = 0x80 | ((c >> 12) & 0x3F)
    out[i + 2] = 0x80 | ((c >> 6) & 0x3F)
    out[i + 3] = 0x80 | (c & 0x3F)
    return i + 4


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


@numba.njit(cache=True, nogil=True, inline="always")
def next_cp(u8, i):
    """(code point at byte i, byte index after it)."""
    c = np.uint32(u8[i])
    if c < 0x80:
        return c, i + 1
    if c < 0xE0:
        return ((c & 0x1F) << 6) | (u8[i + 1] & 0x3F), i + 2
    if c < 0xF0:
        return ((c & 0x0F) << 12) | ((u8[i + 1] & 0x3F) << 6) | (u8[i + 2] & 0x3F), i + 3
    return ((c & 0x07) << 18) | ((u8[i + 1] & 0x3F) << 12) | ((u8[i + 2] & 0x3F) << 6) | (u8[i + 3] & 0x3F), i + 4


@numba.njit(cache=True, nogil=True, inline="always")
def _width(lead):
    return 1 if lead < 0x80 else 2 if lead < 0xE0 else 3 if lead < 0xF0 else 4


@numba.njit(cache=True, nogil=True, inline="always")
def _diff(a8, i, ie, b8, j, je):
    """Code points that differ position by position between a8[i:ie] and b8[j:je], or -1 where the lengths
    differ. Equal bytes are stepped over one by one without decoding; at a differing byte both sides back
    up to the start of its character (the bytes before it in that character are equal, so it starts at the
    same place in both) and step over one character each."""
    k = 0
    while i < ie and j < je:
        if a8[i] == b8[j]:
            i += 1
            j += 1
            continue
        while a8[i] & 0xC0 == 0x80:  # a continuation byte: back to its character's lead byte
            i -= 1
            j -= 1
        k += 1
        i += _width(a8[i])
        j += _width(b8[j])
    return k if (i == ie and j == je) else -1


@numba.njit(cache=True, nogil=True)
def diffs(a8, aoff, b8, boff):
    """Per row: _diff of row d of (a8, aoff) and of (b8, boff)."""
    nd = aoff.shape[0] - 1
    out = np.zeros(nd, np.int64)
    for d in range(nd):
        out[d] = _diff(a8, aoff[d], aoff[d + 1], b8, boff[d], boff[d + 1])
    return out


@numba.njit(cache=True, nogil=True)
def join(u8, offs, d0, d1, sep):
    """The UTF-8 of documents d0..d1-1 with the bytes `sep` between them."""
    out = np.empty(offs[d1] - offs[d0] + (d1 - d0 - 1) * sep.shape[0], np.uint8)
    k = 0
    for d in range(d0, d1):
        if d > d0:
            out[k:k + sep.shape[0]] = sep
            k += sep.shape[0]
        n = offs[d + 1] - offs[d]
        out[k:k + n] = u8[offs[d]:offs[d + 1]]
        k += n
    return out


@numba.njit(cache=True, nogil=True)
def split(buf, sep, parts, a8, aoff):
    """buf without its occurrences of `sep`, the offsets of the pieces between them, and per piece its _diff
    against row p of (a8, aoff), counted as the piece is copied (its bytes still in cache); (None-like) empty
    offsets when there are not exactly parts - 1 separators."""
    out = np.empty(buf.shape[0], np.uint8)
    offs = np.zeros(parts + 1, np.int64)
    changed = np.zeros(parts, np.int64)
    n, m, s0 = buf.shape[0], sep.shape[0], sep[0]
    k = 0
    p = 0
    seg = 0  # start of the piece being scanned; pieces are copied whole
    i = 0
    while i < n:
        if buf[i] != s0:
            i += 1
            continue
        same = i + m <= n
        for q in range(1, m):
            if same and buf[i + q] != sep[q]:
                same = False
        if not same:
            i += 1
            continue
        if p + 1 >= parts:
            return out[:0], offs[:0], changed
        out[k:k + i - seg] = buf[seg:i]
        changed[p] = _diff(a8, aoff[p], aoff[p + 1], out, k, k + i - seg)
        k += i - seg
        p += 1
        offs[p] = k
        i += m
        seg = i
    if p != parts - 1:
        return out[:0], offs[:0], changed
    out[k:k + n - seg] = buf[seg:n]
    changed[p] = _diff(a8, aoff[p], aoff[p + 1], out, k, k + n - seg)
    k += n - seg
    offs[parts] = k
    return out[:k], offs, changed
