"""`corpusforge quality-eval --ablate CONFIG.yaml`: what each stage of a pipeline is worth, judged the
PanGu-α way. The variants of the user's ordinary run config are `raw` (its input, no stages), `full` (as
configured) and `minus_<stage>` (that stage removed), or the ones the config names. Each variant is an
ordinary run on the config's engine, written as a variant config file and cached by its hash under
OUT/variants/; every variant's kept output is then a quality-eval candidate (quality_eval.run, paired
sampling: same budget, tokenizer, seeds, model). OUT/ablation.json|md: held-out PPL per variant, its
delta vs full and whether that delta has the same sign on every seed."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

from corpusforge.errors import CorpusforgeError
from corpusforge.train import quality_eval
from corpusforge.train.quality_eval import EvalSpec

REFERENCE = "full"  # deltas are against it, so it always runs
SIGNATURE = "# corpusforge quality-eval --ablate variant config"  # our files: the only ones ever replaced
JSON_KIND = "corpusforge ablation"
MD_SIGNATURE = "<!-- corpusforge ablation -->"


class AblationConfig(EvalSpec):
    pipeline: str  # an ordinary `corpusforge run` config (relative to this file)
    variants: list[str] | None = None  # default: raw, full, minus_<stage> for every stage


def load_config(path: str) -> AblationConfig:
    return quality_eval.load_config(path, AblationConfig)


@dataclass
class Variant:
    name: str
    dir: str  # the run directory
    config: str  # the variant's run config file
    cache: str  # reused | ran | resumed
    manifest: dict


def variant_stages(pcfg, names: list[str] | None) -> dict[str, list[int]]:
    """Variant name → indices of the pipeline stages it runs, in the user's order (full added if missing)."""
    from corpusforge.stage import lookup

    keys = [lookup(sc.use).name for sc in pcfg.stages]
    if not keys:
        raise CorpusforgeError("bad_config", f"{pcfg.config_path}: the pipeline has no stages, nothing to ablate")
    every = {"raw": [], REFERENCE: list(range(len(keys))),
             **{f"minus_{k}": [j for j in range(len(keys)) if j != i] for i, k in enumerate(keys)}}
    if names is None:
        return every
    unknown = [n for n in names if n not in every]
    if unknown:
        raise CorpusforgeError("bad_config", f"variants: unknown {', '.join(map(repr, unknown))}; valid: {', '.join(every)}")
    return {n: every[n] for n in dict.fromkeys(names if REFERENCE in names else [REFERENCE, *names])}


def cache_key(config: dict, inputs: list, rules: dict, version: str) -> str:
    """What decides a variant's output (its run's resume key, less the output path that embeds this key)."""
    from corpusforge.runner import stable_hash

    return stable_hash({"config": {**config, "run": {k: v for k, v in config["run"].items() if k != "output"}},
                        "inputs": inputs, "rules": rules, "version": version})


def run_variants(acfg: AblationConfig, progress: bool = True) -> list[Variant]:
    """Every variant as an ordinary run: a finished one whose manifest matches its key is reused, an
    unfinished one is resumed by the runner (its resume checks the run's state and each part's sha256)."""
    from corpusforge.config import load_config as load_run_config
    from corpusforge.runner import make_plan

    pcfg = load_run_config(acfg.path(acfg.pipeline))
    chosen = variant_stages(pcfg, acfg.variants)
    base = make_plan(pcfg)  # hashes the inputs and rule files once, for every variant's key
    vdir = os.path.join(os.path.abspath(acfg.path(acfg.out)), "variants")
    os.makedirs(vdir, exist_ok=True)
    return [_variant(pcfg, base, name, idx, vdir, progress) for name, idx in chosen.items()]


