"""decontaminate: CMMLU items (tests/data/evals) against the real shared data: no false hit at the default n,
every planted item found (drop) or cut out (strip), the hit list in the manifest, same result for any
batching, and one-line errors for a missing or unreadable evaluation file."""

from __future__ import annotations

import json
import pickle
import random

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from corpusforge.algorithms.minhash import normalize_codepoints, normalized_text
from corpusforge.config import load_config
from corpusforge.errors import CorpusforgeError
from corpusforge.stage import lookup
from corpusforge.stages.decontaminate import DEFAULT_N, read_items  # also registers the stage
from tests.util import REPO_ROOT, assert_audit_ok, manifest, read_jsonl, run, table, write_config

EVALS = REPO_ROOT / "tests" / "data" / "evals"
FIELDS = ["question", "A", "B", "C", "D"]
SPECS = [{"path": str(EVALS / f"cmmlu_{s}.jsonl"), "fields": FIELDS} for s in ("chinese_history", "chinese_literature")]
TEXT_FIELDS = ("text", "zh_cn", "zh_tw", "input", "expected", "title", "subject")


def _stage(**kw):
    cls = lookup("decontaminate")
    s = cls(cls.Params(**{"evals": SPECS, **kw}))
    s.setup()
    return s


def _batch(texts):
    return pa.RecordBatch.from_pydict({"text": texts})


def _shared_texts(root) -> list[str]:
    """Every text of the shared data: JSONL text fields, lexicon and other .txt lines, raw HTML pages."""
    out = []
    for p in sorted(root.rglob("*")):
        if p.suffix == ".jsonl":
            for rec in read_jsonl(p):
                out += [rec[k] for k in TEXT_FIELDS if isinstance(rec.get(k), str) and rec[k]]
        elif p.suffix == ".txt":
            out += [ln for ln in p.read_text(encoding="utf-8", errors="replace").splitlines() if ln.strip()]
        elif p.suffix in (".html", ".htm"):
            out.append(p.read_bytes().decode("utf-8", errors="replace"))
    return out


def _hosts(root) -> list[str]:
    return [r["text"] for f in ("prose/zhwiki_articles_100.jsonl", "diverse/news_thucnews_sina.jsonl")
            for r in read_jsonl(root / f)]


FULL = {c: chr(ord(c) + 0xFEE0) for c in "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"}


def _disguise(s: str, rng: random.Random) -> str:
    """Changes the normalization absorbs: spaces/line breaks inside, full-width Latin and digits, upper case,
    ASCII punctuation for Chinese punctuation."""
    swap = {"，": ", ", "。": ".", "“": '"', "”": '"', "：": ":", "（": "(", "）": ")"}
    out = []
    for c in swap.get(s[0], s[0]) + s[1:]:
        c = swap.get(c, c)
        if c.isascii() and c.isalnum():
            c = FULL[c.upper()] if rng.random() < 0.5 else c.upper()
        out.append(c + (" " if rng.random() < 0.1 else "\n" if rng.random() < 0.05 else ""))
    return "".join(out)


def _kept(c: str) -> bool:
    return bool(normalized_text(c))


def _plants(hosts, n=DEFAULT_N, seed=1):
    """(text, item key, host prefix, planted, host suffix, kind) for every item with a field of >= n chars:
    its longest field whole, disguised, and a partial span of n+2 normalized chars (kept chars at both ends),
    planted between two Han characters of a real document."""
    rng, out = random.Random(seed), []
    for spec in SPECS:
        ev = lookup("decontaminate").Params(evals=[spec]).evals[0]
        for row, fields in enumerate(read_items(ev)):
            lens = np.diff(normalize_codepoints(fields)[1])
            if lens.max() < n:
                continue
            f = fields[int(lens.argmax())]
            kept = [i for i, c in enumerate(f) if _kept(c)]
            a = rng.randrange(0, len(kept) - min(n + 2, len(kept)) + 1)
            span = f[kept[a]: kept[a + min(n + 2, len(kept)) - 1] + 1]
            for kind, s in (("whole", f), ("disguised", _disguise(f, rng)), ("partial", span)):
                h = hosts[rng.randrange(len(hosts))]
                cut = rng.randrange(1, len(h))
                nf = normalized_text(f)  # a host character that continues the item's text would be cut with it
                while cut > 1 and not ("\u4e00" <= h[cut - 1] <= "\u9fff" and normalized_text(h[cut - 1] + s) not in nf
                                       and normalized_text(s + h[cut]) not in nf):
                    cut -= 1
                out.append((h[:cut] + s + h[cut:], f"{ev.eval_name}#{row}", h[:cut], s, h[cut:], kind))
    return out


