"""G8 resource bounds and G12 durability discipline (slow suite: `pytest -m slow`)."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys

import pytest

from tests.util import REPO_ROOT, write_config

pytestmark = pytest.mark.slow

PEAK_RSS = """
import resource, subprocess, sys
r = subprocess.run(sys.argv[1:], capture_output=True, text=True)
print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024)
"""


def peak_rss_mb(cfg) -> tuple[int, int]:
    r = subprocess.run([sys.executable, "-c", PEAK_RSS, sys.executable, "-m", "corpusforge", "run", str(cfg),
                        "--no-progress"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    rc, mb = r.stdout.split()
    return int(rc), int(mb)


def write_giant_line(path) -> None:
    """A 1.5 GiB single JSON line (in a ~1.5 GiB file), then 1,000 normal records."""
    chunk = "长".encode() * (1 << 20)
    with open(path, "wb") as f:
        f.write(b'{"text": "')
        for _ in range(512):  # 1.5 GiB
            f.write(chunk)
        f.write(b'"}\n')
        for _ in range(1000):
            f.write(json.dumps({"text": "正常的文本" * 40}, ensure_ascii=False).encode() + b"\n")


def test_giant_line_bounded_memory(tmp_path):
    """A 1.5 GiB single line in a 2 GiB file is quarantined with peak RSS < 1 GiB."""
    path = tmp_path / "huge.jsonl"
    write_giant_line(path)
    cfg = write_config(tmp_path, [path], input_opts={"split_mb": 4096})
    rc, mb = peak_rss_mb(cfg)
    print(f"giant line: peak RSS {mb} MiB")
    assert rc == 0 and mb < 1024, mb


def test_decompression_bomb_bounded(tmp_path):
    """1 GiB of zeros gzipped (~1 MiB) is aborted with peak RSS < 512 MiB."""
    path = tmp_path / "bomb.jsonl.gz"
    with gzip.open(path, "wb", compresslevel=9) as f:
        for _ in range(1024):
            f.write(b"\0" * (1 << 20))
    cfg = write_config(tmp_path, [path])
    rc, mb = peak_rss_mb(cfg)
    print(f"bomb: peak RSS {mb} MiB")
    assert rc == 0 and mb < 512, mb


@pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace (apt-get install strace)")
def test_fsync_before_rename_for_every_committed_file(tmp_path, shared_data):
    cfg = write_config(tmp_path, [shared_data / "web" / "commoncrawl_2021-43_zh_100docs.jsonl"],
                       stages=[{"use": "text_sanity", "with": {"min_chars": 300}}])
    log = tmp_path / "strace.log"
    r = subprocess.run(["strace", "-f", "-o", str(log), "-e", "trace=openat,fsync,rename,renameat,renameat2",
                        sys.executable, "-m", "corpusforge", "run", str(cfg), "--no-progress"], cwd=REPO_ROOT,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    fd_paths, synced, renames = {}, set(), []
    for line in log.read_text().splitlines():
        if "openat(" in line and "= " in line and str(tmp_path / "out") in line:
            fd = line.rsplit("= ", 1)[1].split()[0]
            fd_paths[fd] = line.split('"')[1]
        elif "fsync(" in line:
            fd = line.split("fsync(")[1].split(")")[0]
            if fd in fd_paths:
                synced.add(fd_paths[fd])
        elif "rename" in line and str(tmp_path / "out") in line:
            src = line.split('"')[1]
            renames.append(src)
    assert renames, "no renames traced"
    assert all(src in synced for src in renames), [s for s in renames if s not in synced]
