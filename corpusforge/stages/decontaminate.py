"""[decontaminate] Benchmark contamination (GPT-3 §4, which used word 13-grams): a document sharing a
character n-gram, after the dedup normalization (NFKC, lowercase, whitespace and punctuation dropped:
algorithms/minhash.py), with an item of an evaluation file is dropped (`mode: drop`) or has the overlapping
spans cut out (`mode: strip`). The default n is measured on unrelated real text: docs/rules.md (decontaminate)
and bench/decontam_ngram.py. Each field of an item is indexed on its own (no gram spans two fields); a field
shorter than n cannot be matched and an item with no field of n characters is unchecked (index_stats())."""

from __future__ import annotations

import json
import os
import re
from typing import ClassVar, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from corpusforge.algorithms.minhash import normalize_codepoints, shingle_hashes
from corpusforge.errors import CorpusforgeError
from corpusforge.rules_files import resolve
from corpusforge.schema import score_column
from corpusforge.stage import FilterStage, MapStage, Params, Verdict, register

# The smallest n with no false hit on all of ../shared/data is 24 (a 23-character stock clause, a named
# event, is shared by one item and Wikipedia); +2 margin. Measured by bench/decontam_ngram.py: docs/rules.md.
DEFAULT_N = 26
_FORMATS = {".jsonl": "jsonl", ".json": "jsonl", ".parquet": "parquet", ".txt": "text", ".text": "text"}
_NAME = re.compile(r"^[\w.-]+$")  # no ',', '#', ':' (they separate item keys, items and reasons)


class EvalFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str
    fields: list[str] = ["text"]  # text fields of a record; ignored by format text (one item a line)
    format: Literal["jsonl", "parquet", "text"] | None = None  # default: from the extension
    name: str | None = None  # default: the file name without its extension

    @model_validator(mode="after")
    def _check(self):
        from corpusforge.io import fs

        if not fs.is_remote(self.path):
            try:  # a missing local file fails at config build time, one line naming it
                resolve(self.path)
            except CorpusforgeError as e:
                raise ValueError(e.message) from None
        if self.format is None and os.path.splitext(self.path)[1].lower() not in _FORMATS:
            raise ValueError(f"{self.path}: cannot tell the format from the extension; set format: jsonl|parquet|text")
        if not _NAME.match(self.eval_name):
            raise ValueError(f"{self.path}: eval name {self.eval_name!r} may hold only letters, digits, '_', '.', '-'; set name")
        if self.eval_format == "text" and self.fields != ["text"]:
            raise ValueError(f"{self.path}: format text has one item a line and no fields")
        return self

    @property
    def eval_name(self) -> str:
        return self.name or os.path.splitext(os.path.basename(self.path))[0]

    @property
    def eval_format(self) -> str:
        return self.format or _FORMATS[os.path.splitext(self.path)[1].lower()]


def read_items(ev: EvalFile) -> list[list[str]]:
    """The items of one evaluation file, each a list of its text fields; CorpusforgeError naming the file."""
    path = resolve(ev.path)
    try:
        if ev.eval_format == "parquet":
            import pyarrow.parquet as pq

            t = pq.read_table(path, columns=ev.fields)
            cols = [t.column(f).cast(pa.string()).to_pylist() for f in ev.fields]
            items = [[v or "" for v in row] for row in zip(*cols)]
        else:
            with open(path, encoding="utf-8") as f:
                lines = [(i, ln) for i, ln in enumerate(f, 1) if ln.strip()]
            items = [[ln.rstrip("\n")] for _, ln in lines] if ev.eval_format == "text" else []
            for i, ln in lines if ev.eval_format == "jsonl" else ():
                try:
                    rec = json.loads(ln)
                except ValueError as e:
                    raise ValueError(f"line {i} is not JSON ({e})") from None
                missing = [k for k in ev.fields if not isinstance(rec, dict) or k not in rec]
                if missing:
                    raise ValueError(f"line {i} has no field {missing[0]!r}")
                items.append([str(rec[k]) if rec[k] is not None else "" for k in ev.fields])
        if not items:
            raise ValueError("no items")
        return items
    except (OSError, UnicodeDecodeError, ValueError, KeyError, pa.ArrowException) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise CorpusforgeError("bad_eval_file", f"{ev.path}: {msg}") from None


