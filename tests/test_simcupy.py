"""The CuPy simulation (minivit/simcupy) catches what would fail or stall on a GPU, and minivit's
device code paths run on it. All marked gpu_sim (``python -m pytest -m gpu_sim``)."""
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from minivit import layers as L
from minivit import simcupy as sim
from minivit.backend import get_array_module, get_xp, to_numpy
from minivit.simcupy import syncs
from minivit.simcupy.names import NDARRAY, VERSIONS
from minivit.train.trainer import Trainer, evaluate
from test_train import synthetic, tiny_cfg

pytestmark = pytest.mark.gpu_sim


def test_names_come_from_both_recorded_cupy_versions():
    assert [v.split(".")[0] for v in VERSIONS] == ["13", "14"]
    assert sim.exp and sim.random.default_rng and sim.linalg.norm
    for numpy_only in ("errstate", "frompyfunc", "einsum_path", "nditer"):
        with pytest.raises(AttributeError, match="lacks it"):
            getattr(sim, numpy_only)
    x = sim.zeros(3)
    assert "resize" not in NDARRAY
    with pytest.raises(AttributeError):
        x.resize(4)


def test_arrays_refuse_numpy_conversion_and_mixing_but_transfer_explicitly():
    host = np.arange(4.0)
    x = sim.asarray(host)
    for implicit in (lambda: np.asarray(x), lambda: np.array(x), lambda: x + host, lambda: host * x,
                     lambda: sim.concatenate([x, host]), lambda: np.add.at(host, [0], x)):
        with pytest.raises(TypeError):
            implicit()
    y = x * np.float32(2) + 1                          # NumPy and Python scalars are fine
    assert type(x.sum()) is sim.ndarray and x.sum().shape == ()      # reductions stay on the device
    np.testing.assert_array_equal(sim.asnumpy(y), host * 2 + 1)
    np.testing.assert_array_equal(to_numpy(np.exp(x)), np.exp(host))   # NumPy's ufuncs dispatch, as in CuPy
    with pytest.raises(TypeError, match="where"):
        sim.add(x, 1.0, where=x > 1)
    with pytest.raises(TypeError, match="where"):
        x.sum(where=x > 1)
    with pytest.raises(TypeError, match="where"):
        sim.max(x, where=x > 1, initial=0.0)


def test_the_simulated_array_has_only_cupy_attributes():
    import json
    from pathlib import Path

    data = json.loads((Path(sim.__file__).with_name("cupy_names.json")).read_text())["versions"]
    dunders = set.intersection(*(set(v["cupy.ndarray dunders"]) for v in data.values()))
    own = {n for n in dir(sim.ndarray) if not n.startswith("_")}
    assert own <= NDARRAY, own - NDARRAY
    python_only = {"__dict__", "__weakref__", "__slots__", "__module__", "__getattr__", "__init_subclass__",
                   "__subclasshook__", "__class__", "__doc__", "__getstate__"}
    extra = {n for n in dir(sim.ndarray) if n.startswith("__")} - dunders - python_only
    assert not extra, extra


def test_synchronizations_are_counted():
    x = sim.asarray(np.array([0.0, 1.0, 2.0]))
    with syncs.counting() as log:
        float(x.sum()), int(x[0]), bool(x[1]), x.item(0), x.tolist(), repr(x), sim.asnumpy(x)
        x[x > 0], sim.nonzero(x), sim.unique(x), sim.argwhere(x), sim.where(x > 0)
        sim.cuda.Device().synchronize()
        sim.cuda.runtime.deviceSynchronize()
        _ = x * 2 + sim.where(x > 0, x, 0.0)            # no sync: arithmetic and three-argument where
    assert log.kinds() == ["float()", "int()", "bool()", ".item()", ".tolist()", "repr()", ".get()",
                           "boolean-mask indexing", "nonzero()", "unique()", "argwhere()", "where()",
                           "Device.synchronize()", "runtime.deviceSynchronize()"]
    with syncs.forbidden(), pytest.raises(syncs.SyncError, match="float"):
        float(x[0])


