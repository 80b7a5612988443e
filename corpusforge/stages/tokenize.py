"""The `tokenize` MapStage: any engine can add token ids to documents, with the round-trip check.

Columns added: `tokens` (list<int32>, the ids plus a trailing <eod>; null when the round trip
fails) and `tokenize__roundtrip_error` (null, or where decode(encode(text)) first differs). MapStages
cannot route rows, so the sampler quarantines the null-token rows (RELIABILITY #43); other engines
see them as columns."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from pydantic import Field

from corpusforge.rules_files import sha256_file
from corpusforge.stage import MapStage, Params, register

TOKENS = "tokens"
ROUNDTRIP = "tokenize__roundtrip_error"


class TokenizeParams(Params):
    tokenizer: str  # path of a tokenizer.json
    sha256: str | None = None  # when set, a different file is an error before any batch (RELIABILITY #33)
    append_eod: bool = True
    check_roundtrip: bool = True
    encode_batch: int = Field(512, ge=1)
    # An Encoding costs ~100 bytes per token (ids, offsets, token strings): cap characters per call.
    encode_chars: int = Field(1 << 20, ge=1)
    # BPE word cache entries (tokenizers' default 10,000): Chinese "words" are whole runs between
    # punctuation, so a full cache is tens of MB; the sampler shrinks it under small memory budgets.
    bpe_cache: int | None = Field(None, ge=0)


def first_difference(a: str, b: str) -> str:
    n = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    return f"char {n}: {a[n:n + 12]!r} decodes as {b[n:n + 12]!r}"


@register
class TokenizeStage(MapStage):
    """Byte-level BPE token ids (+<eod>) per document, with a decode(encode(t)) == t check."""

    name = "tokenize"
    Params = TokenizeParams

    def files(self) -> list[str]:
        return [self.params.tokenizer]

    def setup(self) -> None:
        from corpusforge.errors import CorpusforgeError
        from corpusforge.sample.tokenizer import eod_id, load

        p = self.params
        if p.sha256 and sha256_file(p.tokenizer) != p.sha256:
            raise CorpusforgeError("tokenizer_changed", f"{p.tokenizer}: sha256 differs from the planned {p.sha256}")
        self.tok = load(p.tokenizer)
        self.eod = eod_id(self.tok, p.tokenizer)
        if p.bpe_cache is not None and hasattr(self.tok.model, "_resize_cache"):
            self.tok.model._resize_cache(p.bpe_cache)

    def output_schema(self, schema: pa.Schema) -> pa.Schema:
        return schema.append(pa.field(TOKENS, pa.list_(pa.int32()))).append(pa.field(ROUNDTRIP, pa.string()))

    def encode(self, texts: list[str]) -> tuple[list[np.ndarray | None], list[str | None]]:
        """Token arrays (None on a failed round trip) and the failure details, in input order."""
        p = self.params
        lists = [e.ids for e in self.tok.encode_batch_fast(texts, add_special_tokens=False)]
        errors: list[str | None] = [None] * len(texts)
        if p.check_roundtrip:
            # Whole sequences are decoded, never token by token (Megatron #4126).
            for i, (t, d) in enumerate(zip(texts, self.tok.decode_batch(lists, skip_special_tokens=False))):
                if d != t:
                    errors[i] = first_difference(t, d)
        ids = [np.asarray(a, np.int32) for a in lists]
        out: list[np.ndarray | None] = []
        for a, err in zip(ids, errors):
            if err is not None:
                out.append(None)
            elif p.append_eod:
                out.append(np.append(a, np.int32(self.eod)))
            else:
                out.append(a)
        return out, errors

    def map(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        texts = batch.column("text").to_pylist()
        toks: list = []
        errs: list = []
        p = self.params
        start = 0
        while start < len(texts):
            end, chars = start, 0
            while end < len(texts) and end - start < p.encode_batch and (end == start or chars + len(texts[end]) <= p.encode_chars):
                chars += len(texts[end])
                end += 1
            t, e = self.encode(texts[start:end])
            toks += t
            errs += e
            start = end
        sizes = np.array([0 if a is None else len(a) for a in toks], np.int32)
        offsets = np.zeros(len(toks) + 1, np.int32)
        np.cumsum(sizes, out=offsets[1:])
        flat = np.concatenate([a for a in toks if a is not None]) if any(a is not None for a in toks) else np.zeros(0, np.int32)
        mask = pa.array([a is None for a in toks], pa.bool_())  # typed: an empty batch is valid input
        col = pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat, pa.int32()), mask=mask)
        arrays = [batch.column(i) for i in range(batch.num_columns)] + [col, pa.array(errs, pa.string())]
        return pa.RecordBatch.from_arrays(arrays, schema=self.output_schema(batch.schema))
