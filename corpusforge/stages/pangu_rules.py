"""[pangu_rules] The PanGu-α rule filters, one reason each: too_short, low_zh_ratio, ads, navigation.

Navigation pages (menus, tables of contents, index pages) are recognised by the shape of their
lines, not by their words alone: many short lines, lines that are link lists (`首页 | 新闻 | 关于我们`),
TOC entries (`1.2.3. 标题`) or page furniture (上一页, 返回顶部), and little running prose.
docs/rules.md defines each feature and gives the values measured on ../shared/data/web/html/."""

from __future__ import annotations

import re
from typing import ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, ValidationError

from corpusforge.algorithms.wordmatch import WordMatcher
from corpusforge.yamlfile import format_error
from corpusforge.errors import CorpusforgeError
from corpusforge.rules_files import resolve
from corpusforge.stage import FilterStage, Params, Verdict, register
from corpusforge.rulepack import read_word_list, read_yaml


class Thresholds(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    min_chars: int
    min_zh_ratio: float
    ads_min_hits: int
    ads_min_density: float
    nav_min_lines: int
    nav_short_chars: int
    nav_max_prose_frac: float
    nav_min_short_frac: float
    nav_min_link_frac: float


# Chinese text = Han characters and Chinese punctuation (CJK symbols, full-width forms, curly quotes,
# dashes, ellipsis, middle dot); the ratio's denominator leaves out whitespace and ASCII digits,
# which are language-neutral (years in a history article are not "non-Chinese").
_ZH_RE = ("[\\p{Han}\\x{3000}-\\x{303f}\\x{ff01}-\\x{ff5e}\\x{2018}\\x{2019}\\x{201c}\\x{201d}"
          "\\x{2014}\\x{2026}\\x{b7}]")
# A prose line: a clause ends inside it or at its end (Chinese or ASCII sentence punctuation).
_PROSE_PUNCT = re.compile(r"[，。！？；,.!?;：]")
# Link lists and breadcrumbs: 2+ separators between short items.
_SEPARATORS = re.compile(r"\s[|｜/>»›·•]\s|[|｜»›•]|\s-\s")
# TOC entries: "1. ", "1.2.3. ", "A.1. ", "第三章" at the start of a short line. The trailing dot
# matters: encyclopedia section headings ("1 概况", "5.3 影响") are not TOC entries.
_TOC = re.compile(r"^(?:[0-9A-Z]{1,3}(?:\.[0-9]{1,3})*\.\s|第[0-9一二三四五六七八九十百]+[章节篇部回卷]|[（(][0-9一二三四五六七八九十]+[)）])")


def nav_features(text: str, short_chars: int, nav_terms: frozenset[str]) -> tuple[int, float, float, float]:
    """(non-empty lines, short-line share, link/TOC/furniture-line share, prose share of characters)."""
    lines = [ln.strip() for ln in text.split("\n")]
    lines = [ln for ln in lines if ln]
    if not lines:
        return 0, 0.0, 0.0, 0.0
    short = link = 0
    prose_chars = total_chars = 0
    for ln in lines:
        n = len(ln) - ln.count(" ")
        total_chars += n
        is_short = n < short_chars
        short += is_short
        if (len(_SEPARATORS.findall(ln)) >= 2 and n < 120) or (is_short and (_TOC.match(ln) or ln in nav_terms)):
            link += 1
        elif n >= short_chars and len(_PROSE_PUNCT.findall(ln)) >= 2:
            prose_chars += n
    k = len(lines)
    return k, short / k, link / k, prose_chars / max(total_chars, 1)


@register
class PanguRules(FilterStage):
    """Length, Chinese share, ad-keyword density and navigation-page shape (thresholds in rules/thresholds/)."""

    name = "pangu_rules"
    scores: ClassVar[dict[str, pa.DataType]] = {
        "chars": pa.int64(),
        "zh_ratio": pa.float64(),
        "ad_hits": pa.int64(),
        "ad_density": pa.float64(),  # hits per 1,000 characters
        "lines": pa.int64(),
        "short_line_frac": pa.float64(),
        "link_line_frac": pa.float64(),
        "prose_frac": pa.float64(),
    }
    rule_reasons = frozenset({"ads"})  # keyword lists; length, Chinese share and page shape are thresholds

    class Params(Params):
        thresholds: str = "thresholds/pangu.yaml"
        profile: str = "default"
        overrides: dict[str, float] = {}  # e.g. {min_chars: 200}: beats the profile
        ads: list[str] = ["ads/ad_keywords.txt", "ads/gambling_keywords.txt"]
        nav_terms: str = "nav/nav_terms.txt"


    def files(self) -> list[str]:
        return [resolve(p) for p in [self.params.thresholds, *self.params.ads, self.params.nav_terms]]

    def _load_thresholds(self) -> Thresholds:
        doc = read_yaml(self.params.thresholds)
        prof = doc.get(self.params.profile)
        if not isinstance(prof, dict):
            raise CorpusforgeError("bad_rule_file", f"{self.params.thresholds}: no profile {self.params.profile!r} (has {sorted(doc)})")
        try:
            return Thresholds(**{**prof, **self.params.overrides})
        except ValidationError as e:
            raise CorpusforgeError("bad_rule_file", f"{self.params.thresholds}: profile {self.params.profile}: {format_error(e)}") from None

    def setup(self) -> None:
        self.t = self._load_thresholds()
        self._ads = WordMatcher({"ads": [t for p in self.params.ads for t in read_word_list(p)]})
        self._nav_terms = frozenset(t.text for t in read_word_list(self.params.nav_terms))
        try:
            from corpusforge.algorithms.pangu_scan import Scanner
        except ImportError:  # no numba: score_reference
            self._scan = None
        else:
            self._scan = Scanner(_ZH_RE, self.t.nav_short_chars, self._nav_terms)
            self._scan(["预热"])  # loads the compiled kernel (see model_filters)

    def score(self, batch: pa.RecordBatch) -> dict[str, pa.Array]:
        """score_reference's columns, from one compiled scan of the batch (algorithms/pangu_scan.py)."""
        if self._scan is None:
            return self.score_reference(batch)
        texts = batch.column("text")
        ints, fracs = self._scan(texts)
        chars, zh, letters, lines = ints.T
        return self._columns(texts, chars, zh, letters, lines, *fracs.T)

    def score_reference(self, batch: pa.RecordBatch) -> dict[str, pa.Array]:
        texts = batch.column("text")
        chars = pc.utf8_length(pc.replace_substring_regex(texts, "\\s+", "")).to_numpy(zero_copy_only=False).astype(np.int64)
        zh = pc.count_substring_regex(texts, _ZH_RE).to_numpy(zero_copy_only=False).astype(np.int64)
        letters = pc.utf8_length(pc.replace_substring_regex(texts, "[\\s0-9]+", "")).to_numpy(zero_copy_only=False)
        feats = [nav_features(s, self.t.nav_short_chars, self._nav_terms) for s in texts.to_pylist()]
        lines, short, link, prose = (np.array(c) for c in zip(*feats)) if feats else ([],) * 4
        return self._columns(texts, chars, zh, letters, lines, short, link, prose)

    def _columns(self, texts, chars, zh, letters, lines, short, link, prose) -> dict[str, pa.Array]:
        denom = np.maximum(chars, 1)
        ad_hits, _ = self._ads.count(texts)
        return {
            "chars": pa.array(chars, pa.int64()),
            "zh_ratio": pa.array(zh / np.maximum(letters, 1), pa.float64()),  # 0 for empty texts, never NaN
            "ad_hits": pa.array(ad_hits, pa.int64()),
            "ad_density": pa.array(1000.0 * ad_hits / denom, pa.float64()),
            "lines": pa.array(lines, pa.int64()),
            "short_line_frac": pa.array(short, pa.float64()),
            "link_line_frac": pa.array(link, pa.float64()),
            "prose_frac": pa.array(prose, pa.float64()),
        }

    def decide(self, s: dict[str, np.ndarray]) -> Verdict:
        t = self.t
        n = len(s["chars"])
        reason = np.full(n, None, dtype=object)
        nav = ((s["lines"] >= t.nav_min_lines) & (s["prose_frac"] < t.nav_max_prose_frac)
               & ((s["short_line_frac"] >= t.nav_min_short_frac) | (s["link_line_frac"] >= t.nav_min_link_frac)))
        ads = (s["ad_hits"] >= t.ads_min_hits) & (s["ad_density"] >= t.ads_min_density)
        # One reason per document; later assignments win: too_short > navigation > ads > low_zh_ratio
        # (a TOC page is mostly short non-Chinese-looking lines; "navigation" says more about it).
        reason[s["zh_ratio"] < t.min_zh_ratio] = "low_zh_ratio"
        reason[ads] = "ads"
        reason[nav] = "navigation"
        reason[s["chars"] < t.min_chars] = "too_short"
        return Verdict(keep=np.equal(reason, None), reason=list(reason))
