"""The unit of work every engine runs: one (phase, part) task, from its input to a committed marker.

A task opens its input (phase 0: the input part; later phases: the part the previous phase staged and the
global stage's decisions for it), applies the phase's stages batch by batch, gathers its quarantine and
commits: every file written under its final name (temp file + rename), then the part's marker listing
each file's rows and sha256. A task that fails aborts its temp files; a retried task rewrites the same
bytes, so the commit is idempotent on every engine."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from corpusforge import faults, ledger, procs
from corpusforge.errors import CorpusforgeError
from corpusforge.io import fs, store
from corpusforge.io.readers import quarantine_table, read_part
from corpusforge.io.writers import ParquetSink, write_json
from corpusforge.pipeline import apply_stages, check_rule_guard, reject_rows
from corpusforge.runner import Job, Phase, Plan, file_entry, part_name, phases
from corpusforge.schema import DECISION_SCHEMA, EDIT_SCHEMA, INGEST, PART_COL, QUARANTINE_SCHEMA, REJECT_SCHEMA
from corpusforge.stage import GlobalStage

GLOBAL_DIR = "_global"
CLUSTER_META = "_cf_dedup_cluster"  # meta key on dedup rejects: the cluster id

_worker: dict = {}  # this process's plan, phases and progress queue


def staged_dir(out: str, k: int) -> str:
    """Where phase k commits the parts a global stage reads."""
    return fs.join(out, GLOBAL_DIR, f"s{k}")


def decided_dir(out: str, k: int) -> str:
    """Where global stage k commits its decisions, partitioned by part."""
    return fs.join(out, GLOBAL_DIR, f"g{k}")


def marker_path(plan: Plan, k: int, job: Job) -> str:
    name = f"{part_name(job.part.index)}.json"
    return fs.join(plan.out, "_parts", name) if phases(plan)[k].last else fs.join(staged_dir(plan.out, k), name)


# --------------------------------------------------------------------------------- worker set-up


def init_worker(plan: Plan, progress) -> None:
    """Every per-row stage's setup(), once per process and plan: stages rely on it (no self-setup). A process
    forked from one that set the plan up inherits the set-up stages (models, automata, compiled kernels)
    and only takes its progress queue: the local engine sets up once in the driver, not per worker and
    phase."""
    if _worker.get("plan") is not plan:
        fs.configure(plan.config.storage.as_options())
        for s in plan.stages:
            if not isinstance(s, GlobalStage):
                s.setup()
        _worker.update(plan=plan, phases=phases(plan))
    _worker["progress"] = progress


def init_pool_worker(plan: Plan, progress) -> None:
    procs.lean()  # the pool's processes are corpusforge's alone
    init_worker(plan, progress)


def setup_worker(plan: Plan, plan_key: str) -> None:
    """Set-up on a cluster worker: once per process and plan."""
    if _worker.get("key") != plan_key:
        init_worker(plan, None)
        _worker["key"] = plan_key


def run_task(plan: Plan, plan_key: str, task: tuple[int, Job]) -> dict:
    """One (phase, part) on a cluster worker."""
    setup_worker(plan, plan_key)
    return run_part(task)


# ------------------------------------------------------------------------------------------- task


@dataclass
class _Task:
    plan: Plan
    ph: Phase
    k: int
    job: Job
    sinks: dict = field(default_factory=dict)
    counts: dict = field(default_factory=dict)   # stage → counts of this task
    seconds: dict = field(default_factory=dict)  # stage → wall time, for run_info.json (never committed: timings vary)
    q_rows: list = field(default_factory=list)
    prev: dict | None = None  # the previous phase's marker of this part
    decisions: "_Decided | None" = None
    reader: object = None
    carried: list = field(default_factory=list)  # earlier phases' rejects files, listed on until the last phase copies them

    @property
    def name(self) -> str:
        return part_name(self.job.part.index)

    def path(self, kind: str) -> str:
        """Final path of one of the task's files (kept, rejects, quarantine)."""
        out, name = self.plan.out, self.name
        if self.ph.last:
            return fs.join(out, kind, f"{name}.parquet")
        return fs.join(staged_dir(out, self.k), f"{name}.parquet" if kind == "kept" else f"{kind}-{name}.parquet")


def run_part(task: tuple[int, Job]) -> dict:
    k, job = task
    plan: Plan = _worker["plan"]
    t = _Task(plan, _worker["phases"][k], k, job)
    t_part = time.perf_counter()
    kept_schema = plan.kept_schema if t.ph.last else t.ph.out_schema.append(pa.field(PART_COL, pa.int32()))
    # a staged part is read once by the next phase and deleted with the run's _global folder: uncompressed on
    # local disk (zstd was ~0.6 s of CPU per 100 MB of input here), zstd where bytes cross a network
    codec = "zstd" if t.ph.last or fs.is_remote(plan.out) else "none"
    t.sinks = {"kept": ParquetSink(t.path("kept"), kept_schema, codec),
               "rejects": ParquetSink(t.path("rejects"), REJECT_SCHEMA, codec)}
    try:
        _apply(t, _open_input(t))
        all_counts, hints, q_prev = _ledger(t)
        _quarantine(t, q_prev)
        rec = _commit(t, all_counts, hints)
        t.seconds["read+write"] = time.perf_counter() - t_part - sum(t.seconds.values())  # ingest, decisions, Parquet
        return {**rec, "seconds": t.seconds}
    except BaseException:
        for s in t.sinks.values():
            s.abort()
        raise


