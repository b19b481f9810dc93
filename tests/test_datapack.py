"""The compact data pack: python -m minivit.data pack writes one .npz; load_cifar and the trainer read it."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from minivit.data.cifar import CIFAR, load_cifar, synthetic_cifar
from minivit.data.pack import PackError, pack, read_pack

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ds():
    return synthetic_cifar(n_train=300, n_test=120, seed=3)


def test_round_trip_through_load_cifar(ds, tmp_path):
    r = pack(ds, tmp_path / "p.npz", n_train=100, n_test=40, seed=1, dataset="cifar10")
    assert r["n_train"] == 100 and r["bytes"] == (tmp_path / "p.npz").stat().st_size
    got = load_cifar("cifar10", tmp_path / "p.npz")
    assert isinstance(got, CIFAR) and got.name == "synthetic" and got.classes == ds.classes
    with np.load(tmp_path / "p.npz", allow_pickle=False) as f:      # no pickles inside
        tr, te = f["train_index"], f["test_index"]
        assert f["x_train"].dtype == np.uint8 and f["y_train"].dtype == np.uint8
    assert np.all(np.diff(tr) > 0) and len(np.unique(te)) == 40      # distinct, original order kept
    assert np.array_equal(got.x_train, ds.x_train[tr]) and np.array_equal(got.y_train, ds.y_train[tr])
    assert np.array_equal(got.x_test, ds.x_test[te]) and got.y_test.dtype == np.int64
    # seeded: the same seed chooses the same images, another seed others
    pack(ds, tmp_path / "q.npz", n_train=100, n_test=40, seed=1, dataset="cifar10")
    pack(ds, tmp_path / "r.npz", n_train=100, n_test=40, seed=2, dataset="cifar10")
    assert np.array_equal(read_pack(tmp_path / "q.npz")["x_train"], got.x_train)
    assert not np.array_equal(read_pack(tmp_path / "r.npz")["x_train"], got.x_train)
    assert not list(tmp_path.glob("*.tmp*"))                          # written to a temporary, renamed


def test_refuses_bad_requests_and_bad_files(ds, tmp_path):
    with pytest.raises(ValueError, match="cannot take 301 images"):
        pack(ds, tmp_path / "p.npz", n_train=301, n_test=10)
    with pytest.raises(ValueError, match="must end in .npz"):
        pack(ds, tmp_path / "p.zip", n_train=10, n_test=10)
    pack(ds, tmp_path / "p.npz", n_train=10, n_test=10, dataset="cifar10")
    with pytest.raises(PackError, match="holds cifar10 images, not cifar100"):
        load_cifar("cifar100", tmp_path / "p.npz")
    with pytest.raises(FileNotFoundError, match="data pack .* not found"):
        load_cifar("cifar10", tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(PackError, match="not a readable .npz"):
        read_pack(tmp_path / "junk.npz")
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(PackError, match="not a minivit data pack"):
        read_pack(tmp_path / "other.npz")
    d = dict(np.load(tmp_path / "p.npz"))
    d["y_test"] = np.full(10, 10, np.uint8)                           # a label past the 10 classes
    np.savez(tmp_path / "badlabel.npz", **d)
    with pytest.raises(PackError, match="label 10, but there are 10 classes"):
        read_pack(tmp_path / "badlabel.npz")


def test_trainer_reads_a_pack(ds, tmp_path):
    from minivit.train.trainer import Trainer, recipe

    pack(ds, tmp_path / "p.npz", n_train=128, n_test=64, dataset="cifar10")
    cfg = recipe("smoke", epochs=1, subset=64, batch_size=32)
    cfg.test_subset = 64
    trainer = Trainer(cfg, tmp_path / "run", device="cpu", data_dir=tmp_path / "p.npz", progress=False)
    assert len(trainer.data["x_train"]) == 64 and trainer.data["test_total"] == 64


def test_cli_python_m_minivit_data_pack(tmp_path, monkeypatch):
    """`python -m minivit.data pack` (the same as `python -m minivit pack`) from a CIFAR folder."""
    import test_data

    monkeypatch.setattr(test_data, "N_TRAIN", 30)      # a tiny CIFAR-10 binary folder, in this process
    test_data.use_tiny_spec(monkeypatch, "cifar10")
    written = test_data.write_binary_folder(tmp_path, "cifar10")
    from minivit.cli.main import main

    assert main(["pack", "--out", str(tmp_path / "c.npz"), "--train", "100", "--test", "3",
                 "--data-dir", str(tmp_path)]) == 0
    got = load_cifar("cifar10", tmp_path / "c.npz")
    assert got.classes == written.classes and len(got.x_train) == 100 and len(got.x_test) == 3
    # the module form runs the same command line (through minivit's one error handler)
    r = subprocess.run([sys.executable, "-m", "minivit.data", "pack", "--out", str(tmp_path / "d.npz"),
                        "--train", "0"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 2 and r.stderr.startswith("error: ") and "--train" in r.stderr
