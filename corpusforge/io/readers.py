"""Readers: bytes → documents + quarantine rows. Framing is bytes split on b"\\n" only (never
universal newlines or str.splitlines, which split records on \\r, U+2028 or U+0085), decoding is
strict per line, and every unreadable record is quarantined with file, line, byte offset and reason."""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from corpusforge.errors import CorpusforgeError
from corpusforge.io import fs, html_extract
from corpusforge.io.inputs import Part
from corpusforge.io.streams import FileLevelError, iter_lines, read_whole, verify_bytes
from corpusforge.schema import DOC_SCHEMA, INGEST, QUARANTINE_SCHEMA, doc_id

PROVENANCE_KEYS = ("_cf_file", "_cf_line", "_cf_offset")
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


@dataclass
class ReadOptions:
    format: str = "jsonl"
    text_field: str = "text"
    source_field: str | None = None
    source: str = "default"
    encoding: str = "utf-8"  # any Python codec, or "auto" (utf-8 / gb18030 / big5, validated)
    batch_rows: int = 8192
    batch_bytes: int = 16 << 20
    max_record_bytes: int = 64 << 20
    max_decompressed_bytes: int = 64 << 30
    max_ratio: float = 200.0
    quarantine_raw_bytes: int = 65536
    salvage_truncated: bool = False
    extractor: str = "trafilatura"  # html/warc main-text extractor


@dataclass
class ReadStats:
    records: int = 0  # docs + quarantined entries
    docs: int = 0
    quarantined: Counter = field(default_factory=Counter)
    fixes: Counter = field(default_factory=Counter)
    hints: list = field(default_factory=list)


class _RecordError(Exception):
    def __init__(self, reason: str, detail: str = ""):
        super().__init__(detail)
        self.reason, self.detail = reason, detail


def _reject_constant(name: str):
    raise _RecordError("nonstandard_json", f"{name} is not valid JSON")


def _pairs_no_duplicates(pairs):
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen = set()
        dup = next(k for k, _ in pairs if k in seen or seen.add(k))
        raise _RecordError("duplicate_key", f"duplicate key {dup!r}")
    return obj


# One decoder for all lines (json.loads with kwargs builds a new one per call). strict=False: raw
# control characters inside strings are kept for the cleaning stage to remove and count.
_DECODER = json.JSONDecoder(object_pairs_hook=_pairs_no_duplicates, parse_constant=_reject_constant, strict=False)


class _Output:
    """Accumulates documents and quarantine rows, and cuts them into RecordBatches."""

    def __init__(self, opts: ReadOptions, rel: str):
        self.opts, self.rel = opts, rel
        self.stats = ReadStats()
        self._cols: dict[str, list] = {"id": [], "source": [], "text": [], "meta": []}
        self._bytes = 0
        self.quarantine: list[dict] = []
        self.discarded = False  # set when a file-level failure threw away what was read

    def doc(self, record_no: int, offset: int, source: str, text: str, meta: list[tuple[str, str]]):
        meta += [("_cf_file", self.rel), ("_cf_line", str(record_no)), ("_cf_offset", str(offset))]
        self._cols["id"].append(doc_id(source, self.rel, record_no))
        self._cols["source"].append(source)
        self._cols["text"].append(text)
        self._cols["meta"].append(meta)
        self._bytes += len(text)
        self.stats.records += 1
        self.stats.docs += 1

    def quarantine_row(self, line, offset, reason, detail, raw: bytes | None):
        self.stats.records += 1
        self.stats.quarantined[reason] += 1
        raw = raw or b""
        self.quarantine.append(
            {
                "id": None,
                "stage": INGEST,
                "file": self.rel,
                "line": line,
                "byte_offset": offset,
                "reason": reason,
                "detail": detail[:500],
                "raw_sha1": hashlib.sha1(raw).hexdigest(),
                "raw": raw[: self.opts.quarantine_raw_bytes],
            }
        )

    def full(self) -> bool:
        return len(self._cols["id"]) >= self.opts.batch_rows or self._bytes >= self.opts.batch_bytes

    def take_batch(self) -> pa.RecordBatch | None:
        if not self._cols["id"]:
            return None
        batch = pa.RecordBatch.from_pydict(self._cols, schema=DOC_SCHEMA)
        self._cols = {k: [] for k in self._cols}
        self._bytes = 0
        return batch

    def reset(self):
        """Discard everything read from this part (file-level failure): only the quarantine entry stays."""
        self._cols = {k: [] for k in self._cols}
        self._bytes = 0
        self.quarantine = []
        self.discarded = True
        self.stats = ReadStats(fixes=self.stats.fixes, hints=self.stats.hints)


def quarantine_table(rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=QUARANTINE_SCHEMA)


# ---------------------------------------------------------------- encodings

_COMMON_CJK = None


