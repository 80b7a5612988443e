"""The default-model recipe on the shared labelled data (see docs/models.md): which rows train, which
are held out for evaluation. Used by scripts/train_default_models.py and by the tests."""

from __future__ import annotations

import json
import os

from corpusforge.models.common import is_heldout

EVAL_SEED, EVAL_FRAC = 7, 0.25  # TREC06C e-mails and prose chunks held out from training


def _jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(ln) for ln in f if ln.strip()]


def prose_chunks(path: str, min_chars: int = 300) -> list[str]:
    """Paragraphs joined into ≥ min_chars chunks: web-page-sized pieces of long articles."""
    out = []
    for r in _jsonl(path):
        cur = ""
        for para in r["text"].split("\n"):
            cur = f"{cur}\n{para}" if cur else para
            if len(cur) >= min_chars:
                out.append(cur); cur = ""
        if len(cur) >= 50:
            out.append(cur)
    return out


def load(data: str) -> dict:
    """Named text lists: *_train for training, *_eval for evaluation only."""
    sms = _jsonl(os.path.join(data, "spam/sms_mudou_labelled.jsonl"))
    trec = _jsonl(os.path.join(data, "spam/trec06c_email_sample.jsonl"))
    web = _jsonl(os.path.join(data, "quality/chinesewebtext_clean_vs_dirty.jsonl"))
    cc = [r["text"] for r in _jsonl(os.path.join(data, "web/commoncrawl_2021-43_zh_100docs.jsonl"))]
    prose = (prose_chunks(os.path.join(data, "prose/zhwiki_articles_100.jsonl"))
             + prose_chunks(os.path.join(data, "prose/luxun_fiction_essays.jsonl")))
    mail = [(r["label"], f"{r.get('subject') or ''}\n{r['text']}") for r in trec]
    d = {
        "sms_ham_train": [r["text"] for r in sms if r["split"] == "train" and r["label"] == "ham"],
        "sms_spam_train": [r["text"] for r in sms if r["split"] == "train" and r["label"] == "spam"],
        "sms_ham_eval": [r["text"] for r in sms if r["split"] == "test" and r["label"] == "ham"],
        "sms_spam_eval": [r["text"] for r in sms if r["split"] == "test" and r["label"] == "spam"],
        "trec_ham_train": [t for lab, t in mail if lab == "ham" and not is_heldout(t, EVAL_FRAC, EVAL_SEED)],
        "trec_spam_train": [t for lab, t in mail if lab == "spam" and not is_heldout(t, EVAL_FRAC, EVAL_SEED)],
        "trec_ham_eval": [t for lab, t in mail if lab == "ham" and is_heldout(t, EVAL_FRAC, EVAL_SEED)],
        "trec_spam_eval": [t for lab, t in mail if lab == "spam" and is_heldout(t, EVAL_FRAC, EVAL_SEED)],
        "web_clean": [r["text"] for r in web if r["label"] == "clean"],
        "web_dirty": [r["text"] for r in web if r["label"] == "dirty"],
        "cc_web": cc,
        "prose_train": [t for t in prose if not is_heldout(t, EVAL_FRAC, EVAL_SEED)],
        "prose_eval": [t for t in prose if is_heldout(t, EVAL_FRAC, EVAL_SEED)],
    }
    return d


def spam_sets(d: dict) -> tuple[list[str], list[str]]:
    ham = d["sms_ham_train"] + d["trec_ham_train"] + d["web_clean"] + d["prose_train"]
    spam = d["sms_spam_train"] + d["trec_spam_train"] + d["web_dirty"]
    return ham, spam


def quality_sets(d: dict) -> tuple[list[str], list[str]]:
    """High quality: prose + clean web. Low quality: dirty and raw Common Crawl web, spam e-mail and a
    hash-chosen 1,000 spam SMS (so short texts do not dominate)."""
    hq = d["prose_train"] + d["web_clean"]
    sms = [t for t in d["sms_spam_train"] if is_heldout(t, 1000 / len(d["sms_spam_train"]), EVAL_SEED)]
    lq = d["web_dirty"] + d["cc_web"] + d["trec_spam_train"] + sms
    return hq, lq


DATA_FILES = ["spam/sms_mudou_labelled.jsonl", "spam/trec06c_email_sample.jsonl",
              "quality/chinesewebtext_clean_vs_dirty.jsonl", "web/commoncrawl_2021-43_zh_100docs.jsonl",
              "prose/zhwiki_articles_100.jsonl", "prose/luxun_fiction_essays.jsonl"]
