"""[perplexity]: per-document perplexity plus a CCNet-style head/middle/tail bucket.

Two backends: `char_ngram` (default; the bundled Kneser-Ney character 4-gram, numpy only) for large
corpora, and `neural` (a `corpusforge train` run, torch imported lazily) for accuracy. Bucket cutoffs
are percentiles of a reference corpus stored beside the model (the char model's sidecar, or
RUN/ppl_cutoffs.json from `corpusforge eval-ppl --write-cutoffs`); both files are in files(), so the
manifest records their sha256. Default: score and bucket only, drop nothing."""

from __future__ import annotations

import json
import os
from typing import ClassVar, Literal

import numpy as np
import pyarrow as pa

from corpusforge.errors import CorpusforgeError
from corpusforge.rules_files import resolve
from corpusforge.stage import FilterStage, Params, Verdict, register

DEFAULT_MODEL = "models/char_lm_zh.npz"


@register
class Perplexity(FilterStage):
    """Per-document LM perplexity (char n-gram or a trained run) and a head/middle/tail bucket; keeps all by default."""

    name = "perplexity"
    scores: ClassVar[dict[str, pa.DataType]] = {"ppl": pa.float64(), "bucket": pa.string()}

    class Params(Params):
        backend: Literal["char_ngram", "neural"] = "char_ngram"
        model: str = DEFAULT_MODEL  # char_ngram: a .npz from scripts/train_char_lm.py; neural: a train RUN dir
        cutoffs: str | None = None  # JSON with "cutoffs": [head_max, middle_max]; default: stored with the model
        drop_tail: bool = False
        max_ppl: float | None = None  # drop documents above this perplexity
        max_chars: int = 20000  # only the first max_chars characters are scored (bounds the cost of huge pages)
        device: str = "cpu"  # neural backend


    def _cutoff_file(self) -> str:
        p = self.params
        if p.cutoffs:
            return resolve(p.cutoffs)
        if p.backend == "char_ngram":
            return resolve(p.model) + ".json"
        return os.path.join(self._run_dir(), "ppl_cutoffs.json")

    def _run_dir(self) -> str:
        if self.params.model == DEFAULT_MODEL:
            raise CorpusforgeError("bad_config", "perplexity: backend neural needs model: <a `corpusforge train` run dir>")
        d = os.path.abspath(self.params.model)
        if not os.path.isfile(os.path.join(d, "model.pt")):
            raise CorpusforgeError("missing_model", f"{d}: not a finished `corpusforge train` run (no model.pt)")
        return d

    def files(self) -> list[str]:
        if self.params.backend == "char_ngram":
            from corpusforge.models import common
            from corpusforge.train import charlm

            path = resolve(self.params.model)
            common.check_sidecar(path, charlm.KIND)
            model_files = [path, path + ".json"]
        else:
            d = self._run_dir()
            model_files = [os.path.join(d, n) for n in ("model.pt", "config.json", "tokenizer.json")]
        cut = self._cutoff_file()
        if not os.path.isfile(cut):
            raise CorpusforgeError("missing_model", f"{cut}: no bucket cutoffs (run `corpusforge eval-ppl --model RUN "
                                   "--data REFERENCE --write-cutoffs`, or set cutoffs:)")
        return model_files + ([cut] if cut not in model_files else [])

    def setup(self) -> None:
        self.files()  # fail before any batch
        with open(self._cutoff_file(), encoding="utf-8") as f:
            info = json.load(f)
        cuts = info.get("buckets", info).get("cutoffs")
        if not (isinstance(cuts, list) and len(cuts) == 2 and cuts[0] <= cuts[1]):
            raise CorpusforgeError("bad_model", f"{self._cutoff_file()}: cutoffs must be [head_max, middle_max]")
        self._cuts = [float(c) for c in cuts]
        if self.params.backend == "char_ngram":
            from corpusforge.train import charlm

            lm = charlm.CharLM.load(resolve(self.params.model))
            self._score = lambda texts: lm.perplexity(texts, self.params.max_chars)
            lm.perplexity(["预热"], self.params.max_chars)  # loads the compiled kernel and its tables (see model_filters)
        else:
            from corpusforge.train.evaluate import Run

            run = Run(self._run_dir(), device=self.params.device)
            self._score = lambda texts: run.doc_ppl([t[: self.params.max_chars] for t in texts.to_pylist()])

    def score(self, batch: pa.RecordBatch) -> dict[str, pa.Array]:
        from corpusforge.train import charlm

        ppl = np.asarray(self._score(batch.column("text")), dtype=np.float64)
        return {"ppl": pa.array(ppl, pa.float64()), "bucket": pa.array(charlm.bucket(ppl, self._cuts), pa.string())}

    def decide(self, scores: dict[str, np.ndarray]) -> Verdict:
        p = self.params
        tail = (scores["bucket"] == "tail") if p.drop_tail else np.zeros(len(scores["ppl"]), bool)
        high = scores["ppl"] > p.max_ppl if p.max_ppl is not None else np.zeros(len(scores["ppl"]), bool)
        reason = ["tail" if t else "max_ppl" if h else None for t, h in zip(tail, high)]
        return Verdict(keep=~(tail | high), reason=reason)
