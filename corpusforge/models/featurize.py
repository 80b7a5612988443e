"""Text → tokens for Chinese. Han characters are single units (no segmenter: measured in
docs/models.md), Latin words and numbers are one unit each (numbers collapse to "0"), punctuation is
its own unit; features are unit unigrams plus adjacent-unit bigrams. A whitespace tokenizer (Spark's
`Tokenizer`) would return a whole Chinese sentence as one token, so it is useless here."""

from __future__ import annotations

import functools
import re
import unicodedata
import zlib

import numpy as np

from corpusforge.algorithms import tablecache

MAX_UNITS = 3000  # long documents are judged on their first 3000 units (bounded cost per document)
_WORDISH = {"Lu", "Ll", "Lt", "Lm", "Nd", "Nl", "No", "Mn", "Mc", "Me"}  # may join the unit before them


CATEGORIES = ("Cc", "Cf", "Cn", "Co", "Cs", "Ll", "Lm", "Lo", "Lt", "Lu", "Mc", "Me", "Mn", "Nd", "Nl", "No", "Pc", "Pd",
              "Pe", "Pf", "Pi", "Po", "Ps", "Sc", "Sk", "Sm", "So", "Zl", "Zp", "Zs")


@tablecache.cached
def _category_codes() -> np.ndarray:
    idx = {c: i for i, c in enumerate(CATEGORIES)}
    return np.fromiter((idx[unicodedata.category(chr(c))] for c in range(0x110000)), np.uint8, 0x110000)


def in_categories(names) -> np.ndarray:
    """Per code point: is unicodedata.category in names? (kept as one byte per code point: a str each
    would hold ~85 MB in every worker)"""
    return np.isin(_category_codes(), [CATEGORIES.index(n) for n in names])


@functools.cache
def _unit_re() -> re.Pattern:
    """Units: Latin words, numbers, and every other character that is not whitespace, control, format or
    private-use. Control characters are not units: fastText's C++ reader treats some (NUL, ...) as
    separators and a NUL inside a predicted line corrupted later training in the same process (seen on
    TREC06C spam). Format and private-use characters (zero-width spaces, BOMs) are what `clean` strips."""
    skip = np.flatnonzero(in_categories(("Cf", "Co", "Cc"))).tolist() + [0xFFFD]
    ranges, start = [], skip[0]
    for a, b in zip(skip, skip[1:] + [None]):
        if b != a + 1:
            ranges.append(f"{re.escape(chr(start))}-{re.escape(chr(a))}" if a > start else re.escape(chr(a)))
            start = b
    return re.compile(rf"[a-z]+|[0-9]+|[^\sa-z0-9{''.join(ranges)}]")


def units(text: str, max_units: int = MAX_UNITS) -> list[str]:
    """The first max_units units of NFKC(text), lower-cased, numbers as "0". NFKC folds widths (１月 → 1月,
    ＡＢ → ab) and the units skip what `clean` removes, so a model scores a document the same whether or not
    `clean` normalized it first. The text is read in pieces (cut where no word or number is split) until
    enough units are found, so a long run of spaces or controls cannot hide the rest of a document."""
    find, out, pos, n = _unit_re().findall, [], 0, len(text)
    while len(out) < max_units and pos < n:
        end = min(pos + max_units, n)
        while end < n and unicodedata.category(text[end]) in _WORDISH:
            end += 1
        out += find(unicodedata.normalize("NFKC", text[pos:end]).lower())
        pos = end
    return ["0" if u[0].isdigit() else u for u in out[:max_units]]


def ngrams(text: str, max_units: int = MAX_UNITS) -> list[str]:
    u = units(text, max_units)
    return u + [a + b for a, b in zip(u, u[1:])]


def fasttext_line(text: str, max_units: int = MAX_UNITS) -> str:
    """One fastText input line: tokens separated by spaces (bigrams are explicit tokens)."""
    return " ".join(ngrams(text, max_units))


def hashed(text: str, dim: int, max_units: int = MAX_UNITS) -> tuple[np.ndarray, np.ndarray]:
    """Sparse binary features (sorted unique bucket ids, L2-normalized values) in a `dim`-bucket space.
    crc32 of the UTF-8 token: stable across processes and platforms, unlike Python hash()."""
    toks = ngrams(text, max_units)
    idx = np.unique(np.fromiter((zlib.crc32(t.encode("utf-8")) % dim for t in toks), np.int64, len(toks)))
    val = np.full(len(idx), 1.0 / np.sqrt(max(len(idx), 1)), np.float64)
    return idx, val


def hashed_matrix_reference(texts, dim: int, max_units: int = MAX_UNITS):
    """CSR pieces (indptr, indices, data) for many texts, one text at a time in Python."""
    ind, dat, ptr = [], [], [0]
    for t in texts:
        i, v = hashed(t or "", dim, max_units)
        ind.append(i)
        dat.append(v)
        ptr.append(ptr[-1] + len(i))
    return (np.asarray(ptr, np.int64), np.concatenate(ind) if ind else np.zeros(0, np.int64),
            np.concatenate(dat) if dat else np.zeros(0))


# ---- whole batches: the compiled kernels of corpusforge/algorithms/units.py (equal to the above) --------

def _kernel():
    try:
        from corpusforge.algorithms import units
    except ImportError:  # no numba: the reference, one text at a time
        return None
    return units


def hashed_matrix(texts, dim: int, max_units: int = MAX_UNITS, ids=None):
    """hashed_matrix_reference's CSR for a list of str or an Arrow string array. With `ids` (one per text),
    units already cut for the same id and text in this process are reused (the spam and quality stages
    featurize the same documents one after the other)."""
    k = _kernel()
    if k is None:
        return hashed_matrix_reference(_pylist(texts), dim, max_units)
    return k.hashed_matrix(k.batch_units(texts, max_units, ids), dim)


def batch_units(texts, max_units: int = MAX_UNITS, ids=None):
    """The units of a batch (algorithms/units.Units), for the compiled consumers; ids: as above."""
    return _kernel().batch_units(texts, max_units, ids)


def fasttext_lines(texts, max_units: int = MAX_UNITS, ids=None) -> list[str]:
    """fasttext_line(text) + "\n" for each text (a list of str or an Arrow string array); ids: as above."""
    k = _kernel()
    if k is None:
        return [fasttext_line(t or "", max_units) + "\n" for t in _pylist(texts)]
    return k.fasttext_lines(k.batch_units(texts, max_units, ids))


def _pylist(texts) -> list:
    return texts if isinstance(texts, list) else texts.to_pylist()
