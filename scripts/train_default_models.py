"""Train the bundled default models (rules/models/) from the shared labelled data and print their
held-out figures. Deterministic: rerunning gives byte-identical model files.

    .venv/bin/python scripts/train_default_models.py [/path/to/shared/data]
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np

from corpusforge.models import quality, recipe, spam
from corpusforge.models.common import data_hashes, prf, write_sidecar

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(REPO, "rules", "models")


def evaluate_spam(path: str, d: dict) -> dict:
    m = spam.load(path)
    res = {}
    for name, ham, sp in (("sms_test", "sms_ham_eval", "sms_spam_eval"), ("trec06c_heldout", "trec_ham_eval", "trec_spam_eval")):
        p = spam.spam_prob(m, d[ham] + d[sp])
        res[name] = prf(np.array([False] * len(d[ham]) + [True] * len(d[sp])), p >= 0.5)
    res["prose_heldout_flagged"] = round(float((spam.spam_prob(m, d["prose_eval"]) >= 0.5).mean()), 4)
    res["commoncrawl_flagged"] = round(float((spam.spam_prob(m, d["cc_web"]) >= 0.5).mean()), 4)
    return res


def main(data: str) -> None:
    d = recipe.load(data)
    hashes = data_hashes([os.path.join(data, f) for f in recipe.DATA_FILES])
    os.makedirs(OUT, exist_ok=True)
    sp_path = os.path.join(OUT, "spam_fasttext.bin")
    ham, sp = recipe.spam_sets(d)
    m = spam.train(ham, sp, sp_path, info={"data_sha256": hashes, "recipe": "corpusforge.models.recipe.spam_sets"})
    ev = evaluate_spam(sp_path, d)
    info = json.load(open(sp_path + ".json", encoding="utf-8"))
    write_sidecar(sp_path, spam.KIND, {k: v for k, v in info.items() if k not in ("kind", "model_sha256")}
                  | {"evaluation": ev})
    print("spam_fasttext", json.dumps({**m, **ev}, ensure_ascii=False))
    q_path = os.path.join(OUT, "quality_lr.npy")
    hq, lq = recipe.quality_sets(d)
    mq = quality.train(hq, lq, q_path, info={"data_sha256": hashes, "recipe": "corpusforge.models.recipe.quality_sets"})
    print("quality_lr", json.dumps(mq))
    print("keep curve (alpha=9):", [(s, round(p, 4)) for s, p in quality.keep_curve(9.0)])


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(REPO), "shared", "data"))
