"""Issue 25, inputs: a run reads its input straight from an S3 endpoint (pyarrow's S3FileSystem against
the loopback moto server): globs listed by prefix (`**` too), plain JSONL in byte-range parts, gzip and
zstd streamed, the sha256 recorded while reading. The output is byte-identical to the same run on the
same files on local disk, on the local engine with 1 and 2 workers and on Spark; no credential reaches
the output, and an object replaced after planning is input_changed."""

from __future__ import annotations

import gzip
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
import zstandard

from conftest import SECRET, put
from corpusforge import engines
from corpusforge.config import load_config
from corpusforge.errors import CorpusforgeError
from corpusforge.runner import make_plan
from tests.util import assert_audit_ok, committed_outputs, manifest

REPO = Path(__file__).resolve().parents[2]
STAGES = [{"use": "clean"}, {"use": "pangu_rules"}, {"use": "dedup_exact"}, {"use": "dedup_minhash"}]


@pytest.fixture(scope="module")
def layout(shared_data) -> dict[str, bytes]:
    """raw/web.jsonl (split into parts), raw/more/wiki.jsonl.gz, raw/more/luxun.jsonl.zst, raw/.hidden.jsonl."""
    web = (shared_data / "web" / "commoncrawl_2021-43_zh_100docs.jsonl").read_bytes()
    wiki = (shared_data / "prose" / "zhwiki_articles_100.jsonl").read_bytes()
    luxun = (shared_data / "prose" / "luxun_fiction_essays.jsonl").read_bytes()
    return {"raw/web.jsonl": web, "raw/more/wiki.jsonl.gz": gzip.compress(wiki, mtime=0),
            "raw/more/luxun.jsonl.zst": zstandard.ZstdCompressor().compress(luxun[: 400_000]),
            "raw/.hidden.jsonl": web[:1000]}


def _config(tmp: Path, root: str, out: str, storage: dict | None = None, name: str = "cfg.yaml") -> Path:
    cfg = {"run": {"name": "s3", "output": out},
           "input": {"format": "jsonl", "paths": [f"{root}/raw/**/*.jsonl*"], "split_mb": 0.1},
           "stages": STAGES, "engine": {"kind": "local", "workers": 1}, "limits": {"max_quarantine_fraction": 1.0}}
    if storage:
        cfg["storage"] = storage
    p = tmp / name
    p.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    return p


def _local_reference(tmp: Path, layout: dict) -> Path:
    for k, v in layout.items():
        (tmp / "local" / k).parent.mkdir(parents=True, exist_ok=True)
        (tmp / "local" / k).write_bytes(v)
    cfg = _config(tmp, str(tmp / "local"), str(tmp / "ref"), name="local.yaml")
    engines.run(make_plan(load_config(str(cfg))), "local", workers=1, progress=False)
    return tmp / "ref"


def test_s3_input_is_byte_identical_to_local_on_every_engine(s3, bucket, layout, tmp_path):
    for k, v in layout.items():
        put(s3, f"{bucket}/{k}", v)
    ref = _local_reference(tmp_path, layout)
    storage = {"endpoint": s3["endpoint"], "region": "us-east-1", "options": {"access_key": "testing-key-id", "secret_key": SECRET}}
    cfg = _config(tmp_path, f"s3://{bucket}", str(tmp_path / "o"), storage)
    plan = make_plan(load_config(str(cfg)))
    assert sorted(f.rel for f in {j.part.file for j in plan.jobs}) == ["more/luxun.jsonl.zst", "more/wiki.jsonl.gz", "web.jsonl"]
    assert sum(j.part.file.rel == "web.jsonl" for j in plan.jobs) > 3  # byte-range parts of one object
    want = committed_outputs(ref)
    for engine, workers in (("local", 1), ("local", 2), ("spark", 2)):
        out = tmp_path / f"o-{engine}-{workers}"
        plan.out = str(out)
        engines.run(plan, engine, workers=workers, progress=False)
        assert committed_outputs(out) == want, (engine, workers)
        m, r = manifest(out), manifest(ref)
        assert m["stages"] == r["stages"] and m["inputs"] == r["inputs"] and m["files"] == r["files"]
        assert_audit_ok(out)
        for f in out.rglob("*"):
            if f.is_file():
                assert SECRET.encode() not in f.read_bytes(), f


