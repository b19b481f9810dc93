"""A budget that holds (issue #26, item 2; minivit/train/replan.py): a budgeted run re-plans its horizon at
each evaluation from the step times measured since the last one, records the plan followed, and a
--steps replay of it reproduces the run bit for bit. All on a simulated clock (tests/test_budget.py's
FakeClock and fake_timed_trainer): no wall-clock bound."""
import functools
import json
import math

import numpy as np
import pytest

import minivit.train.finetune  # noqa: F401 (it subclasses Trainer: imported before the CLI's Trainer is replaced)
from minivit.cli import main as cli
from minivit.train.budget import MARGIN
from minivit.storage.checkpoint import read_meta
from minivit.optim import warmup_cosine
from minivit.train.replan import check_horizons, horizon_at, parse_steps, replan, schedule_position, steps_option
from minivit.train.trainer import Trainer
from test_budget import (EVAL_S_PER_IMAGE, STEP_S, WRITE_S, FakeClock, approx_lrs, fake_timed_trainer, params_of,
                         planned_lrs, replay_cfg)
from test_train import synthetic, tiny_cfg

BUDGET = 12.0


def eval_s(n_images):
    """One evaluation of n images and its commit (two checkpoint writes) on the simulated clock."""
    return EVAL_S_PER_IMAGE * n_images + 2 * WRITE_S


