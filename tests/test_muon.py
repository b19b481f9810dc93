"""Muon (minivit/optim/muon.py): the Newton-Schulz iteration against the same polynomial applied to the
singular values through an SVD (float64), what the usual quintic coefficients converge to (not
U V^T), the convergent cubic, the update rule, the AdamW part, and the state restored bit-exactly
from a checkpoint."""
import math

import numpy as np
import pytest

from minivit.storage.checkpoint import load_checkpoint, save_checkpoint
from minivit.layers.loss import cross_entropy_backward, cross_entropy_forward
from minivit.model import ViT, ViTConfig
from minivit.optim.muon import CUBIC, QUINTIC, Muon, newton_schulz
from minivit.optim import AdamW

SMALL = dict(image_size=16, patch_size=4, num_classes=5, dim=16, depth=2, num_heads=2, mlp_dim=32)


def poly(coeffs, s):
    a, b, c = coeffs
    return a * s + b * s ** 3 + c * s ** 5


def svd_reference(g, steps, coeffs, eps=1e-7):
    """U p^steps(S / (||g||_F + eps)) V^T: the polynomial applied to the singular values."""
    u, s, vt = np.linalg.svd(g, full_matrices=False)
    s = s / (np.linalg.norm(g) + eps)
    for _ in range(steps):
        s = poly(coeffs, s)
    return (u * s) @ vt


@pytest.mark.parametrize("shape", [(6, 9), (9, 6), (7, 7)])
@pytest.mark.parametrize("coeffs", [QUINTIC, CUBIC, (2.0, -1.5, 0.5)])
@pytest.mark.parametrize("steps", [1, 5])
def test_iteration_is_the_polynomial_on_the_singular_values(shape, coeffs, steps):
    g = np.random.default_rng(sum(shape)).standard_normal(shape)
    out = newton_schulz(g, steps, coeffs)
    assert out.shape == shape and out.dtype == np.float64
    assert np.abs(out - svd_reference(g, steps, coeffs)).max() < 1e-5
    assert np.abs(out - svd_reference(g, steps, coeffs)).max() < 1e-11       # in fact to round-off


def test_a_wrong_polynomial_is_caught():
    """The comparison can fail: the iteration with the quintic is not the cubic's polynomial."""
    g = np.random.default_rng(0).standard_normal((6, 9))
    assert np.abs(newton_schulz(g, 5, QUINTIC) - svd_reference(g, 5, CUBIC)).max() > 1e-2


def test_quintic_does_not_converge_to_uv():
    """Jordan's quintic: p(1) = 0.701, so 1 is not a fixed point. Iterated, the singular values settle
    in the band [m, p(m)] = [0.6818, 1.1344], m = p's local minimum value (at s* = 1.0501), which p maps
    onto itself, and keep moving there."""
    a, b, c = QUINTIC
    assert poly(QUINTIC, 1.0) == pytest.approx(0.701)
    s_star = np.sqrt((-3 * b + np.sqrt(9 * b * b - 20 * a * c)) / (10 * c))       # p'(s*) = 0, s* > 1
    lo = poly(QUINTIC, s_star)
    hi = poly(QUINTIC, lo)
    assert (s_star, lo, hi) == (pytest.approx(1.0501, abs=1e-4), pytest.approx(0.6818, abs=1e-4),
                                pytest.approx(1.1344, abs=1e-4))
    grid = np.linspace(lo, hi, 100001)
    image = poly(QUINTIC, grid)
    assert image.min() >= lo - 1e-12 and image.max() <= hi + 1e-12                # an invariant band
    rng = np.random.default_rng(1)
    u, _ = np.linalg.qr(rng.standard_normal((8, 8)))
    v, _ = np.linalg.qr(rng.standard_normal((12, 8)))
    s = np.geomspace(1.0, 0.02, 8)                                            # condition number 50
    g = (u * s) @ v.T
    uv = u @ v.T
    for steps in (5, 50, 51):
        out = newton_schulz(g, steps, QUINTIC)
        sv = np.linalg.svd(out, compute_uv=False)
        assert lo - 1e-9 <= sv.min() and sv.max() <= hi + 1e-9, (steps, sv)
        assert np.linalg.norm(out - uv, 2) > 0.1                               # not U V^T
    assert np.abs(newton_schulz(g, 50, QUINTIC) - newton_schulz(g, 51, QUINTIC)).max() > 0.01   # still moving
    # ...but the singular vectors are right: the result shares U and V with g
    out = newton_schulz(g, 5, QUINTIC)
    np.testing.assert_allclose(u.T @ out @ v, np.diag(np.diag(u.T @ out @ v)), atol=1e-10)


