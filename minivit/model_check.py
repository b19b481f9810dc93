"""The checks of a ViTConfig: every field of the right type and range, the shapes consistent.

``ViTConfig.__post_init__`` calls :func:`check_vit_config`, so an impossible configuration (a patch
size that does not divide the image, a width the heads cannot split, patch_size=True...) fails
where it is made, with one ValueError naming every problem, not later as a shape error deep in a
forward pass.
"""
from __future__ import annotations

import numpy as np

POOLS = ("cls", "gap")
POS_EMBEDS = ("learned", "sincos", "none", "learned2d")


def _real(v) -> bool:
    """A real number (not a bool, which Python counts as an int)."""
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


def check_vit_config(config) -> None:
    """Raise ValueError("invalid ViTConfig: ...") listing what is wrong with ``config``:
    first the fields' types and ranges, then (only if those are fine) how they fit together."""
    errors = []
    for name in ("image_size", "patch_size", "in_channels", "num_classes", "dim", "depth", "num_heads", "mlp_dim"):
        v = getattr(config, name)     # True is an int to Python, but patch_size=True is a mistake, not 1
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)) or v < 1:
            errors.append(f"{name} must be a positive integer, got {v!r}")
    for name in ("dropout", "drop_path", "token_drop"):
        if not (_real(getattr(config, name)) and 0 <= getattr(config, name) < 1):
            errors.append(f"{name} must be a probability in [0, 1), got {getattr(config, name)!r}")
    if not (_real(config.ln_eps) and 0 < config.ln_eps < float("inf")):
        errors.append(f"ln_eps must be a positive number, got {config.ln_eps!r}")
    if not isinstance(config.flexible_resolution, (bool, np.bool_)):
        errors.append(f"flexible_resolution must be True or False, got {config.flexible_resolution!r}")
    if isinstance(config.representation_size, (bool, np.bool_)):
        errors.append(f"representation_size must be None or a positive integer, got {config.representation_size!r}")
    if errors:
        raise ValueError("invalid ViTConfig: " + "; ".join(errors))
    if config.image_size % config.patch_size:
        errors.append(f"image size {config.image_size} is not divisible by the patch size {config.patch_size}")
    if config.dim % config.num_heads:
        errors.append(f"width dim={config.dim} is not divisible by the number of heads num_heads={config.num_heads}")
    if config.pool not in POOLS:
        errors.append(f"pool must be one of {POOLS}, got {config.pool!r}")
    if config.pos_embed not in POS_EMBEDS:
        errors.append(f"pos_embed must be one of {POS_EMBEDS}, got {config.pos_embed!r}")
    if config.pos_embed == "learned2d" and config.dim % 2:
        errors.append(f"pos_embed='learned2d' needs an even width (two halves), got dim={config.dim}")
    if config.representation_size is not None and int(config.representation_size) < 1:
        errors.append(f"representation_size must be None or positive, got {config.representation_size}")
    if config.gelu not in ("tanh", "none"):
        errors.append(f"gelu must be 'tanh' or 'none', got {config.gelu!r}")
    if errors:
        raise ValueError("invalid ViTConfig: " + "; ".join(errors))
