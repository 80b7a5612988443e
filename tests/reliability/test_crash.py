"""G1/G2 crash-resume harness and RELIABILITY.md §2 cases 44–48 on the local engine.

The corpus has several parts, a global stage (MinHash dedup: staging area + decisions), rejects and
quarantine rows, so every kind of file the engine writes is on the path of a kill. A SIGKILL at a named
fault point (CORPUSFORGE_FAULT) or at a seeded random instant, then `--resume`, must give a tree
byte-identical to an uninterrupted run (tests/util.tree_digest), no temp files, no file the manifest does
not list, and a balanced ledger. CI: every fault point + >= 5 random kills; `-m slow`: 20 random kills.
CORPUSFORGE_KILL_SEED picks the random instants (printed, so a failing seed can be replayed)."""

from __future__ import annotations

import errno
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from corpusforge import faults
from tests.util import REPO_ROOT, assert_audit_ok, manifest, run, tree_digest, write_config

STAGES = [{"use": "normalize"}, {"use": "dedup_minhash"}, {"use": "text_sanity", "with": {"min_chars": 300}}]
# (point, n): the n-th hit is chosen so the kill lands in the middle of the run, not at its first write
FAULT_CASES = [("write:mid", 4), ("write:before_rename", 3), ("write:after_rename", 7), ("part:before_marker", 2),
               ("part:after_marker", 9), ("global:before_marker", 1), ("manifest:before_write", 1)]


def _corpus(tmp: Path, shared_data: Path) -> list[Path]:
    web = [json.loads(x) for x in (shared_data / "web" / "commoncrawl_2021-43_zh_100docs.jsonl").read_text(encoding="utf-8").splitlines()]
    lines = [json.dumps(r, ensure_ascii=False).encode() for r in web[:40]]
    lines[5] = b'{"text": "\\ud800"}'  # quarantined: lone surrogate
    lines[9] = b"\xff\xfe not utf-8"  # quarantined: invalid_utf8
    lines[20] = lines[19]  # an exact duplicate for dedup
    (tmp / "web.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    return [tmp / "web.jsonl", shared_data / "prose" / "luxun_fiction_essays.jsonl"]


def cli(cfg: Path, *args: str, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "corpusforge", "run", str(cfg), "--no-progress", *args], cwd=REPO_ROOT,
                          env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def ref(shared_data, tmp_path_factory):
    """(config, reference digest, seconds of one uninterrupted run) for a 6-part run."""
    tmp = tmp_path_factory.mktemp("crash")
    cfg = write_config(tmp, _corpus(tmp, shared_data), stages=STAGES, input_opts={"split_mb": 0.2})
    t0 = time.monotonic()
    r = cli(cfg)
    seconds = time.monotonic() - t0
    assert r.returncode == 0, r.stderr
    out = tmp / "out"
    m = manifest(out)
    assert len(m["files"]) >= 8 and {f["kind"] for f in m["files"]} == {"kept", "rejects", "quarantine"}
    assert m["stages"][0]["quarantined"] == {"invalid_utf8": 1, "lone_surrogate": 1}
    assert m["stages"][2]["dropped"] and m["stages"][3]["dropped"]
    return cfg, tree_digest(out), seconds


def assert_clean_and_identical(out: Path, reference: dict) -> None:
    assert tree_digest(out) == reference
    listed = {f["path"] for f in manifest(out)["files"]}
    for root, dirs, files in os.walk(out):
        for f in files:
            rel = str((Path(root) / f).relative_to(out))
            assert not f.startswith(".tmp-"), rel
            if rel.split("/")[0] in ("kept", "rejects", "quarantine"):
                assert rel in listed, rel
    assert not (out / "_global").exists()  # staging and attempt directories are gone
    assert_audit_ok(out)


def test_fault_cases_cover_every_registered_point():
    assert sorted(p for p, _ in FAULT_CASES) == sorted(faults.POINTS)


@pytest.mark.parametrize("point,nth", FAULT_CASES, ids=[p for p, _ in FAULT_CASES])
def test_44_kill_at_named_point_then_resume_is_byte_identical(ref, tmp_path, point, nth):
    cfg, reference, _ = ref
    out = cfg.parent / "out"
    log = tmp_path / "fault.log"
    r = cli(cfg, "--overwrite", env={"CORPUSFORGE_FAULT": f"{point}:{nth}", "CORPUSFORGE_FAULT_LOG": str(log)})
    assert r.returncode == -signal.SIGKILL, (point, r.returncode, r.stderr)
    assert log.read_text().startswith(point)  # the kill happened at that point, not elsewhere
    assert not (out / "manifest.json").exists()  # nothing looks complete
    r = cli(cfg, "--resume")
    assert r.returncode == 0, (point, r.stderr)
    assert_clean_and_identical(out, reference)


def random_kills(ref, trials_wanted: int, seed: int) -> int:
    cfg, reference, seconds = ref
    out = cfg.parent / "out"
    rng = random.Random(seed)
    print(f"CORPUSFORGE_KILL_SEED={seed}")
    kills = trials = 0
    while kills < trials_wanted:
        trials += 1
        assert trials <= 4 * trials_wanted, f"only {kills} kills landed in {trials} trials"
        workers = rng.choice(["1", "2"])
        p = subprocess.Popen([sys.executable, "-m", "corpusforge", "run", str(cfg), "--no-progress", "--overwrite",
                              "--workers", workers], cwd=REPO_ROOT, start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.25, 1.0) * seconds)  # start-up takes part of the run: aim past it
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            kills += 1
        p.wait()
        r = cli(cfg, "--resume", "--workers", rng.choice(["1", "2"]))
        assert r.returncode == 0, r.stderr
        assert_clean_and_identical(out, reference)
    return kills


