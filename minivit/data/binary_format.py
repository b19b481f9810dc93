"""The binary version of CIFAR: fixed-size records, no pickle (the version that gets downloaded).

Each record is the label byte(s) then 3072 pixel bytes (R plane, G plane, B plane, each 32x32
row-major). The binary version has no published per-file MD5s, so the structural check is the
verification: every file present, a whole number of records, the expected count, labels in range.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from minivit.data.errors import DataIntegrityError
from minivit.data.formats import CIFAR, BinaryFormat, DatasetSpec


# --------------------------------------------------------------------------
# Binary version
# --------------------------------------------------------------------------
def read_binary_file(
    path: Path, fmt: BinaryFormat, num_records: int, num_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """Read one binary batch file.

    Returns images uint8 (num_records, 32, 32, 3) NHWC and labels int64 (num_records,).
    Checks that the file exists, holds exactly ``num_records`` whole records and
    that every label is below ``num_classes``; raises DataIntegrityError otherwise.
    """
    if not path.is_file():
        raise DataIntegrityError(f"{path} is missing (expected {num_records} records)")
    size = path.stat().st_size
    expected_size = num_records * fmt.record_size
    if size != expected_size:
        raise DataIntegrityError(
            f"{path} is truncated or corrupt: {size} bytes, expected {expected_size} "
            f"({num_records} records of {fmt.record_size} bytes)"
        )
    records = np.fromfile(path, dtype=np.uint8).reshape(num_records, fmt.record_size)
    labels = records[:, fmt.label_index].astype(np.int64)
    if labels.max(initial=0) >= num_classes:
        raise DataIntegrityError(
            f"{path} is corrupt: label {labels.max()} found, labels must be 0..{num_classes - 1}"
        )
    # Pixels: R plane, G plane, B plane, each 32x32 row-major  ->  (N, C, H, W)  ->  NHWC.
    planes = records[:, fmt.label_bytes :].reshape(num_records, 3, 32, 32)
    images = np.ascontiguousarray(planes.transpose(0, 2, 3, 1))
    return images, labels


def read_class_names(path: Path, num_classes: int) -> list[str]:
    """Class names from a text file, one per line; blank lines are ignored."""
    if not path.is_file():
        raise DataIntegrityError(f"{path} is missing (the class names file)")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise DataIntegrityError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start}); expected the class "
                                 "names, one per line") from e
    names = [line.strip() for line in text.splitlines()]
    names = [n for n in names if n]
    if len(names) != num_classes:
        raise DataIntegrityError(f"{path}: {len(names)} class names, expected {num_classes}")
    return names


def load_binary_folder(folder: Path, spec: DatasetSpec) -> CIFAR:
    """Load an extracted binary folder (structural checks: see the module docstring)."""
    fmt = spec.binary

    def read_split(files: tuple[str, ...], per_file: int) -> tuple[np.ndarray, np.ndarray]:
        parts = [read_binary_file(folder / f, fmt, per_file, spec.num_classes) for f in files]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    x_train, y_train = read_split(fmt.train_files, fmt.train_records_per_file)
    x_test, y_test = read_split(fmt.test_files, fmt.test_records_per_file)
    classes = read_class_names(folder / fmt.classes_file, spec.num_classes)
    return CIFAR(spec.name, x_train, y_train, x_test, y_test, classes)
