"""minivit/fast/__init__.py: every fast path against the reference it stands beside (float64 and float32),
cache compatibility, inputs left alone, a whole ViT step, the on/off switch, and the CLI."""
import numpy as np
import pytest

from minivit.cli import main as cli
from minivit import fast, layers, ops, optim
from minivit.fast import attention as fast_attention
from minivit.fast import layers as fast_layers
from minivit.backend import make_rng
from minivit.gradcheck import COMPONENT_TOL, component_checks
from minivit.model import ViT, ViTConfig

TOL = {np.float64: 1e-12, np.float32: 1e-5}
HEADS = [1, 2, 4]
SHAPES = [(2, 5), (3, 7), (1, 17)]          # (B, T): odd T included


def err(got, want):
    """Largest difference relative to the largest reference value (robust where values cancel)."""
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape
    return float(np.max(np.abs(got - want)) / max(np.max(np.abs(want)), 1e-30))


def assert_close(got, want, dtype, what=""):
    assert np.asarray(got).dtype == np.asarray(want).dtype, what
    e = err(got, want)
    assert e < TOL[dtype], f"{what}: relative error {e:.2e}"


def rand(rng, shape, dtype, scale=1.0):
    return (scale * rng.standard_normal(shape)).astype(dtype)


def copies(args):
    return [a.copy() if isinstance(a, np.ndarray) else a for a in args]


def assert_unchanged(before, after, what):
    for i, (b, a) in enumerate(zip(before, after)):
        if isinstance(b, np.ndarray):
            np.testing.assert_array_equal(a, b, err_msg=f"{what} modified its argument {i}")


def compare_pair(name, fwd_args, dout_scale=1.0, seed=0, fwd_kwargs=None):
    """Run ``name``_forward/_backward fast and reference on the same arguments; compare outputs,
    every gradient, and check that neither the forward nor the backward modified its inputs."""
    fwd_kwargs = fwd_kwargs or {}
    dtype = fwd_args[0].dtype.type
    ref_f, ref_b = getattr(layers, name + "_forward"), getattr(layers, name + "_backward")
    fast_f, fast_b = getattr(fast, name + "_forward"), getattr(fast, name + "_backward")
    assert fast_f is not ref_f and fast_b is not ref_b

    want, ref_cache = ref_f(*copies(fwd_args), **fwd_kwargs)
    kept = copies(fwd_args)
    got, cache = fast_f(*fwd_args, **fwd_kwargs)
    assert_unchanged(kept, fwd_args, f"fast.{name}_forward")
    assert_close(got, want, dtype, f"{name} forward")

    dout = rand(np.random.default_rng(seed + 1), want.shape, dtype, dout_scale)
    want_grads = ref_b(dout.copy(), ref_cache)
    dout_kept = dout.copy()
    got_grads = fast_b(dout, cache)
    np.testing.assert_array_equal(dout, dout_kept, err_msg=f"fast.{name}_backward modified dout")
    assert_unchanged(kept, fwd_args, f"fast.{name}_backward")
    if not isinstance(want_grads, tuple):
        want_grads, got_grads = (want_grads,), (got_grads,)
    assert len(got_grads) == len(want_grads)
    for i, (g, w) in enumerate(zip(got_grads, want_grads)):
        assert g.shape == w.shape, (name, i)
        assert_close(g, w, dtype, f"{name} gradient {i}")
    return cache, ref_cache


# ----------------------------------------------------------------------- function by function
@pytest.mark.parametrize("B, T", SHAPES)
@pytest.mark.parametrize("scale", [1.0, 30.0])         # 30: large scores, the max subtraction matters
def test_softmax(B, T, scale, dtype):
    rng = np.random.default_rng(T)
    compare_pair("softmax", [rand(rng, (B, 3, T, T), dtype, scale)])


