"""Sensitive-word and ad-keyword hits marked in sample documents, with the run's own matchers
(sensitive_words and pangu_rules build them; defaults when the run had neither stage).

The matchers work on a skeleton of the text (rulepack.skeleton: lower case, punctuation and symbols
removed), so hits are found on the skeleton and mapped back to character spans of the original.
Every piece of text is html.escape()d; only the <mark> tags around escaped pieces are ours."""

from __future__ import annotations

import html

import pyarrow as pa

from corpusforge.algorithms.wordmatch import _ALLOW, words
from corpusforge.rulepack import skeleton


class Highlighter:
    def __init__(self, stages: list):
        from corpusforge.stages.pangu_rules import PanguRules
        from corpusforge.stages.sensitive import SensitiveWords

        by = {s.name: s for s in stages}
        sens = by.get("sensitive_words") or SensitiveWords(SensitiveWords.Params())
        ads = by.get("pangu_rules") or PanguRules(PanguRules.Params())
        sens.setup()
        ads.setup()
        self.matchers = [("sensitive", sens._m), ("ad", ads._ads)]

    def spans(self, text: str) -> list[tuple[int, int, str]]:
        """Non-overlapping (start, end, kind) character spans of hits in `text`."""
        if not text:
            return []
        chars = list(text)
        pieces = skeleton(pa.array(chars, pa.string())).to_pylist()
        sk, back = [], []  # skeleton characters and the original index each one came from
        for i, p in enumerate(pieces):
            for ch in p:
                sk.append(ch)
                back.append(i)
        sk = "".join(sk)
        # the ASCII-word form (wordmatch.words): " " + lower case, every run of other characters → " ", + " "
        wchars, wback, in_run = [" "], [-1], False
        for i, ch in enumerate(text):
            if ch.isascii() and ch.isalnum():
                wchars.append(ch.lower())
                wback.append(i)
                in_run = False
            elif not in_run:
                wchars.append(" ")
                wback.append(-1)
                in_run = True
        wd = "".join(wchars) + " "
        wback.append(-1)
        if wd != words(pa.array([text], pa.string()))[0].as_py():
            wd = ""  # never mark what the stage would not have counted
        found = []
        for kind, m in self.matchers:
            if m.automaton is not None and sk:
                for p, s, e in m.matches(sk):
                    if m._main_vals[p] != _ALLOW:
                        found.append((back[s], back[e - 1] + 1, kind))
            if m.ascii is not None and wd:
                for _p, s, e in m.matches(wd, ascii=True):
                    idx = [wback[k] for k in range(s, e) if wback[k] >= 0]
                    if e < len(wd) and wd[e] == " " and idx:
                        found.append((idx[0], idx[-1] + 1, kind))
        out, end = [], -1
        for s, e, kind in sorted(found):
            if s >= end:
                out.append((s, e, kind))
                end = e
        return out

    def html(self, text: str | None) -> str:
        if text is None:
            return ""
        parts, pos = [], 0
        for s, e, kind in self.spans(text):
            parts.append(html.escape(text[pos:s]))
            parts.append(f'<mark class="hit-{kind}" title="{kind} hit">{html.escape(text[s:e])}</mark>')
            pos = e
        parts.append(html.escape(text[pos:]))
        return "".join(parts)
