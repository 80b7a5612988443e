"""The model featurizer (corpusforge/models/featurize.py) compiled: units, bigrams, crc32 buckets and fastText
lines for a whole Arrow string array per call, straight from its UTF-8 buffer.

featurize.units() is the reference: NFKC + lower of each piece of the text, then a regex. NFKC and lower
are per-character maps except where characters interact (a combining mark or conjoining jamo composes with
the character before it; Σ lowers by context). So the tables map every code point whose normalization
cannot interact with its neighbour to the code points NFKC + lower give it alone; a document holding any
other code point in the part that is read (rare in Chinese text: decomposed accents, Hangul jamo, Greek
capital sigma) is flagged and featurized by the reference instead. The unit classes come from the
reference's own regex, character by character, so both paths cut the same units (tests/unit/test_kernels.py).
"""

from __future__ import annotations

import functools
import threading
import unicodedata

import numba
import numpy as np

from corpusforge.algorithms import tablecache
from corpusforge.algorithms.utf8 import arrow_utf8, decode, large_string_array, put
from corpusforge.models import featurize as ref

_SPACE, _LETTER, _DIGIT, _OTHER = 0, 1, 2, 3  # not a unit / [a-z]+ / [0-9]+ / a one-character unit
_N = 0x110000


@tablecache.cached
def tables() -> tuple[np.ndarray, ...]:
    """(map offsets, mapped code points, simple?, unit class, isdigit, wordish), each indexed by code point."""
    # Unassigned and private-use code points map to themselves, alone, and are not digits: skip the work
    unassigned = ref.in_categories(("Cn",))
    work = np.flatnonzero(~(unassigned | ref.in_categories(("Co",))))
    work = work[work > 0]
    chars = [chr(c) for c in work]
    # NUL between characters: a starter that composes with nothing, so NFKC of the joined string is the
    # NFKC of each character alone; lower() is per character but for Σ (excluded below)
    joined = "\x00".join(chars)
    nfkc = unicodedata.normalize("NFKC", joined).split("\x00")
    first = np.asarray([ord(s[0]) for s in unicodedata.normalize("NFKD", joined).split("\x00")], np.int64)
    seconds = {0x1161 + i for i in range(21)} | {0x11A8 + i for i in range(27)}  # Hangul V and T jamo
    for ch in chars:
        d = unicodedata.decomposition(ch)
        if d and d[0] != "<" and " " in d:
            seconds.add(int(d.split()[1], 16))
    ccc = np.zeros(_N, np.uint8)
    ccc[work] = np.fromiter(map(unicodedata.combining, chars), np.uint8, len(chars))
    simple = np.ones(_N, np.bool_)
    simple[work] = (ccc[first] == 0) & ~np.isin(first, np.fromiter(seconds, np.int64))
    simple[work[["Σ" in s for s in nfkc]]] = False
    simple[0xD800:0xE000] = False  # surrogates never occur in valid UTF-8
    # map: every code point to itself, but the work characters to NFKC + lower of themselves
    low = [s.lower() for s in nfkc]
    lens = np.ones(_N, np.int64)
    lens[work] = np.fromiter(map(len, low), np.int64, len(low))
    moff = np.zeros(_N + 1, np.int64)
    np.cumsum(lens, out=moff[1:])
    mcp = np.empty(int(moff[-1]), np.uint32)
    mcp[moff[:-1]] = np.arange(_N, dtype=np.uint32)
    wcp = np.frombuffer("".join(low).encode("utf-32-le", "surrogatepass"), np.uint32)
    wl = lens[work]
    mcp[np.repeat(moff[work], wl) + np.arange(len(wcp)) - np.repeat(np.cumsum(wl) - wl, wl)] = wcp
    # unit classes by the reference's regex (unassigned code points are units, private-use ones are not)
    cls = np.full(_N, _SPACE, np.uint8)
    cls[unassigned] = _OTHER
    cls[work[[m.start() for m in ref._unit_re().finditer("".join(chars))]]] = _OTHER  # a-z/0-9 runs: below
    cls[ord("a"):ord("z") + 1] = _LETTER
    cls[ord("0"):ord("9") + 1] = _DIGIT
    isdig = np.zeros(_N, np.bool_)
    isdig[work] = np.fromiter((ch.isdigit() for ch in chars), np.bool_, len(chars))
    wordish = ref.in_categories(ref._WORDISH)
    return moff, mcp, simple, cls, isdig, wordish


