"""Training data from the sampler's shards: memory-mapped, split and shuffled by document.

A document (which already ends with EOD) is the unit of the train/validation split and of the
shuffle: validation documents are never trained on. Each epoch lays the training documents out in a
seeded order as one virtual token stream (only the index is permuted, tokens stay in the memmaps)
and cuts it into (seq_len + 1)-token windows. Window w of the run is a pure function of (seed, w),
so the data position in a checkpoint is one integer and resume replays nothing.
"""

from __future__ import annotations

import hashlib
import os

import numpy as np

from corpusforge.errors import CorpusforgeError


def _u64(*parts) -> int:
    return int.from_bytes(hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=8).digest(), "big")


class ShardData:
    def __init__(self, shard_dir: str, seq_len: int, seed: int, val_frac: float = 0.05, min_val_docs: int = 1):
        from corpusforge.sample.shards import load_manifest, open_shards

        self.dir = os.path.abspath(shard_dir)
        self.manifest = load_manifest(self.dir)
        self.shards = open_shards(self.dir)
        self.eod_id = int(self.manifest["eod_id"])
        self.seq_len, self.seed = seq_len, seed
        docs = [(s, d) for s, sh in enumerate(self.shards) for d in range(len(sh))]
        if len(docs) < 2:
            raise CorpusforgeError("too_little_data", f"{self.dir}: {len(docs)} documents; need at least 2 "
                                   "(one for training, one for validation)")
        # Validation documents: the val_frac smallest hashes of (shard file, doc index) — not the seed, so
        # every seed of a quality-eval evaluates on the same documents.
        names = [e["bin"] for e in self.manifest["shards"]]
        h = np.array([_u64("val", names[s], d) for s, d in docs], dtype=np.uint64)
        n_val = max(min_val_docs, int(round(val_frac * len(docs))))
        order = np.argsort(h, kind="stable")
        val = np.zeros(len(docs), bool)
        val[order[:n_val]] = True
        self.train_docs = np.array([docs[i] for i in np.flatnonzero(~val)], dtype=np.int64).reshape(-1, 2)
        self.val_docs = np.array([docs[i] for i in np.flatnonzero(val)], dtype=np.int64).reshape(-1, 2)
        self._sizes = np.array([int(self.shards[s].sizes[d]) for s, d in self.train_docs], dtype=np.int64)
        self.train_tokens = int(self._sizes.sum())
        self.windows_per_epoch = (self.train_tokens - 1) // seq_len
        if self.windows_per_epoch < 1:
            raise CorpusforgeError("too_little_data", f"{self.dir}: {self.train_tokens} training tokens, fewer than "
                                   f"one window of seq_len {seq_len} + 1")
        self._epoch = None

    def doc(self, sd) -> np.ndarray:
        return self.shards[int(sd[0])][int(sd[1])]

    def _layout(self, epoch: int):
        if self._epoch != epoch:
            rng = np.random.default_rng(_u64("epoch", self.seed, epoch))
            perm = rng.permutation(len(self.train_docs))
            self._perm, self._ends = perm, np.cumsum(self._sizes[perm])
            self._epoch = epoch
        return self._perm, self._ends

    def window(self, w: int) -> np.ndarray:
        """The w-th (seq_len + 1)-token window of the run (epochs follow each other)."""
        epoch, k = divmod(w, self.windows_per_epoch)
        perm, ends = self._layout(epoch)
        start, stop = k * self.seq_len, k * self.seq_len + self.seq_len + 1
        out, pos = [], start
        i = int(np.searchsorted(ends, start, side="right"))
        while pos < stop:
            dstart = int(ends[i] - self._sizes[perm[i]])
            toks = self.doc(self.train_docs[perm[i]])
            take = toks[pos - dstart: stop - dstart]
            out.append(np.asarray(take, dtype=np.int64))
            pos += len(take)
            i += 1
        return np.concatenate(out)

    def batch(self, cursor: int, batch_size: int) -> np.ndarray:
        """(batch_size, seq_len + 1) int64: windows cursor .. cursor + batch_size - 1."""
        return np.stack([self.window(cursor + b) for b in range(batch_size)])

    def val_token_docs(self) -> list[np.ndarray]:
        return [np.asarray(self.doc(sd), dtype=np.int64) for sd in self.val_docs]
