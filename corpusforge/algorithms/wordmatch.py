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
        self._ascii_vals = list(ascii_words.values())
        kind = acrs.MatchKind.LeftmostLongest
        self.automaton = acrs.AhoCorasick(list(main), matchkind=kind) if main else None
        self.ascii = acrs.AhoCorasick(list(ascii_words), matchkind=kind) if ascii_words else None
        self.patterns = len(main) + len(ascii_words)
        self._forms = _text_forms()

    def count(self, texts: pa.Array) -> tuple[np.ndarray, list[int]]:
        """Per row: number of (leftmost-longest, non-overlapping) hits, and a bitmask of categories hit."""
        skeleton, words = self._forms
        n = len(texts)
        hits = np.zeros(n, np.int64)
        masks = [0] * n
        if self.automaton is not None:
            find, vals = self.automaton.find_matches_as_indexes, self._main_vals
            for i, s in enumerate(skeleton(texts).to_pylist()):
                if s:
                    h = m = 0
                    for p, _start, _end in find(s):
                        ci = vals[p]
                        if ci != _ALLOW:
                            h += 1
                            m |= 1 << ci
                    hits[i], masks[i] = h, m
        if self.ascii is not None:
            # texts are " words ... " (a space at both ends); a term " tnt" needs a space after it too
            find, vals = self.ascii.find_matches_as_indexes, self._ascii_vals
            for i, s in enumerate(words(texts).to_pylist()):
                if s:
                    for p, _start, end in find(s):
                        if s[end] == " ":
                            hits[i] += 1
                            masks[i] |= 1 << vals[p]
        return hits, masks

    def names(self, mask: int) -> str:
        return ",".join(c for i, c in enumerate(self.categories) if mask >> i & 1)
