"""The fast perplexity backend: an interpolated Kneser-Ney character n-gram LM in numpy (no torch).

Characters map to small ids (0 = document boundary, 1 = unknown); an n-gram of k ids packs into one
uint64, so training is np.unique over packed keys and scoring a whole batch is one np.searchsorted per
order plus a vectorized KN recursion — no Python loop per character. The model file is a zip of .npy
arrays written with fixed timestamps, so the same training text gives byte-identical bytes.
"""

from __future__ import annotations

import io
import zipfile

import numpy as np

from corpusforge.errors import CorpusforgeError

BOUNDARY, UNK = 0, 1
KIND = "char_ngram_lm"


def codepoints(text: str) -> np.ndarray:
    """Normalized code points: digits → 0, ASCII letters lower-cased, every space variant → ' ' (so
    numbers and casing do not blow up the vocabulary)."""
    return _normalize(np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32).copy())


def _normalize(cp: np.ndarray) -> np.ndarray:
    cp[(cp >= 0x30) & (cp <= 0x39)] = 0x30
    cp[(cp >= 0xFF10) & (cp <= 0xFF19)] = 0x30
    up = (cp >= 0x41) & (cp <= 0x5A)
    cp[up] += 0x20
    cp[(cp == 0x09) | (cp == 0x3000) | (cp == 0xA0)] = 0x20
    return cp


def _pack(ids: np.ndarray, k: int, bits: int) -> np.ndarray:
    """Key of the k ids ending at each position i >= k-1 (ids already padded by the caller)."""
    n = len(ids) - k + 1
    key = np.zeros(n, dtype=np.uint64)
    for j in range(k):
        key = (key << np.uint64(bits)) | ids[j:j + n].astype(np.uint64)
    return key


def _lookup(keys: np.ndarray, values: np.ndarray, q: np.ndarray) -> np.ndarray:
    if len(keys) == 0:
        return np.zeros(len(q), dtype=values.dtype)
    i = np.minimum(np.searchsorted(keys, q), len(keys) - 1)
    return np.where(keys[i] == q, values[i], 0)