def _detect_encoding(sample: bytes) -> str | None:
    """Pick utf-8, gb18030 or big5 by strict decode plus a CJK-plausibility check; None if unsure."""
    global _COMMON_CJK
    if _COMMON_CJK is None:
        from corpusforge.rules_files import read_lines

        _COMMON_CJK = set("".join(read_lines("encoding/common_chars.txt")))
    best, best_score = None, 0.0
    for enc in ("utf-8", "gb18030", "big5"):
        try:
            text = sample.decode(enc)
        except UnicodeDecodeError as e:
            # the sample may end mid-character
            if e.start < len(sample) - 4:
                continue
            text = sample[: e.start].decode(enc)
        if enc == "utf-8":
            return "utf-8"  # valid UTF-8 is never re-interpreted
        han = [c for c in text if "\u4e00" <= c <= "\u9fff"]
        if not han:
            continue
        score = sum(c in _COMMON_CJK for c in han) / len(han)
        if score > best_score:
            best, best_score = enc, score
    return best if best_score >= 0.6 else None


def _gb18030_hint(raw_lines: list[bytes]) -> str | None:
    sample = b"\n".join(raw_lines)[:65536]
    enc = _detect_encoding(sample)
    if enc and enc != "utf-8":
        return f"lines look like {enc.upper()}; set input.encoding: {enc} (or auto) for this source"
    return None


# ---------------------------------------------------------------- JSONL


def _meta_value(v) -> str:
    return v if isinstance(v, str) else json.dumps(v, ensure_ascii=False, sort_keys=True)


