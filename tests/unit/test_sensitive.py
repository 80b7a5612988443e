"""sensitive_words: Aho-Corasick over a symbol-insensitive skeleton, both scripts, allowlist, threshold."""

import json

import pyarrow as pa
import pytest

from corpusforge.errors import CorpusforgeError
from corpusforge.stage import lookup
from corpusforge.rulepack import read_word_list


def mk(**kw):
    cls = lookup("sensitive_words")
    s = cls(cls.Params(**kw))
    s.setup()
    return s


def jsonl(path):
    return [json.loads(line) for line in open(path, encoding="utf-8")]


def score(s, texts):
    sc = s.score(pa.RecordBatch.from_pydict({"text": texts}))
    return sc["hits"].to_pylist(), sc["categories"].to_pylist()


def test_default_lexicon_size_comparable_to_pangu():
    s = mk()
    assert 900 <= s._m.terms <= 1500  # PanGu-α: 724 words


def test_variants_symbols_spaces_traditional(shared_data):
    prose = jsonl(shared_data / "prose/luxun_fiction_essays.jsonl")[0]["text"][:200]
    hits, cats = score(mk(), [prose, prose + "法*轮*功", prose + "法 轮 功", prose + "法輪功", prose + "FaLunGong"])
    assert hits == [0, 1, 1, 1, 1]
    assert cats == ["", "political", "political", "political", "violence"]


def test_three_hits_drop_two_keep_with_real_lexicon_terms(shared_data):
    porn = [t.text for t in read_word_list("sensitive/porn.txt")][:3]
    prose = jsonl(shared_data / "prose/zhwiki_articles_100.jsonl")[1]["text"][:600]
    s = mk()
    texts = [prose + "。".join(porn[:2]), prose + "。".join(porn[:3])]
    hits, cats = score(s, texts)
    assert hits == [2, 3] and cats == ["porn", "porn"]
    v = s.decide({"hits": pa.array(hits).to_numpy()})
    assert v.keep.tolist() == [True, False] and v.reason == [None, "sensitive_words"]
    v = mk(drop_at_hits=2).decide({"hits": pa.array(hits).to_numpy()})
    assert v.keep.tolist() == [False, False]


def test_allowlist_shadows_and_removes(shared_data, tmp_path):
    # 朝政腐败 contains the listed 政腐 (a slang form); the allowlisted 朝政腐 wins the longest match
    t = "西周末年朝政腐败，国人怨声四起。"
    assert score(mk(), [t])[0] == [0]
    assert score(mk(allowlist=None), [t])[0] == [1]
    # the allowlist removes whole terms: 毛泽东 is a public name, mentioned as fact in encyclopedias
    assert score(mk(), ["毛泽东"])[0] == [0] and score(mk(allowlist=None), ["毛泽东"])[0] == [1]


def test_ascii_terms_need_word_edges():
    assert score(mk(), ["falungong", "xfalungongx", "falungong功法", "fa-lun-gong"])[0] == [1, 0, 1, 0]


def test_prose_has_no_drops_and_commoncrawl_none_either(shared_data):
    s = mk()
    for name in ("prose/zhwiki_articles_100.jsonl", "prose/luxun_fiction_essays.jsonl", "web/commoncrawl_2021-43_zh_100docs.jsonl"):
        hits, _ = score(s, [d["text"] for d in jsonl(shared_data / name)])
        assert max(hits) < 3, name


def test_trec06c_porn_spam_is_caught(shared_data):
    """Real e-mail: 3+ hits is almost only porn spam (measured: 16 spam, 1 ham of 2,000 + 2,000)."""
    rows = jsonl(shared_data / "spam/trec06c_email_sample.jsonl")
    hits, cats = score(mk(), [r["text"] for r in rows])
    flagged = [(r["label"], c) for r, h, c in zip(rows, hits, cats) if h >= 3]
    spam = sum(lab == "spam" for lab, _ in flagged)
    assert spam >= 12 and len(flagged) - spam <= 2
    assert all("porn" in c for lab, c in flagged if lab == "spam")


def test_one_char_term_or_missing_header_rejected(tmp_path):
    p = tmp_path / "bad.txt"
    p.write_text("# source: x\n# licence: y\n赌博\n性\n", encoding="utf-8")
    with pytest.raises(CorpusforgeError, match=r"bad.txt:4: term '性'"):
        mk(lists={"x": str(p)})
    q = tmp_path / "nohead.txt"
    q.write_text("赌博\n", encoding="utf-8")
    with pytest.raises(CorpusforgeError, match="source and the licence"):
        mk(lists={"x": str(q)})


def test_batch_matching_equals_one_document_at_a_time(shared_data):
    """WordMatcher.count searches a whole batch as one buffer: the hits and categories of each row equal a
    search of that row alone (str automata, as before), also where a term is split across two rows."""
    import ahocorasick_rs as acrs

    s = mk()
    m = s._m
    texts = [json.loads(x)["text"] for x in (shared_data / "spam/trec06c_email_sample.jsonl").read_text(encoding="utf-8").splitlines()]
    term = next(p for p, v in zip(m.patterns_list, m._main_vals) if v >= 0 and len(p) >= 2)
    texts += [term[:1], term[1:] + "后", "", "tnt", " TNT ", "a" + term, term * 3]  # a term across rows, ASCII edges
    hits, masks = m.count(pa.array(texts))
    kind = acrs.MatchKind.LeftmostLongest
    main = acrs.AhoCorasick(m.patterns_list, matchkind=kind)
    ascii_ = acrs.AhoCorasick(m.ascii_list, matchkind=kind) if m.ascii_list else None
    skeleton, words = m._forms
    for i, (sk, wd) in enumerate(zip(skeleton(pa.array(texts)).to_pylist(), words(pa.array(texts)).to_pylist())):
        h, mask = 0, 0
        for p, _, _ in (main.find_matches_as_indexes(sk) if sk else []):
            if m._main_vals[p] >= 0:
                h, mask = h + 1, mask | 1 << m._main_vals[p]
        for p, _, e in (ascii_.find_matches_as_indexes(wd) if ascii_ and wd else []):
            if wd[e] == " ":
                h, mask = h + 1, mask | 1 << m._ascii_vals[p]
        assert (hits[i], masks[i]) == (h, mask), (i, texts[i][:60])
    assert hits.sum() > 20 and hits[-1] == 3
