"""Minimal built-ins that exercise the machinery: a text normalizer (MapStage) and a sanity/length
filter (FilterStage). The PanGu-α cleaning stages build on the same API."""

from __future__ import annotations

import re
import unicodedata
from typing import ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from corpusforge.schema import score_column
from corpusforge.stage import FilterStage, MapStage, Params, Verdict, register

# Vectorized with Arrow's RE2 kernels (no Python loop per document): C0/C1 controls except \t and \n,
# zero-width characters, BOM and U+FFFD go; every line-break variant becomes \n.
_STRIP_RE = "[\\x00-\\x08\\x0e-\\x1f\\x7f-\\x{9f}\\x{200b}-\\x{200d}\\x{2060}\\x{feff}\\x{fffd}]"
_LINEBREAK_RE = "\\r\\n|[\\r\\x{2028}\\x{2029}\\x{85}\\x0b\\x0c]"
# Full-width punctuation that is correct in Chinese text: NFKC would turn it into ASCII.
_ZH_PUNCT = re.compile("([\uff01\uff08\uff09\uff0c\uff1a\uff1b\uff1f\uff5e])")


def collapse_spaces(texts: pa.Array, keep_ideographic_space: bool = False) -> pa.Array:
    """Runs of spaces/tabs/NBSP (and U+3000 unless kept) → one space; no space around line breaks; at most
    one blank line; trimmed. The whitespace rule of normalize and clean."""
    spaces = "[ \\t\\x{a0}]+" if keep_ideographic_space else "[ \\t\\x{a0}\\x{3000}]+"
    t = pc.replace_substring_regex(texts, spaces, " ")
    t = pc.replace_substring_regex(t, " ?\n ?", "\n")
    t = pc.replace_substring_regex(t, "\n{3,}", "\n\n")
    return pc.utf8_trim(t, " \n")


def nfkc_keep_zh_punct(text: str) -> str:
    return "".join(p if i % 2 else unicodedata.normalize("NFKC", p) for i, p in enumerate(_ZH_PUNCT.split(text)))


@register
class Normalize(MapStage):
    """Remove control and zero-width characters, unify line breaks, collapse spaces; optional NFKC."""

    name = "normalize"

    class Params(Params):
        nfkc: bool = False  # full-width ASCII → half-width; Chinese punctuation (，！？：；（）～) is kept
        keep_ideographic_space: bool = False

    def output_schema(self, schema: pa.Schema) -> pa.Schema:
        return schema.append(pa.field(score_column(self.name, "chars_removed"), pa.int64()))

    def normalize(self, texts: pa.Array) -> pa.Array:
        t = pc.replace_substring_regex(texts, _LINEBREAK_RE, "\n")
        t = pc.replace_substring_regex(t, _STRIP_RE, "")
        if self.params.nfkc:
            t = pa.array([nfkc_keep_zh_punct(x) for x in t.to_pylist()], pa.string())
        return collapse_spaces(t, self.params.keep_ideographic_space)

    def map(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        texts = batch.column("text")
        out = self.normalize(texts)
        removed = pc.subtract(pc.utf8_length(texts), pc.utf8_length(out)).cast(pa.int64())
        arrays = [out if n == "text" else batch.column(n) for n in batch.schema.names] + [removed]
        return pa.RecordBatch.from_arrays(arrays, schema=self.output_schema(batch.schema))


# UTF-8 Chinese read as Latin-1/CP1252 yields runs like "æ–‡", "ä¸­": a lead byte char then continuation chars.
_MOJIBAKE = re.compile("[\u00c2-\u00ef][\u0080-\u00bf\u2018-\u203a\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u02c6\u02dc\u20ac]")


@register
class TextSanity(FilterStage):
    """Drops empty or too-short texts and suspected mojibake (UTF-8 decoded as Latin-1/CP1252)."""

    name = "text_sanity"
    scores: ClassVar[dict[str, pa.DataType]] = {"chars": pa.int64(), "mojibake_ratio": pa.float64()}

    class Params(Params):
        min_chars: int = 1
        max_mojibake_ratio: float = 0.05

    def score(self, batch: pa.RecordBatch) -> dict[str, pa.Array]:
        texts = batch.column("text").to_pylist()
        chars = [len(t) - t.count(" ") - t.count("\n") for t in texts]
        moji = [2 * len(_MOJIBAKE.findall(t)) / max(len(t), 1) for t in texts]
        return {"chars": pa.array(chars, pa.int64()), "mojibake_ratio": pa.array(moji, pa.float64())}

    def decide(self, scores: dict[str, np.ndarray]) -> Verdict:
        chars, moji = scores["chars"], scores["mojibake_ratio"]
        reason = np.full(len(chars), None, dtype=object)
        reason[moji > self.params.max_mojibake_ratio] = "mojibake_suspected"
        reason[chars < self.params.min_chars] = "too_short"
        reason[chars == 0] = "empty_text"
        return Verdict(keep=np.equal(reason, None), reason=list(reason))
