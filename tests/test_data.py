"""Tests for minivit.data.cifar.

Every test builds its own tiny dataset (a few records per batch file) under
``tmp_path`` and shrinks the spec table (record counts, MD5s, URL) with
``monkeypatch``; none needs the network or the real CIFAR files. The one
exception, ``test_standin``, loads the stand-in at ``$MINIVIT_DATA`` and is
skipped when that directory does not hold it.
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest

from minivit.data import cifar as data
from minivit.data import python_format
from minivit.data.cifar import (
    CIFAR,
    DataIntegrityError,
    DataNotFoundError,
    RestrictedUnpickler,
    default_data_dir,
    load_cifar,
)

N_TRAIN = 5  # records per training file in the tiny datasets
N_TEST = 4  # records per test file

CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer",
                 "dog", "frog", "horse", "ship", "truck"]
CIFAR100_NAMES = [f"class_{i:02d}" for i in range(100)]


# --------------------------------------------------------------------------
# Helpers: tiny spec, tiny files, archives
# --------------------------------------------------------------------------
def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def use_tiny_spec(monkeypatch, name: str, binary: dict | None = None, python: dict | None = None):
    """Replace SPECS[name] with N_TRAIN / N_TEST records per file (plus any overrides)."""
    spec = data.SPECS[name]
    b = dataclasses.replace(spec.binary, train_records_per_file=N_TRAIN,
                            test_records_per_file=N_TEST, **(binary or {}))
    p = dataclasses.replace(spec.python, train_records_per_file=N_TRAIN,
                            test_records_per_file=N_TEST, **(python or {}))
    monkeypatch.setitem(data.SPECS, name, dataclasses.replace(spec, binary=b, python=p))


def class_names(name: str) -> list[str]:
    return CIFAR10_NAMES if name == "cifar10" else CIFAR100_NAMES


def random_split(rng, n: int, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    x = rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)
    y = rng.integers(0, num_classes, size=n).astype(np.int64)
    return x, y


def binary_bytes(x: np.ndarray, label_columns: list[np.ndarray]) -> bytes:
    """Records: label byte(s), then R plane, G plane, B plane (32x32 row-major each)."""
    planes = x.transpose(0, 3, 1, 2).reshape(len(x), 3072)
    labels = np.stack(label_columns, axis=1).astype(np.uint8)
    return np.concatenate([labels, planes], axis=1).tobytes()


def write_binary_folder(root: Path, name: str, seed: int = 0) -> CIFAR:
    """Write the binary folder of a tiny ``name`` under ``root``; return what it holds."""
    spec = data.SPECS[name]
    fmt = spec.binary
    rng = np.random.default_rng(seed)
    folder = root / fmt.folder
    folder.mkdir(parents=True)
    xs = {"train": [], "test": []}
    ys = {"train": [], "test": []}
    for split, files, n in (("train", fmt.train_files, N_TRAIN), ("test", fmt.test_files, N_TEST)):
        for f in files:
            x, y = random_split(rng, n, spec.num_classes)
            if name == "cifar10":
                columns = [y]
            else:  # coarse label first, then the fine label
                columns = [rng.integers(0, 20, size=n), y]
            (folder / f).write_bytes(binary_bytes(x, columns))
            xs[split].append(x)
            ys[split].append(y)
    # The official meta file has trailing blank lines: they must be ignored.
    (folder / fmt.classes_file).write_text("\n".join(class_names(name)) + "\n\n\n")
    return CIFAR(name, np.concatenate(xs["train"]), np.concatenate(ys["train"]),
                 np.concatenate(xs["test"]), np.concatenate(ys["test"]), class_names(name))


def write_python_folder(root: Path, name: str, seed: int = 0) -> tuple[CIFAR, dict[str, str]]:
    """Write real CIFAR-layout pickles; return what they hold and {file name: md5}.

    Protocol 4 is used because under Python 3 protocol 2 pickles ``bytes``
    through ``_codecs.encode``; the original (Python 2) files store them as
    plain strings and need no such global.
    """
    spec = data.SPECS[name]
    fmt = spec.python
    rng = np.random.default_rng(seed)
    folder = root / fmt.folder
    folder.mkdir(parents=True)
    md5s = {}
    xs = {"train": [], "test": []}
    ys = {"train": [], "test": []}
    for split, files, n in (("train", fmt.train_files, N_TRAIN), ("test", fmt.test_files, N_TEST)):
        for f, _ in files:
            x, y = random_split(rng, n, spec.num_classes)
            batch = {
                b"batch_label": f"{f}".encode(),
                fmt.labels_key: [int(v) for v in y],
                b"data": x.transpose(0, 3, 1, 2).reshape(n, 3072),  # (N, 3072) uint8
                b"filenames": [f"img_{i}.png".encode() for i in range(n)],
            }
            if name == "cifar100":
                batch[b"coarse_labels"] = [int(v) for v in rng.integers(0, 20, size=n)]
            (folder / f).write_bytes(pickle.dumps(batch, protocol=4))
            md5s[f] = md5(folder / f)
            xs[split].append(x)
            ys[split].append(y)
    meta = {fmt.names_key: [c.encode() for c in class_names(name)], b"num_vis": 3072}
    meta_name = fmt.meta_file[0]
    (folder / meta_name).write_bytes(pickle.dumps(meta, protocol=4))
    md5s[meta_name] = md5(folder / meta_name)
    ds = CIFAR(name, np.concatenate(xs["train"]), np.concatenate(ys["train"]),
               np.concatenate(xs["test"]), np.concatenate(ys["test"]), class_names(name))
    return ds, md5s


def python_md5_overrides(name: str, md5s: dict[str, str]) -> dict:
    """PythonFormat fields that make the spec accept the tiny pickles' MD5s."""
    fmt = data.SPECS[name].python
    return {
        "train_files": tuple((f, md5s[f]) for f, _ in fmt.train_files),
        "test_files": tuple((f, md5s[f]) for f, _ in fmt.test_files),
        "meta_file": (fmt.meta_file[0], md5s[fmt.meta_file[0]]),
    }


