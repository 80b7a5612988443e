"""URI routing of the storage layer (no servers for GCS, HDFS or Azure here: routing and globbing only;
the S3 path runs against a real loopback server in tests/storage)."""

from __future__ import annotations

import pytest

from corpusforge.errors import CorpusforgeError
from corpusforge.io import fs


@pytest.mark.parametrize("uri,scheme,rest", [
    ("s3://bucket/raw/a.jsonl", "s3", "bucket/raw/a.jsonl"),
    ("gs://bucket/a.jsonl.gz", "gs", "bucket/a.jsonl.gz"),
    ("hdfs://namenode:8020/corpus/a.jsonl", "hdfs", "namenode:8020/corpus/a.jsonl"),
    ("abfs://container@account.dfs.core.windows.net/a", "abfs", "container@account.dfs.core.windows.net/a"),
    ("file:///data/a.jsonl", None, "/data/a.jsonl"),
    ("/data/a.jsonl", None, "/data/a.jsonl"),
    ("relative/a.jsonl", None, "relative/a.jsonl"),
])
def test_split_uri(uri, scheme, rest):
    assert fs.split_uri(uri) == (scheme, rest)
    assert fs.is_remote(uri) == (scheme is not None)


def test_unknown_scheme_is_an_error_naming_it():
    with pytest.raises(CorpusforgeError) as e:
        fs.split_uri("ftp://host/a.jsonl")
    assert e.value.code == "bad_path" and "ftp://" in str(e.value)


def test_glob_segments_follow_local_glob_rules():
    rx = fs._glob_regex("b/raw/**/*.jsonl".split("/"))
    assert [p for p in ("b/raw/a.jsonl", "b/raw/x/y/a.jsonl", "b/raw/.h/a.jsonl", "b/raw/x/.a.jsonl", "b/rawx/a.jsonl",
                        "b/raw/a.jsonl.gz") if rx.fullmatch(p)] == ["b/raw/a.jsonl", "b/raw/x/y/a.jsonl"]
    rx = fs._glob_regex("b/p-[0-9]?.txt".split("/"))
    assert rx.fullmatch("b/p-12.txt") and not rx.fullmatch("b/p-a2.txt") and not rx.fullmatch("b/x/p-12.txt")


@pytest.mark.parametrize("out,inp,clash", [
    ("s3://b/out", "s3://b/raw/*.jsonl", False),
    ("s3://b/raw", "s3://b/raw/*.jsonl", True),          # the output is the input prefix
    ("s3://b/raw/out", "s3://b/raw/**/*.jsonl", True),   # ** reaches into the output
    ("s3://b/raw/out", "s3://b/raw/*.jsonl", False),     # * stays in one segment: raw/out/x is not matched
    ("s3://b", "s3://b/raw/a.jsonl", True),              # the output contains the input
    ("s3://b/raw-2", "s3://b/raw/a.jsonl", False),       # a sibling prefix, not inside
    ("s3://other/raw", "s3://b/raw/a.jsonl", False),
])
def test_uri_output_overlap(out, inp, clash):
    from corpusforge.io import overlap

    if clash:
        with pytest.raises(CorpusforgeError) as e:
            overlap.check_no_overlap(out, [inp])
        assert e.value.code == "output_overlaps_input"
    else:
        overlap.check_no_overlap(out, [inp])


def test_commands_on_local_paths_refuse_a_uri_in_one_line(capsys):
    from corpusforge.cli import main

    assert main(["quality-eval", "qe.yaml", "--out", "s3://b/qe"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("corpusforge: error: unsupported_storage: quality-eval reads and writes local paths only, not s3://b/qe")
    assert len(err.strip().splitlines()) == 1
