"""CIFAR-10 / CIFAR-100 loading, download and verification.

Main entry point: :func:`load_cifar`, which returns a :class:`CIFAR` holding

* ``x_train`` / ``x_test``: ``uint8`` images in NHWC layout, shape ``(N, 32, 32, 3)``;
* ``y_train`` / ``y_test``: ``int64`` labels, shape ``(N,)`` (CIFAR-100: the *fine* labels, 0-99);
* ``classes``: the class names, a ``list[str]``.

Where the data is looked for
----------------------------
The data directory is, in this order: the ``data_dir`` argument (``--data-dir`` on
the command line), the environment variable ``MINIVIT_DATA``, and finally
``~/.cache/minivit``. Inside it, for CIFAR-10, :func:`load_cifar` uses the first
of these that exists (CIFAR-100: ``cifar-100-binary/``, ``cifar-100-binary.tar.gz``,
``cifar-100-python/``, ``cifar-100-python.tar.gz``):

1. ``cifar-10-batches-bin/``   the extracted **binary** folder;
2. ``cifar-10-binary.tar.gz``  the binary archive: MD5-checked, then extracted (step 1);
3. ``cifar-10-batches-py/``    the extracted **python** folder: every file MD5-checked;
4. ``cifar-10-python.tar.gz``  the python archive: MD5-checked, then extracted (step 3);
5. nothing found: download the binary archive from the official URL (only when
   ``download=True``), check its MD5, then continue as in step 2.

If nothing is found and downloading is off (or fails), :class:`DataNotFoundError`
says which URL to fetch, its MD5, and the exact directory to put it in.

A ``.npz`` file in place of the directory (``--data-dir cifar10-12k.npz``) is a compact subset
written by ``python -m minivit pack`` (see ``minivit/data/pack.py``); it is read as it is.

What is verified
----------------
* Archives (``.tar.gz``) must match the official MD5 before they are extracted.
  A wrong MD5 (corrupt or truncated file) raises :class:`DataIntegrityError` and
  the archive is never opened.
* Extracted **python** folders: each file must match its official MD5 (the
  per-file checksums published with torchvision's ``datasets/cifar.py``).
* Extracted **binary** folders: the official per-file MD5s of the binary version
  are not known, so the *structural* check is the verification: every file is
  present, its size is a whole number of records, the record count is the
  expected one, and every label is in range (0-9 or 0-99).

Security rule about pickles
---------------------------
The python version of CIFAR is stored as Python pickles. Unpickling can run
arbitrary code, so a pickle is only ever loaded (a) after its MD5 matched the
official checksum and (b) with :class:`RestrictedUnpickler`, which refuses every
global except the four NumPy names the CIFAR pickles need to rebuild their
``uint8`` arrays. The binary version needs no pickle at all, which is why it is
preferred and is the one that gets downloaded.

Where the code lives
--------------------
This module is the entry point (the search order above and its error message); the rest sits
beside it, one concern per file: ``formats.py`` (the spec table and :class:`CIFAR`),
``download.py`` (verified download, MD5 checks, safe extraction), ``binary_format.py`` and
``python_format.py`` (reading each version; the restricted unpickler), ``errors.py`` and
``synthetic.py``. Their public names are importable from here as before.
"""
from __future__ import annotations

import os
from pathlib import Path

from minivit.data.binary_format import load_binary_folder, read_binary_file, read_class_names  # noqa: F401
from minivit.data.download import download_file, extract_archive, md5_of_file, verify_md5  # noqa: F401
from minivit.data.errors import DataIntegrityError, DataNotFoundError  # noqa: F401
from minivit.data.formats import (  # noqa: F401
    CIFAR,
    DATASET_NAMES,
    PIXELS_PER_IMAGE,
    SPECS,
    BinaryFormat,
    DatasetSpec,
    PythonFormat,
)
from minivit.data.python_format import (  # noqa: F401
    RestrictedUnpickler,
    load_python_folder,
    read_pickle,
    read_python_batch,
    verify_python_folder,
)
from minivit.data.synthetic import synthetic_cifar  # noqa: F401
from minivit.storage.tempfiles import remove_stale


