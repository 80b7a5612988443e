"""The PanGu pipeline with input and output on an S3 endpoint vs on local disk, same data, same machine.

Builds a JSONL corpus of --mb MB from the shared real Chinese data (bench_local_io.build_corpus), starts
moto's S3 server on 127.0.0.1 (the endpoint the storage tests use; pyarrow's S3FileSystem is the client),
uploads the corpus, then times in the same run, each corpusforge run in its own process:
  floor: the raw pyarrow S3 transfer of the same bytes (download the input object, upload it again)
  local: corpusforge run, input and output on local disk
  s3:    corpusforge run, input s3://…, output s3://…
and reports each run's peak RSS (the largest of the driver and its workers).
Target: s3 <= 1.3 x local time, peak RSS within 1.2 x local. Needs the dev extra (moto[server]).
Usage: python bench/bench_storage.py [--mb 100] [--workers 2]"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_local_io import build_corpus  # noqa: E402

# Runs the CLI in this child and prints the peak RSS (KiB) of it and its workers as the last line.
_CHILD = ("import resource, sys; from corpusforge.cli import main; rc = main(sys.argv[1:]); "
          "print(max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "
          "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)); sys.exit(rc)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _config(path: Path, inp: str, out: str, workers: int) -> Path:
    pangu = yaml.safe_load((REPO / "corpusforge" / "data" / "pangu.yaml").read_text(encoding="utf-8"))
    cfg = {"run": {"name": "bench-storage", "output": out, "seed": 2021},
           "input": {"source": "common_crawl", "format": "jsonl", "paths": [inp]},
           "stages": pangu["stages"], "engine": {"kind": "local", "workers": workers},
           "limits": {"max_quarantine_fraction": 1.0}}
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    return path


def _run(cfg: Path, env: dict, storage_opt: list[str]) -> tuple[float, int]:
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", _CHILD, "run", str(cfg), "--no-progress", *storage_opt],
                       cwd=REPO, env=env, capture_output=True, text=True)
    secs = time.perf_counter() - t
    if r.returncode != 0:
        sys.exit(f"bench_storage: run failed: {r.stderr.strip().splitlines()[-1] if r.stderr.strip() else r.returncode}")
    return secs, int(r.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=int, default=100)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    import logging

    from moto.server import ThreadedMotoServer
    from pyarrow import fs

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_EC2_METADATA_DISABLED": "true"}
    os.environ.update({k: env[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")})
    endpoint = f"http://127.0.0.1:{port}"
    s3 = fs.S3FileSystem(endpoint_override=f"127.0.0.1:{port}", scheme="http", region="us-east-1", allow_bucket_creation=True)
    work = Path(tempfile.mkdtemp(prefix="cf-bench-storage-"))
    try:
        src = work / "corpus.jsonl"
        n = build_corpus(src, args.mb)
        data = src.read_bytes()
        mb = len(data) / 2**20
        s3.create_dir("bench")
        with s3.open_output_stream("bench/raw/corpus.jsonl", compression=None) as f:
            f.write(data)
        print(f"data: {mb:.0f} MB JSONL, {n} docs of real Chinese text; PanGu pipeline (corpusforge/data/pangu.yaml "
              f"stages); workers={args.workers}; cores={os.cpu_count()}; S3: moto server on 127.0.0.1")
        t = time.perf_counter()
        with s3.open_input_stream("bench/raw/corpus.jsonl", compression=None) as f, \
                s3.open_output_stream("bench/floor/copy.jsonl", compression=None) as o:
            while chunk := f.read(8 << 20):
                o.write(chunk)
        t_floor = time.perf_counter() - t
        t_local, rss_local = _run(_config(work / "local.yaml", str(src), str(work / "out"), args.workers), env, [])
        t_s3, rss_s3 = _run(_config(work / "s3.yaml", "s3://bench/raw/corpus.jsonl", "s3://bench/out", args.workers),
                            env, ["--storage-opt", f"endpoint={endpoint}"])
        local_m = json.loads((work / "out" / "manifest.json").read_text(encoding="utf-8"))
        with s3.open_input_stream("bench/out/manifest.json", compression=None) as f:
            s3_m = json.loads(f.read())
        same = local_m["files"] == s3_m["files"]
        print(f"floor (pyarrow S3 download + upload of the input): {t_floor:7.1f} s  {mb / t_floor:7.1f} MB/s")
        print(f"corpusforge run, local disk:                       {t_local:7.1f} s  peak RSS {rss_local / 1024:7.0f} MiB")
        print(f"corpusforge run, S3 in and out:                    {t_s3:7.1f} s  peak RSS {rss_s3 / 1024:7.0f} MiB"
              f"  (same files and sha256s as local: {same})")
        print(f"peak RSS S3 / local = {rss_s3 / rss_local:.2f} (target <= 1.2)")
        print(f"headline: PanGu pipeline on {mb:.0f} MB with input and output on S3 = {t_s3 / t_local:.2f} x the local-disk "
              f"time (target <= 1.3; the S3 transfer floor alone is {t_floor / t_local:.2f} x)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
        server.stop()


if __name__ == "__main__":
    main()
