"""The compiled text kernels equal their reference paths, column by column, on the shared real data and on
adversarial text (issue 20: no decision may change)."""

import json
import random

import numpy as np
import pyarrow as pa
import pytest

from corpusforge.algorithms import units as K
from corpusforge.models import featurize as ref

FILES = ["prose/luxun_fiction_essays.jsonl", "prose/zhwiki_articles_100.jsonl", "web/commoncrawl_2021-43_zh_100docs.jsonl",
         "spam/trec06c_email_sample.jsonl", "diverse/news_sogoucs_sohu.jsonl", "quality/chinesewebtext_clean_vs_dirty.jsonl"]


def shared_texts(shared, files=FILES):
    out = []
    for f in files:
        for line in (shared / f).read_text(encoding="utf-8").splitlines():
            out.append(json.loads(line)["text"])
    return out


def adversarial(n=300, seed=20, interacting=True):
    """Mixed scripts and the characters the per-character tables must not get wrong: combining marks
    (composing with the letter before), Hangul jamo, Σ (lowers by context), full-width forms, ligatures and
    squared units that NFKC expands (㎏ → kg, ﬁ → fi), superscripts, controls, private use, unassigned code
    points, and long runs of spaces that move the reader's piece boundaries."""
    rng = random.Random(seed)
    pools = ["中文字符测试，。！？", "ＡＢＣａｂｃ１２３", "e\u0301a\u0308", "\u1100\u1161\u11a8가각", "ΣΑΣ σς",
             "㎏㎞ﬁﬃ²³①½", "\x00\x07\u200b\ufeff\ue000\U000f0000", "\u0378\U000e0fff", "abc XYZ 0123 İı",
             "ｶﾞﾊﾟ", "\u09c7\u09be\u0b47\u0b3e", "\u3000\xa0\t\n"]
    if not interacting:
        pools = [p for i, p in enumerate(pools) if i not in (2, 3, 4, 9, 10)]
    out = []
    for i in range(n):
        parts = []
        for _ in range(rng.randrange(1, 60)):
            p = rng.choice(pools)
            parts.append("".join(rng.choice(p) for _ in range(rng.randrange(1, 8))))
            if rng.random() < 0.05:
                parts.append(" " * rng.randrange(2900, 3100))
        out.append("".join(parts) * rng.choice([1, 1, 40]))
    return out


def ref_units(texts, max_units):
    return [ref.units(t, max_units) for t in texts]


def as_lists(u: K.Units):
    cps = u.cps.tobytes().decode("utf-32-le")
    return [[cps[u.uoff[i]:u.uoff[i + 1]] for i in range(u.doc_u[d], u.doc_u[d + 1])] for d in range(len(u))]


@pytest.mark.parametrize("max_units", [3000, 50])
def test_units_hashes_and_lines_equal_the_reference_on_real_text(shared_data, max_units):
    texts = shared_texts(shared_data)
    u = K.batch_units(pa.array(texts), max_units)
    assert as_lists(u) == ref_units(texts, max_units)
    fast = K.hashed_matrix(u, 1 << 18)
    slow = ref.hashed_matrix_reference(texts, 1 << 18, max_units)
    for a, b in zip(fast, slow):
        assert a.dtype == b.dtype and np.array_equal(a, b)  # data: bit-equal floats
    assert K.fasttext_lines(u) == [ref.fasttext_line(t, max_units) + "\n" for t in texts]


@pytest.mark.parametrize("dim", [1, 255, 257, 65537, 2**32 - 5])
def test_hashed_indices_sort_as_the_reference_at_any_dimension(shared_data, dim):
    """The per-document radix sort (1–4 byte passes, short documents by np.sort) orders and dedups indices
    exactly as the reference's np.unique."""
    texts = shared_texts(shared_data)[:300] + ["", "a", "一二"]
    fast = K.hashed_matrix(K.batch_units(pa.array(texts)), dim)
    slow = ref.hashed_matrix_reference(texts, dim, ref.MAX_UNITS)
    for a, b in zip(fast, slow):
        assert a.dtype == b.dtype and np.array_equal(a, b)


@pytest.mark.parametrize("interacting", [True, False])
def test_units_equal_the_reference_on_adversarial_text(interacting):
    texts = adversarial(interacting=interacting)
    u = K.batch_units(pa.array(texts))
    assert as_lists(u) == ref_units(texts, ref.MAX_UNITS)
    # documents with characters that interact go to the reference; the others the kernel cuts itself
    flagged = K._units(*K.arrow_utf8(pa.array(texts)), ref.MAX_UNITS, *K.tables())[3]
    assert (0 < flagged.sum() < len(texts)) if interacting else not flagged.any()


