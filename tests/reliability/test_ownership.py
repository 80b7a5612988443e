"""Issue 18, items 1-3 and 8: corpusforge never deletes what it did not write. Every destructive mistake a
user can make is built in a temporary directory, run through the CLI, and the user's files are compared
byte for byte afterwards; one writer per output (flock), and one-line errors where tracebacks were."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from corpusforge.cli import main
from corpusforge.io import outputs
from tests.util import REPO_ROOT, assert_audit_ok, manifest, run, tree_digest, write_config


@pytest.fixture()
def user_dir(tmp_path, shared_data) -> Path:
    """A folder of a user's own files: real inputs, notes, a subfolder: never a corpusforge output."""
    d = tmp_path / "work"
    (d / "in").mkdir(parents=True)
    lines = (shared_data / "prose" / "luxun_fiction_essays.jsonl").read_text(encoding="utf-8").splitlines(True)
    (d / "in" / "a.jsonl").write_text("".join(lines[:40]), encoding="utf-8")
    (d / "in" / "b.jsonl").write_text("".join(lines[40:80]), encoding="utf-8")
    (d / "notes.md").write_text("实验记录：不要删除\n", encoding="utf-8")
    (d / "sub" / "deep").mkdir(parents=True)
    (d / "sub" / "deep" / "model.bin").write_bytes(os.urandom(4096))
    return d


def snapshot(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def cfg_at(path: Path, paths, output, **extra) -> Path:
    doc = {"run": {"name": "t", "output": str(output)}, "input": {"format": "jsonl", "paths": [str(p) for p in paths]},
           "stages": [{"use": "text_sanity", "with": {"min_chars": 20}}], "limits": {"max_quarantine_fraction": 1.0}, **extra}
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return path


def cli(*argv, cwd=REPO_ROOT, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "corpusforge", *map(str, argv)], cwd=cwd, capture_output=True,
                          text=True, timeout=240, **kw)


def one_line_error(r: subprocess.CompletedProcess, code: str) -> str:
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and f"error: {code}:" in lines[0], r.stderr
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr
    return lines[0]


# ---------------------------------------------------------------- item 1: --overwrite deletes whatever it is pointed at


def test_output_equal_to_the_input_folder_is_refused_and_nothing_is_touched(user_dir):
    before = snapshot(user_dir)
    cfg = cfg_at(user_dir / "cfg.yaml", ["in/*.jsonl"], "in")
    line = one_line_error(cli("run", cfg, "--overwrite", "--no-progress"), "output_overlaps_input")
    assert "in/*.jsonl" in line and str(user_dir / "in") in line
    assert snapshot(user_dir) == {**before, "cfg.yaml": (user_dir / "cfg.yaml").read_bytes()}


def test_overwrite_of_a_users_folder_is_refused_naming_what_is_in_it(user_dir, tmp_path):
    before = snapshot(user_dir)
    inputs = tmp_path / "elsewhere"
    inputs.mkdir()
    (inputs / "a.jsonl").write_bytes((user_dir / "in" / "a.jsonl").read_bytes())
    cfg = cfg_at(tmp_path / "cfg.yaml", [inputs / "a.jsonl"], user_dir)
    for flag in ("--overwrite", "--resume"):
        line = one_line_error(cli("run", cfg, flag, "--no-progress"), "output_not_ours")
        assert str(user_dir) in line and "notes.md" in line and "not written by corpusforge" in line
    one_line_error(cli("run", cfg, "--no-progress"), "output_exists")
    assert snapshot(user_dir) == before and not (user_dir / outputs.LOCK).exists()


def test_output_holding_the_config_and_the_inputs_is_refused(user_dir):
    before = snapshot(user_dir)
    cfg = cfg_at(user_dir / "cfg.yaml", [user_dir / "in" / "*.jsonl"], user_dir)  # absolute paths
    before["cfg.yaml"] = cfg.read_bytes()
    one_line_error(cli("run", cfg, "--overwrite", "--no-progress"), "output_overlaps_input")
    # `output: .` (the config's own folder), also from inside it
    cfg2 = cfg_at(user_dir / "dot.yaml", [user_dir.parent / "nowhere.jsonl"], ".")
    before["dot.yaml"] = cfg2.read_bytes()
    line = one_line_error(cli("run", "dot.yaml", "--overwrite", "--no-progress", cwd=user_dir), "output_overlaps_input")
    assert "config file" in line
    assert snapshot(user_dir) == before


