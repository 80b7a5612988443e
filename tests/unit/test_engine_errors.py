"""Engine set-up errors are one line, and the local engine never imports pyspark or apache-beam."""

import os
import shutil
import subprocess
import sys

from tests.util import REPO_ROOT, run, write_config

ORIG_PATH = os.environ["PATH"]


def test_spark_without_java_is_a_clear_error(shared_data, tmp_path, monkeypatch, capsys):
    cfg = write_config(tmp_path, [shared_data / "web/commoncrawl_2021-43_zh_100docs.jsonl"])
    monkeypatch.setenv("PATH", str(tmp_path))  # no java on PATH
    monkeypatch.delenv("JAVA_HOME", raising=False)
    assert run(cfg, "--engine", "spark") != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "needs Java 17 or 21 (no java on PATH)" in err[0] and "Traceback" not in err[0]
    # Spark's launcher runs $JAVA_HOME/bin/java when JAVA_HOME is set, whatever PATH holds: so do the checks
    monkeypatch.setenv("PATH", os.environ["PATH"] + os.pathsep + os.path.dirname(shutil.which("java", path=ORIG_PATH)))
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "nojdk"))
    assert run(cfg, "--engine", "spark") != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"JAVA_HOME={tmp_path / 'nojdk'} has no bin/java" in err[0]


def test_local_engine_imports_neither_spark_nor_beam(shared_data, tmp_path):
    cfg = write_config(tmp_path, [shared_data / "web/commoncrawl_2021-43_zh_100docs.jsonl"],
                       [{"use": "clean"}, {"use": "pangu_rules"}, {"use": "dedup_minhash"}])
    code = ("import sys; from corpusforge.cli import main; rc = main(['run', sys.argv[1], '--no-progress']); "
            "bad = [m for m in ('pyspark', 'apache_beam', 'py4j') if m in sys.modules]; print('IMPORTED', bad); sys.exit(rc or bool(bad))")
    r = subprocess.run([sys.executable, "-c", code, str(cfg)], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-500:] + r.stderr[-2000:]
    assert "IMPORTED []" in r.stdout
