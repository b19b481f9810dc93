"""Tests for the functional core, ``minivit.layers``: one section per forward/backward pair.

For every pair:
* the forward against a direct computation written here (Python loops or the textbook formula);
* the backward against finite differences (``minivit.gradcheck``, float64, rel. error < 1e-7);
* float32 and float64 inputs keep their dtype, on every available backend (``xp`` fixture);
* bad input fails with an error that names the problem.
"""
import math

import numpy as np
import pytest

from minivit import layers as L
from minivit.backend import get_array_module, make_rng, to_numpy
from minivit.gradcheck import COMPONENT_TOL, KEY_BIAS_NOTE, check_pair, numerical_gradient, rel_error

F64 = np.float64


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def assert_gradcheck(errors, tol=COMPONENT_TOL, zero_tol=1e-9):
    """Every relative error below ``tol``; entries known to be exactly zero below ``zero_tol``."""
    assert errors
    for name, err in errors.items():
        limit = zero_tol if "|value|" in name else tol
        assert err < limit, f"{name}: {err:.3e} >= {limit:.0e}  (all: {errors})"


# ============================================================== direct reference computations
def ref_softmax_row(row):
    m = max(row)
    e = [math.exp(v - m) for v in row]
    s = sum(e)
    return np.array([v / s for v in e])


def ref_attention(q, k, v):
    """Loops over every leading index and every query: softmax(q_i . k_j / sqrt(d)) weighted sum of v_j."""
    out = np.zeros(q.shape)
    T, d = q.shape[-2:]
    for lead in np.ndindex(*q.shape[:-2]):
        for i in range(T):
            scores = [float(np.dot(q[lead][i], k[lead][j])) / math.sqrt(d) for j in range(T)]
            w = ref_softmax_row(scores)
            out[lead][i] = sum(w[j] * v[lead][j] for j in range(T))
    return out


def ref_linear(x, w, b):
    y = np.zeros(x.shape[:-1] + (w.shape[1],))
    for o in range(w.shape[1]):
        y[..., o] = b[o]
        for i in range(w.shape[0]):
            y[..., o] += x[..., i] * w[i, o]
    return y


def ref_layernorm(x, gamma, beta, eps):
    """Per row: mean, *biased* variance (divide by D), normalize, scale and shift."""
    out = np.zeros(x.shape)
    D = x.shape[-1]
    for idx in np.ndindex(*x.shape[:-1]):
        row = np.asarray(x[idx], dtype=F64)
        mu = row.sum() / D
        var = ((row - mu) ** 2).sum() / D
        out[idx] = (row - mu) / math.sqrt(var + eps) * gamma + beta
    return out


def ref_gelu(x, approximate):
    if approximate == "tanh":
        c = math.sqrt(2 / math.pi)
        f = lambda v: 0.5 * v * (1 + math.tanh(c * (v + 0.044715 * v ** 3)))  # noqa: E731
    else:
        f = lambda v: v * 0.5 * (1 + math.erf(v / math.sqrt(2)))  # noqa: E731
    return np.vectorize(f, otypes=[F64])(np.asarray(x, dtype=F64))


def ref_mhsa(x, w_qkv, b_qkv, w_out, b_out, h):
    """Eqs. 5-8 literally: per image and per head, q/k/v from the head's columns, attention, concat, project."""
    B, T, D = x.shape
    d = D // h
    out = np.zeros((B, T, D))
    for b in range(B):
        q = ref_linear(x[b], w_qkv[:, :D], b_qkv[:D])
        k = ref_linear(x[b], w_qkv[:, D:2 * D], b_qkv[D:2 * D])
        v = ref_linear(x[b], w_qkv[:, 2 * D:], b_qkv[2 * D:])
        heads = [ref_attention(q[:, j * d:(j + 1) * d], k[:, j * d:(j + 1) * d], v[:, j * d:(j + 1) * d])
                 for j in range(h)]
        out[b] = ref_linear(np.concatenate(heads, axis=1), w_out, b_out)
    return out


def ref_mlp(x, w1, b1, w2, b2, approximate):
    return ref_linear(ref_gelu(ref_linear(x, w1, b1), approximate), w2, b2)


def block_params(rng, D, M):
    r = rng.standard_normal
    return {
        "ln1_gamma": 1 + 0.1 * r(D), "ln1_beta": 0.1 * r(D),
        "w_qkv": r((D, 3 * D)) / np.sqrt(D), "b_qkv": 0.1 * r(3 * D),
        "w_out": r((D, D)) / np.sqrt(D), "b_out": 0.1 * r(D),
        "ln2_gamma": 1 + 0.1 * r(D), "ln2_beta": 0.1 * r(D),
        "w1": r((D, M)) / np.sqrt(D), "b1": 0.1 * r(M),
        "w2": r((M, D)) / np.sqrt(M), "b2": 0.1 * r(D),
    }


# ===================================================================================== patchify
def test_patchify_forward_matches_loops(rng):
    B, H, W, C, P = 2, 8, 12, 3, 4
    x = rng.standard_normal((B, H, W, C))
    out, _ = L.patchify_forward(x, P)
    gh, gw = H // P, W // P
    assert out.shape == (B, gh * gw, P * P * C)
    for b in range(B):
        for gi in range(gh):
            for gj in range(gw):
                n = gi * gw + gj                       # row-major over the patch grid
                expected = [x[b, gi * P + r, gj * P + c, ch] for r in range(P) for c in range(P) for ch in range(C)]
                np.testing.assert_array_equal(out[b, n], expected)


