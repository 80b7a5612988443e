"""fastText supervised prediction compiled (numba) over the featurizer's units: no text line is built or
parsed. Exact for the models corpusforge trains (softmax loss, no subwords, no word n-gram buckets): the
tokens of a line are its units, then its bigrams, then the end-of-line token; those in the vocabulary
are averaged in float32 in that order, the output rows are dotted in order, softmaxed, and the
probability returned the way fastText's predictLine does (exp of the float log(p + 1e-5)). Other models
(quantized, subwords, n-gram buckets, another loss) go through fastText itself.
tests/unit/test_kernels.py compares both on the shared data."""

from __future__ import annotations

import numba
import numpy as np

from corpusforge.algorithms import cpstrings
from corpusforge.algorithms.units import Units

EOS = "</s>"


@numba.njit(cache=True, nogil=True, inline="always")
def _add(hidden, W, w):
    if w < 0:
        return 0
    for j in range(hidden.shape[0]):
        hidden[j] += W[w, j]
    return 1


@numba.njit(cache=True, nogil=True)
def _predict(cps, uoff, doc_u, wcps, woff, slots, eos, W, O, label):
    nd = doc_u.shape[0] - 1
    dim = W.shape[1]
    out = np.empty(nd, np.float64)
    hidden = np.empty(dim, np.float32)
    o = np.empty(O.shape[0], np.float32)
    for d in range(nd):
        a, b = doc_u[d], doc_u[d + 1]
        hidden[:] = 0
        n = 0
        for u in range(a, b):  # the line's tokens in order: units, bigrams, the end-of-line token
            n += _add(hidden, W, cpstrings.find(cps, uoff[u], uoff[u + 1], wcps, woff, slots))
        for u in range(a, b - 1):
            n += _add(hidden, W, cpstrings.find(cps, uoff[u], uoff[u + 2], wcps, woff, slots))
        n += _add(hidden, W, eos)
        if n == 0:
            out[d] = np.nan  # fastText predicts nothing
            continue
        scale = np.float32(1.0 / n)
        for j in range(dim):
            hidden[j] *= scale
        for i in range(O.shape[0]):
            acc = np.float32(0.0)
            for j in range(dim):
                acc += O[i, j] * hidden[j]
            o[i] = acc
        mx = o[0]
        for i in range(O.shape[0]):
            mx = max(o[i], mx)
        z = np.float32(0.0)
        for i in range(O.shape[0]):
            o[i] = np.exp(o[i] - mx)
            z += o[i]
        for i in range(O.shape[0]):
            o[i] /= z
        out[d] = np.float64(np.exp(np.float32(np.log(np.float64(o[label]) + 1e-5))))
    return out


class Predictor:
    """P(label) for the documents of a Units batch, from a loaded fastText model; None if the model is
    of a kind this does not replicate."""

    def __init__(self, model, label: str):
        args = model.f.getArgs()
        if model.is_quantized() or args.maxn > 0 or args.wordNgrams > 1 or str(args.loss) != "loss_name.softmax":
            raise ValueError("model kind not replicated")
        words = model.get_words()
        self.W = np.ascontiguousarray(model.get_input_matrix(), np.float32)
        self.O = np.ascontiguousarray(model.get_output_matrix(), np.float32)
        self.label = model.get_labels().index(label)
        self.wcps, self.woff, self.slots = cpstrings.table(words)
        self.eos = words.index(EOS) if EOS in words else -1

    def __call__(self, u: Units) -> np.ndarray:
        return _predict(u.cps, u.uoff, u.doc_u, self.wcps, self.woff, self.slots, self.eos, self.W, self.O, self.label)
