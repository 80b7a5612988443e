"""Train the bundled char n-gram perplexity model (rules/models/char_lm_zh.npz + .json sidecar).

Trains on the shared prose (Chinese Wikipedia + Lu Xun) minus a held-out 30 % of documents chosen by
a blake2b hash of the id (the AUC test scores exactly those), and computes head/middle/tail cutoffs on
the Common Crawl sample. Deterministic: rerunning gives byte-identical files.

    .venv/bin/python scripts/train_char_lm.py [/path/to/shared/data]
"""

from __future__ import annotations

import json
import os
import sys

from corpusforge.models.common import data_hashes, is_heldout, write_sidecar
from corpusforge.train import charlm

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(REPO, "rules", "models", "char_lm_zh.npz")
ORDER, PRUNE = 4, 1


def _rows(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(ln) for ln in f if ln.strip()]


def main(data: str) -> None:
    prose = [r for f in charlm.PROSE_FILES for r in _rows(os.path.join(data, f))]
    held = [r["id"] for r in prose if is_heldout(r["id"], charlm.HOLDOUT_FRAC, charlm.HOLDOUT_SEED)]
    train = [r["text"] for r in prose if r["id"] not in set(held)]
    lm = charlm.train(train, order=ORDER, prune=PRUNE)
    lm.save(OUT)
    ref = [r["text"] for r in _rows(os.path.join(data, charlm.REFERENCE_FILE))]
    cuts = charlm.cutoffs(charlm.CharLM.load(OUT).perplexity(ref))
    files = charlm.PROSE_FILES + [charlm.REFERENCE_FILE]
    write_sidecar(OUT, charlm.KIND, {
        "order": ORDER, "prune": PRUNE, "vocab": int(lm.V), "n_train_docs": len(train),
        "n_train_chars": sum(len(t) for t in train), "heldout_ids": sorted(held),
        "holdout": {"frac": charlm.HOLDOUT_FRAC, "seed": charlm.HOLDOUT_SEED, "key": "blake2b(seed:id)"},
        "data_sha256": data_hashes([os.path.join(data, f) for f in files]),
        "buckets": {"percentiles": list(charlm.BUCKET_PERCENTILES), "cutoffs": cuts, "reference": charlm.REFERENCE_FILE,
                    "reference_docs": len(ref)},
        "recipe": "scripts/train_char_lm.py",
    })
    print(json.dumps({"model": OUT, "bytes": os.path.getsize(OUT), "train_docs": len(train), "heldout": len(held),
                      "cutoffs": cuts}, ensure_ascii=False))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(REPO), "shared", "data"))