def test_unpatchify_inverts_patchify(xp, rng):
    x = xp.asarray(rng.standard_normal((3, 8, 12, 2)))
    patches, _ = L.patchify_forward(x, 4)
    back = L.unpatchify(patches, 8, 12, 4)
    assert get_array_module(back) is xp
    np.testing.assert_array_equal(to_numpy(back), to_numpy(x))


def test_patchify_gradcheck(rng):
    errs = check_pair(lambda x: L.patchify_forward(x, 2), L.patchify_backward,
                      [rng.standard_normal((2, 4, 6, 3))], [0], ["dx"])
    assert_gradcheck(errs)


def test_patchify_bad_input(rng):
    with pytest.raises(ValueError, match=r"image size 10x12 is not divisible by the patch size 4"):
        L.patchify_forward(rng.standard_normal((1, 10, 12, 3)), 4)
    with pytest.raises(ValueError, match=r"rank 3"):
        L.patchify_forward(rng.standard_normal((8, 8, 3)), 4)
    with pytest.raises(TypeError, match=r"floating-point.*uint8"):
        L.patchify_forward(np.zeros((1, 8, 8, 3), dtype=np.uint8), 4)
    with pytest.raises(ValueError, match=r"cannot unpatchify"):
        L.unpatchify(np.zeros((1, 5, 48)), 8, 8, 4)


# ======================================================================================= linear
def test_linear_forward_matches_loops(rng):
    x, w, b = rng.standard_normal((2, 3, 5)), rng.standard_normal((5, 4)), rng.standard_normal(4)
    y, _ = L.linear_forward(x, w, b)
    assert y.shape == (2, 3, 4)
    np.testing.assert_allclose(y, ref_linear(x, w, b), rtol=1e-12, atol=1e-12)


def test_linear_gradcheck(rng):
    r = rng.standard_normal
    assert_gradcheck(check_pair(L.linear_forward, L.linear_backward, [r((2, 3, 5)), r((5, 4)), r(4)],
                                [0, 1, 2], ["dx", "dw", "db"]))


def test_linear_shape_mismatch(rng):
    with pytest.raises(ValueError, match=r"input has 5 features but the weight expects 6"):
        L.linear_forward(rng.standard_normal((2, 5)), rng.standard_normal((6, 3)), np.zeros(3))


# ================================================================================ cls token
def test_cls_token_forward(rng):
    x, cls = rng.standard_normal((3, 4, 6)), rng.standard_normal((1, 1, 6))
    out, _ = L.cls_token_forward(x, cls)
    assert out.shape == (3, 5, 6)
    for b in range(3):
        np.testing.assert_array_equal(out[b, 0], cls[0, 0])
        np.testing.assert_array_equal(out[b, 1:], x[b])


def test_cls_token_gradcheck(rng):
    r = rng.standard_normal
    assert_gradcheck(check_pair(L.cls_token_forward, L.cls_token_backward, [r((3, 4, 6)), r((1, 1, 6))],
                                [0, 1], ["dx", "dcls"]))


def test_cls_token_bad_shape(rng):
    with pytest.raises(ValueError, match=r"class token must have shape \(1, 1, 6\)"):
        L.cls_token_forward(rng.standard_normal((3, 4, 6)), rng.standard_normal((1, 6)))


# ========================================================================== position embedding
def test_pos_embed_forward(rng):
    x, pos = rng.standard_normal((3, 5, 4)), rng.standard_normal((1, 5, 4))
    out, _ = L.pos_embed_forward(x, pos)
    for b in range(3):
        np.testing.assert_array_equal(out[b], x[b] + pos[0])


def test_pos_embed_gradcheck(rng):
    r = rng.standard_normal
    assert_gradcheck(check_pair(L.pos_embed_forward, L.pos_embed_backward, [r((3, 5, 4)), r((1, 5, 4))],
                                [0, 1], ["dx", "dpos"]))


def test_pos_embed_length_mismatch(rng):
    with pytest.raises(ValueError, match=r"position embedding has shape \(1, 5, 4\).*\(3, 6, 4\)"):
        L.pos_embed_forward(rng.standard_normal((3, 6, 4)), rng.standard_normal((1, 5, 4)))


@pytest.mark.parametrize("cls_token", [True, False])
def test_sincos_2d_position_embedding_matches_loops(cls_token):
    gh, gw, D = 3, 4, 8
    emb = L.sincos_2d_position_embedding(gh, gw, D, cls_token=cls_token, dtype=np.float64)
    T = gh * gw + cls_token
    assert emb.shape == (1, T, D) and emb.dtype == np.float64
    if cls_token:
        np.testing.assert_array_equal(emb[0, 0], 0.0)          # the class token's row is zero
    q = D // 4
    for n in range(gh * gw):
        i, j = n // gw, n % gw                                   # the patch's grid row and column
        row = emb[0, n + cls_token]
        for f in range(q):
            omega = 1.0 / 10000.0 ** (f / q)
            assert row[f] == pytest.approx(math.sin(i * omega), abs=1e-12)
            assert row[q + f] == pytest.approx(math.cos(i * omega), abs=1e-12)
            assert row[2 * q + f] == pytest.approx(math.sin(j * omega), abs=1e-12)
            assert row[3 * q + f] == pytest.approx(math.cos(j * omega), abs=1e-12)
    # every patch gets a distinct code
    assert len({tuple(np.round(r, 9)) for r in emb[0, cls_token:]}) == gh * gw


