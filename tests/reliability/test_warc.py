"""Issue 18, item 6: WARC/WET faults on the bundled Common Crawl WET sample (100 real records, one gzip
member each) and a WARC of real news pages. A corrupt record is quarantined with its byte offset and
the next record is read; a cut file is `truncated_input`; invalid UTF-8 in WET is quarantined, never
an empty text. Every run balances (the audit), and the surviving records keep their ids."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import pytest

import corpusforge
from tests.util import assert_audit_ok, manifest, quarantine_rows, run, table, write_config

WET = Path(corpusforge.__file__).parent / "data" / "sample" / "cc_2021-43.warc.wet.gz"


def wet_records() -> list[bytes]:
    """The sample's records, each with its trailing CRLF CRLF, as written (one gzip member each)."""
    data = gzip.decompress(WET.read_bytes())
    starts = [0] + [m.end() for m in re.finditer(rb"\r\n\r\n(?=WARC/1\.0\r\n)", data)]
    recs = [data[a:b] for a, b in zip(starts, starts[1:] + [len(data)])]
    assert len(recs) == 100 and b"".join(recs) == data
    return recs


def gz_members(recs: list[bytes]) -> bytes:
    return b"".join(gzip.compress(r, mtime=0) for r in recs)


def set_length(rec: bytes, value: bytes) -> bytes:
    return re.sub(rb"Content-Length: \d+", b"Content-Length: " + value, rec, count=1)


def ingest(tmp: Path, name: str, data: bytes, **opts) -> tuple[list[dict], list[dict], dict]:
    """Run on one file (ingest only): (documents, quarantine rows, ingest stage of the manifest)."""
    path = tmp / name
    path.write_bytes(data)
    cfg = write_config(tmp, [path], input_opts={"format": "warc", "extractor": "page", "source": "web", **opts},
                       out=f"out-{name}", name=f"{name}.yaml")
    assert run(cfg) == 0
    out = tmp / f"out-{name}"
    assert_audit_ok(out)
    kept = table(out, "kept")
    return ([] if kept is None else kept.to_pylist()), quarantine_rows(out), manifest(out)["stages"][0]


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    docs, q, _ = ingest(tmp_path_factory.mktemp("clean"), "clean.warc.wet.gz", WET.read_bytes())
    assert len(docs) == 100 and q == []
    return {line(d): d["text"] for d in docs}


def line(doc: dict) -> int:
    return int(dict(doc["meta"])["_cf_line"])


def offsets(recs: list[bytes]) -> list[int]:
    """File offset of each record in the gzip-per-member file."""
    out, pos = [], 0
    for r in recs:
        out.append(pos)
        pos += len(gzip.compress(r, mtime=0))
    return out


def assert_rest_intact(docs: list[dict], clean: dict, missing: int) -> None:
    """Every record but the broken one is read, with the number (so the id) and text of the clean file's."""
    assert len(docs) == 100 - missing
    for d in docs:
        assert d["text"] == clean[line(d)]


@pytest.mark.parametrize("gz", [True, False])
def test_non_numeric_content_length_is_one_quarantined_record(tmp_path, clean, gz):
    recs = wet_records()
    recs[40] = set_length(recs[40], b"12a4")
    data = gz_members(recs) if gz else b"".join(recs)
    docs, q, _ = ingest(tmp_path, "bad.warc.wet" + (".gz" if gz else ""), data)
    assert_rest_intact(docs, clean, 1)
    assert [(r["line"], r["reason"]) for r in q] == [(41, "warc_bad_header")]
    assert q[0]["byte_offset"] == (offsets(recs)[40] if gz else sum(map(len, recs[:40])))
    assert "12a4" in q[0]["detail"] and q[0]["file"] == "bad.warc.wet" + (".gz" if gz else "")


def test_header_line_without_a_colon_and_junk_between_records(tmp_path, clean):
    recs = wet_records()
    recs[10] = recs[10].replace(b"WARC-Date:", b"WARC-Date", 1)
    recs[70] = b"this is not a record\r\n\r\n" + recs[70]  # junk, then the record intact
    docs, q, st = ingest(tmp_path, "junk.warc.wet.gz", gz_members(recs))
    assert_rest_intact(docs, clean, 1)
    assert [(r["line"], r["reason"]) for r in q] == [(11, "warc_bad_header"), (None, "warc_bad_header")]
    assert q[1]["byte_offset"] == offsets(recs)[70]  # the member holding the junk; record 71 is read
    assert "without a field name" in q[0]["detail"] and "no WARC/1.x version line" in q[1]["detail"]


@pytest.mark.parametrize("claim,gz", [(b"400000", False), (b"400000", True), (b"99999999", False)])  # 99,999,999 > max_record_bytes
def test_content_length_past_the_end_swallows_nothing(tmp_path, clean, claim, gz):
    """The record claims more bytes than the file holds: the records inside its claim are still read."""
    recs = wet_records()
    recs[50] = set_length(recs[50], claim)
    docs, q, _ = ingest(tmp_path, "long.warc.wet" + (".gz" if gz else ""), gz_members(recs) if gz else b"".join(recs))
    assert_rest_intact(docs, clean, 1)
    where = offsets(recs)[50] if gz else sum(map(len, recs[:50]))
    assert [(r["line"], r["reason"], r["byte_offset"]) for r in q] == [(51, "warc_bad_length", where)]


