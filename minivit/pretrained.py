"""Load the official ViT checkpoints (google-research/vision_transformer) into minivit.

The official JAX/Flax code publishes its weights as ``.npz`` files (``ViT-B_16.npz``,
``ViT-L_16.npz``, ...) whose keys are Flax parameter paths. The mapping to minivit:

===========================================================  ==============  ==========================
Flax key                                                     Flax shape      minivit parameter
===========================================================  ==============  ==========================
``embedding/kernel``  (a P x P conv with stride P)            (P, P, C, D)    ``patch_embed.weight`` (P*P*C, D)
``embedding/bias``                                            (D,)            ``patch_embed.bias``
``cls``                                                       (1, 1, D)       ``cls_token``
``Transformer/posembed_input/pos_embedding``                  (1, T, D)       ``pos_embed``
``Transformer/encoderblock_{i}/LayerNorm_0/scale|bias``       (D,)            ``blocks.{i}.norm1.gamma|beta``
``.../MultiHeadDotProductAttention_1/{query,key,value}/kernel``  (D, h, d)    ``blocks.{i}.attn.qkv.weight`` (D, 3D)
``.../MultiHeadDotProductAttention_1/{query,key,value}/bias``    (h, d)       ``blocks.{i}.attn.qkv.bias`` (3D,)
``.../MultiHeadDotProductAttention_1/out/kernel|bias``        (h, d, D), (D,) ``blocks.{i}.attn.proj.weight`` (D, D)
``Transformer/encoderblock_{i}/LayerNorm_2/scale|bias``       (D,)            ``blocks.{i}.norm2.gamma|beta``
``.../MlpBlock_3/Dense_0/kernel|bias``                        (D, M), (M,)    ``blocks.{i}.mlp.fc1.weight|bias``
``.../MlpBlock_3/Dense_1/kernel|bias``                        (M, D), (D,)    ``blocks.{i}.mlp.fc2.weight|bias``
``Transformer/encoder_norm/scale|bias``                       (D,)            ``norm.gamma|beta``
``pre_logits/kernel|bias`` (pre-training head, if present)    (D, R), (R,)    ``pre_logits.weight|bias``
``head/kernel|bias``                                          (D or R, K)     ``head.weight|bias``
===========================================================  ==============  ==========================

Why the reshapes are plain reshapes: minivit flattens a patch in (row, col, channel) order, the
order of the conv kernel's first three axes; its fused qkv weight has columns [q | k | v], each
split into heads (h, d), which is the (h, d) flattening of Flax's per-head kernels; and its
merged heads are laid out (h, d), the first two axes of Flax's output kernel.

The official models use LayerNorm eps 1e-6 and the tanh form of GELU, minivit's defaults, and
expect images scaled to [-1, 1] (mean 0.5, std 0.5 per channel in [0, 1] units:
``OFFICIAL_MEAN``, ``OFFICIAL_STD``), not CIFAR's mean and std.

Everything here reads files with ``np.load(path, allow_pickle=False)``: a checkpoint can
never run code.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from minivit.storage.checkpoint import CheckpointError, check_parameter_dtypes, missing_message, read_arrays
from minivit.model import ViT, ViTConfig

OFFICIAL_MEAN = (0.5, 0.5, 0.5)
OFFICIAL_STD = (0.5, 0.5, 0.5)

_BLOCK = "Transformer/encoderblock_{i}/"
_MHA = "MultiHeadDotProductAttention_1/"
_POS = "Transformer/posembed_input/pos_embedding"


def read_npz(path) -> dict:
    """All arrays of an ``.npz`` file, as a dict (``checkpoint.read_arrays``: no pickles, every
    member's declared size checked before it is allocated)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(missing_message(path))
    return read_arrays(path, what="checkpoint")


def is_official(arrays: dict) -> bool:
    """True when the keys look like an official ViT checkpoint (Flax layout)."""
    return "embedding/kernel" in arrays and any(k.startswith("Transformer/") for k in arrays)


def _get(arrays, key, shape=None, source=""):
    if key not in arrays:
        near = sorted(k for k in arrays if k.split("/")[0] == key.split("/")[0])[:6]
        raise CheckpointError(f"{source}: missing key {key!r} in the official ViT layout"
                              + (f" (keys nearby: {near})" if near else "")
                              + "; is this a google-research/vision_transformer ViT checkpoint (not a hybrid R50+ViT)?")
    a = np.asarray(arrays[key])
    if shape is not None and tuple(a.shape) != tuple(shape):
        raise CheckpointError(f"{source}: {key} has shape {tuple(a.shape)}, expected {tuple(shape)} "
                              "for the configuration inferred from the other arrays")
    return a


def official_config(arrays: dict, source: str = "checkpoint") -> ViTConfig:
    """Infer a ViTConfig from the arrays of an official checkpoint.

    Patch size, channels and width from ``embedding/kernel`` (P, P, C, D); depth from the number
    of ``encoderblock_i``; heads from the query kernel (D, h, d); MLP width from ``Dense_0``;
    classes from ``head/kernel``; the class token from ``cls``; the image size from the length
    of the position embeddings (a square grid of patches).
    """
    if not is_official(arrays):
        raise CheckpointError(f"{source}: not an official ViT checkpoint (no 'embedding/kernel' and "
                              f"'Transformer/...' keys; found {sorted(arrays)[:5]}...)")
    k = _get(arrays, "embedding/kernel", source=source)
    if k.ndim != 4 or k.shape[0] != k.shape[1]:
        raise CheckpointError(f"{source}: embedding/kernel must be (P, P, C, D), got {k.shape}")
    P, _, C, D = k.shape
    blocks = {int(m.group(1)) for key in arrays if (m := re.match(r"Transformer/encoderblock_(\d+)/", key))}
    if not blocks or blocks != set(range(len(blocks))):
        raise CheckpointError(f"{source}: encoder blocks must be numbered 0..L-1, found {sorted(blocks)}")
    q = _get(arrays, _BLOCK.format(i=0) + _MHA + "query/kernel", source=source)
    if q.ndim != 3 or q.shape[0] != D:
        raise CheckpointError(f"{source}: query kernel must be (D={D}, heads, head width), got {q.shape}")
    mlp = _get(arrays, _BLOCK.format(i=0) + "MlpBlock_3/Dense_0/kernel", source=source)
    head = _get(arrays, "head/kernel", source=source)
    rep = arrays["pre_logits/kernel"].shape[1] if "pre_logits/kernel" in arrays else None
    pool = "cls" if "cls" in arrays else "gap"
    if _POS in arrays:
        T = arrays[_POS].shape[1]
        n = T - (1 if pool == "cls" else 0)
        g = int(round(np.sqrt(n)))
        if g * g != n:
            raise CheckpointError(f"{source}: {_POS} has {T} rows, not a square grid of patches"
                                  + (" plus the class token" if pool == "cls" else ""))
        pos_embed = "learned"
    else:
        raise CheckpointError(f"{source}: missing key {_POS!r} (the position embeddings)")
    return ViTConfig(image_size=g * P, patch_size=P, in_channels=C, num_classes=int(head.shape[1]), dim=D,
                     depth=len(blocks), num_heads=int(q.shape[1]), mlp_dim=int(mlp.shape[1]), pool=pool,
                     pos_embed=pos_embed, representation_size=rep, ln_eps=1e-6, gelu="tanh")


def official_to_state_dict(arrays: dict, config: ViTConfig, source: str = "checkpoint") -> dict:
    """Map official (Flax) arrays to minivit ``state_dict`` names and shapes (see the module table)."""
    c = config
    P, C, D, h, M = c.patch_size, c.in_channels, c.dim, c.num_heads, c.mlp_dim
    d = D // h
    g = lambda key, shape=None: _get(arrays, key, shape, source)  # noqa: E731
    sd = {
        "patch_embed.weight": g("embedding/kernel", (P, P, C, D)).reshape(P * P * C, D),
        "patch_embed.bias": g("embedding/bias", (D,)),
    }
    if c.pool == "cls":
        sd["cls_token"] = g("cls", (1, 1, D))
    sd["pos_embed"] = g(_POS, (1, c.seq_len, D))
    for i in range(c.depth):
        b, mha = _BLOCK.format(i=i), _BLOCK.format(i=i) + _MHA
        sd[f"blocks.{i}.norm1.gamma"] = g(b + "LayerNorm_0/scale", (D,))
        sd[f"blocks.{i}.norm1.beta"] = g(b + "LayerNorm_0/bias", (D,))
        sd[f"blocks.{i}.attn.qkv.weight"] = np.concatenate(
            [g(f"{mha}{n}/kernel", (D, h, d)).reshape(D, D) for n in ("query", "key", "value")], axis=1)
        sd[f"blocks.{i}.attn.qkv.bias"] = np.concatenate(
            [g(f"{mha}{n}/bias", (h, d)).reshape(D) for n in ("query", "key", "value")])
        sd[f"blocks.{i}.attn.proj.weight"] = g(mha + "out/kernel", (h, d, D)).reshape(D, D)
        sd[f"blocks.{i}.attn.proj.bias"] = g(mha + "out/bias", (D,))
        sd[f"blocks.{i}.norm2.gamma"] = g(b + "LayerNorm_2/scale", (D,))
        sd[f"blocks.{i}.norm2.beta"] = g(b + "LayerNorm_2/bias", (D,))
        sd[f"blocks.{i}.mlp.fc1.weight"] = g(b + "MlpBlock_3/Dense_0/kernel", (D, M))
        sd[f"blocks.{i}.mlp.fc1.bias"] = g(b + "MlpBlock_3/Dense_0/bias", (M,))
        sd[f"blocks.{i}.mlp.fc2.weight"] = g(b + "MlpBlock_3/Dense_1/kernel", (M, D))
        sd[f"blocks.{i}.mlp.fc2.bias"] = g(b + "MlpBlock_3/Dense_1/bias", (D,))
    sd["norm.gamma"] = g("Transformer/encoder_norm/scale", (D,))
    sd["norm.beta"] = g("Transformer/encoder_norm/bias", (D,))
    R = c.representation_size
    if R:
        sd["pre_logits.weight"] = g("pre_logits/kernel", (D, R))
        sd["pre_logits.bias"] = g("pre_logits/bias", (R,))
    sd["head.weight"] = g("head/kernel", (R or D, c.num_classes))
    sd["head.bias"] = g("head/bias", (c.num_classes,))
    return sd


def load_official_npz(path, num_classes: int | None = None, image_size: int | None = None, xp=np,
                      dtype=np.float32, align_corners: bool = False) -> ViT:
    """Build a minivit ViT from an official checkpoint (e.g. ``ViT-B_16.npz``).

    num_classes: None keeps the checkpoint's head (and its pre-logits layer); an integer replaces
        it with the fine-tuning head, a zero-initialized Linear(D, num_classes) (``ViT.replace_head``).
    image_size: None keeps the checkpoint's resolution; another size (a multiple of the patch
        size) interpolates the position embeddings in 2D (``ViT.resize``, paper Section 3.2).
    xp, dtype: where and in which precision the model lives.
    Inputs must be normalized with ``OFFICIAL_MEAN`` / ``OFFICIAL_STD`` ([-1, 1]).
    """
    arrays = read_npz(path)
    check_parameter_dtypes(arrays, path)
    config = official_config(arrays, source=str(path))
    model = ViT(config, dtype=dtype)
    model.load_state_dict(official_to_state_dict(arrays, config, source=str(path)))
    if image_size is not None and image_size != config.image_size:
        model.resize(image_size, align_corners=align_corners)
    if num_classes is not None:
        model.replace_head(num_classes)
    if xp is not np:
        model.to(xp)
    return model


def to_official_arrays(model: ViT) -> dict:
    """The inverse mapping: a minivit ViT (pos_embed='learned') as official Flax-layout arrays."""
    c = model.config
    if c.pos_embed != "learned":
        raise ValueError(f"the official layout has learned 1D position embeddings; this model has {c.pos_embed!r}")
    sd = model.state_dict()
    P, C, D, h, M = c.patch_size, c.in_channels, c.dim, c.num_heads, c.mlp_dim
    d = D // h
    out = {"embedding/kernel": sd["patch_embed.weight"].reshape(P, P, C, D), "embedding/bias": sd["patch_embed.bias"],
           _POS: sd["pos_embed"]}
    if c.pool == "cls":
        out["cls"] = sd["cls_token"]
    for i in range(c.depth):
        b, mha, s = _BLOCK.format(i=i), _BLOCK.format(i=i) + _MHA, f"blocks.{i}."
        out[b + "LayerNorm_0/scale"], out[b + "LayerNorm_0/bias"] = sd[s + "norm1.gamma"], sd[s + "norm1.beta"]
        w, bias = sd[s + "attn.qkv.weight"], sd[s + "attn.qkv.bias"]
        for j, n in enumerate(("query", "key", "value")):
            out[f"{mha}{n}/kernel"] = w[:, j * D:(j + 1) * D].reshape(D, h, d)
            out[f"{mha}{n}/bias"] = bias[j * D:(j + 1) * D].reshape(h, d)
        out[mha + "out/kernel"] = sd[s + "attn.proj.weight"].reshape(h, d, D)
        out[mha + "out/bias"] = sd[s + "attn.proj.bias"]
        out[b + "LayerNorm_2/scale"], out[b + "LayerNorm_2/bias"] = sd[s + "norm2.gamma"], sd[s + "norm2.beta"]
        for j, n in enumerate(("fc1", "fc2")):
            out[f"{b}MlpBlock_3/Dense_{j}/kernel"] = sd[f"{s}mlp.{n}.weight"]
            out[f"{b}MlpBlock_3/Dense_{j}/bias"] = sd[f"{s}mlp.{n}.bias"]
    out["Transformer/encoder_norm/scale"], out["Transformer/encoder_norm/bias"] = sd["norm.gamma"], sd["norm.beta"]
    if model.pre_logits is not None:
        out["pre_logits/kernel"], out["pre_logits/bias"] = sd["pre_logits.weight"], sd["pre_logits.bias"]
    out["head/kernel"], out["head/bias"] = sd["head.weight"], sd["head.bias"]
    return out


def save_official_npz(model: ViT, path):
    """Write a minivit ViT in the official checkpoint layout (loadable by :func:`load_official_npz`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **to_official_arrays(model))
    return path


def load_model(path, xp=np, dtype=None):
    """Load either kind of checkpoint. Returns (model, info).

    info: dict(source='official' | 'minivit', mean, std (the input normalization the weights
    expect), dataset (what a minivit checkpoint was trained on, else None), meta).
    """
    from minivit.storage.checkpoint import model_from_checkpoint

    arrays = read_npz(path)
    if "meta_json" in arrays:
        model, meta = model_from_checkpoint(path, xp=xp)
        if dtype is not None:
            model.to(dtype=dtype)
        from minivit.train.trainer import TrainConfig, augment_config

        train_cfg = TrainConfig.from_dict(meta.get("train_config", {}))
        aug = augment_config(train_cfg)
        return model, dict(source="minivit", mean=tuple(aug.mean), std=tuple(aug.std),
                           dataset=meta.get("dataset", train_cfg.dataset), meta=meta)
    if not is_official(arrays):
        raise CheckpointError(f"{path} is neither a minivit checkpoint (no meta_json) nor an official ViT "
                              f"checkpoint (no embedding/kernel); keys: {sorted(arrays)[:5]}...")
    check_parameter_dtypes(arrays, path)
    config = official_config(arrays, source=str(path))
    model = ViT(config, dtype=dtype or np.float32)
    model.load_state_dict(official_to_state_dict(arrays, config, source=str(path)))
    if xp is not np:
        model.to(xp)
    return model, dict(source="official", mean=OFFICIAL_MEAN, std=OFFICIAL_STD, dataset=None, meta={})
