"""``--val-split N`` (TrainConfig.val_split): levers are compared on images held out of the
training set, best.npz is chosen on them, and the test set is never read (minivit/train/data.py)."""
from __future__ import annotations

import numpy as np
import pytest

from minivit.cli import main as cli
from minivit.storage.checkpoint import load_checkpoint
from minivit.train.progress import read_metrics
from minivit.train.trainer import Trainer
from minivit.train.data import prepare_data, validation_split

from test_train import synthetic, tiny_cfg


def test_split_is_disjoint_complete_and_fixed():
    keep, val = validation_split(1000, 100)
    assert len(val) == 100 and len(keep) == 900
    assert not set(keep) & set(val) and sorted(set(keep) | set(val)) == list(range(1000))
    again_keep, again_val = validation_split(1000, 100)
    assert np.array_equal(val, again_val) and np.array_equal(keep, again_keep)
    assert not np.array_equal(val, np.arange(100))        # a random choice, not the first images


@pytest.mark.parametrize("n", [0, 1000, 2000])
def test_split_size_must_leave_training_images(n):
    with pytest.raises(ValueError, match="--val-split must be between 1 and 999"):
        validation_split(1000, n)


class NoTestSet:
    """A dataset whose test images must not be read."""

    def __init__(self, ds):
        self._ds = ds
        self.x_train, self.y_train, self.classes = ds.x_train, ds.y_train, ds.classes

    @property
    def x_test(self):
        raise AssertionError("the test images were read")

    y_test = x_test


def test_validation_images_come_from_training_and_test_set_is_unread():
    ds = synthetic(n_train=256, n_test=64)
    cfg = tiny_cfg(val_split=56)
    d = prepare_data(cfg, np, dataset_obj=NoTestSet(ds))
    keep, val = validation_split(256, 56)
    assert d["eval_set"] == "val" and len(d["x_train"]) == 200 and len(d["x_test"]) == 56
    assert np.array_equal(d["x_test"], ds.x_train[val]) and np.array_equal(d["y_test"], ds.y_train[val])
    assert np.array_equal(d["x_train"], ds.x_train[keep])
    # the seed of the run does not move the split: every run of a comparison sees the same images
    other = prepare_data(tiny_cfg(val_split=56, seed=99), np, dataset_obj=ds)
    assert np.array_equal(other["x_test"], d["x_test"])


def test_subset_is_taken_from_the_remaining_training_images():
    ds = synthetic(n_train=256)
    d = prepare_data(tiny_cfg(val_split=56, subset=100), np, dataset_obj=ds)
    _, val = validation_split(256, 56)
    val_rows = {ds.x_train[i].tobytes() for i in val}
    assert len(d["x_train"]) == 100 and not any(x.tobytes() in val_rows for x in d["x_train"])


def test_a_run_evaluates_and_selects_on_validation(tmp_path, capsys):
    ds = synthetic(n_train=256, n_test=64)
    t = Trainer(tiny_cfg(val_split=64, epochs=2), tmp_path, device="cpu", dataset_obj=NoTestSet(ds), progress=False)
    history = t.fit()
    out = capsys.readouterr().out
    assert "held-out validation images" in out and "val acc" in out
    rows = read_metrics(tmp_path / "metrics.csv")
    assert [r["eval_set"] for r in rows] == ["val", "val"] and all(r["eval_images"] == 64 for r in rows)
    best = max(history, key=lambda r: r["test_acc"])
    _, _, meta = load_checkpoint(tmp_path / "best.npz")
    assert meta["best_acc"] == best["test_acc"]


def test_without_a_split_the_rows_say_test(tmp_path):
    Trainer(tiny_cfg(epochs=1), tmp_path, device="cpu", dataset_obj=synthetic(), progress=False).fit()
    assert read_metrics(tmp_path / "metrics.csv")[0]["eval_set"] == "test"


def test_cli_refuses_a_split_as_large_as_the_training_set(tmp_path, monkeypatch, capsys):
    import test_cli_errors as ce

    if not ce.CIFAR_BIN.is_dir() and not __import__("os").environ.get("MINIVIT_DATA"):
        pytest.skip("needs CIFAR-10 (MINIVIT_DATA)")
    monkeypatch.setenv("MINIVIT_DEVICE", "cpu")
    rc = cli.main(["train", "--preset", "smoke", "--val-split", "50000", "--epochs", "1", "--out", str(tmp_path / "r"),
                   "--data-dir", ce.data_dir()])
    err = capsys.readouterr().err
    lines = [x for x in err.splitlines() if x.startswith("error:")]
    assert rc == 2 and len(lines) == 1 and "--val-split must be between 1 and 49999" in lines[0], err


def scripted_accuracies(accs):
    """An evaluation (for the trainer's ``evaluate=``) that returns these accuracies, in order."""
    from minivit.train.evaluation import evaluate as real

    it = iter(accs)

    def evaluate(*a, **k):
        loss, _, preds = real(*a, **k)
        return loss, next(it), preds

    return evaluate


@pytest.mark.parametrize("val, best_epoch", [(None, 3), (64, 2)])
def test_best_is_chosen_on_validation_only(tmp_path, monkeypatch, val, best_epoch):
    """Accuracies 0.3, 0.6, 0.4: with a validation split best.npz is epoch 2's model; on the test set
    nothing is chosen, best.npz is the final model (epoch 3)."""
    t = Trainer(tiny_cfg(epochs=3, val_split=val), tmp_path, device="cpu", dataset_obj=synthetic(), progress=False,
                evaluate=scripted_accuracies([0.3, 0.6, 0.4]))
    t.fit()
    _, _, meta = load_checkpoint(tmp_path / "best.npz")
    assert meta["epoch"] == best_epoch and meta["best_acc"] == [0.3, 0.6, 0.4][best_epoch - 1]


def test_final_test_evaluates_the_whole_test_set_last(tmp_path, capsys):
    ds = synthetic(n_train=256, n_test=64)
    t = Trainer(tiny_cfg(epochs=2, test_subset=16, final_test=True), tmp_path, device="cpu", dataset_obj=ds,
                progress=False)
    t.fit()
    rows = read_metrics(tmp_path / "metrics.csv")
    assert [r["eval_images"] for r in rows] == [16, 64]
    from minivit.train.evaluation import evaluate
    from minivit.storage.checkpoint import model_from_checkpoint

    model, _ = model_from_checkpoint(tmp_path / "last.npz")
    _, acc, _ = evaluate(model, ds.x_test, ds.y_test, t.aug, 4)
    assert rows[-1]["test_acc"] == acc
    assert "test acc (all, final)" in capsys.readouterr().out


def test_a_validation_split_ignores_the_test_set_options():
    """A recipe's test_subset and final_test (e.g. the cpu recipe's) do not apply to a validation run."""
    d = prepare_data(tiny_cfg(val_split=40, final_test=True, test_subset=16), np, dataset_obj=NoTestSet(synthetic()))
    assert len(d["x_test"]) == 40 and "x_test_full" not in d and d["eval_set"] == "val"