def _open_input(t: _Task):
    """The task's batches: the input part (phase 0), or the previous phase's staged part, whose global-stage
    decisions are loaded. Earlier phases' rejects are copied into the part's rejects file once, by the last
    phase (each phase before it lists them on in its marker): rows are rewritten once, not once per phase."""
    if t.k == 0:
        batches, t.reader = read_part(t.job.part, t.job.read)
        return batches
    out, prev_dir = t.plan.out, staged_dir(t.plan.out, t.k - 1)
    t.prev = store.read_json(fs.join(prev_dir, f"{t.name}.json"))
    earlier = [p for p in t.prev["files"] if p["kind"] == "rejects"]
    if not t.ph.last:
        t.carried = earlier
    for p in earlier if t.ph.last else ():
        t.sinks["rejects"].write(pq.read_table(store.source(fs.join(out, p["path"]))))
    t.decisions, fixes = _load_decisions(out, t.k, t.job.part.index)
    if fixes:
        t.counts.setdefault(t.ph.global_stage.name, ledger.new_counts())["fixes"] = Counter(fixes)
    src = pq.ParquetFile(store.source(fs.join(prev_dir, f"{t.name}.parquet")))
    return (b.drop_columns([PART_COL]) for b in src.iter_batches(batch_size=t.plan.config.limits.batch_rows))


def _apply(t: _Task, batches) -> None:
    """Decisions, then the phase's stages, batch by batch into the sinks."""
    progress = _worker["progress"]
    for batch in batches:
        n_in = batch.num_rows
        if t.decisions is not None:
            batch, rej = _apply_decisions(t.ph.global_stage, batch, t.decisions, t.counts)
            if rej is not None:
                t.sinks["rejects"].write(rej)
        kept, rejects, quarantine = apply_stages(t.ph.stages, t.ph.schemas, batch, t.counts, t.seconds, t.plan.scopes)
        if not t.ph.last:
            kept = pa.RecordBatch.from_arrays(kept.columns + [pa.array(np.full(kept.num_rows, t.job.part.index, np.int32))],
                                              schema=t.sinks["kept"].schema)
        t.sinks["kept"].write(kept)
        for r in rejects:
            t.sinks["rejects"].write(r)
        t.q_rows += quarantine
        if progress is not None and t.ph.last:
            progress.put((n_in, batch.column("text").nbytes, kept.num_rows))
    if t.decisions is not None and t.decisions.unused():
        raise CorpusforgeError("global_mismatch", f"{t.ph.global_stage.name}: {t.decisions.unused()} decisions or edits for "
                               f"part {t.job.part.index} name ids that are not in the part")
    if t.reader is not None and t.reader.discarded:
        # the reader discarded the part (truncated/corrupt file): so is everything derived from it
        for key, s in list(t.sinks.items()):
            s.abort()
            t.sinks[key] = ParquetSink(s.final, s.schema, s.compression)
        t.counts, t.q_rows = {}, []
    lim = t.plan.config.limits
    check_rule_guard(t.ph.stages, t.counts, lim.max_rule_drop_fraction, lim.rule_guard_min_docs,
                     f"{t.job.part.file.rel} (part {t.job.part.index})")


def _ledger(t: _Task) -> tuple[dict, list, list]:
    """(every stage's counts so far, hints, the reader's quarantine rows): the ingest counts come from the
    reader in phase 0 and from the previous marker after it."""
    if t.prev is None:
        st = t.reader.stats
        ing = ledger.new_counts()
        ing.update(**{"in": st.records, "kept": st.docs})
        ing["quarantined"].update(st.quarantined)
        ing["fixes"] = st.fixes
        if st.records == 0:
            ing["fixes"]["empty_input_files"] = 1
        all_counts, hints, q_prev = {INGEST: ing}, st.hints, t.reader.quarantine
    else:
        all_counts = {s: ledger.from_json(c) for s, c in t.prev["counts"].items()}
        hints, q_prev = t.prev["hints"], []
    for s, c in t.counts.items():
        ledger.merge(all_counts.setdefault(s, ledger.new_counts()), c)
    return all_counts, hints, q_prev


