"""[sensitive_words] Lexicon matching with an Aho-Corasick automaton (see algorithms/wordmatch.py):
symbol- and space-insensitive, simplified and traditional forms, with an allowlist. PanGu-α drops a
page with 3 or more hits of its ~724-word lexicon; the default lexicon here has ~1.2k terms."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pyarrow as pa

from corpusforge.algorithms.wordmatch import WordMatcher
from corpusforge.rules_files import resolve
from corpusforge.stage import FilterStage, Params, Verdict, register
from corpusforge.rulepack import read_word_list

DEFAULT_LISTS = {
    "political": "sensitive/political.txt",
    "porn": "sensitive/porn.txt",
    "violence": "sensitive/violence.txt",
    "weapons": "sensitive/weapons.txt",
}


@register
class SensitiveWords(FilterStage):
    """Counts lexicon hits per document; drops documents with `drop_at_hits` or more."""

    name = "sensitive_words"
    scores: ClassVar[dict[str, pa.DataType]] = {"hits": pa.int64(), "categories": pa.string()}
    rule_reasons = frozenset({"sensitive_words"})

    class Params(Params):
        lists: dict[str, str] = DEFAULT_LISTS  # category → word list
        allowlist: str | None = "sensitive/allowlist.txt"
        drop_at_hits: int = 3
        variants: bool = True  # also match traditional/simplified forms of every term


    def files(self) -> list[str]:
        paths = list(self.params.lists.values()) + ([self.params.allowlist] if self.params.allowlist else [])
        return [resolve(p) for p in paths]

    def setup(self) -> None:
        lists = {cat: read_word_list(p) for cat, p in self.params.lists.items()}
        allow = read_word_list(self.params.allowlist) if self.params.allowlist else []
        self._m = WordMatcher(lists, allow, variants=self.params.variants)

    def score(self, batch: pa.RecordBatch) -> dict[str, pa.Array]:
        hits, masks = self._m.count(batch.column("text"))
        names = {m: self._m.names(m) for m in set(masks)}
        return {"hits": pa.array(hits, pa.int64()), "categories": pa.array([names[m] for m in masks], pa.string())}

    def decide(self, scores: dict[str, np.ndarray]) -> Verdict:
        keep = scores["hits"] < self.params.drop_at_hits
        return Verdict(keep=keep, reason=[None if k else "sensitive_words" for k in keep])
