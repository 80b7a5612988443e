"""Issue 18, items 4, 5 and 7: the manifest hashes the bytes actually read, a cut .zst is a truncated
input like a cut .gz, and each real file is read once however many symlinks reach it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from corpusforge.config import load_config
from corpusforge.engines import local
from corpusforge.errors import CorpusforgeError
from corpusforge.runner import make_plan
from tests.util import assert_audit_ok, manifest, quarantine_rows, run, table, write_config


@pytest.fixture(scope="module")
def docs(shared_data) -> list[dict]:
    path = shared_data / "web" / "commoncrawl_2021-43_zh_100docs.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def jl(rows) -> bytes:
    return b"".join(json.dumps(r, ensure_ascii=False).encode() + b"\n" for r in rows)


def ingest(out: Path) -> dict:
    return manifest(out)["stages"][0]


# ---------------------------------------------------------------- item 4: an input edited during a run


def _edit_in_place(path: Path) -> None:
    """Same size, mtime put back: what size+mtime checks cannot see."""
    st = path.stat()
    data = bytearray(path.read_bytes())
    i = data.index("的".encode())
    data[i:i + 3] = "地".encode()
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_size == st.st_size and path.stat().st_mtime_ns == st.st_mtime_ns


def _run_after_edit(target: Path, cfg: Path) -> str:
    plan = make_plan(load_config(str(cfg)))
    _edit_in_place(target)  # between plan and read
    with pytest.raises(CorpusforgeError) as e:
        local.run(plan, progress=False)
    assert e.value.code == "input_changed" and target.name in str(e.value)
    assert not os.path.exists(os.path.join(plan.out, "manifest.json"))  # nothing claims the old bytes
    return str(e.value)


@pytest.mark.parametrize("split_mb", [32, 0.05])  # a whole file, and byte-range parts of it
def test_jsonl_edited_between_plan_and_read_is_input_changed(tmp_path, docs, split_mb):
    src = tmp_path / "a.jsonl"
    src.write_bytes(jl(docs))
    cfg = write_config(tmp_path, [src], input_opts={"split_mb": split_mb})
    assert "sha256" in _run_after_edit(src, cfg)


def test_gzip_parquet_and_txt_edited_between_plan_and_read_are_input_changed(tmp_path, docs):
    import gzip

    (tmp_path / "a.jsonl.gz").write_bytes(gzip.compress(jl(docs), compresslevel=0))  # stored: the edit stays valid
    _run_after_edit(tmp_path / "a.jsonl.gz", write_config(tmp_path, [tmp_path / "a.jsonl.gz"], out="o1"))
    pq.write_table(pa.Table.from_pylist([{"text": d["text"]} for d in docs[:20]]), tmp_path / "a.parquet",
                   compression="none")  # uncompressed, so an in-place edit stays valid Parquet
    _run_after_edit(tmp_path / "a.parquet", write_config(tmp_path, [tmp_path / "a.parquet"],
                                                         input_opts={"format": "parquet"}, out="o2"))
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "x.txt").write_text(docs[0]["text"], encoding="utf-8")
    _run_after_edit(tmp_path / "t" / "x.txt", write_config(tmp_path, [tmp_path / "t"], input_opts={"format": "txt"}, out="o3"))


def test_unchanged_input_runs_and_the_manifest_hash_is_of_the_bytes_read(tmp_path, docs):
    import hashlib

    src = tmp_path / "a.jsonl"
    src.write_bytes(jl(docs))
    assert run(write_config(tmp_path, [src], input_opts={"split_mb": 0.05})) == 0
    assert manifest(tmp_path / "out")["inputs"][0]["sha256"] == hashlib.sha256(src.read_bytes()).hexdigest()
    assert table(tmp_path / "out", "kept").num_rows == len(docs)


# ---------------------------------------------------------------- item 5: truncated .zst


@pytest.mark.parametrize("n", [60, 4000])  # small: one block, nothing decoded before the cut; large: many
def test_truncated_zstd_is_truncated_input_and_keeps_nothing(tmp_path, docs, n):
    rows = [docs[i % len(docs)] | {"n": i} for i in range(n)]
    data = zstandard.ZstdCompressor(level=3).compress(jl(rows))
    (tmp_path / "bad.jsonl.zst").write_bytes(data[: len(data) * 2 // 3])
    (tmp_path / "ok.jsonl").write_bytes(jl(docs[:5]))
    assert run(write_config(tmp_path, [tmp_path / "*.jsonl*"])) == 0
    out = tmp_path / "out"
    assert_audit_ok(out)
    assert ingest(out)["quarantined"] == {"truncated_input": 1}
    assert "empty_input_files" not in ingest(out).get("fixes", {})
    assert table(out, "kept").num_rows == 5
    q = [r for r in quarantine_rows(out) if r["file"] == "bad.jsonl.zst"]
    assert len(q) == 1 and "last complete line" in q[0]["detail"]


def test_truncated_zstd_salvage_keeps_the_decoded_prefix(tmp_path, docs):
    rows = [docs[i % len(docs)] | {"n": i} for i in range(4000)]
    data = zstandard.ZstdCompressor(level=3).compress(jl(rows))
    (tmp_path / "bad.jsonl.zst").write_bytes(data[: len(data) // 2])
    assert run(write_config(tmp_path, [tmp_path / "bad.jsonl.zst"], input_opts={"salvage_truncated": True})) == 0
    out = tmp_path / "out"
    assert_audit_ok(out)
    kept = table(out, "kept").num_rows
    assert 0 < kept < 4000 and ingest(out)["fixes"]["salvaged_prefix_lines"] == kept


def test_multi_frame_and_skippable_frame_zstd_read_whole(tmp_path, docs):
    c = zstandard.ZstdCompressor()
    skippable = (0x184D2A50).to_bytes(4, "little") + (5).to_bytes(4, "little") + b"hello"
    (tmp_path / "m.jsonl.zst").write_bytes(c.compress(jl(docs[:30])) + skippable + c.compress(jl(docs[30:])))
    assert run(write_config(tmp_path, [tmp_path / "m.jsonl.zst"])) == 0
    assert table(tmp_path / "out", "kept").num_rows == len(docs) and ingest(tmp_path / "out")["quarantined"] == {}


# ---------------------------------------------------------------- item 7: symlink loops


def test_a_directory_loop_under_a_recursive_glob_reads_each_file_once(tmp_path, docs):
    (tmp_path / "in" / "sub").mkdir(parents=True)
    (tmp_path / "in" / "a.jsonl").write_bytes(jl(docs[:50]))
    (tmp_path / "in" / "sub" / "b.jsonl").write_bytes(jl(docs[50:]))
    os.symlink("..", tmp_path / "in" / "sub" / "loop")
    assert run(write_config(tmp_path, [tmp_path / "in" / "**" / "*.jsonl"])) == 0
    out = tmp_path / "out"
    assert_audit_ok(out)
    assert ingest(out)["in"] == len(docs) and [f["path"] for f in manifest(out)["inputs"]] == ["a.jsonl", "sub/b.jsonl"]


def test_a_txt_folder_with_a_loop_reads_each_file_once(tmp_path, docs):
    (tmp_path / "t" / "d").mkdir(parents=True)
    for i in range(3):
        (tmp_path / "t" / "d" / f"{i}.txt").write_text(docs[i]["text"], encoding="utf-8")
    os.symlink("../..", tmp_path / "t" / "d" / "up")
    assert run(write_config(tmp_path, [tmp_path / "t"], input_opts={"format": "txt"})) == 0
    assert ingest(tmp_path / "out")["in"] == 3


def test_the_same_file_through_two_paths_is_read_once_and_counted(tmp_path, docs):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jsonl").write_bytes(jl(docs[:10]))
    os.symlink("a.jsonl", tmp_path / "in" / "b.jsonl")
    assert run(write_config(tmp_path, [tmp_path / "in" / "*.jsonl"])) == 0
    out = tmp_path / "out"
    assert_audit_ok(out)
    assert ingest(out)["in"] == 10 and ingest(out)["fixes"]["duplicate_input_path"] == 1


def test_a_file_symlink_loop_is_unreadable_input(tmp_path, docs, capsys):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jsonl").write_bytes(jl(docs[:3]))
    os.symlink("c.jsonl", tmp_path / "in" / "b.jsonl")
    os.symlink("b.jsonl", tmp_path / "in" / "c.jsonl")
    assert run(write_config(tmp_path, [tmp_path / "in" / "*.jsonl"])) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unreadable_input" in err[0] and "b.jsonl: symlink loop" in err[0]
    assert not (tmp_path / "out").exists()