def make_tar_gz(archive: Path, src_root: Path, folder: str) -> str:
    """Pack ``src_root/folder`` into ``archive`` (members ``folder/...``); return its md5."""
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(src_root / folder, arcname=folder)
    return md5(archive)


def assert_same(ds: CIFAR, expected: CIFAR) -> None:
    assert ds.name == expected.name
    for key in ("x_train", "x_test"):
        a = getattr(ds, key)
        assert a.dtype == np.uint8 and a.ndim == 4 and a.shape[1:] == (32, 32, 3)
        np.testing.assert_array_equal(a, getattr(expected, key))
    for key in ("y_train", "y_test"):
        a = getattr(ds, key)
        assert a.dtype == np.int64 and a.ndim == 1
        np.testing.assert_array_equal(a, getattr(expected, key))
    assert ds.classes == expected.classes
    assert all(isinstance(c, str) for c in ds.classes)


def leftovers(directory: Path) -> list[str]:
    """Temporary files/folders that must never survive (download .part, .extract-)."""
    return [p.name for p in directory.iterdir() if p.name.endswith(".part") or
            p.name.startswith(".extract-")]


# --------------------------------------------------------------------------
# Loading each format
# --------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_binary_archive(tmp_path, monkeypatch, name):
    use_tiny_spec(monkeypatch, name)
    fmt = data.SPECS[name].binary
    expected = write_binary_folder(tmp_path / "src", name)
    data_dir = tmp_path / "data"
    archive_md5 = make_tar_gz(data_dir / fmt.archive, tmp_path / "src", fmt.folder)
    use_tiny_spec(monkeypatch, name, binary={"md5": archive_md5})

    ds = load_cifar(name, data_dir=data_dir, download=False)

    assert_same(ds, expected)
    assert (data_dir / fmt.folder).is_dir()  # extracted next to the archive
    assert leftovers(data_dir) == []
    assert_same(load_cifar(name, data_dir=data_dir, download=False), expected)  # second run


def test_cifar100_binary_returns_fine_labels(tmp_path, monkeypatch):
    use_tiny_spec(monkeypatch, "cifar100")
    expected = write_binary_folder(tmp_path, "cifar100")
    ds = load_cifar("cifar100", data_dir=tmp_path, download=False)
    assert_same(ds, expected)  # expected holds the fine labels (second label byte)
    assert len(ds.classes) == 100 and ds.num_classes == 100


