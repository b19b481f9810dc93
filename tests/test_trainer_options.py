"""The Trainer's opt-in pieces (minivit/train/options.py): with all off, the run is the plain loop
bit for bit; an EMA leaves the training weights' path untouched, is what is evaluated (and what
best.npz / eval give), and survives --resume bit-exactly; flip TTA adds its numbers next to the
unchanged plain ones; Muon trains and keeps its momentum in last.npz."""
import functools
import json

import numpy as np
import pytest

import minivit.train.finetune  # noqa: F401 (it subclasses Trainer: imported before the CLI's Trainer is replaced)

from minivit.storage.checkpoint import CheckpointError, extra_arrays, load_checkpoint, model_from_checkpoint
from minivit.train.ema import EMA
from minivit.model import ViTConfig
from minivit.train.recipes import RECIPES, TrainConfig
from minivit.train.trainer import Trainer, evaluate
from minivit.train.options import Options
from tests.test_train import params_of, synthetic, tiny_cfg

NUMBERS = ("epoch", "step", "train_loss", "train_acc", "test_loss", "test_acc", "lr")


def run(tmp_path, name, data, **kw):
    t = Trainer(tiny_cfg(epochs=2, **kw), tmp_path / name, device="cpu", dataset_obj=data, progress=False)
    t.fit()
    return t


def numbers(history):
    return [{k: r[k] for k in NUMBERS} for r in history]


def test_all_off_by_default():
    c = TrainConfig()
    assert (c.ema_decay, c.flip_tta, c.optimizer, c.resize) == (0.0, False, "adamw", None)
    for name, r in RECIPES.items():
        # the cpu recipe takes the two levers that won its budget experiments (docs/budget_training.md)
        optimizer, token_drop = ("muon", 0.5) if name == "cpu" else ("adamw", 0.0)
        assert (r.ema_decay, r.flip_tta, r.optimizer, r.resize) == (0.0, False, optimizer, None), name
        assert r.model.get("token_drop", 0.0) == token_drop and not r.model.get("flexible_resolution"), name


def test_default_path_is_the_plain_loop_bit_for_bit(tmp_path, monkeypatch):
    data = synthetic()
    default = run(tmp_path, "default", data)
    assert default.ema is None and type(default.opt).__name__ == "AdamW"

    def plain_evaluate(self, evaluate_fn, model, x, y, aug, num_classes, batch_size, batch_transform, forward):
        loss, acc, _ = evaluate(model, x, y, aug, num_classes, batch_size, batch_transform, forward=forward)
        return loss, acc, {}           # the call train.py made before the options

    for hook, stand_in in (("after_optimizer_step", lambda self, model: None),
                           ("extra_state", lambda self: {}), ("evaluate", plain_evaluate),
                           ("resize_batch", lambda self, x, *a: x),
                           ("note", staticmethod(lambda extra: ""))):
        monkeypatch.setattr(Options, hook, stand_in)
    plain = run(tmp_path, "plain", data)
    a, b = params_of(default), params_of(plain)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert numbers(default.history) == numbers(plain.history)
    assert set(default.history[0]) == set(plain.history[0])                # no extra columns
    ka = set(np.load(tmp_path / "default" / "last.npz").files)
    assert ka == set(np.load(tmp_path / "plain" / "last.npz").files) and not any(k.startswith("ema/") for k in ka)


def test_ema_is_evaluated_and_leaves_the_training_path_alone(tmp_path):
    data = synthetic()
    default = run(tmp_path, "default", data)
    t = run(tmp_path, "ema", data, ema_decay=0.9)
    a, b = params_of(default), params_of(t)
    assert all(np.array_equal(a[k], b[k]) for k in a)                      # the raw weights: the same path
    assert [r["train_loss"] for r in t.history] == [r["train_loss"] for r in default.history]
    assert t.ema.updates == t.global_step == 16 and all(r["eval_weights"] == "ema" for r in t.history)
    with t.ema.swapped(t.model):
        loss, acc, _ = evaluate(t.model, t.data["x_test"], t.data["y_test"], t.aug, 4)
    assert (t.history[-1]["test_loss"], t.history[-1]["test_acc"]) == (loss, acc)
    assert t.history[-1]["test_loss"] != default.history[-1]["test_loss"]
    state = extra_arrays(tmp_path / "ema" / "last.npz", EMA.PREFIX)
    assert int(state["updates"]) == 16
    assert all(np.array_equal(state[k], v) for k, v in t.ema.state_dict().items())
    model, _ = model_from_checkpoint(tmp_path / "ema" / "last.npz")          # eval: the EMA weights
    assert all(np.array_equal(p.value, t.ema.shadow[n]) for n, p in model.named_parameters())