@numba.njit(cache=True, nogil=True)
def _units(u8, boffs, max_units, moff, mcp, simple, cls, isdig, wordish):
    """Per document the units' code points (numbers as "0"): (cps, unit offsets, doc → first unit, flagged)."""
    nd = boffs.shape[0] - 1
    cps = np.empty(max(1024, u8.shape[0]), np.uint32)
    uoff = np.empty(max(1024, u8.shape[0] + 1), np.int64)
    doc_u = np.zeros(nd + 1, np.int64)
    flagged = np.zeros(nd, np.bool_)
    raw = np.empty(1024, np.uint32)
    k = 0  # code points written
    nu = 0  # units written
    uoff[0] = 0
    for d in range(nd):
        blen = boffs[d + 1] - boffs[d]
        if raw.shape[0] < blen:
            raw = np.empty(blen, np.uint32)
        n = decode(u8, boffs[d], boffs[d + 1], raw)
        first_u, first_k = nu, k
        count = 0
        pos = 0
        full = False
        while count < max_units and pos < n and not full and not flagged[d]:
            end = min(pos + max_units, n)
            while end < n and wordish[raw[end]]:
                end += 1
            open_kind = _SPACE  # the kind of the unit being extended (letters or digits), if any
            for j in range(pos, end):
                r = raw[j]
                if not simple[r]:
                    flagged[d] = True
                    break
                for q in range(moff[r], moff[r + 1]):
                    m = mcp[q]
                    kind = cls[m]
                    if kind == _SPACE:
                        open_kind = _SPACE
                        continue
                    if (kind == _LETTER or kind == _DIGIT) and kind == open_kind:
                        if kind == _LETTER:  # a digit run stays the one "0" already written
                            if k >= cps.shape[0]:
                                cps = np.concatenate((cps, np.empty(cps.shape[0], np.uint32)))
                            cps[k] = m
                            k += 1
                        continue
                    if count == max_units:
                        full = True
                        break
                    count += 1
                    open_kind = kind if kind != _OTHER else _SPACE
                    if k >= cps.shape[0]:
                        cps = np.concatenate((cps, np.empty(cps.shape[0], np.uint32)))
                    cps[k] = 0x30 if (kind == _DIGIT or (kind == _OTHER and isdig[m])) else m
                    if nu + 2 >= uoff.shape[0]:
                        uoff = np.concatenate((uoff, np.empty(uoff.shape[0], np.int64)))
                    uoff[nu] = k
                    k += 1
                    nu += 1
                if full:
                    break
            pos = end
        if flagged[d]:
            nu, k = first_u, first_k
        doc_u[d + 1] = nu
        uoff[nu] = k
    return cps[:k], uoff[:nu + 1].copy(), doc_u, flagged

@numba.njit(cache=True, nogil=True, inline="always")
def utf8_len(c):
    return 1 if c < 0x80 else 2 if c < 0x800 else 3 if c < 0x10000 else 4

@numba.njit(cache=True, nogil=True)
def crc_update(reg, c, table, buf):
    n = put(c, buf, 0)
    for i in range(n):
        reg = table[(reg ^ buf[i]) & 0xFF] ^ (reg >> 8)
    return reg

@numba.njit(cache=True, nogil=True)
def _sort_unique(a, s, e, tmp, count, passes):
    """a[s:e] (values >= 0, < 256 ** passes) sorted ascending without repeats, in place; its new end. LSD
    radix sort by bytes: a document's ~1k indices sort several times faster than by comparisons."""
    n = e - s
    if n < 64:
        a[s:e] = np.sort(a[s:e])
    else:
        src, dst = a[s:e], tmp[:n]
        for p in range(passes):
            shift = 8 * p
            count[:] = 0
            for i in range(n):
                count[((src[i] >> shift) & 0xFF) + 1] += 1
            for b in range(256):
                count[b + 1] += count[b]
            for i in range(n):
                v = src[i]
                byte = (v >> shift) & 0xFF
                dst[count[byte]] = v
                count[byte] += 1
            src, dst = dst, src
        if passes % 2:
            a[s:e] = src
    m = s
    for i in range(s, e):
        if i == s or a[i] != a[m - 1]:
            a[m] = a[i]
            m += 1
    return m