def test_extracted_binary_folder(tmp_path, monkeypatch):
    use_tiny_spec(monkeypatch, "cifar10")
    expected = write_binary_folder(tmp_path, "cifar10")
    ds = load_cifar("cifar10", data_dir=str(tmp_path), download=False)
    assert_same(ds, expected)
    assert ds.x_train.shape == (5 * N_TRAIN, 32, 32, 3)
    assert ds.x_test.shape == (N_TEST, 32, 32, 3)
    assert ds.x_train.flags.c_contiguous


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_python_archive(tmp_path, monkeypatch, name):
    use_tiny_spec(monkeypatch, name)
    fmt = data.SPECS[name].python
    expected, md5s = write_python_folder(tmp_path / "src", name)
    data_dir = tmp_path / "data"
    archive_md5 = make_tar_gz(data_dir / fmt.archive, tmp_path / "src", fmt.folder)
    overrides = {"md5": archive_md5, **python_md5_overrides(name, md5s)}
    use_tiny_spec(monkeypatch, name, python=overrides)

    ds = load_cifar(name, data_dir=data_dir, download=False)

    assert_same(ds, expected)
    assert (data_dir / fmt.folder).is_dir()
    assert leftovers(data_dir) == []


def test_extracted_python_folder_checks_every_md5(tmp_path, monkeypatch):
    use_tiny_spec(monkeypatch, "cifar10")
    expected, md5s = write_python_folder(tmp_path, "cifar10")
    use_tiny_spec(monkeypatch, "cifar10", python=python_md5_overrides("cifar10", md5s))
    assert_same(load_cifar("cifar10", data_dir=tmp_path, download=False), expected)

    # Change one byte of one batch: it must be refused *before* any unpickling.
    path = tmp_path / "cifar-10-batches-py" / "data_batch_4"
    raw = bytearray(path.read_bytes())
    raw[-10] ^= 0xFF
    path.write_bytes(bytes(raw))

    class MustNotUnpickle(RestrictedUnpickler):
        def load(self):
            raise AssertionError("an unverified file was unpickled")

    monkeypatch.setattr(python_format, "RestrictedUnpickler", MustNotUnpickle)   # where read_pickle finds it
    with pytest.raises(DataIntegrityError, match="data_batch_4") as info:
        load_cifar("cifar10", data_dir=tmp_path, download=False)
    assert md5s["data_batch_4"] in str(info.value)  # the expected md5 is named


def test_official_python_md5s_are_used_by_default():
    """The real table holds torchvision's per-file MD5s (a mismatch can't be unpickled)."""
    py10 = data.SPECS["cifar10"].python
    assert dict(py10.train_files)["data_batch_1"] == "c99cafc152244af753f735de768cd75f"
    assert py10.test_files == (("test_batch", "40351d587109b95175f43aff81a1287e"),)
    assert py10.meta_file == ("batches.meta", "5ff9c542aee3614f3951f8cda6e48888")
    assert data.SPECS["cifar10"].binary.md5 == "c32a1d4ab5d03f1284b67883e8d87530"
    assert data.SPECS["cifar100"].binary.md5 == "03b5dce01913d631647c71ecec9e9cb8"


def test_pixel_layout(tmp_path, monkeypatch):
    """Byte 1 + c*1024 + h*32 + w of a record is pixel (h, w) of channel c (R, G, B)."""
    use_tiny_spec(monkeypatch, "cifar10")
    fmt = data.SPECS["cifar10"].binary
    folder = tmp_path / fmt.folder
    folder.mkdir()
    records = np.zeros((N_TRAIN, 3073), dtype=np.uint8)
    records[:, 0] = [3, 1, 4, 1, 5]
    # Record 0: R(2, 7) = 11, G(2, 7) = 22, B(30, 1) = 33.
    records[0, 1 + 0 * 1024 + 2 * 32 + 7] = 11
    records[0, 1 + 1 * 1024 + 2 * 32 + 7] = 22
    records[0, 1 + 2 * 1024 + 30 * 32 + 1] = 33
    for f in fmt.train_files:
        records.tofile(folder / f)
    np.zeros((N_TEST, 3073), dtype=np.uint8).tofile(folder / fmt.test_files[0])
    (folder / fmt.classes_file).write_text("\n".join(CIFAR10_NAMES))

    ds = load_cifar("cifar10", data_dir=tmp_path, download=False)

    img = ds.x_train[0]
    assert img[2, 7, 0] == 11 and img[2, 7, 1] == 22 and img[30, 1, 2] == 33
    assert int(img.sum()) == 11 + 22 + 33  # nothing else is set
    assert ds.y_train[:N_TRAIN].tolist() == [3, 1, 4, 1, 5]