def test_44_random_sigkill_then_resume_five_kills(ref):
    assert random_kills(ref, 5, int(os.environ.get("CORPUSFORGE_KILL_SEED", "20240611"))) == 5


@pytest.mark.slow
def test_44_random_sigkill_soak_twenty_kills(ref):
    assert random_kills(ref, 20, int(os.environ.get("CORPUSFORGE_KILL_SEED", "7"))) == 20


def test_45_stale_files_of_an_earlier_attempt_never_survive(ref):
    """An attempt that committed files (but no marker) and left extra shards: resume deletes every file no
    marker lists, so a retry writing fewer files leaves nothing behind."""
    cfg, reference, _ = ref
    out = cfg.parent / "out"
    r = cli(cfg, "--overwrite", env={"CORPUSFORGE_FAULT": "part:before_marker:9"})  # 6 staging parts, then the 3rd final one
    assert r.returncode == -signal.SIGKILL
    some = next((out / "kept").glob("part-*.parquet"))  # parts 0 and 1 are committed, 2.. are not
    for stray in ("kept/part-00999.parquet", "rejects/part-00005.parquet", "quarantine/part-00004.parquet", "_parts/part-00998.json"):
        shutil.copy(some, out / stray)
    (out / "kept" / ".tmp-123-part-00001.parquet").write_bytes(b"torn")
    r = cli(cfg, "--resume")
    assert r.returncode == 0, r.stderr
    assert_clean_and_identical(out, reference)


def test_45_torn_marker_is_discarded_and_the_part_reruns(ref):
    cfg, reference, _ = ref
    out = cfg.parent / "out"
    assert cli(cfg, "--overwrite", env={"CORPUSFORGE_FAULT": "part:after_marker:9"}).returncode == -signal.SIGKILL
    marker = sorted((out / "_parts").glob("part-*.json"))[-1]
    marker.write_bytes(marker.read_bytes()[:40])  # a marker cut mid-write (not valid JSON)
    assert cli(cfg, "--resume").returncode == 0
    assert_clean_and_identical(out, reference)


def test_47_disk_full_mid_write_fails_cleanly_then_resumes(ref, monkeypatch, capsys):
    """ENOSPC from the Parquet writer (injected in-process on the 3rd batch): exit 2 with one line naming
    the file, no temp file, no marker for that part; after space is back, --resume gives the same bytes."""
    cfg, reference, _ = ref
    out = cfg.parent / "out"
    real = pq.ParquetWriter.write_batch
    calls = [0]

    def full(self, *a, **kw):
        calls[0] += 1
        if calls[0] == 3:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(self, *a, **kw)

    monkeypatch.setattr(pq.ParquetWriter, "write_batch", full)
    assert run(cfg, "--overwrite") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "write_failed" in err and "No space left on device" in err, err
    failed = err.split("write_failed: ")[1].split(":")[0]
    assert failed.startswith(str(out)) and not os.path.exists(failed)
    assert not [p for p in out.rglob(".tmp-*")]
    markers = sorted(p.name for p in (out / "_global" / "s0").glob("part-*.json"))
    assert len(markers) < 6  # the failing part has no marker
    monkeypatch.setattr(pq.ParquetWriter, "write_batch", real)
    assert run(cfg, "--resume") == 0
    assert_clean_and_identical(out, reference)


