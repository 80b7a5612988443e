"""End to end: `corpusforge run` with spam_fasttext → quality_lr on real data, then the audit, the
model hashes in the manifest and byte-identical results with 1 and 2 workers."""

from corpusforge.audit import audit
from corpusforge.rules_files import resolve, sha256_file
from tests.util import REPO_ROOT, manifest, run, table, tree_digest, write_config

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
    # spam drops sit at or above the model's threshold, keeps below (bins of 0.1)
    import math

    from corpusforge.stages.model_filters import SpamFastText

    t = SpamFastText(SpamFastText.Params()).threshold()
    assert sum(d["spam_fasttext"]["dropped_hist"][:int(t * 10)]) == 0
    assert sum(d["spam_fasttext"]["kept_hist"][math.ceil(t * 10):]) == 0
    assert d["quality_lr"]["keep_curve"][5] == [0.5, 0.026]
    assert 0 < d["quality_lr"]["keep_ratio_by_source"]["default"] < 1


def test_pangu_yaml_scopes_the_spam_filter_by_source_as_table_2(shared_data, tmp_path):
    """The same spam-scored text is dropped as Common Crawl and kept as news: PanGu-α Table 2 ran only
    dedup on news. Real text: TREC06C spam e-mails of the test split (never trained on)."""
    import json

    import numpy as np
    import yaml

    from corpusforge.models import recipe, spam
    from corpusforge.stages.model_filters import SpamFastText

    stage = SpamFastText(SpamFastText.Params())
    t = stage.threshold()
    mails = [x for x in recipe.by_genre(recipe.load(str(shared_data), str(REPO_ROOT / "data")), "test")["email_spam"]
             if len(x) > 300 and sum("\u4e00" <= c <= "\u9fff" for c in x) > 0.5 * len(x)]
    p = spam.spam_prob(spam.load(resolve("models/spam_fasttext.bin")), mails)
    texts = list({"".join(mails[i].split())[:200]: mails[i] for i in np.argsort(-p)[:80] if p[i] >= t}.values())[:20]
    assert len(texts) >= 10  # spam is often sent many times: near-identical mails collapse here
    files = {}
    for src, rows in (("news", texts), ("common_crawl", texts),
                      ("open_data", texts[:0]), ("encyclopedia", texts[:0]), ("ebooks", texts[:0])):
        files[src] = tmp_path / f"{src}.jsonl"
        files[src].write_text("".join(json.dumps({"text": x}, ensure_ascii=False) + "\n" for x in rows), encoding="utf-8")
    cfg = yaml.safe_load(open(REPO_ROOT / "corpusforge/data/pangu.yaml", encoding="utf-8"))
    cfg["input"] = [{"source": s, "format": "jsonl", "paths": [str(f)]} for s, f in files.items()]
    cfg["run"]["output"] = str(tmp_path / "out")
    cfg["engine"]["workers"] = 1
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    assert run(tmp_path / "p.yaml") == 0
    kept, rejects = table(tmp_path / "out", "kept").to_pylist(), table(tmp_path / "out", "rejects").to_pylist()
    news = [d for d in kept if d["source"] == "news"]
    news_gone = [r["reason"] for r in rejects if r["source"] == "news"]
    # news only meets dedup (copies of one spam mail sent twice): never the spam, rule or sensitive-word filters
    assert all(r.startswith("dedup_") for r in news_gone) and len(news) + len(news_gone) == len(texts)
    assert len(news) >= 5 and all(d["spam_fasttext__prob"] >= t for d in news)
    assert not [d for d in kept if d["source"] == "common_crawl"]
    cc = [r["reason"] for r in rejects if r["source"] == "common_crawl"]
    assert len(cc) == len(texts) and cc.count("spam_fasttext:spam") >= 5
