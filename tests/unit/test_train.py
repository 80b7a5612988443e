"""`corpusforge train` / `eval-ppl` on shards made by `corpusforge tokenizer train` + `corpusforge sample`
from the shared prose: loss falls, resume reproduces the loss curve exactly, eval-ppl agrees on text
and shards, and the neural backend of the perplexity stage ranks prose above spam."""

import json
import shutil

import numpy as np
import pytest
import torch
import yaml

from corpusforge.cli import main
from corpusforge.errors import CorpusforgeError
from corpusforge.models.common import auc, is_heldout
from corpusforge.train import charlm
from corpusforge.train.trainer import TrainArgs, read_log, train
from tests.util import manifest, read_jsonl, run, table, torch_threads, write_config, write_jsonl



_threads = torch_threads(2)




@pytest.fixture(scope="module")
def env(tmp_path_factory, shared_data):
    d = tmp_path_factory.mktemp("train")
    prose = [r for f in charlm.PROSE_FILES for r in read_jsonl(shared_data / f)]
    train_docs = [r["text"] for r in prose if not is_heldout(r["id"], charlm.HOLDOUT_FRAC, charlm.HOLDOUT_SEED)]
    held = [r["text"] for r in prose if is_heldout(r["id"], charlm.HOLDOUT_FRAC, charlm.HOLDOUT_SEED)]
    # Lu Xun essays (many short docs) + a few wiki articles keep tokenizing and training quick.
    small = [t for t in train_docs if len(t) < 6000][:60]
    write_jsonl(d / "train.jsonl", small)
    write_jsonl(d / "held.jsonl", held[:12])
    assert main(["tokenizer", "train", str(d / "train.jsonl"), "--vocab-size", "800", "--out", str(d / "tok.json")]) == 0
    (d / "mix.yaml").write_text(yaml.safe_dump({"seed": 3, "seq_len": 64, "tokenizer": "tok.json",
                                                "sources": {"prose": {"path": "train.jsonl", "epochs": 1.0}}}))
    assert main(["sample", str(d / "mix.yaml"), "--out", str(d / "shards"), "--no-progress"]) == 0
    sms = [r["text"] for r in read_jsonl(shared_data / "spam/sms_mudou_labelled.jsonl") if r["label"] == "spam"][:40]
    return {"dir": d, "shards": d / "shards", "held": held[:12], "sms_spam": sms}


def _args(env, out, **kw):
    base = dict(data=str(env["shards"]), out=str(out), steps=30, batch_size=8, seq_len=64, lr=1e-2, seed=5,
                eval_every=10, progress=False)
    return TrainArgs(**(base | kw))


@pytest.fixture(scope="module")
def trained(env):
    out = env["dir"] / "run"
    assert main(["train", "--data", str(env["shards"]), "--out", str(out), "--steps", "60", "--seq-len", "64",
                 "--lr", "0.01", "--eval-every", "20", "--seed", "5", "--no-progress"]) == 0
    return out


def test_tiny_trains_from_sampled_shards_and_loss_falls(trained):
    log = read_log(str(trained))
    steps = [r for r in log if "loss" in r]
    evals = [r for r in log if "eval_loss" in r]
    assert [r["step"] for r in steps] == list(range(1, 61))
    assert all(r["tokens"] == r["step"] * 8 * 64 for r in steps)
    assert [r["step"] for r in evals] == [20, 40, 60]
    first, last = np.mean([r["loss"] for r in steps[:10]]), np.mean([r["loss"] for r in steps[-10:]])
    print(f"train loss {first:.3f} -> {last:.3f}; eval ppl", [round(r["eval_ppl"], 1) for r in evals])
    assert last < first - 0.4
    thirds = [np.mean([r["loss"] for r in steps[i:i + 20]]) for i in (0, 20, 40)]
    assert thirds[0] > thirds[1] > thirds[2]  # falls steadily
    assert min(r["eval_loss"] for r in evals[1:]) < evals[0]["eval_loss"]
    assert np.isclose(evals[-1]["eval_ppl"], np.exp(evals[-1]["eval_loss"]))
    cfg = json.loads((trained / "config.json").read_text())
    assert cfg["model"]["seq_len"] == 64 and cfg["model"]["vocab_size"] == 800 and cfg["data"]["val_docs"] >= 1
    assert (trained / "tokenizer.json").read_bytes() == (trained.parent / "shards" / "tokenizer.json").read_bytes()
    assert (trained / "model.pt").is_file() and (trained / "checkpoint.pt").is_file()


