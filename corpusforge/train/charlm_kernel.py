"""The char n-gram LM's scoring loop compiled (numba): per predicted position, the same lookups and the
same float operations, in the same order, as CharLM._logprob_positions does with whole-array steps (an
open-addressing hash table per order stands in for its binary searches: it finds the same entries);
tests/unit/test_kernels.py checks the perplexities are bit-equal."""

from __future__ import annotations

import numba
import numpy as np

from corpusforge.algorithms.utf8 import decode


@numba.njit(cache=True, nogil=True, inline="always")
def _slot(q, mask):
    h = q ^ (q >> np.uint64(33))  # MurmurHash3's 64-bit finalizer
    h *= np.uint64(0xFF51AFD7ED558CCD)
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xC4CEB9FE1A85EC53)
    h ^= h >> np.uint64(33)
    return h & mask


@numba.njit(cache=True, nogil=True)
def hash_table(keys, values, offs):
    """Open-addressing tables, one per order (keys[offs[o]:offs[o+1]]), each a power of two at least
    twice its size, back to back: rows of 32 bytes (key, 1 = occupied, count | total << 32, types) from
    values (count, total, types), both 32-bit counts, so that a probe reads half a cache line; and the
    first row and the mask of each order."""
    norder = offs.shape[0] - 1
    start = np.zeros(norder + 1, np.int64)
    masks = np.zeros(norder, np.uint64)
    for o in range(norder):
        cap = 2
        while cap < 2 * (offs[o + 1] - offs[o]):
            cap *= 2
        start[o + 1] = start[o] + cap
        masks[o] = cap - 1
    tab = np.zeros((start[norder], 4), np.uint64)
    for o in range(norder):
        for j in range(offs[o], offs[o + 1]):
            s = _slot(keys[j], masks[o])
            while tab[start[o] + s, 1] != 0:
                s = (s + np.uint64(1)) & masks[o]
            r = start[o] + s
            tab[r, 0] = keys[j]
            tab[r, 1] = 1
            tab[r, 2] = values[j, 0] | (values[j, 1] << np.uint64(32))
            tab[r, 3] = values[j, 2]
    return tab, start, masks


@numba.njit(cache=True, nogil=True, inline="always")
def _find(tab, start, masks, o, q):
    """The row of q in order o's table, or -1."""
    s = _slot(q, masks[o])
    while True:
        r = start[o] + s
        if tab[r, 1] == 0:
            return -1
        if tab[r, 0] == q:
            return r
        s = (s + np.uint64(1)) & masks[o]


@numba.njit(cache=True, nogil=True)
def probabilities(u8, offs, max_chars, order, bits, p0, idmap, tab, tabf, start, mask, total1, types1, disc):
    """P(id_i | the order-1 ids before it) at every predicted position of every document (the first
    max_chars characters, then the boundary), documents back to back; and the positions per document.
    tab rows per order o: (key, occupied, count of the o-gram | its total as the context of order o + 1
    << 32, and its types there as float64 bits, which tabf views); the order-1 context is (total1,
    types1). The tables must be suffix-closed (CharLM._pack_tables): lookups stop at the first miss."""
    nd = offs.shape[0] - 1
    lengths = np.empty(nd, np.int64)
    for d in range(nd):
        chars = 0
        for i in range(offs[d], offs[d + 1]):
            chars += (u8[i] & 0xC0) != 0x80  # UTF-8 lead bytes
        lengths[d] = min(chars, max_chars) + 1
    p = np.empty(lengths.sum(), np.float64)
    hist = np.zeros(max(order, 1), np.uint64)  # hist[j]: the id j + 1 positions back (0 = boundary/pad)
    prev = np.empty(max(order, 1), np.int64)  # the rows of the previous position's grams
    rows = np.empty(max(order, 1), np.int64)
    pad = np.empty(max(order, 1), np.int64)
    for o in range(order):
        pad[o] = _find(tab, start, mask, o, np.uint64(0))  # the grams of boundaries only, before a document
    shift = np.uint64(bits)
    k = 0
    cp = np.empty(1024, np.uint32)
    for d in range(nd):
        hist[:] = 0
        prev[:] = pad
        if cp.shape[0] < lengths[d] - 1:
            cp = np.empty(lengths[d] - 1, np.uint32)
        decode(u8, offs[d], offs[d + 1], cp, lengths[d] - 1)
        for n in range(lengths[d]):
            x = np.uint64(idmap[cp[n]]) if n < lengths[d] - 1 else np.uint64(0)
            pr = p0
            key = x
            r = 0
            for o in range(order):  # order o + 1: the gram of the last o + 1 ids; its context, the last o before x
                if o > 0:
                    key = key | (hist[o - 1] << (shift * np.uint64(o)))
                if r >= 0:  # a miss at a lower order is a miss at every higher one (the tables are suffix-closed)
                    r = _find(tab, start, mask, o, key)
                rows[o] = r
                cnt = np.float64(tab[r, 2] & np.uint64(0xFFFFFFFF)) if r >= 0 else 0.0
                if o == 0:
                    total, types = total1, types1
                else:
                    c = prev[o - 1]
                    total = np.float64(tab[c, 2] >> np.uint64(32)) if c >= 0 else 0.0
                    types = tabf[c, 3] if c >= 0 else 0.0
                if total > 0:
                    dd = disc[o]
                    pr = (max(cnt - dd, 0.0) + dd * types * pr) / total
            p[k] = pr
            k += 1
            prev[:] = rows
            for j in range(order - 2, 0, -1):
                hist[j] = hist[j - 1]
            hist[0] = x
    return p, lengths