def test_softmax_other_axis_falls_back_correctly(dtype):
    x = rand(np.random.default_rng(0), (4, 5, 3), dtype)
    compare_pair("softmax", [x], fwd_kwargs=dict(axis=1))


@pytest.mark.parametrize("B, T", SHAPES)
@pytest.mark.parametrize("h", HEADS)
@pytest.mark.parametrize("d", [4, 9])
def test_attention(B, T, h, d, dtype):
    rng = np.random.default_rng(B * T * h * d)
    q, k, v = (rand(rng, (B, h, T, d), dtype, 2.0) for _ in range(3))
    cache, ref_cache = compare_pair("attention", [q, k, v])
    assert_close(cache[3], ref_cache[3], dtype, "attention weights A in the cache")


@pytest.mark.parametrize("B, T", SHAPES)
@pytest.mark.parametrize("h", HEADS)
def test_mhsa(B, T, h, dtype):
    rng = np.random.default_rng(B * T * h)
    D = 8 * h if h != 2 else 12
    args = [rand(rng, (B, T, D), dtype), rand(rng, (D, 3 * D), dtype, D ** -0.5), rand(rng, 3 * D, dtype, 0.1),
            rand(rng, (D, D), dtype, D ** -0.5), rand(rng, D, dtype, 0.1)]
    cache, ref_cache = compare_pair("mhsa", args, fwd_kwargs=dict(num_heads=h))
    # minivit.inspect reads the attention weights at cache[1][3]: same place, same values.
    assert cache[1][3].shape == (B, h, T, T)
    assert_close(cache[1][3], ref_cache[1][3], dtype, "A in the MSA cache")
    assert cache[3] == h


def test_mhsa_width_not_divisible_raises():
    x = np.zeros((1, 3, 10))
    with pytest.raises(ValueError, match="divisible"):
        fast.mhsa_forward(x, np.zeros((10, 30)), np.zeros(30), np.zeros((10, 10)), np.zeros(10), 4)


@pytest.mark.parametrize("shape", [(2, 5, 8), (3, 7, 12), (6, 16), (5,)])
@pytest.mark.parametrize("offset", [0.0, 5.0])         # 5: a mean far from zero
def test_layernorm(shape, offset, dtype):
    rng = np.random.default_rng(len(shape))
    D = shape[-1]
    x = rand(rng, shape, dtype, 2.0) + dtype(offset)
    compare_pair("layernorm", [x, 1 + rand(rng, D, dtype, 0.3), rand(rng, D, dtype, 0.3)])
    compare_pair("layernorm", [x, 1 + rand(rng, D, dtype, 0.3), rand(rng, D, dtype, 0.3)], fwd_kwargs=dict(eps=1e-3))


def test_layernorm_bad_shapes_raise():
    with pytest.raises(ValueError, match="gamma and beta"):
        fast.layernorm_forward(np.zeros((2, 4)), np.ones(3), np.zeros(3))


@pytest.mark.parametrize("block_bytes", [64, 1 << 19])     # 64: blocks of 8 rows, the last one shorter
def test_row_blocked_paths_match_across_blocks(block_bytes, monkeypatch, dtype):
    """LayerNorm and GELU run row block by row block: several blocks and a remainder give the
    reference's values (also the 2100-row case, many blocks at the default size in float64)."""
    monkeypatch.setattr(fast_layers, "BLOCK_BYTES", block_bytes)
    rng = np.random.default_rng(7)
    for shape in [(3, 7, 12), (2, 13, 5), (3, 700, 64)]:
        D = shape[-1]
        x = rand(rng, shape, dtype, 2.0) + dtype(3.0)
        compare_pair("layernorm", [x, 1 + rand(rng, D, dtype, 0.3), rand(rng, D, dtype, 0.3)])
        compare_pair("gelu", [rand(rng, shape, dtype, 3.0)], fwd_kwargs=dict(approximate="tanh"))


