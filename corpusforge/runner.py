"""Engine-neutral run orchestration: plan the input, guard resume, aggregate ledgers, write the manifest."""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field

import pyarrow as pa

import corpusforge
from corpusforge import faults, ledger
from corpusforge.config import Config, InputConfig
from corpusforge.errors import CorpusforgeError, QuarantineLimitError
from corpusforge.io.inputs import Part, expand_inputs, plan_parts
from corpusforge.io.readers import ReadOptions
from corpusforge.io import fs, outputs, overlap, store
from corpusforge.io.writers import TMP_MARK, write_json
from corpusforge.pipeline import output_schemas
from corpusforge.rules_files import sha256_file
from corpusforge.schema import DOC_SCHEMA, INGEST
from corpusforge.stage import GlobalStage, Stage

OUTPUT_DIRS = ("kept", "rejects", "quarantine")


@dataclass
class Job:
    """One part plus how to read it; picklable, shipped to workers."""

    part: Part
    read: ReadOptions


@dataclass
class Plan:
    config: Config
    stages: list[Stage]
    schemas: list[pa.Schema]
    jobs: list[Job]
    inputs: list[dict]
    rule_hashes: dict[str, str]
    out: str
    fixes: dict[str, int]  # plan-time fixes (duplicate input paths), counted in the ingest ledger
    kind: str = "run"  # the output marker's command kind (outputs.claim): run, or dedup for the shortcut
    scopes: dict[str, tuple[str, ...]] = field(default_factory=dict)  # stage → the only sources it changes or drops

    @property
    def kept_schema(self) -> pa.Schema:
        return self.schemas[-1] if self.schemas else DOC_SCHEMA


@dataclass
class Phase:
    """Per-row stages run part by part after an optional global stage (whose decisions are applied first).
    Only the last phase writes OUT/kept|rejects|quarantine; earlier ones feed the next global stage."""

    global_stage: GlobalStage | None
    stages: list[Stage]
    schemas: list[pa.Schema]
    out_schema: pa.Schema
    last: bool


def phases(plan: Plan) -> list[Phase]:
    out: list[Phase] = []
    g, start = None, 0
    for i, s in enumerate([*plan.stages, None]):
        if s is None or isinstance(s, GlobalStage):
            schema = plan.schemas[i - 1] if i > 0 else DOC_SCHEMA
            out.append(Phase(g, plan.stages[start:i], plan.schemas[start:i], schema, s is None))
            g, start = s, i + 1
    return out


def read_options(ic: InputConfig, batch_rows: int) -> ReadOptions:
    return ReadOptions(
        format=ic.format, text_field=ic.text_field, source_field=ic.source_field, source=ic.source,
        encoding=ic.encoding, batch_rows=batch_rows, max_record_bytes=int(ic.max_record_mb * 2**20),
        max_decompressed_bytes=int(ic.max_decompressed_gb * 2**30), max_ratio=ic.max_ratio,
        salvage_truncated=ic.salvage_truncated, extractor=ic.extractor,
    )


def make_plan(cfg: Config, kind: str = "run") -> Plan:
    stages = cfg.build_stages()
    sources = [ic.source for ic in cfg.input]
    if len(set(sources)) != len(sources):
        raise CorpusforgeError("bad_config", "each input block needs a distinct `source` name")
    out = cfg.output_dir()
    fs.configure(cfg.storage.as_options())
    overlap.check_no_overlap(out, [fs.under(cfg.base_dir, p) for ic in cfg.input for p in ic.paths], cfg.config_path)
    jobs, inputs, dups = [], [], 0
    for ic in cfg.input:
        found = expand_inputs(ic.paths, cfg.base_dir, ic.root, ic.format)
        overlap.check_files_outside(out, [f.path for f in found.files])
        dups += found.duplicates
        opts = read_options(ic, cfg.limits.batch_rows)
        for p in plan_parts(found.files, ic.format, int(ic.split_mb * 2**20)):
            jobs.append(Job(Part(len(jobs), p.file, p.start, p.end, p.first_line, p.sha256), opts))
        inputs += [{"source": ic.source, "path": f.rel, "size": f.size, "sha256": f.sha256} for f in found.files]
    rule_hashes = {}
    for s in stages:
        for f in s.files():
            rule_hashes[f"{s.name}:{os.path.basename(f)}"] = sha256_file(f)
    return Plan(cfg, stages, output_schemas(stages, DOC_SCHEMA), jobs, inputs, rule_hashes, out,
                {"duplicate_input_path": dups} if dups else {}, kind, cfg.stage_sources())


