"""`corpusforge tokenizer` / `sample` / `shards verify` end to end on the shared data: a Table-3-shaped
five-source mixture (PanGu-α 200B shares and epochs), determinism across runs, workers and memory
budgets, shards read back by an independent Megatron reader, mutations caught by verify, round-trip
quarantine, and mixture validation errors."""

from __future__ import annotations

import hashlib
import json
import random
import re
import shutil
import unicodedata
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from test_shards import megatron_read

from corpusforge.cli import main
from corpusforge.sample.mix import load_mixture
from corpusforge.sample.sampler import sample
from corpusforge.sample.shards import load_manifest, open_shards, verify
from corpusforge.sample.tokenizer import EOD, load
from tests.util import run, table, tree_digest, write_config

# PanGu-α Table 3 (200B tokens): share of the budget, epochs.
TABLE3 = {"open_data": (0.1023, 3.65), "ebooks": (0.1223, 0.41), "common_crawl": (0.6281, 0.85),
          "news": (0.0783, 2.20), "encyclopedia": (0.0690, 3.00)}
# Stand-ins from the shared data (file, text field, how the source is given to the sampler).
DATA = {"open_data": ("spam/sms_mudou_labelled.jsonl", "text", "run"),
        "ebooks": ("prose/luxun_fiction_essays.jsonl", "text", "run"),
        "common_crawl": ("spam/trec06c_email_sample.jsonl", "text", "run"),
        "news": ("web/commoncrawl_2021-43_zh_100docs.jsonl", "text", "jsonl"),
        "encyclopedia": ("tradsimp/debian_reference_zhcn_zhtw_paragraphs.jsonl", "zh_cn", "parquet")}
TOTAL = 600_000  # the 200B budget scaled to the data we have


@pytest.fixture(scope="module")
def tok(shared_data, tmp_path_factory):
    """A 3000-id tokenizer trained through the CLI on the Wikipedia prose (a few seconds)."""
    p = tmp_path_factory.mktemp("tok") / "tok.json"
    assert main(["tokenizer", "train", str(shared_data / "prose" / "zhwiki_articles_100.jsonl"),
                 "--vocab-size", "3000", "--out", str(p)]) == 0
    return p


def test_tokenizer_train_reports_chars_per_token_on_held_out_prose(tok, shared_data, capsys):
    t = load(str(tok))
    assert t.get_vocab_size() == 3000 and t.token_to_id(EOD) is not None
    # Held-out prose the tokenizer never saw: Lu Xun (a different author and register).
    assert main(["tokenizer", "eval", str(tok), str(shared_data / "prose" / "luxun_fiction_essays.jsonl")]) == 0
    out = capsys.readouterr().out
    docs, cpt, fails = re.search(r"(\d+) documents, .* ([\d.]+) chars/token, (\d+) round-trip", out).groups()
    assert int(docs) == 92 and int(fails) == 0
    # Byte-level BPE without merges gives 1/3 char per CJK token (3 UTF-8 bytes); a 3000-id vocabulary
    # trained on 2 MB of Wikipedia must at least merge most characters back together.
    assert float(cpt) > 0.8


def _fit_rows(rows, lens, target):
    """Rows in file order that fit into `target` tokens (skipping ones that would overshoot)."""
    out, n = [], 0
    for r, k in zip(rows, lens):
        if n + k <= target:
            out.append(r)
            n += k
    return out


@pytest.fixture(scope="module")
def corpora(tok, shared_data, tmp_path_factory):
    """Five sources sized so that Table 3's shares and epochs are both reachable at TOTAL tokens."""
    t = load(str(tok))
    base = tmp_path_factory.mktemp("corpora")
    paths, texts = {}, {}
    for name, (share, epochs) in TABLE3.items():
        f, field, kind = DATA[name]
        rows = [json.loads(ln) for ln in (shared_data / f).open(encoding="utf-8")]
        rows = [r for r in rows if r[field]]
        lens = [len(e.ids) + 1 for e in t.encode_batch_fast([r[field] for r in rows], add_special_tokens=False)]
        rows = _fit_rows(rows, lens, round(share * TOTAL / epochs))
        src = base / f"{name}.jsonl"
        src.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        if kind == "run":
            cfg = write_config(base, [src], out=f"run_{name}", name=f"{name}.yaml", input_opts={"text_field": field})
            assert run(cfg) == 0
            paths[name] = str(base / f"run_{name}")
            texts[name] = table(base / f"run_{name}", "kept").column("text").to_pylist()
        elif kind == "parquet":
            pq.write_table(pa.table({"id": [r["id"] for r in rows], field: [r[field] for r in rows]}), base / f"{name}.parquet")
            paths[name] = str(base / f"{name}.parquet")
            texts[name] = [r[field] for r in rows]
        else:
            paths[name] = str(src)
            texts[name] = [r[field] for r in rows]
    return paths, texts


