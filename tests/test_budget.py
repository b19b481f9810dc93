"""--time-budget and --steps (minivit/train/budget.py, minivit/train/planned_run.py): parsing, calibration, the plan,
a whole run on a simulated clock (its length, the schedule's end, bit-exact --resume and --steps replay).
The real-clock run of the CLI is a benchmark (benchmarks/budget_realtime.py), not a test: a wall-clock
bound on a shared machine fails whenever other work starts."""
import json
from fractions import Fraction
import math
import subprocess
import sys

import numpy as np
import pytest

import minivit.plots
import minivit.train.planned_run
import minivit.train.trainer
from minivit.cli.main import main
from minivit.train.budget import Calibration, Plan, calibrate, parse_duration, plan_for_budget, process_age
from minivit.storage.checkpoint import read_meta
from minivit.optim import warmup_cosine
from minivit.train.recipes import RECIPES, recipe
from minivit.train.replan import horizon_at, parse_steps, steps_option
from minivit.train.trainer import TrainConfig, Trainer
from test_train import synthetic, tiny_cfg


# ------------------------------------------------------------------------------------ parsing
@pytest.mark.parametrize("text, seconds", [("90s", 90), ("60m", 3600), ("2h", 7200), ("1.5h", 5400),
                                           ("1h30m", 5400), ("2m30s", 150), (" 20S ", 20)])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["60", "m", "", "-5m", "0s", "5x", "1m1h", "1e3s", "inf", "5 m", "1h1h"])
