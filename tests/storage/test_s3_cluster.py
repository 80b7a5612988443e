"""Issue 25, a Spark cluster with no shared filesystem: spark-submit to a standalone master with two
workers on 127.0.0.1, the driver and each worker with its own SPARK_WORKER_DIR, SPARK_LOCAL_DIRS, HOME
and TMPDIR (no folder in common, checked), input, output and `run.scratch` on the loopback S3 server.
Both workers run tasks; the objects are byte-identical to the local run; the scratch prefix is left
empty. (One host cannot stop an executor from opening a driver's absolute path; the executors' code
paths take every run path from the plan, which here names only s3:// URIs.)"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from conftest import download
from tests.sparkcluster import base_env, spark_home, standalone
from tests.util import assert_audit_ok, committed_outputs, manifest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.spark


def _own_dirs(root: Path) -> dict:
    env = {}
    for var, name in (("SPARK_WORKER_DIR", "work"), ("SPARK_LOCAL_DIRS", "local"), ("HOME", "home"), ("TMPDIR", "tmp")):
        (root / name).mkdir(parents=True)
        env[var] = str(root / name)
    return env


def test_spark_cluster_without_shared_storage_is_byte_identical(s3, bucket, corpus, tmp_path):
    workers = [_own_dirs(tmp_path / f"worker{i}") for i in range(2)]
    driver = _own_dirs(tmp_path / "driver")
    folders = [Path(d) for env in [*workers, driver] for d in env.values()]
    assert len(set(folders)) == len(folders)
    assert not any(a != b and (a in b.parents or b in a.parents) for a in folders for b in folders)  # none holds another

    out = f"s3://{bucket}/runs/cluster"
    cfg = corpus["cfg"](out, "cluster.yaml")
    text = cfg.read_text(encoding="utf-8").replace("run:\n", f"run:\n  scratch: s3://{bucket}/scratch\n", 1)
    cfg.write_text(text, encoding="utf-8")
    logs = tmp_path / "logs"
    logs.mkdir()
    with standalone(logs, workers, cores=1, memory="1g") as url:
        cmd = [str(spark_home() / "bin" / "spark-submit"), "--master", url, "--conf", "spark.executor.cores=1",
               "--conf", "spark.sql.shuffle.partitions=4", str(REPO / "pipelines" / "spark_submit.py"), str(cfg),
               "--no-progress"]
        res = subprocess.run(cmd, env={**base_env(), **driver}, cwd=str(tmp_path), capture_output=True, text=True,
                             timeout=900)
        assert res.returncode == 0, res.stderr[-4000:]
    for stage in ("dedup_exact", "dedup_minhash"):
        assert f"corpusforge: {stage}: intermediates under s3://{bucket}/scratch/corpusforge-" in res.stdout + res.stderr
    for i, env in enumerate(workers):  # both workers ran an executor of this application
        ran = list(Path(env["SPARK_WORKER_DIR"]).glob("app-*/*/stderr"))
        assert ran and any("Finished task" in p.read_text(errors="replace") for p in ran), f"worker {i} ran no task"
    got = download(s3, out[len("s3://"):], tmp_path / "got")
    assert committed_outputs(got) == committed_outputs(corpus["ref"])
    assert manifest(got)["files"] == manifest(corpus["ref"])["files"]
    assert manifest(got)["engine"] == "spark"
    assert_audit_ok(got)
    from pyarrow import fs

    left = s3["fs"].get_file_info(fs.FileSelector(f"{bucket}/scratch", recursive=True, allow_not_found=True))
    assert [i.path for i in left if i.type == fs.FileType.File] == []
