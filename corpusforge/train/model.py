"""Compact PanGu-α (Zeng et al. 2021, §2): token + position embeddings, pre-LayerNorm decoder layers
with a GeLU FFN, and a top *query layer* whose attention query is a learned embedding of the next
position (not the hidden state), so the last layer explicitly asks "what comes at position n+1?".
Output logits are tied to the token embedding, as in PanGu-α."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

from corpusforge.train import require_torch

torch = require_torch()
nn = torch.nn
F = torch.nn.functional


@dataclass(frozen=True)
class PanguConfig:
    n_layer: int  # ordinary decoder layers; the query layer comes on top of them
    d_model: int
    n_head: int
    d_ffn: int
    seq_len: int = 1024
    vocab_size: int = 40000
    dropout: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


# Paper shapes (Table 1: layers / hidden / FFN / heads) for parameter counts; tiny for CPU tests.
CONFIGS = {
    "tiny": PanguConfig(n_layer=2, d_model=64, n_head=4, d_ffn=256, seq_len=128, vocab_size=2000),
    "350m": PanguConfig(n_layer=24, d_model=1024, n_head=16, d_ffn=4096),
    "2.6b": PanguConfig(n_layer=32, d_model=2560, n_head=32, d_ffn=10240),
    "13b": PanguConfig(n_layer=40, d_model=5120, n_head=40, d_ffn=20480),
    "200b": PanguConfig(n_layer=64, d_model=16384, n_head=128, d_ffn=65536),
}


def get_config(name: str, **overrides) -> PanguConfig:
    from corpusforge.errors import CorpusforgeError

    if name not in CONFIGS:
        raise CorpusforgeError("bad_config", f"unknown model config {name!r} (known: {', '.join(CONFIGS)})")
    return replace(CONFIGS[name], **{k: v for k, v in overrides.items() if v is not None})


def param_count(cfg: PanguConfig) -> int:
    """Analytic parameter count (equals sum(p.numel()) of PanguAlpha(cfg)); never allocates."""
    d, f = cfg.d_model, cfg.d_ffn
    layer = 2 * 2 * d + (4 * d * d + 4 * d) + (d * f + f + f * d + d)  # 2 LNs, attention, FFN
    emb = cfg.vocab_size * d + cfg.seq_len * d  # tokens (tied with the output) + positions
    query_emb = cfg.seq_len * d  # the query layer's next-position embeddings
    return emb + query_emb + (cfg.n_layer + 1) * layer + 2 * d  # +1: the query layer; + final LN


class Attention(nn.Module):
    def __init__(self, cfg: PanguConfig):
        super().__init__()
        self.h, self.d = cfg.n_head, cfg.d_model
        self.q = nn.Linear(cfg.d_model, cfg.d_model)
        self.kv = nn.Linear(cfg.d_model, 2 * cfg.d_model)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model)
        self.dropout = cfg.dropout

    def forward(self, query: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Causal attention: row t of `query` attends to rows <= t of `x`."""
        B, T, C = x.shape
        q = self.q(query).view(query.shape[0], T, self.h, C // self.h).transpose(1, 2)
        k, v = self.kv(x).view(B, T, 2, self.h, C // self.h).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q.expand(B, -1, -1, -1), k, v, is_causal=True,
                                           dropout_p=self.dropout if self.training else 0.0)
        return self.proj(y.transpose(1, 2).reshape(B, T, C))


class FFN(nn.Module):
    def __init__(self, cfg: PanguConfig):
        super().__init__()
        self.up = nn.Linear(cfg.d_model, cfg.d_ffn)
        self.down = nn.Linear(cfg.d_ffn, cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x):
        return self.drop(self.down(F.gelu(self.up(x))))


class Layer(nn.Module):
    """Pre-LN decoder layer. With `query` given it is the query layer: Q from `query`, K/V from x."""

    def __init__(self, cfg: PanguConfig):
        super().__init__()
        self.ln1, self.attn = nn.LayerNorm(cfg.d_model), Attention(cfg)
        self.ln2, self.ffn = nn.LayerNorm(cfg.d_model), FFN(cfg)

    def forward(self, x, query=None):
        h = self.ln1(x)
        x = x + self.attn(h if query is None else query, h)
        return x + self.ffn(self.ln2(x))


class PanguAlpha(nn.Module):
    def __init__(self, cfg: PanguConfig):
        super().__init__()
        self.cfg = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.wpe = nn.Embedding(cfg.seq_len, cfg.d_model)
        self.wqe = nn.Embedding(cfg.seq_len, cfg.d_model)  # row t: "the position after t"
        self.drop = nn.Dropout(cfg.dropout)
        self.layers = nn.ModuleList(Layer(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.d_model)
        self.query_layer = Layer(cfg)
        self.apply(self._init)
        # GPT-2 style scaled init of residual projections keeps the residual stream's variance flat.
        for n, p in self.named_parameters():
            if n.endswith(("proj.weight", "down.weight")):
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * (cfg.n_layer + 1)))

    @staticmethod
    def _init(m):
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.02)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, 0.0, 0.02)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """idx (B, T) token ids → logits (B, T, vocab) for the token at t+1."""
        T = idx.shape[1]
        if T > self.cfg.seq_len:
            raise ValueError(f"sequence of {T} tokens exceeds seq_len {self.cfg.seq_len}")
        pos = torch.arange(T, device=idx.device)
        x = self.drop(self.wte(idx) + self.wpe(pos))
        for layer in self.layers:
            x = layer(x)
        x = self.ln_f(x)
        x = self.query_layer(x, query=self.wqe(pos).unsqueeze(0))
        return x @ self.wte.weight.t()

    def loss(self, idx: torch.Tensor, targets: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        logits = self(idx)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1),
                               ignore_index=-1, reduction=reduction)