@pytest.mark.parametrize("after_plan", [2.0, 0.5], ids=["2x slower", "2x faster"])
def test_a_machine_that_changes_speed_after_calibration_ends_within_two_percent(tmp_path, monkeypatch, after_plan):
    """Every step, evaluation and write takes twice (half) the calibrated time once the plan is made:
    the first plan alone would end ~1.5x (0.75x) the budget; the re-plans end the whole process
    within 2% of the budget and never after it by more than one evaluation."""
    clock = FakeClock()
    t = fake_timed_trainer(tmp_path, monkeypatch, tiny_cfg(epochs=None, time_budget=BUDGET), clock, synthetic(),
                           after_plan=after_plan)
    t.fit()
    took, first = clock() - t.started, t.plan.horizons[0][1]
    assert abs(took - BUDGET) <= 0.02 * BUDGET and took <= BUDGET + after_plan * eval_s(64), took
    S = t.plan.steps
    assert (S < 0.8 * first) if after_plan > 1 else (S > 1.5 * first), (first, S)
    assert t.global_step == S == t.total_steps and t.history[-1]["step"] == S
    assert t.lrs[-S:] == approx_lrs(planned_lrs(t))   # the schedule stretched, not cut
    assert t.planner.warmup_steps == min(round(t.cfg.warmup_epochs * 8), first // 2)      # the first plan's warmup
    replan_1 = t.plan.replans[0]
    assert replan_1["step"] == 8 and replan_1["step_s"] == pytest.approx(after_plan * STEP_S)
    assert replan_1["eval_s_per_image"] == pytest.approx(after_plan * EVAL_S_PER_IMAGE)
    assert json.loads((tmp_path / "config.json").read_text())["plan"] == t.plan.to_dict()
    assert read_meta(tmp_path / "last.npz")["plan"] == t.plan.to_dict()


@pytest.mark.parametrize("after_plan", [2.0, 1.0])
def test_a_replay_reproduces_a_replanned_run_bit_for_bit(tmp_path, monkeypatch, after_plan, capsys):
    """--steps H0,H1@g1,... (as the run prints it) on a machine of any speed: the same horizons at the
    same steps, so the same learning rates, parameters and accuracies."""
    data = synthetic()
    t = fake_timed_trainer(tmp_path / "a", monkeypatch, tiny_cfg(epochs=None, time_budget=BUDGET), FakeClock(), data,
                           after_plan=after_plan)
    t.fit()
    assert len(t.plan.horizons) > 1                     # the plan moved (on a steady machine: the shrinking margin)
    option = steps_option(t.plan.horizons)
    assert t.planner.replay_note() == f"; replay its plan with --steps {option}"
    replay = fake_timed_trainer(tmp_path / "b", monkeypatch, replay_cfg(t.plan), FakeClock(), data, slow=5.0)
    replay.fit()
    assert replay.lrs == t.lrs[-t.global_step:] == approx_lrs(planned_lrs(t))
    a, b = params_of(t), params_of(replay)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert [r["test_acc"] for r in t.history] == [r["test_acc"] for r in replay.history]
    assert replay.plan.horizons == t.plan.horizons and replay.plan.replans == []


def test_a_steady_machine_uses_at_least_97_percent_of_its_budget(tmp_path, monkeypatch):
    """The first plan keeps 3% of the budget free; the re-plans keep 3% of what remains, so the run
    takes back most of it (the steps given away before re-planning)."""
    clock = FakeClock()
    t = fake_timed_trainer(tmp_path, monkeypatch, tiny_cfg(epochs=None, time_budget=BUDGET), clock, synthetic())
    t.fit()
    assert 0.97 * BUDGET <= clock() - t.started <= BUDGET
    assert t.plan.steps > t.plan.horizons[0][1]        # more than the first plan gave


def test_schedule_position_is_the_step_until_a_replan_then_stretches_what_is_left():
    assert [schedule_position([[0, 100]], i) for i in (0, 37, 99, 100)] == [0, 37, 99, 100]
    assert all(type(schedule_position([[0, 100]], i)) is int for i in range(101))     # no re-plan: as before
    horizons = [[0, 100], [40, 160], [80, 120]]          # 60 positions left over 120 steps, then 40 over 40
    assert schedule_position(horizons, 40) == 40 and schedule_position(horizons, 60) == 50
    assert schedule_position(horizons, 80) == 60 and schedule_position(horizons, 100) == 80
    assert schedule_position(horizons, 120) == 100
    positions = [schedule_position(horizons, i) for i in range(121)]
    assert all(a < b for a, b in zip(positions, positions[1:]))        # the schedule never runs backwards
    assert schedule_position([[0, 100], [50, 50]], 50) == 100              # ended at once: the schedule's end


@pytest.mark.parametrize("after_plan", [2.0, 0.5], ids=["2x slower", "2x faster"])
def test_the_learning_rate_does_not_jump_at_a_replan(tmp_path, monkeypatch, after_plan):
    """Read back from the learning rates the run used, the cosine's progress (arccos) moves at each
    re-plan step by what it moved per step before or will move after it: the schedule is stretched
    or squeezed from there on, never cut. The horizon in force alone (as before 2026-12-07) fails
    this on the same plan: its progress leaps forward (a shorter horizon) or back (a longer one,
    the learning rate rising again). And the learning rate still reaches min_lr at the run's end."""
    t = fake_timed_trainer(tmp_path, monkeypatch, tiny_cfg(epochs=None, time_budget=BUDGET), FakeClock(), synthetic(),
                           after_plan=after_plan)
    t.fit()
    horizons, w, base, low = t.plan.horizons, t.planner.warmup_steps, t.cfg.lr, t.cfg.min_lr
    moved = [g for g, _ in horizons[1:] if g > w + 1]
    assert moved, horizons

    def smooth(lrs):
        p = np.arccos(np.clip(2 * (np.array(lrs) - low) / (base - low) - 1, -1, 1)) / np.pi
        d = np.diff(p)                                  # d[i - 1]: the progress step i made
        return all(min(d[g - 2], d[g]) * (1 - 1e-6) <= d[g - 1] <= max(d[g - 2], d[g]) * (1 + 1e-6) for g in moved)

    assert smooth(t.lrs[-t.global_step:])
    assert not smooth([warmup_cosine(i, horizon_at(horizons, i), base, w, low) for i in range(t.global_step)])
    assert warmup_cosine(schedule_position(horizons, t.global_step), horizons[0][1], base, w, low) == low


@pytest.mark.parametrize("final_test", [False, True])
def test_a_run_already_late_ends_at_once_never_below_its_steps(tmp_path, monkeypatch, final_test):
    """A machine 25x slower after the calibration: the first epoch alone overruns the budget. The
    first re-plan ends the run where it is (with final_test: one more step, so that the last
    evaluation is on the whole test set): late by at most that step and one evaluation."""
    clock = FakeClock()
    cfg = tiny_cfg(epochs=None, time_budget=BUDGET, **(dict(test_subset=16, final_test=True) if final_test else {}))
    t = fake_timed_trainer(tmp_path, monkeypatch, cfg, clock, synthetic(), after_plan=25.0)
    t.fit()
    assert t.plan.replans[0]["used_s"] > BUDGET and len(t.plan.replans) == 1
    assert t.global_step == t.plan.steps == 8 + final_test
    assert [r["eval_images"] for r in t.history] == ([16, 64] if final_test else [64])
    assert t.plan.horizons[-1] == [8, 8 + final_test]


def test_the_replan_rule_takes_the_most_steps_that_fit_what_remains():
    spe, step_s, per_image, commit_s = 10, 0.5, 0.01, 0.2

    def cost(n):                                  # n more steps from step 40, evaluations of 100, the last of 1000
        e = math.ceil(n / spe)
        return n * step_s + (0 if n == 0 else (e - 1) * 100 * per_image + 1000 * per_image) + e * commit_s

    h = replan(600.0, 100.0, 40, step_s, spe, (100, 1000), per_image, commit_s)
    free = 500.0 * (1 - MARGIN)
    assert cost(h - 40) <= free < cost(h - 40 + 1)
    assert replan(600.0, 700.0, 40, step_s, spe, 100, per_image, commit_s) == 40          # late: stop here
    assert replan(600.0, 700.0, 40, step_s, spe, 100, per_image, commit_s, at_least=1) == 41


@pytest.mark.parametrize("text, expected", [("1500", (1500, None)),
                                            ("1500,1480@390,1460@780", (1460, [[0, 1500], [390, 1480], [780, 1460]]))])
def test_parse_steps(text, expected):
    assert parse_steps(text) == expected
    if expected[1]:
        assert steps_option(expected[1]) == text


@pytest.mark.parametrize("argv, fragment", [
    (["--steps", "100,abc"], "a plan followed such as 1500,1480@390,1460@780"),
    (["--steps", "100,90@120"], "must come after step 0 and before the horizon 100"),
    (["--steps", "100,30@40"], "may not go below its step 40"),
    (["--steps", "100,120@40,130@40"], "must come after step 40"),
    (["--steps", "100,%d@40" % (2 ** 53 + 1)], "2**53"),
])
def test_cli_refuses_a_plan_that_cannot_have_been_followed(argv, fragment, tmp_path, capsys):
    assert cli.main(["train", "--preset", "smoke", *argv, "--out", str(tmp_path / "r")]) == 2
    err = [x for x in capsys.readouterr().err.splitlines() if x.startswith("error:")]
    assert len(err) == 1 and "argument --steps" in err[0] and fragment in err[0], err


def test_a_replayed_plan_must_replan_at_epoch_ends(tmp_path):
    with pytest.raises(ValueError, match="a re-plan at step 12 is not at an epoch's end"):
        Trainer(tiny_cfg(epochs=None, steps=30, horizons=[[0, 40], [12, 30]]), tmp_path, device="cpu",
                dataset_obj=synthetic(), progress=False)
    check_horizons([[0, 40], [16, 30]], 8)


def test_resume_takes_a_config_one_replan_behind_but_refuses_an_edited_plan(tmp_path, monkeypatch, capsys):
    """config.json is written after last.npz: a run killed in between leaves it one re-plan behind,
    which --resume takes; a plan edited by hand (here the budget and a recorded horizon) is refused."""
    data, cfg = synthetic(), tiny_cfg(epochs=None, time_budget=BUDGET)
    t = fake_timed_trainer(tmp_path, monkeypatch, cfg, FakeClock(), data, after_plan=2.0)
    t.fit()
    path = tmp_path / "config.json"
    written = json.loads(path.read_text())
    behind = json.loads(json.dumps(written))
    behind["plan"]["horizons"].pop()
    behind["plan"]["replans"].pop()
    behind["plan"]["steps"] = behind["plan"]["horizons"][-1][1]
    path.write_text(json.dumps(behind))
    Trainer(cfg, tmp_path, device="cpu", dataset_obj=data, progress=False).resume()
    edited = json.loads(json.dumps(written))
    edited["plan"]["budget_s"] = 99.0
    edited["plan"]["horizons"][1][1] += 5
    path.write_text(json.dumps(edited))
    with pytest.raises(ValueError) as e:
        Trainer(cfg, tmp_path, device="cpu", dataset_obj=data, progress=False).resume()
    assert "plan.budget_s: config.json 99.0, checkpoint 12.0" in str(e.value)
    assert "plan.horizons: config.json" in str(e.value)


def test_a_checkpoint_from_before_replanning_is_followed_as_recorded(tmp_path, monkeypatch):
    """A last.npz without the budget's seconds used (written before re-planning): --resume follows its
    plan as it is, with no re-plan (it cannot know how much of the budget is left)."""
    data, cfg = synthetic(), tiny_cfg(epochs=None, time_budget=BUDGET)
    cut = fake_timed_trainer(tmp_path, monkeypatch, cfg, FakeClock(), data)
    real_step = cut.train_step

    def step_then_ctrl_c(*a, **k):
        if cut.plan is not None and cut.global_step == 3:
            raise KeyboardInterrupt
        return real_step(*a, **k)

    cut.train_step = step_then_ctrl_c
    with pytest.raises(KeyboardInterrupt):
        cut.fit()
    with np.load(tmp_path / "last.npz", allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays["meta_json"]))
    del meta["budget_used_s"]
    meta["plan"] = {k: v for k, v in meta["plan"].items() if k not in ("horizons", "replans")}
    arrays["meta_json"] = np.array(json.dumps(meta))
    np.savez(tmp_path / "last.npz", **arrays)
    (tmp_path / "config.json").unlink()
    r = fake_timed_trainer(tmp_path, monkeypatch, cfg, FakeClock(), data, slow=3.0).resume()
    r.fit()
    assert r.plan.replans == [] and r.plan.horizons == [[0, meta["plan"]["steps"]]]
    assert r.global_step == meta["plan"]["steps"]