def resolved_config(cfg: Config) -> dict:
    """The config as it ran, minus what must not change results (worker count, scratch location, storage
    settings: these may hold credentials, which never reach a manifest)."""
    d = cfg.model_dump(mode="json", by_alias=True)
    d["engine"].pop("workers", None)
    d["run"].pop("scratch", None)
    d.pop("storage", None)
    return d


def resume_key(plan: Plan) -> dict:
    return {
        "config": resolved_config(plan.config),
        "inputs": plan.inputs,
        "rules": plan.rule_hashes,
        "version": corpusforge.__version__,
        "parts": [[j.part.file.rel, j.part.start, j.part.end] for j in plan.jobs],
    }


def part_name(i: int) -> str:
    return f"part-{i:05d}"


def prepare_output(plan: Plan, resume: bool) -> set[int]:
    """Inside outputs.claim (OUT is ours and locked): validates a resumed OUT, writes its state, returns
    the indices of parts already committed."""
    out = plan.out
    state_path = fs.join(out, "_state.json")
    key = resume_key(plan)
    if resume and not store.exists(state_path):
        if not _only_temp_files(out):
            raise CorpusforgeError("resume_mismatch", f"{out} holds no corpusforge run state (_state.json)")
        outputs.empty(out)  # a run killed before it wrote its state: nothing to keep
    elif resume:
        old = store.read_json(state_path)
        changed = [k for k in key if old.get(k) != key[k]]
        if changed:
            raise CorpusforgeError("resume_mismatch", f"{out} was started with a different {', '.join(changed)}; "
                                   "rerun without --resume into a new output (or --overwrite)")
    write_json(state_path, key)  # before anything else lands in OUT, so a resumable OUT always has its state
    for d in (*OUTPUT_DIRS, "_parts"):
        store.makedirs(fs.join(out, d))
    for name in store.listdir(out):  # temp files of OUT's own (the state, the manifest)
        if name.startswith(TMP_MARK) and store.isfile(fs.join(out, name)):
            store.delete(fs.join(out, name))
    return sweep_uncommitted(out, fs.join(out, "_parts"), [fs.join(out, d) for d in OUTPUT_DIRS], len(plan.jobs))


def _only_temp_files(out: str) -> bool:
    """Whether OUT holds nothing but empty folders, its marker and lock, and corpusforge temp files."""
    ours = (outputs.MARKER, outputs.LOCK)
    return all(rel.rsplit("/", 1)[-1].startswith(TMP_MARK) or rel in ours for rel in store.files_below(out))


def sweep_uncommitted(out: str, marker_dir: str, data_dirs: list[str], nparts: int) -> set[int]:
    """The parts whose marker in marker_dir is intact; deletes torn or stale markers, temp files and every
    file in data_dirs (and marker_dir) that no intact marker lists. The one sweep of final and staged parts."""
    done, listed = set(), set()
    for name in sorted(store.listdir(marker_dir)):
        if name.startswith(TMP_MARK) or not name.endswith(".json"):
            continue  # not a marker: kept below only if a marker lists it
        path = fs.join(marker_dir, name)
        try:
            rec = store.read_json(path)
        except (OSError, ValueError):
            store.delete(path)  # torn marker: the part reruns
            continue
        if not isinstance(rec, dict) or rec.get("part", nparts) >= nparts or not files_intact(out, rec):
            store.delete(path)
            continue
        done.add(rec["part"])
        listed.update(fs.join(out, fi["path"]) for fi in rec["files"])
        listed.add(path)
    for d in dict.fromkeys([*data_dirs, marker_dir]):
        for name in store.listdir(d):
            if fs.join(d, name) not in listed:
                store.delete(fs.join(d, name))
    return done


