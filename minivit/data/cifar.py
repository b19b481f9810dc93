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
"""
from __future__ import annotations

import hashlib
import http.client
import os
import pickle
import shutil
import tarfile
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
from tqdm import tqdm

from minivit.storage.tempfiles import remove_stale, temp_dir_in, temp_file_for

DATASET_NAMES = ("cifar10", "cifar100")  # the names load_cifar accepts
PIXELS_PER_IMAGE = 32 * 32 * 3  # 3072 bytes: R plane, G plane, B plane, each 32x32 row-major


# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------
class DataNotFoundError(FileNotFoundError):
    """The dataset is not in the data directory and could not be downloaded.

    ``cli_message``: the same text for command-line users (``--data-dir DIR``, not ``data_dir=``)."""

    def __init__(self, message, cli_message=None):
        super().__init__(message)
        self.cli_message = cli_message


class DataIntegrityError(ValueError):
    """A file is corrupt, truncated or not what it claims to be (MD5, size, records, labels)."""


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
# Checksums and download
# --------------------------------------------------------------------------
def md5_of_file(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """Hex MD5 of a file, read in chunks (MD5 is used as a checksum, not for security)."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def verify_md5(path: Path, expected_md5: str, expected_size: int | None = None) -> None:
    """Raise :class:`DataIntegrityError` unless the file's MD5 is ``expected_md5``."""
    actual = md5_of_file(path)
    if actual != expected_md5:
        size = path.stat().st_size
        size_note = f"{size} bytes"
        if expected_size is not None:
            size_note += f", expected {expected_size} bytes"
        raise DataIntegrityError(
            f"{path} is corrupt or truncated: its MD5 is {actual}, expected {expected_md5} "
            f"({size_note}). It was not used. Delete it and download it again."
        )


def download_file(url: str, dest: Path, expected_md5: str, progress: bool = True) -> None:
    """Download ``url`` to ``dest`` with a progress bar, atomically.

    The bytes go to a temporary file in ``dest``'s directory; only when the
    download is complete *and* its MD5 matches is it renamed to ``dest``
    (``os.replace``). On any failure the temporary file is removed, and so are the
    folders this call created for ``dest`` (a failed first download leaves no empty cache folder).
    The temporary name carries this process's id (a ``kill -9`` leftover is removed by the next
    :func:`load_cifar`, see ``minivit.storage.tempfiles``); the archive gets mode 0666 minus the umask.
    Raises :class:`DataNotFoundError` when the URL cannot be fetched and
    :class:`DataIntegrityError` when the MD5 does not match.
    """
    created = [d for d in (dest.parent, *dest.parent.parents) if not d.exists()]
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = temp_file_for(dest, ".part")
    ok = False
    try:
        digest = hashlib.md5(usedforsecurity=False)
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as response:
                total = response.headers.get("Content-Length")
                with tqdm(
                    total=int(total) if total else None,
                    unit="B",
                    unit_scale=True,
                    unit_divisor=1024,
                    desc=dest.name,
                    disable=not progress,
                ) as bar:
                    while chunk := response.read(1 << 20):
                        out.write(chunk)
                        digest.update(chunk)
                        bar.update(len(chunk))
        except (OSError, http.client.HTTPException) as err:
            # URLError, HTTPError, timeouts and connection resets are OSErrors;
            # a connection dropped mid-body raises http.client.IncompleteRead.
            raise DataNotFoundError(f"could not download {url}: {err}") from err
        actual = digest.hexdigest()
        if actual != expected_md5:
            raise DataIntegrityError(
                f"download of {url} is corrupt or incomplete: MD5 {actual}, expected "
                f"{expected_md5} ({tmp.stat().st_size} bytes received). Nothing was saved."
            )
        os.replace(tmp, dest)
        ok = True
    finally:
        if tmp.exists():
            tmp.unlink()
        for d in created if not ok else ():       # innermost first; only folders left empty
            try:
                d.rmdir()
            except OSError:
                break


# --------------------------------------------------------------------------
# Safe extraction
# --------------------------------------------------------------------------
def extract_archive(archive: Path, folder: str) -> Path:
    """Extract a *verified* ``.tar.gz`` into its directory and return ``archive.parent / folder``.

    Members with absolute paths or ``..`` and anything that is not a plain file
    or folder (links, devices) are rejected; ``filter='data'`` is used where
    Python supports it. Extraction goes to a temporary folder which is renamed
    into place at the end, so an interrupted run never leaves a half folder (and one killed
    outright leaves ``.extract-pid<id>-*``, removed by the next :func:`load_cifar`).
    """
    data_dir = archive.parent
    target = data_dir / folder
    tmp = temp_dir_in(data_dir, ".extract-")
    try:
        try:
            with tarfile.open(archive, "r:gz") as tar:
                members = tar.getmembers()
                for m in members:
                    parts = PurePosixPath(m.name).parts
                    if m.name.startswith(("/", "\\")) or ".." in parts:
                        raise DataIntegrityError(f"{archive}: unsafe path in archive: {m.name!r}")
                    if not (m.isfile() or m.isdir()):
                        raise DataIntegrityError(
                            f"{archive}: unexpected member {m.name!r} (not a plain file or folder)"
                        )
                if hasattr(tarfile, "data_filter"):
                    tar.extractall(tmp, members=members, filter="data")
                else:  # Python without the extraction filters: the checks above are our filter
                    tar.extractall(tmp, members=members)
        except (tarfile.TarError, EOFError, OSError) as err:
            raise DataIntegrityError(f"{archive} could not be extracted: {err}") from err
        if not (tmp / folder).is_dir():
            raise DataIntegrityError(f"{archive} does not contain the expected folder {folder}/")
        if not target.exists():  # another process may have extracted it meanwhile
            os.replace(tmp / folder, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


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


# --------------------------------------------------------------------------
# A synthetic stand-in (for quick runs without CIFAR-10)
# --------------------------------------------------------------------------
def synthetic_cifar(n_train: int = 4096, n_test: int = 1000, seed: int = 0) -> CIFAR:
    """A CIFAR-shaped synthetic dataset: ten classes of noisy coloured stripes, class k at an
    angle of 18k degrees. The notebooks' fast setting (``MINIVIT_FAST=1``, as in CI) falls back
    to it when CIFAR-10 is missing; a small ViT learns it in seconds.

    returns: CIFAR named "synthetic" with x_train uint8 (n_train, 32, 32, 3), y_train int64
    (n_train,), x_test uint8 (n_test, 32, 32, 3), y_test int64 (n_test,); the same seed gives
    the same images.
    """
    if n_train < 1 or n_test < 1:
        raise ValueError(f"n_train and n_test must be >= 1, got {n_train} and {n_test}")
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:32, 0:32] / 32.0

    def make(n):
        y = rng.integers(0, 10, n)
        theta, phase = np.pi * y / 10, rng.uniform(0, 2 * np.pi, n)
        wave = np.sin(6 * np.pi * (np.cos(theta)[:, None, None] * xx + np.sin(theta)[:, None, None] * yy)
                      + phase[:, None, None])
        img = 128 + 90 * wave[..., None] * rng.uniform(0.3, 1.0, (n, 1, 1, 3)) + rng.normal(0, 25, (n, 32, 32, 3))
        return np.clip(img, 0, 255).astype(np.uint8), y.astype(np.int64)

    (x_train, y_train), (x_test, y_test) = make(n_train), make(n_test)
    return CIFAR("synthetic", x_train, y_train, x_test, y_test, [f"stripes {18 * k} deg" for k in range(10)])