def test_dedup_into_the_folder_of_its_input_is_refused(user_dir):
    before = snapshot(user_dir)
    one_line_error(cli("dedup", user_dir / "in" / "a.jsonl", user_dir / "in", "--overwrite", "--no-progress"),
                   "output_overlaps_input")
    one_line_error(cli("dedup", user_dir / "in" / "a.jsonl", user_dir, "--overwrite", "--no-progress"),
                   "output_overlaps_input")
    assert snapshot(user_dir) == before


def test_a_glob_that_reaches_into_the_output_is_refused(user_dir):
    before = snapshot(user_dir)
    cfg = cfg_at(user_dir / "cfg.yaml", ["**/*.jsonl"], "runs/out")
    before["cfg.yaml"] = cfg.read_bytes()
    one_line_error(cli("run", cfg, "--no-progress"), "output_overlaps_input")
    assert snapshot(user_dir) == before and not (user_dir / "runs").exists()
    # the same folder tree with a glob that cannot reach the output is fine
    cfg = cfg_at(user_dir / "cfg.yaml", ["in/*.jsonl"], "in/../runs/out")
    assert run(cfg) == 0
    assert_audit_ok(user_dir / "runs" / "out")


def test_overwrite_replaces_only_its_own_kind(user_dir, tmp_path):
    cfg = cfg_at(tmp_path / "cfg.yaml", [user_dir / "in" / "a.jsonl"], tmp_path / "out")
    assert run(cfg) == 0
    ref = tree_digest(tmp_path / "out")
    assert json.loads((tmp_path / "out" / outputs.MARKER).read_text()) == {"corpusforge_output": "run"}
    assert run(cfg, "--overwrite") == 0 and tree_digest(tmp_path / "out") == ref
    # a dedup output is not a run output: `run --overwrite` leaves it alone
    assert main(["dedup", str(user_dir / "in" / "b.jsonl"), str(tmp_path / "dd"), "--no-progress"]) == 0
    dd = snapshot(tmp_path / "dd")
    r = cli("run", cfg_at(tmp_path / "cfg2.yaml", [user_dir / "in" / "a.jsonl"], tmp_path / "dd"), "--overwrite", "--no-progress")
    assert "a corpusforge dedup output" in one_line_error(r, "output_not_ours")
    assert snapshot(tmp_path / "dd") == dd
    assert main(["dedup", str(user_dir / "in" / "b.jsonl"), str(tmp_path / "dd"), "--overwrite", "--no-progress"]) == 0


def test_output_naming_a_regular_file_is_a_one_line_error(user_dir, tmp_path):
    before = snapshot(user_dir)
    cfg = cfg_at(tmp_path / "cfg.yaml", [user_dir / "in" / "a.jsonl"], user_dir / "notes.md")
    for flags in ((), ("--overwrite",)):
        assert "is a file" in one_line_error(cli("run", cfg, "--no-progress", *flags), "bad_output")
    assert snapshot(user_dir) == before


def test_file_outputs_replace_only_their_own_files(user_dir, tmp_path, shared_data):
    run_cfg = cfg_at(tmp_path / "cfg.yaml", [user_dir / "in" / "a.jsonl"], tmp_path / "out")
    assert run(run_cfg) == 0
    before = snapshot(user_dir)
    r = cli("report", tmp_path / "out", "--out", user_dir / "notes.md")
    assert "not a corpusforge report" in one_line_error(r, "output_not_ours")
    r = cli("tokenizer", "train", user_dir / "in" / "a.jsonl", "--vocab-size", "300", "--out", user_dir / "in" / "b.jsonl")
    assert "not a corpusforge tokenizer" in one_line_error(r, "output_not_ours")
    assert snapshot(user_dir) == before
    rep = tmp_path / "report.html"
    assert main(["report", str(tmp_path / "out"), "--out", str(rep)]) == 0
    assert main(["report", str(tmp_path / "out"), "--out", str(rep)]) == 0  # its own report is replaced


