"""[spam_fasttext] and [quality_lr]: the PanGu-α model-filtering step (fastText spam classifier, then a
GPT-3 Appendix A style quality scorer). Models load once per worker in setup(); the model file and
its sidecar are listed in files() so the manifest hashes them, and are checked before any batch."""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
import pyarrow as pa

from corpusforge.models import common
from corpusforge.rules_files import resolve
from corpusforge.stage import FilterStage, Params, Verdict, register


def _model_files(path: str, kind: str) -> list[str]:
    p = resolve(path)
    common.check_sidecar(p, kind)  # missing / wrong kind / sha256 mismatch: fail at plan time
    return [p, p + ".json"]


# Scored once in setup(): the compiled kernels and their tables load there, so the local engine's forked
# workers inherit them instead of each building them on its first batch.
_WARM = "预热 warm-up 1"


def _ids(batch: pa.RecordBatch) -> list | None:
    """Document ids: the featurizer reuses the units of an id + text it cut for the stage before."""
    return batch.column("id").to_pylist() if "id" in batch.schema.names else None


class _ModelFilter(FilterStage):
    kind: ClassVar[str]

    def files(self) -> list[str]:
        return _model_files(self.params.model, self.kind)

    def _read_sidecar(self) -> str:
        """The model's local path; its checked sidecar goes to self._info."""
        path = resolve(self.params.model)
        self._info = common.check_sidecar(path, self.kind)
        return path

    def threshold(self) -> float:
        """The threshold in force: the stage's own, else the one the model's sidecar records."""
        if self.params.threshold is not None:
            return self.params.threshold
        if not hasattr(self, "_info"):  # asked without setup() (the report)
            self._read_sidecar()
        return common.sidecar_threshold(self._info)


@register
class SpamFastText(_ModelFilter):
    """fastText spam probability; drops documents with P(spam) >= threshold."""

    name = kind = "spam_fasttext"
    scores: ClassVar[dict[str, pa.DataType]] = {"prob": pa.float64()}

    class Params(Params):
        model: str = "models/spam_fasttext.bin"  # bundled default, or a path from `corpusforge train-spam`
        threshold: float | None = None  # P(spam) at which a document drops; default: the model's own (its sidecar's)

    def setup(self) -> None:
        from corpusforge.models import spam

        self._model = spam.load(self._read_sidecar())
        spam.spam_prob(self._model, [_WARM], common.max_units(self._info))

    def score(self, batch: pa.RecordBatch) -> dict[str, pa.Array]:
        from corpusforge.models import spam

        p = spam.spam_prob(self._model, batch.column("text"), common.max_units(self._info), _ids(batch))
        return {"prob": pa.array(p, pa.float64())}

    def decide(self, scores: dict[str, np.ndarray]) -> Verdict:
        keep = scores["prob"] < self.threshold()
        return Verdict(keep=keep, reason=[None if k else "spam" for k in keep])


@register
class QualityLR(_ModelFilter):
    """Hashed-feature logistic-regression quality score; keeps iff pareto(alpha) > 1 - score (GPT-3)."""

    name = kind = "quality_lr"
    scores: ClassVar[dict[str, pa.DataType]] = {"score": pa.float64(), "draw": pa.float64()}

    class Params(Params):
        model: str = "models/quality_lr.npy"
        mode: Literal["pareto", "threshold"] = "pareto"
        alpha: float = 9.0  # GPT-3's
        threshold: float | None = None  # mode: threshold keeps score >= threshold (default: the model's own)
        seed: int = 0  # the per-document draw is blake2b(seed, id): same on every engine and rerun

    def setup(self) -> None:
        from corpusforge.models import quality

        path = self._read_sidecar()
        self._model = quality.QualityModel(path, common.max_units(self._info))
        self._model.score([_WARM])

    def score(self, batch: pa.RecordBatch) -> dict[str, pa.Array]:
        from corpusforge.models import quality

        ids = batch.column("id").to_pylist()
        s = self._model.score(batch.column("text"), ids)
        draw = quality.pareto_draw(quality.uniform(self.params.seed, ids), self.params.alpha)
        return {"score": pa.array(s, pa.float64()), "draw": pa.array(draw, pa.float64())}

    def decide(self, scores: dict[str, np.ndarray]) -> Verdict:
        if self.params.mode == "threshold":
            keep = scores["score"] >= self.threshold()
        else:
            keep = scores["draw"] > 1.0 - scores["score"]
        return Verdict(keep=keep, reason=[None if k else "low_quality" for k in keep])