def test_ema_survives_resume_bit_for_bit(tmp_path):
    data = synthetic()
    full = run(tmp_path, "full", data, ema_decay=0.9)
    t = Trainer(tiny_cfg(epochs=2, ema_decay=0.9), tmp_path / "cut", device="cpu", dataset_obj=data, progress=False)
    real_step, calls = t.train_step, {"n": 0}

    def step_then_ctrl_c(*a, **k):
        calls["n"] += 1
        if calls["n"] == 12:                   # in the middle of epoch 2
            raise KeyboardInterrupt
        return real_step(*a, **k)

    t.train_step = step_then_ctrl_c
    with pytest.raises(KeyboardInterrupt):
        t.fit()
    resumed = Trainer(tiny_cfg(epochs=2, ema_decay=0.9), tmp_path / "cut", device="cpu", dataset_obj=data,
                      progress=False).resume()
    assert resumed.ema.updates == 11
    resumed.fit()
    assert all(np.array_equal(full.ema.shadow[k], resumed.ema.shadow[k]) for k in full.ema.shadow)
    assert numbers(full.history) == numbers(resumed.history)
    # a last.npz without the EMA's arrays cannot resume an EMA run
    plain = run(tmp_path, "plain", data)
    with pytest.raises(Exception, match="no EMA state|different configuration"):
        Trainer(tiny_cfg(epochs=2, ema_decay=0.9), plain.out, device="cpu", dataset_obj=data,
                progress=False).options.load(plain.out / "last.npz")


def test_flip_tta_adds_its_numbers_next_to_the_plain_ones(tmp_path, capsys):
    data = synthetic()
    default = run(tmp_path, "default", data)
    t = run(tmp_path, "tta", data, flip_tta=True)
    assert numbers(t.history) == numbers(default.history)                  # plain numbers unchanged
    assert all(0 <= r["test_acc_tta"] <= 1 and np.isfinite(r["test_loss_tta"]) for r in t.history)
    assert "with flip TTA" in capsys.readouterr().out


def test_muon_trains_and_keeps_its_momentum(tmp_path):
    data = synthetic()
    t = run(tmp_path, "muon", data, optimizer="muon")
    assert type(t.opt).__name__ == "Muon" and np.isfinite(t.history[-1]["train_loss"])
    _, optim, _ = load_checkpoint(tmp_path / "muon" / "last.npz")
    assert "blocks.0.attn.qkv.weight/mom" in optim and "head.weight/m" in optim


@pytest.mark.parametrize("kw, match", [(dict(ema_decay=1.0), "ema_decay"), (dict(optimizer="sgd"), "optimizer")])
def test_bad_options(kw, match):
    with pytest.raises(ValueError, match=match):
        Trainer(tiny_cfg(**kw), "/tmp/unused", device="cpu", dataset_obj=synthetic(), progress=False)




def test_a_run_begun_before_the_new_fields_resumes(tmp_path):
    """A last.npz whose configuration lacks the fields added since (the options here, the model's
    token_drop / flexible_resolution) resumes: they take their defaults."""
    data = synthetic()
    model = ViTConfig.from_dict(tiny_cfg().model).to_dict()          # written out in full, as recipes do
    assert "token_drop" in model
    cfg = tiny_cfg(epochs=2, model=model)
    t = Trainer(cfg, tmp_path, device="cpu", dataset_obj=data, progress=False)
    t.cfg = t.planner.cfg = tiny_cfg(epochs=1, model=model)       # stop after one epoch ...
    t.fit()
    path = tmp_path / "last.npz"
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays["meta_json"]))
    old = meta["train_config"]
    for k in ("ema_decay", "flip_tta", "optimizer"):
        del old[k]
    for k in ("token_drop", "flexible_resolution"):
        del old["model"][k]
    old["epochs"] = 2                             # ... of the 2-epoch run it records
    arrays["meta_json"] = np.array(json.dumps(meta))
    np.savez(path, **arrays)
    config = json.loads((tmp_path / "config.json").read_text())    # as the older version wrote it
    config["train"] = old
    (tmp_path / "config.json").write_text(json.dumps(config))
    resumed = Trainer(cfg, tmp_path, device="cpu", dataset_obj=data, progress=False).resume()
    assert resumed.epoch == 1
    with pytest.raises(CheckpointError, match="different configuration"):      # a real difference still counts
        Trainer(tiny_cfg(epochs=2, model=model, ema_decay=0.5), tmp_path, device="cpu", dataset_obj=data, progress=False).resume()


