"""Chinese featurization for the model filters: character unigrams+bigrams (corpusforge) vs jieba word
segmentation (needs `pip install jieba`). Same fastText hyperparameters and SMS train/test split
(12,211 messages) for both; prints tokenization throughput, SMS test F1 and the speed ratio last.

    .venv/bin/python bench/bench_featurize.py [/path/to/shared/data]
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np

from corpusforge.models import recipe, spam
from corpusforge.models.common import prf
from corpusforge.models.featurize import fasttext_line


def jieba_line(text: str) -> str:
    import jieba

    toks = [t.strip().lower() for t in jieba.lcut(text[:3000])]
    toks = ["0" if t.isdigit() else t for t in toks if t and not re.search(r"[\s\x00-\x1f]", t)]
    return " ".join(toks)


def evaluate(d: dict, line) -> tuple[float, float]:
    texts = d["sms_ham_train"] + d["sms_spam_train"]
    t0 = time.perf_counter()
    lines = [line(t) for t in texts]
    tok_s = len(texts) / (time.perf_counter() - t0)
    labs = [spam.HAM] * len(d["sms_ham_train"]) + [spam.SPAM] * len(d["sms_spam_train"])
    order = sorted(range(len(texts)), key=lambda i: spam._order(texts[i]))
    with tempfile.TemporaryDirectory() as tmp:
        path, out = os.path.join(tmp, "t.txt"), os.path.join(tmp, "m.bin")
        with open(path, "w", encoding="utf-8") as f:
            f.writelines(f"{labs[i]} {lines[i]}\n" for i in order)
        hp = {**spam.HYPER, "minCount": 1}
        subprocess.run([sys.executable, "-c", spam._FIT, path, out, __import__("json").dumps(hp)], check=True)
        m = spam.load(out)
        test = d["sms_ham_eval"] + d["sms_spam_eval"]
        labels, probs = m.f.multilinePredict([line(t) + "\n" for t in test], 2, 0.0, "replace")
        p = np.array([dict(zip(ls, ps)).get(spam.SPAM, 0.0) for ls, ps in zip(labels, probs)])
        y = np.array([False] * len(d["sms_ham_eval"]) + [True] * len(d["sms_spam_eval"]))
    return tok_s, prf(y, p >= 0.5)["f1"]


def _sms(data: str) -> dict:
    """The SMS set as its publisher split it (recipe's train + validation = the given train split)."""
    rows = [r for r in recipe.load(data, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data"))
            if r.stratum == "sms"]
    pick = lambda label, test: [r.text for r in rows if r.genre == f"sms_{label}" and (r.split == "test") == test]  # noqa: E731
    return {"sms_ham_train": pick("ham", False), "sms_spam_train": pick("spam", False),
            "sms_ham_eval": pick("ham", True), "sms_spam_eval": pick("spam", True)}


def main(data: str) -> None:
    d = _sms(data)
    import jieba

    jieba.initialize()  # dictionary load (~1 s) kept out of the timing
    ch_speed, ch_f1 = evaluate(d, fasttext_line)
    jb_speed, jb_f1 = evaluate(d, jieba_line)
    print(f"data: {len(d['sms_ham_train']) + len(d['sms_spam_train'])} SMS train, "
          f"{len(d['sms_ham_eval']) + len(d['sms_spam_eval'])} test")
    print(f"char 1+2-grams: {ch_speed:,.0f} docs/s tokenization, SMS test F1 {ch_f1:.4f}")
    print(f"jieba words:    {jb_speed:,.0f} docs/s tokenization, SMS test F1 {jb_f1:.4f}")
    print(f"char n-grams vs jieba: {ch_speed / jb_speed:.2f}x tokenization speed, F1 {ch_f1:.4f} vs {jb_f1:.4f}")


if __name__ == "__main__":
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(here), "shared", "data"))
