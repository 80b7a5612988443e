"""clean stage: character hygiene that keeps Chinese intact, rule packs, repeated paragraphs (real data)."""

import json

import pyarrow as pa
import pytest

from corpusforge.errors import CorpusforgeError
from corpusforge.io.html_extract import decode_html, extract
from corpusforge.stage import lookup
from corpusforge.stages.clean import dedup_paragraphs


def stage(**kw):
    cls = lookup("clean")
    s = cls(cls.Params(**kw))
    s.setup()
    return s


def jsonl(path):
    return [json.loads(line) for line in open(path, encoding="utf-8")]


def test_keeps_chinese_punctuation_and_fixes_noise(shared_data):
    docs = jsonl(shared_data / "prose/luxun_fiction_essays.jsonl")[:5]
    base = docs[0]["text"][:300]
    noisy = "\ufeff" + base.replace("，", "，\u200b", 3).replace("\n", "\r\n") + "&amp;nbsp;\ue000\x07Ｖｅｒ１２"
    out, cols = stage().clean(pa.array([noisy, base]))
    a, b = out.to_pylist()
    assert b == base.strip()  # clean prose is untouched: ，。！？：；“” stay full-width
    assert a.startswith(base.strip()) and a.endswith("Ver12")  # full-width letters/digits → ASCII
    assert "\u200b" not in a and "\ue000" not in a and "\x07" not in a and "\r" not in a and "&" not in a
    assert cols["entities"].tolist() == [1, 0]


def test_fullwidth_none_and_nfkc_modes(shared_data):
    t = "全角ＡＢＣ１２３，中文标点！（括号）"
    assert stage(fullwidth="none").clean(pa.array([t]))[0][0].as_py() == t
    assert stage(fullwidth="nfkc").clean(pa.array([t]))[0][0].as_py() == "全角ABC123，中文标点！（括号）"


def test_repeated_paragraphs_removed_once_each_first_kept(shared_data):
    paras = [p for p in jsonl(shared_data / "prose/luxun_fiction_essays.jsonl")[3]["text"].split("\n") if len(p) > 20][:6]
    # page: p0 p1 p2 p0 p3 p1 p0 p4 — the 2nd/3rd p0 and 2nd p1 go, everything else stays in order
    page = "\n".join([paras[i] for i in (0, 1, 2, 0, 3, 1, 0, 4)])
    out, removed = dedup_paragraphs(page, 5)
    assert removed == 3
    assert out.split("\n") == [paras[i] for i in (0, 1, 2, 3, 4)]


def test_repeated_headers_on_real_html_page(shared_data):
    html = (shared_data / "web/html/debian-reference/zh-cn/ch03.zh-cn.html").read_bytes()
    text = extract(decode_html(html), "page")[0]
    lines = [ln.strip() for ln in text.split("\n") if len(ln.strip()) >= 5]
    repeats = len(lines) - len(set(lines))
    assert repeats > 0  # DocBook pages repeat headers/footers
    out, cols = stage().clean(pa.array([text]))
    kept = [ln.strip() for ln in out[0].as_py().split("\n") if len(ln.strip()) >= 5]
    assert len(kept) == len(set(kept))
    assert cols["dup_paragraphs"][0] >= repeats - 2  # a few repeats only become equal after cleaning
    assert [ln for ln in dict.fromkeys(kept)] == kept


def test_short_lines_may_repeat(shared_data):
    page = "“唔。”\n他说。\n“唔。”"
    out, cols = stage().clean(pa.array([page]))
    assert out[0].as_py() == page and cols["dup_paragraphs"][0] == 0


def test_clean_on_commoncrawl_records_what_it_removed(shared_data):
    docs = jsonl(shared_data / "web/commoncrawl_2021-43_zh_100docs.jsonl")
    s = stage()
    batch = pa.RecordBatch.from_pydict({"text": [d["text"] for d in docs]})
    out = s.map(batch)
    removed = out.column("clean__chars_removed").to_pylist()
    by_id = dict(zip([d["id"] for d in docs], removed))
    assert by_id["cc202143-016"] >= 10  # \x05\x06\x07\x08 control bytes inside the text
    assert all(r >= 0 for r in removed)
    texts = out.column("text").to_pylist()
    assert not any("\x05" in t or "\ufffd" in t for t in texts)


@pytest.mark.parametrize("bad, msg", [
    ("  - {id: x, pattern: '', replace: '', examples: [{in: a, out: a}]}\n", "empty or 1 character"),
    ("  - {id: x, pattern: 'a', replace: '', examples: [{in: a, out: ''}]}\n", "empty or 1 character"),
    ("  - {id: x, pattern: 'a*', replace: '', examples: [{in: a, out: ''}]}\n", "matches the empty string"),
    ("  - {id: x, pattern: '(?=ab)', replace: '', examples: [{in: a, out: ''}]}\n", "RE2"),
    ("  - {id: x, pattern: 'ab'}\n", "examples"),
])
def test_bad_rule_file_names_file_and_line(tmp_path, bad, msg):
    p = tmp_path / "r.yaml"
    p.write_text("# source: test\n# licence: test\nrules:\n  - {id: ok, pattern: 'ab', replace: '', examples: [{in: ab, out: ''}]}\n" + bad, encoding="utf-8")
    with pytest.raises(CorpusforgeError, match=f"r.yaml:5: .*{msg}"):
        stage(rules=[str(p)])


def test_rule_file_without_header_is_rejected(tmp_path):
    p = tmp_path / "r.yaml"
    p.write_text("rules:\n  - {id: ok, pattern: 'ab', replace: '', examples: [{in: ab, out: ''}]}\n", encoding="utf-8")
    with pytest.raises(CorpusforgeError, match="source and the licence"):
        stage(rules=[str(p)])
