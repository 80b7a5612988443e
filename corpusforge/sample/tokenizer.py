"""Byte-level BPE (HF `tokenizers`, as GPT-2; PanGu-α used BPE with ~40k ids), saved as a standard
tokenizer.json. No normalizer: decode(encode(t)) == t is what the sampler checks per document."""

from __future__ import annotations

import hashlib
import os
from typing import Iterable, Iterator

from corpusforge.errors import CorpusforgeError
from corpusforge.sample.shards import TOKENIZER

EOD = "<eod>"
PAD = "<pad>"
SPECIAL_TOKENS = [EOD, PAD]
# What transformers' AutoTokenizer.from_pretrained(DIR) reads beside DIR/tokenizer.json to know the special
# tokens. <eod> ends every document (Megatron's convention) and is eos; it is bos too, as GPT-2's
# <|endoftext|> is both. No unk: byte-level BPE encodes every byte.
HF_CONFIG, HF_SPECIALS = "tokenizer_config.json", "special_tokens_map.json"
HF_SPECIAL_TOKENS = {"bos_token": EOD, "eos_token": EOD, "pad_token": PAD}
_HF_SIGNATURES = (b'"PreTrainedTokenizerFast"', b'"<eod>"')


def load(path: str):
    from tokenizers import Tokenizer

    try:
        tok = Tokenizer.from_file(path)
    except FileNotFoundError:
        raise CorpusforgeError("missing_tokenizer", f"{path}: no such file") from None
    except Exception as e:  # tokenizers raises a bare Exception on bad JSON
        raise CorpusforgeError("bad_tokenizer", f"{path}: not a tokenizer.json ({e})") from None
    # A document that literally contains "<eod>" must not inject a document boundary.
    tok.encode_special_tokens = True
    return tok


def eod_id(tok, path: str = "tokenizer") -> int:
    i = tok.token_to_id(EOD)
    if i is None:
        raise CorpusforgeError("bad_tokenizer", f"{path}: has no {EOD} token (train it with `corpusforge tokenizer train`)")
    return i


def held_out(doc_id: str, fraction: float) -> bool:
    """Stable split by id: the same documents are held out on every run."""
    h = int.from_bytes(hashlib.blake2b(doc_id.encode("utf-8"), digest_size=8, person=b"cf-heldout").digest(), "big")
    return h < fraction * 2**64


def check_replace(out: str) -> None:
    """An existing --out is replaced only if it is a corpusforge tokenizer (byte-level BPE with our specials),
    and the Hugging Face files beside it only if corpusforge wrote them."""
    from corpusforge.io import fs
    from corpusforge.io.outputs import replace_file_check

    replace_file_check(out, (f'"{EOD}"'.encode(), f'"{PAD}"'.encode(), b'"ByteLevel"'), "tokenizer")
    for name in (HF_CONFIG, HF_SPECIALS):
        replace_file_check(fs.join(folder_of(out), name), _HF_SIGNATURES[1:] if name == HF_SPECIALS else _HF_SIGNATURES,
                           "tokenizer config")


def folder_of(path: str) -> str:
    from corpusforge.io import fs

    return path.rstrip("/").rsplit("/", 1)[0] if fs.is_remote(path) else os.path.dirname(os.path.abspath(path))


def write_hf_files(folder: str, model_max_length: int | None = None) -> None:
    """tokenizer_config.json and special_tokens_map.json into FOLDER (which holds tokenizer.json), so
    AutoTokenizer.from_pretrained(FOLDER) knows eos/bos (<eod>) and pad (<pad>); model_max_length is the
    sequence length where one is known (the sampler's seq_len, the trainer's)."""
    from corpusforge.io import fs
    from corpusforge.io.writers import write_json

    config = {"tokenizer_class": "PreTrainedTokenizerFast", **HF_SPECIAL_TOKENS, "unk_token": None,
              "clean_up_tokenization_spaces": False}
    if model_max_length:
        config["model_max_length"] = int(model_max_length)
    write_json(fs.join(folder, HF_CONFIG), config)
    write_json(fs.join(folder, HF_SPECIALS), HF_SPECIAL_TOKENS)