def _quarantine(t: _Task, q_prev: list) -> None:
    """One quarantine file: the previous phase's, then the reader's and this phase's rows."""
    q_files = [p for p in (t.prev or {}).get("files", []) if p["kind"] == "quarantine"]
    if not (q_prev or t.q_rows or q_files):
        return
    qs = t.sinks["quarantine"] = ParquetSink(t.path("quarantine"), QUARANTINE_SCHEMA, t.sinks["kept"].compression)
    for p in q_files:
        qs.write(pq.read_table(store.source(fs.join(t.plan.out, p["path"]))))
    if q_prev or t.q_rows:
        qs.write(quarantine_table(q_prev + t.q_rows))


def _commit(t: _Task, all_counts: dict, hints: list) -> dict:
    """Every file under its final name, then the marker listing them (a part exists once its marker does)."""
    out, files = t.plan.out, list(t.carried)
    for kind, s in t.sinks.items():
        if kind == "kept" or s.rows:
            s.commit()
            files.append(file_entry(out, s.final, kind, s.rows, s.sha256))
        else:
            s.abort()
    part = t.job.part
    rec = {"part": part.index, "input": part.file.rel, "start": part.start,
           "counts": {s: ledger.to_json(c) for s, c in all_counts.items()}, "files": files, "hints": hints}
    faults.point("part:before_marker")
    write_json(marker_path(t.plan, t.k, t.job), rec)
    faults.point("part:after_marker")
    return rec


# --------------------------------------------------------------------------------- global decisions


def _load_decisions(out: str, k: int, part: int) -> tuple["_Decided", dict]:
    """(one part's decisions and edits, fix → n)."""
    done = store.read_json(fs.join(decided_dir(out, k), "done.json"))

    def table(kind, schema):
        files = done.get(f"{kind}_parts", {}).get(str(part), [])
        return pa.concat_tables([pq.read_table(store.source(fs.join(out, p))) for p in files]) if files else schema.empty_table()

    t, e = table("decisions", DECISION_SCHEMA), table("edits", EDIT_SCHEMA)
    edits: dict = {}
    for i, line in zip(e.column("id").to_pylist(), e.column("line").to_pylist()):
        edits.setdefault(i, []).append(line)
    return (_Decided({i: (r, d, c) for i, r, d, c in zip(*(t.column(n).to_pylist()
                                                          for n in ("id", "reason", "duplicate_of", "cluster_id")))}, edits),
            done.get("fixes", {}).get(str(part), {}))


@dataclass
class _Decided:
    """What a global stage decided for one part: id → (reason, duplicate_of, cluster_id) of removed documents,
    id → lines to take out of kept ones; `used` counts the ids met, to prove every row named one of the part."""

    removed: dict
    edits: dict
    used: int = 0

    def unused(self) -> int:
        return len(self.removed) + len(self.edits) - self.used


def _apply_decisions(stage: GlobalStage, batch: pa.RecordBatch, dec: _Decided, counts: dict):
    """Routes the rows a global stage decided to remove into rejects (with duplicate_of and the cluster id), and
    rewrites the kept rows it edits (a row left with no text is dropped: `<stage>:all_lines_removed`)."""
    c = counts.setdefault(stage.name, ledger.new_counts())
    c["in"] += batch.num_rows
    ids = batch.column("id").to_pylist()
    reasons: dict[int, tuple[str, str | None, str | None]] = {}
    texts, edited = None, []
    for i, x in enumerate(ids):
        if x in dec.removed:
            r, d, cl = dec.removed[x]
            reasons[i] = (f"{stage.name}:{r}", d, cl)
        elif x in dec.edits:
            texts = texts if texts is not None else batch.column("text").to_pylist()
            lines = dec.edits[x]
            new = stage.rewrite(texts[i], lines)
            fixes = c.setdefault("fixes", Counter())
            fixes["lines_removed"] += len(lines)
            fixes["docs_rewritten"] += 1
            if new.strip():
                texts[i] = new
                edited.append(i)
            else:
                reasons[i] = (f"{stage.name}:all_lines_removed", None, None)
    dec.used += len(reasons) + len(edited)
    rejects = None
    if reasons:
        idx = np.array(sorted(reasons), np.int64)
        dec_rows = [reasons[i] for i in idx]
        for r, _, _ in dec_rows:
            c["dropped"][r] += 1
        rejects = reject_rows(batch, idx, stage.name, [r for r, _, _ in dec_rows], [d for _, d, _ in dec_rows])
        metas = [list(m or []) + ([(CLUSTER_META, cl)] if cl is not None else [])
                 for m, (_, _, cl) in zip(rejects.column("meta").to_pylist(), dec_rows)]
        rejects = rejects.set_column(rejects.schema.get_field_index("meta"), "meta",
                                     pa.array(metas, REJECT_SCHEMA.field("meta").type))
    if edited:
        i = batch.schema.get_field_index("text")
        batch = batch.set_column(i, batch.schema.field(i), pa.array(texts, batch.schema.field(i).type))
    if reasons:
        keep = np.ones(batch.num_rows, bool)
        keep[idx] = False
        batch = batch.filter(pa.array(keep))
    c["kept"] += batch.num_rows
    return batch, rejects
