"""Throughput of the model-filter stages vs datatrove's FastTextClassifierFilter, one core, same run.

Data: every text of ../shared/data spam/ (SMS + TREC06C), quality/, web/commoncrawl and prose/ (about
16k documents, 12 MB), repeated --repeat times, in RecordBatches of 2,048 documents (what the local
engine feeds a stage). Peer: datatrove's FastTextClassifierFilter (filter_mode "DOCUMENT") on the SAME
model file, one Document at a time, twice: on the raw text (what it does for Chinese: whitespace
"words", so its scores are meaningless for this model) and on the same tokenized text the stage
builds (tokenization inside the timing), which is the like-for-like comparison. fastText 0.9.3's Python
`predict` breaks under numpy 2, so the peer's predict is patched to call the C++ binding (the same call
the stage makes) and its check for the `fasttext-numpy2-wheel` distribution is skipped. datatrove is importable from --peers DIR (pip install --target DIR datatrove).

    .venv/bin/python bench/bench_filters.py [--peers /tmp/peers] [--repeat 1]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import pyarrow as pa

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(os.path.dirname(HERE), "shared", "data")
FILES = ["spam/sms_mudou_labelled.jsonl", "spam/trec06c_email_sample.jsonl", "quality/chinesewebtext_clean_vs_dirty.jsonl",
         "web/commoncrawl_2021-43_zh_100docs.jsonl", "prose/zhwiki_articles_100.jsonl", "prose/luxun_fiction_essays.jsonl"]


def texts(repeat: int) -> list[str]:
    out = []
    for f in FILES:
        with open(os.path.join(DATA, f), encoding="utf-8") as fh:
            out += [json.loads(ln)["text"] for ln in fh if ln.strip()]
    return out * repeat


def run_stage(name: str, ts: list[str]) -> float:
    from corpusforge.stage import lookup

    cls = lookup(name)
    s = cls(cls.Params())
    s.setup()
    t0 = time.perf_counter()
    for i in range(0, len(ts), 2048):
        chunk = ts[i:i + 2048]
        b = pa.RecordBatch.from_pydict({"id": [f"d{i + j}" for j in range(len(chunk))], "text": chunk})
        s.decide({k: v.to_numpy() for k, v in s.score(b).items()})
    return len(ts) / (time.perf_counter() - t0)


def run_datatrove(ts: list[str], tokenize: bool) -> float:
    import numpy as np
    from datatrove.data import Document
    from datatrove.pipeline.filters import FastTextClassifierFilter
    from fasttext.FastText import _FastText

    from corpusforge.rules_files import resolve

    def predict(self, text, k=1, threshold=0.0, on_unicode_error="strict"):
        pairs = self.f.predict(text + "\n", k, threshold, on_unicode_error)
        return tuple(lab for _, lab in pairs), np.asarray([p for p, _ in pairs])

    _FastText.predict = predict
    # datatrove insists on the `fasttext-numpy2-wheel` distribution; the installed fasttext 0.9.3 is the
    # same library, and the predict patch above is what that fork fixes.
    FastTextClassifierFilter._requires_dependencies = []
    flt = FastTextClassifierFilter(resolve("models/spam_fasttext.bin"), remove_labels=("spam", 0.5), filter_mode="DOCUMENT")
    flt.model  # load outside the timing, as the stage's setup() is
    from corpusforge.models.featurize import fasttext_line

    t0 = time.perf_counter()
    for i, t in enumerate(ts):
        flt.filter(Document(text=fasttext_line(t) if tokenize else t, id=str(i)))
    return len(ts) / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--peers", default="/tmp/peers")
    ap.add_argument("--repeat", type=int, default=1)
    a = ap.parse_args()
    ts = texts(a.repeat)
    print(f"data: {len(ts)} documents, {sum(len(t) for t in ts) / 1e6:.1f} M characters")
    spam = run_stage("spam_fasttext", ts)
    qual = run_stage("quality_lr", ts)
    print(f"corpusforge spam_fasttext: {spam:,.0f} docs/s")
    print(f"corpusforge quality_lr:    {qual:,.0f} docs/s")
    sys.path.extend(p for p in a.peers.split(":") if os.path.isdir(p))
    try:
        raw = run_datatrove(ts, tokenize=False)
        dt = run_datatrove(ts, tokenize=True)
    except ImportError as e:
        print(f"datatrove not importable ({e}); no ratio")
        return
    print(f"datatrove FastTextClassifierFilter, raw text (what it does for Chinese; scores meaningless): {raw:,.0f} docs/s")
    print(f"datatrove FastTextClassifierFilter + the same tokenization (meaningful scores): {dt:,.0f} docs/s")
    print(f"spam_fasttext vs datatrove FastTextClassifierFilter (same model, same tokens): {spam / dt:.2f}x; "
          f"vs raw-text datatrove {spam / raw:.2f}x; quality_lr vs same-token datatrove {qual / dt:.2f}x")


if __name__ == "__main__":
    main()