def _per_doc(lp: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    bounds = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    return np.exp(-np.add.reduceat(lp, bounds) / lengths)


def _count(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    u, c = np.unique(keys, return_counts=True)
    return u, c.astype(np.int64)


class CharLM:
    def __init__(self, arrays: dict[str, np.ndarray]):
        self.a = arrays
        self.order = int(arrays["order"][0])
        self.bits = int(arrays["bits"][0])
        self.vocab = arrays["vocab"]  # code point of each id >= 2
        self.V = len(self.vocab) + 2
        self._table = None
        self._packed = None

    # ---- text → ids --------------------------------------------------------------------------------
    def _ids(self, text: str, max_chars: int) -> np.ndarray:
        if self._table is None:  # dense code point → id table: one fancy-index per document
            t = np.full(0x110000, UNK, dtype=np.uint32)
            t[self.vocab] = np.arange(2, self.V, dtype=np.uint32)
            self._table = t
        cp = codepoints(text[:max_chars])
        return self._table[np.minimum(cp, 0x10FFFF)]

    def _stream(self, texts: list[str], max_chars: int) -> tuple[np.ndarray, np.ndarray]:
        """All documents back to back, each preceded by order-1 boundaries and followed by one (the
        boundary is predicted at the end, so an empty document still has a finite perplexity)."""
        pad = np.zeros(self.order - 1, dtype=np.uint32)
        parts, lengths = [], []
        for t in texts:
            ids = self._ids(t, max_chars)
            parts += [pad, ids, np.zeros(1, dtype=np.uint32)]
            lengths.append(len(ids) + 1)
        return (np.concatenate(parts) if parts else np.zeros(0, np.uint32)), np.asarray(lengths, dtype=np.int64)

    # ---- scoring -----------------------------------------------------------------------------------
    def _logprob_positions(self, stream: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """log P(id_i | previous order-1 ids) for every predicted position, in document order."""
        N, b = self.order, self.bits
        # Predicted positions: everything after each document's leading pad.
        starts = np.cumsum(np.concatenate([[0], lengths[:-1] + N - 1])) + N - 1
        pos = (np.repeat(starts - np.cumsum(np.concatenate([[0], lengths[:-1]])), lengths)
               + np.arange(int(lengths.sum())))
        p = np.full(len(pos), 1.0 / self.V)
        for k in range(1, N + 1):
            a = self.a
            grams = _pack(stream, k, b)[pos - (k - 1)]
            ctx = _pack(stream, k - 1, b)[pos - (k - 1)] if k > 1 else np.zeros(len(pos), np.uint64)
            c = _lookup(a[f"g{k}_keys"], a[f"g{k}_counts"], grams).astype(np.float64)
            total = _lookup(a[f"h{k}_keys"], a[f"h{k}_total"], ctx).astype(np.float64)
            types = _lookup(a[f"h{k}_keys"], a[f"h{k}_types"], ctx).astype(np.float64)
            d = float(a["discounts"][k - 1])
            seen = total > 0
            safe = np.where(seen, total, 1.0)
            p = np.where(seen, (np.maximum(c - d, 0.0) + d * types * p) / safe, p)
        return np.log(p)

    def perplexity_reference(self, texts: list[str], max_chars: int = 20000) -> np.ndarray:
        """Per-document perplexity per character (exp of the mean negative log-probability)."""
        if not texts:
            return np.zeros(0)
        stream, lengths = self._stream(texts, max_chars)
        return _per_doc(self._logprob_positions(stream, lengths), lengths)

    def perplexity(self, texts, max_chars: int = 20000) -> np.ndarray:
        """perplexity_reference's values (bit-equal) for a list of str or an Arrow string array, by one
        compiled pass per batch: the same lookups and the same float operations in the same order, per
        position, without the per-order arrays of every n-gram key."""
        from corpusforge.algorithms.utf8 import arrow_utf8

        try:
            from corpusforge.train.charlm_kernel import probabilities
        except ImportError:  # no numba
            return self.perplexity_reference(texts if isinstance(texts, list) else texts.to_pylist(), max_chars)
        u8, offs = arrow_utf8(texts)
        if len(offs) == 1:
            return np.zeros(0)
        if self._packed is None:
            self._packed = self._pack_tables()
        p, lengths = probabilities(u8, offs, max_chars, self.order, self.bits, 1.0 / self.V, *self._packed)
        return _per_doc(np.log(p), lengths)

    def _pack_tables(self) -> tuple:
        """The kernel's inputs: code point → id (after `codepoints`' normalization); per order o one hash
        table over the o-grams and the contexts of order o + 1 (the same o ids: a gram's row also holds
        what the next position needs as its context), rows (count, context total, context types); and
        the order-1 context (the empty one)."""
        from corpusforge.train.charlm_kernel import hash_table

        self._ids("", 0)  # builds self._table
        idmap = self._table[np.minimum(_normalize(np.arange(0x110000, dtype=np.uint32)), 0x10FFFF)]
        a, N = self.a, self.order
        keys, vals = [], []
        for o in range(1, N + 1):
            gk, hk = a[f"g{o}_keys"], (a[f"h{o + 1}_keys"] if o < N else np.zeros(0, np.uint64))
            k = np.union1d(gk, hk).astype(np.uint64)
            v = np.zeros((len(k), 3), np.uint64)
            v[np.searchsorted(k, gk), 0] = a[f"g{o}_counts"]
            if len(hk):
                at = np.searchsorted(k, hk)
                v[at, 1] = a[f"h{o + 1}_total"]
                v[at, 2] = a[f"h{o + 1}_types"].astype(np.float64).view(np.uint64)
            keys.append(k)
            vals.append(v)
        # Suffix closure: every gram's last o - 1 ids get a row of order o - 1 (all zeros where the model
        # has none: read exactly as a missing row). Then a gram missing at one order is missing at every
        # higher one, and the kernel stops looking up at the first miss (pruning breaks closure otherwise).
        for o in range(N - 1, 0, -1):
            sfx = np.setdiff1d(keys[o] & np.uint64((1 << (self.bits * o)) - 1), keys[o - 1])
            if len(sfx):
                k = np.concatenate([keys[o - 1], sfx])
                order_ = np.argsort(k, kind="stable")
                keys[o - 1] = k[order_]
                vals[o - 1] = np.concatenate([vals[o - 1], np.zeros((len(sfx), 3), np.uint64)])[order_]
        tab, start, mask = hash_table(np.concatenate(keys), np.concatenate(vals),
                                      np.cumsum([0] + [len(k) for k in keys]).astype(np.int64))
        empty = np.flatnonzero(a["h1_keys"] == 0)  # the order-1 context: no characters at all
        ctx1 = (float(a["h1_total"][empty[0]]), float(a["h1_types"][empty[0]])) if len(empty) else (0.0, 0.0)
        return idmap, tab, tab.view(np.float64), start, mask, *ctx1, a["discounts"].astype(np.float64)

    # ---- persistence -------------------------------------------------------------------------------
    def save(self, path: str) -> None:
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
            for name in sorted(self.a):
                buf = io.BytesIO()
                np.lib.format.write_array(buf, np.ascontiguousarray(self.a[name]), allow_pickle=False)
                zi = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                zi.compress_type = zipfile.ZIP_DEFLATED
                z.writestr(zi, buf.getvalue())

    @classmethod
    def load(cls, path: str) -> "CharLM":
        try:
            with np.load(path, allow_pickle=False) as z:
                return cls({k: z[k] for k in z.files})
        except (OSError, ValueError, zipfile.BadZipFile, KeyError) as e:
            raise CorpusforgeError("bad_model", f"{path}: not a char n-gram model ({e})") from None


def train(texts: list[str], order: int = 4, min_char_count: int = 2, prune: int = 1) -> CharLM:
    """Interpolated Kneser-Ney (Chen & Goodman) over characters.

    Highest order uses raw counts, lower orders continuation counts (distinct left contexts). n-grams
    of order >= 3 seen <= `prune` times are dropped (their mass returns through the back-off weight),
    which keeps the shipped file small at little cost in perplexity."""
    if order < 1:
        raise CorpusforgeError("bad_config", "order must be >= 1")
    cps = [codepoints(t) for t in texts]
    allcp = np.concatenate(cps) if cps else np.zeros(0, np.uint32)
    u, c = np.unique(allcp, return_counts=True)
    vocab = u[c >= min_char_count].astype(np.uint32)
    V = len(vocab) + 2
    bits = max(int(np.ceil(np.log2(V))), 1)
    if bits * order > 64:
        raise CorpusforgeError("bad_config", f"{V} characters x order {order} do not fit a 64-bit key; lower the order")
    lm = CharLM({"order": np.array([order]), "bits": np.array([bits]), "vocab": vocab})
    stream, _ = lm._stream(texts, max_chars=10**12)
    arrays = dict(lm.a)
    discounts = []
    for k in range(order, 0, -1):
        if k == order:
            g, cnt = _count(_pack(stream, k, bits))
        else:  # continuation count: the number of distinct ids seen before this k-gram
            g, cnt = _count(np.unique(_pack(stream, k + 1, bits)) & np.uint64((1 << (bits * k)) - 1))
        n1, n2 = int((cnt == 1).sum()), int((cnt == 2).sum())
        d = n1 / (n1 + 2 * n2) if n1 + 2 * n2 else 0.5
        discounts.append(d)
        keep = cnt > prune if (k >= 3 and prune) else np.ones(len(g), bool)
        # Context statistics use the unpruned counts; a pruned gram's discounted mass moves into the
        # back-off weight (stored as extra "types"), so every context stays normalized.
        ctx = g >> np.uint64(bits) if k > 1 else np.zeros(len(g), np.uint64)  # g is sorted, so is ctx
        hk, first = np.unique(ctx, return_index=True)
        total = np.add.reduceat(cnt, first)
        types = np.add.reduceat(np.ones(len(g)), first)
        dropped = np.add.reduceat(np.where(keep, 0.0, cnt - d), first)
        # A context whose grams were all pruned gives exactly the lower-order estimate: drop it too.
        live = np.add.reduceat(keep.astype(np.int64), first) > 0
        arrays[f"g{k}_keys"], arrays[f"g{k}_counts"] = g[keep], cnt[keep].astype(np.uint32)
        arrays[f"h{k}_keys"], arrays[f"h{k}_total"] = hk[live], total[live].astype(np.uint32)
        arrays[f"h{k}_types"] = (types + dropped / d)[live].astype(np.float64)
    arrays["discounts"] = np.array(discounts[::-1], dtype=np.float64)
    return CharLM(arrays)


# ---- the shipped default (scripts/train_char_lm.py) ------------------------------------------------
PROSE_FILES = ["prose/zhwiki_articles_100.jsonl", "prose/luxun_fiction_essays.jsonl"]
REFERENCE_FILE = "web/commoncrawl_2021-43_zh_100docs.jsonl"  # CCNet buckets web text by percentiles of web text
HOLDOUT_FRAC, HOLDOUT_SEED = 0.3, 9  # prose documents (by id) kept out of training for evaluation
BUCKET_PERCENTILES = (100 / 3, 200 / 3)  # CCNet: head / middle / tail thirds
BUCKETS = ("head", "middle", "tail")


def cutoffs(ppl: np.ndarray, percentiles=BUCKET_PERCENTILES) -> list[float]:
    return [float(np.percentile(ppl, q)) for q in percentiles]


def bucket(ppl: np.ndarray, cuts: list[float]) -> list[str]:
    """head: ppl <= first cutoff, tail: ppl > last cutoff, middle in between."""
    return [BUCKETS[i] for i in np.searchsorted(np.asarray(cuts, dtype=np.float64), ppl, side="left")]
