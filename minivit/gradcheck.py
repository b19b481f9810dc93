"""Gradient checking: compare hand-written backward passes with centered finite differences.

For an operation out = f(x) and a random upstream gradient dout, the backward pass claims
dL/dx for L = sum(out * dout). Finite differences estimate the same thing one entry at a time:

    dL/dx_i  ~  sum( (f(x + h e_i) - f(x - h e_i)) * dout ) / (2h)

minivit uses the fourth-order version of this centered difference (see
:func:`numerical_gradient`), whose truncation error is O(h^4) instead of O(h^2); subtracting
the outputs *before* summing keeps round-off small. Errors are reported as
the CS231n relative error  max_i |a_i - n_i| / max(|a_i| + |n_i|, 1e-8)  in float64.

``python -m minivit gradcheck`` runs :func:`run_all` and prints one row per gradient;
``--device gpu`` runs every forward and backward on the GPU (CuPy, still float64): the inputs
live there, are perturbed there, and only the outputs come back to the host for the sums.
"""
from __future__ import annotations

import functools

import numpy as np

from minivit.backend import get_xp, make_rng, to_device, to_numpy

COMPONENT_TOL = 1e-7
MODEL_TOL = 1e-6


def rel_error(a, b) -> float:
    """CS231n relative error: max over entries of |a - b| / max(|a| + |b|, 1e-8)."""
    a = np.asarray(to_numpy(a), dtype=np.float64)
    b = np.asarray(to_numpy(b), dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))))


def numerical_gradient(f, x, dout=None, h=1e-4, indices=None):
    """Centered finite-difference gradient of sum(f() * dout) with respect to the array x (in place).

    f: a function of no arguments that reads x and returns an array (or a scalar when dout is None).
    Uses the fourth-order centered stencil

        f'(x) ~ (-f(x+2h) + 8 f(x+h) - 8 f(x-h) + f(x-2h)) / (12 h)

    whose truncation error (~h^4) is negligible at h = 1e-4, so the step can stay large enough
    for round-off to stay small too (the plain two-point (f(x+h) - f(x-h)) / 2h is the second-order
    version: its truncation error is O(h^2)).
    indices: optional list of multi-indices to check (the rest of the result stays NaN).
    x may be a device (CuPy) array: it is perturbed in place there; f's outputs come to the host.
    """
    grad = np.full(x.shape, np.nan) if indices is not None else np.zeros(x.shape)
    it = indices if indices is not None else np.ndindex(*x.shape)

    def at(ix, value):
        x[ix] = value
        return np.array(to_numpy(f()), dtype=np.float64, copy=True)   # copy: f may return a view of x

    for ix in it:
        old = float(x[ix])              # a number, not a 0-d view (CuPy's x[ix] is one)
        p2, p1, m1, m2 = at(ix, old + 2 * h), at(ix, old + h), at(ix, old - h), at(ix, old - 2 * h)
        x[ix] = old
        diff = 8.0 * (p1 - m1) - (p2 - m2)                  # differences first: less round-off
        grad[ix] = (np.sum(diff * dout) if dout is not None else diff) / (12.0 * h)
    return grad


def check_pair(forward, backward, args, wrt, names, seed=0, h=1e-4, known_zero=None, xp=np):
    """Check ``backward`` against finite differences of ``forward``.

    forward(*args) -> (out, cache);  backward(dout, cache) -> gradient(s) in the order of ``wrt``.
    wrt: positions in args of the float arrays to check; names: their labels.
    known_zero: {name: index} for entries whose true gradient is exactly zero (the key bias, see
    ``KEY_BIAS_NOTE``): a relative error of two round-off residues means nothing, so those entries
    are reported separately as the largest absolute value either method gives them.
    xp: the array module to run on (the host arrays in args are copied there first).
    returns: {name: relative error}
    """
    rng = np.random.default_rng(seed)
    args = [to_device(a, xp) if isinstance(a, np.ndarray) else a for a in args]
    out, cache = forward(*args)
    dout = rng.standard_normal(np.shape(out))
    grads = backward(to_device(dout, xp), cache)
    if not isinstance(grads, tuple):
        grads = (grads,)
    errors = {}
    for i, (pos, name) in enumerate(zip(wrt, names)):
        num = numerical_gradient(lambda: forward(*args)[0], args[pos], dout, h)
        analytic = np.asarray(to_numpy(grads[i]), dtype=np.float64)
        if known_zero and name in known_zero:
            zero = np.zeros(num.shape, bool)
            zero[known_zero[name]] = True
            errors[f"{name} [key part, |value|]"] = float(max(np.abs(analytic[zero]).max(), np.abs(num[zero]).max()))
            analytic, num = analytic[~zero], num[~zero]
        errors[name] = rel_error(analytic, num)
    return errors


