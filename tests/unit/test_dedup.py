"""dedup_exact / dedup_minhash through the local engine: accuracy on real near-duplicates (G10),
planted clusters, determinism across workers, resume, idempotence, the mega-cluster guard, report data."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from corpusforge.algorithms.minhash import jaccard_pairs
from corpusforge.report.dedup import report
from tests.util import REPO_ROOT, assert_audit_ok, manifest, run, table, tree_digest, write_config


def dedup_stages(threshold=0.8, **kw):
    return [{"use": "normalize"}, {"use": "dedup_exact"}, {"use": "dedup_minhash", "with": {"threshold": threshold, **kw}}]


def cluster_of(out: Path) -> dict[str, str]:
    """Input id (meta.id) -> representative input id, from the persisted kept/rejects tables."""
    kept, rej = table(out, "kept"), table(out, "rejects")
    ours = {}
    for t in (kept, rej):
        if t is not None:
            for r in t.select(["id", "meta"]).to_pylist():
                ours[r["id"]] = dict(r["meta"])["id"]
    rep = {ours[i]: ours[i] for i in kept.column("id").to_pylist()}
    if rej is not None:
        for r in rej.select(["id", "duplicate_of", "stage"]).to_pylist():
            assert r["stage"].startswith("dedup_") and r["duplicate_of"] in ours
            rep[ours[r["id"]]] = ours[r["duplicate_of"]]
    for k in rep:  # exact dedup runs first: follow duplicate_of chains to the final survivor
        while rep[rep[k]] != rep[k]:
            rep[k] = rep[rep[k]]
    return rep


@pytest.fixture(scope="module")
def neardup(shared_data, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("neardup")
    cfg = write_config(tmp, [shared_data / "neardup" / "zhwiki_versions_pool.jsonl"], stages=dedup_stages(0.8),
                       input_opts={"split_mb": 0.5})
    assert run(cfg) == 0
    pairs = [json.loads(x) for x in open(shared_data / "neardup" / "zhwiki_versions_pairs.jsonl", encoding="utf-8")]
    return tmp, cfg, pairs


def test_accuracy_on_labelled_pairs(neardup, shared_data):
    tmp, _, pairs = neardup
    out = tmp / "out"
    assert_audit_ok(out)
    rep = cluster_of(out)
    pred = np.array([rep[p["a"]] == rep[p["b"]] for p in pairs])
    lab = np.array([p["jaccard_char5"] for p in pairs])
    # the same pairs measured on our own shingles (punctuation stripped): G10 asks for "the same shingles"
    pool = {json.loads(x)["id"]: json.loads(x)["text"] for x in open(shared_data / "neardup" / "zhwiki_versions_pool.jsonl",
                                                                        encoding="utf-8")}
    ours = jaccard_pairs([pool[p["a"]] for p in pairs], [pool[p["b"]] for p in pairs])
    for name, j in (("labels", lab), ("same shingles", ours)):
        pos = j >= 0.8
        precision, recall = (pred & pos).sum() / pred.sum(), (pred & pos).sum() / pos.sum()
        recall90 = (pred & (j >= 0.9)).sum() / (j >= 0.9).sum()
        false_low = (pred & (j <= 0.5)).sum() / (j <= 0.5).sum()
        print(f"[{name}] threshold 0.8: pair precision {precision:.3f} recall {recall:.3f}; recall(J>=0.9) {recall90:.3f}; "
              f"merged(J<=0.5) {false_low:.4f}; merged(J<=0.3) {(pred & (j <= 0.3)).sum()}")
        assert precision >= 0.95 and recall >= 0.95 and recall90 >= 0.95
        assert false_low <= 0.01 and not (pred & (j <= 0.3)).any()
    # every ground-truth cluster whose members are all >= 0.9 similar collapses to one survivor
    m = manifest(out)
    st = {s["name"]: s for s in m["stages"]}
    assert st["dedup_minhash"]["dropped"]["dedup_minhash:near_duplicate"] > 150
    assert st["dedup_exact"]["dropped"]["dedup_exact:exact_duplicate"] > 0


def test_rejects_carry_duplicate_of_and_cluster_id(neardup):
    tmp, _, _ = neardup
    rej = table(tmp / "out", "rejects").to_pylist()
    kept = set(table(tmp / "out", "kept").column("id").to_pylist())
    near = {r["id"] for r in rej if r["stage"] == "dedup_minhash"}
    for r in rej:
        meta = dict(r["meta"])
        # representative = minimum id; it survives its stage (an exact-dup representative may be a later near-dup)
        assert r["duplicate_of"] < r["id"]
        assert r["duplicate_of"] in kept or (r["stage"] == "dedup_exact" and r["duplicate_of"] in near)
        assert meta["_cf_dedup_cluster"] == r["duplicate_of"]
        assert r["reason"] in ("dedup_exact:exact_duplicate", "dedup_minhash:near_duplicate")


def test_report_data_from_tables(neardup):
    tmp, _, _ = neardup
    rep = report(str(tmp / "out"), samples=2)
    mh = rep["dedup_minhash"]
    rej = table(tmp / "out", "rejects")
    n_mh = sum(1 for s in rej.column("stage").to_pylist() if s == "dedup_minhash")
    assert mh["removed"] == n_mh == sum((k - 1) * v for k, v in mh["cluster_size_histogram"].items())
    assert sum(mh["duplicates_per_source"].values()) == n_mh
    c = mh["sample_clusters"][0]
    assert c["size"] == max(mh["cluster_size_histogram"]) and len(c["members"]) == c["size"] - 1
    assert c["representative"]["text"]  # full text of the kept representative


def test_dedup_of_deduplicated_output_removes_nothing(neardup, tmp_path):
    tmp, _, _ = neardup
    kept = sorted((tmp / "out" / "kept").glob("*.parquet"))
    cfg = write_config(tmp_path, kept, stages=dedup_stages(0.8), input_opts={"format": "parquet", "source": "again"})
    assert run(cfg) == 0
    st = {s["name"]: s for s in manifest(tmp_path / "out")["stages"]}
    assert st["ingest"]["kept"] == sum(1 for _ in table(tmp / "out", "kept").column("id").to_pylist()) > 100
    assert st["dedup_exact"]["dropped"] == {} and st["dedup_minhash"]["dropped"] == {}
    assert_audit_ok(tmp_path / "out")


def planted(shared_data, tmp: Path, sizes: list[int]) -> Path:
    """One base text per cluster (real prose), k copies each with a few seeded single-character edits."""
    rnd = random.Random(42)
    bases = [json.loads(x)["text"] for x in open(shared_data / "prose" / "luxun_fiction_essays.jsonl", encoding="utf-8")]
    bases = [b[:2500] for b in bases if len(b) > 1500][: len(sizes)]
    assert len(bases) == len(sizes)
    rows = []
    for c, (base, k) in enumerate(zip(bases, sizes)):
        for j in range(k):
            t = list(base)
            for _ in range(len(t) // 400):  # ~0.25% of characters replaced: Jaccard ≈ 0.97
                t[rnd.randrange(len(t))] = rnd.choice("的一是在不了有和人这中大为上个国我以要他")
            rows.append({"text": "".join(t), "cluster": f"c{c}", "copy": j})
    rnd.shuffle(rows)
    p = tmp / "planted.jsonl"
    p.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return p


def test_planted_clusters_leave_one_survivor_each_same_bytes_for_1_and_2_workers(shared_data, tmp_path):
    sizes = [1, 2, 3, 4, 5, 6, 2, 3, 1, 7]
    src = planted(shared_data, tmp_path, sizes)
    digests = []
    for workers in ("1", "2"):
        cfg = write_config(tmp_path, [src], stages=dedup_stages(0.8), input_opts={"split_mb": 0.03})
        assert run(cfg, "--workers", workers, "--overwrite") == 0
        assert_audit_ok(tmp_path / "out")
        digests.append(tree_digest(tmp_path / "out"))
    assert len([f for f in manifest(tmp_path / "out")["files"] if f["kind"] == "kept"]) >= 4  # really several parts
    assert digests[0] == digests[1]
    kept = table(tmp_path / "out", "kept")
    survivors = [dict(m)["cluster"] for m in kept.column("meta").to_pylist()]
    assert sorted(survivors) == sorted(f"c{i}" for i in range(len(sizes)))  # exactly one per cluster
    rej = table(tmp_path / "out", "rejects").to_pylist()
    assert len(rej) == sum(k - 1 for k in sizes)
    by_cluster = {dict(m)["cluster"]: i for i, m in zip(kept.column("id").to_pylist(), kept.column("meta").to_pylist())}
    for r in rej:
        assert r["duplicate_of"] == by_cluster[dict(r["meta"])["cluster"]] < r["id"]


def test_mega_cluster_guard_errors(shared_data, tmp_path):
    src = planted(shared_data, tmp_path, [6, 2])
    cfg = write_config(tmp_path, [src], stages=dedup_stages(0.8, max_cluster_size=4))
    r = subprocess.run([sys.executable, "-m", "corpusforge", "run", str(cfg), "--no-progress"], cwd=REPO_ROOT,
                       capture_output=True, text=True)
    assert r.returncode == 2
    assert "dedup_mega_cluster" in r.stderr and "has 6 members" in r.stderr and "> max_cluster_size 4" in r.stderr
    assert not (tmp_path / "out" / "manifest.json").exists()
    # per-source removal guard: clusters of 6 and 2 remove 5 + 1 of the only source's 8 documents (75%)
    cfg = write_config(tmp_path, [src], stages=dedup_stages(0.8, max_source_removal=0.5), name="src.yaml", out="out2")
    r = subprocess.run([sys.executable, "-m", "corpusforge", "run", str(cfg), "--no-progress"], cwd=REPO_ROOT,
                       capture_output=True, text=True)
    assert r.returncode == 2 and "dedup_source_removal" in r.stderr and "would remove 6 of 8 documents (75%)" in r.stderr
    cfg = write_config(tmp_path, [src], stages=dedup_stages(0.8, max_source_removal=0.8), name="ok.yaml", out="out3")
    assert run(cfg) == 0


@pytest.mark.parametrize("fault", ["part:before_marker:3", "global:before_marker:1", "global:before_marker:2",
                                   "write:before_rename:7"])
def test_kill_then_resume_is_byte_identical(shared_data, tmp_path, fault):
    src = planted(shared_data, tmp_path, [3, 1, 4, 2, 5])
    cfg = write_config(tmp_path, [src], stages=dedup_stages(0.8) + [{"use": "text_sanity", "with": {"min_chars": 150}}],
                       input_opts={"split_mb": 0.03})
    assert run(cfg) == 0
    want = tree_digest(tmp_path / "out")

    def cli(*args, env=None):
        return subprocess.run([sys.executable, "-m", "corpusforge", "run", str(cfg), "--no-progress", *args], cwd=REPO_ROOT,
                              env={**os.environ, **(env or {})}, capture_output=True, text=True)

    killed = cli("--overwrite", env={"CORPUSFORGE_FAULT": fault})
    assert killed.returncode == -9, killed.stderr
    r = cli("--resume")
    assert r.returncode == 0, r.stderr
    assert tree_digest(tmp_path / "out") == want
    assert_audit_ok(tmp_path / "out")


def test_cli_dedup_shortcut_matches_the_yaml_pipeline(neardup, shared_data, tmp_path):
    from corpusforge.cli import main

    src = shared_data / "neardup" / "zhwiki_versions_pool.jsonl"
    assert main(["dedup", str(src), str(tmp_path / "cli"), "--threshold", "0.8", "--no-progress"]) == 0
    assert_audit_ok(tmp_path / "cli")
    tmp, _, _ = neardup
    a, b = manifest(tmp_path / "cli"), manifest(tmp / "out")
    assert [s for s in a["stages"]] == [s for s in b["stages"]]  # same funnel as the YAML run
    assert sorted(table(tmp_path / "cli", "rejects").column("id").to_pylist()) == \
        sorted(table(tmp / "out", "rejects").column("id").to_pylist())
    assert main(["dedup", str(tmp_path / "missing.jsonl"), str(tmp_path / "x"), "--no-progress"]) == 2


def test_audit_rejects_duplicate_of_pointing_at_a_removed_document(neardup, tmp_path):
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from corpusforge.audit import _check_duplicate_of

    tmp, _, _ = neardup
    rej = table(tmp / "out", "rejects")
    kept = set(table(tmp / "out", "kept").column("id").to_pylist())
    names = [s["name"] for s in manifest(tmp / "out")["stages"]]
    good = tmp_path / "good.parquet"
    pq.write_table(rej, good)
    assert _check_duplicate_of([str(good)], kept, names) == []
    # point one near-duplicate at another near-duplicate (removed by the same stage): must be flagged
    near = rej.filter(pc.equal(rej.column("stage"), "dedup_minhash"))
    dup = near.column("duplicate_of").to_pylist()
    dup[0] = near.column("id")[1].as_py()
    bad = tmp_path / "bad.parquet"
    pq.write_table(near.set_column(near.schema.get_field_index("duplicate_of"), "duplicate_of", pa.array(dup, pa.string())), bad)
    problems = _check_duplicate_of([str(bad)], kept, names)
    assert len(problems) == 1 and "1 rejects have a duplicate_of" in problems[0]


def test_keep_highest_score_representative(shared_data, tmp_path):
    """keep: max_score keeps the member with the highest score column (here the longest copy), ties by min id."""
    rnd = random.Random(3)
    bases = [json.loads(x)["text"][:2400] for x in open(shared_data / "prose" / "luxun_fiction_essays.jsonl", encoding="utf-8")]
    bases = [b for b in bases if len(b) == 2400][:6]
    rows = []
    for c, base in enumerate(bases):
        for j in range(1 + c % 4):
            rows.append({"text": base[: len(base) - 12 * j], "cluster": f"c{c}", "cut": j})  # copy 0 is the longest
    rnd.shuffle(rows)
    src = tmp_path / "trimmed.jsonl"
    src.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    stages = [{"use": "text_sanity"}, {"use": "dedup_minhash", "with": {"keep": "max_score", "score": "text_sanity__chars"}}]
    cfg = write_config(tmp_path, [src], stages=stages)
    assert run(cfg) == 0
    assert_audit_ok(tmp_path / "out")
    kept = table(tmp_path / "out", "kept")
    metas = [dict(m) for m in kept.column("meta").to_pylist()]
    assert sorted(m["cluster"] for m in metas) == [f"c{c}" for c in range(len(bases))]
    assert all(m["cut"] == "0" for m in metas)  # the longest copy survived, not the minimum id
    rep = {m["cluster"]: i for m, i in zip(metas, kept.column("id").to_pylist())}
    rej = table(tmp_path / "out", "rejects").to_pylist()
    assert len(rej) == len(rows) - len(bases)
    for r in rej:
        meta = dict(r["meta"])
        assert r["duplicate_of"] == rep[meta["cluster"]]
        assert meta["_cf_dedup_cluster"] <= min(r["id"], r["duplicate_of"])  # the cluster id stays its minimum id
    bad = write_config(tmp_path, [src], stages=[{"use": "dedup_minhash", "with": {"keep": "max_score"}}], name="bad.yaml")
    assert run(bad) == 2