def test_sincos_2d_position_embedding_dtype_and_errors(dtype):
    assert L.sincos_2d_position_embedding(2, 2, 4, dtype=dtype).dtype == dtype
    with pytest.raises(ValueError, match=r"divisible by 4, got 6"):
        L.sincos_2d_position_embedding(2, 2, 6)


# ====================================================================================== softmax
def test_softmax_forward_matches_exp_over_sum(xp, rng):
    x = rng.standard_normal((2, 3, 7)) * 3
    s, _ = L.softmax_forward(xp.asarray(x))
    s = to_numpy(s)
    np.testing.assert_allclose(s.sum(axis=-1), 1.0, rtol=0, atol=1e-12)
    for idx in np.ndindex(2, 3):
        np.testing.assert_allclose(s[idx], ref_softmax_row(list(x[idx])), rtol=1e-12)
    # along another axis
    s0, _ = L.softmax_forward(x, axis=0)
    np.testing.assert_allclose(s0, np.exp(x) / np.exp(x).sum(axis=0, keepdims=True), rtol=1e-12)


def test_softmax_gradcheck(rng):
    assert_gradcheck(check_pair(L.softmax_forward, L.softmax_backward, [rng.standard_normal((2, 3, 6))], [0], ["dx"]))
    assert_gradcheck(check_pair(lambda x: L.softmax_forward(x, axis=1), L.softmax_backward,
                                [rng.standard_normal((2, 4, 3))], [0], ["dx"]))


def test_softmax_huge_logits_are_finite(dtype):
    x = np.array([[1e4, 0.0, -1e4], [1e4, 1e4, 1e4], [-1e4, -1e4, 3.0]], dtype=dtype)
    s, cache = L.softmax_forward(x)
    assert np.all(np.isfinite(s))
    np.testing.assert_allclose(s, [[1, 0, 0], [1 / 3, 1 / 3, 1 / 3], [0, 0, 1]], atol=1e-6)
    assert np.all(np.isfinite(L.softmax_backward(np.ones_like(x), cache)))


# ==================================================================================== attention
def test_attention_forward_matches_loops(rng):
    q, k, v = (rng.standard_normal((2, 3, 5, 4)) for _ in range(3))
    out, cache = L.attention_forward(q, k, v)
    assert out.shape == (2, 3, 5, 4)
    np.testing.assert_allclose(out, ref_attention(q, k, v), rtol=1e-10, atol=1e-12)
    A = cache[3]
    assert A.shape == (2, 3, 5, 5)
    np.testing.assert_allclose(A.sum(axis=-1), 1.0, atol=1e-12)


def test_attention_gradcheck(rng):
    r = rng.standard_normal
    assert_gradcheck(check_pair(L.attention_forward, L.attention_backward,
                                [r((2, 2, 5, 4)), r((2, 2, 5, 4)), r((2, 2, 5, 4))], [0, 1, 2], ["dq", "dk", "dv"]))
    # any leading axes, and a head width other than 4 (the 1/sqrt(d) scale depends on it)
    assert_gradcheck(check_pair(L.attention_forward, L.attention_backward,
                                [r((3, 6)), r((3, 6)), r((3, 6))], [0, 1, 2], ["dq", "dk", "dv"]))


def test_attention_large_scores_are_finite(dtype, rng):
    q = (rng.standard_normal((1, 2, 6, 8)) * 1e3).astype(dtype)
    k = (rng.standard_normal((1, 2, 6, 8)) * 1e3).astype(dtype)
    v = rng.standard_normal((1, 2, 6, 8)).astype(dtype)
    out, cache = L.attention_forward(q, k, v)
    assert np.all(np.isfinite(out))
    assert all(np.all(np.isfinite(g)) for g in L.attention_backward(np.ones_like(out), cache))


# ============================================================================ split/merge heads
def test_split_and_merge_heads(rng):
    B, T, h, d = 2, 3, 4, 5
    x = rng.standard_normal((B, T, h * d))
    s = L.split_heads(x, h)
    assert s.shape == (B, h, T, d)
    for b in range(B):
        for j in range(h):
            for t in range(T):
                np.testing.assert_array_equal(s[b, j, t], x[b, t, j * d:(j + 1) * d])
    np.testing.assert_array_equal(L.merge_heads(s), x)


def test_split_merge_heads_gradcheck(rng):
    assert_gradcheck(check_pair(lambda x: (L.split_heads(x, 3), None), lambda d, c: L.split_heads_backward(d),
                                [rng.standard_normal((2, 4, 6))], [0], ["dx"]))
    assert_gradcheck(check_pair(lambda x: (L.merge_heads(x), None), lambda d, c: L.merge_heads_backward(d, 3),
                                [rng.standard_normal((2, 3, 4, 2))], [0], ["dx"]))