# ----------------------------------------------------------------- planted mistakes are reported
def test_planted_host_array_in_a_device_computation_is_reported():
    rng = np.random.default_rng(0)
    x = sim.asarray(rng.standard_normal((2, 5, 4)).astype(np.float32))
    w, b = rng.standard_normal((4, 3)).astype(np.float32), np.zeros(3, np.float32)
    with pytest.raises(TypeError, match="Unsupported type"):
        L.linear_forward(x, w, b)                     # w, b left on the host: a bug CuPy would raise on
    y, _ = L.linear_forward(x, sim.asarray(w), sim.asarray(b))
    assert type(y) is sim.ndarray


def test_planted_numpy_only_call_is_reported():
    def my_gelu(x):                                   # np.frompyfunc has no CuPy twin
        import math

        return np.frompyfunc(math.erf, 1, 1)(x)

    with pytest.raises(TypeError):
        my_gelu(sim.ones(3))

    def my_norm(x):
        xp = get_array_module(x)
        with xp.errstate(over="ignore"):              # NumPy has it, CuPy does not
            return xp.sqrt((x * x).sum())

    with pytest.raises(AttributeError, match="errstate"):
        my_norm(sim.ones(3))


def test_planted_per_step_float_loss_is_reported():
    """A training loop that reads float(loss) every step: one synchronization per step."""
    rng = np.random.default_rng(0)
    logits = sim.asarray(rng.standard_normal((8, 4)))
    labels = sim.asarray(rng.integers(0, 4, 8))
    with syncs.counting() as log:
        total = 0.0
        for _ in range(5):
            loss, _ = L.cross_entropy_forward(logits, labels)
            total += float(loss)                      # the planted mistake
    assert log.kinds() == ["float()"] * 5 and log.events[0][1].startswith("test_simcupy.py")


# -------------------------------------------------------------- the sync-free training step
def test_training_steps_between_two_reads_make_no_synchronization(tmp_path):
    t = Trainer(tiny_cfg(epochs=1), tmp_path, device="sim", dataset_obj=synthetic(), progress=False)
    now = [0.0]
    t.tally.clock = lambda: now[0]                    # the test decides when a read is due
    marks = []
    real_step, real_read = t.train_step, t.read_device_sums

    def step(*a, **k):
        before = log.count
        out = real_step(*a, **k)
        now[0] += 0.3                                 # each step "takes" 0.3 s: a read every 4 steps
        marks.append(("step", log.count - before))
        return out

    def read():
        before = log.count
        real_read()
        marks.append(("read", log.count - before))

    t.train_step, t.read_device_sums = step, read
    with syncs.counting() as log:
        t.fit()
    steps = [n for kind, n in marks if kind == "step"]
    reads = [n for kind, n in marks if kind == "read" and n]
    assert len(steps) == 8 and steps == [0] * 8, marks        # no step waits for the device
    assert reads == [1, 1], marks                             # one sync per read: after steps 4 and 8
    assert [k for k, _ in marks][:6] == ["step"] * 4 + ["read", "step"]
    row = t.history[-1]
    assert row["train_loss"] > 0 and 0 <= row["train_acc"] <= 1 and row["images_per_s"] == pytest.approx(256 / 2.4)


