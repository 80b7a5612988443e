"""Text → tokens for Chinese. Han characters are single units (no segmenter: measured in
docs/models.md), Latin words and numbers are one unit each (numbers collapse to "0"), punctuation is
its own unit; features are unit unigrams plus adjacent-unit bigrams. A whitespace tokenizer (Spark's
`Tokenizer`) would return a whole Chinese sentence as one token, so it is useless here."""

from __future__ import annotations

import re
import zlib

import numpy as np

MAX_CHARS = 3000  # long documents are judged on their first 3000 characters (bounded cost per doc)
# Control characters are not units: fastText's C++ reader treats some (NUL, ...) as separators and a
# NUL inside a predicted line corrupted later training in the same process (seen on TREC06C spam).
_UNIT = re.compile(r"[a-z]+|[0-9]+|[^\sa-z0-9\x00-\x1f\x7f-\x9f]")


def units(text: str, max_chars: int = MAX_CHARS) -> list[str]:
    return ["0" if u[0].isdigit() else u for u in _UNIT.findall(text[:max_chars].lower())]


def ngrams(text: str, max_chars: int = MAX_CHARS) -> list[str]:
    u = units(text, max_chars)
    return u + [a + b for a, b in zip(u, u[1:])]


def fasttext_line(text: str, max_chars: int = MAX_CHARS) -> str:
    """One fastText input line: tokens separated by spaces (bigrams are explicit tokens)."""
    return " ".join(ngrams(text, max_chars))


def hashed(text: str, dim: int, max_chars: int = MAX_CHARS) -> tuple[np.ndarray, np.ndarray]:
    """Sparse binary features (sorted unique bucket ids, L2-normalized values) in a `dim`-bucket space.
    crc32 of the UTF-8 token: stable across processes and platforms, unlike Python hash()."""
    toks = ngrams(text, max_chars)
    idx = np.unique(np.fromiter((zlib.crc32(t.encode("utf-8")) % dim for t in toks), np.int64, len(toks)))
    val = np.full(len(idx), 1.0 / np.sqrt(max(len(idx), 1)), np.float64)
    return idx, val


def hashed_matrix(texts, dim: int, max_chars: int = MAX_CHARS):
    """CSR pieces (indptr, indices, data) for many texts."""
    ind, dat, ptr = [], [], [0]
    for t in texts:
        i, v = hashed(t or "", dim, max_chars)
        ind.append(i)
        dat.append(v)
        ptr.append(ptr[-1] + len(i))
    return (np.asarray(ptr, np.int64), np.concatenate(ind) if ind else np.zeros(0, np.int64),
            np.concatenate(dat) if dat else np.zeros(0))
