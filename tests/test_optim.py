"""Tests for ``minivit.optim``: AdamW and SGD against the textbook formulas and PyTorch,
the warmup-cosine schedule, gradient clipping, and optimizer state save/load."""
import math

import numpy as np
import pytest

from minivit import ops, optim
from minivit.modules import Parameter
from minivit.optim import SGD, AdamW, clip_grad_norm, global_grad_norm, warmup_cosine

STEPS = 5


def make_params(seed=0):
    """One weight matrix (decayed) and one bias (not decayed), float64."""
    rng = np.random.default_rng(seed)
    return {"w": Parameter(rng.standard_normal((3, 4)), decay=True),
            "b": Parameter(rng.standard_normal(4), decay=False)}


def grad_sequence(seed=1, steps=STEPS):
    rng = np.random.default_rng(seed)
    return [{"w": rng.standard_normal((3, 4)), "b": rng.standard_normal(4)} for _ in range(steps)]


def run(opt, params, grads):
    for g in grads:
        for name, p in params.items():
            p.grad = g[name].copy()
        opt.step()
    return {n: p.value.copy() for n, p in params.items()}


# ======================================================================================== AdamW
def adamw_reference(values, decay, grads, lr, b1, b2, eps, wd):
    """Loshchilov & Hutter's AdamW, written out: bias-corrected moments, decay applied to the weights."""
    values = {n: v.copy() for n, v in values.items()}
    m = {n: np.zeros_like(v) for n, v in values.items()}
    v2 = {n: np.zeros_like(v) for n, v in values.items()}
    for t, g in enumerate(grads, start=1):
        for n in values:
            m[n] = b1 * m[n] + (1 - b1) * g[n]
            v2[n] = b2 * v2[n] + (1 - b2) * g[n] ** 2
            m_hat = m[n] / (1 - b1 ** t)
            v_hat = v2[n] / (1 - b2 ** t)
            w = values[n]
            values[n] = w - lr * (m_hat / (np.sqrt(v_hat) + eps) + (wd * w if decay[n] else 0.0))
    return values


@pytest.mark.parametrize("wd", [0.0, 0.1])
def test_adamw_matches_textbook(wd):
    params = make_params()
    grads = grad_sequence()
    kw = dict(lr=0.01, b1=0.9, b2=0.99, eps=1e-8, wd=wd)
    expected = adamw_reference({n: p.value for n, p in params.items()}, {n: p.decay for n, p in params.items()},
                               grads, **kw)
    opt = AdamW(params.items(), lr=0.01, betas=(0.9, 0.99), eps=1e-8, weight_decay=wd)
    got = run(opt, params, grads)
    assert opt.t == STEPS
    for n in got:
        np.testing.assert_allclose(got[n], expected[n], rtol=1e-12, atol=1e-14)


def test_adamw_decay_is_decoupled_and_skips_no_decay_params():
    """With zero gradients Adam's step is 0, so only the decay acts: w *= (1 - lr*wd) on decay params."""
    params = make_params()
    w0, b0 = params["w"].value.copy(), params["b"].value.copy()
    opt = AdamW(params.items(), lr=0.1, weight_decay=0.5)
    run(opt, params, [{"w": np.zeros((3, 4)), "b": np.zeros(4)}] * 3)
    np.testing.assert_allclose(params["w"].value, w0 * (1 - 0.1 * 0.5) ** 3, rtol=1e-14)
    np.testing.assert_array_equal(params["b"].value, b0)


def test_adamw_first_step_is_lr_times_sign():
    """Bias correction: after one step m_hat = g and v_hat = g^2, so the update is ~lr * sign(g)."""
    params = make_params()
    w0 = params["w"].value.copy()
    g = grad_sequence(steps=1)
    run(AdamW(params.items(), lr=0.01, weight_decay=0.0), params, g)
    np.testing.assert_allclose(params["w"].value, w0 - 0.01 * np.sign(g[0]["w"]), rtol=1e-6)


