"""Minimal built-ins that exercise the machinery: a text normalizer (MapStage) and a sanity/length
filter (FilterStage). The PanGu-α cleaning stages build on the same API."""

from __future__ import annotations

import re
import unicodedata
from typing import ClassVar

import numpy as np
import pyarrow as pa

from corpusforge.schema import score_column
from corpusforge.stage import FilterStage, MapStage, Params, Verdict, register

# C0/C1 controls except \t and \n, zero-width characters, BOM, and U+FFFD.
_STRIP = dict.fromkeys([*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F, *range(0x80, 0xA0),
                        0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF, 0xFFFD])
_LINEBREAKS = re.compile("\r\n|[\r\u2028\u2029\u0085\u000b\u000c]")
_SPACES = re.compile(r"[ \t\u00a0\u3000]+")
_BLANKS = re.compile(r"\n{3,}")
# Full-width punctuation that is correct in Chinese text: NFKC would turn it into ASCII.
_ZH_PUNCT = re.compile("([\uff01\uff08\uff09\uff0c\uff1a\uff1b\uff1f\uff5e])")


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

    def normalize(self, text: str) -> str:
        text = _LINEBREAKS.sub("\n", text).translate(_STRIP)
        if self.params.nfkc:
            text = nfkc_keep_zh_punct(text)
        if not self.params.keep_ideographic_space:
            text = _SPACES.sub(" ", text)
        text = "\n".join(line.strip() for line in text.split("\n"))
        return _BLANKS.sub("\n\n", text).strip()

    def map(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        texts = batch.column("text").to_pylist()
        out = [self.normalize(t) for t in texts]
        removed = [len(a) - len(b) for a, b in zip(texts, out)]
        cols = {n: batch.column(n) for n in batch.schema.names}
        cols["text"] = pa.array(out, pa.string())
        cols[score_column(self.name, "chars_removed")] = pa.array(removed, pa.int64())
        return pa.RecordBatch.from_pydict(cols, schema=self.output_schema(batch.schema))


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
