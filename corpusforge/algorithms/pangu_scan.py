"""pangu_rules' per-document scans compiled (numba), one pass over the Arrow UTF-8 buffer per batch: the
character counts (non-space, Chinese, non-space non-digit) and the navigation-shape features of
stages/pangu_rules.py's reference (Arrow RE2 counts and `nav_features`). Character classes are taken
from the reference's own engines, character by character — RE2 for the counts, Python's `str.isspace`
for strip() and the regexes' \\s — and the TOC regex is matched by hand (its parts are disjoint character
sets, so it needs no backtracking); tests/unit/test_kernels.py compares every feature on real and
adversarial text."""

from __future__ import annotations


import numba
import numpy as np

from corpusforge.algorithms import cpstrings, tablecache
from corpusforge.algorithms.clean_scan import py_space, strip
from corpusforge.algorithms.utf8 import arrow_utf8, decode, every_code_point

_N = 0x110000
# flag bits per code point
PY_SPACE, RE2_SPACE, ZH, SEP1, SEP2, PROSE, TOC_HEAD, CN_NUM, CN_NUM_BAI, CHAPTER, OPEN, CLOSE = (1 << i for i in range(12))


def _set(flags, chars: str, bit: int) -> None:
    flags[[ord(c) for c in chars]] |= bit


@tablecache.cached
def flags(zh_re: str) -> np.ndarray:
    import pyarrow.compute as pc

    f = np.zeros(_N, np.uint16)
    valid, every = every_code_point()
    f[valid[np.asarray(pc.match_substring_regex(every, zh_re))]] |= ZH
    f[valid[np.asarray(pc.match_substring_regex(every, "\\s"))]] |= RE2_SPACE
    f[py_space()] |= PY_SPACE
    _set(f, "|｜/>»›·•", SEP1)
    _set(f, "|｜»›•", SEP2)
    _set(f, "，。！？；,.!?;：", PROSE)
    _set(f, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", TOC_HEAD)
    _set(f, "0123456789一二三四五六七八九十", CN_NUM)
    _set(f, "0123456789一二三四五六七八九十百", CN_NUM_BAI)
    _set(f, "章节篇部回卷", CHAPTER)
    _set(f, "（(", OPEN)
    _set(f, ")）", CLOSE)
    return f


@numba.njit(cache=True, nogil=True, inline="always")
def _digits(cp, i, e):
    j = i
    while j < e and 0x30 <= cp[j] <= 0x39:
        j += 1
    return j - i


@numba.njit(cache=True, nogil=True)
def _toc(cp, s, e, f):
    """_TOC.match on the line cp[s:e]: "1.2.3. ", "A.1. ", "第三章", "（二）"."""
    j = s
    while j < e and f[cp[j]] & TOC_HEAD:
        j += 1
    if 1 <= j - s <= 3:  # [0-9A-Z]{1,3} then (\.[0-9]{1,3})* \. \s
        while j < e and cp[j] == 0x2E:
            if j + 1 < e and f[cp[j + 1]] & PY_SPACE:
                return True
            d = _digits(cp, j + 1, e)
            if not 1 <= d <= 3:
                break
            j += 1 + d
    if cp[s] == 0x7B2C:  # 第[0-9一…十百]+[章节篇部回卷]
        j = s + 1
        while j < e and f[cp[j]] & CN_NUM_BAI:
            j += 1
        if j > s + 1 and j < e and f[cp[j]] & CHAPTER:
            return True
    if f[cp[s]] & OPEN:  # [（(][0-9一…十]+[)）]
        j = s + 1
        while j < e and f[cp[j]] & CN_NUM:
            j += 1
        if j > s + 1 and j < e and f[cp[j]] & CLOSE:
            return True
    return False


@numba.njit(cache=True, nogil=True)
def _separators(cp, s, e, f):
    """len(_SEPARATORS.findall(line)): \\s[|｜/>»›·•]\\s | [|｜»›•] | \\s-\\s, leftmost, non-overlapping."""
    n = 0
    i = s
    while i < e:
        if i + 2 < e and f[cp[i]] & PY_SPACE and f[cp[i + 2]] & PY_SPACE and (f[cp[i + 1]] & SEP1 or cp[i + 1] == 0x2D):
            n += 1
            i += 3
        elif f[cp[i]] & SEP2:
            n += 1
            i += 1
        else:
            i += 1
    return n


@numba.njit(cache=True, nogil=True)
def scan(u8, offs, f, space, short_chars, tcps, toff, tslots):
    """Per document: chars, zh, letters, lines, short-line share, link-line share, prose share."""
    nd = offs.shape[0] - 1
    ints = np.zeros((nd, 4), np.int64)
    fracs = np.zeros((nd, 3), np.float64)
    cp = np.empty(1024, np.uint32)
    for d in range(nd):
        if cp.shape[0] < offs[d + 1] - offs[d]:
            cp = np.empty(offs[d + 1] - offs[d], np.uint32)
        n = decode(u8, offs[d], offs[d + 1], cp)
        chars = zh = letters = 0
        for j in range(n):
            fl = f[cp[j]]
            if not fl & RE2_SPACE:
                chars += 1
                letters += not (0x30 <= cp[j] <= 0x39)
            zh += (fl & ZH) != 0
        lines = short = link = prose_chars = total_chars = 0
        start = 0
        while start <= n:
            end = start
            while end < n and cp[end] != 0x0A:
                end += 1
            s, e = strip(cp, start, end, space)
            if e > s:
                lines += 1
                k = e - s
                for j in range(s, e):
                    k -= cp[j] == 0x20
                total_chars += k
                is_short = k < short_chars
                short += is_short
                if (k < 120 and _separators(cp, s, e, f) >= 2) or (
                        is_short and (_toc(cp, s, e, f) or cpstrings.find(cp, s, e, tcps, toff, tslots) >= 0)):
                    link += 1
                elif not is_short:
                    punct = 0
                    for j in range(s, e):
                        punct += (f[cp[j]] & PROSE) != 0
                    if punct >= 2:
                        prose_chars += k
            start = end + 1
        ints[d, 0], ints[d, 1], ints[d, 2], ints[d, 3] = chars, zh, letters, lines
        if lines:
            fracs[d, 0] = short / lines
            fracs[d, 1] = link / lines
            fracs[d, 2] = prose_chars / max(total_chars, 1)
    return ints, fracs


class Scanner:
    def __init__(self, zh_re: str, short_chars: int, nav_terms):
        self.f = flags(zh_re)
        self.short_chars = short_chars
        self.terms = cpstrings.table(sorted(nav_terms))

    def __call__(self, texts):
        return scan(*arrow_utf8(texts), self.f, py_space(), self.short_chars, *self.terms)
