"""minivit's hand-written forward and backward passes against PyTorch autograd, in float64.

The PyTorch side (tests/torch_reference.py) is written independently from the math; every
parameter of the minivit model is randomized first (the head and the class token start at
zero, which would hide bugs in their gradients). Tolerance: max |minivit - torch| / max |torch|
below 1e-6 for every output and every gradient.
"""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

import minivit  # noqa: E402
from minivit import layers  # noqa: E402
from minivit.model import ViT, ViTConfig  # noqa: E402

try:  # tests/ on sys.path (pytest's default rootdir-relative import) or the repo root on it
    import torch_reference as tr  # noqa: E402
except ImportError:  # pragma: no cover
    from tests import torch_reference as tr  # noqa: E402

RTOL = 1e-6
F64 = np.float64


def rel_err(ours, ref) -> float:
    """max |ours - ref| / max |ref| (ref a torch tensor or array)."""
    ref = ref.detach().numpy() if isinstance(ref, torch.Tensor) else np.asarray(ref)
    ours = np.asarray(ours)
    assert ours.shape == ref.shape, f"shape {ours.shape} != reference shape {ref.shape}"
    scale = max(float(np.abs(ref).max()), 1e-30)
    return float(np.abs(ours - ref).max()) / scale


def assert_close(ours, ref, what=""):
    err = rel_err(ours, ref)
    assert err < RTOL, f"{what}: relative error {err:.3e} >= {RTOL}"
    return err


def t(a, grad=True):
    """A float64 leaf tensor (a copy) from a NumPy array."""
    return torch.tensor(np.asarray(a, dtype=F64), requires_grad=grad)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


# =================================================================================== components
def test_linear(rng):
    x, w, b = rng.normal(size=(3, 5, 7)), rng.normal(size=(7, 4)), rng.normal(size=4)
    dy = rng.normal(size=(3, 5, 4))
    y, cache = layers.linear_forward(x, w, b)
    dx, dw, db = layers.linear_backward(dy, cache)
    tx, tw, tb = t(x), t(w), t(b)
    ty = tr.linear(tx, tw, tb)
    ty.backward(t(dy, False))
    assert_close(y, ty, "y")
    for ours, ref, name in ((dx, tx, "dx"), (dw, tw, "dw"), (db, tb, "db")):
        assert_close(ours, ref.grad, name)


def test_layernorm(rng):
    D = 12
    x = rng.normal(2.0, 3.0, size=(4, 6, D))          # a non-zero mean and a non-unit spread
    gamma, beta = rng.normal(1.0, 0.5, D), rng.normal(0.0, 0.5, D)
    dy = rng.normal(size=x.shape)
    y, cache = layers.layernorm_forward(x, gamma, beta, 1e-6)
    dx, dg, dbeta = layers.layernorm_backward(dy, cache)
    tx, tg, tb = t(x), t(gamma), t(beta)
    ty = tr.layer_norm(tx, tg, tb, 1e-6)
    ty.backward(t(dy, False))
    assert_close(y, ty, "y")
    assert_close(dx, tx.grad, "dx")
    assert_close(dg, tg.grad, "dgamma")
    assert_close(dbeta, tb.grad, "dbeta")


@pytest.mark.parametrize("approximate", ["tanh", "none"])
def test_gelu(rng, approximate):
    x = rng.normal(0.0, 2.5, size=(5, 33))
    dy = rng.normal(size=x.shape)
    y, cache = layers.gelu_forward(x.copy(), approximate)
    dx = layers.gelu_backward(dy, cache)
    tx = t(x)
    ty = tr.gelu(tx, approximate)
    ty.backward(t(dy, False))
    assert_close(y, ty, "y")
    assert_close(dx, tx.grad, "dx")


@pytest.mark.parametrize("axis", [-1, 1])
def test_softmax(rng, axis):
    x = rng.normal(0.0, 3.0, size=(3, 4, 5))
    dy = rng.normal(size=x.shape)
    y, cache = layers.softmax_forward(x, axis=axis)
    dx = layers.softmax_backward(dy, cache)
    tx = t(x)
    ty = torch.softmax(tx, dim=axis)
    ty.backward(t(dy, False))
    assert_close(y, ty, "y")
    assert_close(dx, tx.grad, "dx")


def test_attention(rng):
    B, h, T, d = 2, 3, 5, 4
    q, k, v = (rng.normal(size=(B, h, T, d)) for _ in range(3))
    dy = rng.normal(size=(B, h, T, d))
    y, cache = layers.attention_forward(q, k, v)
    grads = layers.attention_backward(dy, cache)
    tq, tk, tv = t(q), t(k), t(v)
    ty = tr.attention(tq, tk, tv)
    ty.backward(t(dy, False))
    assert_close(y, ty, "y")
    for ours, ref, name in zip(grads, (tq, tk, tv), "qkv"):
        assert_close(ours, ref.grad, "d" + name)


