"""`corpusforge train`: PanGu-α on the sampler's shards. AdamW, linear warmup then cosine decay,
gradient clipping, periodic validation, and checkpoints that resume exactly: the checkpoint holds the
model, the optimizer, the RNG states and the data cursor, and the batch at step s is a pure function of
(seed, s), so an interrupted + resumed run logs the same losses as an uninterrupted one."""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass

import numpy as np

from corpusforge.errors import CorpusforgeError
from corpusforge.io import overlap, staging
from corpusforge.io.writers import TMP_MARK, atomic_file, write_json
from corpusforge.rules_files import sha256_file
from corpusforge.sample.tokenizer import write_hf_files
from corpusforge.train import require_torch


@dataclass
class TrainArgs:
    data: str
    out: str
    config: str = "tiny"
    steps: int = 200
    batch_size: int = 8
    lr: float = 3e-3
    min_lr_frac: float = 0.1
    warmup: int | None = None  # default: 10 % of steps, at most 200
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    seed: int = 1234
    seq_len: int | None = None  # default: the model config's
    eval_every: int = 50
    eval_tokens: int = 65536
    val_frac: float = 0.05
    checkpoint_every: int | None = None  # default: eval_every
    device: str = "auto"
    resume: bool = False
    overwrite: bool = False
    stop_at: int | None = None  # stop after this step with a checkpoint, as an interruption would
    progress: bool = True


# Arguments that must match for --resume to continue the same run.
_RESUME_KEYS = ("config", "steps", "batch_size", "lr", "min_lr_frac", "warmup", "weight_decay", "grad_clip",
                "seed", "seq_len", "val_frac")


def lr_at(step: int, a: TrainArgs) -> float:
    """Learning rate for optimizer step `step` (0-based): linear warmup, then cosine to min_lr_frac·lr."""
    w = a.warmup
    if step < w:
        return a.lr * (step + 1) / w
    t = min(1.0, (step - w) / max(1, a.steps - w))
    return a.lr * (a.min_lr_frac + (1 - a.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * t)))


def summary(r: dict, out: str) -> str:
    """The line printed after `corpusforge train`."""
    ev = r["eval"] or {}
    state = "finished" if r["finished"] else "stopped (resume with --resume)"
    return (f"{state} at step {r['step']}: {r['tokens']} tokens, {r['tokens_per_s']:,.0f} tokens/s"
            + (f", eval loss {ev['eval_loss']:.4f}, eval ppl {ev['eval_ppl']:.2f}" if ev else "")
            + f"; log: {os.path.join(out, 'log.jsonl')}")


def pick_device(name: str) -> str:
    torch = require_torch()
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise CorpusforgeError("no_gpu", "--device cuda but torch sees no CUDA device (use --device auto or cpu)")
    return name


def _read_log(path: str, upto: int) -> list[str]:
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        return [ln for ln in f if ln.strip() and json.loads(ln)["step"] <= upto]


def train(a: TrainArgs) -> dict:
    """Holds OUT (marked as a train output, locked) for the run; --overwrite empties an earlier one,
    leftovers of a killed checkpoint write included."""
    if a.steps < 1 or a.batch_size < 1:
        raise CorpusforgeError("bad_config", "--steps and --batch-size must be >= 1")
    overlap.check_no_overlap(a.out, [a.data])
    # on an object store OUT is built in a local folder and uploaded at each checkpoint, model.pt last
    with staging.output_dir(a.out, "train", overwrite=a.overwrite, resume=a.resume, last=("model.pt",)) as (out, sync):
        return _train(a, out, sync)