def test_record_over_max_record_mb_is_skipped_not_buffered(tmp_path, clean):
    recs = wet_records()
    big = b"\xe5\xad\x97" * 400_000  # 1.2 MB of one valid character
    head, _, _ = recs[7].partition(b"\r\n\r\n")
    recs[7] = set_length(head, str(len(big)).encode()) + b"\r\n\r\n" + big + b"\r\n\r\n"
    docs, q, _ = ingest(tmp_path, "big.warc.wet.gz", gz_members(recs), max_record_mb=1)
    assert_rest_intact(docs, clean, 1)
    assert [(r["line"], r["reason"]) for r in q] == [(8, "record_too_large")]


@pytest.mark.parametrize("delta", [+300, -300])
def test_content_length_off_inside_the_file(tmp_path, clean, delta):
    recs = wet_records()
    n = int(re.search(rb"Content-Length: (\d+)", recs[20]).group(1))
    recs[20] = set_length(recs[20], str(n + delta).encode())
    docs, q, _ = ingest(tmp_path, f"off{delta}.warc.wet.gz", gz_members(recs))
    assert_rest_intact(docs, clean, 1)
    assert [(r["line"], r["reason"], r["byte_offset"]) for r in q] == [(21, "warc_bad_length", offsets(recs)[20])]


@pytest.mark.parametrize("gz", [True, False])
def test_cut_file_is_truncated_input(tmp_path, gz):
    recs = wet_records()
    data = gz_members(recs) if gz else b"".join(recs)
    cut = data[:offsets(recs)[60] + 500] if gz else data[:sum(map(len, recs[:60])) + 500]  # inside record 61
    docs, q, st = ingest(tmp_path, "cut.warc.wet" + (".gz" if gz else ""), cut)
    assert docs == []  # like a cut .gz of JSONL: the partial output is discarded
    assert [(r["reason"], r["line"]) for r in q] == [("truncated_input", 60)]
    docs, q, st = ingest(tmp_path, "cut2.warc.wet" + (".gz" if gz else ""), cut, salvage_truncated=True)
    assert len(docs) == 60 and [r["reason"] for r in q] == ["truncated_input"]


def test_cut_inside_a_header(tmp_path):
    recs = wet_records()
    docs, q, _ = ingest(tmp_path, "cuthead.warc.wet", b"".join(recs[:30]) + recs[30][:80])
    assert docs == [] and [r["reason"] for r in q] == ["truncated_input"]


def test_gzip_crc_error_is_corrupt_compression(tmp_path):
    recs = wet_records()
    members = [gzip.compress(r, mtime=0) for r in recs]
    m = bytearray(members[5])
    m[-8] ^= 0xFF  # the CRC32 in the member's trailer
    members[5] = bytes(m)
    docs, q, _ = ingest(tmp_path, "crc.warc.wet.gz", b"".join(members))
    assert docs == [] and [r["reason"] for r in q] == ["corrupt_compression"]


def test_invalid_utf8_in_wet_is_quarantined_never_an_empty_text(tmp_path, clean):
    recs = wet_records()
    head, _, body = recs[33].partition(b"\r\n\r\n")
    body = body[:20] + b"\xff\xfe" + body[22:]  # same length: Content-Length still right
    recs[33] = head + b"\r\n\r\n" + body
    docs, q, _ = ingest(tmp_path, "utf8.warc.wet.gz", gz_members(recs))
    assert_rest_intact(docs, clean, 1)
    assert [(r["line"], r["reason"]) for r in q] == [(34, "invalid_utf8")]
    assert all(d["text"] for d in docs)


def test_warc_non_document_records_are_counted(tmp_path, shared_data):
    pages = sorted((shared_data / "web/html/gne").glob("*.html"))[:2]

    def rec(typ: str, block: bytes, ctype: str) -> bytes:
        return (f"WARC/1.1\r\nWARC-Type: {typ}\r\nWARC-Target-URI: http://example.cn/\r\nWARC-Record-ID: <urn:uuid:1>\r\n"
                f"Content-Type: {ctype}\r\nContent-Length: {len(block)}\r\n\r\n").encode() + block + b"\r\n\r\n"
    recs = [rec("warcinfo", b"software: test\r\n", "application/warc-fields")]
    for p in pages:
        recs.append(rec("request", b"GET / HTTP/1.1\r\nHost: example.cn\r\n\r\n", "application/http; msgtype=request"))
        recs.append(rec("response", b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n" + p.read_bytes(),
                        "application/http; msgtype=response"))
    recs.insert(3, set_length(recs[2], b"-1"))  # a broken copy of the first response
    docs, q, st = ingest(tmp_path, "pages.warc.gz", gz_members(recs))
    assert len(docs) == 2 and all(len(d["text"]) > 200 for d in docs)
    assert [(r["line"], r["reason"]) for r in q] == [(2, "warc_bad_header")]
    assert st["fixes"]["warc_non_document_records"] == 3
