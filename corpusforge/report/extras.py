"""The report's inputs beyond the run's tables: thresholds resolved from the run's own config,
sampler shards (shards.json), training logs (log.jsonl) and quality-eval results, each found by
option or inside the run directory."""

from __future__ import annotations

import glob
import json
import os

from corpusforge.errors import CorpusforgeError
from corpusforge.io import fs, staging, store

# score column → (stage parameter or pangu threshold name, label). Which side drops is in the label.
_PARAM_THRESHOLDS = {
    "sensitive_words": {"hits": ("drop_at_hits", "drop at ≥")},
    "text_sanity": {"chars": ("min_chars", "drop below"), "mojibake_ratio": ("max_mojibake_ratio", "drop above")},
}
_PANGU_THRESHOLDS = {
    "chars": ("min_chars", "drop below"), "zh_ratio": ("min_zh_ratio", "drop below"),
    "ad_hits": ("ads_min_hits", "ads at ≥"), "ad_density": ("ads_min_density", "ads at ≥"),
    "lines": ("nav_min_lines", "nav at ≥"), "prose_frac": ("nav_max_prose_frac", "nav below"),
    "short_line_frac": ("nav_min_short_frac", "nav at ≥"), "link_line_frac": ("nav_min_link_frac", "nav at ≥"),
}


def stage_objects(manifest: dict) -> list:
    """The run's stages rebuilt from its resolved config (parameters only; nothing is set up)."""
    from corpusforge.stage import lookup

    out = []
    for st in manifest.get("config", {}).get("stages", []):
        try:
            cls = lookup(st["use"])
            out.append(cls(cls.Params(**(st.get("with") or {}))))
        except Exception:  # a stage this build no longer has: the report still renders without it
            continue
    return out


def thresholds(manifest: dict) -> dict[str, list[tuple[float, str]]]:
    """score column → [(value, label)] from the run's own stage parameters and threshold files.
    A label says so when the threshold file on disk no longer has the sha256 the manifest recorded."""
    from corpusforge.rules_files import resolve, sha256_file

    res: dict[str, list[tuple[float, str]]] = {}
    for stage in stage_objects(manifest):
        if stage.name == "pangu_rules":
            t = stage._load_thresholds()
            path = resolve(stage.params.thresholds)
            note = "" if manifest.get("rules", {}).get(f"pangu_rules:{os.path.basename(path)}") == sha256_file(path) else \
                " (threshold file changed since the run)"
            for score, (name, label) in _PANGU_THRESHOLDS.items():
                res.setdefault(f"pangu_rules__{score}", []).append((float(getattr(t, name)), f"{label} {name}{note}"))
        elif stage.name == "spam_fasttext" or (stage.name == "quality_lr" and stage.params.mode == "threshold"):
            try:
                t = stage.threshold()
            except CorpusforgeError:  # the model is not on this machine: no line for it
                continue
            col, label = ("spam_fasttext__prob", "drop at ≥") if stage.name == "spam_fasttext" else \
                ("quality_lr__score", "drop below")
            res.setdefault(col, []).append((t, f"{label} threshold"))
        for score, (name, label) in _PARAM_THRESHOLDS.get(stage.name, {}).items():
            res.setdefault(f"{stage.name}__{score}", []).append((float(getattr(stage.params, name)), f"{label} {name}"))
    return res


def read_json(path: str, missing: tuple[str, str] | None = None, bad: str = "bad_json"):
    """A JSON file, or a one-line error; `missing` = (code, message) for a file that is not there."""
    try:
        return store.read_json(path)
    except FileNotFoundError:
        code, msg = missing or ("missing_file", f"{path}: not found")
        raise CorpusforgeError(code, msg) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CorpusforgeError(bad, f"{path}: {e}") from None


def load_shards(d: str) -> dict:
    path = d if d.endswith(".json") else fs.join(d, "shards.json")
    m = read_json(path)
    if not isinstance(m, dict) or not isinstance(m.get("sources"), dict):
        raise CorpusforgeError("bad_shards", f"{path}: no \"sources\" object (expected the sampler's shards.json)")
    return {"path": staging.absolute(path), "sources": m["sources"]}


def load_train(d: str) -> dict:
    """Training rows {step, tokens, loss, lr} and eval rows {step, eval_loss, eval_ppl} of one run."""
    path = d if d.endswith(".jsonl") else fs.join(d, "log.jsonl")
    train, evals = [], []
    try:
        if not store.isfile(path):
            raise FileNotFoundError(path)
        with fs.open_read(path) as f:
            for no, line in enumerate(f.read().decode("utf-8").splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    r = json.loads(line)
                except json.JSONDecodeError:
                    raise CorpusforgeError("bad_train_log", f"{path}:{no}: not JSON") from None
                if not isinstance(r, dict) or "step" not in r:
                    continue
                if "eval_loss" in r or "eval_ppl" in r:
                    evals.append(r)
                elif "loss" in r:
                    train.append(r)
    except FileNotFoundError:
        raise CorpusforgeError("missing_file", f"{path}: not found") from None
    path = staging.absolute(path)
    return {"path": path, "name": path.rsplit("/", 2)[-2], "train": train, "eval": evals}


def load_quality_eval(path: str) -> dict:
    """Per-candidate rows from quality_eval.json: `corpusforge quality-eval`'s {"candidates": {name:
    {"runs": [{seed, heldout_ppl, ...}], "mean_ppl", "std_ppl"}}}, or a list of {name, ppl, ...} rows."""
    q = read_json(path)
    rows = q.get("candidates", q) if isinstance(q, dict) else q
    if isinstance(rows, dict):
        rows = [dict(v, name=k) if isinstance(v, dict) else {"name": k, "ppl": v} for k, v in rows.items()]
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise CorpusforgeError("bad_quality_eval", f"{path}: expected a list of candidates")
    for r in rows:  # corpusforge quality-eval: one entry per seed under "runs"
        if isinstance(r.get("runs"), list) and all(isinstance(x, dict) and "heldout_ppl" in x for x in r["runs"]):
            r["heldout PPL per seed"] = ", ".join(f"seed {x.get('seed')}: {x['heldout_ppl']:.4g}" for x in r["runs"])
    return {"path": staging.absolute(path), "candidates": rows}


def discover(run_dir: str) -> dict:
    """Shards, training runs, quality-eval and ablation files inside a run directory (itself or one level down)."""
    def find(name):
        if fs.is_remote(run_dir):
            return sorted(set(fs.glob(fs.join(run_dir, name)) + fs.glob(fs.join(run_dir, "*", name))))
        return sorted(set(glob.glob(os.path.join(run_dir, name)) + glob.glob(os.path.join(run_dir, "*", name))))

    return {"shards": [p.rsplit("/", 1)[0] for p in find("shards.json")],
            "train": [p.rsplit("/", 1)[0] for p in find("log.jsonl")],
            "quality_eval": find("quality_eval.json"), "ablation": find("ablation.json")}