def test_tables_follow_nfkc_and_lower_per_character():
    moff, mcp, simple, cls, isdig, wordish = K.tables()
    for ch, want in [("Ａ", "a"), ("㎏", "kg"), ("，", ","), ("中", "中"), ("ﬁ", "fi")]:
        c = ord(ch)
        assert simple[c] and mcp[moff[c]:moff[c + 1]].tobytes().decode("utf-32-le") == want
    for ch in ["\u0301", "\u1161", "\u11a8", "Σ", "\u09be"]:  # compose with (or lower by) their neighbour
        assert not simple[ord(ch)]
    assert [cls[ord(c)] for c in "a0中 \u200b"] == [K._LETTER, K._DIGIT, K._OTHER, K._SPACE, K._SPACE]


def test_memo_reuses_units_only_for_the_same_id_and_text(shared_data):
    texts = shared_texts(shared_data, FILES[:1])[:40]
    ids = [f"d{i}" for i in range(len(texts))]
    K.batch_units(pa.array(texts), ids=ids)
    # the next stage sees a subset, one text changed under the same id, one new document
    sub = [5, 7, 30]
    texts2 = [texts[i] for i in sub] + ["另一篇文章"]
    texts2[1] = texts2[1] + "改"
    ids2 = [ids[i] for i in sub] + ["new"]
    got = K.batch_units(pa.array(texts2), ids=ids2)
    assert as_lists(got) == ref_units(texts2, ref.MAX_UNITS)
    assert np.array_equal(K.hashed_matrix(got, 997)[1], ref.hashed_matrix_reference(texts2, 997)[1])


def test_memo_does_not_cross_max_units(shared_data):
    texts = shared_texts(shared_data, FILES[:1])[:5]
    ids = [str(i) for i in range(5)]
    K.batch_units(pa.array(texts), 3000, ids)
    assert as_lists(K.batch_units(pa.array(texts), 20, ids)) == ref_units(texts, 20)


@pytest.mark.parametrize("max_chars", [20000, 7])
def test_char_lm_perplexity_is_bit_equal_to_the_reference(shared_data, max_chars):
    from corpusforge.rules_files import resolve
    from corpusforge.train import charlm

    lm = charlm.CharLM.load(resolve("models/char_lm_zh.npz"))
    texts = shared_texts(shared_data) + adversarial(60) + ["", "a"]
    fast = lm.perplexity(pa.array(texts), max_chars)
    slow = lm.perplexity_reference(texts, max_chars)
    assert fast.dtype == slow.dtype and np.array_equal(fast, slow)
    assert np.array_equal(lm.perplexity(texts[:3], max_chars), slow[:3])  # a list of str too


def test_compiled_fasttext_prediction_is_bit_equal_to_fasttext(shared_data):
    from corpusforge.models import spam
    from corpusforge.rules_files import resolve

    model = spam.load(resolve("models/spam_fasttext.bin"))
    texts = shared_texts(shared_data) + adversarial(100) + ["", "   ", "没有"]
    assert spam._compiled(model) is not None
    fast = spam.spam_prob(model, pa.array(texts))
    slow = spam.spam_prob_fasttext(model, ref.fasttext_lines(texts))  # the lines through fastText's own predict
    assert np.array_equal(fast, slow)
    assert 0.05 < float(np.mean(fast >= 0.5)) < 0.95  # both classes occur: the comparison means something


def nav_pages(shared):
    """Real menus, TOCs and list pages (the HTML-extracted shared pages), plus lines built to hit every
    branch of the navigation features: separators with Unicode spaces, TOC forms, nav terms, blank lines."""
    out = shared_texts(shared, ["web/html/gne_extractor_output.jsonl"])
    rng = random.Random(7)
    parts = ["首页 | 新闻 | 关于我们", "1.2.3. 标题", "A.1. 附录", "1.2 概况", "第三章 总则", "第12节", "（二）办法", "(3)",
             "上一页", "返回顶部", "\u3000首页\u3000", "a\u2003-\u2003b - c", "» 下一篇 ›", "1234. 长编号", "10.1000. x",
             "这是一个很长的句子，里面有逗号，还有句号。确实是正文。", "", "  ", "\t", "第一百章", "第章", "（）", "·•|"]
    for _ in range(200):
        out.append("\n".join(rng.choice(parts) for _ in range(rng.randrange(1, 30))))
    return out


def test_pangu_rules_scan_equals_the_reference(shared_data):
    from corpusforge.stage import lookup

    cls = lookup("pangu_rules")
    st = cls(cls.Params())
    st.setup()
    texts = shared_texts(shared_data) + nav_pages(shared_data) + adversarial(100) + ["", "\n\n", "  a  "]
    batch = pa.RecordBatch.from_pydict({"text": texts})
    fast, slow = st.score(batch), st.score_reference(batch)
    assert st._scan is not None and list(fast) == list(slow)
    for k in fast:
        assert fast[k].equals(slow[k]), k
    v = st.decide({k: c.to_numpy() for k, c in fast.items()})
    assert {"navigation", "too_short", "low_zh_ratio"} <= set(v.reason)  # the branches are exercised