# ---------------------------------------------------------------- item 2: the rename-aside sweep


def test_a_sibling_named_like_the_old_trash_folder_survives(user_dir, tmp_path):
    sib = tmp_path / ".tmp-trash-out"
    (sib / "x").mkdir(parents=True)
    (sib / "x" / "thesis.tex").write_text("mine", encoding="utf-8")
    cfg = cfg_at(tmp_path / "cfg.yaml", [user_dir / "in" / "a.jsonl"], tmp_path / "out")
    assert run(cfg) == 0 and run(cfg, "--overwrite") == 0
    assert (sib / "x" / "thesis.tex").read_text(encoding="utf-8") == "mine"
    # a trash folder inside OUT without the trash marker is left alone too
    stray = tmp_path / "out" / ".tmp-trash-zzz"
    stray.mkdir()
    (stray / "keep").write_text("k")
    assert run(cfg, "--overwrite") == 0 and (stray / "keep").read_text() == "k"
    # an --overwrite killed between making its trash folder and renaming the marker into it
    killed = tmp_path / "out" / ".tmp-trash-0123456789ab"
    killed.mkdir()
    (killed / f".tmp-4242-{outputs.MARKER}").write_bytes(b"")
    assert run(cfg, "--resume") == 0 and not killed.exists() and (stray / "keep").read_text() == "k"


# ---------------------------------------------------------------- item 3: one writer per output


def test_a_second_writer_on_a_locked_output_is_refused_naming_the_holder(user_dir, tmp_path):
    cfg = cfg_at(tmp_path / "cfg.yaml", [user_dir / "in" / "a.jsonl"], tmp_path / "out")
    assert run(cfg) == 0
    ref = tree_digest(tmp_path / "out")
    with outputs.claim(str(tmp_path / "out"), "run", resume=True):  # this process holds it
        for flags in ((), ("--resume",), ("--overwrite",)):
            line = one_line_error(cli("run", cfg, "--no-progress", *flags), "output_locked")
            assert f"pid {os.getpid()}" in line and "host " in line and "started " in line
    assert tree_digest(tmp_path / "out") == ref
    assert run(cfg, "--overwrite") == 0 and tree_digest(tmp_path / "out") == ref


def _wait_for(path: Path, proc: subprocess.Popen, seconds: float = 120) -> None:
    end = time.time() + seconds
    while not path.exists():
        assert proc.poll() is None and time.time() < end, "the first run ended before it took the lock"
        time.sleep(0.01)


