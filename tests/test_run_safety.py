"""A run's checkpoints under Ctrl-C at any point of their writing, and under divergence."""
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

import minivit.plots
import minivit.train.trainer
from minivit.cli.main import main
from minivit.storage.checkpoint import load_checkpoint, model_from_checkpoint, read_meta
from minivit.train.trainer import Trainer as RealTrainer, TrainingDiverged, evaluate
from test_train import REPO, params_of, synthetic, tiny_cfg


def score(model):
    """A stand-in 'accuracy' that grows as the zero-initialized head trains, so that each
    evaluation of these short runs is a new best (the real accuracy plateaus on the toy data)."""
    return float(np.abs(model.head.weight.value).mean())


def scored_evaluate(model, *a, **k):
    loss, _, preds = evaluate(model, *a, **k)
    return loss, score(model), preds


def quiet(monkeypatch):
    """curves.png is not what these tests look at, and matplotlib is slow."""
    monkeypatch.setattr(minivit.plots, "plot_curves", lambda *a, **k: None)


def Trainer(*a, evaluate=scored_evaluate, **k):
    """Every trainer here is evaluated by scored_evaluate unless told otherwise (injected)."""
    return RealTrainer(*a, evaluate=evaluate, **k)


@pytest.fixture(autouse=True)
def no_plots(monkeypatch):
    quiet(monkeypatch)


class Faults:
    """Counts the steps of the checkpoint writing sequence (before and after each np.savez,
    os.fsync and os.replace) once armed, and raises KeyboardInterrupt at step ``at``."""

    def __init__(self, monkeypatch, at=None):
        self.at, self.n, self.armed = at, 0, False
        for owner, name in ((np, "savez"), (os, "fsync"), (os, "replace")):
            monkeypatch.setattr(owner, name, self.wrap(getattr(owner, name), name))

    def point(self, where):
        if self.armed:
            if self.n == self.at:
                self.armed = False
                raise KeyboardInterrupt(where)
            self.n += 1

    def wrap(self, real, name):
        def wrapped(*a, **k):
            self.point(f"before {name}")
            r = real(*a, **k)
            self.point(f"after {name}")
            return r
        return wrapped


def run_with_fault(out, data, monkeypatch, at):
    """Train 2 epochs; once epoch 2's last step is done, interrupt the saves at fault point ``at``."""
    faults = Faults(monkeypatch, at)
    t = Trainer(tiny_cfg(), out, device="cpu", dataset_obj=data, progress=False)
    real_step = t.train_step

    def step(epoch, s, order):
        r = real_step(epoch, s, order)
        faults.armed = faults.armed or (epoch, s) == (1, t.steps_per_epoch - 1)
        return r

    t.train_step = step
    try:
        t.fit()
        interrupted = False
    except KeyboardInterrupt:
        interrupted = True
    monkeypatch.undo()
    quiet(monkeypatch)
    return faults, interrupted


def test_ctrl_c_at_every_point_of_the_saves_keeps_best_and_last_consistent(tmp_path, monkeypatch):
    data = synthetic()
    full = Trainer(tiny_cfg(), tmp_path / "full", device="cpu", dataset_obj=data, progress=False)
    full.fit()
    accs = [r["test_acc"] for r in full.history]
    assert accs[1] > accs[0]                       # epoch 2 is a new best: best.npz is replaced there
    faults, interrupted = run_with_fault(tmp_path / "count", data, monkeypatch, at=None)
    assert not interrupted and faults.n >= 12      # best.npz, last.npz, metrics.csv: >= 14 points
    for at in range(faults.n):
        out = tmp_path / f"cut{at}"
        _, interrupted = run_with_fault(out, data, monkeypatch, at)
        assert interrupted, at
        assert not list(out.glob("*.tmp")), at
        r = Trainer(tiny_cfg(), out, device="cpu", dataset_obj=data, progress=False).resume()
        # best.npz exists exactly when a best is recorded, and holds that accuracy.
        assert r.best_acc in accs, at
        best = read_meta(out / "best.npz")
        assert best["best_acc"] == r.best_acc, (at, best["best_acc"], r.best_acc)
        model, _ = model_from_checkpoint(out / "best.npz")
        assert score(model) == r.best_acc, at
        r.fit()                                    # and the run ends as if never interrupted
        assert [h["test_acc"] for h in r.history] == accs, at
        for k, v in params_of(full).items():
            np.testing.assert_array_equal(v, params_of(r)[k], err_msg=f"{at} {k}")
        p_best, _, m_best = load_checkpoint(out / "best.npz")
        p_full, _, _ = load_checkpoint(tmp_path / "full" / "best.npz")
        assert m_best["best_acc"] == max(accs)
        for k in p_full:
            np.testing.assert_array_equal(p_best[k], p_full[k], err_msg=f"{at} {k}")


def test_ctrl_c_during_the_first_best_leaves_no_stray_best(tmp_path, monkeypatch):
    """Interrupted before best.npz was first written: none is recorded, and none exists."""
    data = synthetic()
    faults = Faults(monkeypatch, at=0)               # the first np.savez of the epoch-1 commit
    t = Trainer(tiny_cfg(), tmp_path, device="cpu", dataset_obj=data, progress=False)
    def eval_then_arm(*a, **k):
        r = evaluate(*a, **k)
        faults.armed = True
        return r

    t.evaluate = eval_then_arm
    with pytest.raises(KeyboardInterrupt):
        t.fit()
    monkeypatch.undo()
    _, _, meta = load_checkpoint(tmp_path / "last.npz")
    assert meta["best_acc"] == -1.0 and not (tmp_path / "best.npz").exists()
    assert meta["history"] == [] and meta["step_in_epoch"] == t.steps_per_epoch    # evaluated again on resume


