"""The attention weights A (B, h, T, T) of every encoder block, read from the blocks' caches
(the input of every analysis except the embedding filters and the position similarity)."""
from __future__ import annotations

import numpy as np

from minivit.backend import get_array_module


def block_attention(block):
    """The attention weights A (B, h, T, T) of ``block``'s last forward pass, from its cache.

    The cache nesting (see ``layers/block.py`` and ``layers/attention.py``):
    ``block.cache`` = encoder-block cache, whose entry 1 is the MSA cache
    (qkv, attention, out, heads), whose entry 1 is the attention cache (q, k, v, A, scale).
    """
    try:
        A = block.cache[1][1][3]
    except (AttributeError, IndexError, TypeError, KeyError) as e:
        raise RuntimeError("could not find the attention weights in the encoder block's cache "
                           "(run model.forward first, with minivit's reference layers)") from e
    if getattr(A, "ndim", 0) != 4 or A.shape[-1] != A.shape[-2]:
        raise RuntimeError(f"unexpected attention cache entry with shape {getattr(A, 'shape', None)}; "
                           "expected (B, h, T, T)")
    return A


def attention_weights(model, x, batch_size: int = 64):
    """Attention weights of every block for images ``x``.

    x: (B, H, W, C) float, normalized as for training (on the model's device).
    returns: list of L arrays (B, h, T, T), rows summing to 1 (T = N+1 with a class token).
    Runs in eval mode (no dropout) with minivit's reference layers, ``batch_size`` images at a time.
    """
    from minivit import ops

    xp = get_array_module(x)
    out = [[] for _ in model.blocks]
    was_training = model.training
    model.eval()
    try:
        with ops.use(ops.reference()):
            for i in range(0, len(x), batch_size):
                model.forward(x[i:i + batch_size])
                for layer, block in enumerate(model.blocks):
                    out[layer].append(block_attention(block).copy())
    finally:
        model.train(was_training)
        model.cache = None
        for block in model.blocks:
            block.cache = None
    return [xp.concatenate(a) for a in out]


def _split_tokens(A, cls_token):
    """Index where patch tokens start (1 with a class token, else 0) and the grid side."""
    s = 1 if cls_token else 0
    n = A.shape[-1] - s
    g = int(round(np.sqrt(n)))
    return s, n, g