def test_split_heads_width_not_divisible(rng):
    with pytest.raises(ValueError, match=r"width 10 is not divisible by the number of heads 4"):
        L.split_heads(rng.standard_normal((1, 2, 10)), 4)


# ========================================================================== multi-head attention
def mhsa_args(rng, D=8):
    r = rng.standard_normal
    return [r((2, 5, D)), r((D, 3 * D)) / np.sqrt(D), r(3 * D), r((D, D)) / np.sqrt(D), r(D)]


def test_mhsa_forward_matches_loops(rng):
    args = mhsa_args(rng)
    out, _ = L.mhsa_forward(*args, 2)
    np.testing.assert_allclose(out, ref_mhsa(*args, 2), rtol=1e-10, atol=1e-12)
    # one head is single-head attention with the full width
    out1, _ = L.mhsa_forward(*args, 1)
    np.testing.assert_allclose(out1, ref_mhsa(*args, 1), rtol=1e-10, atol=1e-12)


def test_mhsa_gradcheck(rng):
    D = 8
    errs = check_pair(lambda *a: L.mhsa_forward(*a, 2), L.mhsa_backward, mhsa_args(rng, D), [0, 1, 2, 3, 4],
                      ["dx", "dw_qkv", "db_qkv", "dw_out", "db_out"], known_zero={"db_qkv": slice(D, 2 * D)})
    assert "db_qkv [key part, |value|]" in errs
    assert_gradcheck(errs)


def test_mhsa_key_bias_gradient_is_zero(rng):
    """See gradcheck.KEY_BIAS_NOTE: a shift of every key's score by the same q.b changes no softmax."""
    assert "softmax" in KEY_BIAS_NOTE
    D = 8
    args = mhsa_args(rng, D)
    out, cache = L.mhsa_forward(*args, 2)
    db_qkv = L.mhsa_backward(rng.standard_normal(out.shape), cache)[2]
    assert np.abs(db_qkv[D:2 * D]).max() < 1e-12
    assert np.abs(db_qkv[:D]).max() > 1e-3 and np.abs(db_qkv[2 * D:]).max() > 1e-3


def test_mhsa_width_not_divisible(rng):
    args = mhsa_args(rng, 6)
    with pytest.raises(ValueError, match=r"width 6 is not divisible by the number of heads 4"):
        L.mhsa_forward(*args, 4)


# ==================================================================================== layernorm
def test_layernorm_forward_matches_rows(rng):
    x = rng.standard_normal((2, 3, 6)) * 4 + 1
    g, b = rng.standard_normal(6), rng.standard_normal(6)
    y, _ = L.layernorm_forward(x, g, b, 1e-6)
    np.testing.assert_allclose(y, ref_layernorm(x, g, b, 1e-6), rtol=1e-10, atol=1e-12)
    # with gamma=1, beta=0 each row has mean 0 and (biased) variance ~1
    y1, _ = L.layernorm_forward(x, np.ones(6), np.zeros(6), 1e-6)
    np.testing.assert_allclose(y1.mean(-1), 0, atol=1e-12)
    np.testing.assert_allclose((y1 ** 2).mean(-1), 1, atol=1e-5)


def test_layernorm_gradcheck(rng):
    r = rng.standard_normal
    assert_gradcheck(check_pair(L.layernorm_forward, L.layernorm_backward, [r((2, 3, 6)), 1 + r(6), r(6)],
                                [0, 1, 2], ["dx", "dgamma", "dbeta"]))
    # a large eps (the eps term matters in the backward too)
    assert_gradcheck(check_pair(lambda x, g, b: L.layernorm_forward(x, g, b, 0.5), L.layernorm_backward,
                                [r((4, 5)), 1 + r(5), r(5)], [0, 1, 2], ["dx", "dgamma", "dbeta"]))


def test_layernorm_gamma_shape(rng):
    with pytest.raises(ValueError, match=r"gamma and beta of shape \(6,\), got \(5,\)"):
        L.layernorm_forward(rng.standard_normal((2, 6)), np.ones(5), np.zeros(6))
    with pytest.raises(ValueError, match=r"gamma and beta"):
        L.layernorm_forward(rng.standard_normal((2, 6)), np.ones(6), np.zeros((1, 6)))


# ========================================================================================= gelu
@pytest.mark.parametrize("approximate", ["tanh", "none"])
def test_gelu_forward_matches_formula(approximate, rng):
    x = np.concatenate([rng.standard_normal(50) * 3, [0.0, -10.0, 10.0]])
    y, _ = L.gelu_forward(x, approximate)
    np.testing.assert_allclose(y, ref_gelu(x, approximate), rtol=1e-12, atol=1e-14)


def test_gelu_tanh_approximates_exact(rng):
    x = np.linspace(-6, 6, 201)
    assert np.abs(L.gelu_forward(x, "tanh")[0] - L.gelu_forward(x, "none")[0]).max() < 1e-3