# --------------------------------------------------------------------------
# Corrupt, truncated, out of range
# --------------------------------------------------------------------------
def test_archive_with_wrong_md5_is_refused_and_not_extracted(tmp_path, monkeypatch):
    use_tiny_spec(monkeypatch, "cifar10")
    fmt = data.SPECS["cifar10"].binary
    write_binary_folder(tmp_path / "src", "cifar10")
    data_dir = tmp_path / "data"
    actual = make_tar_gz(data_dir / fmt.archive, tmp_path / "src", fmt.folder)
    wrong = "0" * 32
    use_tiny_spec(monkeypatch, "cifar10", binary={"md5": wrong})

    def never_open(*args, **kwargs):
        raise AssertionError("an unverified archive was opened")

    monkeypatch.setattr(tarfile, "open", never_open)
    with pytest.raises(DataIntegrityError) as info:
        load_cifar("cifar10", data_dir=data_dir, download=True)  # no download either
    message = str(info.value)
    assert fmt.archive in message and wrong in message and actual in message
    assert not (data_dir / fmt.folder).exists()
    assert sorted(p.name for p in data_dir.iterdir()) == [fmt.archive]


def test_python_archive_with_wrong_md5_is_never_unpickled(tmp_path, monkeypatch):
    use_tiny_spec(monkeypatch, "cifar10")
    fmt = data.SPECS["cifar10"].python
    _, md5s = write_python_folder(tmp_path / "src", "cifar10")
    data_dir = tmp_path / "data"
    make_tar_gz(data_dir / fmt.archive, tmp_path / "src", fmt.folder)
    use_tiny_spec(monkeypatch, "cifar10",
                  python={"md5": "f" * 32, **python_md5_overrides("cifar10", md5s)})
    with pytest.raises(DataIntegrityError, match="f" * 32):
        load_cifar("cifar10", data_dir=data_dir, download=False)
    assert not (data_dir / fmt.folder).exists()


def test_truncated_archive(tmp_path, monkeypatch):
    use_tiny_spec(monkeypatch, "cifar10")
    fmt = data.SPECS["cifar10"].binary
    write_binary_folder(tmp_path / "src", "cifar10")
    archive = tmp_path / "data" / fmt.archive
    full_md5 = make_tar_gz(archive, tmp_path / "src", fmt.folder)
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])  # cut in half
    use_tiny_spec(monkeypatch, "cifar10", binary={"md5": full_md5})
    with pytest.raises(DataIntegrityError, match="truncated"):
        load_cifar("cifar10", data_dir=tmp_path / "data", download=False)
    assert not (tmp_path / "data" / fmt.folder).exists()


def test_truncated_extracted_file(tmp_path, monkeypatch):
    use_tiny_spec(monkeypatch, "cifar10")
    write_binary_folder(tmp_path, "cifar10")
    path = tmp_path / "cifar-10-batches-bin" / "data_batch_3.bin"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataIntegrityError) as info:
        load_cifar("cifar10", data_dir=tmp_path, download=False)
    message = str(info.value)
    assert "data_batch_3.bin" in message
    assert str(N_TRAIN * 3073) in message and str(N_TRAIN * 3073 - 100) in message


def test_extra_records_are_refused(tmp_path, monkeypatch):
    """A whole number of records, but not the expected count, is refused too."""
    use_tiny_spec(monkeypatch, "cifar10")
    write_binary_folder(tmp_path, "cifar10")
    path = tmp_path / "cifar-10-batches-bin" / "test_batch.bin"
    path.write_bytes(path.read_bytes() + bytes(3073))
    with pytest.raises(DataIntegrityError, match="test_batch.bin"):
        load_cifar("cifar10", data_dir=tmp_path, download=False)