# --------------------------------------------------------------------------- progressive resizing
def resize_cfg(**kw):
    model = {**tiny_cfg().model, "flexible_resolution": True}
    return tiny_cfg(**{"epochs": 2, "model": model, "resize": [[0.0, 24], [0.5, 32]], **kw})


def record_sizes(trainer):
    """The image size of every training forward (evaluation ones are skipped)."""
    sizes, forward = [], trainer.model.forward

    def recording(x, rng=None):
        if trainer.model.training:
            sizes.append(x.shape[1])
        return forward(x, rng)

    trainer.model.forward = recording
    return sizes


def test_progressive_resizing_trains_at_each_steps_size(tmp_path):
    data = synthetic()
    t = Trainer(resize_cfg(), tmp_path, device="cpu", dataset_obj=data, progress=False)
    sizes = record_sizes(t)
    t.fit()
    assert sizes == [24] * 8 + [32] * 8                      # 16 steps: the first half at 24 px
    assert "pos_resize" not in t.model.cache and np.isfinite(t.history[-1]["test_loss"])
    assert t.model.pos_embed.value.shape == (1, 17, 16)      # one table, at the full grid


def test_progressive_resizing_resumes_bit_for_bit(tmp_path):
    data = synthetic()
    full = Trainer(resize_cfg(), tmp_path / "full", device="cpu", dataset_obj=data, progress=False)
    full.fit()
    t = Trainer(resize_cfg(), tmp_path / "cut", device="cpu", dataset_obj=data, progress=False)
    real_step, calls = t.train_step, {"n": 0}

    def step_then_ctrl_c(*a, **k):
        calls["n"] += 1
        if calls["n"] == 6:                    # in the 24 px stage
            raise KeyboardInterrupt
        return real_step(*a, **k)

    t.train_step = step_then_ctrl_c
    with pytest.raises(KeyboardInterrupt):
        t.fit()
    resumed = Trainer(resize_cfg(), tmp_path / "cut", device="cpu", dataset_obj=data, progress=False).resume()
    sizes = record_sizes(resumed)
    resumed.fit()
    assert sizes == [24] * 3 + [32] * 8
    a, b = params_of(full), params_of(resumed)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert numbers(full.history) == numbers(resumed.history)


@pytest.mark.parametrize("kw, match", [
    (dict(model_flexible=False), "flexible_resolution"),
    (dict(resize=[[0.0, 16], [0.5, 24]]), "last resize stage"),
    (dict(resize=[[0.0, 26], [0.5, 32]]), "patch size")])
def test_progressive_resizing_refuses(kw, match):
    cfg = resize_cfg()
    if kw.pop("model_flexible", True) is False:
        cfg.model = {**cfg.model, "flexible_resolution": False}
    for k, v in kw.items():
        setattr(cfg, k, v)
    with pytest.raises(ValueError, match=match):
        Trainer(cfg, "/tmp/unused", device="cpu", dataset_obj=synthetic(), progress=False)