@pytest.mark.parametrize("approximate", ["tanh", "none"])
def test_gelu_gradcheck(approximate, rng):
    # |x| up to ~3: far out in the tails (x ~ -5) the true gradient is ~1e-6 and the finite
    # difference's round-off (~1e-12) alone exceeds a 1e-7 relative error.
    x = rng.standard_normal((3, 4, 5))
    assert_gradcheck(check_pair(lambda x: L.gelu_forward(x, approximate), L.gelu_backward, [x], [0], ["dx"]))


def test_gelu_bad_mode(rng):
    with pytest.raises(ValueError, match=r"approximate must be 'tanh' or 'none'"):
        L.gelu_forward(rng.standard_normal(3), "erf")


# ========================================================================================== mlp
@pytest.mark.parametrize("approximate", ["tanh", "none"])
def test_mlp_forward_and_gradcheck(approximate, rng):
    r = rng.standard_normal
    D, M = 4, 6
    args = [r((2, 3, D)), r((D, M)) / 2, r(M), r((M, D)) / 2, r(D)]
    out, _ = L.mlp_forward(*args, approximate)
    np.testing.assert_allclose(out, ref_mlp(*args, approximate), rtol=1e-10, atol=1e-12)
    assert_gradcheck(check_pair(lambda *a: L.mlp_forward(*a, approximate), L.mlp_backward, args, [0, 1, 2, 3, 4],
                                ["dx", "dw1", "db1", "dw2", "db2"]))


# ====================================================================================== dropout
def test_dropout_eval_and_p0_are_identity(rng):
    x = rng.standard_normal((4, 5))
    for p, train in ((0.5, False), (0.0, True)):
        y, cache = L.dropout_forward(x, p, make_rng(0), train)
        np.testing.assert_array_equal(y, x)
        d = rng.standard_normal(x.shape)
        np.testing.assert_array_equal(L.dropout_backward(d, cache), d)
    y, _ = L.dropout_forward(x, 0.5, None, train=False)      # no generator needed at eval
    np.testing.assert_array_equal(y, x)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_dropout_keep_fraction_and_scaling(p, dtype):
    n = 200_000
    x = np.full(n, 2.0, dtype=dtype)
    y, mask = L.dropout_forward(x, p, make_rng(7), train=True)
    assert y.dtype == dtype and y.shape == x.shape
    kept = y != 0
    frac = kept.mean()
    sigma = math.sqrt(p * (1 - p) / n)
    assert abs(frac - (1 - p)) < 5 * sigma, (frac, 1 - p)
    np.testing.assert_allclose(y[kept], 2.0 / (1 - p), rtol=1e-6)  # inverted dropout: survivors scaled
    assert abs(y.mean() - 2.0) < 10 * sigma * 2.0 / (1 - p)       # expectation preserved
    d = np.ones(n, dtype=dtype)
    dx = L.dropout_backward(d, mask)
    np.testing.assert_array_equal(dx != 0, kept)                   # gradient only through the kept values
    np.testing.assert_allclose(dx[kept], 1.0 / (1 - p), rtol=1e-6)


def test_dropout_same_generator_same_mask(rng):
    x = rng.standard_normal((6, 7))
    a, _ = L.dropout_forward(x, 0.4, make_rng(3, 1), True)
    b, _ = L.dropout_forward(x, 0.4, make_rng(3, 1), True)
    c, _ = L.dropout_forward(x, 0.4, make_rng(3, 2), True)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_dropout_gradcheck(rng):
    assert_gradcheck(check_pair(lambda x: L.dropout_forward(x, 0.3, make_rng(0, 1), True), L.dropout_backward,
                                [rng.standard_normal((3, 4, 5))], [0], ["dx"]))


def test_dropout_bad_arguments(rng):
    x = rng.standard_normal(4)
    for fwd in (L.dropout_forward, L.drop_path_forward):
        with pytest.raises(ValueError, match=r"probability must be in \[0, 1\), got 1.0"):
            fwd(x, 1.0, make_rng(0), True)
        with pytest.raises(ValueError, match=r"probability must be in \[0, 1\)"):
            fwd(x, -0.1, make_rng(0), True)
        with pytest.raises(ValueError, match=r"random generator"):
            fwd(x, 0.5, None, True)


# ==================================================================================== drop path
def test_drop_path_drops_whole_samples(dtype):
    B = 20_000
    p = 0.25
    x = np.ones((B, 3, 4), dtype=dtype)
    y, mask = L.drop_path_forward(x, p, make_rng(5), train=True)
    assert y.dtype == dtype and mask.shape == (B, 1, 1)
    per_sample = y.reshape(B, -1)
    dropped = (per_sample == 0).all(axis=1)
    kept = (per_sample != 0).all(axis=1)
    assert np.all(dropped | kept)                                  # all-or-nothing per sample
    np.testing.assert_allclose(per_sample[kept], 1 / (1 - p), rtol=1e-6)
    assert abs(kept.mean() - (1 - p)) < 5 * math.sqrt(p * (1 - p) / B)
    # eval: identity
    y_eval, cache = L.drop_path_forward(x, p, None, train=False)
    assert y_eval is x and cache is None


def test_drop_path_gradcheck(rng):
    assert_gradcheck(check_pair(lambda x: L.drop_path_forward(x, 0.5, make_rng(1, 2), True), L.drop_path_backward,
                                [rng.standard_normal((6, 3, 4))], [0], ["dx"]))


