"""G5: the readers and the cleaning stages never crash, hang or lose a record on hostile input.
10,000 Hypothesis examples in CI over the four properties (CORPUSFORGE_FUZZ_EXAMPLES sets the total;
the `slow` suite's nightly equivalent is the same file with a larger total)."""

from __future__ import annotations

import gzip
import json
import os

import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corpusforge.errors import CorpusforgeError
from corpusforge.io.inputs import InputFile, Part, sniff_codec
from corpusforge.io.readers import ReadOptions, read_part
from corpusforge.pipeline import apply_stages, output_schemas
from corpusforge.schema import DOC_SCHEMA
from corpusforge.stage import lookup
from corpusforge.stages.basic import Normalize, TextSanity

TOTAL = int(os.environ.get("CORPUSFORGE_FUZZ_EXAMPLES", "10000"))
SHARES = {"jsonl": 0.25, "bytes": 0.4, "clean": 0.25, "rules": 0.1}  # sums to 1: TOTAL examples in all (~1 min)


def fuzz(prop: str):
    return settings(max_examples=max(1, round(TOTAL * SHARES[prop])), deadline=None,
                    suppress_health_check=list(HealthCheck), derandomize=True)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4),
    max_leaves=12,
)
hostile_text = st.text(alphabet=st.characters(codec=None, exclude_categories=("Cs",)) | st.sampled_from(
    ["\x00", "\u2028", "\u2029", "\u0085", "\r", "\ufeff", "\u202e", "中", "，", "\ufffd"]), max_size=200)


def line_bytes():
    record = st.fixed_dictionaries({"text": hostile_text}, optional={"meta": json_values, "id": st.text(max_size=5)})
    as_json = record.map(lambda r: json.dumps(r, ensure_ascii=False).encode("utf-8"))
    escaped = record.map(lambda r: json.dumps(r).encode())  # \\u escapes, incl. \\u0000
    surrogate = st.sampled_from([b'{"text": "\\ud800"}', b'{"text": "a\\udfff\\ud83d"}'])
    nonstandard = st.sampled_from([b'{"text": NaN}', b'{"text": "x", "a": Infinity}', b'[1,2]', b'"s"', b'{"text": "a", "text": "b"}'])
    deep = st.integers(1, 3000).map(lambda n: b'{"text": "x", "d": ' + b"[" * n + b"]" * n + b"}")
    return st.one_of(as_json, escaped, surrogate, nonstandard, deep, st.binary(max_size=120))


def read_all(path, opts=None):
    st_ = os.stat(path)
    part = Part(0, InputFile(str(path), os.path.basename(path), st_.st_size, st_.st_mtime_ns, ""))
    batches, out = read_part(part, opts or ReadOptions(max_record_bytes=4096))
    docs = [r for b in batches for r in b.to_pylist()]
    return docs, out


def check_ledger(docs, out):
    s = out.stats
    assert s.records == s.docs + sum(s.quarantined.values())
    assert len(docs) == s.docs and len(out.quarantine) == sum(s.quarantined.values())
    for d in docs:
        d["text"].encode("utf-8")  # never a lone surrogate past the reader
    for q in out.quarantine:
        assert q["reason"] and q["file"]


@fuzz("jsonl")
@given(st.lists(line_bytes(), max_size=8), st.booleans(), st.booleans())
def test_jsonl_reader_never_crashes_and_balances(tmp_path_factory, lines, gz, trailing_newline):
    data = b"\n".join(lines) + (b"\n" if trailing_newline else b"")
    path = tmp_path_factory.getbasetemp() / ("f.jsonl.gz" if gz else "f.jsonl")
    path.write_bytes(gzip.compress(data, mtime=0) if gz else data)
    try:
        docs, out = read_all(path)
    except CorpusforgeError as e:  # only the documented whole-file errors
        assert e.code in ("unsupported_container", "missing_text")
        return
    check_ledger(docs, out)
    if out.discarded:  # e.g. bytes that start with a zstd magic: the whole file is one quarantine entry
        assert out.stats.records == 1 and out.stats.docs == 0
        return
    if sniff_codec(data[:512]) != ("gzip" if gz else "plain"):
        return  # e.g. random bytes that form a valid (empty) zstd frame: decoded by magic, not line-counted
    body = data[3:] if data.startswith(b"\xef\xbb\xbf") else data
    nonblank = sum(1 for ln in body.split(b"\n") if ln.strip(b" \t\r\n"))
    assert out.stats.records == nonblank  # every line that is not JSON whitespace is a record


