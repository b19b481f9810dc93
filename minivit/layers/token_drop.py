"""Token dropping (PatchDropout): train on a random subset of the patch tokens.

FLIP (Li et al., "Scaling Language-Image Pre-training via Masking", CVPR 2023) and PatchDropout
(Liu et al., "PatchDropout: Economizing Vision Transformers Using Patch Dropout", WACV 2023) drop
a random 25-75% of the patch tokens of every training image *after* the position embeddings are
added, so each kept token still knows where it came from. The encoder then runs on fewer tokens:
attention costs ~T^2 and everything else ~T, so dropping half the tokens roughly halves a step.
At evaluation nothing is dropped (the model sees all tokens; no rescaling is needed, because no
value is scaled -- tokens are removed, not zeroed).

    z (B, P + N, D)  --keep P prefix tokens (the class token) + K of the N patch tokens-->  (B, P + K, D)

The kept patches of each image are an independent random choice, sorted (their order does not
matter to attention, but a sorted index is easier to read and to scatter back). The backward
scatters the gradient of each kept token back to its place; dropped tokens get gradient 0.
"""
from __future__ import annotations

import numpy as np

from minivit.backend import get_array_module


def num_kept(num_patches: int, drop: float) -> int:
    """How many of ``num_patches`` patch tokens a drop rate keeps: round(N (1 - drop)), at least 1."""
    if not 0.0 <= drop < 1.0:
        raise ValueError(f"token drop rate must be in [0, 1), got {drop}")
    return max(1, int(round(num_patches * (1.0 - drop))))


def token_keep_indices(rng, batch_size: int, num_patches: int, keep: int, xp=np):
    """A random choice of ``keep`` of ``num_patches`` patch indices per image, sorted.

    rng: a Generator of the array library ``xp`` (``backend.make_rng(..., xp=xp)``).
    returns: (batch_size, keep) int64 array of indices in [0, num_patches), distinct in each row.
    """
    if not 1 <= keep <= num_patches:
        raise ValueError(f"keep must be between 1 and {num_patches}, got {keep}")
    scores = rng.random((batch_size, num_patches))              # a random permutation per row:
    idx = xp.argsort(scores, axis=1)[:, :keep]                  # the first `keep` of it
    return xp.sort(idx, axis=1).astype(xp.int64)


def token_drop_forward(x, keep_idx, num_prefix: int = 1):
    """Keep the ``num_prefix`` leading tokens and the patch tokens ``keep_idx`` of each image.

    x: (B, num_prefix + N, D)   keep_idx: (B, K) ints in [0, N)
    returns: out (B, num_prefix + K, D) with out[b, num_prefix + j] = x[b, num_prefix + keep_idx[b, j]];
             cache (keep_idx, x.shape, num_prefix)
    """
    xp = get_array_module(x)
    B, T, D = x.shape
    if keep_idx.ndim != 2 or keep_idx.shape[0] != B:
        raise ValueError(f"keep_idx must have shape ({B}, K), got {tuple(keep_idx.shape)}")
    rows = xp.arange(B)[:, None]                                 # (B, 1), broadcast against (B, K)
    kept = x[:, num_prefix:][rows, keep_idx]                     # (B, K, D), a gather
    out = xp.concatenate([x[:, :num_prefix], kept], axis=1)
    return out, (keep_idx, x.shape, num_prefix)


def token_drop_backward(dout, cache):
    """dout: (B, num_prefix + K, D) -> dx (B, num_prefix + N, D): each kept token's gradient back
    at its place, zeros for the dropped ones (they did not reach the loss)."""
    keep_idx, shape, num_prefix = cache
    xp = get_array_module(dout)
    dx = xp.zeros(shape, dtype=dout.dtype)
    dx[:, :num_prefix] = dout[:, :num_prefix]
    rows = xp.arange(shape[0])[:, None]
    # The indices of a row are distinct, so a plain assignment (no scatter-add) is exact.
    dx[:, num_prefix:][rows, keep_idx] = dout[:, num_prefix:]
    return dx
