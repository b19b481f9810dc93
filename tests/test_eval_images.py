"""``eval CHECKPOINT --images FILE.npz``: accuracy on a given set of test images (e.g. the 1,017
exact official CIFAR-10 test images), read without pickle; a wrong file is one error line."""
from __future__ import annotations

import json

import numpy as np
import pytest

from minivit.cli import main as cli
from minivit.storage.checkpoint import model_from_checkpoint
from minivit.train.evaluation import evaluate, load_images
from minivit.train.data import augment_config
from minivit.train.recipes import TrainConfig

from test_cli_errors import CIFAR_BIN, data_dir, good_ckpt  # noqa: F401 (fixture)

needs_data = pytest.mark.skipif(not CIFAR_BIN.is_dir() and not __import__("os").environ.get("MINIVIT_DATA"),
                                reason="needs CIFAR-10 (MINIVIT_DATA)")


def write_images(path, n=20, seed=0, **changes):
    rng = np.random.default_rng(seed)
    arrays = dict(x=rng.integers(0, 256, (n, 32, 32, 3)).astype(np.uint8), y=rng.integers(0, 10, n))
    arrays.update(changes)
    np.savez(path, **arrays)
    return path


@needs_data
def test_eval_on_an_images_file_is_the_accuracy_on_those_images(tmp_path, good_ckpt, capsys, monkeypatch):
    monkeypatch.setenv("MINIVIT_DEVICE", "cpu")
    ckpt, _ = good_ckpt
    images = write_images(tmp_path / "few.npz")
    assert cli.main(["eval", str(ckpt), "--images", str(images), "--data-dir", data_dir(), "--json",
                     "--no-progress", "--out", str(tmp_path)]) == 0
    r = json.loads(capsys.readouterr().out)
    model, _ = model_from_checkpoint(ckpt)
    x, y = load_images(images, 10, (32, 32, 3))
    _, acc, _ = evaluate(model, x, y, augment_config(TrainConfig()), 10)
    assert r["num_images"] == 20 and r["test_acc"] == acc and r["images"] == str(images)


@pytest.mark.parametrize("changes, fragment", [
    (dict(x=np.zeros((20, 32, 32, 3), np.float32)), "expected x (N, 32, 32, 3) uint8"),
    (dict(y=np.full(20, 10)), "labels in [0, 9]"),
    (dict(y=np.zeros(19, np.int64)), "y (19,)"),
])
def test_a_wrong_images_file_is_refused(tmp_path, changes, fragment):
    with pytest.raises(ValueError, match=fragment.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        load_images(write_images(tmp_path / "bad.npz", **changes), 10, (32, 32, 3))


def test_an_images_file_without_x_or_not_npz_is_refused(tmp_path):
    np.savez(tmp_path / "other.npz", images=np.zeros(3))
    with pytest.raises(ValueError, match=r"holds \['images'\]; expected x"):
        load_images(tmp_path / "other.npz", 10, (32, 32, 3))
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not an .npz file"):
        load_images(tmp_path / "junk.npz", 10, (32, 32, 3))


@needs_data
def test_cli_bad_images_file_is_one_error_line(tmp_path, good_ckpt, capsys, monkeypatch):
    monkeypatch.setenv("MINIVIT_DEVICE", "cpu")
    ckpt, _ = good_ckpt
    bad = write_images(tmp_path / "bad.npz", y=np.full(20, 12))
    assert cli.main(["eval", str(ckpt), "--images", str(bad), "--data-dir", data_dir(), "--out", str(tmp_path)]) == 2
    err = [x for x in capsys.readouterr().err.splitlines() if x.startswith("error:")]
    assert len(err) == 1 and "bad.npz" in err[0] and "labels in [0, 9]" in err[0]