@fuzz("bytes")
@given(st.binary(max_size=600))
def test_random_bytes_never_crash(tmp_path_factory, blob):
    path = tmp_path_factory.getbasetemp() / "r.jsonl"
    path.write_bytes(blob)
    try:
        docs, out = read_all(path)
    except CorpusforgeError as e:
        assert e.code in ("unsupported_container", "missing_text")
        return
    check_ledger(docs, out)


_stages = [Normalize(Normalize.Params()), TextSanity(TextSanity.Params(min_chars=3))]
for _s in _stages:
    _s.setup()
_schemas = output_schemas(_stages, DOC_SCHEMA)


@fuzz("clean")
@given(st.lists(hostile_text, min_size=1, max_size=6))
def test_cleaning_stages_balance_and_normalize_is_idempotent(texts):
    batch = pa.RecordBatch.from_pydict(
        {"id": [str(i) for i in range(len(texts))], "source": ["s"] * len(texts), "text": texts, "meta": [[]] * len(texts)},
        schema=DOC_SCHEMA)
    counts: dict = {}
    kept, rejects, quarantine = apply_stages(_stages, _schemas, batch, counts)
    for c in counts.values():
        assert c["in"] == c["kept"] + sum(c["dropped"].values()) + sum(c["quarantined"].values())
    assert kept.num_rows + sum(r.num_rows for r in rejects) + len(quarantine) == len(texts)
    norm = _stages[0]
    once = norm.normalize(pa.array(texts, pa.string()))
    assert norm.normalize(once).to_pylist() == once.to_pylist()
    for t in once.to_pylist():
        assert "\x00" not in t and "\r" not in t and "\u2028" not in t and "\ufeff" not in t


def _stage(name: str, **params):
    cls = lookup(name)
    s = cls(cls.Params(**params))
    s.setup()
    return s


# the PanGu-α rule stages in pipeline order, with their bundled rule files
_rules = [_stage("clean"), _stage("t2s"), _stage("pangu_rules"), _stage("sensitive_words")]
_rule_schemas = output_schemas(_rules, DOC_SCHEMA)
zh_text = st.text(alphabet=st.sampled_from(list("的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动"
                                                 "赌博代开发票裸聊乾隆後髮著臺灣，。！？、\n \u3000\x00\u2028\ufeff\u200b<>&;")) |
                  st.characters(codec="utf-8"), max_size=300)  # the reader never lets a lone surrogate through


@fuzz("rules")
@given(st.lists(zh_text, min_size=1, max_size=6))
def test_rule_stages_never_crash_and_balance(texts):
    batch = pa.RecordBatch.from_pydict(
        {"id": [f"d{i}" for i in range(len(texts))], "source": ["s"] * len(texts), "text": texts, "meta": [[]] * len(texts)},
        schema=DOC_SCHEMA)
    counts: dict = {}
    kept, rejects, quarantine = apply_stages(_rules, _rule_schemas, batch, counts)
    for c in counts.values():
        assert c["in"] == c["kept"] + sum(c["dropped"].values()) + sum(c["quarantined"].values())
    ids = kept.column("id").to_pylist() + [i for r in rejects for i in r.column("id").to_pylist()] + [q["id"] for q in quarantine]
    assert sorted(ids) == sorted(batch.column("id").to_pylist())  # each document exactly once
    for t in kept.column("text").to_pylist():
        t.encode("utf-8")
