"""Word-list matching with an Aho-Corasick automaton (pyahocorasick, C) over a text skeleton.

Terms and texts are reduced to the same skeleton (lower case; spaces, punctuation and symbols
removed), so `法*轮` and `法 轮` match `法轮`. Every term is also added in its traditional forms
(OpenCC s2t / s2tw / s2hk) and simplified form, so both scripts match without converting the text.
Allowlist phrases go into the same automaton: with leftmost-longest matching a longer allowed
phrase consumes the sensitive term inside it, and an allowed term equal to a listed term removes it.
"""

from __future__ import annotations

import ahocorasick
import numpy as np
import pyarrow as pa

import pyarrow.compute as pc

from corpusforge.stages.rulepack import Term, skeleton, skeleton_many

_ALLOW = -1
# Pure-ASCII terms (tnt, bt365) are matched separately on ASCII words: lower case, every run of
# other characters (Han included) → one space, and a hit needs word edges, so "tnt" never counts
# inside "contntx" while "bt365手机下载" still counts bt365.
_WORDS_SPLIT_RE = "[^A-Za-z0-9]+"


def words(texts: pa.Array) -> pa.Array:
    return pc.binary_join_element_wise(" ", pc.utf8_lower(pc.replace_substring_regex(texts, _WORDS_SPLIT_RE, " ")), " ", "")


class WordMatcher:
    def __init__(self, lists: dict[str, list[Term]], allow: list[Term] = (), variants: bool = True):
        convs = []
        if variants:
            import opencc

            convs = [opencc.OpenCC(f"{c}.json").convert for c in ("s2t", "s2tw", "s2hk", "t2s")]
        self.categories = sorted(lists)
        allow_texts = [t.text for t in allow]
        allowed = set(skeleton_many(allow_texts))
        self.automaton = ahocorasick.Automaton()
        self.ascii = ahocorasick.Automaton()
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
                    w = word_forms[j].rstrip()  # " tnt": the leading space is the left word edge
                    if w not in self.ascii:
                        self.ascii.add_word(w, ci)
                    continue
                for form in {f[j] for f in forms}:
                    if form not in self.automaton and form not in allowed:
                        self.automaton.add_word(form, (ci, len(form)))
        allow_forms = [skeleton_many(allow_texts)] + [skeleton_many([c(x) for x in allow_texts]) for c in convs]
        for j in range(len(allow_texts)):
            for form in {f[j] for f in allow_forms}:
                if form not in self.automaton:
                    self.automaton.add_word(form, (_ALLOW, len(form)))
        self.automaton.make_automaton()
        self.ascii.make_automaton()

    def count(self, texts: pa.Array) -> tuple[np.ndarray, list[int]]:
        """Per row: number of (leftmost-longest, non-overlapping) hits, and a bitmask of categories hit."""
        n = len(texts)
        hits = np.zeros(n, np.int64)
        masks = [0] * n
        if self.automaton.kind == ahocorasick.AHOCORASICK:
            it = self.automaton.iter_long
            for i, s in enumerate(skeleton(texts).to_pylist()):
                if not s:
                    continue
                h = m = 0
                for _end, (ci, _ln) in it(s):
                    if ci != _ALLOW:
                        h += 1
                        m |= 1 << ci
                hits[i], masks[i] = h, m
        if self.ascii.kind == ahocorasick.AHOCORASICK:
            # texts are " words ... " (a space at both ends); a term " tnt" needs a space after it too
            it = self.ascii.iter_long
            for i, s in enumerate(words(texts).to_pylist()):
                if s:
                    for end, ci in it(s):
                        if s[end + 1] == " ":
                            hits[i] += 1
                            masks[i] |= 1 << ci
        return hits, masks

    def names(self, mask: int) -> str:
        return ",".join(c for i, c in enumerate(self.categories) if mask >> i & 1)