def test_row_blocks_cover_every_row_once():
    for rows, width, itemsize in [(0, 8, 4), (1, 8, 4), (8320, 256, 4), (21, 12, 8), (5, 10 ** 6, 8)]:
        blocks = fast_layers.row_blocks(rows, width, itemsize)
        assert [i for sl in blocks for i in range(sl.start, sl.stop)] == list(range(rows))
        assert all(sl.stop - sl.start >= min(8, rows) for sl in blocks[:-1])


def test_layernorm_mixed_dtypes_run_the_reference():
    """gamma in another dtype than x: the fast path steps aside (the reference promotes)."""
    rng = np.random.default_rng(1)
    x, gamma, beta = rand(rng, (3, 8), np.float32), 1 + rand(rng, 8, np.float64), rand(rng, 8, np.float64)
    got, cache = fast.layernorm_forward(x, gamma, beta)
    want, _ = layers.layernorm_forward(x, gamma, beta)
    assert got.dtype == want.dtype == np.float64
    np.testing.assert_array_equal(got, want)
    dy = rand(rng, (3, 8), np.float64)
    for g, w in zip(fast.layernorm_backward(dy, cache), layers.layernorm_backward(dy, cache)):
        np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("x_shape, d_out", [((2, 5, 8), 12), ((7, 16), 3), ((3, 1, 65, 24), 1)])
def test_linear_backward(x_shape, d_out, dtype):
    """Only the backward has a fast path (db as ones @ dy); it takes the reference forward's cache."""
    rng = np.random.default_rng(len(x_shape))
    x, w, b = rand(rng, x_shape, dtype), rand(rng, (x_shape[-1], d_out), dtype), rand(rng, d_out, dtype)
    y, cache = layers.linear_forward(x, w, b)
    dy = rand(rng, y.shape, dtype, 3.0)
    kept = copies([dy, x, w])
    got, want = fast.linear_backward(dy, cache), layers.linear_backward(dy, cache)
    assert_unchanged(kept, [dy, x, w], "fast.linear_backward")
    for i, (g, wnt) in enumerate(zip(got, want)):
        assert g.shape == wnt.shape
        assert_close(g, wnt, dtype, f"linear gradient {i}")


def test_linear_backward_mixed_dtypes_run_the_reference():
    rng = np.random.default_rng(2)
    cache = (rand(rng, (4, 3), np.float32), rand(rng, (3, 2), np.float64))
    dy = rand(rng, (4, 2), np.float32)
    for g, w in zip(fast.linear_backward(dy, cache), layers.linear_backward(dy, cache)):
        assert g.dtype == w.dtype
        np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("shape", [(2, 5, 8), (3, 7, 33), (11,)])
@pytest.mark.parametrize("approximate", ["tanh", "none"])
def test_gelu(shape, approximate, dtype):
    x = rand(np.random.default_rng(len(shape)), shape, dtype, 3.0)   # covers the tails, where t -> +-1
    compare_pair("gelu", [x], fwd_kwargs=dict(approximate=approximate))


@pytest.mark.parametrize("shape", [(2, 5, 8), (3, 7, 12), (6, 16)])
@pytest.mark.parametrize("approximate", ["tanh", "none"])
@pytest.mark.parametrize("block_bytes", [64, 1 << 19])     # 64: many blocks of 8 rows and a remainder
def test_mlp(shape, approximate, block_bytes, monkeypatch, dtype):
    """The MLP with fc1's bias added in the GELU's row blocks and db1 summed block by block: the
    reference's outputs and gradients, and a cache the reference backward takes."""
    monkeypatch.setattr(fast_layers, "BLOCK_BYTES", block_bytes)
    rng = np.random.default_rng(len(shape) + shape[-1])
    D, M = shape[-1], 2 * shape[-1] + 1
    args = [rand(rng, shape, dtype, 2.0), rand(rng, (D, M), dtype, D ** -0.5), rand(rng, M, dtype, 0.5),
            rand(rng, (M, D), dtype, M ** -0.5), rand(rng, D, dtype, 0.1)]
    cache, ref_cache = compare_pair("mlp", args, fwd_kwargs=dict(approximate=approximate))
    for got, want in zip(cache[1][:2], ref_cache[1][:2]):            # the GELU's input and t (or Phi)
        assert_close(got, want, dtype, "the GELU cache")
    dout = rand(rng, shape, dtype)
    for g, w in zip(layers.mlp_backward(dout, cache), fast.mlp_backward(dout, ref_cache)):
        assert_close(g, w, dtype, "one's cache in the other's backward")