def _mix(tmp: Path, tok: Path, paths: dict, mode: str, seed: int = 7, name: str = "mix.yaml") -> Path:
    sources = {}
    for n, (share, epochs) in TABLE3.items():
        s = {"path": paths[n], **({"weight": share} if mode == "weight" else {"epochs": epochs})}
        if n == "encyclopedia":
            s["text_field"] = "zh_cn"
        sources[n] = s
    doc = {"seed": seed, "tokenizer": str(tok), "shard_tokens": 150_000, "sources": sources,
           **({"total_tokens": TOTAL} if mode == "weight" else {})}
    p = tmp / name
    p.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return p


def _sample(mix: Path, out: Path, *extra: str) -> int:
    return main(["sample", str(mix), "--out", str(out), "--no-progress", *extra])


@pytest.fixture(scope="module")
def weighted(tok, corpora, tmp_path_factory):
    d = tmp_path_factory.mktemp("weighted")
    mix = _mix(d, tok, corpora[0], "weight")
    assert _sample(mix, d / "a") == 0
    return mix, d / "a"


def _per_source_tokens(out: Path, tok: Path, texts: dict) -> tuple[Counter, list[str]]:
    """Tokens per source counted from the shards alone: each document is matched to its source text."""
    t = load(str(tok))
    eod = t.token_to_id(EOD)
    owner = {}
    for n, ts in texts.items():
        for e in t.encode_batch_fast(ts, add_special_tokens=False):
            owner[np.asarray(e.ids + [eod], np.uint16).tobytes()] = n
    counts, order = Counter(), []
    for s in open_shards(str(out)):
        for i in range(len(s)):
            doc = np.asarray(s[i])
            n = owner[doc.tobytes()]
            counts[n] += len(doc)
            order.append(n)
    return counts, order


def _check_table3(out: Path, tok: Path, texts: dict):
    m = load_manifest(str(out))
    counts, order = _per_source_tokens(out, tok, texts)
    total = sum(counts.values())
    assert total == m["tokens"] == sum(e["tokens"] for e in m["shards"])
    for n, (share, epochs) in TABLE3.items():
        s = m["sources"][n]
        assert s["tokens_drawn"] == counts[n]  # the manifest agrees with the shards
        assert abs(counts[n] / total - share) < 0.005, (n, counts[n] / total, share)
        assert abs(counts[n] / s["tokens_available"] / epochs - 1) < 0.02, (n, counts[n] / s["tokens_available"], epochs)
    # Shuffled, not concatenated: sources alternate thousands of times.
    assert sum(a != b for a, b in zip(order, order[1:])) > len(order) / 4
    return m


def test_table3_weights_reproduce_shares_and_epochs(weighted, tok, corpora, capsys):
    m = _check_table3(weighted[1], tok, corpora[1])
    assert len(m["shards"]) >= 3 and m["quarantined"] == {}
    assert verify(str(weighted[1])) == []


def test_table3_epochs_reproduce_shares_and_epochs(tok, corpora, tmp_path, capsys):
    mix = _mix(tmp_path, tok, corpora[0], "epochs")
    assert _sample(mix, tmp_path / "e") == 0
    table_out = capsys.readouterr().out
    assert "epochs req" in table_out and "common_crawl" in table_out
    _check_table3(tmp_path / "e", tok, corpora[1])


def test_workers_and_memory_budget_do_not_change_bytes(weighted, tmp_path):
    mix, a = weighted
    assert _sample(mix, tmp_path / "w2", "--workers", "2") == 0
    # 0.25 MB: the shuffle spills into 2^k bucket files instead of one in-memory sort.
    sample(load_mixture(str(mix)), str(tmp_path / "tiny"), buffer_mb=0.25, progress=False)
    ref = tree_digest(a)
    assert tree_digest(tmp_path / "w2") == ref
    assert tree_digest(tmp_path / "tiny") == ref


