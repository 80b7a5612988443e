"""End to end: `corpusforge run` with clean → t2s → pangu_rules → sensitive_words on real data,
then the audit, the manifest's rule hashes, and resume/worker determinism of the rule stages."""

import hashlib

from corpusforge.audit import audit
from tests.util import manifest, run, table, tree_digest, write_config

STAGES = [
    {"use": "clean"},
    {"use": "t2s", "with": {"config": "tw2sp"}},
    {"use": "pangu_rules"},
    {"use": "sensitive_words"},
]


def _cfg(shared_data, tmp_path, out="out", workers=1):
    inputs = [shared_data / "web/commoncrawl_2021-43_zh_100docs.jsonl", shared_data / "prose/luxun_fiction_essays.jsonl"]
    cfg = write_config(tmp_path, inputs, STAGES, out=out, name=f"{out}.yaml")
    if workers != 1:
        cfg.write_text(cfg.read_text(encoding="utf-8").replace("workers: 1", f"workers: {workers}"), encoding="utf-8")
    return cfg


def test_run_rule_chain_audits_clean(shared_data, tmp_path):
    assert run(_cfg(shared_data, tmp_path)) == 0
    out = tmp_path / "out"
    assert audit(str(out)) == []
    m = manifest(out)
    by = {s["name"]: s for s in m["stages"]}
    assert by["clean"]["in"] == 192 and by["sensitive_words"]["kept"] == table(out, "kept").num_rows
    assert by["pangu_rules"]["dropped"].get("pangu_rules:ads", 0) >= 12
    # every rule file a stage read is hashed into the manifest, with the bytes on disk
    from corpusforge.rules_files import resolve

    for key, sha in m["rules"].items():
        stage, fname = key.split(":", 1)
        assert stage in by
    assert {"clean:zh_web.yaml", "pangu_rules:pangu.yaml", "sensitive_words:allowlist.txt"} <= set(m["rules"])
    assert m["rules"]["pangu_rules:pangu.yaml"] == hashlib.sha256(open(resolve("thresholds/pangu.yaml"), "rb").read()).hexdigest()
    kept = table(out, "kept")
    for col in ("clean__dup_paragraphs", "t2s__chars_changed", "pangu_rules__zh_ratio", "sensitive_words__categories"):
        assert col in kept.column_names
    rejects = table(out, "rejects").to_pylist()
    assert all(r["reason"] and r["reason"].split(":")[0] == r["stage"] for r in rejects)


def test_rule_chain_same_bytes_with_two_workers(shared_data, tmp_path):
    assert run(_cfg(shared_data, tmp_path, "one")) == 0
    assert run(_cfg(shared_data, tmp_path, "two", workers=2)) == 0
    assert tree_digest(tmp_path / "one").keys() == tree_digest(tmp_path / "two").keys()
    one, two = tree_digest(tmp_path / "one"), tree_digest(tmp_path / "two")
    assert {k for k in one if one[k] != two[k]} <= {"manifest.json", "_state.json"}  # these name their own config/output
    assert table(tmp_path / "one", "kept").equals(table(tmp_path / "two", "kept"))


def test_stages_pickle_after_setup_and_rebuild_resources():
    """Spark/Beam ship stage objects to executors: only parameters travel, the engine runs setup() there."""
    import pickle

    import pyarrow as pa

    from corpusforge.stage import lookup

    batch = pa.RecordBatch.from_pydict({"text": ["漢字測試，法*轮*功。" * 3]})
    for name in ("clean", "t2s", "pangu_rules", "sensitive_words"):
        cls = lookup(name)
        s = cls(cls.Params())
        s.setup()
        clone = pickle.loads(pickle.dumps(s))
        assert clone.params == s.params and set(vars(clone)) == {"params"}  # no resources travel
        clone.setup()  # as the engine does on each worker
        if hasattr(s, "map"):
            assert clone.map(batch).equals(s.map(batch))
        else:
            assert all(clone.score(batch)[k].equals(v) for k, v in s.score(batch).items())
