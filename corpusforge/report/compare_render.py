"""HTML of a run comparison (compare.compare()): counts of both runs per stage and source with the
difference, every fate transition with its count and deterministic samples (a before/after diff for
kept documents whose text changed), and the two runs' human ratings side by side per sampling rule.
No script; every document string escaped (render.e, render.text_diff, Highlighter.html)."""

from __future__ import annotations

from corpusforge.report import human_eval, svg
from corpusforge.report.render import Safe, e, standalone, table, text_diff

KEPT = "kept"


def _fate(f: str) -> str:
    return "kept" if f == KEPT else f"dropped: {f}" if not f.startswith(("quarantined", "absent")) else f


def section(cmp: dict, human: dict | None = None, served: bool = False, highlighters=(None, None)) -> str:
    a, b = cmp["a"]["name"], cmp["b"]["name"]
    if a == b:
        a, b = f"A ({a})", f"B ({b})"
    ta, tb = cmp["a"]["totals"], cmp["b"]["totals"]
    out = [f'<p class="compare-summary">A = <b>{e(a)}</b> <span class="muted">{e(cmp["a"]["run_dir"])}</span>, '
           f'B = <b>{e(b)}</b> <span class="muted">{e(cmp["b"]["run_dir"])}</span>: the same {ta["records"]:,} input records; '
           f'kept {ta["kept"]:,} → {tb["kept"]:,} ({tb["kept"] - ta["kept"]:+,}); '
           f'<span data-k="flipped">{cmp["flipped"]:,}</span> documents changed fate, '
           f'<span data-k="edited">{cmp["edited"]:,}</span> kept by both with different text.</p>']
    out.append(_stages(cmp, a, b))
    out.append(_sources(cmp, a, b))
    out.append(_transitions(cmp, a, b, highlighters))
    if human is not None:
        out.append(_human(human, a, b, served))
    return f'<section id="compare" class="compare"><h2>Comparison: {e(a)} → {e(b)}</h2>{"".join(out)}</section>'


def _d(x, y):
    return None if x is None or y is None else y - x


def _stages(cmp: dict, a: str, b: str) -> str:
    rows, attrs, reasons = [], [], []
    for s in cmp["stages"]:
        sa, sb = s["a"], s["b"]
        rows.append([s["stage"], sa["in"], sa["kept"], sa["dropped"], sb["in"], sb["kept"], sb["dropped"],
                     _d(sa["kept"], sb["kept"]), _d(sa["dropped"], sb["dropped"]), _d(sa["quarantined"], sb["quarantined"])])
        attrs.append(f' data-stage="{e(s["stage"])}"')
        reasons += [[r, n_a, n_b, n_b - n_a] for r, (n_a, n_b) in s["reasons"].items()]
    body = table(["stage", f"{a} in", f"{a} kept", f"{a} dropped", f"{b} in", f"{b} kept", f"{b} dropped",
                  "Δ kept", "Δ dropped", "Δ quarantined"], rows, "compare-stages", attrs)
    body += table(["reason", a, b, "Δ"], reasons, "compare-reasons", [f' data-reason="{e(r[0])}"' for r in reasons])
    names = [s["stage"] for s in cmp["stages"]]
    body += svg.hbars(names, {a: [s["a"]["kept"] or 0 for s in cmp["stages"]], b: [s["b"]["kept"] or 0 for s in cmp["stages"]]},
                      "documents kept after each stage")
    return f'<section id="compare-stages-sec"><h3>Per stage (from the manifests)</h3>{body}</section>'


def _sources(cmp: dict, a: str, b: str) -> str:
    src = cmp["sources"]
    rows = [[n, v["a"]["kept"], v["b"]["kept"], v["b"]["kept"] - v["a"]["kept"], v["a"]["dropped"], v["b"]["dropped"],
             v["b"]["dropped"] - v["a"]["dropped"]] for n, v in src.items()]
    body = table(["source", f"{a} kept", f"{b} kept", "Δ kept", f"{a} dropped", f"{b} dropped", "Δ dropped"], rows,
                 "compare-sources", [f' data-source="{e(n)}"' for n in src])
    return f'<section id="compare-sources-sec"><h3>Per source (from the kept and rejects tables)</h3>{body}</section>'