def _variant(pcfg, base, name: str, idx: list[int], vdir: str, progress: bool) -> Variant:
    import corpusforge
    import yaml

    from corpusforge import engines
    from corpusforge.config import Config, load_config as load_run_config
    from corpusforge.io import fs, outputs, store
    from corpusforge.io.writers import atomic_file
    from corpusforge.runner import make_plan, resolved_config
    from corpusforge.stage import lookup

    # storage settings may hold credentials: they stay in memory, never in the variant file
    doc = pcfg.model_dump(mode="json", by_alias=True, exclude={"storage"})
    doc["stages"] = [doc["stages"][i] for i in idx]
    doc["run"]["name"] = f"{pcfg.run.name}-{name}"
    for ic in doc["input"]:  # the variant file lives elsewhere: its input paths must not depend on where
        ic["paths"] = [fs.under(pcfg.base_dir, p) for p in ic["paths"]]
        ic["root"] = ic["root"] and fs.under(pcfg.base_dir, ic["root"])
    used = {lookup(pcfg.stages[i].use).name for i in idx}
    rules = {k: v for k, v in base.rule_hashes.items() if k.split(":", 1)[0] in used}
    key = cache_key(resolved_config(Config(**doc)), base.inputs, rules, corpusforge.__version__)
    out = os.path.join(vdir, f"{name}-{key[:12]}")
    doc["run"]["output"] = out
    path = out + ".yaml"
    outputs.replace_file_check(path, (SIGNATURE.encode(),), "ablation variant config")
    with atomic_file(path, "w") as f:
        f.write(f"{SIGNATURE} ({name} of {pcfg.config_path})\n" + yaml.safe_dump(doc, allow_unicode=True, sort_keys=False))
    m = store.read_json(fs.join(out, "manifest.json")) if os.path.isfile(os.path.join(out, "manifest.json")) else None
    if m and m.get("status") == "ok" and cache_key(m["config"], m["inputs"], m["rules"], m["corpusforge_version"]) == key:
        cache = "reused"
    else:
        cfg = load_run_config(path)
        cfg.storage = pcfg.storage
        cache = "resumed" if os.path.exists(os.path.join(out, "_state.json")) else "ran"
        print(f"ablation: {name}: {'resuming' if cache == 'resumed' else 'running'} on {cfg.engine.kind} -> {out}",
              file=sys.stderr)
        m = engines.run(make_plan(cfg), cfg.engine.kind, workers=cfg.engine.workers, resume=True,
                        progress=None if progress else False)
    print(f"ablation: {name}: {cache} {out} ({m['totals']['kept']} of {m['totals']['records']} documents kept)",
          file=sys.stderr)
    if not m["totals"]["kept"]:
        raise CorpusforgeError("empty_variant", f"variant {name}: the pipeline kept no documents ({out}); "
                               "nothing to train on, drop the variant or fix the pipeline")
    return Variant(name, out, path, cache, m)


def run(acfg: AblationConfig, progress: bool = True) -> dict:
    """Runs the variants, then quality-eval over their kept outputs (which also writes OUT/quality_eval.json
    for `corpusforge report`), then OUT/ablation.json and OUT/ablation.md."""
    from corpusforge.io.writers import write_json

    variants = run_variants(acfg, progress)
    qcfg = quality_eval.QualityEvalConfig(**acfg.model_dump(exclude={"pipeline", "variants"}), base_dir=acfg.base_dir,
                                          candidates={v.name: [v.dir] for v in variants})
    rep = quality_eval.run(qcfg, progress, paired=True)  # paired: a variant keeping full's documents draws full's sample
    out = acfg.path(acfg.out)
    report = summarize(acfg, variants, rep, out)
    _replace(os.path.join(out, "ablation.json"), f'"kind": "{JSON_KIND}"', lambda p: write_json(p, report))
    _replace(os.path.join(out, "ablation.md"), MD_SIGNATURE, lambda p: _write_text(p, MD_SIGNATURE + "\n" + table(report)))
    return report


def _replace(path: str, signature: str, write) -> None:
    from corpusforge.io import outputs

    outputs.replace_file_check(path, (signature.encode(),), "ablation report")
    write(path)


