"""clean's character and line work compiled (numba), each a pass over an Arrow UTF-8 buffer that does what
one or more of stages/clean.py's reference steps do: line breaks unified; control, zero-width, format and
private-use characters removed with full-width letters and digits folded (one per-character table, built
from the reference's own RE2 classes); spaces collapsed around line breaks and trimmed; repeated
paragraphs removed. tests/unit/test_kernels.py checks every column against the reference."""

from __future__ import annotations

import functools

import numba
import numpy as np

from corpusforge.algorithms import tablecache
from corpusforge.algorithms.cpstrings import cp_hash
from corpusforge.algorithms.utf8 import next_cp, every_code_point, put

_N = 0x110000
KEEP, DROP = -1, -2  # per-character table: keep, drop, or else the code point it becomes


@tablecache.cached
def char_table(drop_res: tuple[str, ...], fold: tuple[tuple[int, int], ...]) -> np.ndarray:
    """int32 per code point: DROP where any of the RE2 classes matches it, the folded code point, or KEEP."""
    import pyarrow.compute as pc

    valid, every = every_code_point()
    t = np.full(_N, KEEP, np.int32)
    for f, to in fold:
        t[f] = to
    for r in drop_res:
        t[valid[np.asarray(pc.match_substring_regex(every, r))]] = DROP
    return t


@functools.cache
def py_space() -> np.ndarray:
    """Python's str.isspace per code point (what str.strip() strips); no space character lies above U+3000."""
    out = np.zeros(_N, np.bool_)
    out[[c for c in range(0x3001) if chr(c).isspace()]] = True
    return out


@numba.njit(cache=True, nogil=True, inline="always")
def _squeeze_newlines(src, n, dst, k):
    """src[:n] into dst[k:] with every run of 3+ \\n as two (\\n{3,} → \\n\\n); the index after it."""
    i = 0
    while i < n:
        if src[i] == 0x0A:
            j = i
            while j < n and src[j] == 0x0A:
                j += 1
            for _ in range(2 if j - i >= 3 else j - i):
                dst[k] = 0x0A
                k += 1
            i = j
        else:
            dst[k] = src[i]
            k += 1
            i += 1
    return k


@numba.njit(cache=True, nogil=True, inline="always")
def strip(cp, s, e, space):
    """The bounds of cp[s:e] without the leading and trailing characters `space` flags (str.strip())."""
    while s < e and space[cp[s]]:
        s += 1
    while e > s and space[cp[e - 1]]:
        e -= 1
    return s, e


@numba.njit(cache=True, nogil=True)
def linebreaks(u8, offs):
    """\\r\\n|[\\r\\u2028\\u2029\\x85\\x0b\\x0c] → \\n (the reference's _LINEBREAK_RE)."""
    out = np.empty(u8.shape[0], np.uint8)
    oo = np.zeros(offs.shape[0], np.int64)
    k = 0
    for d in range(offs.shape[0] - 1):
        i, e = offs[d], offs[d + 1]
        while i < e:
            c, j = next_cp(u8, i)
            if c == 0x0D and j < e and u8[j] == 0x0A:
                j += 1
                c = 0x0A
            elif c == 0x0D or c == 0x2028 or c == 0x2029 or c == 0x85 or c == 0x0B or c == 0x0C:
                c = 0x0A
            k = put(c, out, k)
            i = j
        oo[d + 1] = k
    return out[:k], oo


@numba.njit(cache=True, nogil=True)
def per_char(u8, offs, table):
    """Drops or folds each code point by the table."""
    out = np.empty(u8.shape[0], np.uint8)
    oo = np.zeros(offs.shape[0], np.int64)
    k = 0
    for d in range(offs.shape[0] - 1):
        i, e = offs[d], offs[d + 1]
        while i < e:
            c, i = next_cp(u8, i)
            t = table[c]
            if t == DROP:
                continue
            k = put(c if t == KEEP else np.uint32(t), out, k)
        oo[d + 1] = k
    return out[:k], oo