def test_the_command_line_replays_the_plan_a_run_followed(tmp_path, monkeypatch, capsys):
    """A budgeted smoke run (simulated clock, 2x slower after its calibration), then ``train --steps``
    with the plan its done line would print: the same parameters, bit for bit."""
    import minivit.train.trainer
    from minivit.storage.checkpoint import load_checkpoint
    from minivit.train.recipes import recipe

    data = synthetic()
    t = fake_timed_trainer(tmp_path / "a", monkeypatch, recipe("smoke", time_budget=6.0, subset=128), FakeClock(),
                           data, after_plan=2.0)
    t.fit()
    option = steps_option(t.plan.horizons)
    assert "@" in option
    real = minivit.train.trainer.prepare_data
    monkeypatch.setattr(minivit.train.trainer, "Trainer",      # the CLI builds it with this data
                        functools.partial(minivit.train.trainer.Trainer, prepare_data=lambda cfg, xp, data_dir=None, dataset_obj=None: real(cfg, xp, None, data)))
    monkeypatch.setenv("MINIVIT_DEVICE", "cpu")
    capsys.readouterr()
    assert cli.main(["train", "--preset", "smoke", "--subset", "128", "--steps", option,
                     "--out", str(tmp_path / "b")]) == 0
    assert f"replay its plan with --steps {option}" in capsys.readouterr().out
    params, _, meta = load_checkpoint(tmp_path / "b" / "last.npz")
    ours = params_of(t)
    assert meta["plan"]["horizons"] == t.plan.horizons and all(np.array_equal(ours[k], params[k]) for k in ours)
