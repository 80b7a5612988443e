"""Vectorized MinHash over whole batches, LSH banding, and exact Jaccard verification.

Signatures follow datasketch ≥ 2.0's default "affine32" scheme bit for bit: for every shingle hash h,
hv = fmix32(h); value_k = (a_k * hv + b_k) mod 2^32 with (a, b) drawn exactly as
`datasketch.MinHash(num_perm, seed)` draws them; signature = min over shingles. So
`signatures(texts)[i] == MinHash(num_perm, seed, hashfunc=shingle_hash32).update_batch(shingles(text_i))`
and, with hash="sha1", equals datasketch's default hashfunc (sha1_hash32) too.

The default shingle hash ("poly64") is a polynomial over the shingle's code points mod 2^64 followed by
the MurmurHash3 64-bit finalizer; it is computed for every shingle of a batch at once, by a numba
kernel fused per shingle, or in numpy array steps when numba is missing (no Python loop per shingle
either way; both are tested equal). `shingle_hash32` is the same function for one shingle, for datasketch.
"""

from __future__ import annotations

import functools
import hashlib

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from corpusforge.primitives import fmix64

_POLY = np.uint64(0x100000001B3)
_U32 = np.uint64(0xFFFFFFFF)
EMPTY = np.uint32(0xFFFFFFFF)  # signature value of a document with no shingles (datasketch's empty sketch)


def _fmix32(h: np.ndarray) -> np.ndarray:
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


def shingle_hash64(shingle: str) -> int:
    """The poly64 hash of one shingle (reference for the vectorized path)."""
    h = 0
    for ch in shingle:
        h = (h * 0x100000001B3 + ord(ch)) & 0xFFFFFFFFFFFFFFFF
    with np.errstate(over="ignore"):
        return int(fmix64(np.array([h], np.uint64))[0])


def shingle_hash32(shingle: str) -> int:
    """32-bit shingle hash as used in signatures; pass as datasketch's `hashfunc` to compare."""
    return shingle_hash64(shingle) & 0xFFFFFFFF


def sha1_hash32(data: bytes) -> int:
    return int.from_bytes(hashlib.sha1(data).digest()[:4], "little")


# ------------------------------------------------------------------------------------ normalization


@functools.lru_cache(maxsize=1)
def _drop_table() -> np.ndarray:
    """True for code points removed before shingling: whitespace, punctuation, controls, symbols' spacing."""
    from corpusforge.models.featurize import CATEGORIES, in_categories

    drop = in_categories([c for c in CATEGORIES if c[0] in "PZC"])
    drop[0x30000:] = False  # planes 0-2 cover CJK; higher planes are kept as is
    return drop


