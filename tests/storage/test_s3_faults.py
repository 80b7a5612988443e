"""Issue 25, faults: the S3 endpoint is reached through a loopback proxy that resets a seeded share of
connections and answers others with 503 SlowDown (bounded). The client's retries absorb them: the run
succeeds and its objects are byte-identical to the same run on local disk."""

from __future__ import annotations

import yaml

from conftest import SECRET, download, put
from faultproxy import FaultProxy
from corpusforge import engines
from corpusforge.config import load_config
from corpusforge.runner import make_plan
from tests.util import assert_audit_ok, committed_outputs, manifest


def _cfg(path, inp: str, out: str, storage: dict | None):
    cfg = {"run": {"name": "faults", "output": out}, "input": {"format": "jsonl", "paths": [inp], "split_mb": 0.05},
           "stages": [{"use": "clean"}, {"use": "dedup_exact"}, {"use": "dedup_minhash"}],
           "engine": {"kind": "local", "workers": 2}, "limits": {"max_quarantine_fraction": 1.0}}
    if storage:
        cfg["storage"] = storage
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    return str(path)


def test_resets_and_slowdowns_are_retried_and_the_output_is_byte_identical(s3, bucket, shared_data, tmp_path):
    data = (shared_data / "web" / "commoncrawl_2021-43_zh_100docs.jsonl").read_bytes()
    put(s3, f"{bucket}/raw/web.jsonl", data)
    (tmp_path / "web.jsonl").write_bytes(data)
    engines.run(make_plan(load_config(_cfg(tmp_path / "l.yaml", str(tmp_path / "web.jsonl"), str(tmp_path / "ref"), None))),
                "local", workers=2, progress=False)
    proxy = FaultProxy(int(s3["endpoint"].rsplit(":", 1)[1]), seed=25, reset=0.05, slowdown=0.03, bound=10)
    try:
        storage = {"endpoint": f"http://127.0.0.1:{proxy.port}", "options": {"access_key": "testing-key-id", "secret_key": SECRET}}
        plan = make_plan(load_config(_cfg(tmp_path / "s.yaml", f"s3://{bucket}/raw/web.jsonl", f"s3://{bucket}/out", storage)))
        engines.run(plan, "local", workers=2, progress=False)
    finally:
        proxy.close()
    print(f"proxy: {proxy.connections} connections, {proxy.resets} reset, {proxy.slowdowns} answered 503 SlowDown")
    assert proxy.resets > 0 and proxy.slowdowns > 0, (proxy.connections, proxy.resets, proxy.slowdowns)
    got = download(s3, f"{bucket}/out", tmp_path / "got")
    assert committed_outputs(got) == committed_outputs(tmp_path / "ref")
    assert manifest(got)["files"] == manifest(tmp_path / "ref")["files"]
    assert_audit_ok(got)
