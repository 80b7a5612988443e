"""Issue 25, item 7: everything after the cleaning run on the S3 server: tokenizer, sampler, `shards verify`,
trainer (killed, then --resume), eval-ppl and the report read and write s3:// paths and produce the same
bytes as on local disk; the store's secret never reaches an object or the output."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from corpusforge.cli import main
from corpusforge.io import outputs
from tests.storage.conftest import SECRET, download, put
from tests.util import torch_threads

_threads = torch_threads(2)


def _upload_tree(s3, local: Path, prefix: str) -> None:
    for p in sorted(local.rglob("*")):
        if p.is_file() and p.name != outputs.LOCK:
            put(s3, f"{prefix}/{p.relative_to(local).as_posix()}", p.read_bytes())


def _mix(path: Path, run: str, tok: str) -> Path:
    path.write_text(yaml.safe_dump({"seed": 3, "seq_len": 32, "tokenizer": tok, "shard_tokens": 20_000,
                                    "sources": {"web": {"path": run, "epochs": 1.5}}}), encoding="utf-8")
    return path


def _train(data: str, out: str, *extra: str) -> int:
    return main(["train", "--data", data, "--out", out, "--steps", "4", "--seq-len", "32", "--batch-size", "2",
                 "--eval-every", "2", "--no-progress", *extra])


def test_tokenizer_sample_train_eval_report_on_s3_match_local(s3, bucket, corpus, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CORPUSFORGE_CACHE", str(tmp_path / "cache"))
    opt = ["--storage-opt", f"endpoint={s3['endpoint']}", "--storage-opt", "access_key=testing-key-id",
           "--storage-opt", f"secret_key={SECRET}"]  # the secret planted on the command line too
    ref, b = corpus["ref"], f"s3://{bucket}"
    _upload_tree(s3, ref, f"{bucket}/run")  # a cleaned run on the store (runs to S3 are tested elsewhere)
    loc = tmp_path / "local"
    loc.mkdir()

    # tokenizer: trained on the run on S3, written to S3
    assert main(["tokenizer", "train", str(ref), "--vocab-size", "400", "--out", str(loc / "tok.json")]) == 0
    assert main(["tokenizer", "train", f"{b}/run", "--vocab-size", "400", "--out", f"{b}/tok.json", *opt]) == 0
    got = download(s3, bucket, tmp_path / "got")
    assert (got / "tok.json").read_bytes() == (loc / "tok.json").read_bytes()

    # sample: mixture source and tokenizer on S3, shards to S3; the same shard bytes as on disk
    assert main(["sample", str(_mix(loc / "mix.yaml", str(ref), str(loc / "tok.json"))), "--out", str(loc / "shards"),
                 "--no-progress"]) == 0
    assert main(["sample", str(_mix(tmp_path / "mix_s3.yaml", f"{b}/run", f"{b}/tok.json")), "--out", f"{b}/shards",
                 "--no-progress", *opt]) == 0
    got = download(s3, bucket, tmp_path / "got2")
    local_m = json.loads((loc / "shards" / "shards.json").read_text())
    s3_m = json.loads((got / "shards" / "shards.json").read_text())
    assert len(local_m["shards"]) > 1 and s3_m["shards"] == local_m["shards"]
    assert s3_m["mix"]["sources"]["web"]["path"] == [f"{b}/run"] and s3_m["mix"]["tokenizer"] == f"{b}/tok.json"
    for e in local_m["shards"]:
        for k in ("bin", "idx"):
            assert (got / "shards" / e[k]).read_bytes() == (loc / "shards" / e[k]).read_bytes()
    assert {p.name for p in (got / "shards").iterdir()} == {p.name for p in (loc / "shards").iterdir()}
    capsys.readouterr()
    assert main(["shards", "verify", f"{b}/shards", *opt]) == 0
    assert "shards ok" in capsys.readouterr().out

    # trainer: shards from S3 (cached locally), OUT on S3, stopped after step 2 then resumed from the store
    assert _train(str(loc / "shards"), str(loc / "train")) == 0
    assert _train(f"{b}/shards", f"{b}/train", "--stop-at", "2", *opt) == 0
    assert not _listed(s3, f"{bucket}/train", "model.pt")  # stopped: a checkpoint, no model
    assert _train(f"{b}/shards", f"{b}/train", "--resume", *opt) == 0
    got = download(s3, bucket, tmp_path / "got3")
    assert (got / "train" / "log.jsonl").read_bytes() == (loc / "train" / "log.jsonl").read_bytes()
    assert (got / "train" / "tokenizer.json").read_bytes() == (loc / "train" / "tokenizer.json").read_bytes()
    assert (got / "train" / "model.pt").exists() and (got / "train" / outputs.MARKER).exists()
    assert json.loads((got / "train" / "config.json").read_text())["data"]["dir"] == f"{b}/shards"
    cached = list((tmp_path / "cache" / "shards").iterdir())
    assert len(cached) == 1 and (cached[0] / "shards.json").read_bytes() == (got / "shards" / "shards.json").read_bytes()

    # eval-ppl: model and held-out shards on S3, the JSON written beside the model
    capsys.readouterr()
    assert main(["eval-ppl", "--model", str(loc / "train"), "--data", str(loc / "shards")]) == 0
    assert main(["eval-ppl", "--model", f"{b}/train", "--data", f"{b}/shards", *opt]) == 0
    here, there = (json.loads(line) for line in capsys.readouterr().out.splitlines()[-2:])
    assert there["ppl"] == here["ppl"] and there["model"] == f"{b}/train"
    assert _listed(s3, f"{bucket}/train", "eval_ppl.json")

    # report: run, shards and training log read from S3, the page written to S3
    assert main(["report", f"{b}/run", "--shards", f"{b}/shards", "--train", f"{b}/train", "--out", f"{b}/report.html",
                 "--samples", "1", "--eval-samples", "3", *opt]) == 0
    out_err = capsys.readouterr()
    got = download(s3, bucket, tmp_path / "got4")
    page = (got / "report.html").read_text(encoding="utf-8")
    assert f"{b}/shards/shards.json" in page and "s3out" in page and "eval PPL" in page

    # the planted secret is nowhere: no object, no output line
    for p in got.rglob("*"):
        if p.is_file():
            assert SECRET.encode() not in p.read_bytes(), p
    assert SECRET not in out_err.out + out_err.err


def _listed(s3, prefix: str, name: str) -> bool:
    from pyarrow import fs

    return s3["fs"].get_file_info(f"{prefix}/{name}").type == fs.FileType.File


def test_shards_verify_names_the_broken_object(s3, bucket, corpus, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CORPUSFORGE_CACHE", str(tmp_path / "cache"))
    ref, b = corpus["ref"], f"s3://{bucket}"
    opt = ["--storage-opt", f"endpoint={s3['endpoint']}"]
    assert main(["tokenizer", "train", str(ref), "--vocab-size", "400", "--out", str(tmp_path / "tok.json")]) == 0
    assert main(["sample", str(_mix(tmp_path / "mix.yaml", str(ref), str(tmp_path / "tok.json"))), "--out", f"{b}/sh",
                 "--no-progress", *opt]) == 0
    m = json.loads(download(s3, f"{bucket}/sh", tmp_path / "sh").joinpath("shards.json").read_text())
    name = m["shards"][0]["bin"]
    data = bytearray((tmp_path / "sh" / name).read_bytes())
    data[0] ^= 1
    put(s3, f"{bucket}/sh/{name}", bytes(data))
    capsys.readouterr()
    assert main(["shards", "verify", f"{b}/sh", *opt]) == 1
    err = capsys.readouterr().err
    assert f"{b}/sh/{name}: sha256 differs" in err and "cf-in-" not in err
    # a trainer never copies a shard that fails its sha256
    assert _train(f"{b}/sh", str(tmp_path / "t"), *opt) == 2
    assert f"{b}/sh/{name}: sha256 differs" in capsys.readouterr().err
    assert not list((tmp_path / "cache" / "shards").iterdir())  # no partial copy left behind


def test_sample_refuses_a_user_prefix_and_leaves_it_untouched(s3, bucket, corpus, tmp_path, capsys):
    ref, b = corpus["ref"], f"s3://{bucket}"
    put(s3, f"{bucket}/mine/notes.txt", b"my notes")
    assert main(["tokenizer", "train", str(ref), "--vocab-size", "400", "--out", str(tmp_path / "tok.json")]) == 0
    mix = str(_mix(tmp_path / "mix.yaml", str(ref), str(tmp_path / "tok.json")))
    for extra in ([], ["--overwrite"]):
        capsys.readouterr()
        assert main(["sample", mix, "--out", f"{b}/mine", "--no-progress", "--storage-opt",
                     f"endpoint={s3['endpoint']}", *extra]) == 2
        assert "notes.txt" in capsys.readouterr().err
    got = download(s3, f"{bucket}/mine", tmp_path / "mine")
    assert sorted(p.name for p in got.iterdir()) == ["notes.txt"]
