"""[clean] PanGu-α text normalization that keeps Chinese intact, plus removal of paragraphs repeated
within a page. Whole-batch Arrow RE2 kernels do the character work; Python only touches the rows
that need it (entities, full-width letters) and the per-page paragraph set."""

from __future__ import annotations

import html
import re
from typing import ClassVar, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from corpusforge.rules_files import resolve
from corpusforge.schema import score_column
from corpusforge.stage import MapStage, Params, register
from corpusforge.stages.basic import _LINEBREAK_RE, _STRIP_RE, collapse_spaces, nfkc_keep_zh_punct
from corpusforge.rulepack import read_regex_rules

# Beyond basic's controls/zero-width: every format character (bidi marks, soft hyphen, word joiners),
# private-use code points (icon fonts, mojibake of custom glyphs) and U+FFFD.
_FORMAT_PRIVATE_RE = "[\\p{Cf}\\p{Co}\\x{fffd}]"
_ENTITY = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")
_ENTITY_RE2 = "&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});"
# Full-width digits and Latin letters only: ，。！？：；（） are correct Chinese punctuation and stay.
_FW_ALNUM = {c: c - 0xFEE0 for r in ((0xFF10, 0xFF19), (0xFF21, 0xFF3A), (0xFF41, 0xFF5A)) for c in range(r[0], r[1] + 1)}
_FW_ALNUM_RE2 = "[\\x{ff10}-\\x{ff19}\\x{ff21}-\\x{ff3a}\\x{ff41}-\\x{ff5a}]"


def _unescape(t: str) -> tuple[str, int]:
    """Decode leftover entities (twice, for `&amp;nbsp;`); unknown names are left as they are."""
    n = 0
    for _ in range(2):
        new = _ENTITY.sub(lambda m: html.unescape(m.group(0)), t)
        if new == t:
            break
        n += 1
        t = new
    return t, n


def dedup_paragraphs(text: str, min_chars: int) -> tuple[str, int]:
    """Drops every later copy of a line seen earlier in the page (first one kept)."""
    seen: set[str] = set()
    out, removed = [], 0
    for line in text.split("\n"):
        key = line.strip()
        if len(key) >= min_chars:
            if key in seen:
                removed += 1
                continue
            seen.add(key)
        out.append(line)
    return ("\n".join(out), removed) if removed else (text, 0)


