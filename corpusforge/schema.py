"""The canonical document schema, stable ids, and the side tables (rejects, quarantine)."""

from __future__ import annotations

import hashlib

import pyarrow as pa

META_TYPE = pa.map_(pa.string(), pa.string())

# Every document, on every engine, has these columns first; stages append `<stage>__<score>` columns.
DOC_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("text", pa.string(), nullable=False),
        pa.field("meta", META_TYPE),
    ]
)

REJECT_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("stage", pa.string(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("scores", pa.map_(pa.string(), pa.float64())),
        pa.field("duplicate_of", pa.string()),
        pa.field("text_preview", pa.string()),
        pa.field("meta", META_TYPE),
    ]
)

# Ingest-time quarantine has no id (the record could not be read); stage-time quarantine has one.
QUARANTINE_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string()),
        pa.field("stage", pa.string(), nullable=False),
        pa.field("file", pa.string(), nullable=False),
        pa.field("line", pa.int64()),
        pa.field("byte_offset", pa.int64()),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("detail", pa.string()),
        pa.field("raw_sha1", pa.string()),
        pa.field("raw", pa.binary()),
    ]
)

PREVIEW_CHARS = 300
INGEST = "ingest"  # the pseudo-stage name of the readers in ledgers and quarantine rows


def doc_id(source: str, relpath: str, record: int) -> str:
    """Stable id from (source, path relative to the input root, 1-based line or record number)."""
    key = f"{source}\x1f{relpath}\x1f{record}".encode("utf-8", "surrogatepass")
    return hashlib.blake2b(key, digest_size=10).hexdigest()


def score_column(stage: str, score: str) -> str:
    return f"{stage}__{score}"


# ---------------------------------------------------------------- global stages (engine contract)

# Column that carries a document's part index through a global stage (engine bookkeeping, not data).
PART_COL = "_cf_part"
# Schema every GlobalStage returns: one row per *removed* document.
DECISION_SCHEMA = pa.schema([
    pa.field("id", pa.string(), nullable=False),
    pa.field(PART_COL, pa.int32(), nullable=False),
    pa.field("reason", pa.string(), nullable=False),  # check name, e.g. "near_duplicate"
    pa.field("duplicate_of", pa.string(), nullable=False),
    pa.field("cluster_id", pa.string(), nullable=False),
])
# What a GlobalStage may return beside its decisions: FIX+COUNT counters per part (RELIABILITY #35).
FIX_SCHEMA = pa.schema([pa.field(PART_COL, pa.int32()), pa.field("fix", pa.string()), pa.field("n", pa.int64())])
# What a GlobalStage may return to rewrite documents instead of removing them: one row per line (a "\n"-split
# piece of the text, 0-based) to take out; the stage's rewrite() applies them in the next phase (dedup_lines).
EDIT_SCHEMA = pa.schema([pa.field("id", pa.string(), nullable=False), pa.field(PART_COL, pa.int32(), nullable=False),
                         pa.field("line", pa.int32(), nullable=False)])
EDGE_SCHEMA = pa.schema([pa.field("src", pa.string()), pa.field("dst", pa.string())])
COMPONENT_SCHEMA = pa.schema([pa.field("id", pa.string()), pa.field("component", pa.string())])
AGG_OPS = ("min", "max", "sum", "count")
