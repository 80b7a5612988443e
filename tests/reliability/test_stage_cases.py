"""RELIABILITY.md §2 cases 29–43 (stage semantics, shards, outputs): each with its expected outcome and,
wherever a run completes, the ledger balancing (`corpusforge audit`). Cases already proven elsewhere are
referenced in docs/reliability.md rather than repeated here (#36–#38 in tests/unit/test_dedup.py,
#41/#42/#43 in tests/unit/test_shards.py and tests/unit/test_sample.py)."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from corpusforge.errors import CorpusforgeError
from corpusforge.rules_files import resolve
from tests.util import assert_audit_ok, manifest, quarantine_rows, run, table, write_config

HEADER = "# source: reliability test fixture\n# licence: CC0\n"


def jl(rows) -> bytes:
    return b"".join(json.dumps(r, ensure_ascii=False).encode() + b"\n" for r in rows)


@pytest.fixture(scope="module")
def web(shared_data) -> list[dict]:
    path = shared_data / "web" / "commoncrawl_2021-43_zh_100docs.jsonl"
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]


def run_ok(tmp_path: Path, files, **kw) -> Path:
    cfg = write_config(tmp_path, files, **kw)
    assert run(cfg) == 0
    out = tmp_path / kw.get("out", "out")
    assert_audit_ok(out)
    return out


def run_error(tmp_path: Path, capsys, files, code: str, **kw) -> str:
    """The run stops before committing anything, with one line naming the reason."""
    cfg = write_config(tmp_path, files, **kw)
    assert run(cfg) == 2
    err = capsys.readouterr().err.strip()
    assert code in err and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert not (tmp_path / kw.get("out", "out") / "manifest.json").exists()
    return err


def stage_counts(out: Path, name: str) -> dict:
    return next(s for s in manifest(out)["stages"] if s["name"] == name)


# ---------------------------------------------------------------- 2.4 stage semantics


def test_29_t2s_ambiguous_phrases_gold_and_count_unchanged(tmp_path, shared_data):
    """OpenCC gold cases with the ambiguous characters (乾/干, 後/后, 髮/发, 著/着): phrase-level output,
    chars_changed per document, never a change in the record count; the dictionaries are hashed."""
    gold = [json.loads(x) for x in (shared_data / "tradsimp" / "opencc_testcases.jsonl").read_text(encoding="utf-8").splitlines()]
    cases = [g for g in gold if g["config"] == "t2s" and any(c in g["input"] for c in "乾後髮著")]
    assert len(cases) >= 5
    (tmp_path / "t.jsonl").write_bytes(jl([{"text": g["input"]} for g in cases]))
    out = run_ok(tmp_path, [tmp_path / "t.jsonl"], stages=[{"use": "t2s"}])
    kept = table(out, "kept")
    assert kept.column("text").to_pylist() == [g["expected"] for g in cases]
    changed = [sum(a != b for a, b in zip(g["input"], g["expected"])) for g in cases]
    assert kept.column("t2s__chars_changed").to_pylist() == changed  # the gold pairs are length-aligned
    c = stage_counts(out, "t2s")
    assert c["in"] == c["kept"] == len(cases) and not c["dropped"] and not c["quarantined"]
    assert {"t2s:t2s.json", "t2s:TSPhrases.ocd2", "t2s:TSCharacters.ocd2"} <= set(manifest(out)["rules"])


def test_30_sensitive_list_one_char_term_is_an_error_naming_file_and_line(tmp_path, capsys, web):
    (tmp_path / "a.jsonl").write_bytes(jl(web[:5]))
    bad = tmp_path / "words.txt"
    bad.write_text(HEADER + "赌博网站\n\n   \n的\n", encoding="utf-8")  # blank lines are skipped, 的 is line 6
    err = run_error(tmp_path, capsys, [tmp_path / "a.jsonl"], "bad_rule_file",
                    stages=[{"use": "sensitive_words", "with": {"lists": {"x": str(bad)}, "allowlist": None}}])
    assert "words.txt:6" in err and "'的'" in err


def test_30_regex_rule_matching_everything_is_an_error(tmp_path, capsys, web):
    (tmp_path / "a.jsonl").write_bytes(jl(web[:5]))
    rules = tmp_path / "r.yaml"
    rules.write_text(HEADER + "rules:\n  - {id: all, pattern: '.*', replace: '', examples: [{in: a, out: ''}]}\n", encoding="utf-8")
    err = run_error(tmp_path, capsys, [tmp_path / "a.jsonl"], "bad_rule_file", stages=[{"use": "clean", "with": {"rules": [str(rules)]}}])
    assert "r.yaml:4" in err and "empty string" in err


def test_30_rule_dropping_most_of_a_part_stops_the_run(tmp_path, capsys, web):
    """Runtime guard: valid 2-character terms that occur in most pages (可以, 时间, ...) pass load-time
    validation, but one rule-list reason dropping > limits.max_rule_drop_fraction of a part is an ERROR
    naming the input part and the reason; with the guard nulled the same run completes and balances."""
    (tmp_path / "a.jsonl").write_bytes(jl(web))
    words = tmp_path / "words.txt"
    words.write_text(HEADER + "可以\n时间\n我们\n一个\n", encoding="utf-8")
    stages = [{"use": "sensitive_words", "with": {"lists": {"x": str(words)}, "allowlist": None, "drop_at_hits": 1}}]
    err = run_error(tmp_path, capsys, [tmp_path / "a.jsonl"], "rule_guard", stages=stages, limits={"rule_guard_min_docs": 50})
    assert "a.jsonl (part 0)" in err and "sensitive_words:sensitive_words dropped" in err and "max_rule_drop_fraction" in err
    out = run_ok(tmp_path, [tmp_path / "a.jsonl"], stages=stages, out="out2",
                 limits={"rule_guard_min_docs": 50, "max_rule_drop_fraction": None}, name="cfg2.yaml")
    c = stage_counts(out, "sensitive_words")
    assert c["dropped"]["sensitive_words:sensitive_words"] > 0.5 * c["in"] == 50
    # the default lexicon on the same pages is far below the guard
    out = run_ok(tmp_path, [tmp_path / "a.jsonl"], stages=[{"use": "sensitive_words"}], out="out3", name="cfg3.yaml",
                 limits={"rule_guard_min_docs": 50})
    assert stage_counts(out, "sensitive_words")["kept"] > 90


def test_31_backtracking_regex_runs_in_linear_time_or_is_refused(tmp_path, capsys):
    """Rules are RE2 (pyarrow): `(a+)+$` on 200k 'a's followed by 'b' is linear (a backtracking engine never
    returns; pytest-timeout would fail this test); backreferences, which need backtracking, are refused."""
    rules = tmp_path / "r.yaml"
    rules.write_text(HEADER + "rules:\n  - {id: tail_a, pattern: '(a+)+$', replace: '', examples: [{in: 'xaa', out: x}]}\n",
                     encoding="utf-8")
    docs = [{"text": "a" * 200_000 + "b"}, {"text": "中文" + "a" * 50_000}]
    (tmp_path / "a.jsonl").write_bytes(jl(docs))
    out = run_ok(tmp_path, [tmp_path / "a.jsonl"], stages=[{"use": "clean", "with": {"rules": [str(rules)], "dedup_paragraphs": False}}])
    texts = table(out, "kept").column("text").to_pylist()
    assert texts == [docs[0]["text"], "中文"]
    rules.write_text(HEADER + "rules:\n  - {id: br, pattern: '(ab)\\1', replace: '', examples: [{in: abab, out: ''}]}\n", encoding="utf-8")
    err = run_error(tmp_path, capsys, [tmp_path / "a.jsonl"], "bad_rule_file", out="out2",
                    stages=[{"use": "clean", "with": {"rules": [str(rules)]}}])
    assert "r.yaml:4" in err and "RE2" in err


class _NoLabels:
    """A fastText stand-in whose predict returns no label for texts containing '无标签'."""

    def __init__(self, real):
        self.real = real
        self.f = self

    def multilinePredict(self, lines, k, threshold, errors):
        labels, probs = self.real.f.multilinePredict(lines, k, threshold, errors)
        return ([[] if "无 标" in ln else ls for ln, ls in zip(lines, labels)],
                [np.zeros(0) if "无 标" in ln else ps for ln, ps in zip(lines, probs)])


def test_32_fasttext_newlines_empty_and_no_label(web):
    from corpusforge.models import spam
    from corpusforge.models.featurize import fasttext_line
    from corpusforge.pipeline import apply_stages, output_schemas
    from corpusforge.schema import DOC_SCHEMA
    from corpusforge.stage import lookup

    model = spam.load(resolve("models/spam_fasttext.bin"))
    text = web[3]["text"]
    assert "\n" in text and "\n" not in fasttext_line(text)  # fastText reads one line per document
    # the same words with newlines or spaces between them score the same (newlines never split a doc)
    assert spam.spam_prob(model, ["发票\n代开"])[0] == spam.spam_prob(model, ["发票 代开"])[0]
    cls = lookup("spam_fasttext")
    stage = cls(cls.Params())
    stage.setup()
    stage._model = _NoLabels(stage._model)
    texts = [text, "", "无标签的文本", web[5]["text"]]
    batch = pa.RecordBatch.from_pydict({"id": ["a", "b", "c", "d"], "source": ["s"] * 4, "text": texts, "meta": [[]] * 4},
                                       schema=DOC_SCHEMA)
    counts: dict = {}
    kept, rejects, quarantine = apply_stages([stage], output_schemas([stage], DOC_SCHEMA), batch, counts)
    c = counts["spam_fasttext"]
    assert [q["id"] for q in quarantine] == ["c"] and c["quarantined"] == {"score_invalid": 1}
    assert kept.num_rows + sum(r.num_rows for r in rejects) == 3  # the empty text still gets a prediction
    assert c["in"] == c["kept"] + sum(c["dropped"].values()) + sum(c["quarantined"].values())

    class Short(_NoLabels):
        def multilinePredict(self, lines, *a):
            labels, probs = self.real.f.multilinePredict(lines, *a)
            return labels[:-1], probs[:-1]

    with pytest.raises(CorpusforgeError, match="classifier_error: fastText returned 3 predictions for 4 texts"):
        spam.spam_prob(Short(model), texts)


def test_33_missing_or_changed_model_errors_before_processing(tmp_path, capsys, web, shared_data):
    (tmp_path / "a.jsonl").write_bytes(jl(web[:5]))
    run_error(tmp_path, capsys, [tmp_path / "a.jsonl"], "missing_rule_file",
              stages=[{"use": "spam_fasttext", "with": {"model": str(tmp_path / "nope.bin")}}])
    bad = tmp_path / "spam.bin"
    shutil.copy(resolve("models/spam_fasttext.bin"), bad)
    shutil.copy(resolve("models/spam_fasttext.bin") + ".json", str(bad) + ".json")
    with open(bad, "r+b") as f:  # same size, one byte different
        f.seek(1000)
        b = f.read(1)
        f.seek(1000)
        f.write(bytes([b[0] ^ 1]))
    err = run_error(tmp_path, capsys, [tmp_path / "a.jsonl"], "model_mismatch", out="out2",
                    stages=[{"use": "spam_fasttext", "with": {"model": str(bad)}}])
    assert "spam.bin" in err
    # a tokenizer pinned by sha256 that changed on disk
    from corpusforge.cli import main

    tok = tmp_path / "tok.json"
    assert main(["tokenizer", "train", str(shared_data / "prose" / "luxun_fiction_essays.jsonl"), "--vocab-size", "600",
                 "--out", str(tok)]) == 0
    capsys.readouterr()
    run_error(tmp_path, capsys, [tmp_path / "a.jsonl"], "tokenizer_changed", out="out3",
              stages=[{"use": "tokenize", "with": {"tokenizer": str(tok), "sha256": "0" * 64}}])


def test_34_non_finite_scores_are_quarantined_not_kept_or_dropped(tmp_path, web):
    """NaN passes `drop if < t` and fails `keep if >= t`: the pipeline quarantines any non-finite score."""
    from corpusforge.pipeline import apply_stages, output_schemas
    from corpusforge.schema import DOC_SCHEMA
    from corpusforge.stage import lookup

    cls = lookup("quality_lr")
    stage = cls(cls.Params(mode="threshold", threshold=0.5))
    stage.setup()
    real = stage._model.score
    stage._model.score = lambda texts, ids=None: [math.nan if i == 1 else math.inf if i == 2 else s
                                                  for i, s in enumerate(real(texts, ids))]
    texts = [d["text"] for d in web[:6]]
    batch = pa.RecordBatch.from_pydict({"id": [str(i) for i in range(6)], "source": ["s"] * 6, "text": texts,
                                        "meta": [[("_cf_file", "a.jsonl"), ("_cf_line", str(i + 1)), ("_cf_offset", "0")] for i in range(6)]},
                                       schema=DOC_SCHEMA)
    counts: dict = {}
    kept, rejects, quarantine = apply_stages([stage], output_schemas([stage], DOC_SCHEMA), batch, counts)
    assert [(q["id"], q["reason"], q["line"]) for q in quarantine] == [("1", "score_invalid", 2), ("2", "score_invalid", 3)]
    assert "quality_lr__score is not finite" in quarantine[0]["detail"]
    assert kept.num_rows + sum(r.num_rows for r in rejects) == 4
    c = counts["quality_lr"]
    assert c["in"] == 6 == c["kept"] + sum(c["dropped"].values()) + sum(c["quarantined"].values())


def test_35_short_and_shingle_less_docs_in_minhash(tmp_path, shared_data):
    """A text shorter than the n-gram is one shingle (so identical short texts are still found); a text
    with no shingles (only punctuation) is never a near-duplicate and stays, counted as kept and as
    `dedup_skipped_too_short` in the ledger of its own part."""
    prose = [json.loads(x)["text"] for x in (shared_data / "prose" / "luxun_fiction_essays.jsonl").read_text(encoding="utf-8").splitlines()]
    docs = [{"text": t} for t in ["呐喊", "呐喊！", "！！！", "……", prose[0][:3000], prose[1][:3000]]]
    (tmp_path / "a.jsonl").write_bytes(jl(docs[:3]))  # 呐喊, 呐喊！, ！！！ (one shingle-less doc)
    (tmp_path / "b.jsonl").write_bytes(jl(docs[3:]))  # ……, and two long texts
    out = run_ok(tmp_path, [tmp_path / "a.jsonl", tmp_path / "b.jsonl"],
                 stages=[{"use": "normalize"}, {"use": "dedup_minhash", "with": {"ngram": 5}}])
    c = stage_counts(out, "dedup_minhash")
    assert c["dropped"] == {"dedup_minhash:near_duplicate": 1}  # 呐喊 / 呐喊！ (punctuation stripped)
    assert c["fixes"] == {"dedup_skipped_too_short": 2}
    parts = [json.loads(p.read_text(encoding="utf-8")) for p in sorted((out / "_parts").glob("*.json"))]
    assert [p["counts"]["dedup_minhash"]["fixes"] for p in parts] == [{"dedup_skipped_too_short": 1}] * 2
    kept = table(out, "kept").column("text").to_pylist()
    assert len(kept) == 5 and set(kept) >= {d["text"] for d in docs[2:]} and len({"呐喊", "呐喊！"} & set(kept)) == 1


def test_39_sampler_weights_zero_nan_inf_refused(tmp_path, shared_data):
    from corpusforge.sample.mix import load_mixture

    web_path = str(shared_data / "web" / "commoncrawl_2021-43_zh_100docs.jsonl")
    for w in (0, float("nan"), float("inf"), -1):
        p = tmp_path / "mix.yaml"
        p.write_text(json.dumps({"tokenizer": "t.json", "total_tokens": 100, "sources": {
            "a": {"path": web_path, "weight": w}, "b": {"path": web_path, "weight": 1.0}}}), encoding="utf-8")
        with pytest.raises(CorpusforgeError, match=r"mix\.yaml.*sources\.a\.weight"):
            load_mixture(str(p))


# ---------------------------------------------------------------- 2.5 outputs


def test_40_output_names_never_come_from_metadata(tmp_path, web):
    """Hostile `source` and `id` values are data: output files are named by part index only, and nothing
    is written outside the output root."""
    hostile = ["../../pwn", "/abs/evil", "C:\\win", "nul\x00x", "a/b/../../../c"]
    rows = [dict(web[i], site=h, id=h) for i, h in enumerate(hostile)]
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jsonl").write_bytes(jl(rows))
    before = sorted(p.name for p in tmp_path.parent.iterdir())
    out = run_ok(tmp_path, [tmp_path / "in" / "a.jsonl"], input_opts={"source_field": "site"},
                 stages=[{"use": "text_sanity", "with": {"min_chars": 200}}])
    assert sorted(p.name for p in tmp_path.parent.iterdir()) == before
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert all(f in ("manifest.json", "run_info.json", "_state.json", ".corpusforge-output") or f.split("/")[-1].startswith("part-") for f in files), files
    kept, rej = table(out, "kept"), table(out, "rejects")
    got = sorted((kept.column("source").to_pylist() if kept else []) + (rej.column("source").to_pylist() if rej else []))
    assert got == sorted(hostile)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cfg.yaml", "in", "out"]


def test_quarantine_rows_name_stage_file_line_offset(tmp_path, web):
    """G11 over the bad-input mix: every quarantine row carries stage, a relative file, line, offset, reason."""
    lines = jl(web[:4]).split(b"\n")
    lines[1] = b'{"text": "\\ud800"}'
    lines[2] = b"\xff\xfe"
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jsonl").write_bytes(b"\n".join(lines))
    out = run_ok(tmp_path, [tmp_path / "in" / "a.jsonl"])
    q = quarantine_rows(out)
    assert len(q) == 2
    for r in q:
        assert r["stage"] and r["reason"] and r["file"] == "a.jsonl" and r["line"] in (2, 3) and r["byte_offset"] > 0
        assert not r["file"].startswith("/")
