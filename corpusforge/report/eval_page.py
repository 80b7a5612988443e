"""The served /human-eval page: one form per offered document (fluency 1–5, low-quality flags), posted
back with the server's form token. Offered documents follow one sampling rule (human_eval.RULES): a
run's kept sample, or, when two runs are compared, the documents this run kept and the other did not,
so reviewers judge exactly what a change flipped. No script; document text through the highlighter."""

from __future__ import annotations

from dataclasses import dataclass

from corpusforge.report import human_eval, render


@dataclass(frozen=True)
class Offer:
    """What one /human-eval page shows: whose documents, under which rule; `run` is "a"/"b" when two runs are served."""

    run_dir: str
    name: str
    rule: str
    docs: list  # {"id", "source", "chars", "text"}
    highlighter: object
    run: str = ""

    def query(self) -> dict:
        return {"run": self.run, "sample": self.rule} if self.run else {}


NAV = '<nav><a href="/">report</a><a href="/browse">browse documents</a><a href="/human-eval">human evaluation</a>{more}</nav>'

_INTRO = {"kept": "{n} kept documents, chosen by the smallest blake2b(seed, id) (the same samples on every start).",
          "flipped": "{n} documents this run kept and {other} did not, chosen by the smallest blake2b(id): rate what the change flipped."}


def page(o: Offer, token: str, reviewer: str, saved: str | None, other: str = "", nav_more: str = "") -> str:
    e = render.e
    d = human_eval.load(o.run_dir)
    mine = {doc: per.get(reviewer) for doc, per in d["ratings"].items()} if reviewer else {}
    agg = human_eval.aggregate(d, o.rule if o.run else None)
    hidden = "".join(f'<input type="hidden" name="{k}" value="{e(v)}">' for k, v in o.query().items())
    out = [f'<!doctype html><html lang="zh"><head><meta charset="utf-8"><title>human evaluation</title><style>{render.STYLE}</style></head><body>',
           NAV.format(more=nav_more), f'<h1>Human evaluation: {e(o.name)}</h1>',
           f'<p class="rule" data-rule="{e(o.rule)}">{e(_INTRO[o.rule].format(n=len(o.docs), other=other or "the other run"))} '
           'Rate fluency from 1 (unreadable) to 5 (fluent, natural Chinese) and mark the low-quality content you see '
           '(PanGu-α\'s criteria: ads, repeated short sentences, sensitive words).</p>',
           f'<p class="progress" data-ratings="{agg["ratings"]}">ratings so far: {agg["ratings"]:,} '
           f'(low quality {agg["low_quality"]:,}); your ratings: {sum(1 for v in mine.values() if v):,}</p>']
    if saved:
        out.append(f'<p class="ok saved">saved rating of {e(saved)}</p>')
    if not o.docs:
        out.append('<p class="none">No documents under this rule.</p>')
    for doc in o.docs:
        cur = mine.get(doc["id"]) or {}
        radios = "".join(f'<label><input type="radio" name="fluency" value="{v}" required{" checked" if cur.get("fluency") == v else ""}> {v}</label> '
                         for v in range(1, 6))
        flags = "".join(f'<label><input type="checkbox" name="flags" value="{k}"{" checked" if k in cur.get("flags", []) else ""}> {e(lab)}</label> '
                        for k, lab in human_eval.FLAGS.items())
        shown = f' (first {len(doc["text"])} shown)' if doc["chars"] > len(doc["text"]) else ""
        out.append(f'<div class="eval-doc" id="doc-{e(doc["id"])}" data-id="{e(doc["id"])}"><p class="muted">id {e(doc["id"])} · {e(doc["source"])} · '
                   f'{doc["chars"]:,} characters{shown}</p><div class="doc">{o.highlighter.html(doc["text"])}</div>'
                   f'<form method="post" action="/human-eval" class="rate">'
                   f'<input type="hidden" name="token" value="{e(token)}"><input type="hidden" name="doc_id" value="{e(doc["id"])}">{hidden}'
                   f'<label>reviewer <input name="reviewer" required maxlength="64" value="{e(reviewer)}"></label> '
                   f'fluency {radios}<br>{flags}<button type="submit">save rating</button>'
                   f'{" <span class=ok>rated</span>" if cur else ""}</form></div>')
    out.append("</body></html>")
    return "".join(out)


def flipped_docs(cmp: dict, side: str) -> list[dict]:
    """The comparison's human-eval sample of one side as page documents (the text this run kept)."""
    return [{"id": x["id"], "source": x["source"], "chars": x.get(f"chars_{side}", 0), "text": x.get(f"text_{side}", "")}
            for x in cmp[f"eval_{side}"]]