# --------------------------------------------------------------------------
# Data directory
# --------------------------------------------------------------------------
def default_data_dir() -> Path:
    """``$MINIVIT_DATA`` when set (and not empty), else ``~/.cache/minivit``."""
    env = os.environ.get("MINIVIT_DATA")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "minivit"


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The explicit ``data_dir`` when given, else :func:`default_data_dir`."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    return default_data_dir()


# --------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------
def _not_found_error(spec: DatasetSpec, data_dir: Path, reason: str) -> DataNotFoundError:
    """The error, worded for Python (``data_dir=``) and for the command line (``--data-dir``)."""
    return DataNotFoundError(_not_found_message(spec, data_dir, reason, "data_dir=DIR"),
                             cli_message=_not_found_message(spec, data_dir, reason, "--data-dir DIR"))


def _not_found_message(spec: DatasetSpec, data_dir: Path, reason: str, option: str = "data_dir=DIR") -> str:
    b, p = spec.binary, spec.python
    size = f"{b.size} bytes, " if b.size else ""
    searched = ", ".join(
        str(data_dir / n) for n in (b.folder + "/", b.archive, p.folder + "/", p.archive)
    )
    message = (
        f"{spec.title} not found: {reason}.\n"
        f"Searched, in order: {searched}.\n"
        f"Download {b.url} ({size}md5 {b.md5}) and put it, as is, in {data_dir}/ "
        f"(the python archive {p.url}, md5 {p.md5}, works too).\n"
        f"To use another directory, set MINIVIT_DATA or pass {option}, "
        f"the directory that contains the archive or its extracted folder."
    )
    if data_dir.name in (b.folder, p.folder):
        message += f"\nHint: {data_dir} looks like the extracted folder itself; use its parent."
    return message


def load_cifar(
    name: str = "cifar10",
    data_dir: str | os.PathLike | None = None,
    download: bool = True,
) -> CIFAR:
    """Load CIFAR-10 (``"cifar10"``) or CIFAR-100 (``"cifar100"``, fine labels).

    Returns a :class:`CIFAR` with uint8 NHWC images (N, 32, 32, 3) and int64
    labels (N,): 50000 training and 10000 test images. The search order in the
    data directory, and what is verified, is described in the module docstring.

    Raises ValueError for an unknown ``name``, :class:`DataNotFoundError` when
    the data is absent and cannot be downloaded, and :class:`DataIntegrityError`
    when a file is corrupt or truncated.
    """
    if name not in DATASET_NAMES:
        raise ValueError(f"unknown dataset {name!r}; choose one of {DATASET_NAMES}")
    spec = SPECS[name]
    root = resolve_data_dir(data_dir)
    if root.suffix == ".npz":                        # a compact subset file (minivit/data/pack.py)
        from minivit.data.pack import read_pack

        if not root.is_file():
            raise FileNotFoundError(f"data pack {root} not found (write one with python -m minivit pack)")
        return CIFAR(**read_pack(root, name))
    b, p = spec.binary, spec.python
    remove_stale(root, ("*.part", ".extract-*"))     # left by a process killed mid-download/extraction

    if (root / b.folder).is_dir():
        return load_binary_folder(root / b.folder, spec)
    if (root / b.archive).is_file():
        verify_md5(root / b.archive, b.md5, b.size)
        return load_binary_folder(extract_archive(root / b.archive, b.folder), spec)
    if (root / p.folder).is_dir():
        return load_python_folder(root / p.folder, spec)
    if (root / p.archive).is_file():
        verify_md5(root / p.archive, p.md5, p.size)
        return load_python_folder(extract_archive(root / p.archive, p.folder), spec)

    if not download:
        raise _not_found_error(spec, root, "download=False")
    try:
        download_file(b.url, root / b.archive, b.md5)
    except DataNotFoundError as err:
        raise _not_found_error(spec, root, str(err)) from err
    return load_binary_folder(extract_archive(root / b.archive, b.folder), spec)