def test_overwrite_replaces_shards_and_sweeps_only_its_own_trash(weighted, tmp_path, capsys):
    mix, a = weighted
    out = tmp_path / "s"
    shutil.copytree(a, out)
    (out / "stale.bin").write_bytes(b"x")
    (out / ".tmp-trash-0123456789ab" / "shards").mkdir(parents=True)  # an --overwrite killed while deleting
    (out / ".tmp-trash-0123456789ab" / ".corpusforge-output").write_text('{"corpusforge_output": "trash"}')
    (tmp_path / ".tmp-trash-s").mkdir()  # a sibling of that name is not ours: never touched
    (tmp_path / ".tmp-trash-s" / "x").write_text("keep")
    assert _sample(mix, out) == 2 and "output_exists" in capsys.readouterr().err
    assert _sample(mix, out, "--overwrite") == 0
    assert tree_digest(out) == tree_digest(a) and (tmp_path / ".tmp-trash-s" / "x").read_text() == "keep"
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")  # never delete a folder the sampler did not write
    assert _sample(mix, tmp_path / "mine", "--overwrite") == 2 and (tmp_path / "mine" / "notes.txt").exists()
    assert "output_not_ours" in capsys.readouterr().err


def test_memory_budget_below_the_process_footprint_is_a_one_line_error(weighted, tmp_path, capsys):
    mix, _ = weighted
    assert _sample(mix, tmp_path / "small", "--memory-mb", "40") == 2
    err = capsys.readouterr().err.strip()
    assert "memory_budget" in err and "--memory-mb 40 is below" in err and len(err.splitlines()) == 1
    m = re.search(r"use --memory-mb (\d+) or more", err)
    assert m and 100 < int(m.group(1)) < 1024
    assert not (tmp_path / "small").exists()


def test_same_seed_identical_other_seed_different(weighted, tok, corpora, tmp_path):
    mix, a = weighted
    assert _sample(mix, tmp_path / "again") == 0
    assert tree_digest(tmp_path / "again") == tree_digest(a)
    other = _mix(tmp_path, tok, corpora[0], "weight", seed=8, name="seed8.yaml")
    assert _sample(other, tmp_path / "s8") == 0
    assert load_manifest(str(tmp_path / "s8"))["plan_sha256"] != load_manifest(str(a))["plan_sha256"]
    assert (tmp_path / "s8" / "shard-00000.bin").read_bytes() != (a / "shard-00000.bin").read_bytes()
    _check_table3(tmp_path / "s8", tok, corpora[1])


def test_independent_megatron_reader_gets_the_same_tokens(weighted, tok, corpora):
    out = weighted[1]
    m = load_manifest(str(out))
    t = load(str(out / "tokenizer.json"))
    all_texts = {x for ts in corpora[1].values() for x in ts}
    assert m["tokenizer"]["vocab_size"] == 3000 and m["eod_id"] == t.token_to_id(EOD)
    for entry, shard in zip(m["shards"], open_shards(str(out))):
        code, docs = megatron_read(out / entry["bin"][:-4])
        assert code == 8 and len(docs) == entry["docs"] == len(shard)
        for i, d in enumerate(docs):
            assert np.array_equal(d, shard[i])
            assert d[-1] == m["eod_id"] and m["eod_id"] not in d[:-1]
            if i % 50 == 0:  # decodes back to a source document, byte for byte
                assert t.decode(d[:-1].tolist()) in all_texts


