"""The whole PanGu-α flow end to end: `corpusforge demo` (a short training budget) on the bundled
sample, then the same pangu.yaml on Spark local[2] and the Beam DirectRunner, sampled with the same
mixture: the cleaned corpus and the shards must be byte-identical on all three engines."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from corpusforge.audit import audit
from corpusforge.cli import main
from corpusforge.sample.shards import verify
from corpusforge.train.trainer import losses as train_losses
from tests.util import REPO_ROOT, committed_outputs, manifest

pytestmark = [pytest.mark.spark, pytest.mark.beam]
PANGU = REPO_ROOT / "pipelines" / "configs" / "pangu.yaml"


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo") / "demo"
    assert main(["demo", str(out), "--steps", "60", "--no-progress"]) == 0
    return out


def _shard_files(d: Path) -> dict:
    """Shard bytes, and shards.json but for the resolved mixture's absolute input paths."""
    files = {p.name: p.read_bytes() for p in sorted(d.iterdir()) if p.suffix in (".bin", ".idx")}
    m = json.loads((d / "shards.json").read_text(encoding="utf-8"))
    for src in m["mix"]["sources"].values():
        src.pop("path")
    m["mix"].pop("tokenizer")
    return {**files, "shards.json": m}


def test_every_stage_balances_and_every_source_contributes(demo):
    corpus = demo / "corpus"
    assert audit(str(corpus)) == []
    m = manifest(corpus)
    names = [s["name"] for s in m["stages"]]
    assert names == ["ingest", "clean", "t2s", "pangu_rules", "sensitive_words", "spam_fasttext", "quality_lr",
                     "dedup_exact", "dedup_minhash", "perplexity"]
    for a, b in zip(m["stages"], m["stages"][1:]):
        assert a["kept"] == b["in"]
    by = {s["name"]: s for s in m["stages"]}
    for stage in ("pangu_rules", "spam_fasttext", "quality_lr", "dedup_minhash"):
        assert sum(by[stage]["dropped"].values()) > 0, stage
    sources = json.loads((demo / "shards" / "shards.json").read_text(encoding="utf-8"))["sources"]
    assert set(sources) == {"open_data", "encyclopedia", "ebooks", "common_crawl", "news"}
    assert all(s["docs_drawn"] > 0 for s in sources.values())


def test_shards_verify_and_the_model_learns(demo):
    assert verify(str(demo / "shards")) == []
    losses = list(train_losses(str(demo / "train")))
    assert len(losses) == 60
    first, last = sum(losses[:10]) / 10, sum(losses[-10:]) / 10
    assert last < first - 0.5, (first, last)
    ev = json.loads((demo / "train" / "eval_ppl.json").read_text(encoding="utf-8"))
    assert ev["docs"] == 12 and 1 < ev["ppl"] < 8000  # 8000 = uniform over the vocabulary


def test_report_renders_in_chromium(demo, page, artifacts):
    report = demo / "report.html"
    page.goto(report.as_uri())
    m = manifest(demo / "corpus")
    text = page.inner_text("body")
    for s in m["stages"][1:]:
        assert s["name"] in text
    assert f"{m['totals']['records']:,}" in text or str(m["totals"]["records"]) in text
    page.screenshot(path=str(artifacts / "e2e_report.png"), full_page=False)


@pytest.mark.parametrize("engine", ["spark", "beam"])
def test_engines_give_the_same_corpus_and_shards(demo, tmp_path, engine):
    out = tmp_path / "corpus"
    argv = ["run", str(PANGU), "--engine", engine, "--workers", "2", "--no-progress", "--set", f"run.output={out}"]
    if engine == "spark":
        from corpusforge.engines.spark import session

        spark = session({"master": "local[2]"}, 2)
    try:
        assert main(argv) == 0
    finally:
        if engine == "spark":
            spark.stop()
    assert committed_outputs(out) == committed_outputs(demo / "corpus")
    shutil.copyfile(demo / "mix.yaml", tmp_path / "mix.yaml")
    shutil.copyfile(demo / "tokenizer.json", tmp_path / "tokenizer.json")
    assert main(["sample", str(tmp_path / "mix.yaml"), "--out", str(tmp_path / "shards"), "--no-progress"]) == 0
    assert _shard_files(tmp_path / "shards") == _shard_files(demo / "shards")