def test_mlp_bad_shapes_raise_as_the_reference():
    with pytest.raises(ValueError, match="features"):
        fast.mlp_forward(np.zeros((2, 3, 4)), np.zeros((5, 8)), np.zeros(8), np.zeros((8, 4)), np.zeros(4))


@pytest.mark.parametrize("weight_decay", [0.0, 0.05])
@pytest.mark.parametrize("t", [1, 7])
def test_adamw_update(weight_decay, t, dtype):
    rng = np.random.default_rng(t)
    shape = (6, 5)
    w, g = rand(rng, shape, dtype), rand(rng, shape, dtype)
    m, v = rand(rng, shape, dtype, 0.1), np.abs(rand(rng, shape, dtype, 0.1))
    ref = [a.copy() for a in (w, g, m, v)]
    got = [a.copy() for a in (w, g, m, v)]
    optim.adamw_update(*ref, t, 1e-2, 0.9, 0.999, 1e-8, weight_decay)
    assert fast.adamw_update(*got, t, 1e-2, 0.9, 0.999, 1e-8, weight_decay) is None
    np.testing.assert_array_equal(got[1], g, err_msg="adamw_update modified the gradient")
    for name, a, b, before in zip("wgmv", got, ref, (w, g, m, v)):
        assert a.dtype == dtype
        assert_close(a, b, dtype, f"adamw {name}")
        if name != "g":
            assert not np.array_equal(a, before), f"adamw did not update {name} in place"


def test_cache_layouts_are_interchangeable(dtype):
    """A fast forward's cache works with the reference backward and vice versa."""
    rng = np.random.default_rng(3)
    B, T, h, D = 2, 7, 2, 12
    args = [rand(rng, (B, T, D), dtype), rand(rng, (D, 3 * D), dtype, D ** -0.5), rand(rng, 3 * D, dtype),
            rand(rng, (D, D), dtype, D ** -0.5), rand(rng, D, dtype)]
    dout = rand(rng, (B, T, D), dtype)
    pairs = [("mhsa", args, dict(num_heads=h)), ("attention", [rand(rng, (B, h, T, 5), dtype) for _ in range(3)], {}),
             ("layernorm", [args[0], 1 + args[4], args[4]], {}), ("gelu", [args[0]], {}),
             ("softmax", [rand(rng, (B, T, T), dtype)], {})]
    for name, fargs, kw in pairs:
        rf, rb = getattr(layers, name + "_forward"), getattr(layers, name + "_backward")
        ff, fb = getattr(fast, name + "_forward"), getattr(fast, name + "_backward")
        out, rcache = rf(*fargs, **kw)
        _, fcache = ff(*fargs, **kw)
        d = rand(rng, out.shape, dtype)
        want = rb(d, rcache)
        for got in (rb(d, fcache), fb(d, rcache)):
            got, w = (got, want) if isinstance(want, tuple) else ((got,), (want,))
            for a, b in zip(got, w):
                assert_close(a, b, dtype, f"{name} with the other cache")


def test_fast_paths_pass_gradcheck():
    """Finite differences (float64) through every component, fast paths installed."""
    results = dict(component_checks(F=fast.FUNCTIONS))
    for comp in ("softmax", "attention", "mhsa", "layernorm", "gelu (tanh)", "encoder_block"):
        for name, e in results[comp].items():
            assert e < (1e-9 if "|value|" in name else COMPONENT_TOL), (comp, name, e)


