"""Compact PanGu-α trainer, perplexity evaluation and the quality-eval loop (the `train` extra).
torch is imported only inside this package, and only when a command needs it."""

from __future__ import annotations


def require_torch():
    try:
        import torch
    except ImportError as e:
        from corpusforge.errors import CorpusforgeError

        raise CorpusforgeError("missing_dependency", f"torch is not importable ({e}); install corpusforge[train] "
                               "(pip install torch==2.13.0 first)") from None
    return torch