@pytest.fixture(scope="module")
def drop():
    return _stage()


@pytest.fixture(scope="module")
def strip():
    return _stage(mode="strip")


@pytest.fixture(scope="module")
def plants(shared_data):
    return _plants(_hosts(shared_data))


def test_no_false_hit_on_all_shared_data_at_the_default_n(shared_data, drop):
    texts = _shared_texts(shared_data)
    assert len(texts) > 100_000
    hits = [drop.score(_batch(texts[i:i + 4096]))["hits"].to_numpy() for i in range(0, len(texts), 4096)]
    assert int(np.concatenate(hits).sum()) == 0
    # why n is not 13: a stock clause of one item (a named event, 23 characters) is in Wikipedia articles
    clause = [t for t in texts if "中国人民政治协商会议第一届全体会议在北平召开" in t]
    got = _stage(n=13).score(_batch(clause))["items"].to_pylist()
    assert len(clause) >= 8 and set(got) == {"cmmlu_chinese_history#106"}


def test_index_counts_items_it_cannot_check(drop):
    assert drop.index_stats() == {"cmmlu_chinese_history": {"items": 200, "unchecked": 1},
                                  "cmmlu_chinese_literature": {"items": 204, "unchecked": 151}}
    assert _stage(n=13).index_stats()["cmmlu_chinese_literature"]["unchecked"] == 46


def test_every_planted_item_is_found_with_its_key(drop, plants):
    assert len(plants) == 3 * (200 - 1 + 204 - 151)
    items = drop.score(_batch([p[0] for p in plants]))["items"].to_pylist()
    missed = [p[1:2] + p[5:] for p, got in zip(plants, items) if not got or p[1] not in got.split(",")]
    assert missed == []
    v = drop.decide({"hits": np.ones(2, np.int64), "items": np.array(["cmmlu_chinese_literature#3,x#1", "a#0"], object)})
    assert v.reason == ["cmmlu_chinese_literature", "a"] and not v.keep.any()


def test_strip_cuts_the_planted_span_and_nothing_else(strip, plants, shared_data):
    out = strip.map(_batch([p[0] for p in plants]))
    texts = out.column("text").to_pylist()
    for (_, key, pre, s, suf, kind), t in zip(plants, texts):
        assert t.startswith(pre) and t.endswith(suf), (key, kind)
        left = t[len(pre):len(t) - len(suf)]
        if kind == "partial":  # starts and ends with kept characters: cut exactly
            assert left == "", (key, left)
        else:  # at most the plant's own leading/trailing punctuation or spaces remain
            assert normalized_text(left) == "" and len(left) <= 3, (key, left)
    assert (out.column("decontaminate__stripped_chars").to_numpy() > 0).all()
    assert not _stage().score(_batch(texts))["hits"].to_numpy().any()  # nothing contaminated is left
    clean = _hosts(shared_data)[:300]
    mapped = strip.map(_batch(clean))
    assert mapped.column("text").to_pylist() == clean  # byte-identical when nothing hits
    assert mapped.column("decontaminate__items").null_count == len(clean)


def test_strip_when_nfkc_composes_across_characters(strip):
    q = read_items(lookup("decontaminate").Params(evals=[SPECS[0]]).evals[0])[5][0]
    text = "前文e\u0301x。" + q + "。后文a\u0308"  # combining marks: per-character NFKC differs from the whole
    assert strip.map(_batch([text])).column("text").to_pylist() == ["前文e\u0301x。。后文a\u0308"]


