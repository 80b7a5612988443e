"""The ablation section of the report (`corpusforge quality-eval --ablate` → ablation.json): per variant
its stages, kept documents, held-out PPL per seed, mean ± std, the delta against the full pipeline and
whether its sign holds on every seed, with a chart of the intervals. No script; every value escaped."""

from __future__ import annotations

from corpusforge.report import svg
from corpusforge.report.extras import read_json
from corpusforge.errors import CorpusforgeError
from corpusforge.io import staging
from corpusforge.report.render import Safe, e, table

KIND = "corpusforge ablation"  # ablation.json's "kind" (train/ablate.py writes it)


def load(path: str) -> dict:
    a = read_json(path)
    if not isinstance(a, dict) or a.get("kind") != KIND or not isinstance(a.get("variants"), dict):
        raise CorpusforgeError("bad_ablation", f"{path}: not an ablation.json of `corpusforge quality-eval --ablate`")
    return dict(a, path=staging.absolute(path))


def section(abls: list[dict]) -> str:
    body = []
    for k, a in enumerate(abls):
        order, v = a["order"], a["variants"]
        ref = a["reference"]
        seeds = v[order[0]]["seeds"]
        rows = []
        for n in order:
            r = v[n]
            holds = r["sign_holds_every_seed"]
            rows.append([n, " → ".join(r["stages"]) or "(no stages: the raw input)", r["kept_docs"], *r["heldout_ppl"],
                         r["mean_ppl"], r["std_ppl"], r["delta_vs_full"], "—" if holds is None else "yes" if holds else "no"])
        h = a["heldout"]
        body.append(f'<div class="ablation" data-ablation="{k}"><p class="muted">{e(a["path"])}: pipeline {e(a["pipeline"])}; held-out '
                    f'{h["docs"]:,} documents ({h["tokens"]:,} tokens); model {e(a["model"])}, {a["steps"]:,} steps, '
                    f'{a["budget_tokens"]:,} sampled tokens per variant (at least {a["min_docs"]:,} documents each). '
                    f'Δ = variant − {e(ref)} per seed, averaged: above 0 means the stage the variant lacks helps.</p>')
        body.append(table(["variant", "stages", "kept docs", *(f"PPL seed {s}" for s in seeds), "mean PPL", "std", f"Δ vs {ref}",
                           "sign holds every seed"], rows, "ablation-table", [f' data-variant="{e(n)}"' for n in order]))
        body.append(svg.intervals([(n, v[n]["mean_ppl"], v[n]["std_ppl"], v[n]["heldout_ppl"]) for n in order],
                                  f"held-out PPL per variant (mean ± std over seeds; dashed: {ref}); lower is better", v[ref]["mean_ppl"]))
        body.append("</div>")
    return f'<section id="ablation" class="ablation"><h2>Stage ablation</h2>{Safe("".join(body))}</section>'