@numba.njit(cache=True, nogil=True)
def collapse(u8, offs, ideographic):
    """basic.collapse_spaces: runs of space/tab/NBSP (and U+3000 unless kept) → one space; ' ?\\n ?' → \\n;
    \\n{3,} → \\n\\n; ' ' and \\n trimmed at both ends. One reference step after the other, per document."""
    out = np.empty(u8.shape[0], np.uint8)
    a = np.empty(1024, np.uint8)
    b = np.empty(1024, np.uint8)
    oo = np.zeros(offs.shape[0], np.int64)
    k = 0
    for d in range(offs.shape[0] - 1):
        i, e = offs[d], offs[d + 1]
        if a.shape[0] < e - i:
            a = np.empty(e - i, np.uint8)
            b = np.empty(e - i, np.uint8)
        n = 0
        run = False
        while i < e:  # 1: space runs
            c, j = next_cp(u8, i)
            if c == 0x20 or c == 0x09 or c == 0xA0 or (c == 0x3000 and ideographic):
                if not run:
                    a[n] = 0x20
                    n += 1
                run = True
            else:
                run = False
                for q in range(i, j):
                    a[n] = u8[q]
                    n += 1
            i = j
        m = 0
        i = 0
        while i < n:  # 2: ' ?\n ?' → '\n' (no two spaces are adjacent any more)
            if a[i] == 0x20 and i + 1 < n and a[i + 1] == 0x0A:
                i += 1
                continue
            b[m] = a[i]
            m += 1
            if a[i] == 0x0A and i + 1 < n and a[i + 1] == 0x20:
                i += 1
            i += 1
        n = _squeeze_newlines(b, m, a, 0)  # 3
        s, t = 0, n  # 4: trim ' ' and '\n'
        while s < t and (a[s] == 0x20 or a[s] == 0x0A):
            s += 1
        while t > s and (a[t - 1] == 0x20 or a[t - 1] == 0x0A):
            t -= 1
        out[k:k + t - s] = a[s:t]
        k += t - s
        oo[d + 1] = k
    return out[:k], oo


@numba.njit(cache=True, nogil=True)
def dedup_paragraphs(u8, offs, min_chars, space):
    """clean.dedup_paragraphs per document: every later copy of a line whose stripped form (Python's
    str.strip, `space` flags its characters) has >= min_chars characters goes, then \\n{3,} → \\n\\n in the
    documents that lost a line. Returns (bytes, offsets, lines removed per document, needs-reference
    flags: two different lines with one hash, decided by the reference instead)."""
    nd = offs.shape[0] - 1
    out = np.empty(u8.shape[0], np.uint8)
    oo = np.zeros(nd + 1, np.int64)
    removed = np.zeros(nd, np.int64)
    collide = np.zeros(nd, np.bool_)
    cp = np.empty(1024, np.uint32)
    bstart = np.empty(1024, np.int64)  # byte offset of each code point, and one past the end
    tmp = np.empty(1024, np.uint8)
    k = 0
    for d in range(nd):
        e8 = offs[d + 1]
        if cp.shape[0] < e8 - offs[d] + 1:
            cp = np.empty(e8 - offs[d] + 1, np.uint32)
            bstart = np.empty(e8 - offs[d] + 1, np.int64)
            tmp = np.empty(e8 - offs[d], np.uint8)
        n = 0
        i = offs[d]
        while i < e8:
            bstart[n] = i
            cp[n], i = next_cp(u8, i)
            n += 1
        bstart[n] = e8
        seen = dict()
        seen[np.uint64(0)] = (np.int64(0), np.int64(0))  # typed: hash → (start, end) of the first copy
        del seen[np.uint64(0)]
        m = 0
        first = True
        start = 0
        while start <= n:
            end = start
            while end < n and cp[end] != 0x0A:
                end += 1
            s, t = strip(cp, start, end, space)
            drop = False
            if t - s >= min_chars:
                h = cp_hash(cp, s, t)
                if h in seen:
                    ps, pe = seen[h]
                    same = pe - ps == t - s
                    if same:
                        for q in range(t - s):
                            if cp[ps + q] != cp[s + q]:
                                same = False
                                break
                    if same:
                        drop = True
                    else:
                        collide[d] = True
                else:
                    seen[h] = (s, t)
            if drop:
                removed[d] += 1
            else:
                if not first:
                    tmp[m] = 0x0A
                    m += 1
                for q in range(bstart[start], bstart[end]):
                    tmp[m] = u8[q]
                    m += 1
                first = False
            start = end + 1
        if removed[d] == 0:  # untouched: the bytes as they were
            out[k:k + e8 - offs[d]] = u8[offs[d]:e8]
            k += e8 - offs[d]
        else:
            k = _squeeze_newlines(tmp, m, out, k)
        oo[d + 1] = k
    return out[:k], oo, removed, collide
