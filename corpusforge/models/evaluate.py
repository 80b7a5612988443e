"""How a shipped or retrained model does on labelled files: the share each file has flagged at the model's
threshold, precision/recall/F1 (the flagged class, spam or low quality, is the positive class), ROC AUC,
and the threshold that would flag a chosen share of the good texts (`corpusforge eval-model`)."""

from __future__ import annotations

import numpy as np

from corpusforge.models import common

# kind → which scores are flagged: spam flags P(spam) >= t, quality flags score < t (what `quality_lr` with
# mode: threshold drops)
_FLAGS = {"spam_fasttext": "high", "quality_lr": "low"}


def model_kind(path: str) -> str:
    """The kind its sidecar names (a missing sidecar or an unknown kind is a one-line error)."""
    import json
    import os

    from corpusforge.errors import CorpusforgeError

    if not os.path.isfile(path + ".json"):
        raise CorpusforgeError("missing_model", f"{path}.json: model sidecar not found")
    with open(path + ".json", encoding="utf-8") as f:
        kind = json.load(f).get("kind")
    if kind not in _FLAGS:
        raise CorpusforgeError("model_mismatch", f"{path}: a {kind!r} model, not one of {sorted(_FLAGS)}")
    return kind


def scorer(path: str):
    """(kind, score function over a list of texts, the model's own threshold)."""
    kind = model_kind(path)
    info = common.check_sidecar(path, kind)
    n = common.max_units(info)
    if kind == "spam_fasttext":
        from corpusforge.models import spam

        m = spam.load(path)
        fn = lambda texts: spam.spam_prob(m, texts, n)  # noqa: E731
    else:
        from corpusforge.models import quality

        q = quality.QualityModel(path, n)
        fn = q.score
    return kind, fn, common.sidecar_threshold(info)


def flagged(kind: str, scores: np.ndarray, threshold: float) -> np.ndarray:
    return scores >= threshold if _FLAGS[kind] == "high" else scores < threshold


def threshold_for_fpr(kind: str, good_scores: np.ndarray, fpr: float) -> float:
    """The threshold closest to the model's scores that flags at most `fpr` of the good texts."""
    k = int(np.floor(fpr * len(good_scores)))
    if _FLAGS[kind] == "high":
        d = np.sort(good_scores)[::-1]
        return float(np.nextafter(d[k], np.inf)) if k < len(d) else float(d[-1])
    a = np.sort(good_scores)
    return float(a[k]) if k < len(a) else float(np.nextafter(a[-1], np.inf))


def evaluate(path: str, good: dict[str, list[str]], bad: dict[str, list[str]], fpr: float = 0.02,
             threshold: float | None = None) -> dict:
    """good / bad: name → texts (texts the model should pass / flag)."""
    kind, score, own = scorer(path)
    t = own if threshold is None else threshold
    files, ys, ss = [], [], []
    for label, group in (("good", good), ("bad", bad)):
        for name, texts in group.items():
            s = score(texts)
            f = flagged(kind, s, t)
            files.append({"file": name, "label": label, "n": len(texts),
                          "flagged": round(float(f.mean()), 4) if len(texts) else None})
            ys.append(np.full(len(texts), label == "bad"))
            ss.append(s)
    y, s = np.concatenate(ys), np.concatenate(ss)
    out = {"model": path, "kind": kind, "threshold": t, "files": files}
    if y.any() and (~y).any():
        out.update(common.prf(y, flagged(kind, s, t)))
        out["auc"] = round(common.auc(y, s if _FLAGS[kind] == "high" else -s), 4)
        tf = threshold_for_fpr(kind, s[~y], fpr)
        out.update({"fpr_target": fpr, "threshold_at_fpr": tf,
                    "recall_at_fpr": round(float(flagged(kind, s[y], tf).mean()), 4)})
    return out


def format_report(r: dict) -> str:
    flag = "P(spam) >=" if r["kind"] == "spam_fasttext" else "score <"
    lines = [f"{r['model']} ({r['kind']}): flagged = {flag} {r['threshold']:.4g}", "",
             f"{'file':<48} {'label':<5} {'docs':>7} {'flagged':>8}"]
    for f in r["files"]:
        share = "-" if f["flagged"] is None else f"{f['flagged']:.2%}"
        lines.append(f"{f['file'][-48:]:<48} {f['label']:<5} {f['n']:>7} {share:>8}")
    if "auc" in r:
        lines += ["", f"precision {r['precision']:.4f}  recall {r['recall']:.4f}  F1 {r['f1']:.4f}  ROC AUC {r['auc']:.4f}",
                  f"threshold for at most {r['fpr_target']:.1%} of good texts flagged: {flag} {r['threshold_at_fpr']:.6g} "
                  f"(recall there {r['recall_at_fpr']:.4f})"]
    return "\n".join(lines)


def genre_table(rows, spam_path: str, quality_path: str, split: str = "test", alpha: float = 9.0) -> dict:
    """The recipe's figures on one split (recipe.Row list): per genre the share the spam filter flags at its
    threshold, the quality score's mean and its expected keep rate under pareto(alpha) (the pangu
    settings), the spam recall on SMS and e-mail spam, and the quality ROC AUC of high-quality genres vs
    junk web, spam and user comments."""
    from corpusforge.models import quality, recipe

    texts = recipe.by_genre(rows, split)
    kind, spam_score, t = scorer(spam_path)
    _, q_score, _ = scorer(quality_path)
    genres, pos, neg = {}, [], []
    for g in sorted(texts):
        p, q = spam_score(texts[g]), q_score(texts[g])
        genres[g] = {"n": len(texts[g]), "spam_flagged": round(float(flagged(kind, p, t).mean()), 4),
                     "quality_mean": round(float(q.mean()), 4),
                     "quality_keep_pareto": round(float(quality.keep_probability(q, alpha).mean()), 4)}
        role = recipe.ROLES[g][1]
        if role == "hq":
            pos.append(q)
        elif role == "lq":
            neg.append(q)
    y = np.concatenate([np.ones(sum(map(len, pos)), bool), np.zeros(sum(map(len, neg)), bool)])
    return {"split": split, "spam_threshold": t, "genres": genres,
            "sms_spam_recall": genres.get("sms_spam", {}).get("spam_flagged"),
            "email_spam_recall": genres.get("email_spam", {}).get("spam_flagged"),
            "quality_auc": round(common.auc(y, np.concatenate(pos + neg)), 4) if len(pos) and len(neg) else None}


def format_genre_table(r: dict, old: dict | None = None) -> str:
    """Markdown: one row per genre; with `old`, the old models' figures beside the new ones."""
    head = "| genre | docs | spam flagged | quality keep (pareto) |"
    lines = [f"{r['split']} split, spam threshold {r['spam_threshold']:.2f}" + (", old → new" if old else ""), "",
             head, "|---|---|---|---|"]
    for g, v in r["genres"].items():
        o = (old or {}).get("genres", {}).get(g)
        fmt = (lambda k: f"{o[k]:.2%} → {v[k]:.2%}") if o else (lambda k: f"{v[k]:.2%}")
        lines.append(f"| {g} | {v['n']} | {fmt('spam_flagged')} | {fmt('quality_keep_pareto')} |")
    for k in ("sms_spam_recall", "email_spam_recall", "quality_auc"):
        ov = f"{old[k]} → " if old and old.get(k) is not None else ""
        lines.append(f"\n{k}: {ov}{r[k]}")
    return "\n".join(lines)