# ------------------------------------------------------------------------------ training mode
def test_training_steps_run_in_training_mode(tmp_path):
    """The Trainer's steps run the model in training mode (dropout, drop-path and token dropping on),
    its evaluations in eval mode. (The parent commit never switched training mode on: dropout 0.1
    and drop-path 0.1 gave the same weights as none.)"""
    data = synthetic()
    model = {**tiny_cfg().model, "token_drop": 0.5}
    t = Trainer(tiny_cfg(epochs=1, model=model), tmp_path / "drop", device="cpu", dataset_obj=data, progress=False)
    kept, forward = [], t.model.forward

    def recording(x, rng=None):
        out = forward(x, rng)
        kept.append((t.model.training, t.model.cache["token_drop"][0].shape[1] if "token_drop" in t.model.cache
                     else None))
        return out

    t.model.forward = recording
    t.fit()
    assert kept[:8] == [(True, 8)] * 8                 # 8 steps, each keeping 8 of the 16 patch tokens
    assert kept[8:] and all(k == (False, None) for k in kept[8:])   # the evaluation: all tokens
    no_reg = {**tiny_cfg().model, "dropout": 0.0, "drop_path": 0.0}
    a = params_of(run(tmp_path, "reg", data))                       # dropout 0.1, drop-path 0.1
    b = params_of(run(tmp_path, "none", data, model=no_reg))
    assert any(not np.array_equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("threads", [1, 2])
def test_training_mode_changes_nothing_without_dropout(tmp_path, threads):
    """Without dropout, drop-path or token dropping (the cpu and smoke recipes) training mode gives
    the numbers the eval-mode steps gave, bit for bit (plain and data-parallel)."""
    data = synthetic()
    model = {**tiny_cfg().model, "dropout": 0.0, "drop_path": 0.0}
    params = []
    for mode in (True, False):
        t = Trainer(tiny_cfg(epochs=1, model=model, threads=threads), tmp_path / str(mode), device="cpu",
                    dataset_obj=data, progress=False)
        t.model.train(mode)
        t.fit()
        params.append(params_of(t))
    assert all(np.array_equal(params[0][k], params[1][k]) for k in params[0])


# ------------------------------------------------------------------------------ the command line
@pytest.mark.parametrize("args, message", [
    (["--resize", "0.5:24,1:32"], "first stage starting at 0.0"),
    (["--resize", "0:24;0.5:32"], "START:SIZE pairs"),
    (["--ema-decay", "1"], "expected a number in [0, 1)"),
    (["--token-drop", "-0.1"], "expected a number in [0, 1)"),
    (["--optimizer", "sgd"], "invalid choice"),
    (["--resize", "0:16,0.5:24"], "last resize stage must be the model's size 32"),
    (["--resize", "0:16,0.5:32", "--time-budget", "5m", "--epochs", "2"], "not allowed with argument"),
])
def test_cli_refuses_bad_options_with_one_error_line(args, message, capsys, monkeypatch, tmp_path):
    from minivit.cli.main import main

    monkeypatch.setattr("minivit.train.trainer.Trainer",      # the CLI builds it with this data
                        functools.partial(Trainer, prepare_data=lambda *a, **k: _synthetic_data()))
    assert main(["train", "--preset", "smoke", "--out", str(tmp_path / "run"), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err


def _synthetic_data():
    d = synthetic(k=10)
    return dict(x_train=d.x_train, y_train=d.y_train, x_test=d.x_test, y_test=d.y_test, classes=d.classes,
                num_classes=10, test_total=len(d.x_test))


def test_cli_flags_switch_the_pieces_on(tmp_path, monkeypatch):
    from minivit.cli.main import main

    monkeypatch.setattr("minivit.train.trainer.Trainer",      # the CLI builds it with this data
                        functools.partial(Trainer, prepare_data=lambda *a, **k: _synthetic_data()))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    out = tmp_path / "run"
    assert main(["train", "--preset", "smoke", "--steps", "8", "--batch-size", "32", "--ema-decay", "0.9",
                 "--flip-tta", "--optimizer", "muon", "--token-drop", "0.5", "--resize", "0:24,0.5:32",
                 "--out", str(out)]) == 0
    cfg = json.loads((out / "config.json").read_text())["train"]
    assert (cfg["ema_decay"], cfg["flip_tta"], cfg["optimizer"], cfg["resize"]) == (0.9, True, "muon", [[0.0, 24], [0.5, 32]])
    assert (cfg["model"]["token_drop"], cfg["model"]["flexible_resolution"]) == (0.5, True)
    _, optim, meta = load_checkpoint(out / "last.npz")
    assert int(extra_arrays(out / "last.npz", EMA.PREFIX)["updates"]) == 8
    assert any(k.endswith("/mom") for k in optim) and "test_acc_tta" in meta["history"][-1]