def test_cli_run_with_storage_opt_names_no_secret(s3, bucket, layout, tmp_path):
    for k, v in layout.items():
        put(s3, f"{bucket}/{k}", v)
    cfg = _config(tmp_path, f"s3://{bucket}", str(tmp_path / "o"))
    r = subprocess.run([sys.executable, "-m", "corpusforge", "run", str(cfg), "--no-progress",
                        "--storage-opt", f"endpoint={s3['endpoint']}", "--storage-opt", "access_key=testing-key-id", "--storage-opt", f"secret_key={SECRET}"],
                       cwd=REPO, capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr
    assert SECRET not in r.stdout + r.stderr
    assert manifest(tmp_path / "o")["totals"]["records"] > 200
    assert "storage" not in manifest(tmp_path / "o")["config"]
    for f in (tmp_path / "o").rglob("*.json"):
        assert SECRET not in f.read_text(encoding="utf-8"), f


def test_an_object_replaced_after_planning_is_input_changed(s3, bucket, layout, tmp_path):
    put(s3, f"{bucket}/raw/web.jsonl", layout["raw/web.jsonl"])
    cfg = _config(tmp_path, f"s3://{bucket}", str(tmp_path / "o"), {"endpoint": s3["endpoint"]})
    plan = make_plan(load_config(str(cfg)))
    data = bytearray(layout["raw/web.jsonl"])
    i = data.index("的".encode())
    data[i:i + 3] = "地".encode()  # same size
    put(s3, f"{bucket}/raw/web.jsonl", bytes(data))
    with pytest.raises(CorpusforgeError) as e:
        engines.run(plan, "local", workers=1, progress=False)
    assert e.value.code == "input_changed" and "web.jsonl" in str(e.value)


def test_missing_objects_and_unknown_schemes_are_one_line_errors(s3, bucket, tmp_path):
    cfg = _config(tmp_path, f"s3://{bucket}", str(tmp_path / "o"), {"endpoint": s3["endpoint"]})
    with pytest.raises(CorpusforgeError) as e:
        make_plan(load_config(str(cfg)))
    assert e.value.code == "no_input_files"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"input": {"paths": ["ftp://host/x.jsonl"]}, "run": {"output": str(tmp_path / "b")}}))
    with pytest.raises(CorpusforgeError) as e:
        make_plan(load_config(str(bad)))
    assert e.value.code == "bad_path" and "ftp://" in str(e.value)
    shutil.rmtree(tmp_path / "b", ignore_errors=True)


def test_rule_and_model_files_on_s3_give_the_local_result(s3, bucket, corpus, tmp_path, monkeypatch):
    """Threshold, word-list and fastText model files named by s3:// URIs: copied once into the local
    cache, hashed into the manifest as the bundled files are, and the output is the same."""
    from corpusforge.rules_files import resolve

    monkeypatch.setenv("CORPUSFORGE_CACHE", str(tmp_path / "cache"))
    files = {"thresholds": "thresholds/pangu.yaml", "nav_terms": "nav/nav_terms.txt", "model": "models/spam_fasttext.bin"}
    for rel in [*files.values(), files["model"] + ".json"]:  # the model's sidecar beside it
        put(s3, f"{bucket}/rules/{rel}", Path(resolve(rel)).read_bytes())

    def run(out: str, where) -> dict:
        cfg_path = corpus["cfg"](out, name=f"{out.rsplit('/', 1)[-1]}.yaml")
        cfg = yaml.safe_load(cfg_path.read_text(encoding="utf-8"))
        cfg["stages"] = [{"use": "clean"},
                         {"use": "pangu_rules", "with": {"thresholds": where(files["thresholds"]),
                                                         "nav_terms": where(files["nav_terms"])}},
                         {"use": "spam_fasttext", "with": {"model": where(files["model"])}}]
        cfg_path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
        plan = make_plan(load_config(str(cfg_path)))
        engines.run(plan, "local", workers=2, progress=False)
        return plan.rule_hashes

    local_hashes = run(str(tmp_path / "bundled"), lambda rel: rel)
    s3_hashes = run(str(tmp_path / "from_s3"), lambda rel: f"s3://{bucket}/rules/{rel}")
    assert s3_hashes == local_hashes and len(local_hashes) >= 3
    assert committed_outputs(tmp_path / "from_s3") == committed_outputs(tmp_path / "bundled")
    cached = sorted(p.name for p in (tmp_path / "cache" / "files").rglob("*") if p.is_file() and p.suffix != ".stamp")
    assert cached == sorted([Path(rel).name for rel in files.values()] + ["spam_fasttext.bin.json"])  # one copy each