def test_attention_sdpa_matches_explicit(rng):
    q, k, v = (t(rng.normal(size=(2, 3, 5, 4)), False) for _ in range(3))
    assert_close(tr.attention(q, k, v, use_sdpa=True).numpy(), tr.attention(q, k, v), "sdpa")


@pytest.mark.parametrize("num_heads", [1, 2, 4])
def test_mhsa(rng, num_heads):
    B, T, D = 2, 5, 8
    x = rng.normal(size=(B, T, D))
    w_qkv, b_qkv = rng.normal(0, 0.4, (D, 3 * D)), rng.normal(0, 0.4, 3 * D)
    w_out, b_out = rng.normal(0, 0.4, (D, D)), rng.normal(0, 0.4, D)
    dy = rng.normal(size=(B, T, D))
    y, cache = layers.mhsa_forward(x, w_qkv, b_qkv, w_out, b_out, num_heads)
    grads = layers.mhsa_backward(dy, cache)
    tensors = [t(a) for a in (x, w_qkv, b_qkv, w_out, b_out)]
    ty = tr.mhsa(*tensors, num_heads)
    ty.backward(t(dy, False))
    assert_close(y, ty, "y")
    for ours, ref, name in zip(grads, tensors, ("dx", "dw_qkv", "db_qkv", "dw_out", "db_out")):
        assert_close(ours, ref.grad, name)


@pytest.mark.parametrize("approximate", ["tanh", "none"])
def test_mlp(rng, approximate):
    B, T, D, H = 2, 3, 6, 10
    x = rng.normal(size=(B, T, D))
    params = [rng.normal(0, 0.5, (D, H)), rng.normal(0, 0.5, H), rng.normal(0, 0.5, (H, D)), rng.normal(0, 0.5, D)]
    dy = rng.normal(size=(B, T, D))
    y, cache = layers.mlp_forward(x, *params, approximate)
    grads = layers.mlp_backward(dy, cache)
    tensors = [t(a) for a in (x, *params)]
    ty = tr.mlp(*tensors, approximate)
    ty.backward(t(dy, False))
    assert_close(y, ty, "y")
    for ours, ref, name in zip(grads, tensors, ("dx", "dw1", "db1", "dw2", "db2")):
        assert_close(ours, ref.grad, name)


def test_encoder_block(rng):
    B, T, D, heads, H = 2, 5, 8, 2, 12
    cfg = ViTConfig(image_size=4, patch_size=2, dim=D, depth=1, num_heads=heads, mlp_dim=H)
    shapes = {"ln1_gamma": (D,), "ln1_beta": (D,), "w_qkv": (D, 3 * D), "b_qkv": (3 * D,), "w_out": (D, D),
              "b_out": (D,), "ln2_gamma": (D,), "ln2_beta": (D,), "w1": (D, H), "b1": (H,), "w2": (H, D), "b2": (D,)}
    p = {n: (rng.normal(1.0, 0.3, s) if "gamma" in n else rng.normal(0, 0.4, s)) for n, s in shapes.items()}
    names = dict(zip(layers.BLOCK_PARAM_NAMES, tr.BLOCK_PARAM_SUFFIXES))
    x = rng.normal(size=(B, T, D))
    dy = rng.normal(size=(B, T, D))
    y, cache = layers.encoder_block_forward(x, p, heads, 1e-6, "tanh")
    dx, grads = layers.encoder_block_backward(dy, cache)
    tx = t(x)
    tp = {"b." + names[n]: t(v) for n, v in p.items()}
    ty = tr.encoder_block(tx, tp, "b.", cfg)
    ty.backward(t(dy, False))
    assert_close(y, ty, "y")
    assert_close(dx, tx.grad, "dx")
    for n in layers.BLOCK_PARAM_NAMES:
        assert_close(grads[n], tp["b." + names[n]].grad, n)


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1, 0.3])
def test_cross_entropy_class_indices(rng, label_smoothing):
    B, K = 6, 5
    logits = rng.normal(0, 3, (B, K))
    labels = rng.integers(0, K, B)
    loss, cache = layers.cross_entropy_forward(logits, labels, label_smoothing=label_smoothing)
    dlogits = layers.cross_entropy_backward(cache)
    tl = t(logits)
    tloss = tr.torch_cross_entropy(tl, torch.as_tensor(labels), label_smoothing)
    tloss.backward()
    assert isinstance(loss, float)
    assert_close(loss, tloss, "loss")
    assert_close(dlogits, tl.grad, "dlogits")


