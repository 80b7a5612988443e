"""Local engine: determinism across worker counts, hash seeds and input order; crash + resume."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.util import REPO_ROOT, assert_audit_ok, manifest, table, tree_digest, write_config

STAGES = [{"use": "normalize"}, {"use": "text_sanity", "with": {"min_chars": 150}}]


@pytest.fixture
def corpus(shared_data):
    return [shared_data / "prose" / "luxun_fiction_essays.jsonl", shared_data / "web" / "commoncrawl_2021-43_zh_100docs.jsonl"]


def cli(cfg: Path, *args: str, env=None, **kw) -> subprocess.CompletedProcess:
    e = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "corpusforge", "run", str(cfg), "--no-progress", *args],
                          cwd=REPO_ROOT, env=e, capture_output=True, text=True, **kw)


def config(tmp_path, corpus, **kw):
    # small split_mb: the prose file becomes several parts, so 2 workers really run in parallel
    return write_config(tmp_path, corpus, stages=STAGES, input_opts={"split_mb": 0.25, "source": "mix"}, **kw)


def test_workers_and_hash_seed_give_identical_bytes(tmp_path, corpus):
    cfg = config(tmp_path, corpus)
    digests = []
    for workers, seed in [("1", "0"), ("2", "123"), ("2", "0")]:
        r = cli(cfg, "--workers", workers, "--overwrite", env={"PYTHONHASHSEED": seed})
        assert r.returncode == 0, r.stderr
        assert_audit_ok(tmp_path / "out")
        digests.append(tree_digest(tmp_path / "out"))
    assert sum(f["kind"] == "kept" for f in manifest(tmp_path / "out")["files"]) >= 5  # really split into parts
    assert digests[0] == digests[1] == digests[2]


def test_reversed_input_order_same_outputs(tmp_path, corpus):
    a = config(tmp_path, corpus, out="a", name="a.yaml")
    b = config(tmp_path, corpus[::-1], out="b", name="b.yaml")
    assert cli(a).returncode == 0 and cli(b, "--workers", "2").returncode == 0
    da, db = tree_digest(tmp_path / "a"), tree_digest(tmp_path / "b")
    for k in ("manifest.json", "_state.json"):
        ma, mb = json.loads(da.pop(k)), json.loads(db.pop(k))
        ma.pop("config"), mb.pop("config")
        assert ma == mb
    assert da == db


def test_ids_are_stable_and_traceable(tmp_path, corpus):
    cfg = config(tmp_path, corpus)
    assert cli(cfg).returncode == 0
    kept = table(tmp_path / "out", "kept")
    from corpusforge.schema import doc_id

    for row in kept.slice(0, 50).to_pylist():
        meta = dict(row["meta"])
        assert row["id"] == doc_id("mix", meta["_cf_file"], int(meta["_cf_line"]))
        src = (corpus[0].parent.parent / meta["_cf_file"]).read_bytes()
        line = src[int(meta["_cf_offset"]):].split(b"\n", 1)[0]
        assert json.loads(line)["id"] == meta["id"]  # every input field is kept in meta


FAULTS = ["write:mid:3", "write:before_rename:2", "write:after_rename:5", "part:before_marker:2",
          "part:after_marker:4", "manifest:before_write:1"]


def test_named_fault_points_then_resume_is_byte_identical(tmp_path, corpus):
    cfg = config(tmp_path, corpus)
    assert cli(cfg).returncode == 0
    reference = tree_digest(tmp_path / "out")
    for fault in FAULTS:
        r = cli(cfg, "--overwrite", env={"CORPUSFORGE_FAULT": fault})
        assert r.returncode == -signal.SIGKILL, (fault, r.returncode, r.stderr)
        r = cli(cfg, "--resume")
        assert r.returncode == 0, (fault, r.stderr)
        assert tree_digest(tmp_path / "out") == reference, fault
        assert_audit_ok(tmp_path / "out")


def test_random_sigkill_then_resume_is_byte_identical(tmp_path, corpus):
    cfg = config(tmp_path, corpus)
    t0 = time.time()
    assert cli(cfg, "--workers", "2").returncode == 0
    t_ref = time.time() - t0
    reference = tree_digest(tmp_path / "out")
    rng = random.Random(int(os.environ.get("CORPUSFORGE_KILL_SEED", "7")))
    kills = 0
    for _ in range(5):
        p = subprocess.Popen([sys.executable, "-m", "corpusforge", "run", str(cfg), "--no-progress", "--overwrite",
                              "--workers", "2"], cwd=REPO_ROOT, start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.3, 1.0) * t_ref)
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            kills += 1
        p.wait()
        # a resume may itself be killed again before finishing
        r = cli(cfg, "--resume", "--workers", "2")
        assert r.returncode == 0, r.stderr
        assert tree_digest(tmp_path / "out") == reference
        assert_audit_ok(tmp_path / "out")
    assert kills >= 3


def test_resume_with_changed_config_is_refused(tmp_path, corpus, capsys):
    cfg = config(tmp_path, corpus)
    assert cli(cfg).returncode == 0
    r = cli(cfg, "--resume", "--set", "stages.1.with.min_chars=10")
    assert r.returncode == 2 and "resume_mismatch" in r.stderr and "config" in r.stderr
    r = cli(cfg, "--resume", "--workers", "2")  # a different worker count alone is allowed
    assert r.returncode == 0, r.stderr


def _kill_mid_overwrite(out, moved):
    """What a SIGKILL during --overwrite leaves: `moved` entries (the state last) in a marked trash folder
    inside OUT, and the lock file of the killed process."""
    trash = out / ".tmp-trash-0123456789ab"
    trash.mkdir()
    (trash / ".corpusforge-output").write_text('{"corpusforge_output": "trash"}')
    for n in moved:
        os.rename(out / n, trash / n)
    (out / ".corpusforge-lock").write_text('{"host": "h", "pid": 1, "started": "2026-01-01T00:00:00Z"}')
    return trash


def test_resume_of_an_output_killed_before_its_state_starts_fresh(tmp_path, corpus):
    cfg = config(tmp_path, corpus)
    out = tmp_path / "out"
    assert cli(cfg).returncode == 0
    reference = tree_digest(out)
    # killed after every old entry moved: no state, only the marker and temp files are left
    trash = _kill_mid_overwrite(out, sorted(n for n in os.listdir(out) if not n.startswith(".")))
    (out / ".tmp-123-_state.json").write_text("{")  # and the new run killed while writing its state
    r = cli(cfg, "--resume")
    assert r.returncode == 0 and "took over a stale lock" in r.stderr, r.stderr
    assert tree_digest(out) == reference and not trash.exists() and not (out / ".corpusforge-lock").exists()
    # killed before the state moved: the old run resumes and ends byte-identical
    trash = _kill_mid_overwrite(out, ["_parts", "kept"])
    assert cli(cfg, "--resume").returncode == 0
    assert tree_digest(out) == reference and not trash.exists()
    (out / "_state.json").unlink()  # a real file without state is not ours to delete
    r = cli(cfg, "--resume")
    assert r.returncode == 2 and "resume_mismatch" in r.stderr and (out / "manifest.json").exists()


def test_existing_output_needs_resume_or_overwrite(tmp_path, corpus):
    cfg = config(tmp_path, corpus)
    assert cli(cfg).returncode == 0
    r = cli(cfg)
    assert r.returncode == 2 and "output_exists" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_worker_death_exits_nonzero_without_hanging(tmp_path, corpus):
    cfg = config(tmp_path, corpus)
    r = cli(cfg, "--workers", "2", env={"CORPUSFORGE_FAULT": "write:mid:2"}, timeout=120)
    assert r.returncode == 2 and "worker_died" in r.stderr
    assert cli(cfg, "--resume", "--workers", "2").returncode == 0
    assert_audit_ok(tmp_path / "out")
