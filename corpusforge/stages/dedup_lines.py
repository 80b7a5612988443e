"""[dedup_lines] Lines repeated across documents — site menus, footers, copyright lines, "扫一扫关注" banners —
removed corpus-wide (CCNet removes paragraphs repeated across a shard; RefinedWeb and Dolma lines repeated
across the corpus). Written once as a plan over the engine primitives, so local, Spark and Beam remove the
same lines.

Each line (a "\\n"-separated piece of the text) is normalized as dedup_exact normalizes a document (NFKC,
lowercase, no whitespace/punctuation); a line of at least `min_chars` normalized characters is counted once per
document that holds it, within its scope (the corpus, each source, or each URL host); every occurrence of a
line held by at least `min_docs` documents is taken out. The plan is one shuffle of one row per counted line
(`annotate`: a line held by 10 M documents is a count, never a list); its edits are applied in the next phase,
where removed lines become FIX counters and a document left empty is dropped (`all_lines_removed`)."""

from __future__ import annotations

import functools
from typing import Any, Literal
from urllib.parse import urlsplit

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from corpusforge.algorithms.cpstrings import run_hashes
from corpusforge.algorithms.minhash import normalize_codepoints
from corpusforge.primitives import fmix64, hash_column
from corpusforge.schema import EDIT_SCHEMA, PART_COL
from corpusforge.stage import GlobalResult, GlobalStage, Params, register

LINE_SCHEMA = pa.schema([pa.field("id", pa.string()), pa.field(PART_COL, pa.int32()), pa.field("line", pa.int32()),
                         pa.field("key", pa.int64()), pa.field("first", pa.int64())])


def _scope_values(batch: pa.RecordBatch, scope: str) -> pa.Array | None:
    if scope == "corpus":
        return None
    if scope == "source":
        return batch.column("source")
    hosts = []  # the URL's host from meta, else the source (a document without a URL is its source's)
    for src, meta in zip(batch.column("source").to_pylist(), batch.column("meta").to_pylist()):
        url = next((v for k, v in meta or () if k == "url"), None)
        try:
            host = (urlsplit(url).hostname or "") if url else ""
        except ValueError:
            host = ""
        hosts.append(f"host:{host}" if host else f"source:{src}")
    return pa.array(hosts, pa.string())


def line_keys(batch: pa.RecordBatch, min_chars: int, scope: str) -> pa.RecordBatch:
    """One row per line long enough to count: its key (scope + normalized text) and whether it is the first
    line of its document with that key (so a document counts once per line)."""
    lists = pc.split_pattern(batch.column("text"), "\n")
    per_doc = pc.list_value_length(lists).to_numpy(zero_copy_only=False).astype(np.int64)
    cp, offs = normalize_codepoints(pc.list_flatten(lists), strip_punct=True)
    doc = np.repeat(np.arange(batch.num_rows), per_doc)
    line = np.arange(len(doc)) - np.repeat(np.cumsum(per_doc) - per_doc, per_doc)
    key = fmix64(run_hashes(cp, offs))
    scoped = _scope_values(batch, scope)
    if scoped is not None:
        with np.errstate(over="ignore"):
            key = fmix64(key * np.uint64(0x9E3779B97F4A7C15) + hash_column(scoped)[doc])
    live = np.flatnonzero(np.diff(offs) >= min_chars)
    doc, line, key = doc[live], line[live], key[live].view(np.int64)
    order = np.lexsort((line, key, doc))  # by document, then key, then position: the first copy leads
    first = np.ones(len(order), np.int64)
    same = (doc[order][1:] == doc[order][:-1]) & (key[order][1:] == key[order][:-1])
    first[order[1:][same]] = 0
    return pa.RecordBatch.from_arrays(
        [batch.column("id").take(pa.array(doc)), batch.column(PART_COL).cast(pa.int32()).take(pa.array(doc)),
         pa.array(line.astype(np.int32)), pa.array(key), pa.array(first)], schema=LINE_SCHEMA)


def repeated_lines(batch: pa.RecordBatch, min_docs: int) -> pa.RecordBatch:
    b = batch.filter(pc.greater_equal(batch.column("ndocs"), min_docs))
    return pa.RecordBatch.from_arrays([b.column("id"), b.column(PART_COL), b.column("line")], schema=EDIT_SCHEMA)


@register
class DedupLines(GlobalStage):
    """Removes lines repeated across documents (boilerplate): every copy of a line held by min_docs+ documents."""

    name = "dedup_lines"

    class Params(Params):
        # documents (within the scope) that must hold a line before it is boilerplate. Measured on hand-labelled
        # real pages (bench/bench_dedup_lines.py, docs/rules.md): 2 removes an article that a site printed twice
        # (precision 0.93), 3 removed no content line of the labelled sample
        min_docs: int = Field(3, ge=2)
        # normalized characters a line needs before it can be removed: shorter ones ("是的。", "一、", "第一章")
        # repeat in real prose without being boilerplate; 4 kept precision 1.000 and removes the most
        min_chars: int = Field(4, ge=1)
        # count a line per corpus, per source, or per URL host (meta `url`; documents without one count per source)
        scope: Literal["corpus", "source", "host"] = "source"

    def run(self, engine: Any, docs: Any) -> GlobalResult:
        p = self.params
        cols = ["id", "text", PART_COL] + {"corpus": [], "source": ["source"], "host": ["source", "meta"]}[p.scope]
        fn = functools.partial(line_keys, min_chars=p.min_chars, scope=p.scope)
        lines = engine.map_batches(engine.select(docs, cols), fn, LINE_SCHEMA, "line-keys")
        counted = engine.annotate(lines, ["key"], [("first", "sum", "ndocs")], "line-docs")
        edits = engine.map_batches(counted, functools.partial(repeated_lines, min_docs=p.min_docs), EDIT_SCHEMA,
                                   "repeated-lines")
        return GlobalResult(edits=edits)

    def rewrite(self, text: str, lines: list[int]) -> str:
        gone = set(lines)
        return "\n".join(x for i, x in enumerate(text.split("\n")) if i not in gone)