def test_missing_extracted_file(tmp_path, monkeypatch):
    use_tiny_spec(monkeypatch, "cifar10")
    write_binary_folder(tmp_path, "cifar10")
    (tmp_path / "cifar-10-batches-bin" / "data_batch_5.bin").unlink()
    with pytest.raises(DataIntegrityError, match="data_batch_5.bin is missing"):
        load_cifar("cifar10", data_dir=tmp_path, download=False)


@pytest.mark.parametrize("name, label_byte, bad", [("cifar10", 0, 10), ("cifar100", 1, 100)])
def test_label_out_of_range(tmp_path, monkeypatch, name, label_byte, bad):
    use_tiny_spec(monkeypatch, name)
    fmt = data.SPECS[name].binary
    write_binary_folder(tmp_path, name)
    path = tmp_path / fmt.folder / fmt.test_files[0]
    raw = bytearray(path.read_bytes())
    raw[fmt.record_size * 2 + label_byte] = bad  # label of the third test record
    path.write_bytes(bytes(raw))
    with pytest.raises(DataIntegrityError, match=f"label {bad}"):
        load_cifar(name, data_dir=tmp_path, download=False)


def test_wrong_number_of_class_names(tmp_path, monkeypatch):
    use_tiny_spec(monkeypatch, "cifar10")
    write_binary_folder(tmp_path, "cifar10")
    (tmp_path / "cifar-10-batches-bin" / "batches.meta.txt").write_text("cat\ndog\n")
    with pytest.raises(DataIntegrityError, match="2 class names, expected 10"):
        load_cifar("cifar10", data_dir=tmp_path, download=False)


# --------------------------------------------------------------------------
# Missing data, download
# --------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_missing_data_message(tmp_path, name):
    spec = data.SPECS[name]
    with pytest.raises(DataNotFoundError) as info:
        load_cifar(name, data_dir=tmp_path, download=False)
    assert isinstance(info.value, FileNotFoundError)
    message = str(info.value)
    assert spec.binary.url in message and spec.binary.md5 in message
    assert str(tmp_path) in message
    assert "MINIVIT_DATA" in message and "data_dir=DIR" in message       # the Python form in Python,
    assert "--data-dir DIR" in info.value.cli_message and "data_dir=" not in info.value.cli_message  # the option on the CLI
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_hint_when_pointing_at_the_extracted_folder(tmp_path):
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    with pytest.raises(DataNotFoundError, match="use its parent"):
        load_cifar("cifar10", data_dir=folder, download=False)


def test_download_failure_is_a_clear_error(tmp_path, monkeypatch):
    missing = (tmp_path / "no-such-server" / "cifar-10-binary.tar.gz").as_uri()
    use_tiny_spec(monkeypatch, "cifar10", binary={"url": missing})
    data_dir = tmp_path / "cache"
    with pytest.raises(DataNotFoundError) as info:
        load_cifar("cifar10", data_dir=data_dir, download=True)
    message = str(info.value)
    assert "could not download" in message and missing in message
    assert "No such file" in message  # the underlying error is included
    assert data.SPECS["cifar10"].binary.md5 in message and str(data_dir) in message
    assert not data_dir.exists()  # no partial file left behind, nor the empty folder made for it


