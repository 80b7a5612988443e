"""Word-list matching with an Aho-Corasick automaton over a text skeleton.

Library: ahocorasick-rs (Python binding of the Rust `aho-corasick` crate). Measured on the shared
Chinese text, one core, same skeletons and patterns: 108-154 MB/s leftmost-longest vs 18-19 MB/s for
pyahocorasick's iter_long (bench/bench_rules.py prints the "matcher only" line).

Terms and texts are reduced to the same skeleton (lower case; spaces, punctuation and symbols
removed), so `法*轮` and `法 轮` match `法轮`. Every term is also added in its traditional forms
(OpenCC s2t / s2tw / s2hk) and simplified form, so both scripts match without converting the text.
Allowlist phrases go into the same automaton: with leftmost-longest matching a longer allowed
phrase consumes the sensitive term inside it, and an allowed term equal to a listed term removes it.
"""

from __future__ import annotations

import ahocorasick_rs as acrs
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from corpusforge.rulepack import SKELETON_DROP_RE, Term, skeleton, skeleton_many

_ALLOW = -1
# Pure-ASCII terms (tnt, bt365) are matched separately on ASCII words: lower case, every run of
# other characters (Han included) → one space, and a hit needs word edges, so "tnt" never counts
# inside "contntx" while "bt365手机下载" still counts bt365.
_WORDS_SPLIT_RE = "[^A-Za-z0-9]+"


def words(texts: pa.Array) -> pa.Array:
    return pc.binary_join_element_wise(" ", pc.utf8_lower(pc.replace_substring_regex(texts, _WORDS_SPLIT_RE, " ")), " ", "")


def _text_forms():
    """(skeleton, words) of an Arrow array: compiled passes (equal to the Arrow ones, tests/unit/test_kernels.py),
    or Arrow's kernels without numba."""
    try:
        from corpusforge.algorithms import skeleton_scan as k

        k.table(SKELETON_DROP_RE)
    except ImportError:
        return skeleton, words
    return (lambda t: k.skeleton(t, SKELETON_DROP_RE)), k.words


_SEP = np.frombuffer(b"\n", np.uint8)  # in no pattern (a term is one line): no match spans two documents


def _find(automaton, arr: pa.Array):
    """(pattern, end byte, row, buffer) of every match in the rows of arr, searched as one buffer of the rows
    joined by _SEP: the leftmost-longest matches of each row alone, since none can contain _SEP."""
    from corpusforge.algorithms.utf8 import arrow_utf8, join

    u8, offs = arrow_utf8(arr)
    n = len(offs) - 1
    if not n:
        return
    buf = join(u8, offs, 0, n, _SEP)
    starts = offs[:-1] - offs[0] + np.arange(n)  # each row's first byte in buf
    found = automaton.find_matches_as_indexes(buf)
    if not found:
        return
    m = np.asarray(found, np.int64)
    rows = np.searchsorted(starts, m[:, 1], side="right") - 1
    for (p, _, end), d in zip(m.tolist(), rows.tolist()):
        yield p, end, d, buf


class WordMatcher:
    def __init__(self, lists: dict[str, list[Term]], allow: list[Term] = (), variants: bool = True):
        convs = []
        if variants:
            import opencc

            convs = [opencc.OpenCC(f"{c}.json").convert for c in ("s2t", "s2tw", "s2hk", "t2s")]
        self.categories = sorted(lists)
        allow_texts = [t.text for t in allow]
        allowed = set(skeleton_many(allow_texts))
        main: dict[str, int] = {}  # skeleton form → category index (or _ALLOW)
        ascii_words: dict[str, int] = {}
        self.terms = 0
        for ci, cat in enumerate(self.categories):
            texts = [t.text for t in lists[cat]]
            # one Arrow call per converter and list, not one per term
            forms = [skeleton_many(texts)] + [skeleton_many([c(x) for x in texts]) for c in convs]
            word_forms = words(pa.array(texts, pa.string())).to_pylist()
            for j, base in enumerate(forms[0]):
                if base in allowed:
                    continue
                self.terms += 1
                if base.isascii():
                    ascii_words.setdefault(word_forms[j].rstrip(), ci)  # " tnt": the leading space is the left edge
                    continue
                for form in {f[j] for f in forms}:
                    if form not in allowed:
                        main.setdefault(form, ci)
        allow_forms = [skeleton_many(allow_texts)] + [skeleton_many([c(x) for x in allow_texts]) for c in convs]
        for j in range(len(allow_texts)):
            for form in {f[j] for f in allow_forms}:
                main.setdefault(form, _ALLOW)
        self.patterns_list = list(main)
        self._main_vals = list(main.values())
        self.ascii_list, self._ascii_vals = list(ascii_words), list(ascii_words.values())
        kind = acrs.MatchKind.LeftmostLongest
        # over UTF-8 bytes, a whole batch per call (_find): a pattern's first byte is a lead byte, so its
        # matches start and end on character boundaries, as over str
        self.automaton = acrs.BytesAhoCorasick([p.encode("utf-8") for p in main], matchkind=kind) if main else None
        self.ascii = acrs.BytesAhoCorasick([p.encode("utf-8") for p in ascii_words], matchkind=kind) if ascii_words else None
        self.patterns = len(main) + len(ascii_words)
        self._forms = _text_forms()

    def count(self, texts: pa.Array) -> tuple[np.ndarray, list[int]]:
        """Per row: number of (leftmost-longest, non-overlapping) hits, and a bitmask of categories hit."""
        skeleton, words = self._forms
        n = len(texts)
        hits = np.zeros(n, np.int64)
        masks = [0] * n
        if self.automaton is not None:
            vals = self._main_vals
            for p, _end, d, _buf in _find(self.automaton, skeleton(texts)):
                ci = vals[p]
                if ci != _ALLOW:
                    hits[d] += 1
                    masks[d] |= 1 << ci
        if self.ascii is not None:
            # texts are " words ... " (a space at both ends); a term " tnt" needs a space after it too
            vals = self._ascii_vals
            for p, end, d, buf in _find(self.ascii, words(texts)):
                if buf[end] == 0x20:
                    hits[d] += 1
                    masks[d] |= 1 << vals[p]
        return hits, masks

    def matches(self, s: str, ascii: bool = False) -> list[tuple[int, int, int]]:
        """(pattern, start, end) in characters of one str, for the report's highlighting."""
        b = s.encode("utf-8")
        found = (self.ascii if ascii else self.automaton).find_matches_as_indexes(b)
        if not found:
            return []
        chars_before = np.zeros(len(b) + 1, np.int64)  # byte offset → characters before it
        np.cumsum((np.frombuffer(b, np.uint8) & 0xC0) != 0x80, out=chars_before[1:])
        return [(p, int(chars_before[a]), int(chars_before[e])) for p, a, e in found]

    def names(self, mask: int) -> str:
        return ",".join(c for i, c in enumerate(self.categories) if mask >> i & 1)
