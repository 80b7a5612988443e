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
def per_char(u8, offs, table, first):
    """Drops or folds each code point by the table; and per document the OR of `first` (regex_first's
    per-code-point rule bits) over the characters it keeps."""
    out = np.empty(u8.shape[0], np.uint8)
    oo = np.zeros(offs.shape[0], np.int64)
    bits = np.zeros(offs.shape[0] - 1, np.uint32)
    k = 0
    for d in range(offs.shape[0] - 1):
        i, e = offs[d], offs[d + 1]
        m = np.uint32(0)
        while i < e:
            c, i = next_cp(u8, i)
            t = table[c]
            if t == DROP:
                continue
            c = c if t == KEEP else np.uint32(t)
            m |= first[c]
            k = put(c, out, k)
        oo[d + 1] = k
        bits[d] = m
    return out[:k], oo, bits


@numba.njit(cache=True, nogil=True)
def collapse(u8, offs, ideographic):
    """basic.collapse_spaces in one pass per document: its four steps (space runs → ' '; ' ?\\n ?' → \\n;
    \\n{3,} → \\n\\n; ' ' and \\n trimmed) leave no space next to a line break, at most two line breaks
    in a row and neither at the ends, so a run of spaces and line breaks between two other characters
    becomes \\n\\n, \\n, ' ' or nothing. Bytewise: NBSP is C2 A0 and U+3000 E3 80 80, and a lead byte never
    follows inside a character."""
    out = np.empty(u8.shape[0], np.uint8)
    oo = np.zeros(offs.shape[0], np.int64)
    k = 0
    for d in range(offs.shape[0] - 1):
        i, e = offs[d], offs[d + 1]
        started = False
        space = False
        nl = 0
        while i < e:
            x = u8[i]
            w = 1 if x == 0x20 or x == 0x09 else 0
            if x == 0xC2 and i + 1 < e and u8[i + 1] == 0xA0:
                w = 2
            elif x == 0xE3 and ideographic and i + 2 < e and u8[i + 1] == 0x80 and u8[i + 2] == 0x80:
                w = 3
            if w:
                space = True
                i += w
                continue
            if x == 0x0A:
                nl += 1
                i += 1
                continue
            if started:
                if nl:
                    out[k] = 0x0A
                    k += 1
                    if nl >= 2:
                        out[k] = 0x0A
                        k += 1
                elif space:
                    out[k] = 0x20
                    k += 1
            started = True
            space = False
            nl = 0
            out[k] = x
            k += 1
            i += 1
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
    # hash → (start, end) of a line's first copy: open addressing, reused across documents
    hkey = np.zeros(64, np.uint64)
    hpos = np.zeros((64, 2), np.int64)
    used = np.zeros(64, np.bool_)
    k = 0
    for d in range(nd):
        e8 = offs[d + 1]
        lines = 1
        for i in range(offs[d], e8):
            lines += u8[i] == 0x0A
        if lines < 2:  # one line: nothing repeats
            out[k:k + e8 - offs[d]] = u8[offs[d]:e8]
            k += e8 - offs[d]
            oo[d + 1] = k
            continue
        cap = 64
        while cap < 2 * lines:
            cap *= 2
        if hkey.shape[0] < cap:
            hkey = np.zeros(cap, np.uint64)
            hpos = np.zeros((cap, 2), np.int64)
            used = np.zeros(cap, np.bool_)
        used[:cap] = False
        mask = np.uint64(cap - 1)
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
                slot = h & mask
                while used[slot] and hkey[slot] != h:
                    slot = (slot + np.uint64(1)) & mask
                if used[slot]:
                    ps, pe = hpos[slot, 0], hpos[slot, 1]
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
                    used[slot] = True
                    hkey[slot] = h
                    hpos[slot, 0] = s
                    hpos[slot, 1] = t
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