class _State:
    """A run's model, optimizer and position; what a checkpoint holds."""

    def __init__(self, a: TrainArgs, cfg, device: str, key: dict):
        torch = require_torch()
        from corpusforge.train.model import PanguAlpha

        torch.manual_seed(a.seed)
        self.model = PanguAlpha(cfg).to(device)
        decay = [p for p in self.model.parameters() if p.dim() >= 2]
        no_decay = [p for p in self.model.parameters() if p.dim() < 2]
        self.opt = torch.optim.AdamW([{"params": decay, "weight_decay": a.weight_decay},
                                      {"params": no_decay, "weight_decay": 0.0}], lr=a.lr, betas=(0.9, 0.95), eps=1e-8)
        self.a, self.device, self.key = a, device, key
        self.step = self.tokens = 0

    def save(self, path: str) -> None:
        torch = require_torch()
        ck = {"key": self.key, "step": self.step, "tokens": self.tokens, "cursor": self.step * self.a.batch_size,
              "model": self.model.state_dict(), "optimizer": self.opt.state_dict(),
              "rng": {"torch": torch.get_rng_state(),
                      "cuda": torch.cuda.get_rng_state_all() if self.device == "cuda" else None}}
        with atomic_file(path) as f:
            torch.save(ck, f)

    def restore(self, ckpt_path: str, log_path: str) -> None:
        """--resume from the checkpoint; a fresh run drops an earlier log."""
        torch = require_torch()
        if self.a.resume and os.path.exists(ckpt_path):
            ck = torch.load(ckpt_path, map_location="cpu", weights_only=False)
            if ck["key"] != self.key:
                diff = sorted(k for k in self.key if ck["key"].get(k) != self.key[k])
                raise CorpusforgeError("resume_mismatch", f"{ckpt_path}: run differs in {', '.join(diff)}")
            self.model.load_state_dict(ck["model"])
            self.opt.load_state_dict(ck["optimizer"])
            torch.set_rng_state(ck["rng"]["torch"])
            if self.device == "cuda" and ck["rng"].get("cuda") is not None:
                torch.cuda.set_rng_state_all(ck["rng"]["cuda"])
            self.step, self.tokens = ck["step"], ck["tokens"]
            assert ck["cursor"] == self.step * self.a.batch_size
            kept = _read_log(log_path, self.step)  # rows after the checkpoint are recomputed identically
            with atomic_file(log_path, "w") as f:
                f.writelines(kept)
        elif self.a.resume:
            raise CorpusforgeError("nothing_to_resume", f"{ckpt_path}: no checkpoint to resume from")
        elif os.path.exists(log_path):
            os.unlink(log_path)


