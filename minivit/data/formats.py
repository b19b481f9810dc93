"""What the official CIFAR files are (the spec table), and what loading them returns (:class:`CIFAR`).

Two versions of each dataset are published (https://www.cs.toronto.edu/~kriz/cifar.html): the
**binary** version (fixed-size records, read by ``binary_format.py``) and the **python** version
(pickled dicts, read by ``python_format.py``). :data:`SPECS` holds, for CIFAR-10 and CIFAR-100,
the URLs, official MD5s, file names, record counts and label layout of both.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

DATASET_NAMES = ("cifar10", "cifar100")  # the names load_cifar accepts
PIXELS_PER_IMAGE = 32 * 32 * 3  # 3072 bytes: R plane, G plane, B plane, each 32x32 row-major


# --------------------------------------------------------------------------
# The spec table: everything we expect of the official files.
# Tests replace entries (with dataclasses.replace) to describe tiny archives.
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class BinaryFormat:
    """The binary version: fixed-size records, no pickle.

    Each record is ``label_bytes`` label bytes then 3072 pixel bytes.
    ``label_index`` says which label byte is returned (CIFAR-100: byte 0 is the
    coarse label, byte 1 the fine label).
    """

    url: str
    archive: str  # archive file name, e.g. "cifar-10-binary.tar.gz"
    md5: str  # official MD5 of the archive
    size: int | None  # archive size in bytes, when known (used in messages)
    folder: str  # top-level folder inside the archive
    train_files: tuple[str, ...]
    test_files: tuple[str, ...]
    train_records_per_file: int
    test_records_per_file: int
    label_bytes: int
    label_index: int
    classes_file: str  # text file, one class name per line (blank lines ignored)

    @property
    def record_size(self) -> int:
        return self.label_bytes + PIXELS_PER_IMAGE


@dataclass(frozen=True)
class PythonFormat:
    """The python version: one pickled dict per batch, every file with an official MD5."""

    url: str
    archive: str
    md5: str
    size: int | None
    folder: str
    train_files: tuple[tuple[str, str], ...]  # (file name, official md5)
    test_files: tuple[tuple[str, str], ...]
    train_records_per_file: int
    test_records_per_file: int
    meta_file: tuple[str, str]  # (file name, official md5)
    labels_key: bytes  # key of the label list in each batch dict
    names_key: bytes  # key of the class-name list in the meta dict


@dataclass(frozen=True)
class DatasetSpec:
    name: str  # "cifar10" / "cifar100"
    title: str  # "CIFAR-10" / "CIFAR-100", for messages
    num_classes: int
    binary: BinaryFormat
    python: PythonFormat


SPECS: dict[str, DatasetSpec] = {
    "cifar10": DatasetSpec(
        name="cifar10",
        title="CIFAR-10",
        num_classes=10,
        binary=BinaryFormat(
            url="https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
            archive="cifar-10-binary.tar.gz",
            md5="c32a1d4ab5d03f1284b67883e8d87530",
            size=170052171,
            folder="cifar-10-batches-bin",
            train_files=tuple(f"data_batch_{i}.bin" for i in range(1, 6)),
            test_files=("test_batch.bin",),
            train_records_per_file=10000,
            test_records_per_file=10000,
            label_bytes=1,
            label_index=0,
            classes_file="batches.meta.txt",
        ),
        python=PythonFormat(
            url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
            archive="cifar-10-python.tar.gz",
            md5="c58f30108f718f92721af3b95e74349a",
            size=None,
            folder="cifar-10-batches-py",
            # Per-file MD5s as listed in torchvision/datasets/cifar.py.
            train_files=(
                ("data_batch_1", "c99cafc152244af753f735de768cd75f"),
                ("data_batch_2", "d4bba439e000b95fd0a9bffe97cbabec"),
                ("data_batch_3", "54ebc095f3ab1f0389bbae665268c751"),
                ("data_batch_4", "634d18415352ddfa80567beed471001a"),
                ("data_batch_5", "482c414d41f54cd18b22e5b47cb7c3cb"),
            ),
            test_files=(("test_batch", "40351d587109b95175f43aff81a1287e"),),
            train_records_per_file=10000,
            test_records_per_file=10000,
            meta_file=("batches.meta", "5ff9c542aee3614f3951f8cda6e48888"),
            labels_key=b"labels",
            names_key=b"label_names",
        ),
    ),
    "cifar100": DatasetSpec(
        name="cifar100",
        title="CIFAR-100",
        num_classes=100,
        binary=BinaryFormat(
            url="https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz",
            archive="cifar-100-binary.tar.gz",
            md5="03b5dce01913d631647c71ecec9e9cb8",
            size=None,
            folder="cifar-100-binary",
            train_files=("train.bin",),
            test_files=("test.bin",),
            train_records_per_file=50000,
            test_records_per_file=10000,
            label_bytes=2,  # coarse label, fine label
            label_index=1,  # we return the fine label
            classes_file="fine_label_names.txt",
        ),
        python=PythonFormat(
            url="https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
            archive="cifar-100-python.tar.gz",
            md5="eb9058c3a382ffc7106e4002c42a8d85",
            size=None,
            folder="cifar-100-python",
            train_files=(("train", "16019d7e3df5f24257cddd939b257f8d"),),
            test_files=(("test", "f0ef6b0ae62326f3e7ffdfab6717acfc"),),
            train_records_per_file=50000,
            test_records_per_file=10000,
            meta_file=("meta", "7973b15100ade9c7d40fb424638fde48"),
            labels_key=b"fine_labels",
            names_key=b"fine_label_names",
        ),
    ),
}


# --------------------------------------------------------------------------
# The result
# --------------------------------------------------------------------------
@dataclass
class CIFAR:
    """A loaded CIFAR dataset.

    x_train: uint8 (N_train, 32, 32, 3), NHWC, RGB.   y_train: int64 (N_train,)
    x_test:  uint8 (N_test, 32, 32, 3).               y_test:  int64 (N_test,)
    classes: class names; ``classes[y]`` is the name of label ``y``.
    """

    name: str
    x_train: np.ndarray = field(repr=False)
    y_train: np.ndarray = field(repr=False)
    x_test: np.ndarray = field(repr=False)
    y_test: np.ndarray = field(repr=False)
    classes: list[str] = field(repr=False)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def __repr__(self) -> str:
        return (
            f"CIFAR(name={self.name!r}, x_train={self.x_train.shape}, "
            f"x_test={self.x_test.shape}, classes={self.num_classes})"
        )
