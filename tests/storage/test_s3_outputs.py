"""Issue 25, outputs: a run whose input and output both live on the loopback S3 server. Objects are
written once under their final keys (no rename), each part's marker last with every file's sha256;
the output is byte-identical to the same run on local disk on every engine, `audit s3://…` passes, no
planted secret reaches any object; the output lease refuses a second writer and is taken over once
stale; --resume after a SIGKILL mid-run and --overwrite keep the bytes; a prefix holding a user's
objects is never emptied."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import SECRET, download, put
from corpusforge import engines
from corpusforge.config import load_config
from corpusforge.errors import CorpusforgeError
from corpusforge.runner import make_plan
from tests.util import assert_audit_ok, committed_outputs, manifest

REPO = Path(__file__).resolve().parents[2]


def test_s3_output_is_byte_identical_on_every_engine_and_audits(s3, bucket, corpus, tmp_path):
    want, ref = committed_outputs(corpus["ref"]), manifest(corpus["ref"])
    for engine, workers in (("local", 1), ("local", 2), ("spark", 2), ("beam", 2)):
        out = f"s3://{bucket}/runs/{engine}-{workers}"
        plan = make_plan(load_config(str(corpus["cfg"](out))))
        engines.run(plan, engine, workers=workers, progress=False)
        got = download(s3, out[len("s3://"):], tmp_path / f"got-{engine}-{workers}")
        assert committed_outputs(got) == want, (engine, workers)
        m = manifest(got)
        assert m["stages"] == ref["stages"] and m["files"] == ref["files"] and m["inputs"] == ref["inputs"]
        assert not (got / "_global").exists() and not (got / ".corpusforge-lock").exists()
        assert_audit_ok(got)
    r = subprocess.run([sys.executable, "-m", "corpusforge", "audit", f"s3://{bucket}/runs/local-2",
                        "--storage-opt", f"endpoint={s3['endpoint']}"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.startswith("audit ok"), r.stdout + r.stderr
    for f in (tmp_path / "got-local-1").rglob("*"):
        assert not f.is_file() or SECRET.encode() not in f.read_bytes(), f


def test_audit_on_s3_finds_a_changed_object(s3, bucket, corpus, tmp_path):
    out = f"s3://{bucket}/runs/a"
    engines.run(make_plan(load_config(str(corpus["cfg"](out)))), "local", workers=1, progress=False)
    from corpusforge.audit import audit

    assert audit(out) == []
    put(s3, f"{bucket}/runs/a/kept/part-00000.parquet", b"PAR1 not the committed bytes")
    assert any("kept/part-00000.parquet: sha256 differs" in p for p in audit(out))


def test_lease_refuses_a_second_writer_and_is_taken_over_when_stale(s3, bucket, corpus, capfd):
    out = f"s3://{bucket}/runs/l"
    lease = {"token": "someone-else", "host": "other-host", "pid": 4242, "started": "2026-12-06T00:00:00Z",
             "expires_unix": time.time() + 600}
    put(s3, f"{bucket}/runs/l/.corpusforge-lock", json.dumps(lease).encode())
    plan = make_plan(load_config(str(corpus["cfg"](out))))
    with pytest.raises(CorpusforgeError) as e:
        engines.run(plan, "local", workers=1, progress=False)
    assert e.value.code == "output_locked" and "other-host pid 4242" in str(e.value)
    put(s3, f"{bucket}/runs/l/.corpusforge-lock", json.dumps({**lease, "expires_unix": time.time() - 1}).encode())
    engines.run(plan, "local", workers=1, progress=False)
    assert "took over a stale lease (host other-host pid 4242" in capfd.readouterr().err
    assert not s3["fs"].get_file_info(f"{bucket}/runs/l/.corpusforge-lock").is_file  # released
    from corpusforge.audit import audit

    assert audit(out) == []


def test_a_prefix_holding_user_objects_is_never_emptied(s3, bucket, corpus):
    put(s3, f"{bucket}/mine/notes.txt", b"user data")
    plan = make_plan(load_config(str(corpus["cfg"](f"s3://{bucket}/mine"))))
    for flags in ({}, {"overwrite": True}, {"resume": True}):
        with pytest.raises(CorpusforgeError) as e:
            engines.run(plan, "local", workers=1, progress=False, **flags)
        assert e.value.code in ("output_exists", "output_not_ours") and "notes.txt" in str(e.value)
    with s3["fs"].open_input_stream(f"{bucket}/mine/notes.txt") as f:
        assert f.read() == b"user data"
    with pytest.raises(CorpusforgeError) as e:
        make_plan(load_config(str(corpus["cfg"](f"s3://{bucket}/raw"))))
    assert e.value.code == "output_overlaps_input"


@pytest.mark.parametrize("fault", ["part:after_marker:2", "write:mid:3"])
def test_sigkill_then_resume_and_overwrite_on_s3_are_byte_identical(s3, bucket, corpus, tmp_path, fault):
    out = f"s3://{bucket}/runs/k"
    cfg = corpus["cfg"](out)
    base = [sys.executable, "-m", "corpusforge", "run", str(cfg), "--no-progress"]
    env = {**os.environ, "CORPUSFORGE_FAULT": fault}
    r = subprocess.run(base + ["--workers", "1"], cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    assert r.returncode == -9, r.stderr
    r = subprocess.run(base, cwd=REPO, capture_output=True, text=True, timeout=240)
    assert r.returncode != 0 and "--resume" in r.stderr  # the killed run's lease is taken over; OUT is not silently restarted
    r = subprocess.run(base + ["--resume"], cwd=REPO, capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr
    got = download(s3, out[len("s3://"):], tmp_path / "got")
    assert committed_outputs(got) == committed_outputs(corpus["ref"])
    assert manifest(got)["files"] == manifest(corpus["ref"])["files"]
    assert_audit_ok(got)
    r = subprocess.run(base + ["--overwrite"], cwd=REPO, capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr
    again = download(s3, out[len("s3://"):], tmp_path / "again")
    assert committed_outputs(again) == committed_outputs(corpus["ref"])


def test_beam_global_stages_put_intermediates_under_run_scratch_on_s3(s3, bucket, corpus, tmp_path, monkeypatch, capfd):
    """Beam with run.scratch (what Dataflow needs: no worker sees the driver's disk): the dedup stages'
    intermediates are objects under the scratch prefix, not files on the driver; the output is the same."""
    import yaml

    from corpusforge.engines.beam import BeamPrimitives

    seen: list[str] = []
    original = BeamPrimitives.dataset
    monkeypatch.setattr(BeamPrimitives, "dataset", lambda self, paths, schema=None: (
        seen.extend(paths := tuple(paths)), original(self, paths, schema))[1])
    out, scratch = f"s3://{bucket}/runs/beam-scratch", f"s3://{bucket}/scratch"
    cfg_path = corpus["cfg"](out)
    cfg = yaml.safe_load(cfg_path.read_text(encoding="utf-8"))
    cfg["run"]["scratch"] = scratch
    cfg_path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    engines.run(make_plan(load_config(str(cfg_path))), "beam", workers=2, progress=False)
    got = download(s3, out[len("s3://"):], tmp_path / "got")
    assert committed_outputs(got) == committed_outputs(corpus["ref"])
    assert_audit_ok(got)
    written = [p for p in seen if not p.startswith(f"{out}/")]  # the staged parts are read in place
    assert written and all(p.startswith(f"{scratch}/corpusforge-") for p in written), written[:5]
    assert not list(download(s3, f"{bucket}/scratch", tmp_path / "scratch").rglob("*"))  # deleted after each stage
    cap = capfd.readouterr()
    assert "intermediates under s3://" in cap.err and SECRET not in cap.out + cap.err
