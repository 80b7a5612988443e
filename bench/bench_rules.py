"""Throughput of the PanGu-α rule stages vs the peers' equivalent operation, one core, same run.

Corpus: >= 100 MB of real Chinese text from ../shared/data (prose, Common Crawl web, trec06c e-mail,
Debian zh-TW paragraphs for t2s), repeated until the size is reached; every stage sees the same
texts in RecordBatches of 2,048 documents (what the local engine feeds it).

  stage            corpusforge                         peer (same run)
  clean            clean.map (all steps + paragraphs)  datatrove FTFYFormatter.format per document
  t2s              t2s.map (OpenCC t2s)                OpenCC t2s .convert per document: the call that
                                                       data-juicer's chinese_convert_mapper makes
  pangu_rules      pangu_rules.score + decide          datatrove GopherQualityFilter(language="zh").filter
  sensitive_words  sensitive_words.score + decide      datatrove C4BadWordsFilter.filter (zh: one regex
                                                       alternation of the same lexicon, first hit only)

Also "matcher only": the Aho-Corasick automaton alone, ahocorasick-rs (ours) vs pyahocorasick.
Peers: datatrove is installed from PyPI (pip install --target DIR datatrove ftfy spacy pyahocorasick; pass
--peers DIR[:DIR2], or have it importable; the Gopher filter needs spaCy for its zh tokenizer). data-juicer itself is not installed (it pins hundreds of packages); the OpenCC
loop above is the operation its mapper performs. Missing peers are reported, not faked.
Usage: python bench/bench_rules.py [--mb 100] [--peers /tmp/peers]"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import pyarrow as pa

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
SHARED = Path(os.environ.get("CORPUSFORGE_SHARED", REPO.parent / "shared")) / "data"

from corpusforge.stage import lookup  # noqa: E402


def corpus(target_mb: int, trad: bool = False) -> list[pa.RecordBatch]:
    texts = []
    if trad:
        for line in (SHARED / "tradsimp/debian_reference_zhcn_zhtw_paragraphs.jsonl").read_text(encoding="utf-8").splitlines():
            texts.append(json.loads(line)["zh_tw"])
        texts = ["\n".join(texts[i:i + 20]) for i in range(0, len(texts), 20)]  # page-sized documents
    else:
        for f in ["prose/luxun_fiction_essays.jsonl", "prose/zhwiki_articles_100.jsonl",
                  "web/commoncrawl_2021-43_zh_100docs.jsonl", "spam/trec06c_email_sample.jsonl"]:
            texts += [json.loads(line)["text"] for line in (SHARED / f).read_text(encoding="utf-8").splitlines()]
    out, size, i = [], 0, 0
    while size < target_mb << 20:
        t = texts[i % len(texts)]
        out.append(t)
        size += len(t.encode("utf-8"))
        i += 1
    return [pa.RecordBatch.from_pydict({"text": out[k:k + 2048]}) for k in range(0, len(out), 2048)]


def mb(batches) -> float:
    return sum(b.column("text").nbytes for b in batches) / 2**20


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def mk(name, **kw):
    cls = lookup(name)
    s = cls(cls.Params(**kw))
    s.setup()
    return s


def ours(stage, batches):
    import numpy as np

    if hasattr(stage, "map"):
        for b in batches:
            stage.map(b)
    else:
        for b in batches:
            sc = stage.score(b)
            stage.decide({k: np.asarray(v.to_numpy(zero_copy_only=False)) for k, v in sc.items()})


def peers(peer_dir):
    if peer_dir:
        sys.path += peer_dir.split(":")  # after the venv, so its numpy/pyarrow stay the ones in use
    res = {}
    try:
        from datatrove.data import Document
        from datatrove.pipeline.filters import C4BadWordsFilter, GopherQualityFilter
        from datatrove.pipeline.formatters import FTFYFormatter
    except ImportError as e:
        print(f"datatrove not importable ({e}); pass --peers DIR after `pip install --target DIR datatrove ftfy`")
        Document = None
    import opencc

    cc = opencc.OpenCC("t2s.json")
    res["t2s"] = ("OpenCC convert loop (data-juicer chinese_convert_mapper)", lambda bs: [cc.convert(t) for b in bs for t in b.column("text").to_pylist()])
    if Document is None:
        return res
    ftfy = FTFYFormatter()
    res["clean"] = ("datatrove FTFYFormatter", lambda bs: [ftfy.format(t) for b in bs for t in b.column("text").to_pylist()])
    gopher = GopherQualityFilter(language="zh")  # spaCy's blank zh tokenizer (character segmentation)

    def run_filter(f, bs):
        for b in bs:
            for k, t in enumerate(b.column("text").to_pylist()):
                f.filter(Document(text=t, id=str(k), metadata={"language": "zh"}))

    res["pangu_rules"] = ("datatrove GopherQualityFilter (zh)", lambda bs: run_filter(gopher, bs))
    import re

    from corpusforge.rulepack import read_word_list
    from corpusforge.stages.sensitive import DEFAULT_LISTS

    bad = C4BadWordsFilter(default_language="zh")
    words = sorted({t.text.lower() for p in DEFAULT_LISTS.values() for t in read_word_list(p)})
    bad._badwords_regex["zh"] = re.compile("|".join(re.escape(w) for w in words))  # their zh form; no download
    res["sensitive_words"] = ("datatrove C4BadWordsFilter (same lexicon)", lambda bs: run_filter(bad, bs))
    return res


def matcher_only(batches) -> None:
    """Why ahocorasick-rs: the automaton alone, same patterns and skeletons, vs pyahocorasick if importable."""
    from corpusforge.rulepack import skeleton

    m = mk("sensitive_words")._m
    sk = [skeleton(b.column("text")).to_pylist() for b in batches]
    sk_bytes = [[x.encode("utf-8") for x in xs] for xs in sk]  # ours matches UTF-8 bytes (wordmatch.py)
    t_rs = timed(lambda: [m.automaton.find_matches_as_indexes(x) for xs in sk_bytes for x in xs])
    line = f"matcher only: ahocorasick-rs {mb(batches) / t_rs:.1f} MB/s"
    try:
        import ahocorasick
    except ImportError:
        print(line + " | pyahocorasick not importable")
        return
    a = ahocorasick.Automaton()
    for k, p in enumerate(m.patterns_list):
        a.add_word(p, k)
    a.make_automaton()
    t_py = timed(lambda: [list(a.iter_long(x)) for xs in sk for x in xs])
    print(line + f" | pyahocorasick iter_long {mb(batches) / t_py:.1f} MB/s  ratio x{t_py / t_rs:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=100)
    ap.add_argument("--peers", default=None)
    ap.add_argument("--rounds", type=int, default=3, help="timed runs of each side, in turns (medians)")
    a = ap.parse_args()
    web, trad = corpus(a.mb), corpus(a.mb, trad=True)
    print(f"corpus: {mb(web):.1f} MB ({sum(b.num_rows for b in web)} docs) mixed web/prose/e-mail; "
          f"{mb(trad):.1f} MB zh-TW pages for t2s; one process, one core")
    peer = peers(a.peers)
    rows = []
    for name, kw in [("clean", {}), ("t2s", {}), ("pangu_rules", {}), ("sensitive_words", {})]:
        data = trad if name == "t2s" else web
        s = mk(name, **kw)
        ours(s, data[:1])  # warm-up
        label, fn = peer.get(name, (None, None))
        t_ours, t_peer = [], []
        for _ in range(a.rounds):  # ours and the peer take turns: both see the same load; medians compared
            t_ours.append(timed(lambda: ours(s, data)))
            if fn is not None:
                t_peer.append(timed(lambda: fn(data)))
        t_ours = statistics.median(t_ours)
        line = [name, mb(data) / t_ours, sum(b.num_rows for b in data) / t_ours]
        if fn is not None:
            t_peer = statistics.median(t_peer)
            line += [label, mb(data) / t_peer, t_peer / t_ours]
        rows.append(line)
        print(f"{name:16s} {line[1]:7.1f} MB/s {line[2]:8.0f} docs/s" +
              (f" | {line[3]:45s} {line[4]:7.1f} MB/s  ratio x{line[5]:.2f}" if len(line) > 3 else " | no peer installed"), flush=True)
    matcher_only(web)
    ratios = [r[5] for r in rows if len(r) > 3]
    sens = next(r for r in rows if r[0] == "sensitive_words")
    print(f"headline: min speed ratio corpusforge/peer x{min(ratios):.2f} over {len(ratios)} stages; "
          f"sensitive_words {sens[1]:.1f} MB/s on one core")


if __name__ == "__main__":
    main()
