"""Token dropping (PatchDropout, minivit/layers/token_drop.py) and the ViT's ``token_drop`` option:
forward against a direct gather, backward against finite differences (float64, a fixed kept index
set), and the whole tiny ViT's gradient check with token dropping on."""
import numpy as np
import pytest

from minivit.backend import make_rng
from minivit.gradcheck import MODEL_TOL, check_pair, numerical_gradient, rel_error
from minivit.layers.token_drop import num_kept, token_drop_backward, token_drop_forward, token_keep_indices
from minivit.model import ViT, ViTConfig

SMALL = dict(image_size=16, patch_size=4, num_classes=5, dim=16, depth=2, num_heads=2, mlp_dim=32)


def test_keep_indices_are_distinct_sorted_and_seeded():
    idx = token_keep_indices(make_rng(0, 1), 6, 16, 9)
    assert idx.shape == (6, 9) and idx.dtype == np.int64
    assert all(len(set(row)) == 9 and list(row) == sorted(row) for row in idx.tolist())
    assert idx.min() >= 0 and idx.max() < 16
    assert np.array_equal(idx, token_keep_indices(make_rng(0, 1), 6, 16, 9))
    assert not np.array_equal(idx, token_keep_indices(make_rng(0, 2), 6, 16, 9))
    assert len({tuple(r) for r in idx.tolist()}) > 1               # each image its own choice


def test_num_kept():
    assert num_kept(64, 0.5) == 32 and num_kept(64, 0.25) == 48 and num_kept(64, 0.0) == 64
    assert num_kept(4, 0.99) == 1
    with pytest.raises(ValueError, match="drop rate"):
        num_kept(64, 1.0)


@pytest.mark.parametrize("prefix", [0, 1])
def test_forward_is_a_gather_keeping_the_prefix(prefix):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, prefix + 8, 4))
    keep = token_keep_indices(make_rng(1), 3, 8, 5)
    out, _ = token_drop_forward(x, keep, prefix)
    assert out.shape == (3, prefix + 5, 4)
    for b in range(3):
        expected = np.concatenate([x[b, :prefix], x[b, prefix + keep[b]]])
        np.testing.assert_array_equal(out[b], expected)


@pytest.mark.parametrize("prefix", [0, 1])
def test_backward_against_finite_differences(prefix):
    keep = token_keep_indices(make_rng(2), 2, 9, 5)          # fixed: every forward keeps the same tokens
    x = np.random.default_rng(3).standard_normal((2, prefix + 9, 6))
    errs = check_pair(lambda x: token_drop_forward(x, keep, prefix), token_drop_backward, [x], [0], ["dx"])
    assert errs["dx"] < 1e-9
    _, cache = token_drop_forward(x, keep, prefix)
    dx = token_drop_backward(np.ones((2, prefix + 5, 6)), cache)
    assert dx.sum() == 2 * (prefix + 5) * 6                   # dropped tokens: exactly zero gradient
    for b in range(2):
        dropped = sorted(set(range(9)) - set(keep[b].tolist()))
        assert not dx[b, [prefix + i for i in dropped]].any()


def _randomized_model(config, seed=0):
    """A float64 ViT with every parameter random (a zero head would make the check trivial)."""
    model = ViT(config, seed=seed).to(dtype=np.float64)
    rng = np.random.default_rng(seed + 1)
    for name, p in model.named_parameters():
        scale = 1 / np.sqrt(p.value.shape[0]) if p.value.ndim == 2 else 0.3
        p.value = (1.0 if name.endswith("gamma") else 0.0) + scale * rng.standard_normal(p.value.shape)
    return model


def model_gradcheck(model, x, forward_rng, samples=6, seed=0):
    """Finite differences of sum(logits * dlogits) for a sample of every parameter's entries and of
    x; forward_rng() gives a fresh generator with the same seed for every forward (fixed draws)."""
    rng = np.random.default_rng(seed)
    logits = model.forward(x, forward_rng())
    dlogits = rng.standard_normal(logits.shape)
    dx = model.backward(dlogits)
    f = lambda: model.forward(x, forward_rng())                # noqa: E731
    errors = {}
    for name, arr, grad in [(n, p.value, p.grad) for n, p in model.named_parameters()] + [("x", x, dx)]:
        flat = rng.choice(arr.size, size=min(samples, arr.size), replace=False)
        idx = [np.unravel_index(int(i), arr.shape) for i in flat]
        num = numerical_gradient(f, arr, dlogits, indices=idx)
        sel = tuple(np.array(idx).T)
        if name.endswith("attn.qkv.bias"):                    # the key part's true gradient is 0
            keyless = [i for i, (j,) in enumerate(idx) if not model.config.dim <= j < 2 * model.config.dim]
            sel, num = (sel[0][keyless],), num
        errors[name] = rel_error(grad[sel], num[sel])
    return errors


@pytest.mark.parametrize("pool", ["cls", "gap"])
def test_whole_vit_gradcheck_with_token_dropping(pool):
    model = _randomized_model(ViTConfig(**SMALL, pool=pool, token_drop=0.5)).train()
    x = np.random.default_rng(5).standard_normal((2, 16, 16, 3))
    errors = model_gradcheck(model, x, lambda: make_rng(7, 1))
    assert model.cache["token_drop"][0].shape == (2, 8)          # 8 of the 16 patch tokens kept
    assert max(errors.values()) < MODEL_TOL, errors


def test_token_drop_only_in_training_and_default_off():
    cfg = ViTConfig(**SMALL)
    assert cfg.token_drop == 0.0
    model = _randomized_model(ViTConfig(**SMALL, token_drop=0.5))
    plain = _randomized_model(cfg)
    x = np.random.default_rng(5).standard_normal((2, 16, 16, 3))
    np.testing.assert_array_equal(model.eval().forward(x), plain.eval().forward(x))   # evaluation: all tokens
    assert "token_drop" not in model.cache
    a = model.train().forward(x, make_rng(0, 1))
    assert model.cache["token_drop"][0].shape == (2, 8)
    assert not np.allclose(a, plain.train().forward(x, make_rng(0, 1)))
    np.testing.assert_array_equal(a, model.forward(x, make_rng(0, 1)))          # same seed, same tokens
    with pytest.raises(ValueError, match="random generator"):
        model.forward(x)
    with pytest.raises(ValueError, match="token_drop"):
        ViTConfig(**SMALL, token_drop=1.0)


def test_the_model_check_catches_a_wrong_scatter():
    """The whole-model check can fail: a backward that puts the kept tokens' gradients back one place
    off (keep_idx + 1, modulo N) is caught."""
    from minivit import ops

    def shifted(dout, cache):
        keep, shape, prefix = cache
        return token_drop_backward(dout, ((keep + 1) % (shape[1] - prefix), shape, prefix))

    model = _randomized_model(ViTConfig(**SMALL, token_drop=0.5)).train()
    x = np.random.default_rng(5).standard_normal((2, 16, 16, 3))
    with ops.use({"token_drop_backward": shifted}):
        errors = model_gradcheck(model, x, lambda: make_rng(7, 1))
    assert errors["patch_embed.weight"] > 1e-3 and errors["x"] > 1e-3
