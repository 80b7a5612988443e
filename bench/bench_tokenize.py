"""Tokens/s of `corpusforge sample` end to end (read JSONL, tokenize, round-trip check, plan, shuffle,
write shards) vs raw `tokenizers.Tokenizer.encode_batch` on the same texts, in the same run.

Data: every document of seven shared JSONL files (~15 MB of Chinese text, ~4.7M characters), one
epoch of each as a source. Tokenizer: byte-level BPE, 40,000 ids, trained here on Wikipedia + e-mail
+ SMS; characters per token are measured on Lu Xun, which it never saw.
Run: .venv/bin/python bench/bench_tokenize.py [--workers 1]"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from corpusforge.sample import tokenizer as T  # noqa: E402
from corpusforge.sample.docs import iter_texts  # noqa: E402
from corpusforge.sample.mix import Mixture  # noqa: E402
from corpusforge.sample.sampler import sample  # noqa: E402

DATA = Path(os.environ.get("CORPUSFORGE_SHARED", REPO.parent / "shared")) / "data"
SOURCES = {"wiki": ("prose/zhwiki_articles_100.jsonl", "text"), "luxun": ("prose/luxun_fiction_essays.jsonl", "text"),
           "wiki_versions": ("neardup/zhwiki_versions_pool.jsonl", "text"),
           "email": ("spam/trec06c_email_sample.jsonl", "text"), "sms": ("spam/sms_mudou_labelled.jsonl", "text"),
           "web": ("web/commoncrawl_2021-43_zh_100docs.jsonl", "text"),
           "debian": ("tradsimp/debian_reference_zhcn_zhtw_paragraphs.jsonl", "zh_cn")}
TRAIN = ["prose/zhwiki_articles_100.jsonl", "spam/trec06c_email_sample.jsonl", "spam/sms_mudou_labelled.jsonl"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--vocab-size", type=int, default=40000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-tokenize-") as d:
        tok_path = os.path.join(d, "tok.json")
        t0 = time.perf_counter()
        T.train((t for _, t in iter_texts([str(DATA / f) for f in TRAIN])), args.vocab_size, tok_path)
        tok = T.load(tok_path)
        ev = T.evaluate(tok, (t for _, t in iter_texts([str(DATA / "prose/luxun_fiction_essays.jsonl")])))
        print(f"tokenizer: {args.vocab_size} ids trained in {time.perf_counter() - t0:.1f}s; held-out Lu Xun "
              f"({ev['chars']} chars): {ev['chars_per_token']:.3f} chars/token, {ev['roundtrip_failures']} round-trip failures")

        texts = [t for f, field in SOURCES.values() for _, t in iter_texts([str(DATA / f)], field)]
        chars = sum(map(len, texts))
        nbytes = sum(len(t.encode("utf-8")) for t in texts)
        # Raw: one encode_batch over everything (the library's own thread pool, no IO).
        t0 = time.perf_counter()
        raw_tokens = sum(len(e.ids) for e in tok.encode_batch(texts, add_special_tokens=False))
        raw_s = time.perf_counter() - t0
        del texts

        mix = Mixture(tokenizer=tok_path, seed=1, base_dir=d,
                      sources={n: {"path": str(DATA / f), "epochs": 1.0, "text_field": fld} for n, (f, fld) in SOURCES.items()})
        t0 = time.perf_counter()
        m = sample(mix, os.path.join(d, "shards"), workers=args.workers, progress=False)
        cf_s = time.perf_counter() - t0
        cf_tokens = m["tokens"] - m["docs"]  # without the <eod> per document, like the raw count
        print(f"data: {len(SOURCES)} files, {m['docs']} documents, {chars} chars, {nbytes / 1e6:.1f} MB UTF-8")
        print(f"raw encode_batch:        {raw_tokens} tokens in {raw_s:.2f}s = {raw_tokens / raw_s:,.0f} tokens/s")
        print(f"corpusforge sample (w={args.workers}): {cf_tokens} tokens in {cf_s:.2f}s = {cf_tokens / cf_s:,.0f} tokens/s "
              f"({len(m['shards'])} shards, quarantined {m['quarantined'] or 'none'})")
        assert cf_tokens == raw_tokens, "the sampler and the raw encoder disagree on the token count"
        print(f"ratio corpusforge/raw tokens per second: {(cf_tokens / cf_s) / (raw_tokens / raw_s):.2f}")


if __name__ == "__main__":
    main()