def _transitions(cmp: dict, a: str, b: str, highlighters) -> str:
    ts = cmp["transitions"]
    if not ts:
        return '<section id="compare-flips"><h3>Documents whose fate changed</h3><p class="none">None: every document has the same fate and text in both runs.</p></section>'
    rows = [[_fate(t["a"]), _fate(t["b"]), t["n"]] for t in ts]
    attrs = [f' data-from="{e(t["a"])}" data-to="{e(t["b"])}"' for t in ts]
    body = [table([f"in {a}", f"in {b}", "documents"], rows, "compare-transitions", attrs)]
    body.append(svg.hbars([f"{t['a']} → {t['b']}" for t in ts[:20]], {"documents": [t["n"] for t in ts[:20]]},
                          "documents per fate change"))
    for t in ts:
        docs = "".join(_sample(x, a, b, highlighters) for x in t["samples"])
        body.append(f'<details class="flip" data-from="{e(t["a"])}" data-to="{e(t["b"])}"><summary>{e(_fate(t["a"]))} → '
                    f'{e(_fate(t["b"]))}: {t["n"]:,} documents ({len(t["samples"])} samples, smallest blake2b(id))</summary>{docs}</details>')
    return f'<section id="compare-flips"><h3>Documents whose fate changed</h3>{"".join(body)}</section>'


def _side(x: dict, side: str, hl) -> str:
    t = x.get(f"text_{side}")
    if t is None:
        return '<span class="muted">no text in this run (quarantined)</span>'
    return hl.html(t) if hl else e(t)


def _label(x: dict, side: str, name: str) -> str:
    what = "reject preview" if x.get(f"preview_{side}") else "kept text"
    n = x.get(f"chars_{side}")
    return f"<b>{e(name)}</b>: {e(_fate(x[side]))} <span class=muted>({what}{f', {n:,} characters' if n is not None else ''})</span>"


def _sample(x: dict, a: str, b: str, highlighters) -> str:
    head = f'<p class="muted">id {e(x["id"])} · {e(x["source"])}</p>'
    if x["a"] == x["b"] == KEPT and x.get("text_a") is not None and x.get("text_b") is not None:
        before, after = text_diff(x["text_a"], x["text_b"])  # a cleaning change: what B removed and added
    else:
        before, after = _side(x, "a", highlighters[0]), _side(x, "b", highlighters[1])
    return (f'<div class="flip-doc" data-id="{e(x["id"])}">{head}<div class="pair"><div>{_label(x, "a", a)}<div class="doc before">{before}</div></div>'
            f'<div>{_label(x, "b", b)}<div class="doc after">{after}</div></div></div></div>')


def _human(human: dict, a: str, b: str, served: bool) -> str:
    """human: {"a": {rule: aggregate}, "b": {rule: aggregate}} from each run's human_eval.json."""
    rows, attrs = [], []
    for rule, what in human_eval.RULES.items():
        for side, name in (("a", a), ("b", b)):
            g = human[side][rule]
            flo, fhi = g["fluency_ci95"]
            lo, hi = g["ci95"]
            rows.append([what, name, g["ratings"], g["mean_fluency"], flo, fhi, g["low_quality_ratio"], lo if g["ratings"] else None,
                         hi if g["ratings"] else None])
            attrs.append(f' data-rule="{e(rule)}" data-run="{side}"')
    body = table(["sampling rule", "run", "ratings", "mean fluency", "95% CI low", "95% CI high", "low-quality share",
                  "95% CI low (Wilson)", "95% CI high (Wilson)"], rows, "compare-human", attrs)
    if served:
        links = "".join(f'<li><a class="eval-link" href="/human-eval?run={side}&amp;sample={rule}">rate {e(what)} — {e(name)}</a></li>'
                        for rule, what in human_eval.RULES.items() for side, name in (("a", a), ("b", b)))
        body += Safe(f"<ul>{links}</ul>")
    else:
        body += Safe('<p class="muted">Rate documents with <code>corpusforge report serve RUN_A RUN_B --compare</code>: its '
                     '/human-eval pages offer each run\'s kept sample and the documents one run kept and the other did not.</p>')
    return f'<section id="compare-human"><h3>Human evaluation, side by side</h3>{body}</section>'


def page(cmp: dict, human: dict | None, served: bool, nav: str = "", highlighters=(None, None)) -> str:
    return standalone("corpusforge comparison", nav, section(cmp, human, served, highlighters))


def human_of(run_a: str, run_b: str) -> dict:
    return {side: {rule: human_eval.aggregate(human_eval.load(d), rule) for rule in human_eval.RULES}
            for side, d in (("a", run_a), ("b", run_b))}
