"""[perplexity] stage, char n-gram backend: ranks held-out prose above spam/ads, buckets, manifest, drops."""

import json
import pickle

import numpy as np
import pyarrow as pa
import pytest

from corpusforge.models.common import auc, is_heldout
from corpusforge.rules_files import resolve, sha256_file
from corpusforge.stages.perplexity import Perplexity
from corpusforge.train import charlm
from tests.util import assert_audit_ok, manifest, read_jsonl, run, table, write_config

MODEL = resolve("models/char_lm_zh.npz")



@pytest.fixture(scope="module")
def sets(shared_data):
    info = json.load(open(MODEL + ".json", encoding="utf-8"))
    held = set(info["heldout_ids"])
    prose = [r for f in charlm.PROSE_FILES for r in read_jsonl(shared_data / f)]
    # The shipped model must have been trained without these documents (same hash rule as the script).
    assert held == {r["id"] for r in prose if is_heldout(r["id"], charlm.HOLDOUT_FRAC, charlm.HOLDOUT_SEED)}
    assert info["n_train_docs"] == len(prose) - len(held) and len(held) >= 40
    sms = read_jsonl(shared_data / "spam/sms_mudou_labelled.jsonl")
    trec = read_jsonl(shared_data / "spam/trec06c_email_sample.jsonl")
    return {
        "prose": [r["text"] for r in prose if r["id"] in held],
        "sms_spam": [r["text"] for r in sms if r["label"] == "spam" and r["split"] == "test"],
        "trec_spam": [r["text"] for r in trec if r["label"] == "spam"][:500],
        "cc_web": [r["text"] for r in read_jsonl(shared_data / charlm.REFERENCE_FILE)],
    }


def test_ppl_ranks_heldout_prose_above_spam_and_ads(sets):
    lm = charlm.CharLM.load(MODEL)
    pos = lm.perplexity(sets["prose"])
    res = {}
    for neg in ("sms_spam", "trec_spam", "cc_web"):
        p = lm.perplexity(sets[neg])
        y = np.r_[np.ones(len(pos), bool), np.zeros(len(p), bool)]
        res[neg] = auc(y, -np.r_[pos, p])  # lower perplexity = more prose-like
    allneg = np.concatenate([lm.perplexity(sets[n]) for n in ("sms_spam", "trec_spam", "cc_web")])
    res["all"] = auc(np.r_[np.ones(len(pos), bool), np.zeros(len(allneg), bool)], -np.r_[pos, allneg])
    print("AUC (held-out prose vs ...):", {k: round(v, 4) for k, v in res.items()},
          f"median ppl prose {np.median(pos):.0f}, spam/ads {np.median(allneg):.0f}")
    assert res["sms_spam"] > 0.88 and res["cc_web"] > 0.8 and res["all"] > 0.75
    # Fluent spam e-mail is harder (PPL measures fluency, not intent): still better than chance.
    assert res["trec_spam"] > 0.55


def test_scores_do_not_depend_on_batching_and_are_finite(sets):
    lm = charlm.CharLM.load(MODEL)
    texts = sets["prose"][:5] + sets["sms_spam"][:20] + ["", "a", "１２３４５"]
    whole = lm.perplexity(texts)
    one_by_one = np.concatenate([lm.perplexity([t]) for t in texts])
    assert np.array_equal(whole, one_by_one)
    assert np.all(np.isfinite(whole)) and np.all(whole > 1)


def test_model_file_is_reproducible(tmp_path, sets):
    """Same training text ⇒ byte-identical model file (fixed zip timestamps, sorted members)."""
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    charlm.train(sets["prose"][:10]).save(str(a))
    charlm.train(sets["prose"][:10]).save(str(b))
    assert sha256_file(str(a)) == sha256_file(str(b))
    assert not np.array_equal(charlm.CharLM.load(str(a)).perplexity(sets["sms_spam"][:3]),
                              charlm.CharLM.load(MODEL).perplexity(sets["sms_spam"][:3]))


def test_stage_pickles_and_buckets(sets):
    st = Perplexity(Perplexity.Params())
    st2 = pickle.loads(pickle.dumps(st))
    st2.setup()  # as the engine does on each worker
    texts = sets["prose"][:10] + sets["sms_spam"][:10]
    batch = pa.RecordBatch.from_pydict({"id": [str(i) for i in range(20)], "text": texts})
    s = st2.score(batch)
    assert not hasattr(st, "_score")  # the original was never set up: only params travelled
    ppl, buckets = s["ppl"].to_numpy(), s["bucket"].to_pylist()
    cuts = json.load(open(MODEL + ".json"))["buckets"]["cutoffs"]
    assert all(b == ("head" if p <= cuts[0] else "tail" if p > cuts[1] else "middle") for p, b in zip(ppl, buckets))
    print("buckets prose", buckets[:10], "sms spam", buckets[10:])
    assert buckets[:10].count("head") >= 8 and buckets[:10].count("tail") == 0
    assert buckets[10:].count("tail") >= 3 and buckets[10:].count("head") <= 5


def test_pipeline_scores_keeps_all_by_default_and_hashes_model(tmp_path, sets):
    src = tmp_path / "in.jsonl"
    texts = sets["prose"][:8] + sets["sms_spam"][:30]
    src.write_text("".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in texts), encoding="utf-8")
    cfg = write_config(tmp_path, [src], [{"use": "perplexity"}])
    assert run(cfg) == 0
    out = tmp_path / "out"
    kept = table(out, "kept")
    assert kept.num_rows == len(texts)
    assert set(kept.column("perplexity__bucket").to_pylist()) <= {"head", "middle", "tail"}
    m = manifest(out)
    assert m["rules"]["perplexity:char_lm_zh.npz"] == sha256_file(MODEL)
    assert m["rules"]["perplexity:char_lm_zh.npz.json"] == sha256_file(MODEL + ".json")
    assert_audit_ok(out)

    cfg2 = write_config(tmp_path, [src], [{"use": "perplexity", "with": {"drop_tail": True}}], out="out2", name="c2.yaml")
    assert run(cfg2, "--workers", "2") == 0
    out2 = tmp_path / "out2"
    rej = table(out2, "rejects")
    tails = sum(b == "tail" for b in kept.column("perplexity__bucket").to_pylist())
    assert rej.num_rows == tails > 0 and set(rej.column("reason").to_pylist()) == {"perplexity:tail"}
    assert table(out2, "kept").num_rows == len(texts) - tails
    # max_ppl drops exactly the documents above it.
    thr = float(np.median(kept.column("perplexity__ppl").to_numpy()))
    cfg3 = write_config(tmp_path, [src], [{"use": "perplexity", "with": {"max_ppl": thr}}], out="out3", name="c3.yaml")
    assert run(cfg3) == 0
    want = int((kept.column("perplexity__ppl").to_numpy() > thr).sum())
    assert table(tmp_path / "out3", "rejects").num_rows == want > 0
    assert_audit_ok(out2)


def test_neural_backend_needs_a_run(tmp_path):
    from corpusforge.errors import CorpusforgeError

    with pytest.raises(CorpusforgeError, match="missing_model"):
        Perplexity(Perplexity.Params(backend="neural", model=str(tmp_path))).files()