def test_parse_duration_refuses(text):
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@pytest.mark.parametrize("args, message", [
    (["--time-budget", "60"], "expected a duration like 90s"),
    (["--time-budget", "0m"], "expected a positive duration"),
    (["--time-budget", "5m", "--epochs", "3"], "not allowed with argument"),
    (["--steps", "100", "--time-budget", "5m"], "not allowed with argument"),
    (["--steps", "100", "--epochs", "2"], "not allowed with argument"),
    (["--steps", "0"], "expected a positive integer"),
])
def test_cli_refuses_bad_lengths_with_one_error_line(args, message, capsys):
    assert main(["train", "--preset", "smoke", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0]


def test_recipe_lengths_exclude_each_other_and_replace_a_default_budget(monkeypatch):
    with pytest.raises(ValueError, match="exclude each other"):
        recipe("smoke", epochs=2, time_budget=60.0)
    monkeypatch.setitem(RECIPES, "hour", RECIPES["smoke"].__class__(epochs=None, time_budget=3600.0))
    assert (recipe("hour").epochs, recipe("hour").time_budget) == (None, 3600.0)     # the recipe's default budget
    assert (recipe("hour", epochs=3).epochs, recipe("hour", epochs=3).time_budget) == (3, None)
    assert (recipe("hour", steps=7).steps, recipe("hour", steps=7).time_budget) == (7, None)
    assert (recipe("smoke", time_budget=90.0).epochs, recipe("smoke").epochs) == (None, 2)


def test_process_age_is_this_process():
    age = process_age()
    if age is None:
        pytest.skip("no /proc/self/stat here")
    out = subprocess.run([sys.executable, "-c", "import time; time.sleep(0.5); from minivit.train.budget import "
                          "process_age; print(process_age())"], capture_output=True, text=True, check=True)
    assert 0.45 <= float(out.stdout) < 30


# --------------------------------------------------------------------------- calibrate and plan
class FakeClock:
    """A simulated clock: time moves only when the test says so."""

    def __init__(self, t=1000.0):
        self.t = t

    def __call__(self):
        return self.t

    def advance(self, seconds):
        self.t += seconds


def test_calibrate_measures_each_kind_and_syncs_only_between_rounds():
    clock, log = FakeClock(), []
    cost = {"full": 0.2, "small": 0.05}

    def step(kind, i):
        log.append((kind, i))
        clock.advance(cost[kind])

    syncs = []
    cal = calibrate(step, [("small", 0.4), ("full", 0.6)], lambda n: clock.advance(0.001 * n), 100,
                    lambda: clock.advance(0.3), clock=clock, sync=lambda: syncs.append(len(log)), seconds=2.0)
    assert cal.step_s == pytest.approx(cost) and cal.eval_s_per_image == pytest.approx(0.001)
    assert cal.commit_s == pytest.approx(0.3)
    small = [i for k, i in log if k == "small"]
    assert small == list(range(len(small))) and 0.05 * (len(small) - 2) >= 1.0     # 2 warm-up steps, then >= 1 s
    # one sync after the warm-up and one after each round of 1, 2, 4 ... steps; none inside a round
    rounds = [2, 3, 5, 9, 17, 33]
    assert syncs[:len(rounds)] == rounds[:len(syncs[:len(rounds)])]


def test_plan_takes_the_most_steps_that_fit_evaluations_included():
    cal = Calibration(step_s={"full": 0.5, "small": 0.25}, eval_s_per_image=0.01, commit_s=1.0)
    kinds = [("small", 0.5), ("full", 0.5)]                 # mean step 0.375 s
    plan = plan_for_budget(600.0, 30.0, cal, steps_per_epoch=100, eval_images=500, kinds=kinds)

    def cost(s):
        return 30.0 + s * 0.375 + math.ceil(s / 100) * (500 * 0.01 + 1.0) + 0.03 * 600

    assert cost(plan.steps) <= 600.0 < cost(plan.steps + 1)
    assert plan.evaluations == math.ceil(plan.steps / 100) and plan.mean_step_s == pytest.approx(0.375)
    assert plan.to_dict() == Plan.from_dict(json.loads(json.dumps(plan.to_dict()))).to_dict()
    assert plan.describe().startswith(f"2.67 steps/s: {plan.steps:,} steps = {plan.steps / 100:.1f} epochs")
    with pytest.raises(ValueError, match="leaves no time to train"):
        plan_for_budget(20.0, 19.0, cal, 100, 500)


def test_plan_counts_each_evaluation_given_as_a_function_of_the_steps():
    cal = Calibration(step_s={"full": 0.5}, eval_s_per_image=0.01, commit_s=1.0)

    def evals(s):                                   # 100 images at each epoch's end, 1,000 at the last step
        return [100] * (math.ceil(s / 100) - 1) + [1000]

    plan = plan_for_budget(600.0, 30.0, cal, steps_per_epoch=100, eval_images=evals)

    def cost(s):
        return 30.0 + s * 0.5 + sum(n * 0.01 + 1.0 for n in evals(s)) + 0.03 * 600

    assert cost(plan.steps) <= 600.0 < cost(plan.steps + 1)
    assert plan.evaluations == len(evals(plan.steps)) and plan.eval_s == pytest.approx(cost(plan.steps) - 30.0 -
                                                                                      plan.steps * 0.5 - 18.0)


# ------------------------------------------------------------------- a run on a simulated clock
STEP_S, EVAL_S_PER_IMAGE, WRITE_S, LOADING_S = 0.05, 0.001, 0.005, 2.0


def fake_timed_trainer(tmp_path, monkeypatch, cfg, clock, data, slow=1.0, device="cpu", after_plan=1.0):
    """A Trainer whose steps, evaluations and checkpoint writes take simulated time on ``clock``, all
    ``slow`` times longer, and ``after_plan`` times longer again once the plan is made (a machine that
    turns slower or faster after the calibration); its data loading took LOADING_S. Records the
    learning rate of every real step in ``.lrs``."""
    real_eval = minivit.train.trainer.evaluate
    t = None

    def factor():
        return slow * (after_plan if t is not None and t.plan is not None else 1.0)

    def evaluate(model, x, *a, **k):
        clock.advance(factor() * EVAL_S_PER_IMAGE * len(x))
        return real_eval(model, x, *a, **k)

    monkeypatch.setattr(minivit.plots, "plot_curves", lambda *a, **k: None)
    t = Trainer(cfg, tmp_path, device=device, dataset_obj=data, progress=False, clock=clock,
                started=clock() - LOADING_S, evaluate=evaluate)
    real_step, real_write = t.train_step, t.run.write
    t.lrs = []

    def train_step(*a, **k):
        clock.advance(factor() * STEP_S)
        out = real_step(*a, **k)
        t.lrs.append(t.opt.lr)
        return out

    def write(*a):
        clock.advance(factor() * WRITE_S)
        return real_write(*a)

    t.train_step, t.run.write = train_step, write
    return t


def test_budgeted_run_ends_within_the_budget_and_its_schedule_at_its_last_step(tmp_path, monkeypatch, capsys):
    clock, budget = FakeClock(), 12.0
    t = fake_timed_trainer(tmp_path, monkeypatch, tiny_cfg(epochs=None, time_budget=budget), clock, synthetic())
    t.fit()
    plan, S = t.plan, t.plan.steps
    assert 0.97 * budget <= clock() - t.started <= budget          # the whole run, loading included
    assert t.global_step == S == t.total_steps and t.history[-1]["step"] == S
    assert t.lrs[len(t.lrs) - S:] == approx_lrs(planned_lrs(t))                # after the calibration's steps
    assert warmup_cosine(S, S, t.cfg.lr, t.planner.warmup_steps, t.cfg.min_lr) == t.cfg.min_lr   # the cosine's end
    assert 0 < t.planner.warmup_steps < S
    assert [r["step"] for r in plan.replans] == [r["step"] for r in t.history[:-1]]      # each evaluation but the last
    assert plan.step_s["full"] == pytest.approx(STEP_S) and plan.spent_s > LOADING_S
    assert plan.evaluations == len(t.history) == math.ceil(S / t.steps_per_epoch)
    assert json.loads((tmp_path / "config.json").read_text())["plan"] == plan.to_dict()
    assert read_meta(tmp_path / "last.npz")["plan"] == plan.to_dict()
    out = capsys.readouterr().out
    assert f"steps/s: {plan.horizons[0][1]:,} steps = " in out and "the whole run: " in out and "budget" in out


def test_progress_bar_total_is_the_plan(tmp_path, monkeypatch):
    import tqdm.auto

    from test_progress import RecordingBar

    RecordingBar.made = []
    monkeypatch.setattr(tqdm.auto, "tqdm", RecordingBar)
    t = fake_timed_trainer(tmp_path, monkeypatch, tiny_cfg(epochs=None, time_budget=6.0), FakeClock(), synthetic())
    t.progress = True
    t.fit()
    assert [(b.total, b.n) for b in RecordingBar.made] == [(t.plan.steps, t.plan.steps)]


def params_of(trainer):
    return {k: v.copy() for k, v in trainer.model.state_dict().items()}


def planned_lrs(t):
    """The learning rate of each of the run's steps under its plan followed (minivit/train/replan.py),
    computed here another way: the fraction of the first plan's schedule still ahead shrinks evenly
    over the steps to the horizon in force, and a re-plan spreads what is left over its new horizon;
    the warmup is the first plan's. In exact fractions; compare with pytest.approx (the run's arithmetic
    rounds)."""
    (_, first), *later = t.plan.horizons
    pieces, ahead, (g, h) = [], Fraction(1), (0, first)     # (from step, horizon, fraction ahead at its start)
    for g_next, h_next in later:
        pieces.append((g, h, ahead))
        ahead *= (h - g_next) / (h - g)
        g, h = g_next, h_next
    pieces.append((g, h, ahead))

    def position(i):
        g, h, ahead = [p for p in pieces if p[0] <= i][-1]
        return float(first * (1 - ahead * max(0, h - i) / (h - g))) if h > g else first    # exact, then rounded

    return [warmup_cosine(position(i), first, t.cfg.lr, t.planner.warmup_steps, t.cfg.min_lr)
            for i in range(t.global_step)]


def approx_lrs(lrs):
    """Learning rates from :func:`planned_lrs` as a pytest.approx: equal up to the run's rounding."""
    return pytest.approx(lrs, rel=1e-12, abs=1e-15)


def replay_cfg(plan, **options):
    """The configuration of ``--steps`` replaying a plan followed (as ``--steps H0,H1@g1,...``)."""
    steps, horizons = parse_steps(steps_option(plan.horizons))
    return tiny_cfg(epochs=None, steps=steps, horizons=horizons, **options)


@pytest.mark.parametrize("options", [{}, {"ema_decay": 0.9, "flip_tta": True}, {"optimizer": "muon"}],
                         ids=["plain", "ema+tta", "muon"])
def test_steps_replays_a_plan_bit_for_bit(tmp_path, monkeypatch, options, capsys):
    if any(k not in TrainConfig.__dataclass_fields__ for k in options):
        pytest.skip(f"this TrainConfig has no {sorted(options)}")
    data = synthetic()
    t = fake_timed_trainer(tmp_path / "a", monkeypatch, tiny_cfg(epochs=None, time_budget=6.0, **options),
                           FakeClock(), data)
    t.fit()
    replay = Trainer(replay_cfg(t.plan, **options), tmp_path / "b", device="cpu", dataset_obj=data, progress=False)
    capsys.readouterr()
    replay.fit()
    assert f"plan: {t.plan.steps:,} steps = " in capsys.readouterr().out
    assert "(given by --steps)" in replay.plan.describe()
    a, b = params_of(t), params_of(replay)
    assert all(np.array_equal(a[k], b[k]) for k in a)         # calibration left no trace in the numbers
    if getattr(t, "ema", None) is not None:                    # nor in the EMA of the weights
        ea, eb = t.ema.state_dict(), replay.ema.state_dict()
        assert all(np.array_equal(ea[k], eb[k]) for k in ea)
    assert [r["test_acc"] for r in t.history] == [r["test_acc"] for r in replay.history]
    assert replay.plan.source == "steps" and replay.plan.horizons == t.plan.horizons


def test_resume_continues_the_plan_followed_without_calibrating(tmp_path, monkeypatch):
    """Ctrl-C half way, then --resume on a machine three times slower: no new calibration; the
    recorded re-plans are kept and the run goes on re-planning from the budget's seconds the checkpoint
    records as used, so the two processes together end within the budget; config.json and the
    checkpoint hold the plan followed, and a --steps replay of it reproduces the resumed run bit for bit."""
    data, cfg, budget = synthetic(), tiny_cfg(epochs=None, time_budget=12.0), 12.0
    cut = fake_timed_trainer(tmp_path / "cut", monkeypatch, cfg, FakeClock(), data)
    real_step = cut.train_step

    def step_then_ctrl_c(*a, **k):
        if cut.plan is not None and cut.global_step == 4 * cut.steps_per_epoch + 3:
            raise KeyboardInterrupt
        return real_step(*a, **k)

    cut.train_step = step_then_ctrl_c
    with pytest.raises(KeyboardInterrupt):
        cut.fit()
    saved = read_meta(tmp_path / "cut" / "last.npz")
    assert len(saved["plan"]["replans"]) == 4 and saved["budget_used_s"] == pytest.approx(cut.planner.budget_used(), abs=0.01)

    def no_calibration(*a, **k):
        raise AssertionError("--resume calibrated again")

    monkeypatch.setattr(minivit.train.planned_run, "calibrate", no_calibration)
    clock = FakeClock(5000.0)
    r = fake_timed_trainer(tmp_path / "cut", monkeypatch, cfg, clock, data, slow=3.0).resume()
    assert r.plan.to_dict() == saved["plan"] and r.total_steps == horizon_at(r.plan.horizons, r.global_step)
    r.fit()
    assert r.plan.horizons[:len(saved["plan"]["horizons"])] == saved["plan"]["horizons"]
    assert r.plan.steps < saved["plan"]["steps"]                     # three times slower: fewer steps
    assert 0.97 * budget <= r.planner.budget_used() <= budget                 # both processes, by the checkpoint's record
    assert r.global_step == r.plan.steps and r.lrs[-(r.global_step - 4 * 8 - 3):] == approx_lrs(planned_lrs(r)[4 * 8 + 3:])
    assert json.loads((tmp_path / "cut" / "config.json").read_text())["plan"] == r.plan.to_dict()
    assert read_meta(tmp_path / "cut" / "last.npz")["plan"] == r.plan.to_dict()
    replay = Trainer(replay_cfg(r.plan), tmp_path / "replay", device="cpu", dataset_obj=data, progress=False)
    replay.fit()
    a, b = params_of(r), params_of(replay)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert [x["test_acc"] for x in r.history] == [x["test_acc"] for x in replay.history]


def test_budget_on_the_cupy_simulation_syncs_only_between_calibration_rounds(tmp_path, monkeypatch):
    simcupy = pytest.importorskip("minivit.simcupy")
    syncs = simcupy.syncs
    data = synthetic()
    t = fake_timed_trainer(tmp_path, monkeypatch, tiny_cfg(epochs=None, time_budget=6.0), FakeClock(), data,
                           device="sim")
    real_step, calibration, between, last = t.train_step, [], [], [0]

    def step(*a, **k):
        before = log.count
        if t.plan is None:
            between.append(before - last[0])
        out = real_step(*a, **k)
        if t.plan is None:
            calibration.append(log.count - before)
            last[0] = log.count
        return out

    t.train_step = step
    with syncs.counting() as log:
        t.fit()
    assert calibration and calibration == [0] * len(calibration)      # no calibration step waits for the device
    # syncs between steps only at the rounds' ends: after the 2 warm-up steps, then after 1, 2, 4 ... steps
    assert {i for i, n in enumerate(between) if n and i > 0} <= {2, 3, 5, 9, 17, 33, 65, 129}, between
    assert t.global_step == t.plan.steps and t.history[-1]["step"] == t.plan.steps
    replay = Trainer(replay_cfg(t.plan), tmp_path / "b", device="sim", dataset_obj=data, progress=False)
    replay.fit()
    a, b = params_of(t), params_of(replay)
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_a_schedule_of_two_step_kinds_is_calibrated_and_planned_per_kind(tmp_path, monkeypatch):
    clock = FakeClock()
    t = fake_timed_trainer(tmp_path, monkeypatch, tiny_cfg(epochs=None, time_budget=12.0), clock, synthetic())
    kinds_run = []

    def calibration_step(kind, i, order):               # a "small" step costs a fifth of a full one
        kinds_run.append(kind)
        clock.advance(-0.8 * STEP_S if kind == "small" else 0.0)
        return t.train_step(0, i % t.steps_per_epoch, order)

    t.options.step_kinds = lambda: [("small", 0.5), ("full", 0.5)]
    t.calibration_step = calibration_step
    t.fit()
    assert t.plan.kinds == [["small", 0.5], ["full", 0.5]] and set(kinds_run) == {"small", "full"}
    assert t.plan.step_s == pytest.approx({"small": 0.2 * STEP_S, "full": STEP_S})
    assert t.plan.mean_step_s == pytest.approx(0.6 * STEP_S)
    assert read_meta(tmp_path / "last.npz")["plan"]["kinds"] == [["small", 0.5], ["full", 0.5]]


@pytest.mark.parametrize("after_plan", [1.0, 2.0], ids=["steady", "2x slower after calibration"])
def test_progressive_resizing_in_a_budget_is_calibrated_per_size(tmp_path, monkeypatch, after_plan):
    """A 24 px step costs (24/32)^2 of a 32 px one here: the calibration times both sizes, the plan
    weighs them by the stages' lengths, and the run still ends within the budget at its last step.
    The re-plans measure the speed against what the calibration predicts for the sizes run, so the
    cheap first stage does not stretch the horizon (on a steady machine it moves by a few steps)."""
    from test_trainer_options import record_sizes, resize_cfg

    clock, budget = FakeClock(), 12.0
    t = fake_timed_trainer(tmp_path, monkeypatch, resize_cfg(epochs=None, time_budget=budget), clock, synthetic(),
                           after_plan=after_plan)
    resize_batch = t.options.resize_batch

    def timed_resize(x, *a):                              # the step's cost depends on its size
        y = resize_batch(x, *a)
        clock.advance(-STEP_S * (1 - (y.shape[1] / 32) ** 2) * (after_plan if t.plan is not None else 1.0))
        return y

    t.options.resize_batch = timed_resize
    sizes = record_sizes(t)
    t.fit()
    plan, S = t.plan, t.plan.steps
    assert plan.kinds == [["24px", 0.5], ["32px", 0.5]]
    assert plan.step_s == pytest.approx({"24px": STEP_S * (24 / 32) ** 2, "32px": STEP_S})
    assert plan.mean_step_s == pytest.approx(STEP_S * (0.5 * (24 / 32) ** 2 + 0.5))
    assert 0.98 * budget <= clock() - t.started <= budget
    assert t.global_step == S and t.lrs[-S:] == approx_lrs(planned_lrs(t))
    first = plan.horizons[0][1]
    expected = first / after_plan                          # the speed halves: about half the steps
    assert all(abs(h - expected) <= 0.06 * expected for _, h in plan.horizons[1:]), plan.horizons
    assert all(r["speed"] == pytest.approx(after_plan) for r in plan.replans)
    run_sizes = sizes[-S:]                               # after the calibration's steps: each at its horizon
    assert run_sizes == [t.options.resize.size_at(i, horizon_at(plan.horizons, i)) for i in range(S)]
    assert {24, 32} == set(run_sizes)
    assert {24, 32} <= set(sizes[:-S])                   # the calibration ran both sizes


@pytest.mark.parametrize("length, message", [(dict(epochs=None), "number of epochs"),
                                             (dict(time_budget=5.0, steps=3), "exclude each other"),
                                             (dict(steps=0), "step count"), (dict(time_budget=-1.0), "time budget")])
def test_a_run_has_one_valid_length(length, message):
    with pytest.raises(ValueError, match=message):
        Trainer(tiny_cfg(**length), "/tmp/unused", device="cpu", dataset_obj=synthetic(), progress=False)


def test_a_budget_too_short_says_so(tmp_path, monkeypatch):
    clock = FakeClock()
    t = fake_timed_trainer(tmp_path, monkeypatch, tiny_cfg(epochs=None, time_budget=3.0), clock, synthetic())
    with pytest.raises(ValueError, match="leaves no time to train"):
        t.fit()
    assert not (tmp_path / "last.npz").exists()


def test_a_budget_plans_the_final_evaluation_on_the_whole_test_set(tmp_path, monkeypatch):
    """final_test: evaluations on a 16-image subset, the last on all 64 images; the plan counts
    each at its size and the run still ends within the budget."""
    clock, budget = FakeClock(), 12.0
    cfg = tiny_cfg(epochs=None, time_budget=budget, test_subset=16, final_test=True)
    t = fake_timed_trainer(tmp_path, monkeypatch, cfg, clock, synthetic(n_test=64))
    t.fit()
    S, E = t.plan.steps, t.plan.evaluations
    sizes = [r["eval_images"] for r in t.history]
    assert sizes == [16] * (E - 1) + [64]
    first = [16] * (math.ceil(t.plan.horizons[0][1] / 8) - 1) + [64]      # the first plan's evaluations
    assert t.plan.eval_s == pytest.approx(sum(n * t.plan.eval_s_per_image + t.plan.commit_s for n in first))
    assert 0.97 * budget <= clock() - t.started <= budget and t.global_step == S


@pytest.mark.parametrize("name, budget", [("cpu", 3600.0), ("gpu", 600.0)])
def test_the_recipes_carry_their_budget(name, budget):
    cfg = recipe(name)
    assert (cfg.epochs, cfg.time_budget, cfg.final_test) == (None, budget, True)


def test_the_gpu_recipe_runs_its_budget_at_a_small_size_on_the_cupy_simulation(tmp_path, monkeypatch):
    """The gpu recipe (RandAugment, mixup/cutmix, drop-path, final_test), its model shrunk and its
    budget simulated: planned, run to its last step, the final evaluation on the whole test set."""
    pytest.importorskip("minivit.simcupy")
    small = {**recipe("gpu").model, "dim": 16, "depth": 2, "num_heads": 2, "mlp_dim": 32, "num_classes": 4}
    cfg = recipe("gpu", model=small, batch_size=32, test_subset=16, time_budget=20.0, eval_batch_size=64)
    clock = FakeClock()
    t = fake_timed_trainer(tmp_path, monkeypatch, cfg, clock, synthetic(n_test=64), device="sim")
    t.fit()
    assert t.global_step == t.plan.steps == t.total_steps and 0.97 * 20.0 <= clock() - t.started <= 20.0
    assert [r["eval_images"] for r in t.history][-1] == 64 and t.history[0]["eval_images"] == 16
    assert all(math.isfinite(r["train_loss"]) for r in t.history)
