"""`corpusforge quality-eval` on the shared data: a model trained on cleaned, deduplicated prose gets a
lower held-out PPL than one trained on the same budget of raw web/spam text, for each of 3 seeds."""

import json

import pytest
import yaml

from corpusforge.cli import main
from corpusforge.models.common import is_heldout
from corpusforge.models.recipe import prose_chunks
from corpusforge.train import charlm
from tests.util import read_jsonl, run, torch_threads, write_config, write_jsonl



_threads = torch_threads(2)




@pytest.fixture(scope="module")
def setup(tmp_path_factory, shared_data):
    d = tmp_path_factory.mktemp("qe")
    prose = [r for f in charlm.PROSE_FILES for r in read_jsonl(shared_data / f)]
    split = [is_heldout(r["id"], charlm.HOLDOUT_FRAC, charlm.HOLDOUT_SEED) for r in prose]
    # Training prose as web-page-sized chunks (paragraphs joined to >= 300 chars), so a small token
    # budget still samples many documents, as it does from the short web/spam documents.
    prose_train = [c for r, h in zip(prose, split) if not h for c in prose_chunks(r["text"])]
    held = [r["text"] for r, h in zip(prose, split) if h][:8]
    write_jsonl(d / "prose_raw.jsonl", prose_train)
    # The cleaned candidate is a corpusforge run: normalize, exact + near-duplicate removal.
    cfg = write_config(d, [d / "prose_raw.jsonl"], [{"use": "normalize"}, {"use": "dedup_exact"}, {"use": "dedup_minhash"}],
                       out="cleaned")
    assert run(cfg) == 0
    sms = [r["text"] for r in read_jsonl(shared_data / "spam/sms_mudou_labelled.jsonl") if r["label"] == "spam"][:1500]
    trec = [r["text"] for r in read_jsonl(shared_data / "spam/trec06c_email_sample.jsonl") if r["label"] == "spam"][:200]
    web = [r["text"] for r in read_jsonl(shared_data / "web/commoncrawl_2021-43_zh_100docs.jsonl")]
    write_jsonl(d / "raw_web_spam.jsonl", web + sms + trec)
    write_jsonl(d / "heldout.jsonl", held)
    write_jsonl(d / "tok_text.jsonl", prose_train[:300] + web + sms[:300])  # both kinds: a tokenizer favouring neither
    assert main(["tokenizer", "train", str(d / "tok_text.jsonl"), "--vocab-size", "800", "--out", str(d / "tok.json")]) == 0
    return d


def _config(d, **kw):
    cfg = {"out": "qe_out", "tokenizer": "tok.json", "heldout": "heldout.jsonl",
           "candidates": {"cleaned_prose": "cleaned", "raw_web_spam": "raw_web_spam.jsonl"},
           "budget_tokens": 30000, "seeds": [1, 2, 3], "model": "tiny", "seq_len": 64,
           "train": {"steps": 30, "batch_size": 8, "lr": 0.01, "device": "cpu"}} | kw
    p = d / "qe.yaml"
    p.write_text(yaml.safe_dump(cfg))
    return p


def test_cleaned_prose_beats_raw_web_spam_on_heldout_ppl_every_seed(setup, capsys):
    assert main(["quality-eval", str(_config(setup)), "--no-progress"]) == 0
    out = capsys.readouterr().out
    with capsys.disabled():
        print("\n" + out)
    rep = json.loads((setup / "qe_out" / "quality_eval.json").read_text())
    c, r = rep["candidates"]["cleaned_prose"], rep["candidates"]["raw_web_spam"]
    assert [x["seed"] for x in c["runs"]] == [1, 2, 3]
    for a, b in zip(c["runs"], r["runs"]):
        assert a["heldout_ppl"] < b["heldout_ppl"], (a, b)
        assert a["trained_tokens"] == b["trained_tokens"] == 30 * 8 * 64  # the same budget for both
        assert abs(a["sampled_tokens"] - 30000) < 3000 and abs(b["sampled_tokens"] - 30000) < 3000
    assert rep["best"] == "cleaned_prose" and rep["best_wins_every_seed"] == {"raw_web_spam": True}
    md = (setup / "qe_out" / "quality_eval.md").read_text()
    assert "| cleaned_prose |" in md and "| raw_web_spam |" in md


def test_heldout_overlapping_a_candidate_is_refused(setup, capsys):
    held = read_jsonl(setup / "heldout.jsonl")
    write_jsonl(setup / "leaky.jsonl", [held[3]["text"]] + [r["text"] for r in read_jsonl(setup / "raw_web_spam.jsonl")[:50]])
    cfg = _config(setup, candidates={"leaky": "leaky.jsonl"}, out="qe_leak")
    assert main(["quality-eval", str(cfg)]) == 2
    assert "heldout_overlap" in capsys.readouterr().err
    assert not (setup / "qe_leak" / "quality_eval.json").exists()
