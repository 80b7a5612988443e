"""A real S3 endpoint on 127.0.0.1 for the storage tests: moto's server mode (ThreadedMotoServer), the
server s3fs's and datatrove's suites run against. The client under test is pyarrow's S3FileSystem
speaking HTTP to it, with credentials from the standard AWS environment variables."""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import pytest
import yaml

from tests.sparkcluster import free_port

SECRET = "planted-secret-0b7e1c9a"  # must never appear in a manifest, log or report


@pytest.fixture(scope="session")
def s3():
    from moto.server import ThreadedMotoServer
    from pyarrow import fs

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    env = {"AWS_ACCESS_KEY_ID": "testing-key-id", "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_EC2_METADATA_DISABLED": "true"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    endpoint = f"http://127.0.0.1:{port}"
    client = fs.S3FileSystem(endpoint_override=f"127.0.0.1:{port}", scheme="http", region="us-east-1",
                             allow_bucket_creation=True)
    try:
        yield {"endpoint": endpoint, "fs": client}
    finally:
        server.stop()
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture
def bucket(s3, request):
    """A fresh bucket per test; returns its name."""
    tag = hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:8]  # parametrized cases differ
    name = "cf-" + request.node.name.lower().replace("_", "-")[:36].strip("-") + f"-{tag}-{os.getpid()}"
    name = "".join(c if c.isalnum() or c == "-" else "-" for c in name)[:60]
    s3["fs"].create_dir(name)
    return name


def put(s3, key: str, data: bytes) -> None:
    with s3["fs"].open_output_stream(key, compression=None) as f:  # pyarrow would gzip a .gz key again
        f.write(data)


STORAGE_STAGES = [{"use": "clean"}, {"use": "pangu_rules"}, {"use": "dedup_exact"}, {"use": "dedup_minhash"}]


def write_config(path: Path, inp: str, out: str, storage: dict | None) -> Path:
    cfg = {"run": {"name": "s3out", "output": out},
           "input": {"format": "jsonl", "paths": [inp], "split_mb": 0.1},
           "stages": STORAGE_STAGES, "engine": {"kind": "local", "workers": 1}, "limits": {"max_quarantine_fraction": 1.0}}
    if storage:
        cfg["storage"] = storage
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    return path


def download(s3, prefix: str, dest: Path) -> Path:
    """Every object under s3://prefix as local files (what the assertions read)."""
    from pyarrow import fs

    for info in s3["fs"].get_file_info(fs.FileSelector(prefix, recursive=True)):
        if info.type == fs.FileType.File:
            target = dest / info.path[len(prefix) + 1:]
            target.parent.mkdir(parents=True, exist_ok=True)
            with s3["fs"].open_input_stream(info.path, compression=None) as f:
                target.write_bytes(f.read())
    return dest


@pytest.fixture
def corpus(s3, bucket, shared_data, tmp_path):
    """Real web and encyclopedia text on the S3 server and on disk, the local run of it (ref), and a
    config maker for runs reading it from S3 (credentials in the plan's storage options)."""
    from corpusforge import engines
    from corpusforge.config import load_config
    from corpusforge.runner import make_plan

    data = (shared_data / "web" / "commoncrawl_2021-43_zh_100docs.jsonl").read_bytes()
    data += (shared_data / "prose" / "zhwiki_articles_100.jsonl").read_bytes()[:300_000]
    put(s3, f"{bucket}/raw/web.jsonl", data)
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "web.jsonl").write_bytes(data)
    ref = tmp_path / "ref"
    cfg = write_config(tmp_path / "local.yaml", str(tmp_path / "raw" / "web.jsonl"), str(ref), None)
    engines.run(make_plan(load_config(str(cfg))), "local", workers=1, progress=False)
    # credentials in the plan, not only the environment: a Spark session an earlier test started has
    # executors that never saw this fixture's AWS_* variables (and moto stores an unsigned upload mangled)
    storage = {"endpoint": s3["endpoint"], "options": {"access_key": "testing-key-id", "secret_key": SECRET}}
    return {"ref": ref, "storage": storage, "inp": f"s3://{bucket}/raw/web.jsonl",
            "cfg": lambda out, name="s3.yaml": write_config(tmp_path / name, f"s3://{bucket}/raw/web.jsonl", out, storage)}