def test_resume_reproduces_the_uninterrupted_loss_curve(env):
    d = env["dir"]
    full = d / "full"
    train(_args(env, full))
    part = d / "part"
    r = train(_args(env, part, stop_at=10))
    assert not r["finished"] and not (part / "model.pt").exists()
    shutil.copyfile(part / "checkpoint.pt", d / "ck10.pt")
    train(_args(env, part, resume=True, stop_at=17))  # got further, then "crashed" ...
    shutil.copyfile(d / "ck10.pt", part / "checkpoint.pt")  # ... with only the step-10 checkpoint on disk
    r = train(_args(env, part, resume=True))
    assert r["finished"]
    assert read_log(str(part)) == read_log(str(full))  # every loss, lr and eval row, bit for bit
    a = torch.load(full / "model.pt", weights_only=True)
    b = torch.load(part / "model.pt", weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)
    # A different seed is a different run; resuming with changed settings is refused.
    other = d / "seed6"
    train(_args(env, other, seed=6, steps=3))
    assert read_log(str(other))[0]["loss"] != read_log(str(full))[0]["loss"]
    with pytest.raises(CorpusforgeError, match="resume_mismatch"):
        train(_args(env, part, resume=True, lr=1e-3))
    with pytest.raises(CorpusforgeError, match="output_exists"):
        train(_args(env, part))


def test_eval_ppl_text_and_shards_agree(env, trained, capsys):
    d = env["dir"]
    assert main(["eval-ppl", "--model", str(trained), "--data", str(d / "train.jsonl"), "--out", str(d / "t.json")]) == 0
    assert main(["eval-ppl", "--model", str(trained), "--data", str(env["shards"]), "--out", str(d / "s.json")]) == 0
    t, s = json.loads((d / "t.json").read_text()), json.loads((d / "s.json").read_text())
    # epochs: 1.0 put every training document in the shards once: same tokens either way.
    assert (t["tokens"], t["docs"]) == (s["tokens"], s["docs"])
    assert np.isclose(t["ppl"], s["ppl"], rtol=1e-9)
    assert main(["eval-ppl", "--model", str(trained), "--data", str(d / "held.jsonl")]) == 0
    h = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    print("held-out prose ppl", h["ppl"], "train-doc ppl", t["ppl"])
    assert h["docs"] == 12 and 1 < t["ppl"] < h["ppl"] < 800  # better than uniform over the vocabulary


def test_neural_perplexity_stage_ranks_prose_above_spam(env, trained, tmp_path):
    d = env["dir"]
    assert main(["eval-ppl", "--model", str(trained), "--data", str(d / "held.jsonl"), "--write-cutoffs"]) == 0
    src = write_jsonl(tmp_path / "mix.jsonl", env["held"] + env["sms_spam"])
    cfg = write_config(tmp_path, [src], [{"use": "perplexity", "with": {"backend": "neural", "model": str(trained)}}])
    assert run(cfg) == 0
    kept = table(tmp_path / "out", "kept").to_pylist()
    ppl = {r["text"]: r["perplexity__ppl"] for r in kept}
    pos, neg = [ppl[t] for t in env["held"]], [ppl[t] for t in env["sms_spam"]]
    a = auc(np.r_[np.ones(len(pos), bool), np.zeros(len(neg), bool)], -np.r_[pos, neg])
    print(f"neural backend AUC held-out prose vs SMS spam: {a:.4f}")
    assert a > 0.6  # a 60-step CPU model: weaker than the char n-gram backend (see docs/train.md)
    assert "perplexity:model.pt" in manifest(tmp_path / "out")["rules"]
    assert "perplexity:ppl_cutoffs.json" in manifest(tmp_path / "out")["rules"]
