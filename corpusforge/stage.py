"""The stage API. A stage holds only its validated parameters, maps pyarrow RecordBatches, never
imports an engine, and loads heavy resources in setup(), once per worker process."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict

from corpusforge.errors import CorpusforgeError
from corpusforge.schema import score_column


class Params(BaseModel):
    """Base of every stage's parameter model: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass
class Verdict:
    keep: np.ndarray  # bool, one per row
    reason: list[str | None]  # "<check>" for dropped rows, None for kept ones


class Stage:
    name: ClassVar[str]
    version: ClassVar[int] = 1
    Params: ClassVar[type[Params]] = Params

    def __init__(self, params: Params):
        self.params = params

    @property
    def key(self) -> str:
        return f"{self.name}@{self.version}"

    def files(self) -> list[str]:
        """Rule/model files this stage reads: sha256-hashed into the manifest."""
        return []

    def setup(self) -> None:
        """Load rules/models. Called once per worker before the first batch."""

    def __getstate__(self):
        # Only the configuration travels to workers/executors; resources (automata, converters, models)
        # are rebuilt by setup() there, and some of them cannot be pickled.
        return {k: v for k, v in self.__dict__.items() if k == "params"}

    def output_schema(self, schema: pa.Schema) -> pa.Schema:
        return schema

    def fix_counts(self, batch: pa.RecordBatch) -> dict[str, int]:
        """Counters for the ledger's `fixes` of this stage, read off the batch it just mapped or scored
        (before a filter drops rows): what a map stage replaced, what an index found."""
        return {}

    def plan_fixes(self) -> dict[str, int]:
        """Counters the configuration alone decides, added once per run to the stage's `fixes` in the manifest
        (e.g. evaluation items too short for decontaminate to check)."""
        return {}


class MapStage(Stage):
    """One row in, one row out (may add columns)."""

    def map(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        raise NotImplementedError


class FilterStage(Stage):
    """score() writes `<stage>__<score>` columns; decide() turns them into keep + one reason per check."""

    scores: ClassVar[dict[str, pa.DataType]] = {}
    # reasons decided by rule lists (lexicons, keyword lists): guarded by limits.max_rule_drop_fraction
    rule_reasons: ClassVar[frozenset[str]] = frozenset()

    def score(self, batch: pa.RecordBatch) -> dict[str, pa.Array]:
        raise NotImplementedError

    def decide(self, scores: dict[str, np.ndarray]) -> Verdict:
        raise NotImplementedError

    def output_schema(self, schema: pa.Schema) -> pa.Schema:
        for s, t in self.scores.items():
            schema = schema.append(pa.field(score_column(self.name, s), t))
        return schema


@dataclass
class GlobalResult:
    """What a global stage's plan returns, as dataset handles of its engine (each may be None):
    decisions — one row per removed document (schema.DECISION_SCHEMA: id, _cf_part, reason, duplicate_of,
    cluster_id); fixes — rows (schema.FIX_SCHEMA: _cf_part, fix, n) that become the stage's per-part FIX
    counters in the ledger; edits — lines to take out of kept documents (schema.EDIT_SCHEMA: id, _cf_part,
    line), applied by the stage's rewrite()."""

    decisions: Any = None
    fixes: Any = None
    edits: Any = None


class GlobalStage(Stage):
    """Needs all documents at once (dedup, sampling): runs as a plan over engine primitives.

    run(engine, docs) receives the engine's primitives (corpusforge/primitives.py: map batches,
    key + combine, join on id, connected components, IO) and a handle to the persisted documents that
    reached the stage (with their part in `_cf_part`); it returns a GlobalResult.
    The driver commits it partitioned by part and the next phase applies it part by part (see
    corpusforge/driver.py and parttask.py), so memory stays bounded.
    """

    def run(self, engine: Any, dataset: Any) -> GlobalResult:
        raise NotImplementedError

    def rewrite(self, text: str, lines: list[int]) -> str:
        """The text of a kept document without the lines the plan's edits name (stages that return edits)."""
        raise NotImplementedError(f"{self.name} returns no edits")


_REGISTRY: dict[str, dict[int, type[Stage]]] = {}


def register(cls: type[Stage]) -> type[Stage]:
    _REGISTRY.setdefault(cls.name, {})[cls.version] = cls
    return cls


def registry() -> dict[str, dict[int, type[Stage]]]:
    import corpusforge.stages  # noqa: F401  (registers the built-ins)

    return _REGISTRY


def lookup(use: str) -> type[Stage]:
    name, _, ver = use.partition("@")
    versions = registry().get(name)
    if not versions:
        known = ", ".join(sorted(registry()))
        raise CorpusforgeError("unknown_stage", f"no stage named {name!r} (registered: {known})")
    if not ver:
        return versions[max(versions)]
    if not ver.isdigit() or int(ver) not in versions:
        raise CorpusforgeError("unknown_stage", f"{name} has versions {sorted(versions)}, not {ver!r}")
    return versions[int(ver)]
