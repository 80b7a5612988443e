"""One self-contained HTML page from collected report data: inline CSS and SVG, no script, no
external resource. All data goes through html.escape (document text, source names, reasons, paths,
config values); markup is only ever ours."""

from __future__ import annotations

import difflib
import html
import json

from corpusforge.report import human_eval, svg

# No script at all; inline styles and SVG only; forms may only post back to the page's origin.
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; base-uri 'none'"

STYLE = """
body{font-family:system-ui,"Noto Sans CJK SC","Microsoft YaHei",sans-serif;margin:0 2em 4em;color:#222;max-width:1400px}
nav{border-bottom:1px solid #ccc;padding:.4em 0}
nav a{margin-right:1em}
table{border-collapse:collapse;margin:.5em 0 1em}
th,td{border:1px solid #ccc;padding:2px 8px;text-align:left;vertical-align:top}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.doc{white-space:pre-wrap;word-break:break-all;background:#f7f7f7;border:1px solid #ddd;padding:6px;max-height:18em;overflow:auto;font-size:13px}
mark.hit-sensitive{background:#f7b2b2}
mark.hit-ad{background:#ffe08a}
del{background:#fbd0d0}
ins{background:#c9f0c9;text-decoration:none}
.grid{display:flex;flex-wrap:wrap;gap:8px}
.muted{color:#777;font-size:90%}
.bad{color:#b00;font-weight:bold}
.ok{color:#070}
details{margin:.3em 0}
summary{cursor:pointer}
.pair{display:grid;grid-template-columns:1fr 1fr;gap:8px}
"""


class Safe(str):
    """Markup we built ourselves (never data)."""


# What `corpusforge report --out F` looks for before replacing an existing F (outputs.replace_file_check).
GENERATOR = '<meta name="generator" content="corpusforge report">'


def e(v) -> str:
    return v if isinstance(v, Safe) else html.escape("" if v is None else str(v), quote=True)


def num(v, digits: int = 4) -> Safe:
    if v is None:
        return Safe("")
    if isinstance(v, float) and not v.is_integer():
        return Safe(f"{v:.{digits}g}")
    return Safe(f"{int(v):,}")


