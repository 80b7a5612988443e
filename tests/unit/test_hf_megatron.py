"""Issue 23: the tools people train with read corpusforge's outputs as their own. transformers'
AutoTokenizer loads a tokenizer, shard or train directory with its special tokens declared and the same
ids as corpusforge's encoder; megatron-core's IndexedDataset, GPTDataset and BlendedDataset read the
sampler's shards (the Megatron tokenizer built from the same Hugging Face files)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import yaml

from corpusforge.cli import main
from corpusforge.sample.tokenizer import load
from tests.util import read_jsonl, torch_threads

_threads = torch_threads(2)
SEQ = 64


@pytest.fixture(scope="module")
def made(shared_data, tmp_path_factory):
    """A tokenizer directory, shards of the two prose sources apart and mixed, and a 4-step train run."""
    d = tmp_path_factory.mktemp("hf")
    wiki, luxun = shared_data / "prose" / "zhwiki_articles_100.jsonl", shared_data / "prose" / "luxun_fiction_essays.jsonl"
    (d / "tok").mkdir()
    assert main(["tokenizer", "train", str(wiki), str(luxun), "--vocab-size", "2000", "--out", str(d / "tok" / "tokenizer.json")]) == 0
    for name, sources in (("wiki", {"wiki": wiki}), ("luxun", {"luxun": luxun}), ("mix", {"wiki": wiki, "luxun": luxun})):
        (d / f"{name}.yaml").write_text(yaml.safe_dump({"seed": 1, "seq_len": SEQ, "shard_tokens": 300_000,
                                                        "tokenizer": str(d / "tok" / "tokenizer.json"),
                                                        "sources": {n: {"path": str(p), "epochs": 1.0} for n, p in sources.items()}}))
        assert main(["sample", str(d / f"{name}.yaml"), "--out", str(d / name), "--no-progress"]) == 0
    assert main(["train", "--data", str(d / "mix"), "--out", str(d / "run"), "--steps", "4", "--seq-len", "32",
                 "--batch-size", "2", "--eval-every", "2", "--no-progress"]) == 0
    texts = {r["text"] for p in (wiki, luxun) for r in read_jsonl(p)}
    return d, texts


def test_autotokenizer_knows_the_special_tokens_and_encodes_as_corpusforge(made, shared_data):
    from transformers import AutoTokenizer, DataCollatorForLanguageModeling

    d, _ = made
    ours = load(str(d / "tok" / "tokenizer.json"))
    eod, pad = ours.token_to_id("<eod>"), ours.token_to_id("<pad>")
    hf = AutoTokenizer.from_pretrained(str(d / "tok"))
    assert (hf.eos_token, hf.pad_token, hf.bos_token, hf.unk_token) == ("<eod>", "<pad>", "<eod>", None)
    assert (hf.eos_token_id, hf.pad_token_id) == (eod, pad)
    docs = [r["text"] for r in read_jsonl(shared_data / "web" / "commoncrawl_2021-43_zh_100docs.jsonl")]
    docs += [r["text"] for r in read_jsonl(shared_data / "prose" / "luxun_fiction_essays.jsonl")]
    docs = (docs + [r["text"] for r in read_jsonl(shared_data / "prose" / "zhwiki_articles_100.jsonl")])[:200]
    assert len(docs) == 200
    want = [e.ids + [eod] for e in ours.encode_batch(docs, add_special_tokens=False)]  # how the sampler writes a document
    assert hf(docs)["input_ids"] == want
    batch = DataCollatorForLanguageModeling(hf, mlm=False)([hf(t) for t in docs[:4]])
    n = max(len(w) for w in want[:4])
    assert tuple(batch["input_ids"].shape) == (4, n)
    for row, w, labels in zip(batch["input_ids"].tolist(), want, batch["labels"].tolist()):
        assert row == w + [pad] * (n - len(w)) and labels == w + [-100] * (n - len(w))
    for folder, max_len in ((d / "mix", SEQ), (d / "run", 32)):  # the sampler and the trainer carry the files along
        t = AutoTokenizer.from_pretrained(str(folder))
        assert (t.eos_token, t.pad_token, t.model_max_length) == ("<eod>", "<pad>", max_len)
        assert t(docs[:20])["input_ids"] == want[:20]


def _megatron():
    warnings.filterwarnings("ignore", message=".*Transformer Engine and Apex.*")
    from megatron.core.datasets.blended_megatron_dataset_builder import BlendedMegatronDatasetBuilder
    from megatron.core.datasets.gpt_dataset import GPTDataset, GPTDatasetConfig
    from megatron.core.datasets.indexed_dataset import IndexedDataset
    from megatron.core.tokenizers import MegatronTokenizer

    return BlendedMegatronDatasetBuilder, GPTDataset, GPTDatasetConfig, IndexedDataset, MegatronTokenizer


def _prefixes(folder: Path) -> list[str]:
    return [str(folder / e["bin"][: -len(".bin")]) for e in json.loads((folder / "shards.json").read_text())["shards"]]


def test_megatron_indexed_and_gpt_datasets_read_the_shards(made, tmp_path):
    Builder, GPTDataset, GPTDatasetConfig, IndexedDataset, MegatronTokenizer = _megatron()
    d, texts = made
    m = json.loads((d / "mix" / "shards.json").read_text())
    ours = load(str(d / "mix" / "tokenizer.json"))
    eod = m["eod_id"]
    for e, prefix in zip(m["shards"], _prefixes(d / "mix")):
        ds = IndexedDataset(prefix)
        assert len(ds) == e["docs"] and int(ds.sequence_lengths.sum()) == e["tokens"]
        assert ds.document_indices.tolist() == list(range(e["docs"] + 1))
        for i in range(len(ds)):
            doc = ds[i].tolist()
            assert doc[-1] == eod and eod not in doc[:-1]
            assert ours.decode(doc[:-1], skip_special_tokens=False) in texts
    tok = MegatronTokenizer.from_pretrained(tokenizer_path=str(d / "mix"), metadata_path={"library": "huggingface"})
    assert (tok.eod, tok.pad) == (eod, ours.token_to_id("<pad>"))
    cfg = GPTDatasetConfig(random_seed=1, sequence_length=SEQ, blend=(_prefixes(d / "mix"), None), split="100,0,0",
                           tokenizer=tok, reset_position_ids=False, reset_attention_mask=False, eod_mask_loss=False,
                           path_to_cache=None)  # indices in memory: no process group needed
    train, _, _ = Builder(GPTDataset, [None, None, None], lambda: True, cfg).build()
    # one epoch per shard of (seq_len + 1)-token windows that share one token, blended over the shards
    assert len(m["shards"]) > 1 and len(train) == sum((e["tokens"] - 1) // SEQ for e in m["shards"])
    for i in range(0, len(train), max(1, len(train) // 50)):
        s = train[i]["tokens"].tolist()
        cuts = [j for j, t in enumerate(s) if t == eod]
        for a, b in zip(cuts, cuts[1:]):  # every whole document inside a window is a kept document
            assert ours.decode(s[a + 1:b], skip_special_tokens=False) in texts


def test_megatron_blend_of_two_sources_follows_the_weights(made, tmp_path):
    Builder, GPTDataset, GPTDatasetConfig, _, MegatronTokenizer = _megatron()
    d, _ = made
    tok = MegatronTokenizer.from_pretrained(tokenizer_path=str(d / "wiki"), metadata_path={"library": "huggingface"})
    weights = [0.8, 0.2]
    blend = ([p for src in ("wiki", "luxun") for p in _prefixes(d / src)], None)
    per_source = [len(_prefixes(d / src)) for src in ("wiki", "luxun")]
    blend = (blend[0], [w / n for w, n in zip(weights, per_source) for _ in range(n)])
    cfg = GPTDatasetConfig(random_seed=1, sequence_length=SEQ, blend=blend, split="100,0,0", tokenizer=tok,
                           reset_position_ids=False, reset_attention_mask=False, eod_mask_loss=False,
                           path_to_cache=None)  # indices in memory: no process group needed
    train, _, _ = Builder(GPTDataset, [2000, 0, 0], lambda: True, cfg).build()
    counts = np.bincount(np.asarray(train.dataset_index), minlength=len(blend[0]))
    wiki_share = counts[: per_source[0]].sum() / len(train)
    assert len(train) >= 2000 and abs(wiki_share - weights[0]) < 0.01