@pytest.mark.parametrize("config", ["t2s", "tw2sp"])
def test_t2s_changed_counts_equal_the_reference(shared_data, config):
    from corpusforge.stages.t2s import T2S

    st = T2S(T2S.Params(config=config))
    st.setup()
    rows = [json.loads(x) for x in (shared_data / "tradsimp/debian_reference_zhcn_zhtw_paragraphs.jsonl").read_text(encoding="utf-8").splitlines()]
    texts = ["", "，"] + [r["zh_tw"] for r in rows] + ["", None, "網際網路\n作業系統", "没有繁体字"]  # tw2sp: 網際網路 → 互联网
    out, changed = st.convert(pa.array(texts, pa.string()))
    assert out.to_pylist() == [None if t is None else st._cc.convert(t) for t in texts]
    assert st._convert_all(texts) == out.to_pylist()  # the path without numba: the same text
    assert np.array_equal(changed, st.changed_reference(texts, out.to_pylist()))
    assert changed.sum() > 0 and (config == "t2s" or len(out[-2].as_py()) < len(texts[-2]))


def messy_pages(shared):
    """Real pages plus everything clean touches: every line-break form, controls, zero-width and format
    characters, private use, full-width letters, entities (also double-escaped), rule hits (tags, URLs,
    separators, emoji), space runs around line breaks, blank-line runs and repeated paragraphs."""
    out = shared_texts(shared) + nav_pages(shared)
    rng = random.Random(11)
    parts = ["正文第一段，内容。", "\r\n", "\r", "\u2028", "\x85", "\x0b", "\x0c", "\n", "\n\n\n\n", " ", "\t", "\xa0", "\u3000",
             "\x00", "\x07", "\u200b", "\ufeff", "\u00ad", "\ue000", "\ufffd", "Ｆｕｌｌ１２", "&amp;", "&amp;nbsp;", "&#8203;",
             "&bogus;", "<br/>", "<p class=\"x\">", "http://x.cn/a?b=1", "www.example.com", "=====", "😀👍", "├──", "★",
             "重复的段落内容在这里\n", "  重复的段落内容在这里  \n", "短\n", "a b  c", "\U00020000"]
    for _ in range(300):
        out.append("".join(rng.choice(parts) for _ in range(rng.randrange(1, 40))))
    return out


@pytest.mark.parametrize("params", [{}, {"fullwidth": "none", "keep_ideographic_space": True, "min_repeat_chars": 1},
                                    {"decode_entities": False, "dedup_paragraphs": False}])
def test_clean_kernels_equal_the_reference(shared_data, params):
    from corpusforge.stages.clean import Clean

    st = Clean(Clean.Params(**params))
    st.setup()
    texts = pa.array(messy_pages(shared_data), pa.string())
    fast, fcols = st.clean(texts)
    slow, scols = st.clean_reference(texts)
    assert st._table is not None and fast.type == slow.type and fast.equals(slow)
    for c in scols:
        assert np.array_equal(fcols[c], scols[c]), c
    assert all(scols[c].any() for c in scols if params.get({"entities": "decode_entities",
                                                            "dup_paragraphs": "dedup_paragraphs"}.get(c, ""), True))


def test_skeleton_and_words_equal_arrow(shared_data):
    from corpusforge.algorithms import skeleton_scan, wordmatch
    from corpusforge.rulepack import SKELETON_DROP_RE, skeleton

    texts = pa.array(messy_pages(shared_data) + adversarial(100) + ["ÀÉÎ İ ǅ Ω ＡＢ", "bt365手机下载 TNT", ""], pa.string())
    assert skeleton_scan.skeleton(texts, SKELETON_DROP_RE).cast(pa.string()).equals(skeleton(texts))
    assert skeleton_scan.words(texts).cast(pa.string()).equals(wordmatch.words(texts))


@pytest.mark.parametrize("keep_ideographic", [False, True])
def test_collapse_equals_collapse_spaces_on_every_short_mix(keep_ideographic):
    """The one-pass collapse against basic.collapse_spaces' four regex steps, on every string of up to 6
    characters over spaces, line breaks and letters (137k strings)."""
    import itertools

    from corpusforge.algorithms import clean_scan
    from corpusforge.algorithms.utf8 import arrow_utf8
    from corpusforge.stages.basic import collapse_spaces

    alphabet = ["a", " ", "\n", "\xa0", "\u3000", "\t", "中"]
    texts = ["".join(p) for n in range(7) for p in itertools.product(alphabet, repeat=n)]
    data, offs = clean_scan.collapse(*arrow_utf8(pa.array(texts)), not keep_ideographic)
    got = pa.LargeStringArray.from_buffers(len(texts), pa.py_buffer(offs), pa.py_buffer(data)).to_pylist()
    assert got == collapse_spaces(pa.array(texts), keep_ideographic).to_pylist()
