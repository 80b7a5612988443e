"""docker/ cannot be built here (no Docker engine): check what can be checked without it — the compose
file parses, every service uses the image the README and Dockerfile name, the submit service runs
files that exist, and the README's docker commands are the ones the files document."""

import re

import yaml

from tests.util import REPO_ROOT

DOCKER = REPO_ROOT / "docker"


def _readme_docker_commands() -> list[str]:
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip().startswith("docker ")]


def test_compose_parses_and_starts_master_two_workers_and_a_submit():
    doc = yaml.safe_load((DOCKER / "compose.yaml").read_text(encoding="utf-8"))
    services = doc["services"]
    assert set(services) == {"master", "worker-1", "worker-2", "submit"}
    images = {s["image"] for s in services.values()}
    assert images == {"corpusforge:latest"}
    assert services["master"]["command"][:2] == ["spark-class", "org.apache.spark.deploy.master.Master"]
    for w in ("worker-1", "worker-2"):
        cmd = services[w]["command"]
        assert cmd[1] == "org.apache.spark.deploy.worker.Worker" and cmd[2] == "spark://master:7077"
    submit = services["submit"]["command"]
    assert submit[0] == "spark-submit" and submit[submit.index("--master") + 1] == "spark://master:7077"
    for f in (a for a in submit if a.endswith((".py", ".yaml"))):
        assert (REPO_ROOT / f).is_file(), f  # WORKDIR /src is the repo
    assert all("data:/data" in s["volumes"] for s in services.values())  # shared output folder
    assert all(p.startswith("127.0.0.1:") for s in services.values() for p in s.get("ports", []))


def test_readme_documents_the_dockerfile_and_compose_commands():
    docker_file = (DOCKER / "Dockerfile").read_text(encoding="utf-8")
    compose = (DOCKER / "compose.yaml").read_text(encoding="utf-8")
    cmds = _readme_docker_commands()
    build = next(c for c in cmds if c.startswith("docker build"))
    up = next(c for c in cmds if c.startswith("docker compose"))
    assert build in docker_file and build in (REPO_ROOT / "docs/engines.md").read_text(encoding="utf-8")
    assert up in compose
    tag = re.search(r"-t (\S+)", build).group(1)
    assert f"image: {tag}" in compose
    assert re.search(r'pip install .*"/src\[spark,beam\]"', docker_file)
    assert "openjdk-17-jre-headless" in docker_file  # Spark 4 needs Java 17 or 21
