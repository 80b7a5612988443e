"""spam_fasttext: the shipped model's figures on the recipe's test splits (rows no model saw: ten genres of
real text, SMS and e-mail spam), determinism, retraining byte-identical, degenerate data, model-file checks,
the train-spam CLI. Targets of issue 19: false-positive rate <= 2 % on every genre, recall >= 0.95 on SMS
spam and >= 0.90 on e-mail spam (docs/models.md has the measured table)."""

import json
import shutil

import numpy as np
import pyarrow as pa
import pytest

from corpusforge.cli import main
from corpusforge.errors import CorpusforgeError
from corpusforge.models import recipe, spam
from corpusforge.rules_files import resolve
from corpusforge.stage import lookup
from tests.util import REPO_ROOT


@pytest.fixture(scope="module")
def rows(shared_data):
    return recipe.load(str(shared_data), str(REPO_ROOT / "data"))


@pytest.fixture(scope="module")
def test_split(rows):
    return recipe.by_genre(rows, "test")


@pytest.fixture(scope="module")
def data(rows):  # SMS training rows, for the CLI and degenerate-data tests
    t = recipe.by_genre(rows, "train")
    return {"sms_ham_train": t["sms_ham"], "sms_spam_train": t["sms_spam"]}


@pytest.fixture(scope="module")
def stage():
    cls = lookup("spam_fasttext")
    s = cls(cls.Params())
    s.setup()
    return s


def _prob(stage, texts):
    return stage.score(pa.RecordBatch.from_pydict({"text": texts}))["prob"].to_numpy()


def _flagged(stage, texts):
    v = stage.decide({"prob": _prob(stage, texts)})
    return float((~np.asarray(v.keep)).mean())


@pytest.mark.parametrize("genre", [g for g in recipe.POSITIVE_GENRES if g not in ("web_clean", "web_ok")])
def test_false_positive_rate_on_each_genre_test_split(stage, test_split, genre):
    """web_clean / web_ok (2 and 10 test rows) are too small for a 2 % bound; they are in the table."""
    texts = test_split[genre]
    rate = _flagged(stage, texts)
    print(genre, len(texts), rate)
    assert len(texts) >= 50 and rate <= 0.02


def test_recall_on_held_out_sms_and_email_spam(stage, test_split):
    sms, mail = _flagged(stage, test_split["sms_spam"]), _flagged(stage, test_split["email_spam"])
    print("recall SMS", sms, "e-mail", mail)
    assert len(test_split["sms_spam"]) == 888 and sms >= 0.95
    assert len(test_split["email_spam"]) > 300 and mail >= 0.90


def test_the_threshold_is_the_models_own_and_was_chosen_on_validation(stage):
    side = json.loads(open(resolve("models/spam_fasttext.bin") + ".json", encoding="utf-8").read())
    assert side["threshold_chosen_on"] == "validation" and stage.threshold() == side["threshold"] >= 0.5
    cls = lookup("spam_fasttext")
    assert cls(cls.Params(threshold=0.3)).threshold() == 0.3


def test_scores_deterministic_across_loads_and_batching(stage, test_split):
    texts = test_split["sms_spam"][:200] + test_split["news"][:50]
    a = _prob(stage, texts)
    cls = lookup("spam_fasttext")
    other = cls(cls.Params())
    other.setup()
    b = np.concatenate([_prob(other, texts[i:i + 7]) for i in range(0, len(texts), 7)])
    assert a.tobytes() == b.tobytes()
    v = stage.decide({"prob": a})
    assert set(r for r in v.reason if r) == {"spam"} and np.array_equal(v.keep, a < stage.threshold())


def test_training_is_reproducible_and_matches_shipped_model(rows, tmp_path):
    """scripts/train_default_models.py's recipe gives the shipped bytes again, in a process that has
    already predicted (fastText's in-process retraining could hit NaN: train() uses a fresh process)."""
    out = tmp_path / "spam.bin"
    for _ in range(2):
        spam.train(*recipe.spam_sets(rows), str(out), holdout=0.0, hyper=recipe.SPAM_HYPER)
        assert out.read_bytes() == open(resolve("models/spam_fasttext.bin"), "rb").read()
    side = json.loads((tmp_path / "spam.bin.json").read_text())
    assert side["hyperparameters"]["thread"] == 1 and side["hyperparameters"]["seed"] == 1234