@pytest.mark.parametrize("label_smoothing", [0.0, 0.2])
def test_cross_entropy_soft_targets(rng, label_smoothing):
    B, K = 6, 5
    logits = rng.normal(0, 3, (B, K))
    soft = rng.dirichlet(np.ones(K), size=B)          # rows on the simplex, like mixup / cutmix targets
    loss, cache = layers.cross_entropy_forward(logits, soft, label_smoothing=label_smoothing)
    dlogits = layers.cross_entropy_backward(cache, dloss=2.5)
    tl = t(logits)
    tloss = tr.torch_cross_entropy(tl, t(soft, False), label_smoothing)
    (2.5 * tloss).backward()
    assert_close(loss, tloss, "loss")
    assert_close(dlogits, tl.grad, "dlogits")


@pytest.mark.parametrize("shape,P", [((2, 8, 8, 3), 4), ((2, 6, 10, 2), 2), ((1, 5, 5, 1), 5)])
def test_patchify(rng, shape, P):
    x = rng.normal(size=shape)
    out, cache = layers.patchify_forward(x, P)
    dy = rng.normal(size=out.shape)
    dx = layers.patchify_backward(dy, cache)
    tx = t(x)
    ty = tr.patchify(tx, P)
    ty.backward(t(dy, False))
    np.testing.assert_array_equal(out, ty.detach().numpy())
    np.testing.assert_array_equal(dx, tx.grad.numpy())
    # spot-check the documented layout: patch n at grid (n // gw, n % gw), flattened (row, col, channel)
    gw = shape[2] // P
    n = out.shape[1] - 1
    r, c = divmod(n, gw)
    np.testing.assert_array_equal(out[0, n], x[0, r * P:(r + 1) * P, c * P:(c + 1) * P, :].reshape(-1))


def test_cls_token_pos_embed_and_pools(rng):
    B, N, D = 3, 4, 6
    x, cls, pos = rng.normal(size=(B, N, D)), rng.normal(size=(1, 1, D)), rng.normal(size=(1, N + 1, D))
    z, c1 = layers.cls_token_forward(x, cls)
    z, c2 = layers.pos_embed_forward(z, pos)
    y_cls, c3 = layers.cls_pool_forward(z)
    y_gap, c4 = layers.gap_forward(z)
    dy1, dy2 = rng.normal(size=(B, D)), rng.normal(size=(B, D))
    dz = layers.cls_pool_backward(dy1, c3) + layers.gap_backward(dy2, c4)
    dz, dpos = layers.pos_embed_backward(dz, c2)
    dx, dcls = layers.cls_token_backward(dz, c1)
    tx, tcls, tpos = t(x), t(cls), t(pos)
    tz = torch.cat([tcls.expand(B, 1, D), tx], dim=1) + tpos
    ty1, ty2 = tz[:, 0], tz.mean(dim=1)
    ((ty1 * t(dy1, False)).sum() + (ty2 * t(dy2, False)).sum()).backward()
    assert_close(y_cls, ty1, "cls pool")
    assert_close(y_gap, ty2, "gap")
    assert_close(dx, tx.grad, "dx")
    assert_close(dcls, tcls.grad, "dcls")
    assert_close(dpos, tpos.grad, "dpos")


# ================================================================================ whole model
def tiny(**overrides):
    base = dict(image_size=16, patch_size=4, dim=16, depth=2, num_heads=2, mlp_dim=32, num_classes=5)
    return ViTConfig.preset("tiny", **{**base, **overrides})


CONFIGS = {
    "cls-learned-tanh": tiny(),
    "gap-learned": tiny(pool="gap"),
    "cls-sincos": tiny(pos_embed="sincos"),
    "gap-sincos": tiny(pool="gap", pos_embed="sincos"),
    "cls-nopos": tiny(pos_embed="none"),
    "gap-nopos-erf": tiny(pool="gap", pos_embed="none", gelu="none"),
    "cls-erf": tiny(gelu="none"),
    "4heads": tiny(num_heads=4),
    "1channel-3blocks-patch2": tiny(image_size=8, patch_size=2, in_channels=1, depth=3, num_heads=4, dim=12,
                                    mlp_dim=20, num_classes=3),
}


def randomize(model, rng):
    """Give every parameter a random value (gammas near 1, weights ~ 1/sqrt(fan_in))."""
    for name, p in model.named_parameters():
        shape = p.value.shape
        if name.endswith("gamma"):
            v = rng.normal(1.0, 0.3, shape)
        elif name.endswith("weight"):
            v = rng.normal(0.0, 1.5 / np.sqrt(shape[0]), shape)
        else:  # biases, betas, cls_token, pos_embed
            v = rng.normal(0.0, 0.5, shape)
        p.value = v.astype(p.value.dtype)


