"""Issue 24, one validation point: every command-line override goes through the same pydantic model as
the file's value (a bad flag is one line naming it, never a silent or endless run), stage parameters are
checked with the config before any input is read, and every engine has one workers default."""

from __future__ import annotations

import inspect
import json

import pyarrow.parquet as pq
import yaml

from corpusforge import demo
from corpusforge.config import DEFAULT_WORKERS, EngineConfig
from corpusforge.engines import beam, local, spark
from tests.reliability.test_ownership import cli, one_line_error
from tests.util import manifest, write_config


def test_shard_tokens_below_one_is_an_error_not_an_endless_loop(shared_data, tmp_path):
    """A negative --shard-tokens used to bypass the mixture's ge=1 (model_copy does not validate) and
    write empty shards forever; 0 was silently ignored. cli() has a timeout: a loop fails the test."""
    tok = tmp_path / "tok.json"
    assert cli("tokenizer", "train", shared_data / "prose" / "zhwiki_articles_100.jsonl", "--vocab-size", "2000",
               "--out", tok).returncode == 0
    mix = tmp_path / "mix.yaml"
    mix.write_text(yaml.safe_dump({"tokenizer": str(tok), "sources": {
        "prose": {"path": str(shared_data / "prose" / "luxun_fiction_essays.jsonl"), "epochs": 1}}}), encoding="utf-8")
    for n in ("-5", "0"):
        line = one_line_error(cli("sample", mix, "--out", tmp_path / f"s{n}", "--shard-tokens", n, "--no-progress"),
                              "bad_argument")
        assert f"--shard-tokens {int(n)}: must be >= 1" in line
        assert not (tmp_path / f"s{n}").exists()
    assert "--workers 0: must be >= 1" in one_line_error(cli("sample", mix, "--out", tmp_path / "w", "--workers", "0"),
                                                         "bad_argument")
    assert "--workers -2: must be >= 1" in one_line_error(cli("demo", tmp_path / "d", "--workers", "-2"), "bad_argument")
    assert not (tmp_path / "d").exists()


def test_bands_times_rows_over_num_perm_fails_with_the_config(shared_data, tmp_path):
    cfg = write_config(tmp_path, [shared_data / "web" / "commoncrawl_2021-43_zh_100docs.jsonl"],
                       stages=[{"use": "dedup_minhash", "with": {"bands": 50, "rows": 5}}])
    line = one_line_error(cli("run", cfg, "--no-progress"), "bad_config")
    assert "stages.0.with" in line and "bands*rows 250 > num_perm 128" in line
    assert not (tmp_path / "out").exists()  # nothing read, nothing written


def test_dedup_flags_leave_the_defaults_to_the_stage(shared_data, tmp_path):
    src = shared_data / "web" / "commoncrawl_2021-43_zh_100docs.jsonl"
    assert cli("dedup", src, tmp_path / "a", "--no-progress").returncode == 0
    stages = manifest(tmp_path / "a")["config"]["stages"]
    assert stages[-1]["use"] == "dedup_minhash" and stages[-1]["with"] == {}
    assert cli("dedup", src, tmp_path / "b", "--no-progress", "--threshold", "0.7").returncode == 0
    assert manifest(tmp_path / "b")["config"]["stages"][-1]["with"] == {"threshold": 0.7}
    assert json.loads((tmp_path / "b" / "manifest.json").read_text())["totals"]["records"] == 100


def test_one_workers_default_for_every_engine_and_the_demo():
    defaults = {f.__module__: inspect.signature(f).parameters["workers"].default
                for f in (local.run, spark.run, beam.run, demo.run_demo)}
    assert set(defaults.values()) == {DEFAULT_WORKERS} == {EngineConfig().workers}, defaults