def normalize_codepoints(texts, strip_punct: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """NFKC + lowercase (Arrow's kernels, the same on every engine), concatenated as code points, with
    whitespace/punctuation/control characters dropped. texts: list of str or an Arrow string array.
    Returns (code points uint32, offsets int64 of len(texts)+1)."""
    arr = texts if isinstance(texts, (pa.Array, pa.ChunkedArray)) else pa.array(texts, pa.string())
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks else pa.array([], pa.string())
    arr = pc.utf8_lower(pc.utf8_normalize(pc.fill_null(arr, ""), "NFKC")).cast(pa.large_string())
    n = len(arr)
    boffs = np.frombuffer(arr.buffers()[1], np.int64)[arr.offset: arr.offset + n + 1] if n else np.zeros(1, np.int64)
    data = arr.buffers()[2]
    drop = _drop_table() if strip_punct else _space_table()
    decode = _numba_decoder()
    if decode is not None:  # UTF-8 → kept code points in one compiled pass over Arrow's buffer (no copies)
        u8 = np.frombuffer(data, np.uint8) if data is not None and n else np.zeros(0, np.uint8)
        cp = np.empty(int(boffs[-1] - boffs[0]), np.uint32)
        offs = np.zeros(n + 1, np.int64)
        return cp[:decode(u8, boffs, drop, cp, offs)], offs
    lens = pc.utf8_length(arr).to_numpy(zero_copy_only=False).astype(np.int64) if n else np.zeros(0, np.int64)
    raw = data.to_pybytes()[boffs[0]:boffs[-1]] if data is not None and n else b""
    cp = np.frombuffer(raw.decode("utf-8").encode("utf-32-le"), np.uint32)
    keep = ~drop[cp]
    # new offsets = kept code points before each old offset (no per-code-point doc index needed)
    kept_before = np.zeros(len(cp) + 1, np.int64)
    np.cumsum(keep, out=kept_before[1:])
    offs = np.zeros(n + 1, np.int64)
    offs[1:] = kept_before[np.cumsum(lens)]
    return cp[keep], offs


@functools.lru_cache(maxsize=1)
def _space_table() -> np.ndarray:
    """strip_punct=False: only whitespace is removed."""
    drop = np.zeros(0x110000, bool)
    drop[[9, 10, 11, 12, 13, 32, 0x3000, 0xA0]] = True
    return drop


@functools.lru_cache(maxsize=1)
def _numba_decoder():
    """decode(u8, boffs, drop, cp_out, offs_out) -> count (minhash_kernel.decode_kept); None without numba
    (the numpy path does the same)."""
    try:
        from corpusforge.algorithms.minhash_kernel import decode_kept
    except ImportError:
        return None
    return decode_kept


def normalized_text(text: str, strip_punct: bool = True) -> str:
    cp, _ = normalize_codepoints([text], strip_punct)
    return cp.tobytes().decode("utf-32-le")


def shingles(text: str, n: int = 5, strip_punct: bool = True) -> list[str]:
    """The shingle strings of one text (reference/slow path; a text shorter than n is one shingle)."""
    t = normalized_text(text, strip_punct)
    if not t:
        return []
    if len(t) < n:
        return [t]
    return [t[i:i + n] for i in range(len(t) - n + 1)]


def shingle_hashes(cp: np.ndarray, offs: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """All shingle hashes of a batch. Returns (uint64 hashes, int64 doc index per hash), docs ascending.
    Windows are hashed over the whole concatenated batch with n shifted slices (Horner), then the
    windows that cross a document boundary are dropped; a document shorter than n is one shingle."""
    lens = np.diff(offs)
    ndocs, total = len(lens), len(cp)
    c = cp.astype(np.uint64)
    with np.errstate(over="ignore"):
        if total >= n:
            m = total - n + 1
            h = c[:m].copy()
            for j in range(1, n):
                h *= _POLY
                h += c[j:m + j]
            # a window is valid unless it starts in the last n-1 positions of its document
            valid = np.ones(m, bool)
            tails = (offs[1:, None] - np.arange(1, n)[None, :]).reshape(-1)
            tails = tails[(tails >= np.repeat(offs[:-1], n - 1)) & (tails < m)]
            valid[tails] = False
            hs, doc = h[valid], np.repeat(np.arange(ndocs), np.maximum(lens - n + 1, 0))
        else:
            hs, doc = np.zeros(0, np.uint64), np.zeros(0, np.int64)
        short = np.flatnonzero((lens > 0) & (lens < n))
        if len(short):
            sh = np.zeros(len(short), np.uint64)
            for j in range(int(lens[short].max())):
                live = j < lens[short]
                sh = np.where(live, sh * _POLY + c[np.minimum(offs[short] + j, max(total - 1, 0))], sh)
            hs, doc = np.concatenate([hs, sh]), np.concatenate([doc, short])
            order = np.argsort(doc, kind="stable")
            hs, doc = hs[order], doc[order]
        return fmix64(hs), doc


class MinHasher:
    """Batch MinHash with datasketch-compatible permutations."""

    def __init__(self, num_perm: int = 128, seed: int = 1, ngram: int = 5, hash: str = "poly64",
                 strip_punct: bool = True, chunk: int = 16384):
        if hash not in ("poly64", "sha1"):
            raise ValueError(f"hash must be poly64 or sha1, not {hash!r}")
        self.num_perm, self.seed, self.ngram, self.hash, self.strip_punct, self.chunk = \
            num_perm, seed, ngram, hash, strip_punct, chunk
        gen = np.random.RandomState(seed)  # same draws, same order as datasketch's affine32 scheme
        self.a = gen.randint(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
        self.b = gen.randint(0, 1 << 32, num_perm, dtype=np.uint32)

    def hashes(self, texts) -> tuple[np.ndarray, np.ndarray]:
        """(32-bit shingle hashes, doc index), ascending doc order."""
        if self.hash == "sha1":
            hs, docs = [], []
            for i, t in enumerate(texts.to_pylist() if isinstance(texts, (pa.Array, pa.ChunkedArray)) else texts):
                for s in shingles(t, self.ngram, self.strip_punct):
                    hs.append(sha1_hash32(s.encode("utf-8")))
                    docs.append(i)
            return np.array(hs, np.uint32), np.array(docs, np.int64)
        cp, offs = normalize_codepoints(texts, self.strip_punct)
        h, doc = shingle_hashes(cp, offs, self.ngram)
        return (h & _U32).astype(np.uint32), doc

    def signatures(self, texts, kernel: str = "auto") -> tuple[np.ndarray, np.ndarray]:
        """(uint32 [len(texts), num_perm] signatures, bool [len(texts)] has-shingles).

        kernel: "numba" (one compiled pass from code points to signatures), "numpy" (whole-batch array
        steps), or "auto" (numba when it imports). Both give identical signatures (tested)."""
        if self.hash == "poly64" and kernel != "numpy":
            jit = _numba_kernel()
            if jit is not None:
                cp, offs = normalize_codepoints(texts, self.strip_punct)
                sig = np.full((len(offs) - 1, self.num_perm), EMPTY, np.uint32)
                jit(cp, offs, self.ngram, self.a, self.b, sig)
                return sig, np.diff(offs) > 0
            if kernel == "numba":
                raise RuntimeError("numba is not installed")
        h, doc = self.hashes(texts)
        return self.signatures_from_hashes(h, doc, len(texts))

    def signatures_from_hashes(self, h: np.ndarray, doc: np.ndarray, ndocs: int) -> tuple[np.ndarray, np.ndarray]:
        sig = np.full((ndocs, self.num_perm), EMPTY, np.uint32)
        if not len(h):
            return sig, np.zeros(ndocs, bool)
        with np.errstate(over="ignore"):
            hv = _fmix32(h.astype(np.uint32))
            a, b = self.a[:, None], self.b[:, None]
            sig_t = sig.T.copy()  # [num_perm, ndocs]: the reduction runs along contiguous memory
            buf = np.empty((self.num_perm, min(self.chunk, len(hv))), np.uint32)
            for lo in range(0, len(hv), self.chunk):
                hi = min(lo + self.chunk, len(hv))
                vals = buf[:, :hi - lo]
                np.multiply(a, hv[None, lo:hi], out=vals)
                np.add(vals, b, out=vals)  # uint32 wraparound == mod 2^32
                d = doc[lo:hi]
                seg = np.flatnonzero(np.r_[True, d[1:] != d[:-1]])
                ds = d[seg]
                sig_t[:, ds] = np.minimum(sig_t[:, ds], np.minimum.reduceat(vals, seg, axis=1))
            sig = np.ascontiguousarray(sig_t.T)
        has = np.zeros(ndocs, bool)
        has[np.unique(doc)] = True
        return sig, has


@functools.lru_cache(maxsize=1)
def _numba_kernel():
    """The fused signature kernel (minhash_kernel.signatures); None when numba is not installed."""
    try:
        from corpusforge.algorithms.minhash_kernel import signatures
    except ImportError:
        return None
    return signatures


# ------------------------------------------------------------------------------------------- LSH


def _integral(f, lo: float, hi: float, steps: int = 2000) -> float:
    """Composite Simpson's rule, vectorized."""
    if hi <= lo:
        return 0.0
    x = np.linspace(lo, hi, steps + 1)
    y = f(x)
    w = np.ones(steps + 1)
    w[1:-1:2], w[2:-1:2] = 4, 2
    return float((hi - lo) / (3 * steps) * np.dot(w, y))


def optimal_bands(threshold: float, num_perm: int, fp_weight: float = 0.5, fn_weight: float = 0.5) -> tuple[int, int]:
    """(bands b, rows r), b*r <= num_perm, minimizing the weighted false-positive area
    ∫_0^t P(candidate | s) ds and false-negative area ∫_t^1 (1 - P(candidate | s)) ds, where
    P(candidate | s) = 1 - (1 - s^r)^b: the criterion datasketch's MinHashLSH uses."""
    if not 0.0 < threshold < 1.0:
        raise ValueError("threshold must be in (0, 1)")
    best, opt = float("inf"), (0, 0)
    for b in range(1, num_perm + 1):
        for r in range(1, num_perm // b + 1):
            fp = _integral(lambda s: 1 - (1 - s ** r) ** b, 0.0, threshold)
            fn = _integral(lambda s: (1 - s ** r) ** b, threshold, 1.0)
            err = fp * fp_weight + fn * fn_weight
            if err < best:
                best, opt = err, (b, r)
    return opt


def band_hashes(sig: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """int64 [n, bands]: one 64-bit hash per band of r signature values (band index mixed in)."""
    n = sig.shape[0]
    out = np.empty((n, bands), np.uint64)
    with np.errstate(over="ignore"):
        for k in range(bands):
            h = np.full(n, np.uint64(k + 1) * np.uint64(0x9E3779B97F4A7C15), np.uint64)
            for j in range(k * rows, (k + 1) * rows):
                h = fmix64(h ^ sig[:, j].astype(np.uint64))
            out[:, k] = h
    return out.view(np.int64)


# ------------------------------------------------------------------------------------- verification


def jaccard_pairs(texts_a, texts_b, n: int = 5, strip_punct: bool = True, chunk: int = 256) -> np.ndarray:
    """Exact Jaccard of the shingle sets of each (a, b) pair (shingles compared by 55-bit hashes: a false
    match needs a collision among one pair's shingles, ~1e-10). Pairs run in chunks of 256 so the
    document index fits the key's low 9 bits and every step is a plain 1-D sort."""
    a = texts_a if isinstance(texts_a, (pa.Array, pa.ChunkedArray)) else pa.array(texts_a, pa.string())
    b = texts_b if isinstance(texts_b, (pa.Array, pa.ChunkedArray)) else pa.array(texts_b, pa.string())
    out = [np.zeros(0)]
    for o in range(0, len(a), chunk):
        m = min(chunk, len(a) - o)
        both = pa.concat_arrays([_plain(a.slice(o, m)), _plain(b.slice(o, m))])
        cp, offs = normalize_codepoints(both, strip_punct)
        h, doc = shingle_hashes(cp, offs, n)
        key = np.sort((h << np.uint64(9)) | doc.astype(np.uint64))  # (shingle, doc) in one sortable word
        key = key[np.r_[True, key[1:] != key[:-1]]]  # each doc's shingle set
        d = (key & np.uint64(511)).astype(np.int64)
        size = np.bincount(d, minlength=2 * m)
        pk = np.sort((key & ~np.uint64(511)) | (d % m).astype(np.uint64))  # (shingle, pair)
        shared = pk[1:][pk[1:] == pk[:-1]]  # a shingle in both docs of a pair appears twice
        inter = np.bincount((shared & np.uint64(511)).astype(np.int64), minlength=m)
        union = size[:m] + size[m:] - inter
        out.append(np.where(union > 0, inter / np.maximum(union, 1), 1.0))
    return np.concatenate(out)


def _plain(x) -> pa.Array:
    x = x.combine_chunks() if isinstance(x, pa.ChunkedArray) else x
    return x.cast(pa.string())