def _train(a: TrainArgs, out: str, sync) -> dict:
    from corpusforge.train.model import param_count

    a.warmup = min(200, max(1, a.steps // 10)) if a.warmup is None else a.warmup
    a.checkpoint_every = a.checkpoint_every or a.eval_every
    device = pick_device(a.device)
    ckpt_path, log_path = os.path.join(out, "checkpoint.pt"), os.path.join(out, "log.jsonl")
    for name in os.listdir(out):  # temp files of a killed write (OUT is ours and locked)
        if name.startswith(TMP_MARK) and os.path.isfile(os.path.join(out, name)):
            os.unlink(os.path.join(out, name))
    data_dir = staging.local_shards(a.data)  # memory-mapping needs local files
    cfg, data, val_docs, tok_src = _load_data(a, data_dir)
    st = _State(a, cfg, device, {k: getattr(a, k) for k in _RESUME_KEYS} | {"data_sha256": _shards_key(data_dir)})
    st.restore(ckpt_path, log_path)
    shutil.copyfile(tok_src, os.path.join(out, "tokenizer.json"))
    write_hf_files(out, cfg.seq_len)  # AutoTokenizer.from_pretrained(run dir) works
    write_json(os.path.join(out, "config.json"), {
        "model": cfg.to_dict(), "params": param_count(cfg),
        "train": {k: v for k, v in asdict(a).items() if k not in ("resume", "overwrite", "stop_at", "progress")},
        "eod_id": data.eod_id, "data": {"dir": staging.absolute(a.data), "sha256": st.key["data_sha256"],
                                        "train_docs": len(data.train_docs), "val_docs": len(data.val_docs),
                                        "train_tokens": data.train_tokens},
        "tokenizer_sha256": sha256_file(tok_src), "device": device})
    result = _loop(st, data, val_docs, cfg.seq_len, ckpt_path, log_path, sync)
    if st.step >= a.steps:
        with atomic_file(os.path.join(out, "model.pt")) as f:
            require_torch().save(st.model.state_dict(), f)
    return result


def _load_data(a: TrainArgs, data_dir: str):
    """(model config, shard data, the fixed validation slice, the shards' tokenizer path)."""
    from corpusforge.sample.shards import load_manifest
    from corpusforge.sample.tokenizer import load as load_tokenizer
    from corpusforge.train.data import ShardData
    from corpusforge.train.model import get_config

    manifest = load_manifest(data_dir)
    tok_src = os.path.join(data_dir, (manifest.get("tokenizer") or {}).get("path", "tokenizer.json"))
    vocab = load_tokenizer(tok_src).get_vocab_size(with_added_tokens=True)
    cfg = get_config(a.config, vocab_size=vocab, seq_len=a.seq_len)
    a.seq_len = cfg.seq_len
    data = ShardData(data_dir, cfg.seq_len, a.seed, a.val_frac)
    val_docs, n = [], 0
    for d in data.val_token_docs():  # a fixed slice of the validation documents keeps eval cheap
        if n >= a.eval_tokens:
            break
        val_docs.append(d)
        n += len(d)
    return cfg, data, val_docs, tok_src


def _loop(st: _State, data, val_docs: list, seq_len: int, ckpt_path: str, log_path: str, sync) -> dict:
    """Steps until --steps (or --stop-at): log rows, evals every eval_every, checkpoints every checkpoint_every
    (each followed by sync(), the upload of OUT when it is on an object store)."""
    torch = require_torch()
    from tqdm import tqdm

    from corpusforge.train import evaluate

    a, model, opt = st.a, st.model, st.opt

    def run_eval() -> dict:
        r = evaluate.ppl(model, val_docs, data.eod_id, st.device)
        return {"step": st.step, "tokens": st.tokens, "eval_loss": r["loss"], "eval_ppl": r["ppl"], "eval_tokens": r["tokens"]}

    last = a.steps if a.stop_at is None else min(a.steps, a.stop_at)
    log = open(log_path, "a", encoding="utf-8")
    bar = tqdm(total=a.steps, initial=st.step, desc="train", unit="step", disable=not a.progress)
    t0, tok0 = time.perf_counter(), st.tokens
    side = 0.0  # seconds spent in eval + checkpoints: kept out of the training tokens/s
    last_eval = None
    model.train()
    try:
        while st.step < last:
            xy = torch.from_numpy(data.batch(st.step * a.batch_size, a.batch_size)).to(st.device)
            lr = lr_at(st.step, a)
            for g in opt.param_groups:
                g["lr"] = lr
            loss = model.loss(xy[:, :-1], xy[:, 1:])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), a.grad_clip)
            opt.step()
            st.step += 1
            st.tokens += a.batch_size * seq_len
            row = {"step": st.step, "tokens": st.tokens, "loss": float(loss.item()), "lr": lr}
            log.write(json.dumps(row) + "\n")
            ts = time.perf_counter()
            if st.step % a.eval_every == 0 or st.step == a.steps:
                last_eval = run_eval()
                log.write(json.dumps(last_eval) + "\n")
            log.flush()
            if st.step % a.checkpoint_every == 0 or st.step == last:
                st.save(ckpt_path)
                sync()
            side += time.perf_counter() - ts
            rate = (st.tokens - tok0) / max(time.perf_counter() - t0 - side, 1e-9)
            bar.set_postfix(loss=f"{row['loss']:.3f}", tok_s=f"{rate:,.0f}",
                            **({"eval_ppl": f"{last_eval['eval_ppl']:.1f}"} if last_eval else {}))
            bar.update(1)
    finally:
        bar.close()
        log.close()
    elapsed = time.perf_counter() - t0 - side
    return {"step": st.step, "tokens": st.tokens, "finished": st.step >= a.steps,
            "tokens_per_s": (st.tokens - tok0) / max(elapsed, 1e-9), "eval_checkpoint_s": side, "eval": last_eval}


def _shards_key(d: str) -> str:
    return sha256_file(os.path.join(d, "shards.json"))


def read_log(run_dir: str) -> list[dict]:
    with open(os.path.join(run_dir, "log.jsonl"), encoding="utf-8") as f:
        return [json.loads(ln) for ln in f if ln.strip()]


def losses(run_dir: str) -> np.ndarray:
    return np.array([r["loss"] for r in read_log(run_dir) if "loss" in r])