def test_a_stages_sources_scope_travels_on_the_plan_and_spares_other_sources(shared_data, tmp_path):
    """`sources:` limits where a filter drops; it is the plan's (plan.scopes), not an attribute patched
    onto the stage, so a stage object is the same whatever it is scoped to."""
    from corpusforge.config import load_config
    from corpusforge.runner import make_plan

    files = {"web": shared_data / "web" / "commoncrawl_2021-43_zh_100docs.jsonl",
             "wiki": shared_data / "prose" / "zhwiki_articles_100.jsonl"}
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump({
        "run": {"name": "t", "output": str(tmp_path / "out")},
        "input": [{"format": "jsonl", "paths": [str(p)], "source": s} for s, p in files.items()],
        "stages": [{"use": "text_sanity", "with": {"min_chars": 1500}, "sources": ["web"]}],
        "limits": {"max_quarantine_fraction": 1.0}}), encoding="utf-8")
    plan = make_plan(load_config(str(cfg)))
    assert plan.scopes == {"text_sanity": ("web",)} and vars(plan.stages[0]).keys() == {"params"}
    assert cli("run", cfg, "--no-progress").returncode == 0
    rejects = pq.read_table(tmp_path / "out" / "rejects").to_pylist()
    kept = pq.read_table(tmp_path / "out" / "kept").to_pylist()
    assert rejects and {r["source"] for r in rejects} == {"web"}  # web documents under 1500 chars dropped
    short_wiki = [d for d in kept if d["source"] == "wiki" and d["text_sanity__chars"] < 1500]
    assert len(short_wiki) > 10  # wiki documents as short are scored but kept
    assert sum(d["source"] == "wiki" for d in kept) == 100


def _scoped_run(tmp_path, name, files, stages):
    cfg = tmp_path / f"{name}.yaml"
    cfg.write_text(yaml.safe_dump({
        "run": {"name": name, "output": str(tmp_path / name)},
        "input": [{"format": "jsonl", "paths": [str(p)], "source": s} for s, p in files.items()],
        "stages": stages, "limits": {"max_quarantine_fraction": 1.0}}), encoding="utf-8")
    assert cli("run", cfg, "--no-progress").returncode == 0
    out = tmp_path / name
    return (pq.read_table(out / "kept").to_pylist(), pq.read_table(out / "rejects").to_pylist(),
            json.loads((out / "manifest.json").read_text()))


def test_a_scoped_map_stage_leaves_other_sources_byte_for_byte(shared_data, tmp_path):
    """PanGu-α Table 2 scopes cleaning to some sources: the others come out as they went in, with nulls
    (not zeros) in the stage's columns, and in-scope rows come out as an unscoped run makes them."""
    web = shared_data / "web" / "commoncrawl_2021-43_zh_100docs.jsonl"
    files = {"web": web, "copy": web}
    kept, _, _ = _scoped_run(tmp_path, "scoped", files, [{"use": "clean", "sources": ["web"]}])
    full, _, _ = _scoped_run(tmp_path, "full", files, [{"use": "clean"}])
    ingested, _, _ = _scoped_run(tmp_path, "none", files, [])
    copy = [d for d in kept if d["source"] == "copy"]
    assert len(copy) == 100 and all(d["clean__chars_removed"] is None and d["clean__rule_hits"] is None for d in copy)
    assert sorted((d["id"], d["text"]) for d in copy) == sorted((d["id"], d["text"]) for d in ingested
                                                                if d["source"] == "copy")  # not one character changed
    mine = sorted((d["id"], d["text"], d["clean__chars_removed"]) for d in kept if d["source"] == "web")
    assert mine == sorted((d["id"], d["text"], d["clean__chars_removed"]) for d in full if d["source"] == "web")
    assert sum(r > 0 for _, _, r in mine) > 20  # clean did change the web documents


def test_a_scoped_dedup_does_not_see_other_sources(shared_data, tmp_path):
    """A source outside a global stage's scope takes no part: its copies neither go nor make others go."""
    web = shared_data / "web" / "commoncrawl_2021-43_zh_100docs.jsonl"
    files = {"web": web, "copy": web}
    kept, rejects, man = _scoped_run(tmp_path, "scoped", files, [{"use": "dedup_exact", "sources": ["copy"]}])
    assert len(kept) == 200 and not rejects and man["stages"][-1]["kept"] == 200
    kept, rejects, _ = _scoped_run(tmp_path, "all", files, [{"use": "dedup_exact"}])
    assert len(kept) == 100 and len(rejects) == 100
