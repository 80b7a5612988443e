"""G6 on the local engine, with every PanGu-α filtering stage and both dedups in one pipeline:
repeated runs × worker counts × PYTHONHASHSEED give byte-identical trees; the reversed input listing
gives the same decision for every document (part numbering follows the listing, so file bytes may not).
Cross-engine agreement is tests/conformance/test_engines.py (not repeated here)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.util import REPO_ROOT, assert_audit_ok, manifest, quarantine_rows, table, tree_digest, write_config

STAGES = [{"use": "normalize"}, {"use": "clean"}, {"use": "t2s"}, {"use": "pangu_rules"}, {"use": "sensitive_words"},
          {"use": "spam_fasttext"}, {"use": "quality_lr"}, {"use": "dedup_exact"}, {"use": "dedup_minhash"},
          {"use": "text_sanity", "with": {"min_chars": 100}}]


@pytest.fixture(scope="module")
def inputs(shared_data, tmp_path_factory) -> list:
    tmp = tmp_path_factory.mktemp("det")
    pool = (shared_data / "neardup" / "zhwiki_versions_pool.jsonl").read_text(encoding="utf-8").splitlines()[:90]
    (tmp / "pool.jsonl").write_text("\n".join(pool) + "\n", encoding="utf-8")  # near-duplicate clusters
    spam = (shared_data / "spam" / "trec06c_email_sample.jsonl").read_text(encoding="utf-8").splitlines()[:150]
    (tmp / "mail.jsonl").write_text("\n".join(spam) + "\n{\"text\": broken\n", encoding="utf-8")  # + a quarantined line
    return [tmp / "pool.jsonl", tmp / "mail.jsonl", shared_data / "web" / "commoncrawl_2021-43_zh_100docs.jsonl",
            shared_data / "prose" / "luxun_fiction_essays.jsonl"]


def cli(cfg, *args, seed="0"):
    r = subprocess.run([sys.executable, "-m", "corpusforge", "run", str(cfg), "--no-progress", "--overwrite", *args],
                       cwd=REPO_ROOT, env={**os.environ, "PYTHONHASHSEED": seed}, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr


def decisions(out) -> dict:
    """doc id → kept / reject reason (+ duplicate_of) / quarantine reason (by file:line)."""
    d = {i: "kept" for i in table(out, "kept").column("id").to_pylist()}
    for r in table(out, "rejects").select(["id", "reason", "duplicate_of"]).to_pylist():
        d[r["id"]] = (r["reason"], r["duplicate_of"])
    for q in quarantine_rows(out):
        d[f"{q['file']}:{q['line']}"] = q["reason"]
    return d


def test_matrix_runs_workers_hashseed_and_reversed_order(inputs, tmp_path):
    cfg = write_config(tmp_path, inputs, stages=STAGES, input_opts={"split_mb": 0.3, "source": "mix"})
    out = tmp_path / "out"
    digests = []
    for workers, seed in [("1", "0"), ("2", "12345"), ("2", "0")]:  # (b) workers, (c) hash seed, (a) a rerun
        cli(cfg, "--workers", workers, seed=seed)
        assert_audit_ok(out)
        digests.append(tree_digest(out))
    assert all(d == digests[0] for d in digests[1:])
    m = manifest(out)
    by = {s["name"]: s for s in m["stages"]}
    # the matrix is only meaningful if every stage really decided something on this input
    assert len([f for f in m["files"] if f["kind"] == "kept"]) >= 6
    assert by["ingest"]["quarantined"] == {"json_decode_error": 1}
    for name in ("pangu_rules", "spam_fasttext", "quality_lr", "dedup_minhash"):
        assert by[name]["dropped"], name
    ref = decisions(out)

    rev = write_config(tmp_path, inputs[::-1], stages=STAGES, input_opts={"split_mb": 0.3, "source": "mix"}, out="rev", name="rev.yaml")
    cli(rev, "--workers", "2", seed="4242")
    assert_audit_ok(tmp_path / "rev")
    assert decisions(tmp_path / "rev") == ref
    assert manifest(tmp_path / "rev")["stages"] == m["stages"]  # the same ledger, stage by stage