def table(headers: list, rows: list[list], cls: str = "", row_attrs: list[str] | None = None) -> Safe:
    out = [f'<table class="{e(cls)}"><thead><tr>' + "".join(f"<th>{e(h)}</th>" for h in headers) + "</tr></thead><tbody>"]
    for i, r in enumerate(rows):
        attrs = row_attrs[i] if row_attrs else ""
        cells = []
        for h, c in zip(headers, r):
            is_num = isinstance(c, (int, float)) and not isinstance(c, bool)
            val = f' data-v="{e(c)}"' if is_num else ""
            cells.append(f'<td data-k="{e(h)}"{val}{" class=n" if is_num else ""}>{e(num(c) if is_num else c)}</td>')
        out.append(f"<tr{attrs}>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    return Safe("".join(out))


def text_diff(before: str, after: str) -> tuple[str, str]:
    """Character diff: removed text struck in the before column, added text marked in the after column."""
    sm = difflib.SequenceMatcher(None, before, after, autojunk=False)
    b, a = [], []
    for op, i1, i2, j1, j2 in sm.get_opcodes():
        if op == "equal":
            b.append(html.escape(before[i1:i2]))
            a.append(html.escape(after[j1:j2]))
        else:
            if i2 > i1:
                b.append(f"<del>{html.escape(before[i1:i2])}</del>")
            if j2 > j1:
                a.append(f"<ins>{html.escape(after[j1:j2])}</ins>")
    return "".join(b), "".join(a)


def standalone(title: str, nav: str, body: str) -> str:
    """A served page of one section (the comparison, the ablation): the report's head, CSP and style."""
    return (f'<!doctype html><html lang="zh"><head><meta charset="utf-8">{GENERATOR}<meta http-equiv="Content-Security-Policy" content="{e(CSP)}">'
            f'<title>{e(title)}</title><style>{STYLE}</style></head><body>{nav}{body}</body></html>')


def _section(sid: str, title: str, body: str, cls: str = "") -> str:
    return f'<section id="{e(sid)}" class="{e(cls)}"><h3>{e(title)}</h3>{body}</section>'


def render_runs(runs: list[dict], extra: dict, highlighters: list, more: list[tuple[str, str, str]] = ()) -> str:
    """runs: data.collect() results, each with "thresholds", "human" (aggregate) and "mixture" added;
    highlighters: one per run (its own word lists). extra: {"train": [...], "quality_eval": [...]}.
    more: (anchor, nav label, section html) appended after the runs (the comparison, the ablation)."""
    nav = ['<a href="#overview">overview</a>'] + [f'<a href="#run-{i}">{e(r["name"])}</a>' for i, r in enumerate(runs)]
    nav += [f'<a href="#{e(anchor)}">{e(label)}</a>' for anchor, label, _ in more]
    if extra.get("train") or extra.get("quality_eval"):
        nav.append('<a href="#training">training &amp; PPL</a>')
    parts = [f'<!doctype html><html lang="zh"><head><meta charset="utf-8">{GENERATOR}'
             f'<meta http-equiv="Content-Security-Policy" content="{e(CSP)}">'
             f'<meta name="referrer" content="no-referrer"><title>corpusforge report</title><style>{STYLE}</style></head><body>',
             f'<nav>{"".join(nav)}</nav><h1>corpusforge quality report</h1>', _overview(runs)]
    for i, (r, hl) in enumerate(zip(runs, highlighters)):
        parts.append(_run(i, r, hl))
    parts += [body for _, _, body in more]
    parts.append(_training(extra))
    parts.append("</body></html>")
    return "".join(parts)


def _overview(runs: list[dict]) -> str:
    rows = []
    for r in runs:
        t = r["manifest"].get("totals", {})
        rec = t.get("records", 0)
        rows.append([r["name"], r["run_dir"], rec, t.get("kept", 0), (t.get("kept", 0) / rec) if rec else 0.0,
                     t.get("quarantined", 0), r["manifest"].get("status", "")])
    body = table(["run", "directory", "records", "kept", "kept share", "quarantined", "status"], rows, "overview")
    if len(runs) > 1:
        stages = sorted({s["name"] for r in runs for s in r["manifest"]["stages"]},
                        key=lambda n: min(i for r in runs for i, s in enumerate(r["manifest"]["stages"]) if s["name"] == n))
        kept = {r["name"]: {s["name"]: s["kept"] for s in r["manifest"]["stages"]} for r in runs}
        body += svg.hbars(stages, {n: [kept[n].get(s, 0) for s in stages] for n in kept}, "documents kept after each stage, per run")
    return _section("overview", "Runs", body)


def _run(i: int, r: dict, hl) -> str:
    p = f"run-{i}"
    m = r["manifest"]
    out = [f'<section id="{p}" class="run" data-run="{e(r["name"])}"><h2>Run {e(r["name"])}</h2>'
           f'<p class="muted">{e(r["run_dir"])}</p>']
    out.append(_funnel(p, r))
    out.append(_sources(p, r))
    out.append(_reasons(p, r, hl))
    if any(st.get("fixes") for st in m["stages"][1:]):
        out.append(_fixes(p, m))
    if r["clean_samples"]:
        out.append(_clean(p, r))
    if r["scores"]:
        out.append(_scores(p, r))
    if r["dedup"]:
        out.append(_dedup(p, r, hl))
    if r.get("mixture"):
        out.append(_mixture(p, r["mixture"]))
    out.append(_human(p, r))
    out.append(_provenance(p, m))
    out.append("</section>")
    return "".join(out)


def _funnel(p: str, r: dict) -> str:
    st = r["manifest"]["stages"]
    rows, attrs = [], []
    for s in st:
        d, q = sum(s["dropped"].values()), sum(s["quarantined"].values())
        rows.append([s["name"], s["in"], s["kept"], d, q, (s["kept"] / s["in"]) if s["in"] else 0.0])
        attrs.append(f' data-stage="{e(s["name"])}"')
    body = table(["stage", "in", "kept", "dropped", "quarantined", "kept share"], rows, "funnel", attrs)
    body += svg.hbars([s["name"] for s in st], {"in": [s["in"] for s in st], "kept": [s["kept"] for s in st]}, "documents per stage")
    # the counts recomputed from the rejects files must equal the manifest's (DESIGN §2.5)
    want = {f'{s["name"]}\x1f{k}': v for s in st for k, v in s["dropped"].items()}
    same = want == r["reasons_from_data"]
    body += Safe(f'<p class="check {"ok" if same else "bad"}">drop counts recomputed from rejects/: '
                 f'{"equal to the manifest" if same else "DIFFER from the manifest"}</p>')
    return _section(f"{p}-funnel", "Funnel", body, "funnel")


FIXES_SHOWN = 50  # hit-list rows per stage (the manifest has them all)


def _fixes(p: str, m: dict) -> str:
    """What the stages changed rather than dropped (lines removed, PII replaced), and the hit lists: counters
    `hit:<evaluation>#<item>` name an evaluation item found and in how many documents."""
    rows, hits = [], []
    for st in m["stages"][1:]:
        for k, n in (st.get("fixes") or {}).items():
            (hits if k.startswith("hit:") else rows).append([st["name"], k[4:] if k.startswith("hit:") else k, n])
    body = table(["stage", "counter", "n"], rows, "fixes") if rows else Safe("")
    if hits:
        hits.sort(key=lambda h: (-h[2], h[0], h[1]))
        body += Safe(f'<h4>Evaluation items found ({len(hits)} items; the {min(len(hits), FIXES_SHOWN)} most frequent)</h4>')
        body += table(["stage", "evaluation item", "documents"], hits[:FIXES_SHOWN], "hits")
    return _section(f"{p}-fixes", "Fixes and hit lists", body, "fixes")


def _sources(p: str, r: dict) -> str:
    stages = [s["name"] for s in r["manifest"]["stages"] if s["dropped"]]
    tokens = {k: v for k, v in (r.get("mixture") or {}).get("sources", {}).items()}
    headers = ["source", "docs in", "kept", "kept characters"] + [f"dropped by {s}" for s in stages] + \
        ["dropped characters (≥, from previews)"] + (["tokens available", "tokens drawn"] if tokens else [])
    rows, attrs = [], []
    for name, v in r["sources"].items():
        row = [name, v["kept"] + sum(v["dropped"].values()), v["kept"], v["kept_chars"]] + \
              [v["dropped"].get(s, 0) for s in stages] + [v["dropped_preview_chars"]]
        if tokens:
            t = tokens.get(name, {})
            row += [t.get("tokens_available"), t.get("tokens_drawn")]
        rows.append(row)
        attrs.append(f' data-source="{e(name)}"')
    body = table(headers, rows, "sources", attrs)
    body += Safe('<p class="muted">Rejects keep a 300-character preview, so characters of dropped documents are a lower bound. '
                 'Ingest quarantine has no source and is not in this table.</p>')
    names = list(r["sources"])
    body += svg.hbars(names, {"kept": [r["sources"][n]["kept"] for n in names],
                              "dropped": [sum(r["sources"][n]["dropped"].values()) for n in names]}, "documents per source")
    return _section(f"{p}-sources", "Per source", body, "sources")


def _score_cells(scores: dict, stage: str) -> str:
    own = {k: v for k, v in scores.items() if k.startswith(stage + "__")}
    return ", ".join(f"{k.split('__', 1)[1]}={v:.4g}" for k, v in sorted(own.items()))


def _reasons(p: str, r: dict, hl) -> str:
    body = []
    for s in r["manifest"]["stages"]:
        if not s["dropped"]:
            continue
        reasons = sorted(s["dropped"].items(), key=lambda x: (-x[1], x[0]))
        body.append(f'<h4>{e(s["name"])}</h4>')
        body.append(table(["reason", "documents"], [[k, v] for k, v in reasons], "reasons", [f' data-reason="{e(k)}"' for k, _ in reasons]))
        body.append(svg.hbars([k for k, _ in reasons], {"dropped": [v for _, v in reasons]}, f'{s["name"]}: drops per reason'))
        for reason, n in reasons:
            samples = r["reason_samples"].get(f'{s["name"]}\x1f{reason}', [])
            docs = "".join(
                f'<div class="sample" data-id="{e(d["id"])}"><p class="muted">id {e(d["id"])} · source {e(d["source"])}'
                f'{" · duplicate of " + e(d["duplicate_of"]) if d["duplicate_of"] else ""} · {e(_score_cells(d["scores"], s["name"]))}'
                f'{" · preview (first 300 characters)" if d["preview_truncated"] else ""}</p>'
                f'<div class="doc">{hl.html(d["preview"])}</div></div>' for d in samples)
            body.append(f'<details class="reason-samples" data-reason="{e(reason)}"><summary>{e(reason)}: {len(samples)} sample documents of {n:,}</summary>{docs}</details>')
    q = r["quarantine"]
    if q["counts"]:
        body.append("<h4>quarantine</h4>")
        body.append(table(["stage", "reason", "records"], [k.split("\x1f") + [v] for k, v in q["counts"].items()], "quarantine"))
        for k, rows in q["samples"].items():
            body.append(f'<details><summary>{e(k.replace(chr(31), ": "))}</summary>' +
                        table(["file", "line", "detail"], [[x["file"], x["line"], x["detail"]] for x in rows]) + "</details>")
    if not body:
        body.append("<p>No document was dropped or quarantined.</p>")
    body.append('<p class="muted">Samples are the documents with the smallest blake2b(seed, id) per reason: the same on every rerun. '
                '<mark class="hit-sensitive">sensitive-word</mark> and <mark class="hit-ad">ad-keyword</mark> hits are marked with the run\'s matchers.</p>')
    return _section(f"{p}-reasons", "Drop reasons", "".join(body), "reasons")


def _clean(p: str, r: dict) -> str:
    body = []
    for s in r["clean_samples"]:
        before = s["before"]
        info = ", ".join(f"{k.split('__', 1)[1]}={s[k]}" for k in ("clean__chars_removed", "clean__dup_paragraphs", "clean__rule_hits") if k in s)
        if before is None:
            b, a = '<span class="muted">input text not available (compressed or changed input file)</span>', html.escape(s["after"])
        else:
            b, a = text_diff(before, s["after"])
        body.append(f'<div class="clean-sample" data-id="{e(s["id"])}"><p class="muted">id {e(s["id"])} · {e(s["source"])} · {e(info)}</p>'
                    f'<div class="pair"><div><b>before (input file)</b><div class="doc before">{b}</div></div>'
                    f'<div><b>after (kept text)</b><div class="doc after">{a}</div></div></div></div>')
    return _section(f"{p}-clean", "Cleaning: before / after", "".join(body), "clean")


def _scores(p: str, r: dict) -> str:
    charts = []
    for col, h in r["scores"].items():
        charts.append(f'<div class="score" data-score="{e(col)}">' + svg.histogram(h, col, r["thresholds"].get(col, [])) + "</div>")
    return _section(f"{p}-scores", "Score distributions (kept vs dropped by the stage that wrote the score)",
                    '<div class="grid">' + "".join(charts) + "</div>", "scores")


def _dedup(p: str, r: dict, hl) -> str:
    body = []
    for st, d in r["dedup"].items():
        hist = d["size_histogram"]
        body.append(f'<h4>{e(st)}</h4><p class="dedup-summary" data-stage="{e(st)}">{d["clusters"]:,} clusters, {d["removed"]:,} documents removed</p>')
        body.append(table(["cluster size", "clusters"], [[int(k), v] for k, v in hist.items()], "cluster-sizes"))
        body.append(svg.hbars([str(k) for k in hist], {"clusters": list(hist.values())}, f"{st}: cluster-size histogram"))
        for c in d["sample_clusters"]:
            mem = "".join(f'<li><span class="muted">{e(x["id"])} · {e(x["source"])}</span><div class="doc">{hl.html(x["preview"])}</div></li>'
                          for x in c["members"])
            more = c["size"] - 1 - len(c["members"])
            body.append(f'<details class="cluster" data-cluster="{e(c["representative"])}"><summary>cluster {e(c["representative"])}: '
                        f'{c["size"]} documents</summary><p><b>kept representative</b></p><div class="doc">{hl.html(c["text"])}</div>'
                        f'<p><b>removed members</b></p><ol>{mem}</ol>{f"<p>… and {more} more</p>" if more > 0 else ""}</details>')
    return _section(f"{p}-dedup", "Dedup clusters", "".join(body), "dedup")


def _mixture(p: str, mix: dict) -> str:
    keys = ["requested_share", "achieved_share", "requested_epochs", "achieved_epochs", "tokens_available", "tokens_drawn", "docs_drawn"]
    srcs = mix["sources"]
    rows = [[n] + [v.get(k) for k in keys] for n, v in srcs.items()]
    body = Safe(f'<p class="muted">{e(mix["path"])}</p>') + table(["source"] + keys, rows, "mixture", [f' data-source="{e(n)}"' for n in srcs])
    body += svg.hbars(list(srcs), {"requested share": [float(v.get("requested_share") or 0) for v in srcs.values()],
                                   "achieved share": [float(v.get("achieved_share") or 0) for v in srcs.values()]}, "mixture: requested vs achieved share")
    return _section(f"{p}-mixture", "Sampler mixture", body, "mixture")


def _human(p: str, r: dict) -> str:
    a = r["human"]
    if not a["ratings"]:
        body = ('<p>No ratings yet. Start <code>corpusforge report serve RUN_DIR</code> and open its '
                '<code>/human-eval</code> page to rate samples of kept documents.</p>')
    else:
        lo, hi = a["ci95"]
        body = table(["ratings", "documents", "reviewers", "low quality", "low-quality ratio", "95% CI (Wilson) low", "95% CI high", "mean fluency"],
                     [[a["ratings"], a["documents"], a["reviewers"], a["low_quality"], a["low_quality_ratio"], lo, hi, a["mean_fluency"]]], "human-agg")
        body += table(["flag", "ratings"], [[human_eval.FLAGS[k], v] for k, v in a["flags"].items()], "human-flags")
        body += Safe(f'<p class="muted">A rating is low quality when any flag is set or fluency ≤ {human_eval.LOW_FLUENCY} (of 5).</p>')
    return _section(f"{p}-human", "Human evaluation", body, "human")


def _provenance(p: str, m: dict) -> str:
    body = table(["key", "value"], [["status", m.get("status")], ["engine", m.get("engine")],
                                    ["corpusforge", m.get("corpusforge_version")], ["pyarrow", m.get("pyarrow_version")]], "prov")
    body += "<h4>rule and model files (sha256)</h4>" + table(["file", "sha256"], [[k, v] for k, v in sorted(m.get("rules", {}).items())], "rules")
    body += "<h4>inputs</h4>" + table(["path", "source", "bytes", "sha256"], [[i["path"], i.get("source"), i.get("size"), i.get("sha256")] for i in m.get("inputs", [])], "inputs")
    body += "<h4>files</h4>" + table(["path", "kind", "rows", "sha256"], [[f["path"], f["kind"], f["rows"], f["sha256"]] for f in m.get("files", [])[:200]], "files")
    if len(m.get("files", [])) > 200:
        body += Safe(f'<p class="muted">… {len(m["files"]) - 200} more files in manifest.json</p>')
    body += "<h4>resolved config</h4>" + Safe(f'<pre class="doc config">{e(json.dumps(m.get("config"), ensure_ascii=False, indent=1, sort_keys=True))}</pre>')
    return _section(f"{p}-manifest", "Manifest (provenance)", body, "manifest")


def _training(extra: dict) -> str:
    train, qe = extra.get("train") or [], extra.get("quality_eval") or []
    if not train and not qe:
        return ""
    body = []
    if train:
        names = [t["name"] for t in train]
        if len(set(names)) < len(names):
            names = [t["path"] for t in train]
        body.append(svg.lines({n: [(x["step"], x.get("loss")) for x in t["train"]] for n, t in zip(names, train)},
                              "training loss", "step", "loss"))
        body.append(svg.lines({n: [(x["step"], x.get("eval_ppl")) for x in t["eval"]] for n, t in zip(names, train)},
                              "held-out perplexity", "step", "eval PPL", logy=True))
        rows = []
        for n, t in zip(names, train):
            last, ev = (t["train"] or [{}])[-1], (t["eval"] or [{}])[-1]
            rows.append([n, last.get("step"), last.get("tokens"), last.get("loss"), ev.get("step"), ev.get("eval_loss"), ev.get("eval_ppl")])
        body.append(table(["training run", "last step", "tokens", "loss", "last eval step", "eval loss", "eval PPL"], rows, "train-final",
                          [f' data-train="{e(n)}"' for n in names]))
    for q in qe:
        cands = q["candidates"]
        cols = [k for k in dict.fromkeys(k for c in cands for k in c) if k != "name" and all(isinstance(c.get(k), (int, float, str, type(None))) for c in cands)]
        body.append(f'<h4>quality eval</h4><p class="muted">{e(q["path"])}</p>')
        body.append(table(["candidate"] + cols, [[c.get("name")] + [c.get(k) for k in cols] for c in cands], "quality-eval",
                          [f' data-candidate="{e(c.get("name"))}"' for c in cands]))
        pk = next((k for k in cols if "ppl" in k.lower() and all(isinstance(c.get(k), (int, float)) for c in cands)), None)
        if pk:
            body.append(svg.hbars([str(c.get("name")) for c in cands], {pk: [float(c[pk]) for c in cands]}, f"quality eval: {pk} (lower is better)"))
    return _section("training", "Training loss and perplexity across runs", "".join(body), "training")
