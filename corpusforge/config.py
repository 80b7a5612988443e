"""Typed run configuration: one YAML file, unknown keys are errors naming the file and the key."""

from __future__ import annotations

import os
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from corpusforge.yamlfile import format_error, load_mapping
from corpusforge.errors import CorpusforgeError
from corpusforge.io import fs
from corpusforge.stage import Stage, lookup


DEFAULT_WORKERS = 2  # every engine and the demo: a pool of two (results never depend on it)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RunConfig(_Strict):
    name: str = "run"
    output: str = "out"
    seed: int = 0
    # where a distributed engine (Spark) puts global-stage intermediates: a URI or cluster path every
    # executor reaches (default: inside the output); never changes results, so not in the manifest
    scratch: str | None = None


class InputConfig(_Strict):
    format: Literal["jsonl", "parquet", "txt", "html", "warc"] = "jsonl"
    extractor: Literal["trafilatura", "main", "page"] = "trafilatura"  # html/warc: see corpusforge/io/html_extract.py
    paths: list[str]
    source: str = "default"  # source name for records without a source_field
    root: str | None = None  # ids hash paths relative to this (default: common parent of the files)
    text_field: str = "text"
    source_field: str | None = None
    encoding: str = "utf-8"
    max_record_mb: float = Field(64, gt=0)
    max_decompressed_gb: float = Field(64, gt=0)
    max_ratio: float = Field(200, gt=1)
    split_mb: float = Field(32, gt=0)  # plain JSONL files larger than this are split into parts
    salvage_truncated: bool = False

    @field_validator("paths", mode="before")
    @classmethod
    def _one_or_many(cls, v):
        return [v] if isinstance(v, str) else v


class StageConfig(_Strict):
    use: str
    with_: dict[str, Any] = Field(default_factory=dict, alias="with")
    # the stage changes or drops only documents of these sources (PanGu-α Table 2 scopes its steps by
    # source): a map stage leaves the others as they are, a filter scores them and lets them pass, a
    # global stage (dedup) does not see them
    sources: list[str] | None = None


class EngineConfig(_Strict):
    kind: Literal["local", "spark", "beam"] = "local"
    workers: int = Field(DEFAULT_WORKERS, ge=1)
    options: dict[str, Any] = Field(default_factory=dict)  # engine-specific (Spark conf, Beam options)


class StorageConfig(_Strict):
    """Object-store settings on top of each store's standard credential chain (never written to a manifest)."""

    endpoint: str | None = None  # e.g. http://127.0.0.1:9000 for MinIO or a test server
    region: str | None = None
    anonymous: bool = False
    options: dict[str, Any] = Field(default_factory=dict)  # more keys for the store (access_key, max_attempts...)

    def as_options(self) -> dict[str, Any]:
        return {**self.options, **{k: v for k, v in (("endpoint", self.endpoint), ("region", self.region),
                                                      ("anonymous", self.anonymous)) if v}}


class LimitsConfig(_Strict):
    max_quarantine_fraction: float = Field(0.01, ge=0, le=1)
    batch_rows: int = Field(8192, ge=1)  # rows per Arrow batch: per-batch costs (regex compiles, kernel calls) amortize; batch_bytes still bounds it
    # RELIABILITY #30: one rule-list reason (a lexicon term, an ad list) dropping more than this share of
    # one input part is almost certainly a bad rule: the run stops. null disables the guard.
    max_rule_drop_fraction: float | None = Field(0.5, gt=0, le=1)
    rule_guard_min_docs: int = Field(200, ge=1)  # parts with fewer documents are not judged


