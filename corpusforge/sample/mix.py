"""The mixture file (YAML): per source a path and either a weight (share of the token budget) or an
epoch count; a total token budget, seed, sequence length. Unknown keys are errors naming key and file.

Semantics (PanGu-α Table 3): a source given by `epochs` draws epochs × its tokens; the sources
given by `weight` share what is left of `total_tokens`, in proportion to their weights, which must
sum to 1. With only epoch sources the budget is their sum and `total_tokens` must be omitted."""

from __future__ import annotations

import math
import os

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from corpusforge.io import fs
from corpusforge.yamlfile import format_error, load_mapping
from corpusforge.errors import CorpusforgeError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SourceSpec(_Strict):
    path: list[str]  # a corpusforge run directory, or .parquet/.jsonl/.txt paths or globs
    weight: float | None = Field(None, gt=0, allow_inf_nan=False)
    epochs: float | None = Field(None, gt=0, allow_inf_nan=False)
    text_field: str = "text"
    source: str | None = None  # take only documents with this `source` (e.g. one source of a multi-source run)
    max_epochs: float | None = Field(None, gt=0, allow_inf_nan=False)  # a weight implying more is an error

    @field_validator("path", mode="before")
    @classmethod
    def _one_or_many(cls, v):
        return [v] if isinstance(v, str) else v

    @model_validator(mode="after")
    def _one_of(self):
        if (self.weight is None) == (self.epochs is None):
            raise ValueError("give exactly one of weight or epochs")
        return self


class Mixture(_Strict):
    seed: int = 0
    seq_len: int = Field(1024, ge=1)
    total_tokens: int | None = Field(None, gt=0)
    tokenizer: str
    shard_tokens: int = Field(1 << 28, ge=1)  # a shard is cut at the first document boundary past this
    sources: dict[str, SourceSpec] = Field(min_length=1)
    base_dir: str = Field(".", exclude=True)

    @field_validator("sources")
    @classmethod
    def _names(cls, v):
        for name in v:
            if not name or not all(c.isalnum() or c in "._-" for c in name):
                raise ValueError(f"source name {name!r}: use letters, digits, '.', '_' or '-'")
        return v

    @model_validator(mode="after")
    def _budget(self):
        weights = {n: s.weight for n, s in self.sources.items() if s.weight is not None}
        if weights:
            total = math.fsum(weights.values())
            if abs(total - 1.0) > 1e-6:
                listed = ", ".join(f"{n}={w:g}" for n, w in weights.items())
                raise ValueError(f"weights sum to {total:.9g}, not 1 ({listed})")
            if self.total_tokens is None:
                raise ValueError("total_tokens is required when any source has a weight")
        elif self.total_tokens is not None:
            raise ValueError("total_tokens is set but every source is given by epochs (the budget is their sum); "
                             "remove it or give some sources a weight")
        return self

    def resolve(self, path: str) -> str:
        return fs.under(self.base_dir, path)


def load_mixture(path: str) -> Mixture:
    doc = load_mapping(path, "bad_mixture")
    if "base_dir" in doc:
        raise CorpusforgeError("bad_mixture", f"{path}: base_dir: Extra inputs are not permitted")
    try:
        return Mixture(**doc, base_dir=os.path.dirname(os.path.abspath(path)))
    except ValidationError as e:
        raise CorpusforgeError("bad_mixture", f"{path}: {format_error(e)}") from None


def targets(mix: Mixture, available: dict[str, int], where: str = "mixture") -> tuple[dict[str, int], dict[str, float], int]:
    """Per-source token targets, requested epochs, and the budget, from the counted tokens.

    Errors name the source: no tokens at all, or epoch sources that need more than the budget."""
    empty = [n for n in mix.sources if available.get(n, 0) == 0]
    if empty:
        raise CorpusforgeError("bad_mixture", f"{where}: source(s) {', '.join(empty)} have no tokens after reading")
    want: dict[str, int] = {}
    for n, s in mix.sources.items():
        if s.epochs is not None:
            want[n] = round(s.epochs * available[n])
    fixed = sum(want.values())
    budget = mix.total_tokens if mix.total_tokens is not None else fixed
    rest = budget - fixed
    weighted = {n: s.weight for n, s in mix.sources.items() if s.weight is not None}
    if weighted and rest <= 0:
        need = ", ".join(f"{n}: {mix.sources[n].epochs:g} x {available[n]} = {want[n]}" for n in want)
        raise CorpusforgeError("bad_mixture", f"{where}: the epoch sources need {fixed} tokens ({need}), leaving "
                               f"nothing of total_tokens={budget} for the weighted sources {', '.join(weighted)}")
    # Largest remainder, so the weighted targets add up to the budget exactly.
    raw = {n: w * rest for n, w in weighted.items()}
    floor = {n: math.floor(v) for n, v in raw.items()}
    left = rest - sum(floor.values())
    for n in sorted(raw, key=lambda n: (-(raw[n] - floor[n]), n))[:left]:
        floor[n] += 1
    want.update(floor)
    for n in weighted:
        cap = mix.sources[n].max_epochs
        if cap is not None and want[n] > cap * available[n]:
            raise CorpusforgeError("bad_mixture", f"{where}: source {n} has {available[n]} tokens; weight "
                                   f"{weighted[n]:g} of {rest} needs {want[n] / available[n]:.3g} epochs > max_epochs {cap:g}")
    epochs = {n: want[n] / available[n] for n in mix.sources}
    return {n: want[n] for n in mix.sources}, epochs, budget