def test_verify_detects_every_mutation_and_names_the_file(weighted, tmp_path, capsys):
    src = weighted[1]
    m = load_manifest(str(src))
    names = [(e["bin"], e["idx"]) for e in m["shards"]]

    def fresh() -> Path:
        d = tmp_path / "m"
        if d.exists():
            shutil.rmtree(d)
        shutil.copytree(src, d)
        return d

    # Truncate each .bin by one byte.
    for b, _ in names:
        d = fresh()
        data = (d / b).read_bytes()
        (d / b).write_bytes(data[:-1])
        probs = verify(str(d))
        assert probs and all(str(d / b) in p for p in probs), probs
    # Flip one byte of an .idx: every header byte and 150 seeded positions in the arrays.
    idx = names[1][1]
    size = (src / idx).stat().st_size
    positions = list(range(34)) + random.Random(0).sample(range(34, size), 150)
    for pos in positions:
        d = fresh() if pos == 0 else tmp_path / "m"
        raw = bytearray((src / idx).read_bytes())
        raw[pos] ^= 0x5A
        (d / idx).write_bytes(bytes(raw))
        probs = verify(str(d))
        assert probs and any(str(d / idx) in p for p in probs), (pos, probs)
    # Swap the .idx files of shards 0 and 1: both are named.
    d = fresh()
    i0, i1 = names[0][1], names[1][1]
    (d / i0).rename(d / "tmp")
    (d / i1).rename(d / i0)
    (d / "tmp").rename(d / i1)
    probs = verify(str(d))
    assert any(str(d / i0) in p for p in probs) and any(str(d / i1) in p for p in probs)
    # Truncated .bin with its sha256 "fixed" in shards.json: the size check still names it.
    d = fresh()
    b0 = names[0][0]
    (d / b0).write_bytes((d / b0).read_bytes()[:-2])
    mj = json.loads((d / "shards.json").read_text())
    mj["shards"][0]["sha256_bin"] = hashlib.sha256((d / b0).read_bytes()).hexdigest()
    (d / "shards.json").write_text(json.dumps(mj))
    probs = verify(str(d))
    assert len(probs) == 1 and str(d / b0) in probs[0] and "index says" in probs[0]
    # The CLI exits 1 and prints the file.
    capsys.readouterr()
    assert main(["shards", "verify", str(d)]) == 1
    assert str(d / b0) in capsys.readouterr().err
    assert main(["shards", "verify", str(src)]) == 0


def test_roundtrip_failures_are_quarantined_never_silent(tok, shared_data, tmp_path):
    # A tokenizer with an NFKC normalizer cannot give back full-width punctuation (，→,) as written.
    spec = json.loads(Path(tok).read_text(encoding="utf-8"))
    spec["normalizer"] = {"type": "NFKC"}
    nfkc = tmp_path / "nfkc.json"
    nfkc.write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
    rows = [json.loads(ln) for ln in (shared_data / "spam" / "sms_mudou_labelled.jsonl").open(encoding="utf-8")][:400]
    rows.append({"id": "literal-eod", "text": "正文里写着<eod>这几个字符"})
    src = tmp_path / "sms.jsonl"
    src.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    mix = tmp_path / "mix.yaml"
    mix.write_text(yaml.safe_dump({"tokenizer": str(nfkc), "sources": {"sms": {"path": str(src), "epochs": 1.0}}}))
    assert _sample(mix, tmp_path / "q") == 0
    bad = [r["text"] for r in rows if unicodedata.normalize("NFKC", r["text"]) != r["text"]]
    good = [r["text"] for r in rows if unicodedata.normalize("NFKC", r["text"]) == r["text"]]
    assert 0 < len(bad) < len(rows)
    m = load_manifest(str(tmp_path / "q"))
    assert m["quarantined"] == {"tokenizer_roundtrip": len(bad)}
    q = pq.read_table(tmp_path / "q" / "quarantine.parquet").to_pylist()
    assert Counter(r["raw"].decode("utf-8") for r in q) == Counter(bad)
    assert all(r["reason"] == "tokenizer_roundtrip" and r["stage"] == "tokenize" and r["detail"] for r in q)
    # One epoch: every other document exactly once, the literal "<eod>" text kept as text.
    t = load(str(nfkc))
    got = Counter(t.decode(s[i][:-1].tolist()) for s in open_shards(str(tmp_path / "q")) for i in range(len(s)))
    assert got == Counter(good)
    assert "正文里写着<eod>这几个字符" in got


def test_tokenize_stage_runs_in_a_pipeline(tok, shared_data, tmp_path):
    src = shared_data / "web" / "commoncrawl_2021-43_zh_100docs.jsonl"
    cfg = write_config(tmp_path, [src], stages=[{"use": "tokenize", "with": {"tokenizer": str(tok)}}])
    assert run(cfg) == 0
    kept = table(tmp_path / "out", "kept")
    t = load(str(tok))
    eod = t.token_to_id(EOD)
    assert kept.num_rows == 100 and kept.schema.field("tokens").type == pa.list_(pa.int32())
    for text, ids in zip(kept.column("text").to_pylist(), kept.column("tokens").to_pylist()):
        assert ids[-1] == eod and t.decode(ids[:-1]) == text


