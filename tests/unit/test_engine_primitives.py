"""The `annotate` primitive on every engine, and the Spark session corpusforge starts (loopback, no UI,
the JVM class-data-sharing archive it caches)."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import textwrap

import pyarrow as pa
import pytest

from corpusforge.engines.local_primitives import LocalPrimitives
from tests.util import REPO_ROOT


def _rows(n: int = 80):
    rnd = random.Random(3)
    rows = [(rnd.randrange(7), rnd.randrange(3), f"d{rnd.randrange(500):04d}", rnd.choice([None, 1, 2, 5])) for _ in range(n)]
    # a hot key: with partition_rows=8 its rows span several spill files of one partition
    return rows + [(9, 0, f"h{i:03d}", i % 3 or None) for i in range(n // 2)]


def _expected(rows):
    out = []
    for k, b, i, v in rows:
        group = [r for r in rows if (r[0], r[1]) == (k, b)]
        vals = [r[3] for r in group if r[3] is not None]
        out.append((k, b, i, v, min(r[2] for r in group), len(group), sum(vals) if vals else None))
    return sorted(out, key=repr)


def _annotated(engine, rows):
    ds = engine.from_table(pa.table({"k": pa.array([r[0] for r in rows], pa.int64()), "b": pa.array([r[1] for r in rows], pa.int32()),
                                     "id": [r[2] for r in rows], "v": pa.array([r[3] for r in rows], pa.int64())}), "in")
    out = engine.annotate(ds, ["k", "b"], [("id", "min", "min_id"), ("id", "count", "n"), ("v", "sum", "total")], "a")
    t = pa.Table.from_batches(list(engine.read(out)))
    assert t.schema.names == ["k", "b", "id", "v", "min_id", "n", "total"]
    return sorted((tuple(r.values()) for r in t.to_pylist()), key=repr)


def test_local_annotate_matches_its_definition(tmp_path):
    rows = _rows()
    assert _annotated(LocalPrimitives(str(tmp_path / "p"), partition_rows=8), rows) == _expected(rows)  # many partitions
    assert _annotated(LocalPrimitives(str(tmp_path / "one")), rows) == _expected(rows)  # one partition, no shuffle
    empty = LocalPrimitives(str(tmp_path / "e"))
    ds = empty.from_table(pa.table({"k": pa.array([], pa.int64()), "id": pa.array([], pa.string())}), "in")
    assert empty.count(empty.annotate(ds, ["k"], [("id", "min", "m")], "a")) == 0


@pytest.mark.beam
def test_beam_annotate_matches_local(tmp_path):
    from corpusforge.engines.beam import BeamPrimitives, pipeline_options

    rows = _rows()
    assert _annotated(BeamPrimitives(str(tmp_path), pipeline_options(None, 1)[1]), rows) == _expected(rows)


@pytest.mark.spark
def test_spark_annotate_matches_local(tmp_path):
    from corpusforge.engines.spark import SparkPrimitives, session

    spark = session({"master": "local[2]"}, 2)
    try:
        rows = _rows()
        assert _annotated(SparkPrimitives(spark, str(tmp_path)), rows) == _expected(rows)
    finally:
        spark.stop()


_CHILD = textwrap.dedent("""
    import json, os, sys
    sys.path.insert(0, {repo!r})
    from corpusforge.engines.spark import session
    spark = session({{"master": "local[1]", "spark.ui.showConsoleProgress": "false"}}, 1)
    conf = spark.sparkContext.getConf()
    rows = spark.range(0, 100, 1, 2).count()
    pid = spark.sparkContext._gateway.proc.pid
    def link(fd):  # an fd the JVM closes while it is listed has no link any more
        try:
            return os.readlink(f"/proc/{{pid}}/fd/{{fd}}")
        except FileNotFoundError:
            return ""
    inodes = {{ln[8:-1] for ln in map(link, os.listdir(f"/proc/{{pid}}/fd")) if ln.startswith("socket:")}}
    listening = []  # the JVM's listening TCP sockets, as hex local addresses
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in open(table).read().splitlines()[1:]:
            f = line.split()
            if f[3] == "0A" and f[9] in inodes:
                listening.append(f[1].split(":")[0])
    print("RESULT " + json.dumps({{"rows": rows, "ui": conf.get("spark.ui.enabled"), "java": conf.get("spark.driver.extraJavaOptions"),
                                  "codegen": conf.get("spark.sql.codegen.factoryMode"), "web": spark.sparkContext.uiWebUrl, "listening": listening}}))