# ----------------------------------------------------------------------------- divergence
def test_non_finite_evaluation_loss_saves_nothing_and_names_an_existing_checkpoint(tmp_path, monkeypatch):
    data = synthetic()
    t = Trainer(tiny_cfg(epochs=2), tmp_path, device="cpu", dataset_obj=data, progress=False,
                evaluate=lambda *a, **k: (float("nan"), 0.25, None))
    with pytest.raises(TrainingDiverged, match="evaluation loss became nan") as e:
        t.fit()
    assert "no checkpoint of this run was saved" in str(e.value)          # not a last.npz that does not exist
    assert not (tmp_path / "last.npz").exists() and not (tmp_path / "best.npz").exists()


def test_nan_loss_in_the_first_epoch_names_no_missing_checkpoint(tmp_path):
    t = Trainer(tiny_cfg(epochs=1), tmp_path, device="cpu", dataset_obj=synthetic(), progress=False)
    t.model.head.weight.value[0, 0] = np.nan
    with pytest.raises(TrainingDiverged) as e:
        t.fit()
    assert "last.npz" not in str(e.value) and "no checkpoint" in str(e.value)


def test_a_non_finite_model_is_never_saved(tmp_path):
    t = Trainer(tiny_cfg(epochs=1), tmp_path, device="cpu", dataset_obj=synthetic(), progress=False)
    t.fit()
    good = (tmp_path / "last.npz").read_bytes()
    t.model.blocks[0].mlp.fc1.weight.value[0, 0] = np.inf       # finite loss maybe, but not a good model
    with pytest.raises(TrainingDiverged, match=r"blocks\.0\.mlp\.fc1\.weight.*last good checkpoint is .*last\.npz"):
        t.run.save("last.npz")
    assert (tmp_path / "last.npz").read_bytes() == good
    # Ctrl-C with a non-finite model: the good last.npz is kept, not replaced.
    t.cfg.epochs = 2

    def ctrl_c(*a):
        raise KeyboardInterrupt

    t.train_step = ctrl_c
    with pytest.raises(KeyboardInterrupt):
        t.fit()
    assert (tmp_path / "last.npz").read_bytes() == good


@pytest.mark.parametrize("lr", ["inf", "nan", "-inf"])
def test_cli_refuses_non_finite_lr(tmp_path, lr):
    r = subprocess.run([sys.executable, "-m", "minivit", "train", "--preset", "smoke", f"--lr={lr}",
                        "--out", str(tmp_path / "o"), "--data-dir", str(tmp_path)],
                       cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert "error:" in r.stderr and "--lr" in r.stderr and "finite" in r.stderr
    assert not (tmp_path / "o").exists()
    with pytest.raises(ValueError, match="learning rate"):
        Trainer(tiny_cfg(lr=float(lr)), tmp_path, device="cpu", dataset_obj=synthetic(), progress=False)


def test_eval_json_prints_null_not_nan(monkeypatch, capsys):
    fake = dict(checkpoint="x.npz", dataset="cifar10", test_loss=float("nan"), test_acc=0.1,
                per_class={"airplane": 0.1}, confusion=[[1]])
    monkeypatch.setattr(minivit.train.trainer, "evaluate_checkpoint", lambda *a, **k: fake)
    assert main(["eval", "x.npz", "--json"]) == 0
    out = capsys.readouterr().out
    r = json.loads(out, parse_constant=lambda c: pytest.fail(f"not JSON: {c}"))
    assert r["test_loss"] is None and r["test_acc"] == 0.1


@pytest.fixture
def python_handles_ctrl_c():
    """SIGINT with Python's own handler for the test: a test run started as a background job of a
    non-interactive shell inherits SIGINT ignored, and then the trainer rightly leaves it alone."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_a_real_ctrl_c_waits_for_the_step_to_finish(tmp_path, python_handles_ctrl_c):
    """SIGINT right after the optimizer moved the weights, before the step was counted: the
    resumed run must still be the uninterrupted one (the step is not applied twice)."""
    data = synthetic()
    full = Trainer(tiny_cfg(), tmp_path / "full", device="cpu", dataset_obj=data, progress=False)
    full.fit()
    t = Trainer(tiny_cfg(), tmp_path / "cut", device="cpu", dataset_obj=data, progress=False)
    real_opt_step, calls = t.opt.step, {"n": 0}

    def step_then_sigint():
        real_opt_step()
        calls["n"] += 1
        if calls["n"] == 11:
            os.kill(os.getpid(), signal.SIGINT)     # as a user's Ctrl-C would arrive

    t.opt.step = step_then_sigint
    with pytest.raises(KeyboardInterrupt):
        t.fit()
    _, _, meta = load_checkpoint(tmp_path / "cut" / "last.npz")
    assert (meta["epoch"], meta["step_in_epoch"]) == (1, 3)
    r = Trainer(tiny_cfg(), tmp_path / "cut", device="cpu", dataset_obj=data, progress=False).resume()
    r.fit()
    for k, v in params_of(full).items():
        np.testing.assert_array_equal(v, params_of(r)[k], err_msg=k)