KEY_BIAS_NOTE = """The key bias gets exactly zero gradient: adding b to every key adds the same number q.b
to every score in a row of q k^T, and softmax ignores a constant shift. Finite differences then
measure only round-off (~1e-11), so those entries are checked for being ~0, not by relative error."""


def _block_params(rng, D, M):
    p = {
        "ln1_gamma": 1 + 0.1 * rng.standard_normal(D), "ln1_beta": 0.1 * rng.standard_normal(D),
        "w_qkv": rng.standard_normal((D, 3 * D)) / np.sqrt(D), "b_qkv": 0.1 * rng.standard_normal(3 * D),
        "w_out": rng.standard_normal((D, D)) / np.sqrt(D), "b_out": 0.1 * rng.standard_normal(D),
        "ln2_gamma": 1 + 0.1 * rng.standard_normal(D), "ln2_beta": 0.1 * rng.standard_normal(D),
        "w1": rng.standard_normal((D, M)) / np.sqrt(D), "b1": 0.1 * rng.standard_normal(M),
        "w2": rng.standard_normal((M, D)) / np.sqrt(M), "b2": 0.1 * rng.standard_normal(D),
    }
    return p


def component_checks(F=None, seed=0, xp=np):
    """Yield (component, {gradient name: relative error}) for every operation in the functional core.

    F: a namespace (or dict) of functions to check; missing ones are minivit's reference. It is
    installed in ``ops.F`` while checking, so composite operations (MSA, MLP, the block) use its
    pieces too. xp: the array module to run on (numpy, or cupy for the GPU).
    """
    from minivit import ops

    with ops.use(F or {}):
        yield from _component_checks(ops.F, seed, xp)