def _without_dac_override():
    """Permissions do not bind root (CI runs as root): drop CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH and
    CAP_FOWNER from the bounding set before exec, so the child is held to the mode bits like any user."""
    if os.geteuid() == 0:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        for cap in (1, 2, 3):
            if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
                raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def test_47_read_only_output_directory_fails_cleanly_then_runs(tmp_path, shared_data):
    """An output directory the user cannot write: exit 2, one line naming the directory and the reason,
    nothing written; once it is writable the same command completes and balances."""
    web = (shared_data / "web" / "commoncrawl_2021-43_zh_100docs.jsonl").read_text(encoding="utf-8").splitlines()
    (tmp_path / "in.jsonl").write_text("\n".join(web[:30]) + "\n", encoding="utf-8")
    cfg = write_config(tmp_path, [tmp_path / "in.jsonl"], stages=[{"use": "normalize"}, {"use": "dedup_exact"}])
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o555)

    def go():
        return subprocess.run([sys.executable, "-m", "corpusforge", "run", str(cfg), "--no-progress"], cwd=REPO_ROOT,
                              capture_output=True, text=True, timeout=300, preexec_fn=_without_dac_override)

    r = go()
    err = r.stderr.strip()
    assert r.returncode == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert "write_failed" in err and str(out) in err and "Permission denied" in err
    assert not os.listdir(out)
    out.chmod(0o755)
    r = go()
    assert r.returncode == 0, r.stderr
    assert_audit_ok(out)


def test_45_committed_file_changed_after_commit_makes_its_part_rerun(ref):
    """Resume checks each committed file's sha256 against its marker, not just its name: a kept file
    replaced after a complete run (here by another valid part) and a staged part changed before the global
    stage ran are both redone, and the result is byte-identical."""
    cfg, reference, _ = ref
    out = cfg.parent / "out"
    assert cli(cfg, "--overwrite").returncode == 0
    shutil.copy(out / "kept" / "part-00000.parquet", out / "kept" / "part-00001.parquet")
    r = cli(cfg, "--resume")
    assert r.returncode == 0, r.stderr
    assert "kept/part-00001.parquet changed since part 1 was committed" in r.stderr
    assert_clean_and_identical(out, reference)
    r = cli(cfg, "--overwrite", env={"CORPUSFORGE_FAULT": "global:before_marker:1"})
    assert r.returncode == -signal.SIGKILL
    staged = out / "_global" / "s0"
    shutil.copy(staged / "part-00000.parquet", staged / "part-00002.parquet")
    r = cli(cfg, "--resume")
    assert r.returncode == 0 and "part-00002.parquet changed since part 2" in r.stderr, r.stderr
    assert_clean_and_identical(out, reference)


def test_48_resume_with_changed_rule_file_input_set_or_version_is_refused(tmp_path, shared_data, capsys, monkeypatch):
    import corpusforge

    rules = tmp_path / "r.yaml"
    rules.write_text("# source: test\n# licence: CC0\nrules:\n  - {id: x, pattern: 'ab', replace: '', examples: [{in: ab, out: ''}]}\n",
                     encoding="utf-8")
    (tmp_path / "in").mkdir()
    shutil.copy(shared_data / "web" / "commoncrawl_2021-43_zh_100docs.jsonl", tmp_path / "in" / "a.jsonl")
    cfg = write_config(tmp_path, [tmp_path / "in" / "*.jsonl"], stages=[{"use": "clean", "with": {"rules": [str(rules)]}}])
    assert run(cfg) == 0

    def refused(what: str):
        assert run(cfg, "--resume") == 2
        err = capsys.readouterr().err
        assert "resume_mismatch" in err and what in err, err

    capsys.readouterr()
    rules.write_text(rules.read_text(encoding="utf-8").replace("'ab'", "'abc'").replace("in: ab,", "in: abc,"), encoding="utf-8")
    refused("rules")
    rules.write_text(rules.read_text(encoding="utf-8").replace("'abc'", "'ab'").replace("in: abc,", "in: ab,"), encoding="utf-8")
    (tmp_path / "in" / "b.jsonl").write_bytes((tmp_path / "in" / "a.jsonl").read_bytes()[:2000].rsplit(b"\n", 1)[0] + b"\n")
    refused("inputs")
    (tmp_path / "in" / "b.jsonl").unlink()
    monkeypatch.setattr(corpusforge, "__version__", corpusforge.__version__ + ".post1")
    refused("version")
    monkeypatch.undo()
    assert run(cfg, "--resume", "--workers", "2") == 0  # the worker count alone may change
    assert_audit_ok(tmp_path / "out")