def run_both(config, seed=0, batch=3, label_smoothing=0.1, build_f64=False):
    """minivit forward/backward and torch autograd on the same randomized float64 model and batch."""
    rng = np.random.default_rng(seed + 100)
    if build_f64:
        model = ViT(config, seed=seed, dtype=np.float64)
    else:
        model = ViT(config, seed=seed).to(dtype=np.float64)
    randomize(model, rng)
    c = config
    x = rng.normal(size=(batch, c.image_size, c.image_size, c.in_channels))
    labels = rng.integers(0, c.num_classes, batch)

    logits = model.forward(x)
    loss, cache = layers.cross_entropy_forward(logits, labels, label_smoothing=label_smoothing)
    dx = model.backward(layers.cross_entropy_backward(cache))
    ours = {"logits": logits, "loss": loss, "dx": dx}
    ours.update({"grad " + n: p.grad for n, p in model.named_parameters()})

    params = {n: t(v) for n, v in model.state_dict().items()}
    tx = t(x)
    tlogits = tr.torch_vit_forward(params, tx, c)
    tloss = tr.torch_cross_entropy(tlogits, torch.as_tensor(labels), label_smoothing)
    tloss.backward()
    ref = {"logits": tlogits, "loss": tloss, "dx": tx.grad}
    ref.update({"grad " + n: p.grad for n, p in params.items()})
    return model, ours, ref


@pytest.mark.parametrize("name", list(CONFIGS))
def test_vit_matches_torch(name):
    config = CONFIGS[name]
    model, ours, ref = run_both(config, seed=sum(map(ord, name)))
    names = [n for n, _ in model.named_parameters()]
    assert sorted(names) == sorted(tr.expected_param_names(config))
    assert set(ours) == set(ref)
    errors = {}
    for key in ref:
        assert ours[key] is not None, f"{key} was not filled by backward"
        assert ref[key] is not None, f"torch computed no {key}"
        errors[key] = rel_err(ours[key], ref[key])
    bad = {k: e for k, e in errors.items() if not e < RTOL}
    assert not bad, f"{name}: mismatches {bad}"
    # every gradient must be non-trivial after randomization (a zero grad would compare trivially)
    for n, p in model.named_parameters():
        assert np.abs(p.grad).max() > 0, n


def test_vit_built_in_float64_matches_torch():
    """The same with the model constructed in float64 (not cast), sin-cos table included."""
    model, ours, ref = run_both(CONFIGS["gap-sincos"], seed=7, build_f64=True)
    for key in ref:
        assert_close(ours[key], ref[key], key)


def test_vit_soft_targets_and_train_mode():
    """Soft targets through the whole model; train mode with dropout 0 changes nothing."""
    config = CONFIGS["cls-learned-tanh"]
    rng = np.random.default_rng(3)
    model = ViT(config, seed=3).to(dtype=np.float64).train()
    randomize(model, rng)
    x = rng.normal(size=(4, 16, 16, 3))
    soft = rng.dirichlet(np.ones(config.num_classes), size=4)
    logits = model.forward(x)
    loss, cache = layers.cross_entropy_forward(logits, soft, label_smoothing=0.1)
    dx = model.backward(layers.cross_entropy_backward(cache))
    params = {n: t(v) for n, v in model.state_dict().items()}
    tx = t(x)
    tloss = tr.torch_cross_entropy(tr.torch_vit_forward(params, tx, config), t(soft, False), 0.1)
    tloss.backward()
    assert_close(loss, tloss, "loss")
    assert_close(dx, tx.grad, "dx")
    for n, p in model.named_parameters():
        assert_close(p.grad, params[n].grad, n)


@pytest.mark.parametrize("name", ["cls-learned-tanh", "gap-sincos"])
def test_torchvit_module(name):
    """TorchViT has minivit's parameter names and computes torch_vit_forward (also with SDPA)."""
    config = CONFIGS[name]
    model = ViT(config, seed=5).to(dtype=np.float64)
    randomize(model, np.random.default_rng(5))
    sd = model.state_dict()
    tm = tr.TorchViT(sd, config, dtype=torch.float64)
    assert set(dict(tm.named_parameters())) == set(sd)
    for n, p in tm.named_parameters():
        np.testing.assert_array_equal(p.detach().numpy(), sd[n])
    x = np.random.default_rng(6).normal(size=(2, 16, 16, 3))
    with torch.no_grad():
        out = tm(torch.as_tensor(x))
        out_sdpa = tr.TorchViT(sd, config, dtype=torch.float64, use_sdpa=True)(torch.as_tensor(x))
    assert_close(model.forward(x), out, "logits")
    assert_close(out_sdpa.numpy(), out, "sdpa logits")


def test_minivit_version_importable():
    assert minivit.__version__