def _component_checks(F, seed, xp=np):
    rng = np.random.default_rng(seed)
    r = rng.standard_normal
    check = functools.partial(check_pair, xp=xp)       # every check on xp's device
    B, T, D, H, M = 2, 5, 8, 2, 12

    yield "patchify", check(lambda x: F.patchify_forward(x, 4), F.patchify_backward, [r((2, 8, 8, 3))], [0], ["dx"])
    yield "linear", check(F.linear_forward, F.linear_backward, [r((B, T, 6)), r((6, D)), r(D)], [0, 1, 2], ["dx", "dw", "db"])
    yield "cls_token", check(F.cls_token_forward, F.cls_token_backward, [r((B, T, D)), r((1, 1, D))], [0, 1], ["dx", "dcls"])
    yield "pos_embed", check(F.pos_embed_forward, F.pos_embed_backward, [r((B, T, D)), r((1, T, D))], [0, 1], ["dx", "dpos"])
    yield "learned_2d_pos", check(lambda row, col: F.learned_2d_pos_forward(row, col, True),
                                  F.learned_2d_pos_backward, [r((3, D // 2)), r((4, D // 2))], [0, 1],
                                  ["drow", "dcol"])
    yield "softmax", check(F.softmax_forward, F.softmax_backward, [r((B, T, 7))], [0], ["dx"])
    yield "attention", check(F.attention_forward, F.attention_backward,
                             [r((B, H, T, 4)), r((B, H, T, 4)), r((B, H, T, 4))], [0, 1, 2], ["dq", "dk", "dv"])
    yield "split_heads", check(lambda x: (F.split_heads(x, H), None), lambda d, c: F.split_heads_backward(d),
                               [r((B, T, D))], [0], ["dx"])
    yield "merge_heads", check(lambda x: (F.merge_heads(x), None), lambda d, c: F.merge_heads_backward(d, H),
                               [r((B, H, T, 4))], [0], ["dx"])
    yield "mhsa", check(lambda x, wq, bq, wo, bo: F.mhsa_forward(x, wq, bq, wo, bo, H), F.mhsa_backward,
                        [r((B, T, D)), r((D, 3 * D)) / np.sqrt(D), r(3 * D), r((D, D)) / np.sqrt(D), r(D)],
                        [0, 1, 2, 3, 4], ["dx", "dw_qkv", "db_qkv", "dw_out", "db_out"],
                        known_zero={"db_qkv": slice(D, 2 * D)})
    yield "layernorm", check(F.layernorm_forward, F.layernorm_backward, [r((B, T, D)), 1 + r(D), r(D)],
                             [0, 1, 2], ["dx", "dgamma", "dbeta"])
    yield "gelu (tanh)", check(lambda x: F.gelu_forward(x, "tanh"), F.gelu_backward, [r((B, T, D))], [0], ["dx"])
    yield "gelu (exact)", check(lambda x: F.gelu_forward(x, "none"), F.gelu_backward, [r((B, T, D))], [0], ["dx"])
    yield "mlp", check(F.mlp_forward, F.mlp_backward,
                       [r((B, T, D)), r((D, M)) / np.sqrt(D), r(M), r((M, D)) / np.sqrt(M), r(D)],
                       [0, 1, 2, 3, 4], ["dx", "dw1", "db1", "dw2", "db2"])
    # Dropout: a fresh generator with the same seed on every call, so every forward draws the same mask.
    yield "dropout", check(lambda x: F.dropout_forward(x, 0.3, make_rng(seed, 1, xp=xp), True),
                           F.dropout_backward, [r((B, T, D))], [0], ["dx"])
    yield "drop_path", check(lambda x: F.drop_path_forward(x, 0.5, make_rng(seed, 2, xp=xp), True),
                             F.drop_path_backward,
                             [r((4, T, D))], [0], ["dx"])
    yield "cls_pool", check(F.cls_pool_forward, F.cls_pool_backward, [r((B, T, D))], [0], ["dx"])
    yield "tanh (pre-logits)", check(F.tanh_forward, F.tanh_backward, [r((B, D))], [0], ["dx"])
    yield "gap", check(F.gap_forward, F.gap_backward, [r((B, T, D))], [0], ["dx"])

    # The encoder block: gradients of the input and of all twelve parameters.
    p = _block_params(rng, D, M)
    x = r((B, T, D))
    names = list(p)

    def block_fwd(x, *values):
        return F.encoder_block_forward(x, dict(zip(names, values)), H, 1e-6, "tanh",
                                       0.1, 0.2, make_rng(seed, 3, xp=xp), True)

    def block_bwd(dout, cache):
        dx, g = F.encoder_block_backward(dout, cache)
        return (dx, *[g[n] for n in names])

    yield "encoder_block", check(block_fwd, block_bwd, [x, *p.values()], list(range(13)), ["dx", *names],
                                 known_zero={"b_qkv": slice(D, 2 * D)})

    # Cross-entropy: a scalar loss, with label smoothing, with integer and with soft targets.
    for smoothing, soft in ((0.0, False), (0.1, False), (0.1, True)):
        logits = xp.asarray(r((4, 6)))
        labels = xp.asarray(rng.dirichlet(np.ones(6), size=4) if soft else rng.integers(0, 6, size=4))
        loss, cache = F.cross_entropy_forward(logits, labels, smoothing)
        analytic = F.cross_entropy_backward(cache)
        num = numerical_gradient(lambda: F.cross_entropy_forward(logits, labels, smoothing)[0], logits)
        label = f"cross_entropy (smoothing={smoothing}{', soft targets' if soft else ''})"
        yield label, {"dlogits": rel_error(analytic, num)}

    # Training-only pieces: token dropping with a fixed kept set (class token + 3 of 4 patches), and
    # position tables interpolated to a smaller grid (progressive resizing).
    keep = xp.asarray(np.array([[0, 2, 3], [1, 2, 3]]))
    yield "token_drop", check(lambda x: F.token_drop_forward(x, keep, 1), F.token_drop_backward,
                              [r((B, T, D))], [0], ["dx"])
    yield "pos_resize", check(lambda p: F.pos_resize_forward(p, 4, 4, 3, 3, True), F.pos_resize_backward,
                              [r((1, 17, D))], [0], ["dpos"])
    yield "table_resize", check(lambda t: F.table_resize_forward(t, 3), F.table_resize_backward,
                                [r((4, D))], [0], ["dtable"])


def model_check(config=None, seed=0, samples_per_param=12, batch_size=2, xp=np):
    """Finite-difference check of the whole ViT's backward (float64).

    All parameters are randomized first (the zero-initialized head would otherwise make every
    other gradient exactly zero, and the check pass trivially). For each parameter tensor,
    ``samples_per_param`` random entries (all of them for small tensors) are checked.
    xp: the array module to run on. returns: {parameter name: relative error}, plus 'dx' for the input image.
    """
    from minivit.model import ViT, ViTConfig

    config = config or ViTConfig.preset("tiny", image_size=16, patch_size=4, num_classes=5)
    model = ViT(config, seed=seed).to(dtype=np.float64)
    rng = np.random.default_rng(seed + 1)
    for name, p in model.named_parameters():
        if name.endswith("gamma"):
            p.value = 1.0 + 0.1 * rng.standard_normal(p.value.shape)
        elif p.value.ndim == 2:                                   # weights: keep activations O(1)
            p.value = rng.standard_normal(p.value.shape) / np.sqrt(p.value.shape[0])
        else:
            p.value = 0.3 * rng.standard_normal(p.value.shape)
    model.to(xp=xp)
    x = xp.asarray(rng.standard_normal((batch_size, config.image_size, config.image_size, config.in_channels)))
    logits = model.forward(x)
    dlogits = rng.standard_normal(logits.shape)                  # on the host, for the finite differences' sums
    dx = to_numpy(model.backward(xp.asarray(dlogits)))

    def f():
        return model.forward(x)

    errors = {}
    D = config.dim
    for name, p in model.named_parameters():
        if name.endswith("attn.qkv.bias"):     # the key part's true gradient is 0: see KEY_BIAS_NOTE
            key = slice(D, 2 * D)
            num = numerical_gradient(f, p.value, dlogits, indices=[(i,) for i in range(D, 2 * D)])
            errors[name + " [key part, |value|]"] = float(max(np.abs(to_numpy(p.grad)[key]).max(), np.abs(num[key]).max()))
            idx = [i for i in _sample_indices(rng, p.value.shape, 3 * samples_per_param) if not D <= i[0] < 2 * D]
        else:
            idx = _sample_indices(rng, p.value.shape, samples_per_param)
        num = numerical_gradient(f, p.value, dlogits, indices=idx)
        sel = tuple(np.array(idx).T)
        errors[name] = rel_error(to_numpy(p.grad)[sel], num[sel])
    idx = _sample_indices(rng, x.shape, samples_per_param)
    num = numerical_gradient(f, x, dlogits, indices=idx)
    sel = tuple(np.array(idx).T)
    errors["dx (input image)"] = rel_error(dx[sel], num[sel])
    return errors


def _sample_indices(rng, shape, k):
    size = int(np.prod(shape))
    flat = np.arange(size) if size <= k else rng.choice(size, size=k, replace=False)
    return [np.unravel_index(int(i), shape) for i in flat]


def run_all(verbose=True, seed=0, device=None):
    """Check every component and the whole model; print a table. Returns True when all pass.

    device: None or 'cpu' (NumPy), 'gpu' (CuPy; RuntimeError without one) or 'auto'."""
    xp = np if device is None else get_xp(device)
    if verbose:
        print(f"device: {'cpu (NumPy)' if xp is np else 'gpu (CuPy ' + xp.__version__ + ')'}, float64\n")
    rows = []
    for comp, errs in component_checks(seed=seed, xp=xp):
        for g, e in errs.items():
            rows.append((comp, g, e, COMPONENT_TOL))
    for name, e in model_check(seed=seed, xp=xp).items():
        rows.append(("ViT (tiny, float64)", name, e, MODEL_TOL))
    ok = all(e < tol for _, _, e, tol in rows)
    if verbose:
        w1 = max(len(r[0]) for r in rows)
        w2 = max(len(r[1]) for r in rows)
        print(f"{'component':<{w1}}  {'gradient':<{w2}}  {'rel. error':>10}  {'limit':>7}")
        print("-" * (w1 + w2 + 27))
        for comp, g, e, tol in rows:
            print(f"{comp:<{w1}}  {g:<{w2}}  {e:10.2e}  {tol:7.0e}  {'ok' if e < tol else 'FAIL'}")
        bad = sum(e >= tol for _, _, e, tol in rows)
        print(f"\n{len(rows) - bad} passed, {bad} failed (centered finite differences, float64)")
    return ok
