"""Train the bundled default models (rules/models/) by the recipe in corpusforge/models/recipe.py, choose
their thresholds on the validation split and print the test-split table. Deterministic: rerunning gives
byte-identical model files and sidecars.

    .venv/bin/python scripts/train_default_models.py [/path/to/shared/data]
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np

from corpusforge.models import common, evaluate, quality, recipe, spam

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(REPO, "rules", "models")
VALIDATION_FPR = 0.02  # the spam threshold flags at most this share of every genre's validation rows
MIN_GENRE_ROWS = 20  # genres with fewer validation rows (ChineseWebText's 10 + 10) do not set the threshold


def _pass_rule_filters(st, texts: list[str]) -> list[str]:
    """The rows pangu_rules (st, set up) keeps: in pangu.yaml the spam filter only ever sees those."""
    import pyarrow as pa

    b = pa.RecordBatch.from_pydict({"id": [str(i) for i in range(len(texts))], "text": texts, "source": [""] * len(texts)})
    keep = st.decide({k: v.to_numpy(zero_copy_only=False) for k, v in st.score(b).items()}).keep
    return [t for t, k in zip(texts, keep) if k]


def spam_threshold(rows, path: str) -> float:
    """The lowest threshold at which every genre with enough validation rows (those the rule filters keep)
    has at most VALIDATION_FPR flagged, rounded up to 0.01, and never below 0.5 (below it the model finds
    spam the likelier class)."""
    from corpusforge.stages.pangu_rules import PanguRules

    st = PanguRules(PanguRules.Params(thresholds="thresholds/pangu.yaml"))
    st.setup()
    m = spam.load(path)
    val = {g: _pass_rule_filters(st, t) for g, t in recipe.by_genre(rows, "validation").items() if g in recipe.POSITIVE_GENRES}
    need = max(evaluate.threshold_for_fpr("spam_fasttext", spam.spam_prob(m, t), VALIDATION_FPR)
               for t in val.values() if len(t) >= MIN_GENRE_ROWS)
    print(f"spam threshold the validation split allows: {need:.4f}")
    return float(min(0.99, max(0.5, np.ceil(need * 100) / 100)))


def quality_threshold(rows, path: str) -> float:
    """For `mode: threshold`: the score with the best balanced accuracy (Youden's J) on validation."""
    q = quality.QualityModel(path)
    hq, lq = recipe.quality_sets(rows, "validation")
    a, b = q.score(hq), q.score(lq)
    grid = np.round(np.arange(0.05, 0.96, 0.01), 2)
    j = [(a >= t).mean() + (b < t).mean() for t in grid]
    return float(grid[int(np.argmax(j))])


def main(shared: str) -> None:
    rows = recipe.load(shared, os.path.join(REPO, "data"))
    info = {"data_sha256": common.data_hashes(recipe.data_files(shared, os.path.join(REPO, "data"))),
            "split": {"seed": recipe.SPLIT_SEED, "shares": dict(recipe.SHARES), "by": "genre and source file, blake2b"}}
    os.makedirs(OUT, exist_ok=True)
    sp_path, q_path = os.path.join(OUT, "spam_fasttext.bin"), os.path.join(OUT, "quality_lr.npy")
    spam.train(*recipe.spam_sets(rows), sp_path, holdout=0.0, hyper=recipe.SPAM_HYPER,
               info={**info, "recipe": "corpusforge.models.recipe.spam_sets"})
    quality.train(*recipe.quality_sets(rows), q_path, holdout=0.0,
                  info={**info, "recipe": "corpusforge.models.recipe.quality_sets"})
    for path, kind, t in ((sp_path, spam.KIND, spam_threshold(rows, sp_path)),
                          (q_path, quality.KIND, quality_threshold(rows, q_path))):
        side = json.load(open(path + ".json", encoding="utf-8"))
        common.write_sidecar(path, kind, {k: v for k, v in side.items() if k not in ("kind", "model_sha256")}
                             | {"threshold": t, "threshold_chosen_on": "validation"})
    for split in ("validation", "test"):
        table = evaluate.genre_table(rows, sp_path, q_path, split)
        print(evaluate.format_genre_table(table), "\n")
    for path in (sp_path, q_path):
        side = json.load(open(path + ".json", encoding="utf-8"))
        common.write_sidecar(path, side["kind"], {k: v for k, v in side.items() if k not in ("kind", "model_sha256")}
                             | {"evaluation_test": {k: v for k, v in table.items() if k != "split"}})


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(REPO), "shared", "data"))