def test_cubic_converges_to_uv():
    rng = np.random.default_rng(2)
    g = rng.standard_normal((8, 12))
    u, _, vt = np.linalg.svd(g, full_matrices=False)
    errs = [np.abs(newton_schulz(g, k, CUBIC) - u @ vt).max() for k in (3, 6, 9, 40)]
    assert errs[0] > errs[1] > errs[2] > 1e-6 and errs[3] < 1e-12, errs


def test_float32_stays_float32_and_tall_is_wide_transposed():
    g = np.random.default_rng(3).standard_normal((10, 4)).astype(np.float32)
    out = newton_schulz(g)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, newton_schulz(g.T.copy()).T)


# ------------------------------------------------------------------------------ the optimizer
def _batch(seed=0, n=8):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 16, 16, 3)).astype(np.float32), rng.integers(0, 5, n)


def _grads(model, x, y):
    loss, cache = cross_entropy_forward(model.forward(x), y)
    model.backward(cross_entropy_backward(cache))
    return loss


def test_muon_params_are_the_blocks_matrices():
    model = ViT(ViTConfig(**SMALL))
    opt = Muon(model.named_parameters())
    assert opt.muon_names == {f"blocks.{i}.{m}.weight" for i in range(2)
                              for m in ("attn.qkv", "attn.proj", "mlp.fc1", "mlp.fc2")}


def test_update_rule_and_adamw_part():
    model, ref = ViT(ViTConfig(**SMALL), seed=1), ViT(ViTConfig(**SMALL), seed=1)
    for m in (model, ref):
        m.head.weight.value[:] = np.random.default_rng(4).standard_normal(m.head.weight.shape) * 0.1
    opt = Muon(model.named_parameters(), lr=0.01, momentum=0.9, weight_decay=0.1)
    adam = AdamW([(n, p) for n, p in ref.named_parameters() if n not in opt.muon_names], lr=0.01, weight_decay=0.1)
    x, y = _batch()
    bufs = {n: np.zeros_like(p.value) for n, p in ref.named_parameters() if n in opt.muon_names}
    for _ in range(3):
        _grads(model, x, y)
        _grads(ref, x, y)
        opt.step()
        adam.step()
        for n, p in ref.named_parameters():                # Muon, by hand
            if n in bufs:
                bufs[n] = 0.9 * bufs[n] + p.grad
                o = newton_schulz(p.grad + 0.9 * bufs[n])
                p.value = p.value * (1 - 0.01 * 0.1) - 0.01 * 0.2 * math.sqrt(max(p.value.shape)) * o
    for (n, p), (_, q) in zip(model.named_parameters(), ref.named_parameters()):
        assert p.value.dtype == q.value.dtype == np.float32
        np.testing.assert_array_equal(p.value, q.value, err_msg=n)         # Muon's rule and exactly AdamW


def test_muon_trains_a_tiny_vit():
    model = ViT(ViTConfig(**SMALL), seed=0)
    opt = Muon(model.named_parameters(), lr=3e-3)
    x, y = _batch(n=16)
    losses = []
    for _ in range(25):
        losses.append(_grads(model, x, y))
        opt.step()
    assert losses[-1] < 0.5 * losses[0], losses


def test_state_restored_bit_exactly_from_a_checkpoint(tmp_path):
    x, y = _batch()

    def run(model, opt, n):
        for _ in range(n):
            _grads(model, x, y)
            opt.step()

    model = ViT(ViTConfig(**SMALL), seed=0)
    opt = Muon(model.named_parameters(), lr=3e-3)
    run(model, opt, 3)
    save_checkpoint(tmp_path / "last.npz", model, opt, meta={})
    params, optim, _ = load_checkpoint(tmp_path / "last.npz")
    assert any(k.endswith("/mom") for k in optim) and any(k.endswith("/m") for k in optim)
    model2 = ViT(ViTConfig(**SMALL), seed=5).load_state_dict(params)
    opt2 = Muon(model2.named_parameters(), lr=1.0).load_state_dict(optim)
    for name, st in opt.state.items():
        for k, v in st.items():
            assert v.dtype == opt2.state[name][k].dtype and np.array_equal(v, opt2.state[name][k])
    assert opt2.t == 3 and opt2.lr == opt.lr
    run(model, opt, 2)
    run(model2, opt2, 2)
    for (n, p), (_, q) in zip(model.named_parameters(), model2.named_parameters()):
        assert np.array_equal(p.value, q.value), n
