"""RELIABILITY.md §2 cases 1–28 (containers, encodings, record structure): each with its expected
outcome, and the ledger balancing (`corpusforge audit`) wherever the run completes."""

from __future__ import annotations

import gzip
import json
import os
import zipfile
from pathlib import Path

import pytest
import zstandard

from tests.util import assert_audit_ok, manifest, quarantine_rows, run, table, write_config


@pytest.fixture(scope="module")
def good(shared_data) -> list[dict]:
    """Real Chinese web documents (Common Crawl 2021-43 after CCNet)."""
    path = shared_data / "web" / "commoncrawl_2021-43_zh_100docs.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()[:30]]


def jl(rows) -> bytes:
    return b"".join(json.dumps(r, ensure_ascii=False).encode() + b"\n" for r in rows)


def ingest(out: Path) -> dict:
    return manifest(out)["stages"][0]


def reasons(out: Path) -> dict:
    return ingest(out)["quarantined"]


def run_ok(tmp_path, files, **kw) -> Path:
    cfg = write_config(tmp_path, files, **kw)
    assert run(cfg) == 0
    out = tmp_path / "out"
    assert_audit_ok(out)
    return out


# ---------------------------------------------------------------- 2.1 containers


def test_01_truncated_gzip_quarantines_file_others_proceed(tmp_path, good):
    data = gzip.compress(jl(good))
    (tmp_path / "bad.jsonl.gz").write_bytes(data[: len(data) // 2])
    (tmp_path / "ok.jsonl").write_bytes(jl(good[:5]))
    out = run_ok(tmp_path, [tmp_path / "*.jsonl*"])
    assert reasons(out) == {"truncated_input": 1}
    assert table(out, "kept").num_rows == 5  # nothing from the half-read file leaks into the output
    q = [r for r in quarantine_rows(out) if r["reason"] == "truncated_input"][0]
    assert q["file"] == "bad.jsonl.gz" and "last complete line" in q["detail"]


def test_01_salvage_truncated_keeps_complete_prefix(tmp_path, good):
    data = gzip.compress(jl(good))
    (tmp_path / "bad.jsonl.gz").write_bytes(data[: len(data) // 2])
    out = run_ok(tmp_path, [tmp_path / "bad.jsonl.gz"], input_opts={"salvage_truncated": True})
    kept = table(out, "kept").num_rows
    assert 0 < kept < len(good)
    assert ingest(out)["fixes"]["salvaged_prefix_lines"] == kept


def test_02_gzip_crc_mismatch(tmp_path, good):
    data = bytearray(gzip.compress(jl(good)))
    data[-6] ^= 0xFF  # inside the CRC32 trailer
    (tmp_path / "crc.jsonl.gz").write_bytes(bytes(data))
    out = run_ok(tmp_path, [tmp_path / "crc.jsonl.gz"])
    assert reasons(out) == {"corrupt_compression": 1}
    assert table(out, "kept").num_rows == 0


def test_03_multi_member_gzip_reads_all_members(tmp_path, good):
    (tmp_path / "c.jsonl.gz").write_bytes(gzip.compress(jl(good[:7])) + gzip.compress(jl(good[7:20])))
    out = run_ok(tmp_path, [tmp_path / "c.jsonl.gz"])
    assert ingest(out)["in"] == 20 and table(out, "kept").num_rows == 20


@pytest.mark.parametrize("name,encode", [
    ("plain.jsonl.gz", lambda b: b),
    ("zstd.jsonl.gz", lambda b: zstandard.ZstdCompressor().compress(b)),
    ("gzip.jsonl", gzip.compress),
])
def test_04_codec_by_magic_extension_mismatch_counted(tmp_path, good, name, encode):
    (tmp_path / name).write_bytes(encode(jl(good[:4])))
    out = run_ok(tmp_path, [tmp_path / name])
    assert table(out, "kept").num_rows == 4
    assert ingest(out)["fixes"]["extension_mismatch"] == 1


def test_04_zstd_with_right_extension(tmp_path, good):
    (tmp_path / "a.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(jl(good[:4])))
    out = run_ok(tmp_path, [tmp_path / "a.jsonl.zst"])
    assert table(out, "kept").num_rows == 4 and "extension_mismatch" not in ingest(out)["fixes"]


def test_05_decompression_bomb_is_aborted(tmp_path):
    comp = zlib_gzip_zeros(tmp_path / "bomb.jsonl.gz", 256 << 20)
    assert comp * 200 < 256 << 20  # past the default max_ratio
    out = run_ok(tmp_path, [tmp_path / "bomb.jsonl.gz"])
    assert reasons(out) == {"decompression_limit": 1}


def zlib_gzip_zeros(path: Path, n: int) -> int:
    with gzip.open(path, "wb", compresslevel=1) as f:
        block = b"\0" * (1 << 20)
        for _ in range(n >> 20):
            f.write(block)
    return path.stat().st_size


@pytest.mark.parametrize("kind", ["zip", "tar"])
def test_06_archives_are_refused_not_extracted(tmp_path, good, capsys, kind):
    if kind == "zip":
        with zipfile.ZipFile(tmp_path / "a.jsonl", "w") as z:
            z.writestr("../../evil.jsonl", jl(good[:2]))
    else:
        import tarfile

        src = tmp_path / "member.jsonl"
        src.write_bytes(jl(good[:2]))
        with tarfile.open(tmp_path / "a.jsonl", "w") as t:
            t.add(src, arcname="/abs/evil.jsonl")
        src.unlink()
    cfg = write_config(tmp_path, [tmp_path / "a.jsonl"])
    assert run(cfg) == 2
    err = capsys.readouterr().err
    assert "unsupported_container" in err and "a.jsonl" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path.parent / "evil.jsonl").exists()


def test_07_empty_files_are_zero_records(tmp_path):
    (tmp_path / "empty.jsonl").write_bytes(b"")
    (tmp_path / "empty.jsonl.gz").write_bytes(gzip.compress(b""))
    out = run_ok(tmp_path, [tmp_path / "empty.*"])
    assert ingest(out)["in"] == 0 and ingest(out)["fixes"]["empty_input_files"] == 2


def test_08_glob_matching_nothing_is_an_error(tmp_path, capsys):
    cfg = write_config(tmp_path, [tmp_path / "nothing-*.jsonl"])
    assert run(cfg) == 2
    err = capsys.readouterr().err
    assert "no_input_files" in err and "nothing-*.jsonl" in err


def test_09_input_changed_before_resume(tmp_path, good, capsys):
    f = tmp_path / "a.jsonl"
    f.write_bytes(jl(good[:3]))
    cfg = write_config(tmp_path, [f])
    assert run(cfg) == 0
    f.write_bytes(jl(good[:4]))
    assert run(cfg, "--resume") == 2
    assert "resume_mismatch" in capsys.readouterr().err


def test_09_input_changed_between_plan_and_read(tmp_path, good):
    from corpusforge.config import load_config
    from corpusforge.engines import local
    from corpusforge.errors import CorpusforgeError
    from corpusforge.runner import make_plan

    f = tmp_path / "a.jsonl"
    f.write_bytes(jl(good[:3]))
    plan = make_plan(load_config(str(write_config(tmp_path, [f]))))
    with open(f, "ab") as fh:
        fh.write(jl(good[3:4]))
    with pytest.raises(CorpusforgeError, match="input_changed.*a.jsonl"):
        local.run(plan, progress=False)


@pytest.mark.parametrize("kind", ["dir", "broken_symlink", "fifo"])
def test_10_unreadable_inputs_error_at_plan_time(tmp_path, capsys, kind):
    p = tmp_path / "x.jsonl"
    if kind == "dir":
        p.mkdir()
    elif kind == "broken_symlink":
        p.symlink_to(tmp_path / "missing.jsonl")
    else:
        os.mkfifo(p)
    cfg = write_config(tmp_path, [p])
    assert run(cfg) == 2  # returns at once: a FIFO is never opened
    err = capsys.readouterr().err
    assert "unreadable_input" in err and "x.jsonl" in err


# ---------------------------------------------------------------- 2.2 encodings


def test_11_invalid_utf8_line_quarantined_next_line_read(tmp_path, good):
    lines = jl(good[:3]).split(b"\n")
    lines[1] = lines[1][:40] + b"\xff\xfe" + lines[1][40:]
    (tmp_path / "a.jsonl").write_bytes(b"\n".join(lines))
    out = run_ok(tmp_path, [tmp_path / "a.jsonl"])
    assert reasons(out) == {"invalid_utf8": 1}
    q = quarantine_rows(out)[0]
    assert q["line"] == 2 and q["byte_offset"] == len(lines[0]) + 1
    assert table(out, "kept").num_rows == 2


def test_12_gb18030_file_trips_limit_with_hint_or_reads_with_encoding(tmp_path, good, capsys):
    data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in good[:12]).encode("gb18030")
    (tmp_path / "gbk.jsonl").write_bytes(data)
    cfg = write_config(tmp_path, [tmp_path / "gbk.jsonl"], limits={"max_quarantine_fraction": 0.01})
    assert run(cfg) == 3
    err = capsys.readouterr().err
    assert "quarantine_limit" in err and "GB18030" in err
    assert reasons(tmp_path / "out") == {"invalid_utf8": 12}
    assert_audit_ok(tmp_path / "out")
    for enc in ("gb18030", "auto"):
        cfg = write_config(tmp_path, [tmp_path / "gbk.jsonl"], input_opts={"encoding": enc}, out=f"out_{enc}")
        assert run(cfg) == 0
        kept = table(tmp_path / f"out_{enc}", "kept")
        assert kept.column("text").to_pylist() == [r["text"] for r in good[:12]]


def test_13_big5_auto_detected_and_validated(tmp_path, shared_data):
    rows = [json.loads(x) for x in (shared_data / "tradsimp" / "debian_reference_zhcn_zhtw_paragraphs.jsonl")
            .read_text(encoding="utf-8").splitlines()[:200]]
    texts = []
    for r in rows:
        try:
            r["zh_tw"].encode("big5")
            texts.append(r["zh_tw"])
        except UnicodeEncodeError:
            pass
    data = "".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in texts[:40]).encode("big5")
    (tmp_path / "big5.jsonl").write_bytes(data)
    out = run_ok(tmp_path, [tmp_path / "big5.jsonl"], input_opts={"encoding": "auto"})
    assert table(out, "kept").column("text").to_pylist() == texts[:40]
    assert ingest(out)["fixes"] == {"encoding_big5": 1}


def test_14_mixed_encoding_lines_and_mojibake(tmp_path, good):
    gbk_line = json.dumps(good[1], ensure_ascii=False).encode("gb18030")
    moji = good[2]["text"].encode("utf-8").decode("latin-1")  # the classic æ–‡ mojibake, valid UTF-8
    data = jl(good[:1]) + gbk_line + b"\n" + jl([{"text": moji}]) + jl(good[3:5])
    (tmp_path / "mixed.jsonl").write_bytes(data)
    out = run_ok(tmp_path, [tmp_path / "mixed.jsonl"], stages=[{"use": "text_sanity"}])
    assert reasons(out) == {"invalid_utf8": 1}
    assert manifest(out)["stages"][1]["dropped"] == {"text_sanity:mojibake_suspected": 1}
    assert table(out, "kept").num_rows == 3


def test_15_bom_at_start_stripped_inside_text_removed(tmp_path, good):
    rec = dict(good[0], text="\ufeff" + good[0]["text"][:50] + "\ufeff" + good[0]["text"][50:])
    (tmp_path / "bom.jsonl").write_bytes(b"\xef\xbb\xbf" + jl([rec, good[1]]))
    out = run_ok(tmp_path, [tmp_path / "bom.jsonl"], stages=[{"use": "normalize"}])
    assert ingest(out)["fixes"]["bom_stripped"] == 1
    texts = table(out, "kept").column("text").to_pylist()
    assert "\ufeff" not in texts[0] and texts[0].startswith(good[0]["text"][:20].strip())


def test_16_lone_surrogate_quarantined(tmp_path, good):
    bad = b'{"text": "\\u4e2d\\ud800\\u6587"}\n'
    (tmp_path / "s.jsonl").write_bytes(jl(good[:2]) + bad + jl(good[2:3]))
    out = run_ok(tmp_path, [tmp_path / "s.jsonl"])
    assert reasons(out) == {"lone_surrogate": 1} and quarantine_rows(out)[0]["line"] == 3


def test_17_nul_and_controls_removed_and_counted(tmp_path, good):
    t = good[0]["text"]
    recs = [{"text": t[:30] + "\u0000" + t[30:60] + "\u0007" + t[60:]}]
    raw_nul = json.dumps({"text": t[:40] + "@NUL@" + t[40:]}, ensure_ascii=False).encode().replace(b"@NUL@", b"\x00")
    (tmp_path / "n.jsonl").write_bytes(jl(recs) + raw_nul + b"\n")
    out = run_ok(tmp_path, [tmp_path / "n.jsonl"], stages=[{"use": "normalize"}])
    kept = table(out, "kept")
    assert kept.num_rows == 2
    assert all("\x00" not in x and "\x07" not in x for x in kept.column("text").to_pylist())
    assert kept.column("normalize__chars_removed").to_pylist()[0] >= 2


def test_18_line_separators_inside_records_do_not_split(tmp_path, good):
    recs = [{"text": good[0]["text"][:40] + "\u2028" + good[0]["text"][40:]},
            {"text": good[1]["text"][:40] + "\u0085" + "\r" + good[1]["text"][40:]}]
    data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in recs).encode()
    (tmp_path / "sep.jsonl").write_bytes(data)
    out = run_ok(tmp_path, [tmp_path / "sep.jsonl"])
    assert ingest(out)["in"] == 2 and table(out, "kept").column("text").to_pylist() == [r["text"] for r in recs]


def test_19_unicode_variants_normalize_to_one_text(tmp_path):
    base = "中文ABC123，测试"
    variants = ["中文ＡＢＣ１２３，测试", "中\u200b文ABC123，测试", base]
    (tmp_path / "v.jsonl").write_bytes(jl([{"text": v} for v in variants]))
    out = run_ok(tmp_path, [tmp_path / "v.jsonl"], stages=[{"use": "normalize", "with": {"nfkc": True}}])
    assert set(table(out, "kept").column("text").to_pylist()) == {base}  # Chinese comma kept by NFKC


# ---------------------------------------------------------------- 2.3 record structure


@pytest.mark.parametrize("workers", ["1", "2"])
def test_20_malformed_json_quarantined_with_column(tmp_path, good, workers):
    bad = [b'{"text": "unterminated', b'{"text": "a",}', b'{"text": "a"} {"text": "b"}']
    for i in range(3):
        (tmp_path / f"f{i}.jsonl").write_bytes(jl(good[i * 3:i * 3 + 2]) + bad[i] + b"\n" + jl(good[i * 3 + 2:i * 3 + 3]))
    cfg = write_config(tmp_path, [tmp_path / "f*.jsonl"])
    assert run(cfg, "--workers", workers) == 0
    out = tmp_path / "out"
    assert_audit_ok(out)
    q = quarantine_rows(out)
    assert [r["reason"] for r in q] == ["json_decode_error"] * 3
    assert all(r["line"] == 3 and "col" in r["detail"] for r in q)
    assert table(out, "kept").num_rows == 9


def test_21_wrong_top_level_shape(tmp_path, good):
    (tmp_path / "a.jsonl").write_bytes(jl(good[:1]) + b'["text"]\n"just a string"\n42\n')
    out = run_ok(tmp_path, [tmp_path / "a.jsonl"])
    assert reasons(out) == {"not_an_object": 3}


def test_22_missing_or_wrong_typed_text(tmp_path, good):
    bad = jl([{"body": "x"}, {"text": None}, {"text": 5}, {"text": ["a"]}])
    (tmp_path / "a.jsonl").write_bytes(jl(good[:10]) + bad)
    out = run_ok(tmp_path, [tmp_path / "a.jsonl"])
    assert reasons(out) == {"missing_text": 1, "text_not_string": 3}


def test_22_wrong_text_field_configured_is_an_error(tmp_path, good, capsys):
    (tmp_path / "a.jsonl").write_bytes(jl(good[:12]))
    cfg = write_config(tmp_path, [tmp_path / "a.jsonl"], input_opts={"text_field": "content"})
    assert run(cfg) == 2
    err = capsys.readouterr().err
    assert "missing_text" in err and "'content'" in err and "text" in err and "url" in err


def test_23_duplicate_keys_quarantined(tmp_path, good):
    (tmp_path / "a.jsonl").write_bytes(jl(good[:2]) + b'{"text": "a", "text": "b"}\n')
    out = run_ok(tmp_path, [tmp_path / "a.jsonl"])
    assert reasons(out) == {"duplicate_key": 1}


def test_24_nonstandard_numbers(tmp_path, good):
    huge = b'{"text": "x", "n": ' + b"9" * 5000 + b"}\n"
    (tmp_path / "a.jsonl").write_bytes(jl(good[:2]) + b'{"text": "x", "v": NaN}\n{"text": "x", "v": -Infinity}\n' + huge)
    out = run_ok(tmp_path, [tmp_path / "a.jsonl"])
    assert reasons(out) == {"nonstandard_json": 2, "number_out_of_range": 1}


def test_25_user_ids_are_data_never_paths(tmp_path, good):
    recs = [dict(good[i], id=uid) for i, uid in enumerate(["../../etc/passwd", "a/b", "nul\u0000id", "x\ny", "", "dup", "dup"])]
    (tmp_path / "a.jsonl").write_bytes(jl(recs))
    out = run_ok(tmp_path, [tmp_path / "a.jsonl"])
    kept = table(out, "kept")
    assert kept.num_rows == 7 and len(set(kept.column("id").to_pylist())) == 7
    user_ids = [dict(m)["id"] for m in kept.column("meta").to_pylist()]
    assert user_ids == [r["id"] for r in recs]
    assert sorted(p.name for p in (out / "kept").iterdir()) == ["part-00000.parquet"]


def test_26_empty_and_short_texts_dropped_with_reason(tmp_path, good):
    recs = [{"text": ""}, {"text": "  \n\t "}, {"text": "短文本"}, good[0]]
    (tmp_path / "a.jsonl").write_bytes(jl(recs))
    out = run_ok(tmp_path, [tmp_path / "a.jsonl"], stages=[{"use": "normalize"}, {"use": "text_sanity", "with": {"min_chars": 150}}])
    assert manifest(out)["stages"][2]["dropped"] == {"text_sanity:empty_text": 2, "text_sanity:too_short": 1}
    rej = table(out, "rejects")
    assert set(rej.column("reason").to_pylist()) == {"text_sanity:empty_text", "text_sanity:too_short"}


def test_27_giant_line_skipped_without_buffering(tmp_path, good):
    giant = b'{"text": "' + "长".encode() * (1 << 20) + b'"}\n'  # 3 MiB line
    (tmp_path / "a.jsonl").write_bytes(jl(good[:2]) + giant + jl(good[2:4]))
    out = run_ok(tmp_path, [tmp_path / "a.jsonl"], input_opts={"max_record_mb": 1})
    assert reasons(out) == {"record_too_large": 1}
    q = quarantine_rows(out)[0]
    assert q["line"] == 3 and "3145740 bytes" in q["detail"]
    assert table(out, "kept").num_rows == 4


def test_28_last_line_without_newline_vs_cut_record(tmp_path, good):
    (tmp_path / "ok.jsonl").write_bytes(jl(good[:3]).rstrip(b"\n"))
    (tmp_path / "cut.jsonl").write_bytes(jl(good[:3])[:-50])
    out = run_ok(tmp_path, [tmp_path / "*.jsonl"])
    assert reasons(out) == {"truncated_last_record": 1}
    assert table(out, "kept").num_rows == 5


def test_lines_of_non_json_whitespace_are_records_not_blank(tmp_path, good):
    """Found by fuzzing: str.strip() treats \\x1c-\\x1f and U+3000 as whitespace, which silently skipped lines."""
    (tmp_path / "a.jsonl").write_bytes(jl(good[:1]) + b"\x1c\n" + "\u3000".encode() + b"\n  \t\r\n" + jl(good[1:2]))
    out = run_ok(tmp_path, [tmp_path / "a.jsonl"])
    assert reasons(out) == {"json_decode_error": 2} and ingest(out)["fixes"] == {"blank_lines": 1}


def test_deep_json_metadata_is_quarantined_not_a_crash(tmp_path, good):
    """Found by fuzzing: 1985-deep nesting parses, but re-encoding it as metadata raised RecursionError."""
    deep = b'{"text": "x", "d": ' + b"[" * 1985 + b"]" * 1985 + b"}\n"
    (tmp_path / "a.jsonl").write_bytes(jl(good[:2]) + deep + jl(good[2:3]))
    out = run_ok(tmp_path, [tmp_path / "a.jsonl"])
    assert reasons(out) == {"json_too_deep": 1} and quarantine_rows(out)[0]["line"] == 3
    assert table(out, "kept").num_rows == 3
