"""The training options fail cleanly (issue #26, item 4): a run's length beyond what the schedule can
represent, a config.json edited by hand before --resume, a bad $MINIVIT_DEVICE in every command, a
--val-split that leaves fewer images than the recipe's subset. Each is one ``error:`` line and exit
code 2, before any calibration or training."""
import functools
import json
import math

import numpy as np
import pytest

import minivit.train.finetune  # noqa: F401 (it subclasses Trainer: imported before the CLI's Trainer is replaced)

import minivit.train.planned_run
import minivit.train.trainer
from minivit.cli import main as cli
from minivit.train.budget import Calibration, parse_duration, plan_for_budget
from minivit.storage.checkpoint import CheckpointError
from minivit.train.trainer import Trainer
from minivit.train.data import prepare_data
from test_train import synthetic, tiny_cfg


MAX_STEPS, MAX_BUDGET_S = 2 ** 53, 365 * 24 * 3600.0     # minivit.train.budget's: the schedule's limits


def one_error_line(capsys):
    err = capsys.readouterr().err
    lines = [x for x in err.splitlines() if x.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.fixture
def nothing_runs(monkeypatch):
    """Fail the test if a command gets as far as a Trainer, a calibration or a training step."""
    def refuse(*a, **k):
        raise AssertionError("got past the option checks")

    monkeypatch.setattr(minivit.train.trainer.Trainer, "__init__", refuse)
    monkeypatch.setattr(minivit.train.planned_run, "calibrate", refuse)
    monkeypatch.setenv("MINIVIT_DEVICE", "cpu")


# ------------------------------------------------------------------- lengths beyond the schedule
@pytest.mark.parametrize("args, fragment", [
    (["--time-budget", "99999999999999999999h"], "expected a duration of at most 8760h (a year)"),
    (["--time-budget", "8761h"], "expected a duration of at most 8760h"),
    (["--steps", "99999999999999999999999"], "expected a positive integer of at most 2**53"),
    (["--steps", str(2 ** 53 + 1)], "expected a positive integer of at most 2**53"),
    (["--epochs", "99999999999999999999999"], "expected a positive integer of at most 2**53"),
])
def test_a_length_beyond_the_schedule_is_refused_before_anything_runs(args, fragment, tmp_path, nothing_runs,
                                                                       capsys):
    assert cli.main(["train", "--preset", "smoke", *args, "--out", str(tmp_path / "r")]) == 2
    line = one_error_line(capsys)
    assert fragment in line and args[0] in line, line


def test_the_longest_lengths_parse():
    assert parse_duration("8760h") == MAX_BUDGET_S
    args = cli.build_parser().parse_args(["train", "--steps", str(2 ** 53)])
    assert args.steps == MAX_STEPS


@pytest.mark.parametrize("length, fragment", [(dict(steps=2 ** 53 + 1), "2**53"),
                                              (dict(epochs=2 ** 53 // 4), "2**53"),   # 8 steps per epoch
                                              (dict(epochs=None, time_budget=1e30), "at most 31536000")])
def test_the_trainer_refuses_a_length_beyond_the_schedule(length, fragment, monkeypatch):
    monkeypatch.setattr(minivit.train.planned_run, "calibrate", lambda *a, **k: pytest.fail("calibrated"))
    with pytest.raises(ValueError, match=fragment.replace("*", r"\*")):
        Trainer(tiny_cfg(**length), "/tmp/unused", device="cpu", dataset_obj=synthetic(), progress=False)


def test_a_plan_for_the_longest_budget_stays_representable_and_quick():
    """A year at a picosecond per step: the plan stops at MAX_STEPS, and counting its ~2**50
    evaluations builds no list (it used to run out of memory or overflow)."""
    cal = Calibration(step_s={"full": 1e-12}, eval_s_per_image=1e-15, commit_s=1e-12)
    plan = plan_for_budget(MAX_BUDGET_S, 1.0, cal, steps_per_epoch=8, eval_images=(16, 64))
    assert plan.steps == MAX_STEPS and plan.evaluations == math.ceil(MAX_STEPS / 8)
    assert "ends about" in plan.eta()


# ------------------------------------------------------------------------------ $MINIVIT_DEVICE
@pytest.mark.parametrize("argv", [["info"], ["eval", "nope.npz"], ["grade", "--list"], ["hint", "gelu_forward"],
                                  ["train", "--preset", "smoke"], ["bench", "--steps", "1"], ["gradcheck"],
                                  ["fused"], ["pack", "--out", "x.npz"], ["inspect", "c.npz", "--out", "x"],
                                  ["finetune", "--from", "c.npz"]], ids=lambda a: a[0])
def test_a_bogus_device_variable_is_exit_2_in_every_command(argv, monkeypatch, capsys):
    monkeypatch.setenv("MINIVIT_DEVICE", "bogus")
    monkeypatch.setattr(minivit.train.trainer.Trainer, "__init__", lambda *a, **k: pytest.fail("trained"))
    assert cli.main(argv) == 2
    line = one_error_line(capsys)
    assert "MINIVIT_DEVICE=bogus" in line and "auto, cpu, gpu" in line, line
    assert capsys.readouterr().out == ""


def test_the_device_variable_may_be_unset_empty_or_any_case(monkeypatch, capsys):
    for value in ("", "CPU", "auto"):
        monkeypatch.setenv("MINIVIT_DEVICE", value)
        assert cli.main(["grade", "--list"]) == 0
    monkeypatch.delenv("MINIVIT_DEVICE")
    assert cli.main(["grade", "--list"]) == 0


# ------------------------------------------------------------------------------------ --val-split
def test_a_split_leaving_fewer_images_than_the_subset_names_the_split():
    with pytest.raises(ValueError) as e:
        prepare_data(tiny_cfg(val_split=200, subset=100), np, dataset_obj=synthetic())
    msg = str(e.value)
    assert msg.startswith("--val-split 200 leaves 56 of the 256 training images") and "--subset N with N at most 56" \
        in msg and "--subset must be" not in msg


def test_cli_val_split_with_the_smoke_recipes_subset(tmp_path, monkeypatch, capsys):
    """The smoke recipe trains on a subset of 2,048 images; --val-split 49000 leaves 1,000."""
    import test_cli_errors as ce

    if not ce.CIFAR_BIN.is_dir() and not __import__("os").environ.get("MINIVIT_DATA"):
        pytest.skip("needs CIFAR-10 (MINIVIT_DATA)")
    monkeypatch.setenv("MINIVIT_DEVICE", "cpu")
    monkeypatch.setattr(minivit.train.planned_run, "calibrate", lambda *a, **k: pytest.fail("calibrated"))
    assert cli.main(["train", "--preset", "smoke", "--val-split", "49000", "--out", str(tmp_path / "r"),
                     "--data-dir", ce.data_dir()]) == 2
    line = one_error_line(capsys)
    assert line.startswith("error: --val-split 49000 leaves 1000 of the 50000 training images") and \
        "subset of 2048" in line and "--subset must be" not in line, line


# ------------------------------------------------------------------ --resume after config.json edits
@pytest.fixture
def finished_run(tmp_path, monkeypatch):
    """A one-epoch smoke run on synthetic images, through the command line; returns its argv."""
    real = minivit.train.trainer.prepare_data
    monkeypatch.setattr(minivit.train.trainer, "Trainer",      # the CLI builds it with this data
                        functools.partial(minivit.train.trainer.Trainer, prepare_data=lambda cfg, xp, data_dir=None, dataset_obj=None: real(cfg, xp, None, synthetic())))
    monkeypatch.setattr("minivit.plots.plot_curves", lambda *a, **k: None)
    monkeypatch.setenv("MINIVIT_DEVICE", "cpu")
    argv = ["train", "--preset", "smoke", "--epochs", "1", "--subset", "128", "--out", str(tmp_path / "r")]
    assert cli.main(argv) == 0
    return argv, tmp_path / "r" / "config.json"


def test_resume_refuses_a_config_edited_by_hand_naming_each_field(finished_run, capsys):
    argv, path = finished_run
    config = json.loads(path.read_text())
    config["train"]["lr"] = 0.5
    config["model"]["dim"] = 999
    config["train"]["augment"]["flip"] = False
    path.write_text(json.dumps(config, indent=2))
    capsys.readouterr()
    assert cli.main(argv + ["--resume"]) == 2
    line = one_error_line(capsys)
    assert "config.json was edited" in line, line
    for field in ("train.lr: config.json 0.5, checkpoint 0.002", "model.dim: config.json 999, checkpoint",
                  "train.augment.flip: config.json False, checkpoint True"):
        assert field in line, line


@pytest.mark.parametrize("damage", ["missing", "truncated"])
def test_resume_rewrites_a_missing_or_truncated_config_with_a_notice(finished_run, damage, capsys):
    argv, path = finished_run
    written = path.read_text()
    if damage == "missing":
        path.unlink()
    else:
        path.write_text(written[:len(written) // 2])
    capsys.readouterr()
    assert cli.main(argv + ["--resume"]) == 0
    out = capsys.readouterr().out
    assert f"notice: {path} is {'missing' if damage == 'missing' else 'unreadable'}" in out, out
    assert json.loads(path.read_text()) == json.loads(written)


def test_resume_with_the_config_as_written_goes_on(finished_run, capsys):
    argv, path = finished_run
    assert cli.main(argv + ["--resume"]) == 0
    assert "notice" not in capsys.readouterr().out


def test_the_check_is_in_the_trainers_resume_too(tmp_path):
    Trainer(tiny_cfg(epochs=1), tmp_path, device="cpu", dataset_obj=synthetic(), progress=False).fit()
    config = json.loads((tmp_path / "config.json").read_text())
    config["train"]["seed"] = 4
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="train.seed: config.json 4, checkpoint 3"):
        Trainer(tiny_cfg(epochs=1), tmp_path, device="cpu", dataset_obj=synthetic(), progress=False).resume()
