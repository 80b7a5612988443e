"""Config validation, overrides, stage registry, CLI surface, Parquet and .txt readers."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from corpusforge.cli import main
from tests.util import REPO_ROOT, assert_audit_ok, manifest, run, table, write_config


def write_yaml(tmp_path, text: str):
    p = tmp_path / "c.yaml"
    p.write_text(text, encoding="utf-8")
    return p


@pytest.mark.parametrize("body,expect", [
    ("input: {paths: [a.jsonl]}\nbogus: 1\n", "bogus: Extra inputs are not permitted"),
    ("input: {paths: [a.jsonl], txt_field: x}\n", "input.0.txt_field: Extra inputs"),
    ("input: {paths: [a.jsonl]}\nengine: {workers: two}\n", "engine.workers: Input should be a valid integer, unable to parse string as an integer (got 'two')"),
    ("input: {paths: [a.jsonl]}\nstages: [{use: text_sanity, with: {min_chars: abc}}]\n",
     "stages.0.with.min_chars: Input should be a valid integer"),
    ("input: {paths: [a.jsonl]}\nstages: [{use: text_sanity, with: {minchars: 3}}]\n", "stages.0.with.minchars: Extra inputs"),
    ("input: {paths: [a.jsonl]}\nstages: [{use: nosuchstage}]\n", "unknown_stage: "),
    ("input: {paths: [a.jsonl]}\nstages: [{use: text_sanity@7}]\n", "text_sanity has versions [1]"),
    ("input: [\n", "invalid YAML"),
    ("run: {name: x}\n", "input: Field required"),
])
def test_config_errors_name_file_and_key(tmp_path, capsys, body, expect):
    cfg = write_yaml(tmp_path, body)
    assert main(["run", str(cfg)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert str(cfg) in err and expect in err


def test_overrides_and_empty_stage_list(tmp_path, shared_data):
    src = shared_data / "prose" / "zhwiki_articles_100.jsonl"
    cfg = write_config(tmp_path, [src], stages=[{"use": "text_sanity", "with": {"min_chars": 10}}])
    assert run(cfg, "--set", "stages.0.with.min_chars=5000", "--set", "input.source=wiki") == 0
    m = manifest(tmp_path / "out")
    assert m["config"]["stages"][0]["with"]["min_chars"] == 5000
    dropped = m["stages"][1]["dropped"]["text_sanity:too_short"]
    lengths = [len(json.loads(x)["text"].replace(" ", "").replace("\n", "")) for x in src.read_text(encoding="utf-8").splitlines()]
    assert dropped == sum(n < 5000 for n in lengths)
    assert set(table(tmp_path / "out", "kept").column("source").to_pylist()) == {"wiki"}
    # an empty stage list is valid: ingest and write only
    cfg2 = write_config(tmp_path, [src], out="out2", name="c2.yaml")
    assert run(cfg2) == 0 and table(tmp_path / "out2", "kept").num_rows == 100
    assert_audit_ok(tmp_path / "out2")


def test_bad_override_is_one_line(tmp_path, capsys, shared_data):
    cfg = write_config(tmp_path, [shared_data / "prose" / "zhwiki_articles_100.jsonl"])
    assert main(["run", str(cfg), "--set", "stages.3.with.x=1"]) == 2
    assert "bad_override" in capsys.readouterr().err


def test_stages_command_lists_params(capsys):
    assert main(["stages"]) == 0
    out = capsys.readouterr().out
    assert "normalize@1  (MapStage)" in out and "text_sanity@1  (FilterStage)" in out and "min_chars: int = 1" in out
    assert "dedup_lines@1  (GlobalStage)" in out and "pii@1  (MapStage)" in out and "decontaminate@1  (FilterStage)" in out
    assert "evals: list (required)" in out and "min_docs: int = 3" in out


@pytest.mark.parametrize("cmd", [[], ["run"], ["audit"], ["demo"], ["stages"]])
def test_help_everywhere(capsys, cmd):
    with pytest.raises(SystemExit) as e:
        main([*cmd, "--help"])
    assert e.value.code == 0 and "usage: corpusforge" in capsys.readouterr().out


def test_audit_detects_tampering(tmp_path, shared_data, capsys):
    cfg = write_config(tmp_path, [shared_data / "web" / "commoncrawl_2021-43_zh_100docs.jsonl"],
                       stages=[{"use": "text_sanity", "with": {"min_chars": 300}}])
    assert run(cfg) == 0
    out = tmp_path / "out"
    assert main(["audit", str(out)]) == 0
    rejects = next((out / "rejects").glob("*.parquet"))
    t = pq.read_table(rejects)
    pq.write_table(t.slice(1), rejects)  # a silently lost reject
    assert main(["audit", str(out)]) == 1
    err = capsys.readouterr().err
    assert "sha256 differs" in err and "row count differs" in err
    (out / "kept" / "part-99999.parquet").write_bytes(b"x")
    assert main(["audit", str(out)]) == 1
    assert "not listed in the manifest" in capsys.readouterr().err


def test_audit_recomputes_chain(tmp_path, shared_data):
    """A manifest whose counts disagree with the files fails even if every file is intact."""
    cfg = write_config(tmp_path, [shared_data / "web" / "commoncrawl_2021-43_zh_100docs.jsonl"],
                       stages=[{"use": "text_sanity", "with": {"min_chars": 300}}])
    assert run(cfg) == 0
    out = tmp_path / "out"
    m = manifest(out)
    m["stages"][1]["dropped"]["text_sanity:too_short"] += 1
    m["stages"][1]["in"] += 1
    (out / "manifest.json").write_text(json.dumps(m), encoding="utf-8")
    from corpusforge.audit import audit

    assert any("stage text_sanity" in p for p in audit(str(out)))


def test_parquet_input_with_null_text(tmp_path, shared_data):
    rows = [json.loads(x) for x in (shared_data / "prose" / "luxun_fiction_essays.jsonl").read_text(encoding="utf-8").splitlines()[:20]]
    rows[3]["text"] = None
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "in.parquet")
    cfg = write_config(tmp_path, [tmp_path / "in.parquet"], input_opts={"format": "parquet", "source_field": "collection"})
    assert run(cfg) == 0
    out = tmp_path / "out"
    assert_audit_ok(out)
    assert manifest(out)["stages"][0]["quarantined"] == {"text_not_string": 1}
    kept = table(out, "kept")
    assert kept.num_rows == 19 and set(kept.column("source").to_pylist()) <= {r["collection"] for r in rows}
    assert dict(kept.column("meta")[0].as_py())["title"] == rows[0]["title"]


def test_txt_directory_input(tmp_path, shared_data):
    d = tmp_path / "txt" / "sub"
    d.mkdir(parents=True)
    rows = [json.loads(x) for x in (shared_data / "prose" / "zhwiki_articles_100.jsonl").read_text(encoding="utf-8").splitlines()[:5]]
    for i, r in enumerate(rows):
        (d / f"{i}.txt").write_text(r["text"], encoding="utf-8")
    (d / "bad.txt").write_bytes("中文".encode("gb18030") + b"\xff")
    cfg = write_config(tmp_path, [tmp_path / "txt"], input_opts={"format": "txt"})
    assert run(cfg) == 0
    out = tmp_path / "out"
    assert_audit_ok(out)
    assert manifest(out)["stages"][0]["quarantined"] == {"invalid_utf8": 1}
    assert sorted(table(out, "kept").column("text").to_pylist()) == sorted(r["text"] for r in rows)


def test_pangu_plus_runs_on_the_bundled_sample(tmp_path):
    """The opt-in "beyond PanGu" pipeline: its three stages run after the paper's and count what they did."""
    cfg = REPO_ROOT / "pipelines/configs/pangu_plus.yaml"
    assert main(["run", str(cfg), "--no-progress", "--set", f"run.output={tmp_path / 'plus'}"]) == 0
    by = {s["name"]: s for s in json.loads((tmp_path / "plus/manifest.json").read_text(encoding="utf-8"))["stages"]}
    assert list(by)[-4:] == ["quality_lr", "decontaminate", "pii", "perplexity"] and "dedup_lines" in by
    assert sum(by["pii"]["fixes"].values()) > 0 and by["decontaminate"]["fixes"]["unchecked:cmmlu_chinese_history"] == 1