# ================================================================================ encoder block
def ref_block(x, p, h, eps, approximate):
    """Eqs. (2)-(3), pre-norm, from the reference functions above."""
    z1 = x + ref_mhsa(ref_layernorm(x, p["ln1_gamma"], p["ln1_beta"], eps), p["w_qkv"], p["b_qkv"],
                      p["w_out"], p["b_out"], h)
    return z1 + ref_mlp(ref_layernorm(z1, p["ln2_gamma"], p["ln2_beta"], eps), p["w1"], p["b1"], p["w2"], p["b2"],
                        approximate)


def test_encoder_block_forward_matches_reference(rng):
    D, M, h = 8, 12, 2
    p = block_params(rng, D, M)
    assert set(p) == set(L.BLOCK_PARAM_NAMES)
    x = rng.standard_normal((2, 4, D))
    out, _ = L.encoder_block_forward(x, p, h, 1e-6, "tanh")
    np.testing.assert_allclose(out, ref_block(x, p, h, 1e-6, "tanh"), rtol=1e-10, atol=1e-12)
    # dropout / drop-path are ignored at evaluation
    out_eval, _ = L.encoder_block_forward(x, p, h, 1e-6, "tanh", dropout=0.5, drop_path=0.5,
                                          rng=make_rng(0), train=False)
    np.testing.assert_array_equal(out_eval, out)
    # in training they change the output
    out_train, _ = L.encoder_block_forward(x, p, h, 1e-6, "tanh", dropout=0.5, drop_path=0.0,
                                           rng=make_rng(0), train=True)
    assert not np.allclose(out_train, out)


@pytest.mark.parametrize("train", [False, True], ids=["eval", "train-dropout-droppath"])
def test_encoder_block_gradcheck(train, rng):
    D, M, h = 8, 12, 2
    p = block_params(rng, D, M)
    names = list(p)
    x = rng.standard_normal((3, 4, D))

    def fwd(x, *values):
        return L.encoder_block_forward(x, dict(zip(names, values)), h, 1e-6, "none" if train else "tanh",
                                       0.2, 0.3, make_rng(0, 3), train)

    def bwd(dout, cache):
        dx, g = L.encoder_block_backward(dout, cache)
        assert set(g) == set(names)
        return (dx, *[g[n] for n in names])

    errs = check_pair(fwd, bwd, [x, *p.values()], list(range(13)), ["dx", *names],
                      known_zero={"b_qkv": slice(D, 2 * D)})
    assert len(errs) == 14
    assert_gradcheck(errs)


# ======================================================================================= pooling
def test_cls_pool_and_gap_forward(rng):
    x = rng.standard_normal((2, 5, 3))
    y, _ = L.cls_pool_forward(x)
    np.testing.assert_array_equal(y, x[:, 0])
    g, _ = L.gap_forward(x)
    for b in range(2):
        for d in range(3):
            assert g[b, d] == pytest.approx(sum(x[b, t, d] for t in range(5)) / 5, rel=1e-12)


def test_pooling_gradcheck(rng):
    assert_gradcheck(check_pair(L.cls_pool_forward, L.cls_pool_backward, [rng.standard_normal((2, 5, 3))], [0], ["dx"]))
    assert_gradcheck(check_pair(L.gap_forward, L.gap_backward, [rng.standard_normal((2, 5, 3))], [0], ["dx"]))
    out, cache = L.cls_pool_forward(rng.standard_normal((2, 5, 3)))
    dx = L.cls_pool_backward(np.ones((2, 3)), cache)
    assert np.all(dx[:, 1:] == 0) and np.all(dx[:, 0] == 1)


# ================================================================================ cross-entropy
def ref_cross_entropy(logits, target):
    """Loops: the mean over samples of -sum_k t_k log p_k, p = softmax(logits)."""
    total = 0.0
    for s, t in zip(logits, target):
        p = ref_softmax_row(list(s))
        total += -sum(t[k] * math.log(p[k]) for k in range(len(s)))
    return total / len(logits)


def onehot(labels, K):
    t = np.zeros((len(labels), K))
    t[np.arange(len(labels)), labels] = 1
    return t


def test_cross_entropy_int_labels(rng):
    logits = rng.standard_normal((5, 4)) * 2
    labels = np.array([0, 3, 1, 1, 2])
    loss, _ = L.cross_entropy_forward(logits, labels)
    assert isinstance(loss, float)
    expected = sum(-math.log(ref_softmax_row(list(logits[b]))[labels[b]]) for b in range(5)) / 5
    assert loss == pytest.approx(expected, rel=1e-12)


def test_cross_entropy_label_smoothing(rng):
    logits = rng.standard_normal((5, 4))
    labels = np.array([0, 3, 1, 1, 2])
    eps, K = 0.1, 4
    loss, _ = L.cross_entropy_forward(logits, labels, label_smoothing=eps)
    target = (1 - eps) * onehot(labels, K) + eps / K
    assert loss == pytest.approx(ref_cross_entropy(logits, target), rel=1e-12)
    # smoothing of one-hot integers equals smoothing of the same one-hot passed as soft targets
    assert loss == pytest.approx(L.cross_entropy_forward(logits, onehot(labels, K), eps)[0], rel=1e-12)


