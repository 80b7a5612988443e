"""A real Spark standalone cluster on 127.0.0.1 for tests: one master and workers started with
spark-class from the pyspark wheel, each worker with the environment it is given (e.g. its own folders),
stopped afterwards."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, what: str, timeout: float = 90) -> None:
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            raise AssertionError(f"{what} exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.5)
    raise AssertionError(f"{what} did not listen on 127.0.0.1:{port} within {timeout}s")


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent


def base_env() -> dict:
    return {**os.environ, "SPARK_HOME": str(spark_home()), "PYSPARK_PYTHON": sys.executable, "SPARK_LOCAL_IP": "127.0.0.1"}


@contextmanager
def standalone(logs: Path, workers: list[dict], cores: int = 1, memory: str = "1g"):
    """Yields the master URL. workers: one environment overlay per worker (e.g. SPARK_WORKER_DIR)."""
    cls = str(spark_home() / "bin" / "spark-class")
    port, ui = free_port(), free_port()
    master = subprocess.Popen([cls, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(port),
                               "--webui-port", str(ui)], env={**base_env(), "SPARK_LOG_DIR": str(logs)},
                              stdout=open(logs / "master.log", "wb"), stderr=subprocess.STDOUT)
    procs = [master]
    try:
        wait_port(port, master, "spark master")
        for i, extra in enumerate(workers):
            wui = free_port()
            procs.append(subprocess.Popen(
                [cls, "org.apache.spark.deploy.worker.Worker", f"spark://127.0.0.1:{port}", "--host", "127.0.0.1",
                 "--cores", str(cores), "--memory", memory, "--webui-port", str(wui)],
                env={**base_env(), **extra},
                stdout=open(logs / f"worker{i}.log", "wb"), stderr=subprocess.STDOUT))
            wait_port(wui, procs[-1], f"spark worker {i}")
        yield f"spark://127.0.0.1:{port}"
    finally:
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