def _run(tmp_path, texts, name, mode="drop", batch_rows=2048, evals=SPECS):
    (tmp_path / name).mkdir()
    data = tmp_path / name / "docs.jsonl"  # one file name for every run: the same document ids
    data.write_text("".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in texts), encoding="utf-8")
    cfg = write_config(tmp_path, [data], [{"use": "decontaminate", "with": {"evals": evals, "mode": mode}}],
                       out=f"out-{name}", limits={"batch_rows": batch_rows, "max_rule_drop_fraction": None},
                       name=f"{name}.yaml")
    assert run(cfg) == 0
    out = tmp_path / f"out-{name}"
    assert_audit_ok(out)
    return out


def test_whole_run_drops_planted_docs_and_lists_the_hits(tmp_path, plants, shared_data):
    sample = plants[::5]
    clean = _hosts(shared_data)[300:500]
    out = _run(tmp_path, [p[0] for p in sample] + clean, "drop")
    m = manifest(out)
    st = next(s for s in m["stages"] if s["name"] == "decontaminate")
    assert st["in"] == len(sample) + len(clean) and st["kept"] == len(clean)
    rej = table(out, "rejects").to_pylist()
    line_reason = {int(dict(r["meta"])["_cf_line"]): r["reason"] for r in rej}
    assert line_reason == {i + 1: f"decontaminate:{p[1].split('#')[0]}" for i, p in enumerate(sample)}
    # the hit list: one count per document and item key (planted items; near-duplicate items hit together)
    want: dict[str, int] = {}
    for keys in _stage().score(_batch([p[0] for p in sample]))["items"].to_pylist():
        for k in keys.split(",") + sorted({k.split("#")[0] for k in keys.split(",")}):
            want[f"hit:{k}"] = want.get(f"hit:{k}", 0) + 1
    stats = _stage().index_stats()  # items no n-gram can reach are in the manifest, not silently unchecked
    want.update({f"unchecked:{nm}": v["unchecked"] for nm, v in stats.items() if v["unchecked"]})
    assert st["fixes"] == want and want["unchecked:cmmlu_chinese_literature"] > 0
    assert all(st["fixes"][f"hit:{p[1]}"] >= 1 for p in sample)
    assert want["hit:cmmlu_chinese_history"] == sum(p[1].startswith("cmmlu_chinese_history#") for p in sample)
    assert {k for k in m["rules"] if k.startswith("decontaminate:")} == \
        {"decontaminate:cmmlu_chinese_history.jsonl", "decontaminate:cmmlu_chinese_literature.jsonl"}


def test_same_result_for_any_batching(tmp_path, plants, shared_data):
    texts = [p[0] for p in plants[::7]] + _hosts(shared_data)[500:560]
    outs = [_run(tmp_path, texts, f"{mode}{b}", mode=mode, batch_rows=b) for mode in ("drop", "strip") for b in (1, 13, 4096)]
    for group in (outs[:3], outs[3:]):
        ms = [next(s for s in manifest(o)["stages"] if s["name"] == "decontaminate") for o in group]
        assert all(x == ms[0] for x in ms) and ms[0]["fixes"]
        kept = [table(o, "kept").sort_by("id").to_pylist() for o in group]
        assert all(k == kept[0] for k in kept)
    st = next(s for s in manifest(outs[3])["stages"] if s["name"] == "decontaminate")
    assert st["fixes"]["stripped_chars"] > 0 and st["kept"] == len(texts)


def test_both_modes_pickle_by_class_and_work_after_setup(drop, strip):
    for s in (drop, strip):
        t = pickle.loads(pickle.dumps(s))
        assert type(t) is type(s) and t.params == s.params and not hasattr(t, "_index")
        t.setup()
    assert type(drop).__name__ == "Decontaminate" and type(strip).__name__ == "DecontaminateStrip"


