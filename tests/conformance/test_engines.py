"""Cross-engine conformance: the same config on the local engine (1 and 2 workers), Spark local[2],
a Spark standalone master + worker on 127.0.0.1 (through spark-submit and pipelines/spark_submit.py)
and the Beam DirectRunner (multi-processing, through pipelines/beam_run.py) must commit byte-identical
kept, rejects and quarantine files and the same manifest (but for the engine's name and options).

Every stage joins here as soon as it exists."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.sparkcluster import base_env, spark_home, standalone
from tests.util import REPO_ROOT, assert_audit_ok, committed_outputs, manifest, run, table, write_config

STAGES = [
    {"use": "clean"},
    {"use": "t2s"},
    {"use": "pangu_rules"},
    {"use": "sensitive_words"},
    {"use": "spam_fasttext"},
    {"use": "quality_lr", "with": {"seed": 7}},
    {"use": "dedup_exact"},
    {"use": "dedup_minhash"},
    {"use": "dedup_lines"},
    {"use": "decontaminate", "with": {"evals": [{"path": "evals/cmmlu_chinese_history.jsonl", "fields": ["question", "A", "B", "C", "D"]}]}},
    {"use": "pii"},
    {"use": "perplexity"},
    {"use": "tokenize"},  # with the tokenizer the fixture trains
]

pytestmark = [pytest.mark.spark, pytest.mark.beam]


@pytest.fixture(scope="module")
def corpus(shared_data, tmp_path_factory) -> Path:
    """Real mixed input (web, prose, spam, near-duplicate versions, traditional script) plus a file with
    broken records, so every outcome (kept, dropped per reason, quarantined) occurs."""
    d = tmp_path_factory.mktemp("conformance")
    bad = d / "broken.jsonl"
    good = json.loads((shared_data / "prose/luxun_fiction_essays.jsonl").read_text(encoding="utf-8").splitlines()[0])
    bad.write_bytes(b'{"text": "unterminated\n' + json.dumps(good, ensure_ascii=False).encode() + b"\n"
                    b'{"text": 42}\n\xff\xfe{"text": "bad utf-8"}\n')
    trad = d / "trad.jsonl"
    rows = [json.loads(x) for x in (shared_data / "tradsimp/debian_reference_zhcn_zhtw_paragraphs.jsonl").read_text(
        encoding="utf-8").splitlines()[:40]]
    trad.write_text("".join(json.dumps({"text": r["zh_tw"] * 3}, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    heads = []
    for rel, n in (("prose/luxun_fiction_essays.jsonl", 30), ("spam/sms_mudou_labelled.jsonl", 400),
                   ("neardup/zhwiki_versions_pool.jsonl", 150)):  # heads keep the run short; clusters are contiguous
        heads.append(d / Path(rel).name)
        heads[-1].write_text("".join((shared_data / rel).read_text(encoding="utf-8").splitlines(keepends=True)[:n]), encoding="utf-8")
    inputs = [shared_data / "web/commoncrawl_2021-43_zh_100docs.jsonl", shared_data / "quality/chinesewebtext_clean_vs_dirty.jsonl",
              *heads, trad, bad, REPO_ROOT / "tests/data/dedup_lines/gne_site_pages.jsonl"]  # site templates for dedup_lines
    leak = d / "leak.jsonl"  # real prose with a real evaluation question planted in the middle
    item = json.loads((REPO_ROOT / "rules/evals/cmmlu_chinese_history.jsonl").read_text(encoding="utf-8").splitlines()[0])
    prose = [json.loads(x)["text"] for x in (shared_data / "prose/zhwiki_articles_100.jsonl").read_text(encoding="utf-8").splitlines()[60:63]]
    leak.write_text("".join(json.dumps({"text": t[:400] + item["question"] + t[400:1200]}, ensure_ascii=False) + "\n"
                            for t in prose), encoding="utf-8")
    inputs.append(leak)
    from corpusforge.sample.tokenizer import train

    tok = d / "tokenizer.json"
    train((json.loads(x)["text"] for x in (shared_data / "prose/zhwiki_articles_100.jsonl").read_text(encoding="utf-8").splitlines()),
          2000, str(tok))
    stages = [dict(st, **({"with": {"tokenizer": str(tok)}} if st["use"] == "tokenize" else {})) for st in STAGES]
    cfg = write_config(d, inputs, stages, out="local1", input_opts={"split_mb": 0.5})
    doc = yaml.safe_load(cfg.read_text(encoding="utf-8"))
    doc["run"]["seed"] = 99
    cfg.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    assert run(cfg) == 0
    return cfg


def _neutral_manifest(out: Path) -> dict:
    m = manifest(out)
    m.pop("engine")
    m["config"]["run"].pop("output")
    m["config"]["engine"] = None
    return m


def _assert_same(ref: Path, other: Path) -> None:
    assert_audit_ok(other)
    a, b = committed_outputs(ref), committed_outputs(other)
    assert a.keys() == b.keys()
    assert [k for k in a if a[k] != b[k]] == []
    assert _neutral_manifest(ref) == _neutral_manifest(other)


def _out(cfg: Path, name: str) -> tuple[Path, str]:
    out = cfg.parent / name
    shutil.rmtree(out, ignore_errors=True)
    return out, f"run.output={out}"


def _variant(cfg: Path, name: str, stages: list[dict]) -> Path:
    """The same input with fewer stages (for the slow cluster paths that test plumbing, not stages)."""
    doc = yaml.safe_load(cfg.read_text(encoding="utf-8"))
    doc["stages"] = stages
    path = cfg.parent / name
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return path


def test_reference_run_exercises_every_outcome(corpus):
    out = corpus.parent / "local1"
    assert_audit_ok(out)
    by = {s["name"]: s for s in manifest(out)["stages"]}
    assert sum(by["ingest"]["quarantined"].values()) >= 3
    for stage in ("pangu_rules", "spam_fasttext", "quality_lr", "dedup_exact", "dedup_minhash", "decontaminate"):
        assert sum(by[stage]["dropped"].values()) > 0, stage
    kept = table(out, "kept")
    assert by["t2s"]["in"] > 0 and kept.num_rows >= 50
    assert kept.column("tokens").null_count == 0 and min(len(t) for t in kept.column("tokens").to_pylist()) > 10
    assert set(kept.column("perplexity__bucket").to_pylist()) <= {"head", "middle", "tail"}
    assert by["dedup_lines"]["fixes"]["lines_removed"] > 0 and by["pii"]["fixes"]["email"] > 0


def test_local_two_workers(corpus):
    out, s = _out(corpus, "local2")
    assert run(corpus, "--workers", "2", "--set", s) == 0
    _assert_same(corpus.parent / "local1", out)


def test_spark_local(corpus):
    from corpusforge.engines.spark import session

    spark = session({"master": "local[2]"}, 2)
    try:
        out, s = _out(corpus, "spark")
        assert run(corpus, "--engine", "spark", "--set", s) == 0
        assert manifest(out)["engine"] == "spark"
        _assert_same(corpus.parent / "local1", out)
    finally:
        spark.stop()


def test_beam_direct_runner_multiprocess(corpus):
    sys.path.insert(0, str(REPO_ROOT / "pipelines"))
    try:
        import beam_run
    finally:
        sys.path.pop(0)
    from corpusforge.cli import main

    out, s = _out(corpus, "beam")
    argv = beam_run.argv([str(corpus), "--no-progress", "--workers", "2", "--set", s, "--",
                          "--runner=DirectRunner", "--direct_running_mode=multi_processing", "--direct_num_workers=2"])
    assert main(argv) == 0
    assert manifest(out)["engine"] == "beam"
    _assert_same(corpus.parent / "local1", out)


def test_spark_submit_standalone_cluster(corpus, tmp_path):
    """A real standalone master and worker on 127.0.0.1, the job submitted with spark-submit."""
    with standalone(tmp_path, [{"SPARK_WORKER_DIR": str(tmp_path / "work")}], cores=2, memory="2g") as url:
        cheap = _variant(corpus, "standalone.yaml", STAGES[:4] + [{"use": "dedup_exact"}])
        ref, s = _out(cheap, "standalone_local")
        assert run(cheap, "--set", s) == 0
        out, s = _out(cheap, "standalone")
        cmd = [str(spark_home() / "bin" / "spark-submit"), "--master", url, "--conf", "spark.sql.shuffle.partitions=4",
               str(REPO_ROOT / "pipelines" / "spark_submit.py"), str(cheap), "--no-progress", "--set", s]
        res = subprocess.run(cmd, env=base_env(), capture_output=True, text=True, timeout=600)
        assert res.returncode == 0, res.stderr[-3000:]
        assert "dedup_exact" in res.stdout
        _assert_same(ref, out)


def test_spark_task_retries_are_idempotent(corpus):
    """The first attempt of tasks dies (SIGKILL of the Python worker after the part's files are renamed,
    before its marker); Spark retries them; the output and the ledger are exactly the reference's."""
    from corpusforge.engines.spark import session

    cheap = _variant(corpus, "retry.yaml", [{"use": "clean"}, {"use": "pangu_rules"}, {"use": "dedup_exact"}])
    ref, s = _out(cheap, "retry_local")
    assert run(cheap, "--set", s) == 0
    log = corpus.parent / "spark_faults.log"
    spark = session({"master": "local[2,4]", "spark.executorEnv.CORPUSFORGE_FAULT": "part:before_marker:1",
                     "spark.executorEnv.CORPUSFORGE_FAULT_FIRST_ATTEMPT": "1",
                     "spark.executorEnv.CORPUSFORGE_FAULT_LOG": str(log)}, 2)
    try:
        out, s = _out(cheap, "spark_retry")
        assert run(cheap, "--engine", "spark", "--set", s) == 0
        fired = log.read_text(encoding="utf-8").splitlines()
        assert fired and all("attempt=0" in x for x in fired)  # killed first attempts, retried ones ran through
        _assert_same(ref, out)
    finally:
        spark.stop()


def test_beam_failed_bundle_then_rerun_is_identical(corpus, monkeypatch):
    """The DirectRunner fails the pipeline when a bundle raises (Dataflow/Flink retry the bundle instead);
    the part tasks are idempotent, so re-executing them (--resume) ends byte-identical, nothing counted twice."""
    from corpusforge.cli import main

    out, s = _out(corpus, "beam_retry")
    log = corpus.parent / "beam_faults.log"
    base = ["run", str(corpus), "--no-progress", "--engine", "beam", "--workers", "2", "--set", s]
    monkeypatch.setenv("CORPUSFORGE_FAULT", "part:before_marker:1:raise")  # read by the fresh worker processes
    monkeypatch.setenv("CORPUSFORGE_FAULT_LOG", str(log))
    assert main(base) != 0
    assert log.read_text(encoding="utf-8").count("part:before_marker") >= 1
    assert not (out / "manifest.json").exists()
    monkeypatch.delenv("CORPUSFORGE_FAULT")
    assert main([*base, "--resume"]) == 0
    _assert_same(corpus.parent / "local1", out)
