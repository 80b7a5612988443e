"""Issue 18, item 10 (train half): `train --overwrite` removes its own leftovers (the 0-byte temp file a
kill during the first checkpoint leaves), and refuses a folder it did not write or its own shard input."""

from __future__ import annotations

import os

import pytest
import yaml

from corpusforge.cli import main
from corpusforge.io import outputs
from tests.util import read_jsonl, torch_threads, write_jsonl

_threads = torch_threads(2)


@pytest.fixture(scope="module")
def shards(tmp_path_factory, shared_data):
    d = tmp_path_factory.mktemp("tshards")
    write_jsonl(d / "t.jsonl", [r["text"] for r in read_jsonl(shared_data / "prose" / "luxun_fiction_essays.jsonl")][:40])
    assert main(["tokenizer", "train", str(d / "t.jsonl"), "--vocab-size", "400", "--out", str(d / "tok.json")]) == 0
    (d / "mix.yaml").write_text(yaml.safe_dump({"seed": 1, "seq_len": 32, "tokenizer": "tok.json",
                                                "sources": {"prose": {"path": "t.jsonl", "epochs": 1.0}}}))
    assert main(["sample", str(d / "mix.yaml"), "--out", str(d / "shards"), "--no-progress"]) == 0
    return d / "shards"


def _train(shards, out, *extra) -> int:
    return main(["train", "--data", str(shards), "--out", str(out), "--steps", "4", "--seq-len", "32", "--batch-size", "2",
                 "--eval-every", "2", "--no-progress", *extra])


def test_train_overwrite_removes_a_killed_checkpoints_temp_file(shards, tmp_path, capsys):
    out = tmp_path / "run"
    assert _train(shards, out) == 0
    assert (out / outputs.MARKER).exists()
    leftover = out / ".tmp-4242-checkpoint.pt"  # what SIGKILL inside atomic_file(checkpoint.pt) leaves
    leftover.write_bytes(b"")
    assert _train(shards, out) == 2 and "output_exists" in capsys.readouterr().err
    assert _train(shards, out, "--overwrite") == 0
    assert not [n for n in os.listdir(out) if n.startswith(".tmp-")]
    assert (out / "model.pt").exists() and (out / "checkpoint.pt").exists()


def test_train_refuses_a_foreign_folder_and_its_own_input(shards, tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "paper.pdf").write_bytes(b"%PDF-1.7 mine")
    assert _train(shards, mine, "--overwrite") == 2
    assert "output_not_ours" in capsys.readouterr().err and (mine / "paper.pdf").read_bytes() == b"%PDF-1.7 mine"
    before = sorted(os.listdir(shards))
    assert _train(shards, shards / "model", "--overwrite") == 2
    assert "output_overlaps_input" in capsys.readouterr().err and sorted(os.listdir(shards)) == before