def test_sim_training_matches_numpy_and_stops_on_nan(tmp_path):
    data = synthetic()
    cpu = Trainer(tiny_cfg(epochs=1), tmp_path / "cpu", device="cpu", dataset_obj=data, progress=False)
    dev = Trainer(tiny_cfg(epochs=1), tmp_path / "sim", device="sim", dataset_obj=data, progress=False)
    assert dev.xp is sim and get_xp("sim") is sim
    cpu.fit(), dev.fit()
    # The dropout draws differ (CuPy's generator is not NumPy's), so the runs agree only roughly.
    assert abs(cpu.history[0]["train_loss"] - dev.history[0]["train_loss"]) < 0.2
    loss, acc, preds = evaluate(dev.model, dev.data["x_test"], dev.data["y_test"], dev.aug, 4)
    assert isinstance(loss, float) and isinstance(acc, float) and type(preds) is sim.ndarray
    bad = Trainer(tiny_cfg(epochs=1), tmp_path / "nan", device="sim", dataset_obj=data, progress=False)
    bad.model.head.weight.value[0, 0] = np.nan        # NaN logits: a NaN loss, seen at the first read
    from minivit.train.runstate import TrainingDiverged

    with pytest.raises(TrainingDiverged, match=r"(?i)training loss became nan .*between steps 1 and 8"):
        bad.fit()
    assert not (tmp_path / "nan" / "last.npz").exists()


def test_labels_are_checked_once_when_the_data_is_loaded(tmp_path):
    data = synthetic()
    data.y_train[3] = 7                               # 4 classes
    with pytest.raises(ValueError, match=r"training labels must be in \[0, 3\]"):
        Trainer(tiny_cfg(epochs=1), tmp_path, device="sim", dataset_obj=data, progress=False)


# ----------------------------------------------------------------- other device code paths
def test_augmentation_inspection_and_finetuning_run_on_the_simulation(tmp_path):
    from minivit.data.augment import AugmentConfig, augment_batch
    from minivit import inspect as I

    x = sim.asarray(synthetic().x_train[:16])
    y = sim.asarray(np.arange(16) % 4)
    cfg = AugmentConfig(crop_padding=4, flip=True, randaugment_n=2, randaugment_m=9, mixup_alpha=0.8,
                        cutmix_alpha=1.0, mix_prob=1.0, erasing_prob=0.5)
    with syncs.counting() as log:
        xb, yb = augment_batch(x, y, np.random.default_rng(0), cfg, 4, train=True)
    assert type(xb) is sim.ndarray and yb.shape == (16, 4) and log.count == 0, log

    t = Trainer(tiny_cfg(epochs=1), tmp_path / "run", device="sim", dataset_obj=synthetic(), progress=False)
    t.fit()
    res = I.inspect_checkpoint(tmp_path / "run" / "last.npz", tmp_path / "inspect", device="sim",
                               dataset_obj=synthetic(), num_images=2, distance_images=4, batch_size=4)
    assert res
    from minivit.train.finetune import FINETUNE_RECIPES, finetune

    tuner = finetune(tmp_path / "run" / "last.npz", preset=next(iter(FINETUNE_RECIPES)), out=tmp_path / "ft",
                     device="sim", dataset_obj=synthetic(), progress=False, epochs=1, batch_size=64, subset=None,
                     test_subset=None, image_size=40)           # resized: position embeddings and batches
    assert tuner.history and tuner.xp is sim and tuner.model.config.image_size == 40
    with syncs.counting() as log:
        tuner.train_step(1, 0, tuner.epoch_order(1))
    assert log.count == 0, log


