"""PanGu-α model: parameter counts of the paper's shapes, the query layer, causality."""

import pytest
import torch  # the train extra is part of the test install

from corpusforge.train.model import CONFIGS, PanguAlpha, get_config, param_count
from tests.util import torch_threads

_threads = torch_threads(1)

# PanGu-α Table 1 sizes (parameters).
PAPER = {"2.6b": 2.6e9, "13b": 13.1e9, "200b": 207.0e9}


@pytest.mark.parametrize("name", ["2.6b", "13b", "200b"])
def test_paper_sizes_within_a_few_percent(name):
    n = param_count(CONFIGS[name])
    print(f"{name}: {n / 1e9:.3f}B vs paper {PAPER[name] / 1e9}B ({(n / PAPER[name] - 1) * 100:+.1f}%)")
    assert abs(n / PAPER[name] - 1) < 0.05


@pytest.mark.parametrize("name", ["tiny", "350m", "2.6b"])
def test_analytic_count_equals_module(name):
    with torch.device("meta"):  # no memory for the big shapes
        m = PanguAlpha(CONFIGS[name])
    assert sum(p.numel() for p in m.parameters()) == param_count(CONFIGS[name])


def test_paper_shapes():
    c = CONFIGS["350m"]
    assert (c.n_layer, c.d_model, c.d_ffn, c.n_head, c.seq_len, c.vocab_size) == (24, 1024, 4096, 16, 1024, 40000)
    assert (CONFIGS["200b"].n_layer, CONFIGS["200b"].d_model, CONFIGS["200b"].d_ffn, CONFIGS["200b"].n_head) == (64, 16384, 65536, 128)
    assert 1e5 < param_count(CONFIGS["tiny"]) < 1e6


def _tiny(**kw):
    torch.manual_seed(0)
    return PanguAlpha(get_config("tiny", vocab_size=300, seq_len=32, **kw)).eval()


def test_query_layer_takes_its_query_from_the_next_position_embedding():
    m = _tiny()
    seen = {}
    m.query_layer.attn.q.register_forward_hook(lambda mod, inp, out: seen.update(inp=inp[0], out=out))
    idx = torch.randint(0, 300, (3, 20))
    logits = m(idx)
    assert logits.shape == (3, 20, 300)
    assert m.wqe.weight.shape == (32, 64)
    # The query is the (batch-independent) embedding of positions 0..T-1 — not the hidden state.
    assert seen["inp"].shape == (1, 20, 64)
    assert torch.equal(seen["inp"][0], m.wqe.weight[:20])
    assert seen["out"].shape == (1, 20, 64)
    # Changing the query embedding changes the output: the query layer really uses it.
    with torch.no_grad():
        m.wqe.weight[5] += 1.0
    after = m(idx)
    assert not torch.allclose(after[:, 5], logits[:, 5])
    assert torch.allclose(after[:, 4], logits[:, 4])


@pytest.mark.parametrize("k", [1, 3, 7])
def test_causal_no_future_leakage(k):
    m = _tiny()
    g = torch.Generator().manual_seed(k)
    idx = torch.randint(0, 300, (2, 24), generator=g)
    t = 10
    changed = idx.clone()
    changed[:, t + k] = (changed[:, t + k] + 17) % 300
    a, b = m(idx), m(changed)
    assert torch.allclose(a[:, : t + k], b[:, : t + k], atol=1e-6)
    assert not torch.allclose(a[:, t + k:], b[:, t + k:])


def test_too_long_sequence_is_refused():
    with pytest.raises(ValueError):
        _tiny()(torch.zeros(1, 33, dtype=torch.long))
