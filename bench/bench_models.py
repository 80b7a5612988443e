"""The shipped spam and quality models on the recipe's test split (corpusforge/models/recipe.py: ten genres
of real text, SMS and e-mail spam, junk and ordinary Common Crawl pages, user comments; rows no model was
trained or tuned on), beside the models shipped before issue 19 (bench/baselines/, measured once from commit
3ba070d, how and caveats inside). Prints the markdown table of docs/models.md; the last line is the
headline: the worst false-positive rate over the genres, old vs new.

    .venv/bin/python bench/bench_models.py [/path/to/shared/data]
"""

from __future__ import annotations

import json
import os
import sys

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, HERE)

from corpusforge.models import evaluate, recipe  # noqa: E402
from corpusforge.rules_files import resolve  # noqa: E402

MIN_ROWS = 50  # genres with fewer test rows are shown but do not make the headline


def main(shared: str) -> None:
    rows = recipe.load(shared, os.path.join(HERE, "data"))
    with open(os.path.join(HERE, "bench", "baselines", "models_before_issue19.json"), encoding="utf-8") as f:
        old = json.load(f)["test"]
    new = evaluate.genre_table(rows, resolve("models/spam_fasttext.bin"), resolve("models/quality_lr.npy"), "test")
    print(f"{len(rows)} labelled rows; test split:", sum(v["n"] for v in new["genres"].values()), "rows\n")
    print(evaluate.format_genre_table(new, old))

    def worst(t):
        return max((t["genres"][g]["spam_flagged"], g) for g in recipe.POSITIVE_GENRES
                   if new["genres"].get(g, {}).get("n", 0) >= MIN_ROWS)

    (o, og), (n, ng) = worst(old), worst(new)
    print(f"\nworst genre false-positive rate of spam_fasttext (test split): old {o:.2%} ({og}) -> new {n:.2%} ({ng}); "
          f"{o / max(n, 1e-9):.1f}x lower")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(HERE), "shared", "data"))
