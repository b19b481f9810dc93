"""Checkpoints: one ``.npz`` file with the model's parameters, the optimizer's state, the
configuration and the training position, written atomically and read with ``allow_pickle=False``.

Layout (all plain arrays, no pickles):
    param/<name>          model parameters (e.g. param/blocks.0.attn.qkv.weight)
    optim/<key>           optimizer state (optim/t, optim/lr, optim/<param name>/m ...)
    meta_json             a JSON string: model config, training config, epoch, step, metrics...

Randomness needs no saved state: every random draw derives from (seed, epoch, step)
(``backend.make_rng``), so the training position is enough to resume bit for bit.
"""
from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np


class CheckpointError(ValueError):
    """A checkpoint file is missing, truncated, corrupt or not a minivit checkpoint."""


def save_checkpoint(path, model, optimizer=None, meta: dict | None = None):
    """Write the checkpoint to a temporary file in the same folder, then rename it into place,
    so an interrupted write never leaves a half-written checkpoint behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {f"param/{k}": v for k, v in model.state_dict().items()}
    if optimizer is not None:
        arrays.update({f"optim/{k}": v for k, v in optimizer.state_dict().items()})
    meta = dict(meta or {})
    meta.setdefault("model_config", model.config.to_dict())
    meta["format"] = "minivit-checkpoint-1"
    arrays["meta_json"] = np.array(json.dumps(meta))
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


def load_checkpoint(path):
    """Read a checkpoint: returns (params: dict, optim_state: dict, meta: dict).

    Raises CheckpointError with a clear message for a missing, truncated or foreign file.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as z:
            files = list(z.files)
            if "meta_json" not in files:
                raise CheckpointError(f"{path} is an .npz file but not a minivit checkpoint (no meta_json entry)")
            meta = json.loads(str(z["meta_json"]))
            params = {k[len("param/"):]: z[k] for k in files if k.startswith("param/")}
            optim = {k[len("optim/"):]: z[k] for k in files if k.startswith("optim/")}
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError, json.JSONDecodeError) as e:
        raise CheckpointError(f"checkpoint {path} is corrupt or truncated ({type(e).__name__}: {e}); "
                              "use another checkpoint (e.g. best.npz / last.npz) or retrain") from e
    if meta.get("format") != "minivit-checkpoint-1":
        raise CheckpointError(f"{path}: unknown checkpoint format {meta.get('format')!r}")
    return params, optim, meta


def model_from_checkpoint(path, xp=np):
    """Build the ViT a checkpoint describes and load its weights. Returns (model, meta)."""
    from minivit.model import ViT, ViTConfig

    params, _, meta = load_checkpoint(path)
    try:
        config = ViTConfig.from_dict(meta["model_config"])
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: bad model configuration in checkpoint ({e})") from e
    dtype = next(iter(params.values())).dtype if params else np.float32
    model = ViT(config, xp=xp, dtype=dtype)
    try:
        model.load_state_dict(params)
    except (KeyError, ValueError) as e:
        raise CheckpointError(f"{path}: parameters do not fit the model ({e})") from e
    return model, meta