class Config(_Strict):
    run: RunConfig = Field(default_factory=RunConfig)
    input: list[InputConfig]
    stages: list[StageConfig] = Field(default_factory=list)
    engine: EngineConfig = Field(default_factory=EngineConfig)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    base_dir: str = Field(".", exclude=True)  # directory of the config file: relative paths start here
    config_path: str | None = Field(None, exclude=True)  # the config file itself (it must not lie in the output)
    _stages: list[Stage] | None = PrivateAttr(None)

    @field_validator("input", mode="before")
    @classmethod
    def _input_list(cls, v):
        return [v] if isinstance(v, dict) else v

    def output_dir(self) -> str:
        out = self.run.output
        return out if os.path.isabs(out) or fs.is_remote(out) else os.path.join(self.base_dir, out)

    def build_stages(self) -> list[Stage]:
        """The stages, built and validated once (load_config builds them; the runner reuses them)."""
        if self._stages is None:
            self._stages = self._build_stages()
        return self._stages

    def stage_sources(self) -> dict[str, tuple[str, ...]]:
        """Stage name → the only sources it may change or drop (the stages' `sources:`)."""
        return {lookup(sc.use).name: tuple(sc.sources) for sc in self.stages if sc.sources is not None}

    def _build_stages(self) -> list[Stage]:
        stages, names = [], set()
        for i, sc in enumerate(self.stages):
            cls = lookup(sc.use)
            try:
                params = cls.Params(**sc.with_)
            except ValidationError as e:
                raise CorpusforgeError("bad_config", format_error(e, f"stages.{i}.with")) from None
            if cls.name in names:
                raise CorpusforgeError("bad_config", f"stages.{i}: stage {cls.name!r} appears twice")
            names.add(cls.name)
            stage = cls(params)
            if sc.sources is not None:
                known = {ic.source for ic in self.input}
                if set(sc.sources) - known:
                    raise CorpusforgeError("bad_config", f"stages.{i}.sources: {sorted(set(sc.sources) - known)} "
                                           f"are not input sources ({sorted(known)})")
            stages.append(stage)
        return stages


_BOUNDS = {"greater_than_equal": ("ge", ">="), "greater_than": ("gt", ">"), "less_than_equal": ("le", "<="),
           "less_than": ("lt", "<")}


def override(model: BaseModel, flag: str, **values) -> BaseModel:
    """`model` with a command-line flag's values (None = not given) validated by the same pydantic model as
    the config file's, so a flag can never set what the file could not: ERROR bad_argument naming the flag."""
    values = {k: v for k, v in values.items() if v is not None}
    if not values:
        return model
    try:
        kept = {n: getattr(model, n) for n, f in type(model).model_fields.items() if f.exclude}  # base_dir and the like
        return type(model).model_validate({**model.model_dump(by_alias=True), **kept, **values})
    except ValidationError as e:
        err = e.errors()[0]
        key, op = _BOUNDS.get(err["type"], (None, None))
        why = f"must be {op} {err['ctx'][key]}" if key else err["msg"]
        raise CorpusforgeError("bad_argument", f"{flag} {err.get('input')!r}: {why}") from None


def _apply_override(doc: dict, assignment: str) -> None:
    key, eq, raw = assignment.partition("=")
    if not eq or not key:
        raise CorpusforgeError("bad_override", f"--set {assignment!r}: expected dotted.key=value")
    try:
        value = yaml.safe_load(raw) if raw else ""  # safe_load: a YAML tag never constructs an object
    except yaml.YAMLError as e:
        raise CorpusforgeError("bad_override", f"--set {assignment!r}: not a plain YAML value "
                               f"({str(e).splitlines()[0]})") from None
    node: Any = doc
    parts = key.split(".")
    for p in parts[:-1]:
        if isinstance(node, list):
            if not p.isdigit() or int(p) >= len(node):
                raise CorpusforgeError("bad_override", f"--set {key}: no list index {p}")
            node = node[int(p)]
        else:
            node = node.setdefault(p, {})
    last = parts[-1]
    if isinstance(node, list):
        if not last.isdigit() or int(last) >= len(node):
            raise CorpusforgeError("bad_override", f"--set {key}: no list index {last}")
        node[int(last)] = value
    else:
        node[last] = value


def load_config(path: str, overrides: list[str] = ()) -> Config:
    doc = load_mapping(path, "bad_config")
    for o in overrides:
        _apply_override(doc, o)
    try:
        real = os.path.realpath(path)  # a symlinked config keeps its paths
        cfg = Config(**doc, base_dir=os.path.dirname(real), config_path=real)
    except ValidationError as e:
        raise CorpusforgeError("bad_config", f"{path}: {format_error(e)}") from None
    except TypeError as e:
        raise CorpusforgeError("bad_config", f"{path}: {e}") from None
    try:
        cfg.build_stages()
    except CorpusforgeError as e:
        raise CorpusforgeError(e.code, f"{path}: {str(e).split(': ', 1)[1]}") from None
    return cfg