class EvalIndex:
    """Sorted 64-bit n-gram hashes of every indexed field, each with the items it occurs in (CSR) and one
    occurrence in the normalized eval text, against which every hit is verified code point by code point
    (so a hash collision never counts as contamination)."""

    def __init__(self, names: list[str], files: list[list[list[str]]], n: int):
        self.n, self.names = n, names
        texts, owner, self.item_file, self.item_row = [], [], [], []
        for fi, items in enumerate(files):
            for r, fields in enumerate(items):
                texts += fields
                owner += [len(self.item_file)] * len(fields)
                self.item_file.append(fi)
                self.item_row.append(r)
        self.item_file, self.item_row = np.array(self.item_file, np.int64), np.array(self.item_row, np.int64)
        self.cp, offs = normalize_codepoints(texts)
        lens, owner = np.diff(offs), np.array(owner, np.int64)
        h, fld = shingle_hashes(self.cp, offs, n)
        long = lens[fld] >= n  # shingle_hashes makes a field shorter than n one whole-field shingle: not an n-gram
        h, fld = h[long], fld[long]
        start = offs[fld] + (np.arange(len(fld)) - np.searchsorted(fld, fld))  # window start in self.cp
        order = np.lexsort((owner[fld], h))
        h, item, start = h[order], owner[fld][order], start[order]
        pair = np.r_[True, (h[1:] != h[:-1]) | (item[1:] != item[:-1])]
        h, item, start = h[pair], item[pair], start[pair]
        first = np.r_[True, h[1:] != h[:-1]]
        self.keys, self.at = h[first], start[first]
        self.ptr = np.r_[np.flatnonzero(first), len(h)].astype(np.int64)
        self.items = item
        checked = np.zeros(len(self.item_file), bool)
        checked[item] = True
        self.unchecked = np.bincount(self.item_file[~checked], minlength=len(names))
        self.total = np.bincount(self.item_file, minlength=len(names))

    def item_key(self, i: int) -> str:
        return f"{self.names[self.item_file[i]]}#{self.item_row[i]}"

    def windows(self, texts) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Every verified window of `texts` found in the index: (doc, normalized start, key index), and
        the batch's normalized code points and offsets."""
        cp, offs = normalize_codepoints(texts)
        h, doc = shingle_hashes(cp, offs, self.n)
        if not len(self.keys) or not len(h):
            z = np.zeros(0, np.int64)
            return z, z, z, cp, offs
        k = np.minimum(np.searchsorted(self.keys, h), len(self.keys) - 1)
        hit = np.flatnonzero(self.keys[k] == h)
        d, k = doc[hit], k[hit]
        pos = hit - np.searchsorted(doc, d)  # the i-th window of a document starts at its i-th code point
        ok = np.diff(offs)[d] >= self.n
        span = np.arange(self.n)
        ok[ok] = (cp[(offs[d] + pos)[ok, None] + span] == self.cp[self.at[k][ok, None] + span]).all(axis=1)
        return d[ok], pos[ok], k[ok], cp, offs

    def doc_items(self, doc: np.ndarray, k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Unique (doc, item) pairs of the hit windows, sorted by doc then item (= config order)."""
        cnt = self.ptr[k + 1] - self.ptr[k]
        rep = np.repeat(np.arange(len(k)), cnt)
        within = np.arange(len(rep)) - np.repeat(np.cumsum(cnt) - cnt, cnt)
        pairs = np.unique(doc[rep] * len(self.item_file) + self.items[self.ptr[k][rep] + within])
        return pairs // len(self.item_file), pairs % len(self.item_file)

    def scores(self, texts, ndocs: int):
        """(hits per doc, item keys per doc: "name#row,..." or None, windows as from windows())."""
        w = self.windows(texts)
        d, it = self.doc_items(w[0], w[2])
        hits = np.bincount(d, minlength=ndocs).astype(np.int64)
        keys = [None] * ndocs
        cuts = np.flatnonzero(np.r_[True, d[1:] != d[:-1], True]) if len(d) else []
        for lo, hi in zip(cuts[:-1], cuts[1:]):  # Python only for the documents that hit
            keys[d[lo]] = ",".join(self.item_key(i) for i in it[lo:hi])
        return hits, keys, w


class _Decontaminate:
    """What both modes share: parameters, files, the index, the hit list."""

    name = "decontaminate"
    version = 1

    class Params(Params):
        evals: list[EvalFile] = Field(min_length=1)
        n: int = Field(DEFAULT_N, ge=4, le=64)  # char n-gram length after normalization
        mode: Literal["drop", "strip"] = "drop"

        @field_validator("evals")
        @classmethod
        def _distinct(cls, v):
            names = [e.eval_name for e in v]
            dup = sorted({x for x in names if names.count(x) > 1})
            if dup:
                raise ValueError(f"two evaluation files are named {dup[0]!r}; give them distinct `name`s")
            return v

    def files(self) -> list[str]:
        return [resolve(e.path) for e in self.params.evals]

    def setup(self) -> None:
        p = self.params
        self._index = EvalIndex([e.eval_name for e in p.evals], [read_items(e) for e in p.evals], p.n)

    def index_stats(self) -> dict[str, dict[str, int]]:
        """Per evaluation file: items, and items with no field of n normalized characters (never matched)."""
        ix = self._index
        return {nm: {"items": int(t), "unchecked": int(u)} for nm, t, u in zip(ix.names, ix.total, ix.unchecked)}

    def plan_fixes(self) -> dict[str, int]:
        """`unchecked:<eval>`: items no document can hit at this n, in the manifest beside the hit list."""
        if not hasattr(self, "_index"):  # the driver of a cluster engine never set the stage up
            self.setup()
        return {f"unchecked:{nm}": v["unchecked"] for nm, v in sorted(self.index_stats().items()) if v["unchecked"]}

    @property
    def rule_reasons(self) -> frozenset[str]:  # an eval file dropping most of a part is a bad file: the guard stops
        return frozenset(e.eval_name for e in self.params.evals)

    def fix_counts(self, batch: pa.RecordBatch) -> dict[str, int]:
        """The hit list: `hit:<eval>#<row>` and `hit:<eval>` count documents (one per document and key)."""
        col = batch.column(score_column(self.name, "items"))
        out: dict[str, int] = {}
        for keys in pc.drop_null(col).to_pylist():
            items = keys.split(",")
            for key in items + sorted({k.split("#", 1)[0] for k in items}):
                out[f"hit:{key}"] = out.get(f"hit:{key}", 0) + 1
        if score_column(self.name, "stripped_chars") in batch.schema.names:
            out["stripped_chars"] = int(pc.sum(batch.column(score_column(self.name, "stripped_chars"))).as_py() or 0)
        return out


@register
class Decontaminate(_Decontaminate, FilterStage):
    """Evaluation-set overlap by char n-grams: drop (FilterStage), or with mode: strip cut the spans (MapStage)."""

    scores: ClassVar[dict[str, pa.DataType]] = {"hits": pa.int64(), "items": pa.string()}

    def __new__(cls, params=None, *args, **kwargs):
        # one `use: decontaminate`, two stage kinds: the mode picks the class; unpickling calls __new__(cls)
        if params is not None and getattr(params, "mode", "drop") == "strip":
            return DecontaminateStrip(params)
        return super().__new__(cls)

    def score(self, batch: pa.RecordBatch) -> dict[str, pa.Array]:
        hits, keys, _ = self._index.scores(batch.column("text"), batch.num_rows)
        return {"hits": pa.array(hits, pa.int64()), "items": pa.array(keys, pa.string())}

    def decide(self, scores: dict[str, np.ndarray]) -> Verdict:
        keep = scores["hits"] == 0
        # the reason names the first evaluation file (config order) the document overlaps; all are in the hit list
        return Verdict(keep=keep, reason=[None if k else s.split("#", 1)[0] for k, s in zip(keep, scores["items"])])


class DecontaminateStrip(_Decontaminate, MapStage):
    """mode: strip. The original characters owning each matched normalized window are cut (with what the
    normalization dropped between them), and the result is checked again until nothing matches, so a cut
    that joins two halves into a new eval n-gram is cut too: no document leaves contaminated."""

    scores: ClassVar[dict[str, pa.DataType]] = {"hits": pa.int64(), "items": pa.string(), "stripped_chars": pa.int64()}

    output_schema = FilterStage.output_schema  # its score columns, appended as a filter's are

    def map(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        hits, keys, w = self._index.scores(batch.column("text"), batch.num_rows)
        cut = np.zeros(batch.num_rows, np.int64)
        col = batch.column("text")
        todo = np.flatnonzero(hits)
        if len(todo):
            texts = col.to_pylist()
            for i in todo:
                new = self._strip_until_clean(texts[i], w, i)
                cut[i] = len(texts[i]) - len(new)
                texts[i] = new
            col = pa.array(texts, col.type)
        arrays = [col if f.name == "text" else batch.column(j) for j, f in enumerate(batch.schema)]
        arrays += [pa.array(hits, pa.int64()), pa.array(keys, pa.string()), pa.array(cut, pa.int64())]
        return pa.RecordBatch.from_arrays(arrays, schema=self.output_schema(batch.schema))

    def _strip_until_clean(self, text: str, w, i: int) -> str:
        d, pos, _, cp, offs = w
        cps = cp[offs[i]:offs[i + 1]]
        starts = np.sort(pos[d == i])
        while len(starts):
            text = _cut(text, cps, starts, self.params.n)
            _, starts, _, cps, _ = self._index.windows([text])
            starts = np.sort(starts)
        return text


def _cut(text: str, cps: np.ndarray, starts: np.ndarray, n: int) -> str:
    """`text` without the original characters behind normalized windows [s, s+n); cps: normalized `text`."""
    ends = starts + n  # merge overlapping windows into spans
    new = np.r_[True, starts[1:] > np.maximum.accumulate(ends)[:-1]]
    spans = list(zip(starts[new], np.maximum.reduceat(ends, np.flatnonzero(new))))
    cp1, o1 = normalize_codepoints(list(text))  # per character: exact unless NFKC composes across characters
    if np.array_equal(cp1, cps):
        owner = np.repeat(np.arange(len(text)), np.diff(o1))
        bounds = [(int(owner[a]), int(owner[b - 1]) + 1) for a, b in spans]
    else:  # rare (combining marks, jamo): bisect on the normalized length of prefixes
        def plen(k: int) -> int:
            return int(normalize_codepoints([text[:k]])[1][-1])

        def first(target: int, strict: bool) -> int:
            lo, hi = 0, len(text)
            while lo < hi:
                mid = (lo + hi) // 2
                if plen(mid) > target if strict else plen(mid) >= target:
                    hi = mid
                else:
                    lo = mid + 1
            return lo

        bounds = [(max(first(int(a), True) - 1, 0), max(first(int(b), False), first(int(a), True))) for a, b in spans]
    out, last = [], 0
    for a, b in bounds:
        out.append(text[last:max(a, last)])
        last = max(b, last)
    out.append(text[last:])
    new_text = "".join(out)
    return new_text if len(new_text) < len(text) else ""  # no progress (never seen): nothing of it is kept