@numba.njit(cache=True, nogil=True)
def _hashed(cps, uoff, doc_u, dim, table):
    """zlib.crc32 of each unit's and each adjacent pair's UTF-8, mod dim, sorted unique per document."""
    nd = doc_u.shape[0] - 1
    ptr = np.zeros(nd + 1, np.int64)
    ind = np.empty(2 * (doc_u[nd] - doc_u[0]), np.int64)
    buf = np.empty(4, np.uint8)
    tmp = np.empty(ind.shape[0], np.int64)
    count = np.zeros(257, np.int64)
    passes = 1
    while dim > 256 ** passes:
        passes += 1
    k = 0
    for d in range(nd):
        a, b = doc_u[d], doc_u[d + 1]
        start = k
        prev = np.uint32(0)
        for u in range(a, b):
            reg = np.uint32(0xFFFFFFFF)
            for q in range(uoff[u], uoff[u + 1]):
                reg = crc_update(reg, cps[q], table, buf)
            ind[k] = (reg ^ np.uint32(0xFFFFFFFF)) % dim
            k += 1
            if u > a:  # the bigram: crc32 of the previous unit continued over this one
                reg2 = prev
                for q in range(uoff[u], uoff[u + 1]):
                    reg2 = crc_update(reg2, cps[q], table, buf)
                ind[k] = (reg2 ^ np.uint32(0xFFFFFFFF)) % dim
                k += 1
            prev = reg
        if k > start:
            k = _sort_unique(ind, start, k, tmp, count, passes)
        ptr[d + 1] = k
    return ptr, ind[:k].copy()

@numba.njit(cache=True, nogil=True)
def _lines(cps, uoff, doc_u):
    """fastText input lines: units, then bigrams, space-separated, each line ending in "\\n" (UTF-8)."""
    nd = doc_u.shape[0] - 1
    size = 0
    for d in range(nd):
        a, b = doc_u[d], doc_u[d + 1]
        for u in range(a, b):
            w = 0
            for q in range(uoff[u], uoff[u + 1]):
                w += utf8_len(cps[q])
            size += 3 * (w + 1)  # the unit, and the (up to) two bigrams it is part of
        size += 1
    out = np.empty(size, np.uint8)
    offs = np.zeros(nd + 1, np.int64)
    i = 0
    for d in range(nd):
        a, b = doc_u[d], doc_u[d + 1]
        for u in range(a, b):
            if u > a:
                out[i] = 0x20
                i += 1
            for q in range(uoff[u], uoff[u + 1]):
                i = put(cps[q], out, i)
        for u in range(a + 1, b):
            out[i] = 0x20
            i += 1
            for q in range(uoff[u - 1], uoff[u + 1]):
                i = put(cps[q], out, i)
        out[i] = 0x0A
        i += 1
        offs[d + 1] = i
    return out[:i], offs

@numba.njit(cache=True, nogil=True)
def _same_text(old_u8, old_offs, u8, offs, rows):
    """For each row r with rows[r] >= 0: is its text byte-equal to old row rows[r]?"""
    out = np.zeros(rows.shape[0], np.bool_)
    for r in range(rows.shape[0]):
        o = rows[r]
        if o < 0:
            continue
        a, b, c = old_offs[o], old_offs[o + 1], offs[r]
        if b - a != offs[r + 1] - c:
            continue
        eq = True
        for i in range(b - a):
            if old_u8[a + i] != u8[c + i]:
                eq = False
                break
        out[r] = eq
    return out

@numba.njit(cache=True, nogil=True)
def _take(cps, uoff, doc_u, docs):
    nu = 0
    nc = 0
    for d in docs:
        nu += doc_u[d + 1] - doc_u[d]
        nc += uoff[doc_u[d + 1]] - uoff[doc_u[d]]
    out_cps = np.empty(nc, np.uint32)
    out_uoff = np.zeros(nu + 1, np.int64)
    out_doc = np.zeros(docs.shape[0] + 1, np.int64)
    k = 0
    j = 0
    for i in range(docs.shape[0]):
        d = docs[i]
        for u in range(doc_u[d], doc_u[d + 1]):
            for q in range(uoff[u], uoff[u + 1]):
                out_cps[k] = cps[q]
                k += 1
            j += 1
            out_uoff[j] = k
        out_doc[i + 1] = j
    return out_cps, out_uoff, out_doc


