"""`corpusforge quality-eval --ablate` on the shared data. The raw input is web pages, spam SMS and spam
e-mail mixed with prose; the pipeline's filters (pangu_rules, spam_fasttext) remove junk and its two
dedups find nothing left to drop. Each variant is a real run; the PPLs come from real training."""

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import yaml

from corpusforge.cli import main
from corpusforge.models.common import is_heldout
from corpusforge.models.recipe import prose_chunks
from corpusforge.train import ablate, charlm
from tests.util import read_jsonl, torch_threads, write_config, write_jsonl

_threads = torch_threads(2)

STAGES = [{"use": "pangu_rules"}, {"use": "spam_fasttext"}, {"use": "dedup_exact"}, {"use": "dedup_minhash"}]
VARIANTS = ["raw", "full", "minus_dedup_minhash"]
NOOP = "minus_dedup_minhash"  # removes a stage that drops nothing here (checked from the manifest)


def build(d: Path, shared: Path) -> None:
    """raw.jsonl (prose chunks + Common Crawl + spam), heldout.jsonl (held-out prose), tok.json, pipeline.yaml."""
    prose = [r for f in charlm.PROSE_FILES for r in read_jsonl(shared / f)]
    split = [is_heldout(r["id"], charlm.HOLDOUT_FRAC, charlm.HOLDOUT_SEED) for r in prose]
    prose_train = [c for r, h in zip(prose, split) if not h for c in prose_chunks(r["text"])]
    sms = [r["text"] for r in read_jsonl(shared / "spam/sms_mudou_labelled.jsonl") if r["label"] == "spam"]
    trec = [r["text"] for r in read_jsonl(shared / "spam/trec06c_email_sample.jsonl") if r["label"] == "spam"]
    web = [r["text"] for r in read_jsonl(shared / "web/commoncrawl_2021-43_zh_100docs.jsonl")]
    write_jsonl(d / "raw.jsonl", prose_train[::3] + sms + trec)  # mostly junk, as crawled text is
    # every held-out prose document (Wikipedia and Lu Xun): a narrow held-out set makes the PPL hinge on
    # which topics a sample happens to hold (8 Wikipedia articles gave seed-to-seed swings larger than the effect)
    write_jsonl(d / "heldout.jsonl", [r["text"] for r, h in zip(prose, split) if h])
    write_jsonl(d / "tok_text.jsonl", prose_train[:300] + web + sms[:300])  # both kinds: a tokenizer favouring neither
    assert main(["tokenizer", "train", str(d / "tok_text.jsonl"), "--vocab-size", "800", "--out", str(d / "tok.json")]) == 0
    write_config(d, [d / "raw.jsonl"], STAGES, out="pipeline_out", name="pipeline.yaml")


def config(d: Path, name: str = "abl.yaml", **kw) -> Path:
    cfg = {"out": "abl_out", "pipeline": "pipeline.yaml", "variants": VARIANTS, "tokenizer": "tok.json",
           "heldout": "heldout.jsonl", "budget_tokens": 30000, "seeds": [1, 2, 3], "model": "tiny", "seq_len": 64,
           "train": {"steps": 30, "batch_size": 8, "lr": 0.01, "device": "cpu"}} | kw
    (d / name).write_text(yaml.safe_dump(cfg))
    return d / name


@pytest.fixture(scope="module")
def setup(tmp_path_factory, shared_data):
    d = tmp_path_factory.mktemp("ablate")
    build(d, shared_data)
    return d


@pytest.fixture(scope="module")
def report(setup):
    assert main(["quality-eval", "--ablate", str(config(setup)), "--no-progress"]) == 0
    return json.loads((setup / "abl_out" / "ablation.json").read_text())


def _stage(v: dict, name: str) -> dict:
    return next(s for s in v["funnel"] if s["stage"] == name)


def test_full_pipeline_beats_raw_on_every_seed(setup, report, capsys):
    raw, full = report["variants"]["raw"], report["variants"]["full"]
    with capsys.disabled():
        print("\n" + ablate.table(report))
    assert report["order"] == VARIANTS and raw["stages"] == [] and full["stages"] == [s["use"] for s in STAGES]
    assert sum(_stage(full, "pangu_rules")["dropped_by_reason"].values()) > 0 and _stage(full, "spam_fasttext")["dropped"] > 0
    assert raw["kept_docs"] == raw["input_docs"] > full["kept_docs"] > 0
    assert all(r < w for r, w in zip(full["heldout_ppl"], raw["heldout_ppl"])), (full, raw)
    assert raw["delta_vs_full"] > 0 and raw["sign_holds_every_seed"] is True and full["delta_vs_full"] is None
    assert min(raw["sampled_docs"] + full["sampled_docs"]) >= report["min_docs"]
    qe = json.loads((setup / "abl_out" / "quality_eval.json").read_text())  # what `corpusforge report` discovers
    assert qe["candidates"]["raw"]["mean_ppl"] == raw["mean_ppl"] and qe["paired"] is True
    md = (setup / "abl_out" / "ablation.md").read_text()
    assert "| raw |" in md and "| full |" in md and "Δ vs full" in md
    for v in report["variants"].values():  # every variant is an ordinary run, its config file beside it
        run_dir = setup / "abl_out" / v["run_dir"]
        assert (run_dir / "manifest.json").is_file() and (setup / "abl_out" / v["config"]).is_file()
        assert v["run_dir"].startswith("variants/") and len(run_dir.name.rsplit("-", 1)[1]) == 12