def test_cross_entropy_soft_targets(rng):
    logits = rng.standard_normal((5, 4))
    target = rng.dirichlet(np.ones(4), size=5)
    loss, _ = L.cross_entropy_forward(logits, target)
    assert loss == pytest.approx(ref_cross_entropy(logits, target), rel=1e-12)
    t_copy = target.copy()
    L.cross_entropy_forward(logits, target, 0.2)
    np.testing.assert_array_equal(target, t_copy)                 # the caller's targets are not modified


@pytest.mark.parametrize("smoothing,soft", [(0.0, False), (0.1, False), (0.0, True), (0.2, True)])
def test_cross_entropy_gradcheck(smoothing, soft, rng):
    logits = rng.standard_normal((4, 6))
    labels = rng.dirichlet(np.ones(6), size=4) if soft else rng.integers(0, 6, size=4)
    _, cache = L.cross_entropy_forward(logits, labels, smoothing)
    analytic = L.cross_entropy_backward(cache)
    num = numerical_gradient(lambda: L.cross_entropy_forward(logits, labels, smoothing)[0], logits)
    assert rel_error(analytic, num) < COMPONENT_TOL
    # dloss scales the gradient
    np.testing.assert_allclose(L.cross_entropy_backward(cache, dloss=3.0), 3 * analytic, rtol=1e-12)


def test_cross_entropy_huge_logits(dtype):
    logits = np.array([[1e4, 0.0, -1e4], [0.0, 1e4, 0.0]], dtype=dtype)
    loss, cache = L.cross_entropy_forward(logits, np.array([0, 1]))
    assert math.isfinite(loss) and loss == pytest.approx(0.0, abs=1e-6)
    loss, cache = L.cross_entropy_forward(logits, np.array([1, 0]))
    assert math.isfinite(loss) and loss == pytest.approx(1e4, rel=1e-6)   # (1e4 + 1e4) / 2
    d = L.cross_entropy_backward(cache)
    assert np.all(np.isfinite(d)) and d.dtype == dtype
    np.testing.assert_allclose(d, [[0.5, -0.5, 0.0], [-0.5, 0.5, 0.0]], atol=1e-6)


def test_cross_entropy_bad_labels(rng):
    logits = rng.standard_normal((4, 3))
    with pytest.raises(ValueError, match=r"got 5 labels for 4 logits"):
        L.cross_entropy_forward(logits, np.zeros(5, dtype=int))
    with pytest.raises(ValueError, match=r"labels must be \(B,\) integers or \(B, K\) soft targets.*\(4, 4\)"):
        L.cross_entropy_forward(logits, np.zeros((4, 4)))
    with pytest.raises(TypeError, match=r"class-index labels must be integers"):
        L.cross_entropy_forward(logits, np.zeros(4))
    with pytest.raises(ValueError, match=r"logits must have shape \(B, K\)"):
        L.cross_entropy_forward(rng.standard_normal((2, 4, 3)), np.zeros(2, dtype=int))
    with pytest.raises(ValueError, match=r"label_smoothing must be in \[0, 1\)"):
        L.cross_entropy_forward(logits, np.zeros(4, dtype=int), 1.0)


# ===================================================================== dtypes and backends, all pairs
def _cases():
    """name -> (input shapes, forward(*args), backward(dout, cache) -> grads for every arg, deterministic)."""
    D, M, h = 8, 12, 2

    def block_fwd(x, *values):
        return L.encoder_block_forward(x, dict(zip(L.BLOCK_PARAM_NAMES, values)), h)

    def block_bwd(dout, cache):
        dx, g = L.encoder_block_backward(dout, cache)
        return (dx, *[g[n] for n in L.BLOCK_PARAM_NAMES])

    block_shapes = [(2, 4, D), (D,), (D,), (D, 3 * D), (3 * D,), (D, D), (D,), (D,), (D,), (D, M), (M,), (M, D), (D,)]
    return {
        "patchify": ([(2, 8, 8, 3)], lambda x: L.patchify_forward(x, 4), L.patchify_backward),
        "linear": ([(2, 3, 5), (5, 4), (4,)], L.linear_forward, L.linear_backward),
        "cls_token": ([(2, 3, 4), (1, 1, 4)], L.cls_token_forward, L.cls_token_backward),
        "pos_embed": ([(2, 3, 4), (1, 3, 4)], L.pos_embed_forward, L.pos_embed_backward),
        "softmax": ([(2, 3, 5)], L.softmax_forward, L.softmax_backward),
        "attention": ([(2, 2, 5, 4)] * 3, L.attention_forward, L.attention_backward),
        "split_heads": ([(2, 3, 8)], lambda x: (L.split_heads(x, 2), None), lambda d, c: L.split_heads_backward(d)),
        "merge_heads": ([(2, 2, 3, 4)], lambda x: (L.merge_heads(x), None), lambda d, c: L.merge_heads_backward(d, 2)),
        "mhsa": ([(2, 4, D), (D, 3 * D), (3 * D,), (D, D), (D,)], lambda *a: L.mhsa_forward(*a, h), L.mhsa_backward),
        "layernorm": ([(2, 3, 6), (6,), (6,)], L.layernorm_forward, L.layernorm_backward),
        "gelu_tanh": ([(2, 3, 4)], lambda x: L.gelu_forward(x, "tanh"), L.gelu_backward),
        "gelu_exact": ([(2, 3, 4)], lambda x: L.gelu_forward(x, "none"), L.gelu_backward),
        "mlp": ([(2, 3, D), (D, M), (M,), (M, D), (D,)], L.mlp_forward, L.mlp_backward),
        "dropout_eval": ([(2, 3, 4)], lambda x: L.dropout_forward(x, 0.5, None, False), L.dropout_backward),
        "drop_path_eval": ([(2, 3, 4)], lambda x: L.drop_path_forward(x, 0.5, None, False), L.drop_path_backward),
        "encoder_block": (block_shapes, block_fwd, block_bwd),
        "cls_pool": ([(2, 5, 4)], L.cls_pool_forward, L.cls_pool_backward),
        "gap": ([(2, 5, 4)], L.gap_forward, L.gap_backward),
    }


