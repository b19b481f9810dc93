"""The Vision Transformer (Dosovitskiy et al., ICLR 2021), equations (1)-(4).

    x (B, H, W, C) --patchify--> (B, N, P*P*C) --E--> (B, N, D)                       eq. (1)
      --prepend x_class--> (B, N+1, D) --+ E_pos--> z_0
    z_l = EncoderBlock(z_{l-1}),  l = 1..L                                            eqs. (2), (3)
    y = LN(z_L)^0  (class token; or the mean over tokens with pool='gap')             eq. (4)
    logits = y W_head + b_head                                                        (B, K)

``ViT.forward`` runs this top to bottom; ``ViT.backward`` runs it bottom to top, filling
every parameter's ``.grad``.

Options from the paper (all in ``ViTConfig``):

* ``pool``: class token (default) or global average pooling (Appendix D.3).
* ``pos_embed``: 'learned' (1D, default), 'learned2d' (row + column tables, Appendix D.4),
  'sincos' (fixed 2D) or 'none'.
* ``representation_size``: the pre-training head's hidden tanh layer (``pre_logits``);
  ``ViT.replace_head`` swaps it for the fine-tuning head, a zero-initialized linear layer.
* ``ViT.resize``: fine-tune at another resolution; learned position embeddings are
  interpolated in 2D (Section 3.2, :func:`minivit.interpolate.interpolate_pos_embed`).
  It, ``replace_head`` and flexible_resolution's interpolation are in minivit/model_resolution.py;
  ViTConfig's checks in minivit/model_check.py.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from minivit.backend import get_array_module, to_device
from minivit.layers.patch import check_image_batch
from minivit.layers.embedding import sincos_2d_position_embedding
from minivit.layers.token_drop import num_kept, token_keep_indices
from minivit.interpolate import interpolate_pos_embed, resize_table_1d  # noqa: F401  (re-exported)
from minivit.modules import EncoderBlock, LayerNorm, Linear, Module, Parameter
from minivit.ops import F
from minivit.model_check import POOLS, POS_EMBEDS, check_vit_config  # noqa: F401  (re-exported)
from minivit import model_resolution as resolution


@dataclass
class ViTConfig:
    """Everything that defines a ViT's shape. See ``PRESETS`` for named configurations.

    pool: 'cls' or 'gap'. The paper (Appendix D.3, Fig. 9) finds both reach the same accuracy
        *with different learning rates*: a GAP model trained with the class-token model's
        learning rate performs poorly; GAP needs its own (there: larger) rate. So when you
        switch ``pool``, re-tune ``--lr`` instead of reusing the class-token recipe's.
    pos_embed: 'learned' (1D, one vector per token, the paper's default), 'learned2d' (a row
        and a column table of width D/2 each, concatenated; Appendix D.4), 'sincos' (fixed 2D
        sine-cosine, no parameters) or 'none' (the model then sees a bag of patches: any
        permutation of the patches gives the same output).
    representation_size: None (a single linear head) or R: the paper's pre-training head,
        Linear(D, R) + tanh before the classifier (the official code's ``pre_logits``).
    token_drop: in training mode only, keep a random round(N (1 - token_drop)) of the N patch
        tokens of each image after the position embeddings (PatchDropout / FLIP); 0 = off.
    flexible_resolution: accept images of any size divisible by the patch size; for another
        grid than image_size's, the position embeddings are interpolated to it in the forward
        (and their gradient back through the interpolation): progressive resizing. False = off.
    """

    image_size: int = 32
    patch_size: int = 4
    in_channels: int = 3
    num_classes: int = 10
    dim: int = 256            # D, the token width ("hidden size")
    depth: int = 7            # L, the number of encoder blocks
    num_heads: int = 4        # h; each head has width D/h
    mlp_dim: int = 512        # the MLP's hidden width
    pool: str = "cls"         # 'cls' (class token, the paper's default) or 'gap' (global average pooling)
    pos_embed: str = "learned"  # 'learned' (1D, the paper's default), 'sincos' (fixed 2D) or 'none'
    dropout: float = 0.0      # dropout on the embeddings and on each residual branch
    drop_path: float = 0.0    # stochastic depth, growing linearly to this value at the last block
    ln_eps: float = 1e-6
    gelu: str = "tanh"        # 'tanh' (official code) or 'none' (exact erf)
    representation_size: int | None = None  # pre-training head: Linear(D, R) + tanh before the classifier
    token_drop: float = 0.0   # training only: drop this fraction of the patch tokens (layers/token_drop.py)
    flexible_resolution: bool = False  # accept other image sizes: position table interpolated (layers/pos_resize.py)

    def __post_init__(self):
        check_vit_config(self)      # types, ranges, consistency: minivit/model_check.py

    @property
    def num_patches(self) -> int:
        """N = HW / P^2."""
        return (self.image_size // self.patch_size) ** 2

    @property
    def seq_len(self) -> int:
        """Tokens per image: N, plus one for the class token."""
        return self.num_patches + (1 if self.pool == "cls" else 0)

    @property
    def grid_size(self) -> int:
        """Patches per side, H/P."""
        return self.image_size // self.patch_size

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ViTConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown ViTConfig fields: {sorted(unknown)}")
        return cls(**d)

    @classmethod
    def preset(cls, name: str, **overrides) -> "ViTConfig":
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
        return cls(**{**PRESETS[name], **overrides})


PRESETS = {
    # About 24k parameters: unit tests, gradient checks, CPU demos in seconds.
    "tiny": dict(image_size=32, patch_size=8, dim=32, depth=2, num_heads=2, mlp_dim=64),
    # ViT-Lite-7/4 (Hassani et al. 2021, "Escaping the Big Data Paradigm with Compact Transformers").
    "cifar": dict(image_size=32, patch_size=4, dim=256, depth=7, num_heads=4, mlp_dim=512),
    # The paper's Table 1 models, at 224x224 with a 1000-class head.
    "B/16": dict(image_size=224, patch_size=16, num_classes=1000, dim=768, depth=12, num_heads=12, mlp_dim=3072),
    "L/16": dict(image_size=224, patch_size=16, num_classes=1000, dim=1024, depth=24, num_heads=16, mlp_dim=4096),
    "H/14": dict(image_size=224, patch_size=14, num_classes=1000, dim=1280, depth=32, num_heads=16, mlp_dim=5120),
}


class ViT(Module):
    """Vision Transformer.   forward: x (B, H, W, C) float -> logits (B, num_classes).

    ``replace_head``, ``resize`` and ``position_table`` (fine-tuning, Section 3.2) are in
    minivit/model_resolution.py.

    Initialization follows the official code: Xavier-uniform dense kernels, zero biases,
    patch embedding LeCun-normal (std 1/sqrt(P*P*C); the official code truncates the normal,
    minivit does not), position embeddings N(0, 0.02^2), zero class token, zero head.
    """

    def __init__(self, config: ViTConfig | None = None, seed: int = 0, xp=np, dtype=np.float32):
        config = config or ViTConfig()
        self.config = c = config
        rng = np.random.default_rng(seed)
        patch_dim = c.patch_size * c.patch_size * c.in_channels
        self.patch_embed = Linear(patch_dim, c.dim, rng, dtype)
        self.patch_embed.weight.value = (rng.standard_normal((patch_dim, c.dim)) / np.sqrt(patch_dim)).astype(dtype)
        if c.pool == "cls":
            self.cls_token = Parameter(np.zeros((1, 1, c.dim), dtype), decay=False)
        grid = c.image_size // c.patch_size
        self.fixed_pos = None
        if c.pos_embed == "learned":
            self.pos_embed = Parameter((0.02 * rng.standard_normal((1, c.seq_len, c.dim))).astype(dtype), decay=False)
        elif c.pos_embed == "sincos":
            self.fixed_pos = sincos_2d_position_embedding(grid, grid, c.dim, cls_token=c.pool == "cls", dtype=dtype)
        elif c.pos_embed == "learned2d":   # Appendix D.4: a row and a column table, D/2 wide each
            self.pos_embed_row = Parameter((0.02 * rng.standard_normal((grid, c.dim // 2))).astype(dtype), decay=False)
            self.pos_embed_col = Parameter((0.02 * rng.standard_normal((grid, c.dim // 2))).astype(dtype), decay=False)
        rates = np.linspace(0.0, c.drop_path, c.depth) if c.depth > 1 else [c.drop_path]
        self.blocks = [
            EncoderBlock(c.dim, c.num_heads, c.mlp_dim, rng, c.ln_eps, c.gelu, c.dropout, float(r), dtype)
            for r in rates
        ]
        self.norm = LayerNorm(c.dim, c.ln_eps, dtype)
        self.pre_logits = None            # the pre-training head's hidden layer (+ tanh), if any
        if c.representation_size:
            self.pre_logits = Linear(c.dim, c.representation_size, rng, dtype)
        self.head = Linear(c.representation_size or c.dim, c.num_classes, rng, dtype, zero_init=True)
        if xp is not np:
            self.to(xp)

    def _moved(self, xp, dtype):
        if self.fixed_pos is not None:   # recompute (not cast) so a float64 model gets exact values
            c = self.config
            grid = c.image_size // c.patch_size
            table = sincos_2d_position_embedding(grid, grid, c.dim, cls_token=c.pool == "cls",
                                                 dtype=dtype or self.fixed_pos.dtype)
            self.fixed_pos = to_device(table, xp or get_array_module(self.fixed_pos))

    @property
    def dtype(self):
        return self.head.weight.value.dtype

    # ------------------------------------------------------------------------------ forward
    def forward(self, x, rng=None):
        """x: (B, H, W, C) float images -> logits (B, num_classes).

        rng: a Generator of x's array library (``backend.make_rng``); needed only in training
        mode with dropout or drop-path.
        """
        c = self.config
        check_image_batch(x, c.patch_size, c.in_channels)
        if (x.shape[1] != c.image_size or x.shape[2] != c.image_size) and not c.flexible_resolution:
            raise ValueError(f"this model was built for {c.image_size}x{c.image_size} images, got "
                             f"{x.shape[1]}x{x.shape[2]} (shape {tuple(x.shape)})")
        x = x.astype(self.dtype, copy=False)
        cache = {}
        patches, cache["patchify"] = F.patchify_forward(x, c.patch_size)          # (B, N, P*P*C)
        z = self.patch_embed.forward(patches)                                      # (B, N, D)   eq. (1)
        if c.pool == "cls":
            z, cache["cls"] = F.cls_token_forward(z, self.cls_token.value)         # (B, N+1, D)
        grid = (x.shape[1] // c.patch_size, x.shape[2] // c.patch_size)
        if grid != (c.grid_size, c.grid_size):                 # flexible_resolution (model_resolution.py)
            z = resolution.other_grid_pos(self, z, grid, cache)
        elif c.pos_embed == "learned":
            z, cache["pos"] = F.pos_embed_forward(z, self.pos_embed.value)
        elif c.pos_embed == "sincos":
            z = z + self.fixed_pos
        elif c.pos_embed == "learned2d":
            table, cache["pos2d"] = F.learned_2d_pos_forward(self.pos_embed_row.value, self.pos_embed_col.value,
                                                           cls_token=c.pool == "cls")
            z, cache["pos"] = F.pos_embed_forward(z, table)
        if c.token_drop and self.training:                                         # PatchDropout
            if rng is None:
                raise ValueError("token dropping in training mode needs a random generator (rng=...)")
            prefix = 1 if c.pool == "cls" else 0
            n = z.shape[1] - prefix
            keep = token_keep_indices(rng, z.shape[0], n, num_kept(n, c.token_drop), get_array_module(z))
            z, cache["token_drop"] = F.token_drop_forward(z, keep, prefix)
        z, cache["drop"] = F.dropout_forward(z, c.dropout, rng, self.training)
        for block in self.blocks:                                                  # eqs. (2), (3)
            z = block.forward(z, rng)
        z = self.norm.forward(z)                                                   # eq. (4)
        if c.pool == "cls":
            y, cache["pool"] = F.cls_pool_forward(z)                               # (B, D)
        else:
            y, cache["pool"] = F.gap_forward(z)
        if self.pre_logits is not None:                                            # pre-training head
            y, cache["tanh"] = F.tanh_forward(self.pre_logits.forward(y))            # (B, R)
        self.cache = cache
        return self.head.forward(y)                                                # (B, K)

    # ----------------------------------------------------------------------------- backward
    def backward(self, dlogits):
        """dlogits: (B, num_classes) -> dx (B, H, W, C); fills every parameter's ``.grad``."""
        c, cache = self.config, self.cache
        dy = self.head.backward(dlogits)
        if self.pre_logits is not None:
            dy = self.pre_logits.backward(F.tanh_backward(dy, cache["tanh"]))
        if c.pool == "cls":
            dz = F.cls_pool_backward(dy, cache["pool"])
        else:
            dz = F.gap_backward(dy, cache["pool"])
        dz = self.norm.backward(dz)
        for block in reversed(self.blocks):
            dz = block.backward(dz)
        dz = F.dropout_backward(dz, cache["drop"])
        if "token_drop" in cache:
            dz = F.token_drop_backward(dz, cache["token_drop"])
        if c.pos_embed == "learned":
            dz, dpos = F.pos_embed_backward(dz, cache["pos"])
            if "pos_resize" in cache:                   # another grid: back through the interpolation
                dpos = F.pos_resize_backward(dpos, cache["pos_resize"])
            self.pos_embed.grad = dpos
        elif c.pos_embed == "learned2d":
            dz, dtable = F.pos_embed_backward(dz, cache["pos"])
            drow, dcol = F.learned_2d_pos_backward(dtable, cache["pos2d"])
            if "row_resize" in cache:                   # another grid: back through the interpolation
                drow = F.table_resize_backward(drow, cache["row_resize"])
                dcol = F.table_resize_backward(dcol, cache["col_resize"])
            self.pos_embed_row.grad, self.pos_embed_col.grad = drow, dcol
        if c.pool == "cls":
            dz, self.cls_token.grad = F.cls_token_backward(dz, cache["cls"])
        dpatches = self.patch_embed.backward(dz)
        return F.patchify_backward(dpatches, cache["patchify"])

    # ------------------------------------------------------------------------------ helpers
    def predict(self, x, batch_size=500):
        """Class predictions (B,) in eval mode, computed in batches (on x's device).
        An empty batch (0, H, W, C) gives an empty (0,) int64 array."""
        check_image_batch(x, self.config.patch_size, self.config.in_channels)
        xp = get_array_module(x)
        if len(x) == 0:
            return xp.zeros((0,), dtype=xp.int64)
        was_training = self.training
        self.eval()
        try:
            out = [xp.argmax(self.forward(x[i:i + batch_size]), axis=1) for i in range(0, len(x), batch_size)]
        finally:
            self.train(was_training)
        return xp.concatenate(out)

    # ------------------------------------------- another head or resolution (model_resolution.py)
    def replace_head(self, num_classes: int, seed: int = 0):
        """A zero-initialized head for ``num_classes`` classes (fine-tuning, Section 3.2); returns the model."""
        return resolution.replace_head(self, num_classes, seed)

    def resize(self, image_size: int, align_corners: bool = False):
        """A new input resolution, same patch size: the position embeddings interpolated; returns the model."""
        return resolution.resize(self, image_size, align_corners)

    def position_table(self):
        """The (1, T, D) position embeddings the forward adds, or None for pos_embed='none'."""
        return resolution.position_table(self)
