"""Chinese featurization shared by spam_fasttext and quality_lr."""

import subprocess
import sys

import numpy as np

from corpusforge.models.featurize import hashed, ngrams, units


def test_units_split_han_chars_words_numbers_punct():
    assert units("高德地图 so Easy，下载123次") == ["高", "德", "地", "图", "so", "easy", "，", "下", "载", "0", "次"]


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