def test_adamw_matches_torch():
    torch = pytest.importorskip("torch")
    params = make_params()
    grads = grad_sequence()
    tw = torch.tensor(params["w"].value.copy(), requires_grad=True)
    tb = torch.tensor(params["b"].value.copy(), requires_grad=True)
    topt = torch.optim.AdamW([{"params": [tw], "weight_decay": 0.1}, {"params": [tb], "weight_decay": 0.0}],
                             lr=0.01, betas=(0.9, 0.98), eps=1e-6)
    for g in grads:
        tw.grad, tb.grad = torch.tensor(g["w"]), torch.tensor(g["b"])
        topt.step()
    got = run(AdamW(params.items(), lr=0.01, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.1), params, grads)
    np.testing.assert_allclose(got["w"], tw.detach().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(got["b"], tb.detach().numpy(), rtol=1e-12, atol=1e-14)


def test_adamw_keeps_float32():
    p = Parameter(np.ones(3, np.float32))
    opt = AdamW([("p", p)], lr=0.1)
    p.grad = np.ones(3, np.float32)
    opt.step()
    assert p.value.dtype == np.float32 and opt.state["p"]["m"].dtype == np.float32


# ========================================================================================== SGD
@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_sgd_matches_textbook(momentum):
    """v = mu v + g ;  w -= lr v   (plain SGD when mu = 0)."""
    params = make_params()
    grads = grad_sequence()
    w = {n: p.value.copy() for n, p in params.items()}
    v = {n: np.zeros_like(x) for n, x in w.items()}
    for g in grads:
        for n in w:
            v[n] = momentum * v[n] + g[n]
            w[n] = w[n] - 0.05 * v[n]
    got = run(SGD(params.items(), lr=0.05, momentum=momentum), params, grads)
    for n in w:
        np.testing.assert_allclose(got[n], w[n], rtol=1e-13)


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_matches_torch(nesterov):
    torch = pytest.importorskip("torch")
    params = make_params()
    grads = grad_sequence()
    tw = torch.tensor(params["w"].value.copy(), requires_grad=True)
    tb = torch.tensor(params["b"].value.copy(), requires_grad=True)
    # minivit decays only decay=True parameters: torch's per-group weight_decay does the same
    topt = torch.optim.SGD([{"params": [tw], "weight_decay": 0.01}, {"params": [tb], "weight_decay": 0.0}],
                           lr=0.05, momentum=0.9, nesterov=nesterov)
    for g in grads:
        tw.grad, tb.grad = torch.tensor(g["w"]), torch.tensor(g["b"])
        topt.step()
    got = run(SGD(params.items(), lr=0.05, momentum=0.9, weight_decay=0.01, nesterov=nesterov), params, grads)
    np.testing.assert_allclose(got["w"], tw.detach().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(got["b"], tb.detach().numpy(), rtol=1e-12, atol=1e-14)


# ====================================================================================== schedule
def test_warmup_cosine():
    base, total, warm, lo = 0.1, 100, 10, 0.001
    lrs = [warmup_cosine(s, total, base, warm, lo) for s in range(total + 1)]
    assert 0 < lrs[0] <= base / warm + 1e-15                             # starts near 0
    assert all(a < b for a, b in zip(lrs[:warm], lrs[1:warm]))           # linear warmup, increasing
    np.testing.assert_allclose(np.diff(lrs[:warm]), base / warm, rtol=1e-12)
    assert lrs[warm - 1] == pytest.approx(base)                          # base at the end of warmup
    assert lrs[warm] == pytest.approx(base)
    after = lrs[warm:]
    assert all(a >= b for a, b in zip(after, after[1:]))                 # monotone decreasing after warmup
    assert lrs[total] == pytest.approx(lo)                               # min_lr at the end
    assert min(lrs) >= lo
    mid = warm + (total - warm) // 2
    assert lrs[mid] == pytest.approx(lo + 0.5 * (base - lo))             # cosine: halfway at the midpoint
    assert warmup_cosine(total + 50, total, base, warm, lo) == pytest.approx(lo)   # stays at min
    # no warmup: starts at base
    assert warmup_cosine(0, total, base) == pytest.approx(base)
    assert warmup_cosine(total, total, base) == pytest.approx(0.0, abs=1e-15)


# ==================================================================================== clipping
def test_clip_grad_norm():
    rng = np.random.default_rng(0)
    ps = [Parameter(np.zeros((3, 4))), Parameter(np.zeros(5))]
    grads = [rng.standard_normal((3, 4)) * 3, rng.standard_normal(5) * 3]
    for p, g in zip(ps, grads):
        p.grad = g.copy()
    expected = math.sqrt(sum(float((g ** 2).sum()) for g in grads))
    assert global_grad_norm(ps) == pytest.approx(expected, rel=1e-12)
    norm = clip_grad_norm(ps, max_norm=1.0)
    assert norm == pytest.approx(expected, rel=1e-12)                    # the norm *before* clipping
    assert global_grad_norm(ps) == pytest.approx(1.0, rel=1e-5)          # clipped to max_norm
    for p, g in zip(ps, grads):                                          # direction unchanged
        np.testing.assert_allclose(p.grad, g / expected, rtol=1e-5)
    # below the limit: untouched
    before = [p.grad.copy() for p in ps]
    assert clip_grad_norm(ps, max_norm=10.0) == pytest.approx(1.0, rel=1e-5)
    for p, b in zip(ps, before):
        np.testing.assert_array_equal(p.grad, b)


# ================================================================================ state dicts
@pytest.mark.parametrize("cls,kw", [(AdamW, dict(lr=0.01, weight_decay=0.1)), (SGD, dict(lr=0.05, momentum=0.9))],
                         ids=["AdamW", "SGD"])
def test_state_dict_round_trip_through_npz(cls, kw, tmp_path):
    grads = grad_sequence(steps=6)
    params = make_params()
    opt = cls(params.items(), **kw)
    run(opt, params, grads[:3])
    np.savez(tmp_path / "opt.npz", **opt.state_dict())
    saved_values = {n: p.value.copy() for n, p in params.items()}
    expected = run(opt, params, grads[3:])                               # the uninterrupted run

    params2 = make_params(seed=5)
    for n, p in params2.items():
        p.value = saved_values[n].copy()
    opt2 = cls(params2.items(), **{**kw, "lr": 123.0})
    with np.load(tmp_path / "opt.npz") as f:
        opt2.load_state_dict(dict(f))
    assert opt2.t == 3 and opt2.lr == kw["lr"]
    got = run(opt2, params2, grads[3:])
    for n in expected:
        np.testing.assert_array_equal(got[n], expected[n])


@pytest.mark.parametrize("cls,kw", [(AdamW, dict(lr=0.01, weight_decay=0.1)), (SGD, dict(lr=0.05, momentum=0.9))],
                         ids=["AdamW", "SGD"])
def test_state_dict_is_a_snapshot(cls, kw):
    """In memory, without a file: the state dict taken after 3 steps must not change when the
    optimizer goes on, and loading it must not tie two optimizers' buffers together."""
    grads = grad_sequence(steps=6)
    params = make_params()
    opt = cls(params.items(), **kw)
    run(opt, params, grads[:3])
    sd = opt.state_dict()
    frozen = {k: np.array(v, copy=True) for k, v in sd.items()}
    saved_values = {n: p.value.copy() for n, p in params.items()}
    expected = run(opt, params, grads[3:])
    for k in frozen:
        np.testing.assert_array_equal(sd[k], frozen[k], err_msg=f"state_dict()[{k!r}] changed after more steps")

    params2 = make_params()
    for n, p in params2.items():
        p.value = saved_values[n].copy()
    opt2 = cls(params2.items(), **kw).load_state_dict(sd)
    got = run(opt2, params2, grads[3:])
    for n in expected:
        np.testing.assert_array_equal(got[n], expected[n])
    for k in frozen:
        np.testing.assert_array_equal(sd[k], frozen[k], err_msg=f"load_state_dict ties {k!r} to the dict")


def test_load_state_dict_errors():
    params = make_params()
    opt = AdamW(params.items())
    run(opt, params, grad_sequence(steps=1))
    sd = opt.state_dict()
    with pytest.raises(KeyError, match=r"unknown parameter 'nope'"):
        AdamW(make_params().items()).load_state_dict({**sd, "nope/m": np.zeros(2)})
    with pytest.raises(ValueError, match=r"w/m: shape \(2,\), parameter has \(3, 4\)"):
        AdamW(make_params().items()).load_state_dict({**sd, "w/m": np.zeros(2)})


# ======================================================================================= errors
@pytest.mark.parametrize("cls", [AdamW, SGD])
def test_step_without_grads(cls):
    params = make_params()
    opt = cls(params.items())
    with pytest.raises(RuntimeError, match=r"no gradient for \['w', 'b'\].*backward"):
        opt.step()
    params["w"].grad = np.zeros((3, 4))
    with pytest.raises(RuntimeError, match=r"no gradient for \['b'\]"):
        opt.step()
    assert opt.t == 0


def test_updates_go_through_ops_F():
    """AdamW.step / SGD.step call ops.F.adamw_update / sgd_update, so a swapped-in version is used."""
    calls = []

    def counting(name):
        ref = getattr(optim, name)

        def wrapper(*args, **kwargs):
            calls.append(name)
            return ref(*args, **kwargs)
        return wrapper

    grads = grad_sequence(steps=2)
    reference = make_params()
    expected = run(AdamW(reference.items(), lr=0.01), reference, grads)
    params, params_sgd = make_params(), make_params()
    with ops.use({"adamw_update": counting("adamw_update"), "sgd_update": counting("sgd_update")}):
        got = run(AdamW(params.items(), lr=0.01), params, grads)
        run(SGD(params_sgd.items(), lr=0.01), params_sgd, grads[:1])
    assert calls == ["adamw_update"] * 4 + ["sgd_update"] * 2            # once per parameter per step
    for n in got:
        np.testing.assert_array_equal(got[n], expected[n])
    assert ops.F.adamw_update is optim.adamw_update


def test_no_parameters():
    with pytest.raises(ValueError, match=r"no parameters"):
        AdamW([])


def test_warmup_cosine_with_no_decay_steps_is_min_lr_once_the_warmup_ends():
    """total_steps == warmup_steps: the end of the schedule is the end of the warmup, so from step
    total_steps on the rate is min_lr (the docstring's contract; it used to give base_lr at that step)."""
    from minivit.optim import warmup_cosine
    assert warmup_cosine(2, 3, 1.0, 3, 0.1) == 1.0
    assert [warmup_cosine(s, 3, 1.0, 3, 0.1) for s in (3, 4)] == [0.1, 0.1]
    assert warmup_cosine(5, 3, 1.0, 5, 0.1) == 0.1        # total < warmup: past the end too
