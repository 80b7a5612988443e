"""End to end: `corpusforge run` with spam_fasttext → quality_lr on real data, then the audit, the
model hashes in the manifest and byte-identical results with 1 and 2 workers."""

from corpusforge.audit import audit
from corpusforge.rules_files import resolve, sha256_file
from tests.util import manifest, run, table, tree_digest, write_config

STAGES = [{"use": "spam_fasttext"}, {"use": "quality_lr", "with": {"seed": 3}}]


def _cfg(shared_data, tmp_path, out, workers=1):
    inputs = [shared_data / "web/commoncrawl_2021-43_zh_100docs.jsonl", shared_data / "prose/luxun_fiction_essays.jsonl",
              shared_data / "quality/chinesewebtext_clean_vs_dirty.jsonl"]
    cfg = write_config(tmp_path, inputs, STAGES, out=out, name=f"{out}.yaml")
    if workers != 1:
        cfg.write_text(cfg.read_text(encoding="utf-8").replace("workers: 1", f"workers: {workers}"), encoding="utf-8")
    return cfg


def test_run_model_filters_audit_and_workers(shared_data, tmp_path):
    assert run(_cfg(shared_data, tmp_path, "one")) == 0
    out = tmp_path / "one"
    assert audit(str(out)) == []
    m = manifest(out)
    by = {s["name"]: s for s in m["stages"]}
    assert by["spam_fasttext"]["in"] == 212
    assert by["spam_fasttext"]["dropped"].get("spam_fasttext:spam", 0) >= 10
    assert by["quality_lr"]["dropped"].get("quality_lr:low_quality", 0) >= 10
    assert m["rules"]["spam_fasttext:spam_fasttext.bin"] == sha256_file(resolve("models/spam_fasttext.bin"))
    assert m["rules"]["quality_lr:quality_lr.npy"] == sha256_file(resolve("models/quality_lr.npy"))
    kept = table(out, "kept")
    for col in ("spam_fasttext__prob", "quality_lr__score", "quality_lr__draw"):
        assert col in kept.column_names
    assert run(_cfg(shared_data, tmp_path, "two", workers=2)) == 0
    one, two = tree_digest(tmp_path / "one"), tree_digest(tmp_path / "two")
    assert one.keys() == two.keys() and {k for k in one if one[k] != two[k]} <= {"manifest.json", "_state.json"}
    assert table(tmp_path / "one", "kept").equals(table(tmp_path / "two", "kept"))


def test_diagnostics_histograms_and_source_ratios(shared_data, tmp_path):
    from corpusforge.models.diagnostics import diagnostics

    assert run(_cfg(shared_data, tmp_path, "d")) == 0
    m = {s["name"]: s for s in manifest(tmp_path / "d")["stages"]}
    d = diagnostics(str(tmp_path / "d"))
    for stage in ("spam_fasttext", "quality_lr"):
        assert sum(d[stage]["kept_hist"]) == m[stage]["kept"]
        assert sum(d[stage]["dropped_hist"]) == sum(m[stage]["dropped"].values())
    # spam drops sit above the 0.5 threshold, keeps below
    assert sum(d["spam_fasttext"]["dropped_hist"][:5]) == 0 and sum(d["spam_fasttext"]["kept_hist"][5:]) == 0
    assert d["quality_lr"]["keep_curve"][5] == [0.5, 0.026]
    assert 0 < d["quality_lr"]["keep_ratio_by_source"]["default"] < 1