def train(texts: Iterable[str], vocab_size: int, out: str, min_frequency: int = 2) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    from corpusforge.io.writers import atomic_file

    tok = Tokenizer(models.BPE())
    # GPT-2's split (letters / digits / punctuation runs) keeps CJK runs whole between punctuation,
    # so merges learn multi-character Chinese words.
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    # HF's tokenizer(text) then ends a document with <eod>, as the sampler writes it; corpusforge's own
    # encoders pass add_special_tokens=False and append it themselves
    eod = tok.token_to_id(EOD)
    tok.post_processor = processors.TemplateProcessing(single=f"$A {EOD}", pair=f"$A {EOD} $B:1 {EOD}:1",
                                                       special_tokens=[(EOD, eod)])
    data = tok.to_str(pretty=True).encode("utf-8")
    check_replace(out)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with atomic_file(out) as f:
        f.write(data)


def evaluate(tok, texts: Iterator[str], batch: int = 256) -> dict:
    """Characters per token (EOD not counted) and round-trip failures over the given texts."""
    chars = tokens = docs = bad = 0
    buf: list[str] = []

    def flush():
        nonlocal chars, tokens, docs, bad
        encs = tok.encode_batch_fast(buf, add_special_tokens=False)
        dec = tok.decode_batch([e.ids for e in encs], skip_special_tokens=False)
        for t, e, d in zip(buf, encs, dec):
            chars += len(t)
            tokens += len(e.ids)
            docs += 1
            bad += d != t
        buf.clear()

    for t in texts:
        buf.append(t)
        if len(buf) >= batch:
            flush()
    if buf:
        flush()
    return {"docs": docs, "chars": chars, "tokens": tokens, "roundtrip_failures": bad,
            "chars_per_token": chars / tokens if tokens else 0.0}


def train_on(inputs: list[str], vocab_size: int, out: str, min_frequency: int = 2, holdout: float = 0.05,
             text_field: str = "text") -> dict:
    """Trains on the documents of `inputs` (run dirs, .jsonl/.parquet/.txt) except a stable-hash `holdout`
    fraction, which it evaluates on. Returns {"vocab", "trained", "heldout": evaluate() or None}."""
    from corpusforge.sample.docs import iter_texts

    if vocab_size < 300:
        raise CorpusforgeError("bad_argument", f"--vocab-size {vocab_size}: need at least 300 (256 bytes + specials + merges)")
    if not 0 <= holdout < 1:
        raise CorpusforgeError("bad_argument", f"--holdout {holdout}: must be in [0, 1)")
    check_replace(out)  # before the (long) training, not after it
    held: list[str] = []
    trained = [0]

    def train_texts():
        for i, t in iter_texts(inputs, text_field):
            if holdout and held_out(i, holdout):
                held.append(t)
            else:
                trained[0] += 1
                yield t

    train(train_texts(), vocab_size, out, min_frequency)
    if not trained[0]:
        raise CorpusforgeError("no_documents", "no documents to train on (all inputs empty or held out)")
    tok = load(out)
    return {"vocab": tok.get_vocab_size(), "trained": trained[0], "heldout": evaluate(tok, iter(held)) if held else None}


def describe(out: str, r: dict) -> str:
    line = f"tokenizer: {out} (vocab {r['vocab']}, trained on {r['trained']} documents)"
    line += f"; {HF_CONFIG} and {HF_SPECIALS} beside it" + (
        "" if out.rstrip("/").rsplit("/", 1)[-1] == TOKENIZER
        else f" (AutoTokenizer.from_pretrained(folder) wants the file named {TOKENIZER})")
    if (h := r["heldout"]) is not None:
        line += (f"\nheld-out: {h['docs']} documents, {h['chars']} chars, {h['tokens']} tokens, "
                 f"{h['chars_per_token']:.3f} chars/token, {h['roundtrip_failures']} round-trip failures")
    return line