def test_text_and_parquet_evals_match_jsonl(tmp_path, drop):
    items = read_items(lookup("decontaminate").Params(evals=[SPECS[0]]).evals[0])
    (tmp_path / "h.txt").write_text("".join(f[0] + "\n" for f in items), encoding="utf-8")
    pq.write_table(pa.table({"question": [f[0] for f in items]}), tmp_path / "h.parquet")
    docs = [items[i][0] for i in (3, 50, 199)] + ["无关"]
    want = drop.score(_batch(docs))["hits"].to_pylist()
    for spec in ({"path": str(tmp_path / "h.txt"), "name": "cmmlu_chinese_history"},
                 {"path": str(tmp_path / "h.parquet"), "fields": ["question"]}):
        s = lookup("decontaminate")(lookup("decontaminate").Params(evals=[spec]))
        s.setup()
        got = s.score(_batch(docs))
        assert got["hits"].to_pylist() == want
        assert got["items"].to_pylist()[1].endswith("#50")


def test_missing_eval_file_is_one_line_naming_it(tmp_path, capsys):
    data = tmp_path / "d.jsonl"
    data.write_text('{"text": "x"}\n', encoding="utf-8")
    cfg = write_config(tmp_path, [data], [{"use": "decontaminate", "with": {"evals": [{"path": str(tmp_path / "nope.jsonl")}]}}])
    with pytest.raises(CorpusforgeError) as e:
        load_config(str(cfg))
    assert "nope.jsonl" in str(e.value) and "\n" not in str(e.value)
    assert run(cfg) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "nope.jsonl" in err and "not found" in err


@pytest.mark.parametrize("content, why", [('{"question": "q"}\nnot json\n', "line 2 is not JSON"),
                                          ('{"text": "只有正文的一行"}\n', "line 1 has no field 'question'"),
                                          ("\n\n", "no items")])
def test_unreadable_eval_file_fails_setup_naming_it(tmp_path, content, why):
    p = tmp_path / "bad.jsonl"
    p.write_text(content, encoding="utf-8")
    cls = lookup("decontaminate")
    with pytest.raises(CorpusforgeError) as e:
        cls(cls.Params(evals=[{"path": str(p), "fields": ["question"]}])).setup()
    assert e.value.code == "bad_eval_file" and str(p) in str(e.value) and why in str(e.value)
    assert "\n" not in str(e.value)


def test_params_are_checked_at_build_time(tmp_path):
    cls = lookup("decontaminate")
    (tmp_path / "a.csv").write_text("x\n", encoding="utf-8")
    for bad, why in (({"evals": []}, "at least 1"), ({"evals": SPECS + SPECS[:1]}, "named 'cmmlu_chinese_history'"),
                     ({"evals": [{"path": str(tmp_path / "a.csv")}]}, "cannot tell the format"),
                     ({"evals": SPECS, "n": 2}, "greater than or equal"), ({"evals": SPECS, "mode": "cut"}, "drop")):
        with pytest.raises(Exception) as e:
            cls.Params(**bad)
        assert why in str(e.value)


def test_an_eval_file_dropping_most_of_a_part_stops_the_run(tmp_path, plants, capsys):
    (tmp_path / "g").mkdir()
    data = tmp_path / "g" / "docs.jsonl"
    data.write_text("".join(json.dumps({"text": p[0]}, ensure_ascii=False) + "\n" for p in plants[:300]), encoding="utf-8")
    cfg = write_config(tmp_path, [data], [{"use": "decontaminate", "with": {"evals": SPECS}}])  # guard at its default 50 %
    assert run(cfg) != 0
    assert "decontaminate:cmmlu_chinese_history dropped" in capsys.readouterr().err


def test_report_shows_the_hit_list(tmp_path, plants, shared_data):
    """`corpusforge report` lists the evaluation items found (escaped) and the unchecked count beside them."""
    from corpusforge.cli import main

    sample = plants[::40]
    out = _run(tmp_path, [p[0] for p in sample] + _hosts(shared_data)[:20], "report")
    page = tmp_path / "report.html"
    assert main(["report", str(out), "--out", str(page)]) == 0
    html_text = page.read_text(encoding="utf-8")
    section = html_text[html_text.index("Fixes and hit lists"):]
    section = section[:section.index("</section>")]
    for p in sample:
        assert f">{p[1]}</td>" in section
    assert "unchecked:cmmlu_chinese_literature" in section and "Evaluation items found" in section
