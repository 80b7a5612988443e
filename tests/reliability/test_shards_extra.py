"""Issue 18, item 10: `shards verify` names a .bin/.idx pair that shards.json does not list (a Megatron
loader that globs the folder would train on it), and passes the same folder once it is gone."""

from __future__ import annotations

import shutil

import yaml

from corpusforge.cli import main
from corpusforge.sample.shards import verify


def test_an_unlisted_shard_pair_is_an_error_naming_both_files(shared_data, tmp_path, capsys):
    tok = tmp_path / "tok.json"
    assert main(["tokenizer", "train", str(shared_data / "prose" / "zhwiki_articles_100.jsonl"),
                 "--vocab-size", "2000", "--out", str(tok)]) == 0
    mix = tmp_path / "mix.yaml"
    mix.write_text(yaml.safe_dump({"seed": 1, "tokenizer": str(tok), "shard_tokens": 40_000, "sources": {
        "prose": {"path": str(shared_data / "prose" / "luxun_fiction_essays.jsonl"), "epochs": 1}}}), encoding="utf-8")
    d = tmp_path / "shards"
    assert main(["sample", str(mix), "--out", str(d), "--no-progress"]) == 0
    assert verify(str(d)) == []
    pairs = sorted(p.stem for p in d.glob("*.bin"))
    assert len(pairs) >= 2
    # a copy of a real pair under a name shards.json does not list, and an unrelated user file
    shutil.copy(d / f"{pairs[0]}.bin", d / "extra_00099.bin")
    shutil.copy(d / f"{pairs[0]}.idx", d / "extra_00099.idx")
    (d / "NOTES.txt").write_text("mine", encoding="utf-8")
    assert verify(str(d)) == [f"{d / 'extra_00099.bin'}: not listed in shards.json",
                              f"{d / 'extra_00099.idx'}: not listed in shards.json"]
    capsys.readouterr()
    assert main(["shards", "verify", str(d)]) == 1
    err = capsys.readouterr().err
    assert "extra_00099.bin: not listed in shards.json" in err and "extra_00099.idx" in err
    (d / "extra_00099.bin").unlink()
    (d / "extra_00099.idx").unlink()
    assert main(["shards", "verify", str(d)]) == 0
