"""Checkpoints: one ``.npz`` file with the model's parameters, the optimizer's state, the
configuration and the training position, written atomically and read with ``allow_pickle=False``.

Layout (all plain arrays, no pickles):
    param/<name>          model parameters (e.g. param/blocks.0.attn.qkv.weight)
    optim/<key>           optimizer state (optim/t, optim/lr, optim/<param name>/m ...)
    <prefix>/<key>        other training state, optional (e.g. ema/<param name>: minivit/train/ema.py)
    meta_json             a JSON string: model config, training config, epoch, step, metrics...

Randomness needs no saved state: every random draw derives from (seed, epoch, step)
(``backend.make_rng``), so the training position is enough to resume bit for bit.
"""
from __future__ import annotations

import json
import math
import os
import zipfile
from pathlib import Path

import numpy as np

from minivit.backend import get_array_module
from minivit.storage.tempfiles import atomic_file


class CheckpointError(ValueError):
    """A checkpoint file is missing, truncated, corrupt or not a minivit checkpoint."""


def save_checkpoint(path, model, optimizer=None, meta: dict | None = None, extra: dict | None = None):
    """extra: optional {"<prefix>/<key>": array} of other training state (read back with
    :func:`extra_arrays`); the prefixes param/, optim/ and the name meta_json are taken.

    Write the checkpoint to a temporary file in the same folder, then rename it into place,
    so an interrupted write never leaves a half-written checkpoint behind. The file gets the
    usual mode of a new file (0666 minus the umask); the temporary one carries this process's id,
    so a ``kill -9`` leftover is recognized and removed later (``minivit.storage.tempfiles``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {f"param/{k}": v for k, v in model.state_dict().items()}
    if optimizer is not None:
        arrays.update({f"optim/{k}": v for k, v in optimizer.state_dict().items()})
    for k, v in (extra or {}).items():
        if "/" not in k or k.startswith(("param/", "optim/")):
            raise ValueError(f"extra checkpoint entry {k!r}: expected '<prefix>/<key>' with a prefix "
                             "other than param/ and optim/")
        arrays[k] = v
    meta = dict(meta or {})
    meta.setdefault("model_config", model.config.to_dict())
    meta["format"] = "minivit-checkpoint-1"
    arrays["meta_json"] = np.array(json.dumps(meta))
    try:
        with atomic_file(path, "wb", fsync=True) as f:
            np.savez(f, **arrays)
    except OSError as e:
        if e.filename is None and e.strerror:     # a full disk: say which file
            raise type(e)(e.errno, e.strerror, str(path)) from e
        raise
    return path


def nonfinite_arrays(arrays: dict) -> list[str]:
    """The names of the floating-point arrays in ``arrays`` holding a NaN or an infinity."""
    bad = []
    for name, v in arrays.items():
        if np.issubdtype(v.dtype, np.inexact) and not bool(get_array_module(v).isfinite(v).all()):
            bad.append(name)
    return bad


def read_meta(path) -> dict:
    """Only the ``meta_json`` entry of a checkpoint (reads none of its arrays); {} when unreadable."""
    try:
        with np.load(path, allow_pickle=False) as z:
            return json.loads(str(z["meta_json"]))
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError):
        return {}


def load_checkpoint(path):
    """Read a checkpoint: returns (params: dict, optim_state: dict, meta: dict).

    Raises CheckpointError with a clear message for a missing, truncated, corrupt or foreign file,
    a ``meta_json`` that is not a JSON object, and parameters that are not floating point.
    """
    path = Path(path)
    arrays = read_arrays(path, what="checkpoint")
    if "meta_json" not in arrays:
        raise CheckpointError(f"{path} is an .npz file but not a minivit checkpoint (no meta_json entry)")
    try:
        meta = json.loads(str(arrays["meta_json"]))
    except ValueError as e:
        raise CheckpointError(f"{path}: meta_json is not valid JSON ({e})") from e
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path}: meta_json holds a JSON {type(meta).__name__}; expected a JSON object")
    if meta.get("format") != "minivit-checkpoint-1":
        raise CheckpointError(f"{path}: unknown checkpoint format {meta.get('format')!r}")
    params = {k[len("param/"):]: a for k, a in arrays.items() if k.startswith("param/")}
    optim = {k[len("optim/"):]: a for k, a in arrays.items() if k.startswith("optim/")}
    check_parameter_dtypes(params, path)
    return params, optim, meta


def extra_arrays(path, prefix: str) -> dict:
    """The arrays a checkpoint holds under ``prefix`` (e.g. 'ema/'), the prefix removed; {} if none."""
    arrays = read_arrays(Path(path), what="checkpoint")
    return {k[len(prefix):]: a for k, a in arrays.items() if k.startswith(prefix)}


def check_parameter_dtypes(params: dict, path):
    """Model parameters must be real floating point (float16/32/64): an integer, complex or string
    array would otherwise fail deep inside the forward pass, or (strings) silently give chance."""
    for name, a in params.items():
        if a.dtype.kind != "f":
            raise CheckpointError(f"{path}: parameter {name} has dtype {a.dtype}; expected floating point "
                                  "(float16, float32 or float64)")


def missing_message(path, what="checkpoint") -> str:
    """"checkpoint PATH does not exist", with what to use instead when that is clear: best.npz is
    written when the first epoch ends, so a young (or interrupted) run has only last.npz."""
    path = Path(path)
    text = f"{what} {path} does not exist"
    if path.is_dir():
        return f"{what} {path} is a folder; expected a .npz file (e.g. {path / 'best.npz'})"
    last = path.with_name("last.npz")
    if path.name == "best.npz" and last.is_file():
        text += (f"; best.npz is written when an epoch ends, and this run has none yet, but {last} exists: "
                 f"use that one")
    return text


DEFLATE_MAX_RATIO = 1032    # deflate never expands more than ~1032:1, so a larger claimed size is a lie


def read_arrays(path, what="file") -> dict:
    """All arrays of an ``.npz`` file as a dict, checked before anything is allocated.

    Refuses (CheckpointError): a missing file, a file that is not a zip archive, a member whose
    ``.npy`` header declares more data than the member holds (an array of terabytes in a small
    file), object arrays (pickles), and truncated or corrupt data.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(missing_message(path, what))
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic not in (b"PK\x03\x04", b"PK\x05\x06"):     # a zip archive's first bytes (an empty one's)
        raise CheckpointError(f"{path} is not an .npz archive (a zip file of .npy arrays); "
                              f"is it a minivit or official ViT checkpoint?")
    try:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                _check_member(zf, info, path, os.path.getsize(path))
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError, NotImplementedError) as e:
        raise CheckpointError(f"{what} {path} is corrupt or truncated ({type(e).__name__}: {e}); "
                              "use another checkpoint (e.g. best.npz / last.npz) or retrain") from e