def _check_strings(obj) -> None:
    """Lone surrogates parse fine from JSON escapes but crash any UTF-8 writer later: catch them now."""
    try:
        json.dumps(obj, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as e:
        raise _RecordError("lone_surrogate", str(e)) from None


def _parse_record(raw: bytes, encoding: str, first: bool, opts: ReadOptions, out: _Output):
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as e:
        raise _RecordError("invalid_utf8" if encoding == "utf-8" else "invalid_encoding", f"{encoding}: {e}") from None
    if first and text.startswith("\ufeff"):
        text = text[1:]
        out.stats.fixes["bom_stripped"] += 1
    if not text.strip(" \t\r\n"):  # JSON whitespace only: str.strip() would also eat \x1c-\x1f, U+3000...
        return None
    try:
        obj = _DECODER.decode(text)
    except json.JSONDecodeError as e:
        raise _RecordError("json_decode_error", f"{e.msg} (col {e.colno})") from None
    except RecursionError:
        raise _RecordError("json_too_deep", "nesting too deep") from None
    except ValueError as e:  # int-str conversion limit
        raise _RecordError("number_out_of_range", str(e)) from None
    if not isinstance(obj, dict):
        raise _RecordError("not_an_object", f"top-level {type(obj).__name__}")
    if _SURROGATE_ESCAPE.search(raw):
        _check_strings(obj)
    return obj


def _emit_object(obj: dict, line_no: int, offset: int, opts: ReadOptions, out: _Output, missing: Counter):
    if opts.text_field not in obj:
        missing.update(obj.keys())
        raise _RecordError("missing_text", f"no field {opts.text_field!r}")
    text = obj[opts.text_field]
    if not isinstance(text, str):
        raise _RecordError("text_not_string", f"{opts.text_field!r} is {type(text).__name__}")
    source = opts.source
    if opts.source_field:
        s = obj.get(opts.source_field)
        if isinstance(s, str) and s:
            source = s
    try:
        meta = [(k, _meta_value(v)) for k, v in obj.items() if k != opts.text_field]
    except RecursionError:  # json.loads took it, json.dumps of the metadata cannot (found by fuzzing)
        raise _RecordError("json_too_deep", "nesting too deep to keep as metadata") from None
    out.doc(line_no, offset, source, text, meta)


def read_jsonl(part: Part, opts: ReadOptions, out: _Output) -> Iterator[pa.RecordBatch]:
    encoding = opts.encoding
    missing_keys: Counter = Counter()
    missing_text = 0
    invalid_lines: list[bytes] = []
    last_good_line = part.first_line - 1
    try:
        for line_no, offset, raw, size, terminated in iter_lines(part, opts, out.stats.fixes):
            if encoding == "auto":
                encoding = _detect_encoding(raw[:1 << 20] if raw else b"") or ""
                if not encoding:
                    raise FileLevelError("encoding_uncertain", "no encoding among utf-8/gb18030/big5 validated", 0, 0)
                out.stats.fixes[f"encoding_{encoding}"] += 1
            if raw is None:
                out.quarantine_row(line_no, offset, "record_too_large", f"{size} bytes > max_record_bytes", None)
                continue
            try:
                obj = _parse_record(raw, encoding, line_no == 1, opts, out)
                if obj is None:
                    out.stats.fixes["blank_lines"] += 1
                    continue
                _emit_object(obj, line_no, offset, opts, out, missing_keys)
                last_good_line = line_no
            except _RecordError as e:
                reason = e.reason
                if reason == "json_decode_error" and not terminated:
                    reason = "truncated_last_record"
                if reason in ("invalid_utf8", "invalid_encoding") and len(invalid_lines) < 64:
                    invalid_lines.append(raw)
                if reason == "missing_text":
                    missing_text += 1
                out.quarantine_row(line_no, offset, reason, e.detail, raw)
            if out.full():
                yield out.take_batch()
    except FileLevelError as e:
        if opts.salvage_truncated and e.reason == "truncated_input":
            out.stats.fixes["salvaged_prefix_lines"] += last_good_line - part.first_line + 1
        else:
            out.reset()
        out.quarantine_row(e.line if e.line is not None else last_good_line, e.offset, e.reason,
                           f"{e.detail}; last complete line {last_good_line}", None)
        batch = out.take_batch()
        if batch is not None:
            yield batch
        return
    batch = out.take_batch()
    if batch is not None:
        yield batch
    if missing_text and missing_text >= 10 and missing_text >= 0.99 * out.stats.records:
        seen = ", ".join(k for k, _ in missing_keys.most_common(8))
        raise CorpusforgeError(
            "missing_text",
            f"{part.file.rel}: {missing_text} of {out.stats.records} records have no {opts.text_field!r} "
            f"field; keys seen: {seen}. Set input.text_field.",
        )
    if invalid_lines and out.stats.quarantined["invalid_utf8"] >= 0.5 * max(out.stats.records, 1):
        hint = _gb18030_hint(invalid_lines)
        if hint:
            out.stats.hints.append(f"{part.file.rel}: {hint}")


# ---------------------------------------------------------------- Parquet and .txt


def read_parquet(part: Part, opts: ReadOptions, out: _Output) -> Iterator[pa.RecordBatch]:
    with fs.open_read(part.file.path) as f:
        data = f.read()  # whole: what is parsed is exactly what is hashed (a Parquet footer is read first)
    verify_bytes(part, data)
    try:
        pf = pq.ParquetFile(pa.BufferReader(data))
        if opts.text_field not in pf.schema_arrow.names:
            raise CorpusforgeError(
                "missing_text",
                f"{part.file.rel}: no column {opts.text_field!r}; columns: {', '.join(pf.schema_arrow.names[:8])}",
            )
        row = 0
        for batch in pf.iter_batches(batch_size=opts.batch_rows):
            for rec in batch.to_pylist():
                row += 1
                try:
                    _emit_object(rec, row, 0, opts, out, Counter())
                except _RecordError as e:
                    raw = json.dumps(rec, ensure_ascii=False, default=str).encode("utf-8", "surrogatepass")
                    out.quarantine_row(row, None, e.reason, e.detail, raw)
            yield from filter(None, [out.take_batch()])
    except (pa.ArrowInvalid, OSError) as e:
        out.reset()
        out.quarantine_row(None, None, "corrupt_parquet", str(e), None)


def read_txt(part: Part, opts: ReadOptions, out: _Output) -> Iterator[pa.RecordBatch]:
    raw = read_whole(part, opts.max_record_bytes)
    if raw is None:
        out.quarantine_row(1, 0, "record_too_large", f"> {opts.max_record_bytes} bytes", None)
        return
    enc = opts.encoding if opts.encoding != "auto" else (_detect_encoding(raw[:1 << 20]) or "utf-8")
    try:
        text = raw.decode(enc)
    except UnicodeDecodeError as e:
        out.quarantine_row(1, e.start, "invalid_utf8" if enc == "utf-8" else "invalid_encoding", str(e), raw)
        return
    if text.startswith("\ufeff"):
        text = text[1:]
        out.stats.fixes["bom_stripped"] += 1
    out.doc(1, 0, opts.source, text, [])
    yield out.take_batch()


READERS = {"jsonl": read_jsonl, "parquet": read_parquet, "txt": read_txt, "html": html_extract.read_html, "warc": html_extract.read_warc}


def read_part(part: Part, opts: ReadOptions) -> tuple[Iterator[pa.RecordBatch], _Output]:
    """Returns (document batches, output holder with quarantine rows and stats once exhausted)."""
    out = _Output(opts, part.file.rel)
    try:
        now = fs.size_mtime(part.file.path)
    except OSError as e:
        raise CorpusforgeError("input_changed", f"{part.file.rel}: {e.strerror} since the run was planned") from None
    except CorpusforgeError as e:
        raise CorpusforgeError("input_changed", f"{part.file.rel}: {e.message} since the run was planned") from None
    if now != (part.file.size, part.file.mtime_ns):
        raise CorpusforgeError("input_changed", f"{part.file.rel}: size or mtime changed since the run was planned")
    if part.file.size == 0:
        out.stats.fixes["empty_input_files"] += 1
        return iter(()), out
    return READERS[opts.format](part, opts, out), out
