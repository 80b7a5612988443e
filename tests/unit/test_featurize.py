"""Chinese featurization shared by spam_fasttext and quality_lr."""

import subprocess
import sys

import numpy as np

from corpusforge.models.featurize import hashed, ngrams, units


def test_units_split_han_chars_words_numbers_punct():
    assert units("高德地图 so Easy，下载123次") == ["高", "德", "地", "图", "so", "easy", ",", "下", "载", "0", "次"]


def test_bigrams_cross_han_units_and_whitespace_tokenizer_is_useless(shared_data):
    import json

    with open(shared_data / "prose/luxun_fiction_essays.jsonl", encoding="utf-8") as f:
        text = json.loads(f.readline())["text"][:200]
    g = ngrams(text)
    han = [c for c in text if "\u4e00" <= c <= "\u9fff"]
    assert set(han) <= set(g) and {a + b for a, b in zip(han, han[1:]) if a + b in text} <= set(g)
    # a whitespace tokenizer (Spark's Tokenizer) sees a 200-char Chinese passage as a handful of tokens
    assert len(text.split()) < 10 < len(set(g))


def test_hashed_features_stable_across_processes_and_normalized():
    text = "澳门赌场 在线 开户 送彩金 http://x.cn 88888"
    idx, val = hashed(text, 1 << 18)
    assert np.all(np.diff(idx) > 0) and abs(float(np.sum(val**2)) - 1.0) < 1e-9
    code = ("from corpusforge.models.featurize import hashed; "
            f"print(hashed({text!r}, 1 << 18)[0].tolist())")
    # PYTHONHASHSEED differs per process; the features must not
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={"PYTHONHASHSEED": "123", "PATH": ""}).stdout
    assert other.strip() == str([int(i) for i in idx])


def _texts(path):
    import json

    with open(path, encoding="utf-8") as f:
        return [json.loads(ln)["text"] for ln in f if ln.strip()]


def test_model_scores_do_not_depend_on_whether_clean_ran_first(shared_data):
    """The featurizer folds widths (NFKC) and skips what `clean` strips, so both model stages give the same
    score to a page before and after clean's normalization, to the bit. Real pages: Common Crawl, and Sohu
    news published with full-width digits (１月１日)."""
    import pyarrow as pa

    from corpusforge.stages.clean import Clean
    from corpusforge.stages.model_filters import QualityLR, SpamFastText

    texts = (_texts(shared_data / "web/commoncrawl_2021-43_zh_100docs.jsonl")
             + _texts(shared_data / "diverse/news_sogoucs_sohu.jsonl"))
    assert sum("１" in t or "２" in t for t in texts) > 50
    models = [SpamFastText(SpamFastText.Params()), QualityLR(QualityLR.Params())]
    for m in models:
        m.setup()

    def scores(ts):
        b = pa.RecordBatch.from_pydict({"id": [str(i) for i in range(len(ts))], "text": ts})
        return [m.score(b)[c].to_numpy() for m, c in zip(models, ("prob", "score"))]

    raw = scores(texts)
    for fullwidth in ("alnum", "nfkc"):
        norm = Clean(Clean.Params(rules=[], dedup_paragraphs=False, decode_entities=False, fullwidth=fullwidth))
        norm.setup()
        cleaned, _ = norm.clean(pa.array(texts))
        assert sum(a != b for a, b in zip(texts, cleaned.to_pylist())) > 100  # clean did change the pages
        for a, b in zip(raw, scores(cleaned.to_pylist())):
            assert np.array_equal(a, b)
    # the full default clean also removes text by rule (URLs, tags, repeated paragraphs): where it only
    # normalized, the scores are still equal
    full = Clean(Clean.Params())
    full.setup()
    cleaned, cols = full.clean(pa.array(texts))
    same = (cols["rule_hits"] == 0) & (cols["dup_paragraphs"] == 0) & (cols["entities"] == 0)
    assert same.sum() > 100
    for a, b in zip(raw, scores(cleaned.to_pylist())):
        assert np.array_equal(a[same], b[same])


def test_units_read_past_what_clean_would_remove_and_split_no_word():
    assert units(" " * 10_000 + "正文") == ["正", "文"]
    text = "ab" * 2000 + "。" + "字" * 3000
    assert units(text) == ["ab" * 2000, "。"] + ["字"] * 2998
    assert units("\u200b１２３ＡＢ\ufeff①") == ["0", "ab", "0"] == units("123ab1")
