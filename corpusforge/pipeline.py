"""Engine-neutral execution of the per-row stages over one RecordBatch. Every engine calls this,
so local, Spark and Beam make the same decision for every document."""

from __future__ import annotations

import hashlib
import time
from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from corpusforge.errors import CorpusforgeError
from corpusforge.ledger import new_counts
from corpusforge.schema import PREVIEW_CHARS, QUARANTINE_SCHEMA, REJECT_SCHEMA, score_column
from corpusforge.stage import FilterStage, MapStage, Stage


def output_schemas(stages: list[Stage], schema: pa.Schema) -> list[pa.Schema]:
    out = []
    for s in stages:
        schema = s.output_schema(schema)
        out.append(schema)
    return out


def _numeric_scores(batch: pa.RecordBatch, idx: np.ndarray) -> pa.MapArray:
    """Per row of idx, (score column, value) for every non-null numeric score column, in schema order, as
    float64 (an integer converts as Python's float() does: to the nearest double)."""
    take = pa.array(idx, pa.int64())
    names = [n for n in batch.schema.names
             if "__" in n and (pa.types.is_integer(batch.schema.field(n).type) or pa.types.is_floating(batch.schema.field(n).type))]
    typ = REJECT_SCHEMA.field("scores").type
    if not names:
        return pa.MapArray.from_arrays(np.zeros(len(idx) + 1, np.int32), pa.array([], pa.string()), pa.array([], pa.float64()), type=typ)
    cols = [batch.column(n).take(take) for n in names]
    vals = np.column_stack([c.cast(pa.float64(), safe=False).to_numpy(zero_copy_only=False) for c in cols])
    valid = np.column_stack([np.asarray(c.is_valid()) for c in cols])
    row, col = np.nonzero(valid)  # row-major: each row's columns in schema order
    offsets = np.zeros(len(idx) + 1, np.int32)
    np.cumsum(np.bincount(row, minlength=len(idx)), out=offsets[1:])
    keys = pa.array(names, pa.string()).take(pa.array(col, pa.int64()))
    return pa.MapArray.from_arrays(offsets, keys, pa.array(vals[row, col], pa.float64()), type=typ)


def reject_rows(batch: pa.RecordBatch, idx: np.ndarray, stage: str, reasons: list[str],
                duplicate_of: list[str | None] | None = None) -> pa.RecordBatch:
    take = pa.array(idx, pa.int64())
    texts = batch.column("text").take(take)
    return pa.RecordBatch.from_pydict(
        {
            "id": batch.column("id").take(take),
            "source": batch.column("source").take(take),
            "stage": pa.array([stage] * len(idx), pa.string()),
            "reason": pa.array(reasons, pa.string()),
            "scores": _numeric_scores(batch, idx),
            "duplicate_of": pa.array(duplicate_of or [None] * len(idx), pa.string()),
            "text_preview": pc.utf8_slice_codeunits(texts, 0, PREVIEW_CHARS),
            "meta": batch.column("meta").take(take),
        },
        schema=REJECT_SCHEMA,
    )


def _meta_get(meta_row, key):
    for k, v in meta_row or ():
        if k == key:
            return v
    return None


def quarantine_rows(batch: pa.RecordBatch, idx: np.ndarray, stage: str, details: list[str]) -> list[dict]:
    ids = batch.column("id").take(pa.array(idx, pa.int64())).to_pylist()
    texts = batch.column("text").take(pa.array(idx, pa.int64())).to_pylist()
    metas = batch.column("meta").take(pa.array(idx, pa.int64())).to_pylist()
    rows = []
    for i, t, m, d in zip(ids, texts, metas, details):
        raw = t.encode("utf-8", "surrogatepass")
        line, off = _meta_get(m, "_cf_line"), _meta_get(m, "_cf_offset")
        rows.append({"id": i, "stage": stage, "file": _meta_get(m, "_cf_file") or "", "line": int(line) if line else None,
                     "byte_offset": int(off) if off else None, "reason": "score_invalid", "detail": d,
                     "raw_sha1": hashlib.sha1(raw).hexdigest(), "raw": raw[:65536]})
    return rows


def apply_stages(stages: list[Stage], schemas: list[pa.Schema], batch: pa.RecordBatch, counts: dict,
                 seconds: dict | None = None, scopes: dict | None = None):
    """Runs the per-row stages. Returns (kept batch, [reject batches], [quarantine dicts]).
    scopes: stage name → the only sources it may change or drop (the plan's; absent = every source).

    counts maps stage name → ledger counts and is updated in place; so is `seconds` (stage → wall time)."""
    rejects, quarantine = [], []
    for stage, schema in zip(stages, schemas):
        t0 = time.perf_counter()
        batch = _apply_one(stage, schema, batch, counts, rejects, quarantine, (scopes or {}).get(stage.name))
        if seconds is not None:
            seconds[stage.name] = seconds.get(stage.name, 0.0) + time.perf_counter() - t0
    return batch, rejects, quarantine


def _in_sources(batch: pa.RecordBatch, sources: tuple[str, ...]) -> np.ndarray:
    return np.asarray(pc.fill_null(pc.is_in(batch.column("source"), pa.array(sources, pa.string())), False), bool)


