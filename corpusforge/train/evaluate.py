"""Perplexity of token documents under a trained run (eval-ppl, quality-eval, the neural stage backend).

Each document is scored on its own: the context starts with EOD (the sampler's document separator),
so no document borrows context from its neighbour and a per-document score does not depend on which
other documents share its batch. Documents longer than seq_len are scored in consecutive chunks.
"""

from __future__ import annotations

import json
import os

import numpy as np

from corpusforge.errors import CorpusforgeError
from corpusforge.train import require_torch


def _chunks(doc: np.ndarray, eod: int, L: int):
    """(input, target) pairs of at most L tokens covering every token of doc exactly once."""
    seq = np.concatenate([[eod], np.asarray(doc, dtype=np.int64)])
    for s in range(0, len(seq) - 1, L):
        yield seq[s:s + L], seq[s + 1:s + L + 1]


def doc_nll(model, docs: list[np.ndarray], eod: int, device: str = "cpu", batch_tokens: int = 16384):
    """(sum of -log p in nats, token count) per document, as float64 / int64 arrays."""
    torch = require_torch()
    L = model.cfg.seq_len
    items = [(i, x, y) for i, d in enumerate(docs) for x, y in _chunks(d, eod, L)]
    nll = np.zeros(len(docs), dtype=np.float64)
    cnt = np.zeros(len(docs), dtype=np.int64)
    # Longest first so each padded batch wastes little; the order never changes a document's sum.
    items.sort(key=lambda t: -len(t[1]))
    per = max(1, batch_tokens // L)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for b in range(0, len(items), per):
            group = items[b:b + per]
            T = max(len(x) for _, x, _ in group)
            X = torch.full((len(group), T), eod, dtype=torch.long)
            Y = torch.full((len(group), T), -1, dtype=torch.long)
            for r, (_, x, y) in enumerate(group):
                X[r, :len(x)] = torch.from_numpy(x)
                Y[r, :len(y)] = torch.from_numpy(y)
            X, Y = X.to(device), Y.to(device)
            tok = model.loss(X, Y, reduction="none").view(len(group), T).double().cpu().numpy()
            for r, (i, _, y) in enumerate(group):
                nll[i] += tok[r, :len(y)].sum()
                cnt[i] += len(y)
    model.train(was_training)
    return nll, cnt


def ppl(model, docs: list[np.ndarray], eod: int, device: str = "cpu") -> dict:
    nll, cnt = doc_nll(model, docs, eod, device)
    total = int(cnt.sum())
    if total == 0:
        raise CorpusforgeError("empty_heldout", "no tokens to evaluate")
    return {"ppl": float(np.exp(nll.sum() / total)), "loss": float(nll.sum() / total), "tokens": total, "docs": len(docs)}


RUN_FILES = ("model.pt", "config.json", "tokenizer.json")  # what a finished train run needs to be evaluated


class Run:
    """A finished (or checkpointed) `corpusforge train` run: model, tokenizer and EOD id."""

    def __init__(self, run_dir: str, device: str = "cpu", name: str | None = None):
        torch = require_torch()
        from corpusforge.sample.tokenizer import load as load_tokenizer
        from corpusforge.train.model import PanguAlpha, PanguConfig

        self.dir, self.name = run_dir, name or run_dir  # name: where the files were copied from
        cfg_path, model_path = os.path.join(run_dir, "config.json"), os.path.join(run_dir, "model.pt")
        for n in RUN_FILES:
            if not os.path.isfile(os.path.join(run_dir, n)):
                raise CorpusforgeError("bad_run", f"{os.path.join(self.name, n)}: missing (not a finished `corpusforge train` run)")
        with open(cfg_path, encoding="utf-8") as f:
            self.config = json.load(f)
        self.model = PanguAlpha(PanguConfig(**self.config["model"]))
        self.model.load_state_dict(torch.load(model_path, map_location="cpu", weights_only=True))
        self.model.to(device).eval()
        self.device = device
        self.eod = int(self.config["eod_id"])
        self.tokenizer = load_tokenizer(os.path.join(run_dir, "tokenizer.json"))  # the sampler's settings

    def files(self) -> list[str]:
        return [os.path.join(self.dir, n) for n in RUN_FILES]

    def encode(self, texts: list[str]) -> list[np.ndarray]:
        """Text → token ids ending in EOD, the way the sampler writes documents."""
        enc = self.tokenizer.encode_batch_fast(texts, add_special_tokens=False)
        return [np.array(e.ids + [self.eod], dtype=np.int64) for e in enc]

    def doc_ppl(self, texts: list[str]) -> np.ndarray:
        nll, cnt = doc_nll(self.model, self.encode(texts), self.eod, self.device)
        return np.exp(nll / np.maximum(cnt, 1))


def heldout_docs(run: Run, path: str, text_field: str = "text") -> list[np.ndarray]:
    """Token documents of HELDOUT: a shard directory as stored (must share the run's tokenizer), or
    text (run dir, .jsonl/.parquet/.txt) tokenized with the run's tokenizer."""
    from corpusforge.io import fs, store, staging
    from corpusforge.rules_files import sha256_file

    if store.isfile(fs.join(path, "shards.json")):
        from corpusforge.sample.shards import load_manifest, open_shards

        local = staging.local_shards(path)
        m = load_manifest(local)
        if sha256_file(os.path.join(local, m["tokenizer"]["path"])) != run.config["tokenizer_sha256"]:
            raise CorpusforgeError("tokenizer_mismatch", f"{path}: shards use another tokenizer than {run.name}")
        return [np.asarray(d, dtype=np.int64) for s in open_shards(local) for d in (s[i] for i in range(len(s)))]
    from corpusforge.sample.docs import iter_texts

    return run.encode([t for _, t in iter_texts([path], text_field)])


def eval_ppl(model_dir: str, data: str, out: str | None = None, text_field: str = "text", device: str = "auto",
             write_cutoffs: bool = False) -> dict:
    """Held-out perplexity of a trained run on DATA, written to OUT (default MODEL/eval_ppl.json); with
    write_cutoffs, the run's perplexity bucket cut-offs too (MODEL/ppl_cutoffs.json). MODEL, DATA and OUT
    may be on an object store (the model's files and shards are copied down first)."""
    from corpusforge.io import fs, staging
    from corpusforge.io.writers import write_json
    from corpusforge.rules_files import sha256_file
    from corpusforge.train.trainer import pick_device

    with staging.local_tree(model_dir, RUN_FILES) as local:
        run = Run(local, device=pick_device(device), name=model_dir)
        model_sha = sha256_file(os.path.join(local, "model.pt")) if write_cutoffs else None
    docs = heldout_docs(run, data, text_field)
    res = ppl(run.model, docs, run.eod, run.device) | {"model": staging.absolute(model_dir), "data": staging.absolute(data)}
    write_json(out or fs.join(model_dir, "eval_ppl.json"), res)
    if write_cutoffs:
        from corpusforge.train import charlm

        nll, cnt = doc_nll(run.model, docs, run.eod, run.device)
        write_json(fs.join(model_dir, "ppl_cutoffs.json"),
                   {"kind": "ppl_cutoffs", "cutoffs": charlm.cutoffs(np.exp(nll / np.maximum(cnt, 1))),
                    "percentiles": list(charlm.BUCKET_PERCENTILES), "reference": staging.absolute(data),
                    "reference_docs": len(docs), "model_sha256": model_sha})
    return res