def test_degenerate_data_refused(tmp_path, data):
    with pytest.raises(CorpusforgeError) as e:
        spam.train(data["sms_ham_train"][:5], data["sms_spam_train"][:5], str(tmp_path / "m.bin"))
    assert e.value.code == "degenerate_training_data"
    with pytest.raises(CorpusforgeError) as e:
        spam.train(data["sms_ham_train"][:50], data["sms_ham_train"][:50], str(tmp_path / "m.bin"))
    assert e.value.code == "degenerate_training_data"
    # fastText's own failure ("Encountered NaN" with an absurd learning rate) becomes the same one-line error
    with pytest.raises(CorpusforgeError) as e:
        spam.train(data["sms_ham_train"][:100], data["sms_spam_train"][:100], str(tmp_path / "m.bin"),
                   hyper={"lr": 1e6, "epoch": 5})
    assert e.value.code == "degenerate_training_data" and "NaN" in str(e.value)


def test_missing_or_mismatched_model_fails_before_processing(tmp_path):
    cls = lookup("spam_fasttext")
    with pytest.raises(CorpusforgeError) as e:
        cls(cls.Params(model=str(tmp_path / "nope.bin"))).files()
    assert e.value.code in ("missing_model", "missing_rule_file")
    with pytest.raises(CorpusforgeError) as e:
        cls(cls.Params(model=resolve("models/quality_lr.npy"))).setup()
    assert e.value.code == "model_mismatch"
    bad = tmp_path / "spam.bin"
    shutil.copy(resolve("models/spam_fasttext.bin"), bad)
    shutil.copy(resolve("models/spam_fasttext.bin") + ".json", str(bad) + ".json")
    with open(bad, "ab") as f:
        f.write(b"\0")
    with pytest.raises(CorpusforgeError) as e:
        cls(cls.Params(model=str(bad))).files()
    assert e.value.code == "model_mismatch"


def test_train_spam_cli(tmp_path, data, capsys):
    pos, neg = tmp_path / "ham.jsonl", tmp_path / "spam.jsonl"
    pos.write_text("".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in data["sms_ham_train"][:1500]))
    neg.write_text("".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in data["sms_spam_train"][:1500]))
    assert main(["train-spam", str(pos), str(neg), "--out", str(tmp_path / "m.bin")]) == 0
    out = capsys.readouterr().out
    f1 = float(out.split("F1 ")[1].split()[0])
    assert f1 >= 0.9
    side = json.loads((tmp_path / "m.bin.json").read_text())
    assert set(side["data_sha256"]) == {"ham.jsonl", "spam.jsonl"} and side["metrics"]["heldout"]["f1"] == f1
    tiny = tmp_path / "tiny.jsonl"
    tiny.write_text(json.dumps({"text": "你好"}) + "\n")
    assert main(["train-spam", str(tiny), str(neg), "--out", str(tmp_path / "t.bin")]) != 0
    assert "degenerate_training_data" in capsys.readouterr().err


def test_eval_model_cli_reports_per_file_and_a_threshold_for_a_target_fpr(rows, tmp_path, capsys):
    test = recipe.by_genre(rows, "test")
    files = {}
    for g in ("news", "government", "sms_spam"):
        files[g] = tmp_path / f"{g}.jsonl"
        files[g].write_text("".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in test[g]), encoding="utf-8")
    args = ["eval-model", "models/spam_fasttext.bin", "--pos", str(files["news"]), str(files["government"]),
            "--neg", str(files["sms_spam"]), "--fpr", "0.01"]
    assert main(args + ["--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    stage = lookup("spam_fasttext")(lookup("spam_fasttext").Params())
    stage.setup()
    by = {f["file"]: f for f in r["files"]}
    assert by[str(files["sms_spam"])]["flagged"] == round(_flagged(stage, test["sms_spam"]), 4) >= 0.95
    assert by[str(files["news"])]["n"] == len(test["news"]) and r["kind"] == "spam_fasttext"
    assert r["threshold"] == stage.threshold() and r["auc"] > 0.95 and 0 < r["recall"] <= 1
    good = np.concatenate([_prob(stage, test["news"]), _prob(stage, test["government"])])
    assert (good >= r["threshold_at_fpr"]).mean() <= 0.01
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "ROC AUC" in out and "at most 1.0% of good texts flagged" in out
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "好"}\n{"text": \n', encoding="utf-8")
    assert main(["eval-model", "models/spam_fasttext.bin", "--pos", str(bad)]) != 0
    err = capsys.readouterr().err
    assert f"{bad}:2: not a JSON object" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