def _check_member(zf, info, path, archive_size):
    """The sizes an .npz member declares must be possible before numpy allocates them."""
    name = info.filename
    if info.compress_size > archive_size or info.file_size > DEFLATE_MAX_RATIO * info.compress_size + 1024:
        raise CheckpointError(f"{path}: member {name} claims {info.file_size} bytes, more than the "
                              f"archive can hold; the file is corrupt or hostile")
    if not name.endswith(".npy"):
        return
    with zf.open(info) as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise CheckpointError(f"{path}: member {name} has .npy format version {version}; expected 1.0 or 2.0")
        header = f.tell()
    if dtype.hasobject:
        raise CheckpointError(f"{path}: member {name} holds Python objects (a pickle); "
                              "minivit checkpoints hold only plain numeric arrays and never load pickles")
    declared = math.prod(shape) * dtype.itemsize
    if declared > info.file_size - header:
        raise CheckpointError(f"{path}: member {name} declares an array of shape {tuple(shape)} ({declared:,} bytes) "
                              f"but holds only {info.file_size - header:,} bytes; the file is corrupt or hostile")


def model_from_checkpoint(path, xp=np):
    """Build the ViT a checkpoint describes and load its weights. Returns (model, meta).

    A checkpoint of a run with an EMA of the weights (``ema/...``, minivit/train/ema.py) gives the EMA
    weights: those that run evaluated (and chose best.npz on)."""
    from minivit.model import ViT, ViTConfig

    params, _, meta = load_checkpoint(path)
    ema = extra_arrays(path, "ema/")
    if ema:
        params = {k: ema.get(k, v) for k, v in params.items()}
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