""")


def _child(tmp_path) -> dict:
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    env.pop("SPARK_LOCAL_IP", None)
    res = subprocess.run([sys.executable, "-c", _CHILD.format(repo=str(REPO_ROOT))], env=env, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    lines = res.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("RESULT "), lines[:5]  # the JVM writes nothing on the run's stdout
    return json.loads(lines[0][7:])


@pytest.mark.spark
def test_class_archive_key_follows_the_class_path_and_old_archives_are_pruned(tmp_path, monkeypatch):
    import pyspark

    from corpusforge.engines import spark_classes as S

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    cache = tmp_path / "cache" / "corpusforge"

    def key_for(venv: str) -> str:
        jars = tmp_path / venv / "pyspark" / "jars"
        if not jars.exists():
            jars.mkdir(parents=True)
            for n in ("spark-core.jar", "py4j.jar"):
                (jars / n).write_bytes(b"jar")
        monkeypatch.setattr(pyspark, "__file__", str(jars.parent / "__init__.py"))
        flag, tmp = S._class_archive()
        assert flag.startswith(f"-XX:ArchiveClassesAtExit={tmp} ")
        return tmp.rsplit(".", 2)[0]

    a = key_for("venv1")
    assert key_for("venv1") == a
    assert key_for("venv2") != a  # the same jar names in another virtualenv: the JVM would reject a's archive
    os.utime(tmp_path / "venv1" / "pyspark" / "jars" / "py4j.jar", (1, 1))
    assert key_for("venv1") != a  # a jar replaced in place, likewise
    for i in range(4):  # archives of four other class paths, the last one used most recently
        old = cache / f"spark-classes-{i:016x}.jsa"
        old.write_bytes(bytes.fromhex("a8ab0bf0"))
        os.utime(old, (1000 + i, 1000 + i))
    final = key_for("venv1")
    assert sorted(p.name for p in cache.glob("*.jsa")) == [f"spark-classes-{i:016x}.jsa" for i in (2, 3)]
    with open(final, "wb") as f:  # this class path's archive, once written, is used and marked used
        f.write(bytes.fromhex("a8ab0bf0"))
    os.utime(final, (1, 1))
    assert S._class_archive() == (f"-XX:SharedArchiveFile={final}", None)
    assert os.stat(final).st_mtime > 10**9


@pytest.mark.spark
def test_local_spark_session_is_loopback_and_caches_its_class_archive(tmp_path):
    cache = tmp_path / "cache" / "corpusforge"
    cache.mkdir(parents=True)
    first = _child(tmp_path)  # no archive yet: the JVM writes one as it exits
    assert first["rows"] == 100 and first["ui"] == "false" and first["web"] is None
    assert first["codegen"] == "NO_CODEGEN"  # small queries: interpreted, not compiled
    # driver RPC, block manager, py4j: all on 127.0.0.1 (0100007F in /proc/net/tcp; ::ffff:127.0.0.1 in tcp6)
    assert first["listening"] and set(first["listening"]) <= {"0100007F", "0000000000000000FFFF00000100007F"}, first["listening"]
    assert "-XX:TieredStopAtLevel=1" in first["java"] and "-XX:ArchiveClassesAtExit=" in first["java"]
    archives = list(cache.glob("spark-classes-*.jsa"))
    assert len(archives) == 1 and not list(cache.glob("*.tmp"))
    assert archives[0].read_bytes()[:4] == bytes.fromhex("a8ab0bf0") and archives[0].stat().st_size > 10**6
    second = _child(tmp_path)  # the archive is used
    assert second["rows"] == 100 and f"-XX:SharedArchiveFile={archives[0]}" in second["java"]
    archives[0].write_bytes(b"not an archive")  # a damaged archive is replaced, not silently ignored forever
    third = _child(tmp_path)
    assert third["rows"] == 100 and "-XX:ArchiveClassesAtExit=" in third["java"]
    assert archives[0].read_bytes()[:4] == bytes.fromhex("a8ab0bf0")