def test_sources_of_one_multi_source_run(tok, shared_data, tmp_path):
    """`source:` selects one source's documents of a run with several input blocks (the PanGu flow runs
    all sources through one pipeline); one epoch of each draws exactly its documents."""
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump({"run": {"name": "t", "output": str(tmp_path / "run")}, "stages": [], "input": [
        {"paths": [str(shared_data / "prose/luxun_fiction_essays.jsonl")], "source": "books"},
        {"paths": [str(shared_data / "web/commoncrawl_2021-43_zh_100docs.jsonl")], "source": "web"}]}), encoding="utf-8")
    assert run(cfg) == 0
    mix = tmp_path / "mix.yaml"
    mix.write_text(yaml.safe_dump({"seed": 1, "tokenizer": str(tok), "sources": {
        name: {"path": str(tmp_path / "run"), "source": name, "epochs": 1} for name in ("books", "web")}}), encoding="utf-8")
    assert _sample(mix, tmp_path / "shards") == 0
    got = load_manifest(str(tmp_path / "shards"))["sources"]
    kept = Counter(table(tmp_path / "run", "kept").column("source").to_pylist())
    assert kept == {"books": 92, "web": 100}
    assert {n: got[n]["docs_drawn"] for n in kept} == dict(kept)


def _bad_mix(tmp: Path, doc: dict) -> str:
    p = tmp / "bad.yaml"
    p.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return str(p)


@pytest.mark.parametrize("edit, message", [
    (lambda d: d.update(sourcs=d.pop("sources")), r"bad\.yaml: sourcs: Extra inputs"),
    (lambda d: d["sources"]["a"].update(wieght=0.5), r"sources\.a\.wieght: Extra inputs"),
    (lambda d: d["sources"]["a"].update(weight=0.4), r"weights sum to 0\.9, not 1 \(a=0\.4, b=0\.5\)"),
    (lambda d: d["sources"]["a"].update(epochs=2), r"sources\.a: give exactly one of weight or epochs"),
    (lambda d: d["sources"]["a"].pop("weight"), r"sources\.a: give exactly one of weight or epochs"),
    (lambda d: d["sources"]["a"].update(weight=-0.5), r"sources\.a\.weight: Input should be greater than 0"),
    (lambda d: d.pop("total_tokens"), r"total_tokens is required"),
    (lambda d: d.update(sources={"a": {"path": d["sources"]["a"]["path"], "epochs": 1}}), r"total_tokens is set"),
])
def test_mixture_validation_errors(tok, shared_data, tmp_path, capsys, edit, message):
    doc = {"tokenizer": str(tok), "total_tokens": 1000, "sources": {
        "a": {"path": str(shared_data / "web" / "commoncrawl_2021-43_zh_100docs.jsonl"), "weight": 0.5},
        "b": {"path": str(shared_data / "prose" / "luxun_fiction_essays.jsonl"), "weight": 0.5}}}
    edit(doc)
    assert _sample(Path(_bad_mix(tmp_path, doc)), tmp_path / "o") == 2
    err = capsys.readouterr().err
    assert re.search(message, err), err
    assert err.count("\n") == 1  # one line, no traceback
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("sources, message", [
    # 40 epochs of the web sample exceed the whole 100k budget, leaving nothing for b.
    ({"a": {"epochs": 40}, "b": {"weight": 1.0}}, r"the epoch sources need \d+ tokens \(a: 40 x \d+"),
    # b's weight needs ~10 epochs of the web sample, above its max_epochs.
    ({"a": {"weight": 0.01}, "b": {"weight": 0.99, "max_epochs": 2}}, r"source b has \d+ tokens; .* > max_epochs 2"),
])
def test_source_too_small_for_its_epochs(tok, shared_data, tmp_path, capsys, sources, message):
    paths = {"a": str(shared_data / "web" / "commoncrawl_2021-43_zh_100docs.jsonl"),
             "b": str(shared_data / "web" / "commoncrawl_2021-43_zh_100docs.jsonl")}
    doc = {"tokenizer": str(tok), "total_tokens": 1_000_000 if "max_epochs" in sources["b"] else 100_000,
           "sources": {n: {"path": paths[n], **s} for n, s in sources.items()}}
    assert _sample(Path(_bad_mix(tmp_path, doc)), tmp_path / "o") == 2
    assert re.search(message, capsys.readouterr().err)