@functools.cache
def _crc_table() -> np.ndarray:
    t = np.zeros(256, np.uint32)
    for n in range(256):
        c = n
        for _ in range(8):
            c = (0xEDB88320 ^ (c >> 1)) if c & 1 else (c >> 1)
        t[n] = c
    return t


class Units:
    """The units of a batch: code points `cps`, unit boundaries `uoff`, document d's units doc_u[d]:doc_u[d+1]."""

    def __init__(self, cps: np.ndarray, uoff: np.ndarray, doc_u: np.ndarray):
        self.cps, self.uoff, self.doc_u = cps, uoff, doc_u

    def __len__(self) -> int:
        return len(self.doc_u) - 1

    @classmethod
    def of_lists(cls, docs: list[list[str]]) -> "Units":
        lens = [len(u) for d in docs for u in d]
        return cls(np.frombuffer("".join(u for d in docs for u in d).encode("utf-32-le"), np.uint32),
                   _offsets(np.asarray(lens, np.int64)), _offsets(np.asarray([len(d) for d in docs], np.int64)))

    def take(self, docs: np.ndarray) -> "Units":
        """The units of these documents, in this order."""
        return Units(*_take(self.cps, self.uoff, self.doc_u, np.asarray(docs, np.int64)))

    @staticmethod
    def concat(parts: list["Units"]) -> "Units":
        lens = np.concatenate([np.diff(p.uoff) for p in parts])
        per_doc = np.concatenate([np.diff(p.doc_u) for p in parts])
        return Units(np.concatenate([p.cps for p in parts]), _offsets(lens), _offsets(per_doc))


def _offsets(lens: np.ndarray) -> np.ndarray:
    out = np.zeros(len(lens) + 1, np.int64)
    np.cumsum(lens, out=out[1:])
    return out


_memo = threading.local()  # per thread: the last batch's (max_units, text buffers, id → row, units)


def batch_units(texts, max_units: int = ref.MAX_UNITS, ids=None) -> Units:
    """Units of every text of an Arrow string array (or list of str); flagged documents by the reference.
    With ids, rows whose id and exact text were in the previous call (same max_units) are reused."""
    import pyarrow as pa

    arr = texts if isinstance(texts, (pa.Array, pa.ChunkedArray)) else pa.array(texts, pa.string())
    u8, offs = arrow_utf8(arr)
    last = getattr(_memo, "last", None)
    if ids is None or last is None or last[0] != max_units:
        out = _compute(arr, u8, offs, max_units)
    else:
        _, old_u8, old_offs, rows, old = last
        hit = np.fromiter((rows.get(i, -1) for i in ids), np.int64, len(ids))
        hit[hit >= 0] = np.where(_same_text(old_u8, old_offs, u8, offs, hit), hit, -1)[hit >= 0]
        miss = np.flatnonzero(hit < 0)
        if not len(miss):
            out = old.take(hit)
        else:
            missed = arr.take(pa.array(miss))
            fresh = _compute(missed, *arrow_utf8(missed), max_units)
            both = Units.concat([old, fresh])
            hit[miss] = len(old) + np.arange(len(miss))
            out = both.take(hit)
    if ids is not None:
        _memo.last = (max_units, u8, offs, {i: r for r, i in enumerate(ids)}, out)
    return out


def _compute(arr, u8: np.ndarray, offs: np.ndarray, max_units: int) -> Units:
    cps, uoff, doc_u, flagged = _units(u8, offs, max_units, *tables())
    fast = Units(cps, uoff, doc_u)
    if not flagged.any():
        return fast
    bad = np.flatnonzero(flagged)
    slow = Units.of_lists([ref.units(arr[int(d)].as_py() or "", max_units) for d in bad])
    order = np.arange(len(fast))
    order[bad] = len(fast) + np.arange(len(bad))
    return Units.concat([fast, slow]).take(order)


def hashed_matrix(u: Units, dim: int):
    """CSR (indptr, indices, data) equal to featurize.hashed_matrix's."""
    ptr, ind = _hashed(u.cps, u.uoff, u.doc_u, dim, _crc_table())
    n = np.diff(ptr)
    return ptr, ind, np.repeat(1.0 / np.sqrt(np.maximum(n, 1).astype(np.float64)), n)


def fasttext_lines(u: Units) -> list[str]:
    """featurize.fasttext_line(text) + "\\n" for every document."""
    data, offs = _lines(u.cps, u.uoff, u.doc_u)
    return large_string_array(data, offs).to_pylist()