def test_concurrent_runs_one_wins_the_other_touches_nothing(tmp_path, shared_data):
    src = shared_data / "web" / "commoncrawl_2021-43_zh_100docs.jsonl"
    cfg = write_config(tmp_path, [src], stages=[{"use": "normalize"}, {"use": "dedup_minhash"}],
                       input_opts={"split_mb": 0.05})
    out = tmp_path / "out"
    first = subprocess.Popen([sys.executable, "-m", "corpusforge", "run", str(cfg), "--no-progress"], cwd=REPO_ROOT,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        _wait_for(out / outputs.LOCK, first)
        os.killpg(first.pid, signal.SIGSTOP)  # holds the lock mid-run, however fast the machine is
        for flags in (("--resume",), ("--overwrite",)):
            line = one_line_error(cli("run", cfg, "--no-progress", *flags), "output_locked")
            assert f"pid {first.pid}" in line
        os.killpg(first.pid, signal.SIGCONT)
        assert first.wait(timeout=240) == 0, first.stderr.read()
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    assert_audit_ok(out)
    assert not (out / outputs.LOCK).exists()
    ref = tree_digest(out)
    assert run(cfg, "--overwrite") == 0 and tree_digest(out) == ref


def test_a_killed_holders_lock_is_taken_over_with_a_notice(tmp_path, shared_data):
    src = shared_data / "web" / "commoncrawl_2021-43_zh_100docs.jsonl"
    cfg = write_config(tmp_path, [src], stages=[{"use": "normalize"}, {"use": "dedup_minhash"}],
                       input_opts={"split_mb": 0.05})
    out = tmp_path / "out"
    assert run(cfg) == 0
    ref = tree_digest(out)
    p = subprocess.Popen([sys.executable, "-m", "corpusforge", "run", str(cfg), "--no-progress", "--overwrite",
                          "--workers", "2"], cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    _wait_for(out / outputs.LOCK, p)
    os.kill(p.pid, signal.SIGKILL)  # the driver only: its pool workers must not keep the lock
    p.wait()
    r = cli("run", cfg, "--resume", "--no-progress", "--workers", "2")
    assert r.returncode == 0, r.stderr
    assert "took over a stale lock" in r.stderr and f"pid {p.pid}" in r.stderr
    assert tree_digest(out) == ref


# ---------------------------------------------------------------- item 8: one-line errors


def test_a_yaml_tag_in_set_is_a_one_line_error_and_runs_nothing(user_dir, tmp_path):
    cfg = cfg_at(tmp_path / "cfg.yaml", [user_dir / "in" / "a.jsonl"], tmp_path / "out")
    r = cli("run", cfg, "--set", f"run.seed=!!python/object/apply:os.system [\"touch {tmp_path / 'pwned'}\"]")
    assert "not a plain YAML value" in one_line_error(r, "bad_override")
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "out").exists()


@pytest.mark.parametrize("n", ["0", "-1"])
def test_workers_below_one_is_an_error(user_dir, tmp_path, n):
    cfg = cfg_at(tmp_path / "cfg.yaml", [user_dir / "in" / "a.jsonl"], tmp_path / "out")
    assert "must be >= 1" in one_line_error(cli("run", cfg, "--workers", n), "bad_argument")
    assert "must be >= 1" in one_line_error(cli("dedup", user_dir / "in" / "a.jsonl", tmp_path / "dd", "--workers", n),
                                            "bad_argument")
    assert not (tmp_path / "out").exists() and not (tmp_path / "dd").exists()


def test_manifest_counts_are_unchanged_by_ownership(user_dir, tmp_path):
    """The marker is the only new file, and it is the same bytes for every output path."""
    a = cfg_at(tmp_path / "a.yaml", [user_dir / "in" / "a.jsonl"], tmp_path / "o1")
    b = cfg_at(tmp_path / "b.yaml", [user_dir / "in" / "a.jsonl"], tmp_path / "o2")
    assert run(a) == 0 and run(b) == 0
    assert (tmp_path / "o1" / outputs.MARKER).read_bytes() == (tmp_path / "o2" / outputs.MARKER).read_bytes()
    assert manifest(tmp_path / "o1")["stages"] == manifest(tmp_path / "o2")["stages"]


def test_a_scratch_folder_holding_user_files_is_refused_and_ours_is_emptied_then_deleted(tmp_path):
    from corpusforge.errors import CorpusforgeError

    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "notes.txt").write_text("user data", encoding="utf-8")
    with pytest.raises(CorpusforgeError) as e:
        with outputs.scratch(str(theirs)):
            pass
    assert e.value.code == "output_not_ours" and "notes.txt" in str(e.value)
    assert (theirs / "notes.txt").read_text(encoding="utf-8") == "user data"
    ours = tmp_path / "ours"
    with outputs.scratch(str(ours)) as d:  # a killed run's leftovers: marked, so emptied on entry
        (Path(d) / "001-bands").mkdir()
        (Path(d) / "001-bands" / "part-00000.parquet").write_bytes(b"x")
    assert not ours.exists()
    ours.mkdir()
    (ours / outputs.MARKER).write_text(json.dumps({"corpusforge_output": "scratch"}), encoding="utf-8")
    (ours / "stale.parquet").write_bytes(b"x")
    with outputs.scratch(str(ours)) as d:
        assert sorted(os.listdir(d)) == [outputs.MARKER]