@register
class Clean(MapStage):
    """Normalize text for Chinese corpora; remove special characters by rule and repeated paragraphs."""

    name = "clean"
    columns: ClassVar[dict[str, pa.DataType]] = {
        "chars_removed": pa.int64(),  # characters removed or rewritten away, all steps together
        "entities": pa.int64(),  # rows where HTML entities were decoded (1) or not (0)
        "rule_hits": pa.int64(),  # matches of the rules/cleaning/ patterns
        "dup_paragraphs": pa.int64(),  # repeated paragraphs removed
    }

    class Params(Params):
        rules: list[str] = ["cleaning/zh_web.yaml"]
        # alnum: full-width digits/letters → ASCII (Chinese punctuation kept); nfkc: NFKC except
        # Chinese punctuation; none: leave widths alone.
        fullwidth: Literal["alnum", "nfkc", "none"] = "alnum"
        decode_entities: bool = True
        keep_ideographic_space: bool = False
        dedup_paragraphs: bool = True
        min_repeat_chars: int = 5  # shorter lines ("“唔。”", "是。") may legitimately repeat


    def files(self) -> list[str]:
        return [resolve(p) for p in self.params.rules]

    def setup(self) -> None:
        self._rules = [r for p in self.params.rules for r in read_regex_rules(p)]
        self._table = None
        if self.params.fullwidth != "nfkc":  # NFKC (Python's) keeps the reference path
            try:
                from corpusforge.algorithms import clean_scan, regex_first
            except ImportError:  # no numba
                return
            fold = tuple(_FW_ALNUM.items()) if self.params.fullwidth == "alnum" else ()
            self._table = clean_scan.char_table((_STRIP_RE, _FORMAT_PRIVATE_RE), fold)
            self._first = regex_first.first_table(tuple(r.pattern for r in self._rules))
            self.clean(pa.array(["预热 \r\n x"]))  # loads the compiled kernels (see model_filters)

    def output_schema(self, schema: pa.Schema) -> pa.Schema:
        for c, t in self.columns.items():
            schema = schema.append(pa.field(score_column(self.name, c), t))
        return schema

    def _python_rows(self, texts: pa.Array, regex: str, fn) -> tuple[pa.Array, np.ndarray]:
        """Applies fn only to rows matching regex; returns the new array and a 0/1 flag per row."""
        hit = pc.fill_null(pc.match_substring_regex(texts, regex), False).to_numpy(zero_copy_only=False)
        if not hit.any():
            return texts, hit.astype(np.int64)
        mask = pa.array(hit)  # only those rows become Python strings
        new = pa.array([fn(v) for v in texts.filter(mask).to_pylist()], texts.type)
        return pc.replace_with_mask(texts, mask, new), hit.astype(np.int64)

    def clean(self, texts: pa.Array) -> tuple[pa.Array, dict[str, np.ndarray]]:
        """clean_reference's text and counts, with the character and line steps compiled
        (algorithms/clean_scan.py) and each rule rewriting only the rows it matches."""
        if self._table is None or texts.null_count:
            return self.clean_reference(texts)
        from corpusforge.algorithms import clean_scan as k
        from corpusforge.algorithms.utf8 import arrow_utf8, large_string_array, string_array

        n = len(texts)
        t = large_string_array(*k.linebreaks(*arrow_utf8(texts)))
        ent = np.zeros(n, np.int64)
        if self.params.decode_entities:
            t, ent = self._python_rows(t, _ENTITY_RE2, lambda s: _unescape(s)[0])
        data, offs, bits = k.per_char(*arrow_utf8(t), self._table, self._first)
        t, hits = self._apply_rules(large_string_array(data, offs), bits)
        t = large_string_array(*k.collapse(*arrow_utf8(t), not self.params.keep_ideographic_space))
        dups = np.zeros(n, np.int64)
        if self.params.dedup_paragraphs:
            data, offs, dups, collide = k.dedup_paragraphs(*arrow_utf8(t), self.params.min_repeat_chars, k.py_space())
            if collide.any():  # two different lines with one hash somewhere: those documents by the reference
                vals = large_string_array(data, offs).to_pylist()
                for i in np.flatnonzero(collide):
                    vals[i], dups[i] = dedup_paragraphs(t[int(i)].as_py(), self.params.min_repeat_chars)
                    vals[i] = re.sub("\n{3,}", "\n\n", vals[i])
                t = pa.array(vals, pa.large_string())
            else:
                t = string_array(data, offs)
        return t if t.type == pa.string() else t.cast(pa.string()), {"entities": ent, "rule_hits": hits, "dup_paragraphs": dups}

    def _apply_rules(self, t: pa.Array, bits: np.ndarray) -> tuple[pa.Array, np.ndarray]:
        """The rules in order, each rewriting only the rows it matches (the same text as rewriting all:
        a replacement changes nothing where its pattern does not match). bits (per row, from per_char): rule k
        can begin a match with one of the row's characters; rule k scans only those rows. A rewrite keeps
        some of a row's characters and adds those of the replacement (its literal characters, or copies
        of matched ones): the row's bits gain the replacement's, and stay a superset."""
        from corpusforge.algorithms.regex_first import MAX_RULES

        n = len(t)
        hits = np.zeros(n, np.int64)
        bits = bits.copy()
        for j, r in enumerate(self._rules):
            rows = (bits & np.uint32(1 << j)).astype(bool) if j < MAX_RULES else np.ones(n, bool)
            if rows.all():
                c = pc.count_substring_regex(t, r.pattern).to_numpy(zero_copy_only=False)
            elif rows.any():
                idx = np.flatnonzero(rows)
                c = np.zeros(n, np.int64)
                c[idx] = pc.count_substring_regex(t.take(pa.array(idx)), r.pattern).to_numpy(zero_copy_only=False)
            else:
                continue
            if c.any():
                hits += c
                bits[c > 0] |= np.bitwise_or.reduce(self._first[[ord(ch) for ch in r.replace]], initial=np.uint32(0))
                mask = pa.array(c > 0)
                t = pc.replace_with_mask(t, mask, pc.replace_substring_regex(t.filter(mask), r.pattern, r.replace))
        return t, hits

    def clean_reference(self, texts: pa.Array) -> tuple[pa.Array, dict[str, np.ndarray]]:
        n = len(texts)
        t = pc.replace_substring_regex(texts, _LINEBREAK_RE, "\n")
        ent = np.zeros(n, np.int64)
        if self.params.decode_entities:
            t, ent = self._python_rows(t, _ENTITY_RE2, lambda s: _unescape(s)[0])
        t = pc.replace_substring_regex(t, _STRIP_RE, "")
        t = pc.replace_substring_regex(t, _FORMAT_PRIVATE_RE, "")
        if self.params.fullwidth == "alnum":
            t, _ = self._python_rows(t, _FW_ALNUM_RE2, lambda s: s.translate(_FW_ALNUM))
        elif self.params.fullwidth == "nfkc":
            t = pa.array([nfkc_keep_zh_punct(x) for x in t.to_pylist()], pa.string())
        hits = np.zeros(n, np.int64)
        for r in self._rules:
            c = pc.count_substring_regex(t, r.pattern).to_numpy(zero_copy_only=False)
            if c.any():
                hits += c
                t = pc.replace_substring_regex(t, r.pattern, r.replace)
        t = collapse_spaces(t, self.params.keep_ideographic_space)
        dups = np.zeros(n, np.int64)
        if self.params.dedup_paragraphs:
            vals = t.to_pylist()
            for i, v in enumerate(vals):
                vals[i], dups[i] = dedup_paragraphs(v, self.params.min_repeat_chars)
            if dups.any():
                t = pc.replace_substring_regex(pa.array(vals, pa.string()), "\n{3,}", "\n\n")
        return t, {"entities": ent, "rule_hits": hits, "dup_paragraphs": dups}

    def map(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        texts = batch.column("text")
        out, cols = self.clean(texts)
        removed = pc.subtract(pc.utf8_length(texts), pc.utf8_length(out)).cast(pa.int64())
        arrays = [out if n == "text" else batch.column(n) for n in batch.schema.names]
        arrays += [removed] + [pa.array(cols[c], pa.int64()) for c in ("entities", "rule_hits", "dup_paragraphs")]
        return pa.RecordBatch.from_arrays(arrays, schema=self.output_schema(batch.schema))
