"""`corpusforge train-spam` and `train-quality`: train from labelled JSONL/txt files, print held-out
figures, write MODEL and MODEL.json (hyperparameters, data sha256s, metrics)."""

from __future__ import annotations

import json


def _texts(paths, field):
    from corpusforge.models.common import read_texts

    return [t for p in paths for t in read_texts(p, field)]


def _cmd_train_spam(args) -> int:
    from corpusforge.models import spam
    from corpusforge.models.common import data_hashes

    ham, sp = _texts([args.pos], args.text_field), _texts([args.neg], args.text_field)
    m = spam.train(ham, sp, args.out, holdout=args.holdout, threshold=args.threshold,
                   info={"data_sha256": data_hashes([args.pos, args.neg])})
    h = m.get("heldout", {})
    print(f"spam held-out ({h.get('n', 0)} docs): precision {h.get('precision', 0):.4f} recall {h.get('recall', 0):.4f} "
          f"F1 {h.get('f1', 0):.4f}")
    print(f"model: {args.out}  sidecar: {args.out}.json")
    return 0


def _cmd_train_quality(args) -> int:
    from corpusforge.models import quality
    from corpusforge.models.common import data_hashes

    hq, lq = _texts([args.hq], args.text_field), _texts([args.lq], args.text_field)
    m = quality.train(hq, lq, args.out, holdout=args.holdout, info={"data_sha256": data_hashes([args.hq, args.lq])})
    print(f"quality held-out AUC {m.get('heldout_auc', float('nan')):.4f} ({m.get('n_heldout', 0)} docs)")
    print("keep probability (2 - s)^-alpha, alpha=9: " + json.dumps({f"{s:g}": round(p, 4) for s, p in quality.keep_curve(9.0)}))
    print(f"model: {args.out}  sidecar: {args.out}.json")
    return 0


def _cmd_eval_model(args) -> int:
    from corpusforge.models import evaluate
    from corpusforge.rules_files import resolve

    good = {p: _texts([p], args.text_field) for p in args.pos}
    bad = {p: _texts([p], args.text_field) for p in args.neg or []}
    r = evaluate.evaluate(resolve(args.model), good, bad, fpr=args.fpr, threshold=args.threshold)
    print(json.dumps(r, ensure_ascii=False, indent=2) if args.json else evaluate.format_report(r))
    return 0


def add_cli(sub) -> None:
    from corpusforge.cli import add_storage_opt

    e = sub.add_parser("eval-model", help="score labelled files with a spam or quality model (share flagged, P/R/F1, AUC)",
                       description="Score texts the model should pass (--pos) and texts it should flag (--neg). Prints, per "
                       "file, the share flagged at the model's threshold (its sidecar's, or --threshold); over all files the "
                       "precision/recall/F1 of flagging (spam / low quality = the positive class), ROC AUC, and the threshold "
                       "that would flag at most --fpr of the --pos texts. Use it after `train-spam`/`train-quality` on your "
                       "own data, before pointing a stage at the model.")
    e.add_argument("model", help="a model file with its MODEL.json sidecar (.bin spam_fasttext, .npy quality_lr), a "
                   "bundled name such as models/spam_fasttext.bin, or a URI")
    e.add_argument("--pos", nargs="+", required=True, metavar="FILE",
                   help="texts the model should pass (JSONL with a text field, or .txt one document a line)")
    e.add_argument("--neg", nargs="+", metavar="FILE", help="texts the model should flag (spam, low quality)")
    e.add_argument("--threshold", type=float, help="flag at this threshold instead of the model's (spam: P(spam) >= T; "
                   "quality: score < T)")
    e.add_argument("--fpr", type=float, default=0.02, help="false-positive rate for the suggested threshold (default 0.02)")
    e.add_argument("--text-field", default="text")
    e.add_argument("--json", action="store_true", help="one JSON object instead of the table")
    add_storage_opt(e)
    e.set_defaults(fn=_cmd_eval_model)

    t = sub.add_parser("train-spam", help="train the fastText spam classifier (spam_fasttext stage)",
                       description="Train a fastText spam classifier: POS = normal/high-quality texts, NEG = spam. "
                       "Prints precision/recall/F1 (spam = positive class) on a hash-chosen held-out split.")
    t.add_argument("pos", help="normal texts (JSONL with a text field, or .txt one document a line)")
    t.add_argument("neg", help="spam texts (same formats)")
    t.add_argument("--out", required=True, help="model path (.bin); MODEL.json sidecar is written beside it")
    t.add_argument("--holdout", type=float, default=0.1, help="held-out share (default 0.1)")
    t.add_argument("--threshold", type=float, default=0.5, help="P(spam) at which the stage drops (default 0.5)")
    t.add_argument("--text-field", default="text")
    t.set_defaults(fn=_cmd_train_spam)
    q = sub.add_parser("train-quality", help="train the GPT-3-style quality scorer (quality_lr stage)",
                       description="Hashed unigram+bigram features + logistic regression: HQ = high quality, "
                       "LQ = low quality. Prints held-out AUC and the keep curve.")
    q.add_argument("hq", help="high-quality texts (JSONL with a text field, or .txt one document a line)")
    q.add_argument("lq", help="low-quality texts")
    q.add_argument("--out", required=True, help="model path (.npy); MODEL.json sidecar is written beside it")
    q.add_argument("--holdout", type=float, default=0.1)
    q.add_argument("--text-field", default="text")
    q.set_defaults(fn=_cmd_train_quality)
