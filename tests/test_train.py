"""Trainer: end-to-end smoke run, bit-for-bit resume, NaN handling, checkpoints, CLI errors."""
import csv
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from minivit.storage.checkpoint import CheckpointError, load_checkpoint, model_from_checkpoint, save_checkpoint
from minivit.train.trainer import RECIPES, TrainConfig, Trainer, TrainingDiverged, recipe

REPO = Path(__file__).resolve().parents[1]
STANDIN = Path(os.environ.get("MINIVIT_DATA", REPO.parent / "shared/data/cifar10-standin"))


@dataclass
class Synthetic:
    """A tiny CIFAR-shaped dataset whose classes differ in colour, so a ViT can learn it quickly."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: list


def synthetic(n_train=256, n_test=64, k=4, seed=0):
    rng = np.random.default_rng(seed)

    def make(n):
        y = rng.integers(0, k, n)
        x = rng.integers(0, 80, (n, 32, 32, 3))
        x[np.arange(n), :, :, y % 3] += 120           # class -> a brighter colour channel ...
        x[y >= 3, :16] += 50                           # ... and, for class 3, a brighter top half
        return np.clip(x, 0, 255).astype(np.uint8), y.astype(np.int64)

    xtr, ytr = make(n_train)
    xte, yte = make(n_test)
    return Synthetic(xtr, ytr, xte, yte, [f"c{i}" for i in range(k)])


def tiny_cfg(**kw):
    base = dict(epochs=2, batch_size=32, lr=2e-3, subset=None, test_subset=None, seed=3,
                model=dict(image_size=32, patch_size=8, in_channels=3, num_classes=4, dim=16, depth=2, num_heads=2,
                           mlp_dim=32, pool="cls", pos_embed="learned", dropout=0.1, drop_path=0.1, ln_eps=1e-6,
                           gelu="tanh"),
                augment=dict(crop_padding=4, flip=True, randaugment_n=1, mixup_alpha=0.2, mix_prob=0.5))
    base.update(kw)
    return TrainConfig.from_dict({**RECIPES["smoke"].to_dict(), **base})


def params_of(trainer):
    return {k: v.copy() for k, v in trainer.model.state_dict().items()}


def test_smoke_run_writes_outputs(tmp_path):
    t = Trainer(tiny_cfg(epochs=3, augment=dict(crop_padding=4, flip=True)), tmp_path, device="cpu",
                dataset_obj=synthetic(), progress=False)
    history = t.fit()
    assert len(history) == 3
    for name in ("config.json", "metrics.csv", "curves.png", "last.npz", "best.npz"):
        assert (tmp_path / name).is_file(), name
    rows = list(csv.DictReader(open(tmp_path / "metrics.csv")))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert set(rows[0]) >= {"train_loss", "train_acc", "test_loss", "test_acc", "lr", "time_s"}
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert history[-1]["test_acc"] > 0.5            # 4 easy classes: far above chance (0.25)
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["model"]["dim"] == 16 and cfg["train"]["epochs"] == 3


@pytest.mark.parametrize("cut_at_call, position", [(9, (1, 0)), (11, (1, 2))])
def test_interrupt_then_resume_is_bit_for_bit(tmp_path, cut_at_call, position):
    """Ctrl-C at the start of epoch 2 or in its middle, then --resume: the same numbers as never stopping."""
    data = synthetic()
    full = Trainer(tiny_cfg(), tmp_path / "full", device="cpu", dataset_obj=data, progress=False)
    full.fit()

    t = Trainer(tiny_cfg(), tmp_path / "cut", device="cpu", dataset_obj=data, progress=False)
    real_step, calls = t.train_step, {"n": 0}

    def step_then_ctrl_c(*a, **k):
        calls["n"] += 1
        if calls["n"] == cut_at_call:            # 8 steps per epoch
            raise KeyboardInterrupt
        return real_step(*a, **k)

    t.train_step = step_then_ctrl_c
    with pytest.raises(KeyboardInterrupt):
        t.fit()
    _, _, meta = load_checkpoint(tmp_path / "cut" / "last.npz")
    assert (meta["epoch"], meta["step_in_epoch"]) == position
    resumed = Trainer(tiny_cfg(), tmp_path / "cut", device="cpu", dataset_obj=data, progress=False).resume()
    resumed.fit()
    a, b = params_of(full), params_of(resumed)
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    assert [r["test_acc"] for r in full.history] == [r["test_acc"] for r in resumed.history]
    assert full.history[-1]["train_loss"] == pytest.approx(resumed.history[-1]["train_loss"], rel=1e-12)
    np.testing.assert_array_equal(full.opt.state_dict()["head.weight/v"], resumed.opt.state_dict()["head.weight/v"])


def test_same_seed_same_numbers_different_seed_differs(tmp_path):
    data = synthetic()
    runs = [Trainer(tiny_cfg(epochs=1, seed=s), tmp_path / f"r{i}", device="cpu", dataset_obj=data, progress=False)
            for i, s in enumerate((5, 5, 6))]
    for r in runs:
        r.fit()
    p = [params_of(r) for r in runs]
    assert all(np.array_equal(p[0][k], p[1][k]) for k in p[0])
    assert not all(np.array_equal(p[0][k], p[2][k]) for k in p[0])


def test_nan_loss_stops_with_message_and_keeps_last_good_checkpoint(tmp_path):
    data = synthetic()
    t = Trainer(tiny_cfg(epochs=2), tmp_path, device="cpu", dataset_obj=data, progress=False)
    t.cfg.epochs = 1
    t.fit()                                          # one good epoch: last.npz holds it
    good = (tmp_path / "last.npz").read_bytes()
    t.cfg.epochs = 2
    # Poison a weight: the next forward pass produces NaN logits and a NaN loss.
    t.model.head.weight.value[0, 0] = np.nan
    with pytest.raises(TrainingDiverged, match=r"(?i)nan.*last good checkpoint"):
        t.fit()
    assert (tmp_path / "last.npz").read_bytes() == good


def test_checkpoint_round_trip_and_corrupt_file(tmp_path):
    t = Trainer(tiny_cfg(epochs=1), tmp_path, device="cpu", dataset_obj=synthetic(), progress=False)
    t.fit()
    model, meta = model_from_checkpoint(tmp_path / "last.npz")
    for k, v in t.model.state_dict().items():
        np.testing.assert_array_equal(model.state_dict()[k], v)
    assert meta["epoch"] == 1 and meta["train_config"]["seed"] == 3

    data = (tmp_path / "last.npz").read_bytes()
    (tmp_path / "truncated.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_checkpoint(tmp_path / "truncated.npz")
    (tmp_path / "garbage.npz").write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError):
        model_from_checkpoint(tmp_path / "garbage.npz")
    np.savez(tmp_path / "foreign.npz", a=np.zeros(3))
    with pytest.raises(CheckpointError, match="not a minivit checkpoint"):
        load_checkpoint(tmp_path / "foreign.npz")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.npz")


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    t = Trainer(tiny_cfg(epochs=1), tmp_path, device="cpu", dataset_obj=synthetic(), progress=False)
    save_checkpoint(tmp_path / "ck.npz", t.model, t.opt)
    before = (tmp_path / "ck.npz").read_bytes()

    def explode(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", explode)
    with pytest.raises(OSError):
        save_checkpoint(tmp_path / "ck.npz", t.model, t.opt)
    assert (tmp_path / "ck.npz").read_bytes() == before          # the old file is untouched
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_resume_with_other_options_is_refused(tmp_path):
    data = synthetic()
    Trainer(tiny_cfg(epochs=1), tmp_path, device="cpu", dataset_obj=data, progress=False).fit()
    other = Trainer(tiny_cfg(epochs=1, lr=1e-2), tmp_path, device="cpu", dataset_obj=data, progress=False)
    with pytest.raises(CheckpointError, match="different configuration"):
        other.resume()


def test_bad_options():
    with pytest.raises(ValueError, match="unknown preset"):
        recipe("huge")
    with pytest.raises(ValueError, match="batch size"):
        Trainer(tiny_cfg(batch_size=1024), "/tmp/unused", device="cpu", dataset_obj=synthetic(), progress=False)
    with pytest.raises(ValueError, match="subset"):
        Trainer(tiny_cfg(subset=10**6), "/tmp/unused", device="cpu", dataset_obj=synthetic(), progress=False)


def run_cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "minivit", *args], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300)


@pytest.mark.parametrize("args, message", [
    (["train", "--epochs", "0"], "positive integer"),
    (["train", "--preset", "nope"], "invalid choice"),
    (["train", "--batch-size", "abc"], "expected a positive integer, got abc"),
    (["train", "--device", "tpu"], "invalid choice"),
])
def test_cli_argument_errors(args, message):
    r = run_cli(*args)
    assert r.returncode == 2
    assert message in r.stderr


def test_cli_missing_data_message(tmp_path):
    r = run_cli("train", "--preset", "smoke", "--data-dir", str(tmp_path), "--out", str(tmp_path / "o"),
                env={"MINIVIT_DATA": ""})
    assert r.returncode != 0
    assert "cifar-10" in r.stderr.lower() and str(tmp_path) in r.stderr
    assert "--data-dir DIR" in r.stderr and "data_dir=" not in r.stderr     # the option, not the Python form


def test_cli_resume_without_checkpoint(tmp_path):
    if not (STANDIN / "cifar-10-batches-bin").is_dir():
        pytest.skip("CIFAR-10 stand-in not available")
    r = run_cli("train", "--preset", "smoke", "--resume", "--out", str(tmp_path / "none"),
                env={"MINIVIT_DATA": str(STANDIN)})
    assert r.returncode == 2 and "no checkpoint" in r.stderr


@pytest.mark.skipif(not (STANDIN / "cifar-10-batches-bin").is_dir(), reason="CIFAR-10 stand-in not available")
def test_cli_smoke_train_and_eval_on_standin(tmp_path):
    env = {"MINIVIT_DATA": str(STANDIN), "MPLBACKEND": "Agg"}
    r = run_cli("train", "--preset", "smoke", "--epochs", "1", "--out", str(tmp_path), env=env)
    assert r.returncode == 0, r.stderr
    assert "final test accuracy" in r.stdout
    r = run_cli("eval", str(tmp_path / "best.npz"), "--out", str(tmp_path), env=env)
    assert r.returncode == 0, r.stderr
    assert "test accuracy" in r.stdout and "airplane" in r.stdout
    assert (tmp_path / "confusion.png").is_file()
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04 broken")
    r = run_cli("eval", str(tmp_path / "bad.npz"), env=env)
    assert r.returncode == 2 and "corrupt" in r.stderr