def test_comparison_catches_a_wrong_fast_path(monkeypatch):
    """The comparisons above can fail: a fast attention that forgets the scale is caught."""
    monkeypatch.setattr(fast_attention, "_attention_backward",
                        lambda dout, cache, *a: layers.attention_backward(dout, (*cache[:4], 1.0)))
    rng = np.random.default_rng(0)
    with pytest.raises(AssertionError, match="attention gradient"):
        compare_pair("attention", [rand(rng, (2, 2, 5, 4), np.float64) for _ in range(3)])


def test_every_backend(xp):
    """On CuPy arrays the fast functions run the reference; on NumPy their own code. Same results."""
    from minivit.backend import to_numpy

    rng = np.random.default_rng(5)
    B, T, h, D = 2, 5, 2, 8
    host = [rand(rng, (B, T, D), np.float32), rand(rng, (D, 3 * D), np.float32, D ** -0.5),
            rand(rng, 3 * D, np.float32), rand(rng, (D, D), np.float32, D ** -0.5), rand(rng, D, np.float32)]
    args = [xp.asarray(a) for a in host]
    dout = xp.asarray(rand(rng, (B, T, D), np.float32))
    for fwd, bwd, fargs in [("mhsa_forward", "mhsa_backward", args + [h]),
                            ("layernorm_forward", "layernorm_backward", [args[0], args[4], args[4]]),
                            ("gelu_forward", "gelu_backward", [args[0]]),
                            ("softmax_forward", "softmax_backward", [args[0]])]:
        out, cache = getattr(fast, fwd)(*fargs)
        want, ref_cache = getattr(layers, fwd)(*fargs)
        assert type(out) is type(want)
        assert_close(to_numpy(out), to_numpy(want), np.float32, fwd)
        got, ref = getattr(fast, bwd)(dout, cache), getattr(layers, bwd)(dout, ref_cache)
        for a, b in zip(got if isinstance(got, tuple) else (got,), ref if isinstance(ref, tuple) else (ref,)):
            assert_close(to_numpy(a), to_numpy(b), np.float32, bwd)
    w, g, m, v = (xp.asarray(rand(rng, (3, 4), np.float32)) for _ in range(4))
    v = abs(v)
    state = [a.copy() for a in (w, g, m, v)]
    fast.adamw_update(w, g, m, v, 3, 1e-2, weight_decay=0.1)
    optim.adamw_update(*state, 3, 1e-2, weight_decay=0.1)
    for a, b in zip((w, m, v), (state[0], state[2], state[3])):
        assert_close(to_numpy(a), to_numpy(b), np.float32, "adamw")


# ------------------------------------------------------------------------------ a whole ViT
def _vit_step(impl, dtype, seed=0):
    cfg = ViTConfig.preset("tiny", num_classes=5, dropout=0.1, drop_path=0.2)
    model = ViT(cfg, seed=seed, dtype=dtype)
    rng = np.random.default_rng(seed)
    for p in model.parameters():                  # the zero-initialized head would zero most gradients
        p.value = (p.value + 0.1 * rng.standard_normal(p.shape)).astype(dtype)
    model.train()
    x = rng.standard_normal((3, 32, 32, 3)).astype(dtype)
    y = rng.integers(0, 5, 3)
    opt = optim.AdamW(model.named_parameters(), lr=1e-2, weight_decay=0.05)
    with ops.use(impl):
        logits = model.forward(x, make_rng(seed, 1))
        loss, cache = layers.cross_entropy_forward(logits, y)
        dx = model.backward(layers.cross_entropy_backward(cache))
        grads = {n: p.grad.copy() for n, p in model.named_parameters()}
        opt.step()
    return logits, dx, grads, {n: p.value.copy() for n, p in model.named_parameters()}