def test_minivit_runs_with_cupy_hidden(tmp_path):
    """CuPy blocked from importing: minivit imports, picks NumPy, trains a step; the simulation still works."""
    code = textwrap.dedent("""
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name == "cupy" or name.startswith(("cupy.", "cupyx", "cupy_backends")):
                    raise ImportError("cupy is hidden")
        sys.meta_path.insert(0, Block())
        import numpy as np
        import minivit
        from minivit.backend import gpu_available, get_xp, resolve_device
        from minivit.model import ViT, ViTConfig
        assert not gpu_available() and resolve_device("auto") == "cpu" and get_xp() is np
        for xp in (np, get_xp("sim")):
            m = ViT(ViTConfig.from_dict(dict(image_size=8, patch_size=4, num_classes=3, dim=8, depth=1,
                                             num_heads=2, mlp_dim=16)), xp=xp)
            out = m.forward(xp.asarray(np.zeros((2, 8, 8, 3), np.float32)))
            assert out.shape == (2, 3)
        assert "cupy" not in sys.modules
        print("ok")
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env={"PATH": "/usr/bin:/bin", "MINIVIT_DEVICE": "auto", "PYTHONPATH": ":".join(sys.path)})
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


def test_full_integer_indexing_gives_a_view_as_in_cupy():
    x = sim.zeros((2, 3))
    v = x[1, 2]
    v += 5.0                                          # NumPy's x[1, 2] is a copied scalar; CuPy's a 0-d view
    assert to_numpy(x)[1, 2] == 5.0 and type(v) is sim.ndarray


def test_fast_impl_gradcheck_and_bench_run_on_the_simulation(tmp_path):
    from minivit import fast
    from minivit.fast.bench import bench
    from minivit.gradcheck import run_all

    t = Trainer(tiny_cfg(epochs=1), tmp_path, device="sim", dataset_obj=synthetic(), progress=False,
                impl=fast.functions())
    with syncs.counting() as log:
        t.train_step(0, 0, t.epoch_order(0))
    assert log.count == 0, log
    assert run_all(verbose=False, device="sim")
    assert bench(preset="tiny", batch_size=4, device="sim", steps=1, warmup=1)["train_images_per_s"] > 0


def test_impl_exercises_trains_on_the_simulation(tmp_path):
    """--impl exercises: a learner's topic (here the loss, minivit's reference code typed in) on the device."""
    from minivit.grading import stubs
    from minivit.grading import exercises_impl
    from reference_solutions import write_reference

    stubs.write_stubs(tmp_path / "ex")
    write_reference(tmp_path / "ex", ["loss"])
    impl = exercises_impl(tmp_path / "ex", progress=False)
    assert impl.yours == ["loss"]
    t = Trainer(tiny_cfg(epochs=1), tmp_path / "run", device="sim", dataset_obj=synthetic(), progress=False,
                impl=impl)
    assert t.fit() and t.history[0]["train_loss"] > 0


def test_clip_grad_norm_on_the_device_matches_numpy_without_a_sync():
    from minivit.modules import Parameter
    from minivit.optim import clip_grad_norm

    rng = np.random.default_rng(0)
    grads = [rng.standard_normal((3, 4)) * 3, rng.standard_normal(5) * 3]
    for max_norm in (1.0, 100.0):                     # clipped, and left alone
        host = [Parameter(np.zeros(g.shape)) for g in grads]
        dev = [Parameter(sim.zeros(g.shape)) for g in grads]
        for h, d, g in zip(host, dev, grads):
            h.grad, d.grad = g.copy(), sim.asarray(g)
        with syncs.counting() as log:
            norm = clip_grad_norm(dev, max_norm)
        assert log.count == 0, log
        assert float(norm) == pytest.approx(clip_grad_norm(host, max_norm), rel=1e-12)
        for h, d in zip(host, dev):
            np.testing.assert_allclose(to_numpy(d.grad), h.grad, rtol=1e-12)


def test_augment_batch_on_the_device_equals_numpy():
    """Same host-drawn parameters: the device pipeline computes exactly what the NumPy one does."""
    from minivit.data.augment import AugmentConfig, augment_batch

    x, y = synthetic().x_train[:12], np.arange(12) % 4
    cfg = AugmentConfig(crop_padding=4, flip=True, randaugment_n=2, randaugment_m=9, mixup_alpha=0.8,
                        cutmix_alpha=1.0, mix_prob=1.0, erasing_prob=0.5)
    for seed in (0, 1):
        a = augment_batch(x, y, np.random.default_rng(seed), cfg, 4, train=True)
        b = augment_batch(sim.asarray(x), sim.asarray(y), np.random.default_rng(seed), cfg, 4, train=True)
        for u, v in zip(a, b):
            np.testing.assert_array_equal(u, to_numpy(v))
