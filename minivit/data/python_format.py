"""The python version of CIFAR: pickled dicts, every file MD5-checked, read by a restricted unpickler.

Security rule: unpickling can run arbitrary code, so a pickle is only ever loaded (a) after its
MD5 matched the official checksum (the per-file checksums published with torchvision's
``datasets/cifar.py``) and (b) with :class:`RestrictedUnpickler`, which refuses every global
except the four NumPy names the CIFAR pickles need to rebuild their ``uint8`` arrays.
"""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from minivit.data.download import verify_md5
from minivit.data.errors import DataIntegrityError
from minivit.data.formats import CIFAR, PIXELS_PER_IMAGE, DatasetSpec, PythonFormat


# --------------------------------------------------------------------------
# Python version (pickles)
# --------------------------------------------------------------------------
class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that can rebuild NumPy arrays and nothing else.

    A CIFAR python batch is a dict of bytes, ints, lists and one ``uint8``
    array. Dicts, lists, bytes and ints are built by pickle opcodes directly;
    only the array needs globals: ``_reconstruct`` (which creates an empty
    ``ndarray``), ``ndarray`` and ``dtype``. Every other global -- ``os.system``,
    ``builtins.eval``, ``subprocess.Popen`` ... -- is refused.
    """

    ALLOWED = frozenset(
        {
            ("numpy.core.multiarray", "_reconstruct"),  # name in the original files (NumPy 1.x)
            ("numpy._core.multiarray", "_reconstruct"),  # the same function's name in NumPy >= 2
            ("numpy", "ndarray"),
            ("numpy", "dtype"),
        }
    )

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(
                f"refusing to unpickle global {module}.{name}: CIFAR files only need NumPy arrays"
            )
        return super().find_class(module, name)


def verify_python_folder(folder: Path, fmt: PythonFormat) -> None:
    """Check every file of an extracted python folder against its official MD5.

    All files are checked before any of them is unpickled. Raises
    :class:`DataIntegrityError` for a missing file or an MD5 mismatch.
    """
    for name, expected_md5 in (*fmt.train_files, *fmt.test_files, fmt.meta_file):
        path = folder / name
        if not path.is_file():
            raise DataIntegrityError(f"{path} is missing")
        verify_md5(path, expected_md5)


def read_pickle(path: Path) -> dict:
    """Unpickle a dict with :class:`RestrictedUnpickler` (call only on MD5-verified files).

    ``encoding='bytes'`` keeps the Python-2 strings of the original files as
    ``bytes``, so dict keys are ``b'data'``, ``b'labels'`` ...
    """
    with open(path, "rb") as f:
        obj = RestrictedUnpickler(f, encoding="bytes").load()
    if not isinstance(obj, dict):
        raise DataIntegrityError(f"{path}: expected a dict, got {type(obj).__name__}")
    return obj


def read_python_batch(
    path: Path, fmt: PythonFormat, num_records: int, num_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """One (verified) python batch: images uint8 (N, 32, 32, 3) NHWC and labels int64 (N,)."""
    batch = read_pickle(path)
    if b"data" not in batch or fmt.labels_key not in batch:
        raise DataIntegrityError(f"{path}: missing key b'data' or {fmt.labels_key!r}")
    data = np.asarray(batch[b"data"])
    labels = np.asarray(batch[fmt.labels_key], dtype=np.int64)
    if data.dtype != np.uint8 or data.shape != (num_records, PIXELS_PER_IMAGE):
        raise DataIntegrityError(
            f"{path}: data is {data.dtype} {data.shape}, expected uint8 "
            f"({num_records}, {PIXELS_PER_IMAGE})"
        )
    if labels.shape != (num_records,):
        raise DataIntegrityError(f"{path}: {labels.shape[0]} labels, expected {num_records}")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise DataIntegrityError(
            f"{path}: labels span {labels.min()}..{labels.max()}, must be 0..{num_classes - 1}"
        )
    images = np.ascontiguousarray(data.reshape(num_records, 3, 32, 32).transpose(0, 2, 3, 1))
    return images, labels


def load_python_folder(folder: Path, spec: DatasetSpec) -> CIFAR:
    """Load an extracted python folder; every file must match its official MD5 first."""
    fmt = spec.python
    verify_python_folder(folder, fmt)  # before anything is unpickled

    def read_split(files, per_file: int) -> tuple[np.ndarray, np.ndarray]:
        parts = [
            read_python_batch(folder / name, fmt, per_file, spec.num_classes)
            for name, _md5 in files
        ]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    x_train, y_train = read_split(fmt.train_files, fmt.train_records_per_file)
    x_test, y_test = read_split(fmt.test_files, fmt.test_records_per_file)
    meta_name = fmt.meta_file[0]
    meta = read_pickle(folder / meta_name)
    raw_names = meta.get(fmt.names_key, [])
    names = [n.decode("utf-8") if isinstance(n, bytes) else str(n) for n in raw_names]
    if len(names) != spec.num_classes:
        raise DataIntegrityError(
            f"{folder / meta_name}: {len(names)} class names, expected {spec.num_classes}"
        )
    return CIFAR(spec.name, x_train, y_train, x_test, y_test, names)