def rows_of_sources(batch: pa.RecordBatch, sources: tuple[str, ...]) -> pa.RecordBatch:
    """The rows of these sources (what a scoped global stage sees: the others take no part in it)."""
    return batch.filter(pa.array(_in_sources(batch, sources)))


def _map_sources(stage: MapStage, schema: pa.Schema, batch: pa.RecordBatch, sources: tuple[str, ...]) -> pa.RecordBatch:
    """A scoped map stage: rows of other sources keep their columns unchanged and get nulls in the stage's
    new columns (it did not run on them); row order is kept."""
    mine = _in_sources(batch, sources)
    if mine.all():
        return stage.map(batch)
    idx_in, idx_out = np.flatnonzero(mine), np.flatnonzero(~mine)
    rest = batch.take(pa.array(idx_out, pa.int64()))
    rest = pa.RecordBatch.from_arrays([rest.column(f.name) if f.name in rest.schema.names else pa.nulls(len(idx_out), f.type)
                                       for f in schema], schema=schema)
    if not len(idx_in):
        return rest
    mapped = stage.map(batch.take(pa.array(idx_in, pa.int64())))
    both = pa.Table.from_batches([mapped, rest], schema=schema)
    order = np.argsort(np.concatenate([idx_in, idx_out]), kind="stable")
    return both.take(pa.array(order, pa.int64())).combine_chunks().to_batches()[0]


def _apply_one(stage: Stage, schema: pa.Schema, batch: pa.RecordBatch, counts: dict, rejects: list, quarantine: list,
               only_sources: tuple[str, ...] | None):
    c = counts.setdefault(stage.name, new_counts())
    n = batch.num_rows
    c["in"] += n
    if n == 0:
        return pa.RecordBatch.from_pylist([], schema=schema)
    if isinstance(stage, MapStage):
        batch = stage.map(batch) if only_sources is None else _map_sources(stage, schema, batch, only_sources)
        _count_fixes(stage, batch, c)
        c["kept"] += batch.num_rows
        return batch
    assert isinstance(stage, FilterStage), f"{stage.name}: global stages run through the engine plan"
    scores = stage.score(batch)
    arrays = [batch.column(i) for i in range(batch.num_columns)]
    arrays += [pa.array(scores[s], t) for s, t in stage.scores.items()]
    batch = pa.RecordBatch.from_arrays(arrays, schema=schema)
    _count_fixes(stage, batch, c)
    np_scores = {s: batch.column(score_column(stage.name, s)).to_numpy(zero_copy_only=False) for s in stage.scores}
    # NaN passes "drop if < t" and fails "keep if >= t", silently: quarantine it instead.
    invalid = np.zeros(n, bool)
    detail = np.full(n, None, dtype=object)
    for s, v in np_scores.items():
        if v.dtype.kind == "f":
            bad = ~np.isfinite(v)
            detail[bad & ~invalid] = f"{score_column(stage.name, s)} is not finite"
            invalid |= bad
    verdict = stage.decide(np_scores)
    keep = np.asarray(verdict.keep, bool) & ~invalid
    if only_sources is not None:  # other sources are scored but never dropped
        keep |= ~_in_sources(batch, only_sources) & ~invalid
    drop_idx = np.flatnonzero(~keep & ~invalid)
    if invalid.any():
        q_idx = np.flatnonzero(invalid)
        quarantine.extend(quarantine_rows(batch, q_idx, stage.name, list(detail[q_idx])))
        c["quarantined"]["score_invalid"] += len(q_idx)
    if len(drop_idx):
        reasons = [f"{stage.name}:{verdict.reason[i]}" for i in drop_idx]
        for r in reasons:
            c["dropped"][r] += 1
        rejects.append(reject_rows(batch, drop_idx, stage.name, reasons))
    batch = batch.filter(pa.array(keep))
    c["kept"] += batch.num_rows
    return batch


def _count_fixes(stage: Stage, batch: pa.RecordBatch, c: dict) -> None:
    fixes = {k: n for k, n in stage.fix_counts(batch).items() if n}
    if fixes:
        c.setdefault("fixes", Counter()).update(fixes)


def check_rule_guard(stages: list[Stage], counts: dict, max_fraction: float | None, min_docs: int, where: str) -> None:
    """RELIABILITY #30: stops the run when one rule-list reason drops more than max_fraction of a part."""
    if max_fraction is None:
        return
    for stage in stages:
        c = counts.get(stage.name)
        if not isinstance(stage, FilterStage) or not c or c["in"] < min_docs:
            continue
        for reason in sorted(stage.rule_reasons):
            n = c["dropped"].get(f"{stage.name}:{reason}", 0)
            if n > max_fraction * c["in"]:
                raise CorpusforgeError("rule_guard", f"{where}: {stage.name}:{reason} dropped {n} of {c['in']} documents "
                                       f"({n / c['in']:.0%} > limits.max_rule_drop_fraction {max_fraction:.0%}); a rule "
                                       "list probably matches almost everything (fix it, or raise or null the limit)")


def empty_quarantine() -> pa.Table:
    return QUARANTINE_SCHEMA.empty_table()