def test_download_via_file_url_is_atomic_and_verified(tmp_path, monkeypatch):
    use_tiny_spec(monkeypatch, "cifar10")
    fmt = data.SPECS["cifar10"].binary
    expected = write_binary_folder(tmp_path / "src", "cifar10")
    server_copy = tmp_path / "server" / fmt.archive
    archive_md5 = make_tar_gz(server_copy, tmp_path / "src", fmt.folder)
    use_tiny_spec(monkeypatch, "cifar10", binary={"md5": archive_md5, "url": server_copy.as_uri()})

    renames = []
    real_replace = os.replace

    def recording_replace(src, dst):
        renames.append((Path(src), Path(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", recording_replace)
    data_dir = tmp_path / "cache" / "minivit"  # does not exist yet
    ds = load_cifar("cifar10", data_dir=data_dir, download=True)

    assert_same(ds, expected)
    dest = data_dir / fmt.archive
    assert md5(dest) == archive_md5
    # The archive appeared by renaming a temporary file from the same directory.
    src, dst = renames[0]
    assert dst == dest and src.parent == data_dir and src.name.endswith(".part")
    assert leftovers(data_dir) == []


def test_download_with_wrong_md5_leaves_nothing(tmp_path, monkeypatch):
    use_tiny_spec(monkeypatch, "cifar10")
    fmt = data.SPECS["cifar10"].binary
    write_binary_folder(tmp_path / "src", "cifar10")
    server_copy = tmp_path / "server" / fmt.archive
    make_tar_gz(server_copy, tmp_path / "src", fmt.folder)
    use_tiny_spec(monkeypatch, "cifar10", binary={"md5": "1" * 32, "url": server_copy.as_uri()})
    data_dir = tmp_path / "cache"
    with pytest.raises(DataIntegrityError, match="1" * 32):
        load_cifar("cifar10", data_dir=data_dir, download=True)
    assert not data_dir.exists()


# --------------------------------------------------------------------------
# Data directory
# --------------------------------------------------------------------------
def test_minivit_data_env_override(tmp_path, monkeypatch):
    use_tiny_spec(monkeypatch, "cifar10")
    expected = write_binary_folder(tmp_path / "env", "cifar10")
    monkeypatch.setenv("MINIVIT_DATA", str(tmp_path / "env"))
    assert default_data_dir() == tmp_path / "env"
    assert_same(load_cifar(download=False), expected)
    # An explicit data_dir wins over the environment.
    with pytest.raises(DataNotFoundError, match=str(tmp_path / "explicit")):
        load_cifar("cifar10", data_dir=tmp_path / "explicit", download=False)


def test_default_data_dir_without_env(tmp_path, monkeypatch):
    monkeypatch.delenv("MINIVIT_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_data_dir() == tmp_path / ".cache" / "minivit"


def test_unknown_name():
    with pytest.raises(ValueError, match="cifar10"):
        load_cifar("mnist", download=False)


# --------------------------------------------------------------------------
# Security: restricted unpickler, unsafe archives
# --------------------------------------------------------------------------
class Evil:
    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def test_restricted_unpickler_refuses_os_system(tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps({b"data": Evil(f"touch {marker}")}, protocol=4)
    with pytest.raises(pickle.UnpicklingError, match="system"):
        RestrictedUnpickler(io.BytesIO(payload), encoding="bytes").load()
    assert not marker.exists()
    eval_payload = pickle.dumps(type("E", (), {"__reduce__": lambda s: (eval, ("1+1",))})())
    with pytest.raises(pickle.UnpicklingError, match="eval"):
        RestrictedUnpickler(io.BytesIO(eval_payload), encoding="bytes").load()


def test_restricted_unpickler_allows_exactly_the_numpy_names():
    u = RestrictedUnpickler(io.BytesIO(b""), encoding="bytes")
    # The name used inside the original (NumPy 1.x era) CIFAR pickles still resolves.
    assert u.find_class("numpy.core.multiarray", "_reconstruct") is \
        u.find_class("numpy._core.multiarray", "_reconstruct")
    assert u.find_class("numpy", "ndarray") is np.ndarray
    assert u.find_class("numpy", "dtype") is np.dtype
    for module, name in [("numpy", "load"), ("builtins", "getattr"), ("__builtin__", "eval"),
                         ("numpy.testing", "_private"), ("subprocess", "Popen")]:
        with pytest.raises(pickle.UnpicklingError):
            u.find_class(module, name)


def test_malicious_pickle_with_matching_md5_is_still_refused(tmp_path, monkeypatch):
    """Even a file whose MD5 'matches' only gets the restricted unpickler."""
    use_tiny_spec(monkeypatch, "cifar10")
    _, md5s = write_python_folder(tmp_path, "cifar10")
    marker = tmp_path / "pwned"
    evil = tmp_path / "cifar-10-batches-py" / "data_batch_1"
    evil.write_bytes(pickle.dumps({b"data": Evil(f"touch {marker}")}, protocol=4))
    md5s["data_batch_1"] = md5(evil)
    use_tiny_spec(monkeypatch, "cifar10", python=python_md5_overrides("cifar10", md5s))
    with pytest.raises(pickle.UnpicklingError):
        load_cifar("cifar10", data_dir=tmp_path, download=False)
    assert not marker.exists()


@pytest.mark.parametrize("member_name", ["../escaped.bin", "/tmp/minivit-absolute.bin"])
def test_unsafe_archive_member_is_rejected(tmp_path, monkeypatch, member_name):
    fmt = data.SPECS["cifar10"].binary
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    archive = data_dir / fmt.archive
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo(member_name)
        info.size = 3
        tar.addfile(info, io.BytesIO(b"bad"))
    use_tiny_spec(monkeypatch, "cifar10", binary={"md5": md5(archive)})
    with pytest.raises(DataIntegrityError, match="unsafe path"):
        load_cifar("cifar10", data_dir=data_dir, download=False)
    assert not (tmp_path / "escaped.bin").exists()
    assert sorted(p.name for p in data_dir.iterdir()) == [fmt.archive]


# --------------------------------------------------------------------------
# The CIFAR-10 stand-in (see shared/data/README.md); skipped when absent
# --------------------------------------------------------------------------
def test_standin():
    root = os.environ.get("MINIVIT_DATA")
    if not root or not (Path(root) / "cifar-10-batches-bin").is_dir():
        pytest.skip("MINIVIT_DATA does not point at the CIFAR-10 stand-in")
    ds = load_cifar("cifar10", data_dir=root, download=False)
    assert ds.x_train.shape == (50000, 32, 32, 3) and ds.x_train.dtype == np.uint8
    assert ds.x_test.shape == (10000, 32, 32, 3) and ds.x_test.dtype == np.uint8
    assert ds.y_train.shape == (50000,) and ds.y_train.dtype == np.int64
    assert ds.y_test.shape == (10000,) and ds.y_test.dtype == np.int64
    assert np.bincount(ds.y_train, minlength=10).tolist() == [5000] * 10
    assert np.bincount(ds.y_test, minlength=10).tolist() == [1000] * 10
    assert ds.classes == CIFAR10_NAMES
    # Layout check against real pixels: the first 1017 official test images, when shipped
    # next to the stand-in, differ from it by JPEG noise only (mean abs error about 5.8;
    # a wrong H/W/C order gives about 50).
    exact = Path(root).parent / "cifar10-exact-test-first1017.npz"
    if exact.is_file():
        with np.load(exact, allow_pickle=False) as z:
            np.testing.assert_array_equal(ds.y_test[:1017], z["y"])
            assert np.abs(ds.x_test[:1017].astype(np.float32) - z["x"]).mean() < 10


def test_synthetic_cifar_shapes_dtypes_and_seed():
    from minivit.data.cifar import synthetic_cifar

    d = synthetic_cifar(n_train=40, n_test=10, seed=1)
    assert d.name == "synthetic" and d.num_classes == 10
    assert d.x_train.shape == (40, 32, 32, 3) and d.x_test.shape == (10, 32, 32, 3)
    assert d.x_train.dtype == np.uint8 and d.y_train.dtype == np.int64
    assert d.y_train.min() >= 0 and d.y_train.max() <= 9
    again = synthetic_cifar(n_train=40, n_test=10, seed=1)
    np.testing.assert_array_equal(d.x_train, again.x_train)
    assert not np.array_equal(d.x_train, synthetic_cifar(n_train=40, n_test=10, seed=2).x_train)
    with pytest.raises(ValueError, match="n_train"):
        synthetic_cifar(n_train=0)


def test_synthetic_cifar_classes_differ_by_stripe_angle():
    """Each class's mean image is a stripe pattern at its own angle: the mean images of
    different classes must differ far more than two halves of the same class."""
    from minivit.data.cifar import synthetic_cifar

    d = synthetic_cifar(n_train=2000, n_test=10, seed=0)
    x, y = d.x_train.astype(float).mean(axis=3), d.y_train
    # Phases are random, so compare the power spectra (phase-free) of the class means' rows.
    spec = {k: np.abs(np.fft.fft2(x[y == k] - 128)).mean(axis=0) for k in (0, 5)}
    half = np.abs(np.fft.fft2(x[y == 0][::2] - 128)).mean(axis=0)
    assert np.abs(spec[0] - spec[5]).sum() > 3 * np.abs(spec[0] - half).sum()