def test_removing_a_stage_that_drops_nothing_changes_nothing(setup, report):
    full, noop = report["variants"]["full"], report["variants"][NOOP]
    assert _stage(full, "dedup_minhash")["dropped"] == 0 and "dedup_minhash" not in noop["stages"]
    assert noop["kept_files"] == full["kept_files"]  # the manifests' sha256 of the kept files
    for f in full["kept_files"]:  # and the files themselves
        for v in (full, noop):
            assert hashlib.sha256((setup / "abl_out" / v["run_dir"] / f["path"]).read_bytes()).hexdigest() == f["sha256"]
    assert noop["heldout_ppl"] == full["heldout_ppl"]  # exactly: the paired sampler draws the same documents
    assert noop["delta_vs_full"] == 0 and noop["sign_holds_every_seed"] is True


def test_too_small_budget_and_bad_variants_are_refused(setup, capsys):
    assert main(["quality-eval", "--ablate", str(config(setup, "small.yaml", budget_tokens=1500, out="abl_small")),
                 "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "budget_too_small" in err and "distinct documents" in err and "raise budget_tokens" in err
    assert not (setup / "abl_small" / "runs").exists()  # refused before anything trained
    assert main(["quality-eval", "--ablate", str(config(setup, "bad.yaml", variants=["raw", "minus_clean"]))]) == 2
    err = capsys.readouterr().err
    assert "unknown 'minus_clean'" in err and "valid: raw, full, minus_pangu_rules, minus_spam_fasttext" in err
    write_jsonl(setup / "sms.jsonl", [r["text"] for r in read_jsonl(setup / "raw.jsonl") if len(r["text"]) < 100][:300])
    write_config(setup, [setup / "sms.jsonl"], [{"use": "pangu_rules"}], out="sms_out", name="sms_pipeline.yaml")
    cfg = config(setup, "empty.yaml", pipeline="sms_pipeline.yaml", variants=["full"], out="abl_empty")
    assert main(["quality-eval", "--ablate", str(cfg), "--no-progress"]) == 2
    assert "empty_variant: variant full: the pipeline kept no documents" in capsys.readouterr().err
    assert main(["quality-eval", "--no-progress"]) == 2 and "CONFIG.yaml or --ablate" in capsys.readouterr().err


def test_second_invocation_reuses_finished_runs_and_resumes_unfinished(setup, report, capsys):
    out = setup / "abl_out"
    dirs = {n: out / report["variants"][n]["run_dir"] for n in VARIANTS}
    before = {n: ((d / "manifest.json").read_bytes(), (d / "run_info.json").stat().st_mtime_ns) for n, d in dirs.items()}
    (dirs[NOOP] / "manifest.json").unlink()  # as if killed before its manifest: the runner resumes it
    capsys.readouterr()
    cheap = config(setup, "again.yaml", seeds=[1], train={"steps": 2, "batch_size": 2, "lr": 0.01, "device": "cpu"})
    assert main(["quality-eval", "--ablate", str(cheap), "--no-progress"]) == 0
    err = capsys.readouterr().err
    again = json.loads((out / "ablation.json").read_text())
    assert {n: v["cache"] for n, v in again["variants"].items()} == {"raw": "reused", "full": "reused", NOOP: "resumed"}
    assert "ablation: raw: reused" in err and f"ablation: {NOOP}: resuming" in err
    for n, d in dirs.items():
        assert (d / "manifest.json").read_bytes() == before[n][0]  # the resumed manifest is the same bytes
        if n != NOOP:
            assert (d / "run_info.json").stat().st_mtime_ns == before[n][1], n  # the runner never ran
    assert sorted(p.name for p in (out / "variants").iterdir() if p.is_dir()) == sorted(d.name for d in dirs.values())


@pytest.mark.spark
@pytest.mark.beam
def test_variants_are_the_same_bytes_on_every_engine(setup):
    """Every variant of a smaller pipeline (a filter and a global stage) on local, Spark local[2] and the
    Beam DirectRunner: the same kept files (sha256) per variant."""
    from pyspark.sql import SparkSession

    rows = read_jsonl(setup / "raw.jsonl")
    write_jsonl(setup / "small.jsonl", [r["text"] for r in rows[::8]])
    kept = {}
    for kind, options in (("local", {}), ("spark", {"master": "local[2]"}), ("beam", {})):
        pipe = write_config(setup, [setup / "small.jsonl"], [{"use": "pangu_rules"}, {"use": "dedup_exact"}],
                            out="unused", name=f"pipe_{kind}.yaml")
        doc = yaml.safe_load(pipe.read_text())
        doc["engine"] = {"kind": kind, "workers": 2, "options": options}
        pipe.write_text(yaml.safe_dump(doc))
        try:
            vs = ablate.run_variants(ablate.load_config(config(setup, "eng.yaml", pipeline=pipe.name, variants=None,
                                                               out="abl_engines")), progress=False)
        finally:
            if kind == "spark" and SparkSession.getActiveSession():
                SparkSession.getActiveSession().stop()
        assert {v.manifest["engine"] for v in vs} == {kind}
        kept[kind] = {v.name: [f["sha256"] for f in v.manifest["files"] if f["kind"] == "kept"] for v in vs}
    assert list(kept["local"]) == ["raw", "full", "minus_pangu_rules", "minus_dedup_exact"]
    assert kept["local"]["raw"] != kept["local"]["full"]
    assert kept["spark"] == kept["local"] and kept["beam"] == kept["local"]
    shutil.rmtree(setup / "abl_engines")
