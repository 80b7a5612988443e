"""pangu_rules on real data: prose is kept, gambling/ad pages and navigation pages go, each with its reason."""

import json
from collections import Counter

import numpy as np
import pyarrow as pa
import pytest

from corpusforge.io.html_extract import decode_html, extract
from corpusforge.pipeline import apply_stages, output_schemas
from corpusforge.stage import lookup

# Hand-checked in cc 2021-43: gambling SEO text injected into the page (brand names such as 威尼斯人现金网,
# yabo, 欧宝体育, 美狮贵宾会, 华体会, 体育app, bt365, 爱游戏体育, 澳洲幸运8; "十大正规体育平台" keywords).
GAMBLING = {"cc202143-000", "cc202143-016", "cc202143-019", "cc202143-023", "cc202143-033", "cc202143-035",
            "cc202143-046", "cc202143-048", "cc202143-069", "cc202143-072", "cc202143-089", "cc202143-099"}


def mk(name, **kw):
    cls = lookup(name)
    s = cls(cls.Params(**kw))
    s.setup()
    return s


def chain(**rules_kw):
    return [mk("clean"), mk("t2s"), mk("pangu_rules", **rules_kw), mk("sensitive_words")]


def run(stages, docs):
    batch = pa.RecordBatch.from_pydict({
        "id": [d["id"] for d in docs], "source": ["t"] * len(docs), "text": [d["text"] for d in docs],
        "meta": pa.array([[] for _ in docs], pa.map_(pa.string(), pa.string()))})
    counts = {}
    kept, rejects, _ = apply_stages(stages, output_schemas(stages, batch.schema), batch, counts)
    reasons = {r["id"]: r["reason"] for b in rejects for r in b.to_pylist()}
    return kept, reasons


def jsonl(path):
    return [json.loads(line) for line in open(path, encoding="utf-8")]


def test_high_quality_prose_is_kept(shared_data):
    docs = jsonl(shared_data / "prose/zhwiki_articles_100.jsonl") + jsonl(shared_data / "prose/luxun_fiction_essays.jsonl")
    kept, reasons = run(chain(), docs)
    share = kept.num_rows / len(docs)
    print(f"prose kept {kept.num_rows}/{len(docs)} = {share:.3f}", Counter(reasons.values()))
    # Measured 183/192 = 0.953. Every drop is a stub (< 150 chars), an article dominated by English
    # references (< 60 % Han) or a list page of mostly short lines: the rules doing what PanGu-α defines.
    assert share >= 0.95
    assert set(reasons.values()) <= {"pangu_rules:too_short", "pangu_rules:low_zh_ratio", "pangu_rules:navigation"}
    assert not any(i.startswith("luxun") or "luxun" in i for i in reasons)
    assert {"zhwiki-115", "zhwiki-291"} <= {i for i, r in reasons.items() if r.endswith("too_short")}  # disambiguation pages


def test_commoncrawl_gambling_pages_dropped_every_drop_has_a_reason(shared_data):
    docs = jsonl(shared_data / "web/commoncrawl_2021-43_zh_100docs.jsonl")
    kept, reasons = run(chain(), docs)
    assert kept.num_rows + len(reasons) == len(docs)
    assert all(r for r in reasons.values())
    ad_drops = {i for i, r in reasons.items() if r in ("pangu_rules:ads", "sensitive_words:sensitive_words")}
    assert GAMBLING <= ad_drops
    assert ad_drops - GAMBLING == set()  # no false positive among the ad drops (checked by hand)
    # cc202143-091 (a short story that says 兼职 four times) was a false positive before 兼职 left the ad list
    assert "cc202143-091" not in reasons


def test_title_only_pages_are_too_short(shared_data):
    docs = [{"id": d["id"], "text": d["title"]} for d in jsonl(shared_data / "web/commoncrawl_2021-43_zh_100docs.jsonl")]
    _, reasons = run([mk("clean"), mk("pangu_rules")], docs)
    assert set(reasons) == {d["id"] for d in docs} and set(reasons.values()) == {"pangu_rules:too_short"}


def _debian_pages(shared_data):
    pages = sorted((shared_data / "web/html/debian-reference").glob("*/*.html"))
    return [{"id": f"{p.parent.name}/{p.name}", "text": extract(decode_html(p.read_bytes()), "page")[0]} for p in pages]


def test_debian_reference_index_is_navigation_chapters_are_not(shared_data):
    docs = _debian_pages(shared_data)
    assert len(docs) == 30
    _, reasons = run([mk("clean"), mk("t2s", config="tw2sp"), mk("pangu_rules")], docs)
    nav = {i for i, r in reasons.items() if r == "pangu_rules:navigation"}
    assert nav == {"zh-cn/index.zh-cn.html", "zh-tw/index.zh-tw.html"}
    # The chapters are half shell commands and English package names, so the PanGu-α 0.60 Chinese
    # share drops most of them; with that check off they are all kept.
    _, reasons = run([mk("clean"), mk("t2s", config="tw2sp"), mk("pangu_rules", overrides={"min_zh_ratio": 0.0})], docs)
    assert set(reasons) == {"zh-cn/index.zh-cn.html", "zh-tw/index.zh-tw.html"}


def test_navigation_features_on_a_menu(shared_data):
    s = mk("pangu_rules")
    menu = "\n".join(["首页 | 新闻 | 关于我们 | 联系我们"] * 8 + ["上一页", "下一页", "返回顶部", "网站地图", "版权所有"] +
                     [jsonl(shared_data / "prose/luxun_fiction_essays.jsonl")[0]["text"][:60]])
    sc = s.score(pa.RecordBatch.from_pydict({"text": [menu]}))
    assert sc["link_line_frac"][0].as_py() >= 0.8 and sc["prose_frac"][0].as_py() < 0.35
    v = s.decide({k: np.asarray(x.to_numpy(zero_copy_only=False)) for k, x in sc.items()})
    assert v.reason == ["navigation"]


def test_thresholds_overrides_and_unknown_profile(shared_data):
    from corpusforge.errors import CorpusforgeError

    with pytest.raises(CorpusforgeError, match="no profile 'strict'"):
        mk("pangu_rules", profile="strict")
    with pytest.raises(CorpusforgeError, match="min_charz"):
        mk("pangu_rules", overrides={"min_charz": 1})
    docs = jsonl(shared_data / "prose/luxun_fiction_essays.jsonl")
    _, reasons = run([mk("pangu_rules", overrides={"min_chars": 10**9})], docs)
    assert len(reasons) == len(docs)
