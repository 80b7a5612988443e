"""A real S3 endpoint on 127.0.0.1 for the storage tests: moto's server mode (ThreadedMotoServer), the
server s3fs's and datatrove's suites run against. The client under test is pyarrow's S3FileSystem
speaking HTTP to it, with credentials from the standard AWS environment variables."""

from __future__ import annotations

import hashlib
import logging
import os
import socket

import pytest

SECRET = "planted-secret-0b7e1c9a"  # must never appear in a manifest, log or report


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def s3():
    from moto.server import ThreadedMotoServer
    from pyarrow import fs

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    port = _free_port()
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