def _write_text(path: str, text: str) -> None:
    from corpusforge.io.writers import atomic_file

    with atomic_file(path, "w") as f:
        f.write(text)


def _sign(x: float) -> int:
    return (x > 0) - (x < 0)


def summarize(acfg: AblationConfig, variants: list[Variant], rep: dict, out: str) -> dict:
    ref = rep["candidates"][REFERENCE]
    ref_ppl = [r["heldout_ppl"] for r in ref["runs"]]
    rows = {}
    for v in variants:
        c = rep["candidates"][v.name]
        ppl = [r["heldout_ppl"] for r in c["runs"]]
        deltas = [a - b for a, b in zip(ppl, ref_ppl)]
        mean_delta = sum(deltas) / len(deltas)
        is_ref = v.name == REFERENCE
        m = v.manifest
        rows[v.name] = {
            "stages": [s["name"] for s in m["stages"][1:]], "run_dir": os.path.relpath(v.dir, out),
            "config": os.path.relpath(v.config, out), "cache": v.cache, "engine": m["engine"],
            "input_docs": m["totals"]["records"], "kept_docs": m["totals"]["kept"],
            "kept_files": [{k: f[k] for k in ("path", "rows", "sha256")} for f in m["files"] if f["kind"] == "kept"],
            "funnel": [{"stage": s["name"], "in": s["in"], "kept": s["kept"], "dropped": sum(s["dropped"].values()),
                        "dropped_by_reason": s["dropped"], "quarantined": sum(s["quarantined"].values())}
                       for s in m["stages"]],
            "seeds": [r["seed"] for r in c["runs"]], "heldout_ppl": ppl, "sampled_docs": [r["sampled_docs"] for r in c["runs"]],
            "mean_ppl": c["mean_ppl"], "std_ppl": c["std_ppl"],
            "delta_per_seed": None if is_ref else deltas, "delta_vs_full": None if is_ref else mean_delta,
            # all per-seed deltas share the mean's sign (all 0 when the variant's sample is full's)
            "sign_holds_every_seed": None if is_ref else all(_sign(d) == _sign(mean_delta) for d in deltas),
        }
    return {"kind": JSON_KIND, "pipeline": os.path.abspath(acfg.path(acfg.pipeline)), "reference": REFERENCE,
            "order": [v.name for v in variants], "variants": rows, "heldout": rep["heldout"],
            "budget_tokens": acfg.budget_tokens, "min_docs": quality_eval.MIN_DOCS, "model": acfg.model,
            "steps": acfg.train.steps, "quality_eval": "quality_eval.json", "config": acfg.model_dump(mode="json")}


def table(report: dict) -> str:
    first = report["variants"][report["order"][0]]
    head = ("| variant | kept docs | " + " | ".join(f"PPL seed {s}" for s in first["seeds"])
            + " | mean ± std | Δ vs full | sign holds every seed |\n" + "|---" * (len(first["seeds"]) + 5) + "|\n")
    rows = []
    for n in report["order"]:
        r = report["variants"][n]
        d, holds = r["delta_vs_full"], r["sign_holds_every_seed"]
        rows.append(f"| {n} | {r['kept_docs']} | " + " | ".join(f"{x:.1f}" for x in r["heldout_ppl"])
                    + f" | {r['mean_ppl']:.1f} ± {r['std_ppl']:.1f} | "
                    + ("—" if d is None else f"{d:+.1f}") + " | " + ("—" if holds is None else "yes" if holds else "no") + " |")
    h = report["heldout"]
    return (f"Ablation of {report['pipeline']}: held-out PPL ({h['docs']} docs, {h['tokens']} tokens), model "
            f"{report['model']}, {report['budget_tokens']} sampled tokens per variant, {report['steps']} steps; lower "
            f"is better. Δ = variant − full per seed, averaged: > 0 means what the variant lacks helps.\n\n"
            + head + "\n".join(rows) + "\n")
