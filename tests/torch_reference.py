"""An independent PyTorch implementation of minivit's ViT, for checking minivit against autograd.

Written from the math with plain torch ops (no minivit code except the fixed sin-cos table,
``minivit.layers.embedding.sincos_2d_position_embedding``, which has no parameters), so a
mistake in minivit's hand-written forward or backward shows up as a mismatch here.

Conventions (the same as minivit's):

* images are NHWC, (B, H, W, C);
* patchify cuts P x P patches, ordered row-major over the patch grid, each flattened in
  (row, col, channel) order -> (B, N, P*P*C);
* every dense weight is (D_in, D_out): y = x @ W + b;
* the qkv weight (D, 3D) has columns [q | k | v], each split into heads (h, d);
* pre-norm blocks: z = z + proj(attn(LN1(z))); z = z + fc2(gelu(fc1(LN2(z))));
* final LayerNorm on every token, then token 0 (pool='cls') or the token mean (pool='gap'),
  then the head.

Parameters are passed as a dict keyed by minivit's ``state_dict()`` names
(``patch_embed.weight``, ``blocks.0.attn.qkv.weight``, ``head.bias``, ...).

PyTorch is a development-only dependency: only the tests and ``benchmarks/`` import it.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# The per-block parameter names, relative to ``blocks.{i}.``.
BLOCK_PARAM_SUFFIXES = (
    "norm1.gamma", "norm1.beta",
    "attn.qkv.weight", "attn.qkv.bias", "attn.proj.weight", "attn.proj.bias",
    "norm2.gamma", "norm2.beta",
    "mlp.fc1.weight", "mlp.fc1.bias", "mlp.fc2.weight", "mlp.fc2.bias",
)


# ----------------------------------------------------------------------------- components
def patchify(x: torch.Tensor, patch_size: int) -> torch.Tensor:
    """(B, H, W, C) -> (B, N, P*P*C), written with ``Tensor.unfold`` (a different route from
    minivit's reshape/transpose): unfold the H axis, then the W axis, into P-windows of stride P."""
    B, H, W, C = x.shape
    P = patch_size
    # x.unfold(1, P, P): (B, H/P, W, C, P)  [the window lands last]; .unfold(2, P, P): (B, gh, gw, C, P_row, P_col)
    u = x.unfold(1, P, P).unfold(2, P, P)
    # -> (B, gh, gw, P_row, P_col, C), flatten the patch in (row, col, channel) order
    return u.permute(0, 1, 2, 4, 5, 3).reshape(B, (H // P) * (W // P), P * P * C)


def linear(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """y = x W + b with W (D_in, D_out) (torch's F.linear wants (D_out, D_in), hence the .t())."""
    return F.linear(x, w.t(), b)


def layer_norm(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, eps: float) -> torch.Tensor:
    return F.layer_norm(x, (x.shape[-1],), gamma, beta, eps)


def gelu(x: torch.Tensor, approximate: str = "tanh") -> torch.Tensor:
    return F.gelu(x, approximate=approximate)


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, use_sdpa: bool = False) -> torch.Tensor:
    """softmax(q k^T / sqrt(d)) v over the last two axes; q, k, v: (..., T, d).

    use_sdpa: call torch's fused ``F.scaled_dot_product_attention`` instead of the explicit
    formula (same math; used by the benchmark to show what a fused kernel buys).
    """
    if use_sdpa:
        return F.scaled_dot_product_attention(q, k, v)
    d = q.shape[-1]
    scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(d)
    return torch.matmul(torch.softmax(scores, dim=-1), v)


def mhsa(x, w_qkv, b_qkv, w_out, b_out, num_heads: int, use_sdpa: bool = False) -> torch.Tensor:
    """Multi-head self-attention. x: (B, T, D), w_qkv: (D, 3D) with columns [q | k | v]."""
    B, T, D = x.shape
    d = D // num_heads
    qkv = linear(x, w_qkv, b_qkv)                      # (B, T, 3D)
    q, k, v = qkv.split(D, dim=-1)                     # each (B, T, D), columns (h, d)

    def heads(t):                                      # (B, T, D) -> (B, h, T, d)
        return t.view(B, T, num_heads, d).transpose(1, 2)

    out = attention(heads(q), heads(k), heads(v), use_sdpa)    # (B, h, T, d)
    out = out.transpose(1, 2).reshape(B, T, D)         # concatenate the heads
    return linear(out, w_out, b_out)


def mlp(x, w1, b1, w2, b2, approximate: str = "tanh") -> torch.Tensor:
    return linear(gelu(linear(x, w1, b1), approximate), w2, b2)


def encoder_block(z, p: dict, prefix: str, config, use_sdpa: bool = False) -> torch.Tensor:
    """Pre-norm block: z + MSA(LN1(z)), then + MLP(LN2(.)). ``p[prefix + suffix]``."""
    eps = config.ln_eps
    h = layer_norm(z, p[prefix + "norm1.gamma"], p[prefix + "norm1.beta"], eps)
    z = z + mhsa(h, p[prefix + "attn.qkv.weight"], p[prefix + "attn.qkv.bias"],
                 p[prefix + "attn.proj.weight"], p[prefix + "attn.proj.bias"], config.num_heads, use_sdpa)
    h = layer_norm(z, p[prefix + "norm2.gamma"], p[prefix + "norm2.beta"], eps)
    return z + mlp(h, p[prefix + "mlp.fc1.weight"], p[prefix + "mlp.fc1.bias"],
                   p[prefix + "mlp.fc2.weight"], p[prefix + "mlp.fc2.bias"], config.gelu)


def sincos_table(config, dtype=torch.float64, device=None) -> torch.Tensor:
    """The fixed 2D sin-cos position table (1, T, D), computed in float64 then cast to ``dtype``."""
    from minivit.layers.embedding import sincos_2d_position_embedding

    grid = config.image_size // config.patch_size
    table = sincos_2d_position_embedding(grid, grid, config.dim, cls_token=config.pool == "cls", dtype=np.float64)
    return torch.as_tensor(table, dtype=dtype, device=device)


# ------------------------------------------------------------------------------- the model
def torch_vit_forward(params: dict, x: torch.Tensor, config, fixed_pos: torch.Tensor | None = None,
                      use_sdpa: bool = False) -> torch.Tensor:
    """The ViT forward pass (no dropout, no drop-path: evaluation semantics).

    params: {minivit state_dict name: tensor}.  x: (B, H, W, C).  returns logits (B, K).
    fixed_pos: the (1, T, D) table for pos_embed='sincos' (computed when None).
    """
    c = config
    B = x.shape[0]
    z = linear(patchify(x, c.patch_size), params["patch_embed.weight"], params["patch_embed.bias"])  # (B, N, D)
    if c.pool == "cls":
        cls = params["cls_token"].expand(B, 1, c.dim)
        z = torch.cat([cls, z], dim=1)                                                  # (B, N+1, D)
    if c.pos_embed == "learned":
        z = z + params["pos_embed"]
    elif c.pos_embed == "sincos":
        if fixed_pos is None:
            fixed_pos = sincos_table(c, dtype=z.dtype, device=z.device)
        z = z + fixed_pos
    for i in range(c.depth):
        z = encoder_block(z, params, f"blocks.{i}.", c, use_sdpa)
    z = layer_norm(z, params["norm.gamma"], params["norm.beta"], c.ln_eps)
    y = z[:, 0] if c.pool == "cls" else z.mean(dim=1)
    return linear(y, params["head.weight"], params["head.bias"])


def torch_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """Mean softmax cross-entropy; labels: class indices (B,) or soft targets (B, K)."""
    return F.cross_entropy(logits, labels, label_smoothing=label_smoothing)


def expected_param_names(config) -> list[str]:
    """The parameter names minivit's ViT has for ``config`` (for checking both sides agree)."""
    names = ["patch_embed.weight", "patch_embed.bias"]
    if config.pool == "cls":
        names.append("cls_token")
    if config.pos_embed == "learned":
        names.append("pos_embed")
    for i in range(config.depth):
        names += [f"blocks.{i}.{s}" for s in BLOCK_PARAM_SUFFIXES]
    names += ["norm.gamma", "norm.beta", "head.weight", "head.bias"]
    return names


# ------------------------------------------------------------------------- nn.Module wrapper
class _Holder(nn.Module):
    """An empty module that only holds parameters / children (to rebuild dotted names)."""


class TorchViT(nn.Module):
    """A torch module with minivit's parameter names, built from a minivit ``state_dict()``.

    ``dict(TorchViT(sd, cfg).named_parameters())`` has exactly the keys of ``sd``;
    ``forward`` is :func:`torch_vit_forward`.
    """

    def __init__(self, state_dict: dict, config, dtype=torch.float32, device=None, use_sdpa: bool = False):
        super().__init__()
        self.config = config
        self.use_sdpa = use_sdpa
        for name, value in state_dict.items():
            *path, leaf = name.split(".")
            owner = self
            for part in path:
                if not hasattr(owner, part):
                    owner.add_module(part, _Holder())
                owner = getattr(owner, part)
            owner.register_parameter(leaf, nn.Parameter(torch.as_tensor(np.asarray(value), dtype=dtype, device=device).clone()))
        if config.pos_embed == "sincos":
            self.register_buffer("fixed_pos", sincos_table(config, dtype=dtype, device=device))
        else:
            self.fixed_pos = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch_vit_forward(dict(self.named_parameters()), x, self.config, self.fixed_pos, self.use_sdpa)
