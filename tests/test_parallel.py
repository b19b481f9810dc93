"""Data parallelism over CPU threads (minivit/fast/parallel.py): same gradients, deterministic, resumable."""
import numpy as np
import pytest

from minivit.layers import cross_entropy_backward, cross_entropy_forward
from minivit.model import ViT, ViTConfig
from minivit.fast.parallel import DataParallel
from minivit.train.trainer import Trainer
from test_train import params_of, synthetic, tiny_cfg


def randomized_model(dtype=np.float64, **kw):
    cfg = ViTConfig.preset("tiny", image_size=16, patch_size=4, num_classes=5, **kw)
    model = ViT(cfg, seed=0, dtype=dtype)
    rng = np.random.default_rng(1)
    for name, p in model.named_parameters():     # non-zero head, so every gradient is non-trivial
        p.value = (rng.standard_normal(p.value.shape) * 0.3).astype(dtype)
    return model


@pytest.mark.parametrize("threads, batch", [(2, 8), (3, 7)])
def test_sharded_gradients_equal_the_whole_batch(threads, batch):
    model = randomized_model()
    model.train()
    rng = np.random.default_rng(2)
    x = rng.standard_normal((batch, 16, 16, 3))
    y = rng.integers(0, 5, batch)
    logits = model.forward(x)
    loss, cache = cross_entropy_forward(logits, y, 0.1)
    model.backward(cross_entropy_backward(cache))
    expected = {n: p.grad.copy() for n, p in model.named_parameters()}

    dp = DataParallel(model, threads)
    loss2, logits2 = dp.forward_backward(x, y, 0.1)
    assert loss2 == pytest.approx(loss, rel=1e-12)
    np.testing.assert_allclose(logits2, logits, rtol=1e-12, atol=1e-12)
    for n, p in model.named_parameters():
        np.testing.assert_allclose(p.grad, expected[n], rtol=1e-10, atol=1e-12, err_msg=n)
    model.eval()
    np.testing.assert_allclose(dp.forward(x), model.forward(x), rtol=1e-12, atol=1e-12)
    dp.close()


def test_replicas_follow_parameter_updates_and_reloads():
    model = randomized_model()
    dp = DataParallel(model, 2)
    x = np.random.default_rng(3).standard_normal((4, 16, 16, 3))
    model.eval()
    model.load_state_dict({k: v * 0.5 for k, v in model.state_dict().items()})   # replaces the arrays
    np.testing.assert_allclose(dp.forward(x), model.forward(x), rtol=1e-12)
    dp.close()


def test_threaded_training_is_deterministic_and_resumes_exactly(tmp_path):
    data = synthetic()
    runs = []
    for name in ("a", "b"):
        t = Trainer(tiny_cfg(threads=2), tmp_path / name, device="cpu", dataset_obj=data, progress=False)
        t.fit()
        runs.append(params_of(t))
    for k in runs[0]:
        np.testing.assert_array_equal(runs[0][k], runs[1][k], err_msg=k)

    cut = Trainer(tiny_cfg(threads=2), tmp_path / "cut", device="cpu", dataset_obj=data, progress=False)
    real_step, calls = cut.train_step, {"n": 0}

    def step_then_ctrl_c(*a, **k):
        calls["n"] += 1
        if calls["n"] == 11:
            raise KeyboardInterrupt
        return real_step(*a, **k)

    cut.train_step = step_then_ctrl_c
    with pytest.raises(KeyboardInterrupt):
        cut.fit()
    resumed = Trainer(tiny_cfg(threads=2), tmp_path / "cut", device="cpu", dataset_obj=data, progress=False).resume()
    resumed.fit()
    for k, v in params_of(resumed).items():
        np.testing.assert_array_equal(v, runs[0][k], err_msg=k)


def test_threaded_and_single_threaded_training_agree_closely(tmp_path):
    data = synthetic()
    one = Trainer(tiny_cfg(epochs=1, augment={}, model={**tiny_cfg().model, "dropout": 0.0, "drop_path": 0.0}),
                  tmp_path / "one", device="cpu", dataset_obj=data, progress=False)
    two = Trainer(tiny_cfg(epochs=1, threads=2, augment={}, model={**tiny_cfg().model, "dropout": 0.0, "drop_path": 0.0}),
                  tmp_path / "two", device="cpu", dataset_obj=data, progress=False)
    one.fit()
    two.fit()
    a, b = params_of(one), params_of(two)
    for k in a:   # float32: the shards' sums are added in another order, nothing else differs
        np.testing.assert_allclose(a[k], b[k], rtol=1e-3, atol=1e-4, err_msg=k)


def test_needs_two_threads():
    with pytest.raises(ValueError, match="at least 2"):
        DataParallel(randomized_model(), 1)


def _blas_threads():
    from threadpoolctl import threadpool_info

    return max(i["num_threads"] for i in threadpool_info() if i.get("user_api") == "blas")


@pytest.mark.parametrize("method", ["forward", "forward_backward"])
def test_blas_stays_single_threaded_until_every_shard_is_done(method):
    """The BLAS thread count is process-wide. Limiting it inside each shard thread was a race:
    the shard that finished first restored the old count while the other was still computing
    (two shards then ran two BLAS threads each on two cores: 1.8x slower for the cifar preset).
    Here shard 1 checks the count only after shard 0 has returned."""
    pytest.importorskip("threadpoolctl")
    from threadpoolctl import threadpool_limits

    import threading

    model = randomized_model()
    with threadpool_limits(limits=2, user_api="blas"):
        if _blas_threads() < 2:
            pytest.skip("this BLAS cannot run two threads")
        dp = DataParallel(model, 2)
        shard0_done, seen = threading.Event(), {}
        for i, replica in enumerate(dp.replicas):
            def forward(x, rng=None, i=i):
                if i == 1:
                    assert shard0_done.wait(10)
                    seen["blas"] = _blas_threads()
                return np.zeros((len(x), 5))
            replica.forward = forward
            def backward(dlogits, replica=replica):
                for p in replica.parameters():
                    p.grad = np.zeros_like(p.value)
            replica.backward = backward
        # shard 0 signals when its thread's work has returned (pool.map runs it before shard 1 checks)
        original_submit = dp.pool.submit

        def submit(fn, *args):
            future = original_submit(fn, *args)
            if args == (0,):
                future.add_done_callback(lambda f: shard0_done.set())
            return future
        dp.pool.submit = submit
        x, y = np.zeros((4, 16, 16, 3)), np.zeros(4, dtype=int)
        dp.forward(x) if method == "forward" else dp.forward_backward(x, y)
        dp.close()
        assert seen["blas"] == 1, f"shard 1 ran with {seen['blas']} BLAS threads after shard 0 finished"
        assert _blas_threads() == 2                  # and the count is restored afterwards