def files_intact(out: str, rec: dict) -> bool:
    """Whether every file a committed marker lists still has the sha256 recorded at commit: resume reruns
    a part whose output was changed, truncated or deleted since, rather than trusting its name."""
    for fi in rec.get("files", []):
        path = fs.join(out, fi["path"])
        if not store.isfile(path):
            return False
        if sha256_file(path) != fi["sha256"]:
            print(f"corpusforge: {fi['path']} changed since part {rec.get('part')} was committed (sha256); "
                  "the part reruns", file=sys.stderr)
            return False
    return True


def load_part_records(out: str) -> list[dict]:
    parts_dir = fs.join(out, "_parts")
    recs = [store.read_json(fs.join(parts_dir, name)) for name in sorted(store.listdir(parts_dir))
            if name.endswith(".json") and not name.startswith(TMP_MARK)]
    return sorted(recs, key=lambda r: r["part"])


def aggregate(plan: Plan, recs: list[dict]) -> dict:
    ingest = ledger.new_counts()
    ingest["fixes"] = Counter(plan.fixes)
    stages = {s.name: ledger.new_counts() for s in plan.stages}
    for r in recs:
        ledger.merge(ingest, ledger.from_json(r["counts"][INGEST]))
        for s in plan.stages:
            if s.name in r["counts"]:
                ledger.merge(stages[s.name], ledger.from_json(r["counts"][s.name]))
    for s in plan.stages:
        if pf := s.plan_fixes():
            stages[s.name].setdefault("fixes", Counter()).update(pf)
    return {INGEST: ingest, **stages}


def finish(plan: Plan, engine: str, started: float, workers: int, stage_seconds: dict | None = None) -> dict:
    """Writes manifest.json (deterministic) and run_info.json (timings); enforces the quarantine limit."""
    recs = load_part_records(plan.out)
    if len(recs) != len(plan.jobs):
        raise CorpusforgeError("incomplete_run", f"{len(recs)} of {len(plan.jobs)} parts committed")
    counts = aggregate(plan, recs)
    total_q = sum(sum(c["quarantined"].values()) for c in counts.values())
    records = counts[INGEST]["in"]
    hints = [h for r in recs for h in r.get("hints", [])]
    frac = total_q / records if records else 0.0
    limit = plan.config.limits.max_quarantine_fraction
    status = "ok" if frac <= limit else "quarantine_limit_exceeded"
    manifest = {
        "corpusforge_version": corpusforge.__version__,
        "pyarrow_version": pa.__version__,
        "engine": engine,
        "status": status,
        "config": resolved_config(plan.config),
        "rules": plan.rule_hashes,
        "inputs": plan.inputs,
        "stages": [{"name": INGEST, "key": INGEST, **ledger.to_json(counts[INGEST])}]
        + [{"name": s.name, "key": s.key, **ledger.to_json(counts[s.name])} for s in plan.stages],
        "files": [fi for r in recs for fi in r["files"]],
        "totals": {"records": records, "kept": sum(fi["rows"] for r in recs for fi in r["files"] if fi["kind"] == "kept"),
                   "quarantined": total_q},
        "hints": hints,
    }
    faults.point("manifest:before_write")
    write_json(fs.join(plan.out, "manifest.json"), manifest)
    write_json(fs.join(plan.out, "run_info.json"),
               {"finished_unix": time.time(), "seconds": round(time.time() - started, 3), "workers": workers, "engine": engine,
                "stage_seconds": {k: round(v, 3) for k, v in (stage_seconds or {}).items()}})
    if status != "ok":
        hint = f" Hints: {'; '.join(hints[:3])}" if hints else ""
        raise QuarantineLimitError(
            "quarantine_limit",
            f"{total_q} of {records} records quarantined ({frac:.2%} > limits.max_quarantine_fraction {limit:.2%}); "
            f"see {plan.out}/quarantine/.{hint}",
        )
    return manifest


def file_entry(out: str, path: str, kind: str, rows: int, sha256: str) -> dict:
    """A committed file as a marker lists it: its path relative to OUT ('/'-separated), rows and sha256."""
    rel = path[len(out):].lstrip("/") if fs.is_remote(out) else os.path.relpath(path, out).replace(os.sep, "/")
    return {"path": rel, "kind": kind, "rows": rows, "sha256": sha256}


def stable_hash(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()