CASES = _cases()


@pytest.mark.parametrize("name", sorted(CASES))
def test_pair_keeps_dtype_and_backend(name, xp, dtype):
    shapes, fwd, bwd = CASES[name]
    rng = np.random.default_rng(0)
    host = [rng.standard_normal(s) * (0.5 if len(s) == 2 else 1.0) for s in shapes]

    def run(arrays, xp_, dt):
        args = [xp_.asarray(a.astype(dt)) for a in arrays]
        out, cache = fwd(*args)
        dout = xp_.asarray(np.random.default_rng(1).standard_normal(out.shape).astype(dt))
        grads = bwd(dout, cache)
        return out, grads if isinstance(grads, tuple) else (grads,)

    out, grads = run(host, xp, dtype)
    assert get_array_module(out) is xp
    assert out.dtype == dtype, f"{name}: output {out.dtype} for {np.dtype(dtype)} input"
    assert len(grads) == len(shapes)
    for g, s in zip(grads, shapes):
        assert get_array_module(g) is xp
        assert g.dtype == dtype, f"{name}: gradient {g.dtype} for {np.dtype(dtype)} input"
        assert g.shape == s
    # same numbers as the float64 NumPy run (float32: to float32 precision)
    out64, grads64 = run(host, np, np.float64)
    tol = 2e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(to_numpy(out), out64, rtol=tol, atol=tol)
    for g, g64 in zip(grads, grads64):
        np.testing.assert_allclose(to_numpy(g), g64, rtol=tol, atol=tol)


@pytest.mark.parametrize("fwd", [L.dropout_forward, L.drop_path_forward], ids=["dropout", "drop_path"])
def test_dropout_train_on_backend(fwd, xp, dtype):
    x = xp.ones((64, 3, 4), dtype=dtype)
    y, mask = fwd(x, 0.5, make_rng(0, xp=xp), True)
    assert get_array_module(y) is xp and y.dtype == dtype
    vals = np.unique(to_numpy(y))
    assert set(vals.tolist()) <= {0.0, 2.0} and len(vals) == 2


def test_cross_entropy_on_backend(xp, dtype):
    rng = np.random.default_rng(0)
    logits = xp.asarray(rng.standard_normal((4, 3)).astype(dtype))
    labels = xp.asarray(np.array([0, 2, 1, 1]))
    loss, cache = L.cross_entropy_forward(logits, labels, 0.1)
    if xp is np:
        assert isinstance(loss, float)
    else:       # on a GPU the loss stays a 0-d device array (float() would wait for the GPU)
        assert get_array_module(loss) is xp and loss.shape == ()
        loss = float(loss)
    d = L.cross_entropy_backward(cache)
    assert get_array_module(d) is xp and d.dtype == dtype and d.shape == (4, 3)
    ref, _ = L.cross_entropy_forward(to_numpy(logits).astype(np.float64), to_numpy(labels), 0.1)
    assert loss == pytest.approx(ref, rel=1e-5 if dtype == np.float32 else 1e-12)


def test_cross_entropy_rejects_labels_out_of_range():
    from minivit.layers import cross_entropy_forward

    with pytest.raises(ValueError, match=r"class labels must be in \[0, 2\]"):
        cross_entropy_forward(np.zeros((2, 3)), np.array([0, -1]))
    with pytest.raises(ValueError, match="class labels"):
        cross_entropy_forward(np.zeros((2, 3)), np.array([0, 3]))


def test_component_checks_use_the_given_pieces_inside_composites():
    """A broken attention backward must show up in the MSA and block rows too, not only its own."""
    from minivit import layers, ops
    from minivit.gradcheck import component_checks

    def attention_backward_without_scale(dout, cache):
        q, k, v, A, scale = cache
        return layers.attention_backward(dout, (q, k, v, A, 1.0))

    rows = dict(component_checks(F={"attention_backward": attention_backward_without_scale}))
    assert rows["attention"]["dq"] > 1e-3
    assert rows["mhsa"]["dx"] > 1e-3
    assert rows["encoder_block"]["dx"] > 1e-3
    assert ops.F.attention_backward is layers.attention_backward     # restored afterwards