def test_whole_vit_step_matches_reference(dtype):
    calls = {}

    def counted(name, fn):
        def wrapper(*a, **k):
            calls[name] = calls.get(name, 0) + 1
            return fn(*a, **k)
        return wrapper

    impl = {n: counted(n, f) for n, f in fast.FUNCTIONS.items()}
    logits, dx, grads, params = _vit_step(impl, dtype)
    want_logits, want_dx, want_grads, want_params = _vit_step({}, dtype)
    # the fast paths really ran (the attention ones inside mhsa are inlined)
    assert {"mhsa_forward", "mhsa_backward", "layernorm_forward", "layernorm_backward", "mlp_forward",
            "mlp_backward", "linear_backward", "adamw_update"} <= set(calls)
    tol = 10 * TOL[dtype]                          # a dozen layers of rounding
    assert err(logits, want_logits) < tol
    assert err(dx, want_dx) < tol
    assert grads.keys() == want_grads.keys() and len(grads) == 4 + 12 * 2 + 2 + 2
    for n in grads:
        assert grads[n].dtype == dtype, n
        assert np.abs(want_grads[n]).max() > 0, n
        assert err(grads[n], want_grads[n]) < tol, n
        # After one AdamW step (t = 1: w moves by ~lr * sign(g)). Entries whose gradient is round-off
        # (the key bias's, exactly zero in theory: softmax ignores it) move by +-lr either way.
        real = np.abs(want_grads[n]) > 1e-3 * np.abs(want_grads[n]).max()
        assert err(params[n][real], want_params[n][real]) < tol, n


def test_ops_use_installs_and_restores():
    with ops.use(fast):
        for name in fast.FAST_NAMES:
            assert getattr(ops.F, name) is getattr(fast, name)
        assert ops.F.linear_forward is layers.linear_forward      # the rest stays reference
    assert ops.F.mhsa_forward is layers.mhsa_forward
    assert ops.F.adamw_update is optim.adamw_update


# ------------------------------------------------------------------------------ on / off
def test_enabled_follows_environment(monkeypatch):
    monkeypatch.delenv(fast.ENV_VAR, raising=False)
    assert fast.enabled() and fast.functions() == fast.FUNCTIONS
    monkeypatch.setenv(fast.ENV_VAR, "1")
    assert fast.enabled()
    monkeypatch.setenv(fast.ENV_VAR, "0")
    assert not fast.enabled()
    assert fast.functions() == {}


@pytest.mark.parametrize("env, expect_fast", [(None, True), ("0", False)])
def test_cli_train_impl_fast(monkeypatch, capsys, env, expect_fast):
    """``train --impl fast`` parses and hands the fast functions to the Trainer (or none when off)."""
    if env is None:
        monkeypatch.delenv(fast.ENV_VAR, raising=False)
    else:
        monkeypatch.setenv(fast.ENV_VAR, env)
    import minivit.train.trainer

    seen = {}

    class FakeTrainer:
        def __init__(self, cfg, out, device=None, data_dir=None, impl=None, **kwargs):
            seen["impl"] = impl
            self.out = out

        def fit(self):
            return []

    monkeypatch.setattr(minivit.train.trainer, "Trainer", FakeTrainer)
    args = cli.build_parser().parse_args(["train", "--preset", "smoke", "--impl", "fast", "--out", "unused"])
    assert args.impl == "fast"
    assert cli.cmd_train(args) == 0
    if expect_fast:
        assert seen["impl"] == fast.FUNCTIONS
        assert "fast paths" in capsys.readouterr().out
    else:
        assert not seen["impl"]
        assert "off" in capsys.readouterr().out


def test_cli_bench_impl_parses():
    args = cli.build_parser().parse_args(["bench", "--impl", "fast"])
    assert args.impl == "fast"
    assert cli.build_parser().parse_args(["bench"]).impl == "reference"
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["train", "--impl", "nope"])
