"""Real pipeline runs for the report tests (unit and browser): three real sources from the shared
data plus one file of hostile documents (XSS payloads inside real prose, a sensitive-word page),
through clean → pangu_rules → sensitive_words → dedup_exact → dedup_minhash. The clean stage strips
markup, so the XSS run leaves it out: that is how raw <script> text reaches kept and rejects."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from corpusforge.rules_files import resolve
from tests.util import run, write_config

STAGES = [{"use": "clean"}, {"use": "pangu_rules"}, {"use": "sensitive_words"}, {"use": "dedup_exact"}, {"use": "dedup_minhash"}]
XSS = '<script>window.__xss = 1; alert("xss")</script><img src=x onerror="window.__xss = 2; alert(2)">'


def hostile_docs(shared: Path) -> list[dict]:
    prose = [json.loads(line)["text"] for line in (shared / "prose/luxun_fiction_essays.jsonl").open(encoding="utf-8")]
    terms = [ln.strip() for ln in open(resolve("sensitive/porn.txt"), encoding="utf-8") if ln.strip() and not ln.startswith("#")]
    return [
        # long Chinese prose from two works (so no near-duplicate of either): kept
        {"id": "xss-kept", "text": prose[3][-900:] + "\n" + XSS + "\n" + prose[50][-900:]},
        {"id": "xss-short", "text": XSS},  # too short: a reject whose preview is the payload
        {"id": "sensitive", "text": prose[5][:100] + "".join(f"，{t}，" for t in terms[:4]) + prose[5][100:900]},
    ]


def make_run(shared: Path, tmp: Path, out: str = "run", stages=STAGES, sources=("web", "luxun", "zhwiki", "hostile")) -> Path:
    hostile = tmp / "hostile.jsonl"
    hostile.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in hostile_docs(shared)), encoding="utf-8")
    files = {"web": shared / "web/commoncrawl_2021-43_zh_100docs.jsonl", "luxun": shared / "prose/luxun_fiction_essays.jsonl",
             "zhwiki": shared / "neardup/zhwiki_versions_pool.jsonl", "hostile": hostile}
    files = {s: files[s] for s in sources}
    cfg = write_config(tmp, list(files.values()), stages, out=out, name=f"{out}.yaml")
    doc = yaml.safe_load(cfg.read_text(encoding="utf-8"))
    doc["input"] = [{**doc["input"], "paths": [str(p)], "source": s} for s, p in files.items()]  # one block per source
    cfg.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    assert run(cfg) == 0
    return tmp / out


def make_xss_run(shared: Path, tmp: Path) -> Path:
    return make_run(shared, tmp, "xss", [{"use": "pangu_rules"}, {"use": "sensitive_words"}, {"use": "dedup_exact"}], ("luxun", "hostile"))
