"""Check each fused GPU kernel against its plain twin, and record the ones that pass.

    python -m minivit fused                          # the kernels, and which ones MINIVIT_FUSED lets run
    python -m minivit fused --verify                 # on a GPU: every kernel vs its plain twin
    python -m minivit fused --verify softmax_forward --json out.json --record

For each kernel and dtype, :func:`verify` builds seeded inputs of training-like shapes (ViT-Lite
widths, a 65-token sequence, rows shorter and longer than a warp), runs the kernel (through its
launcher in ``minivit.fast.fused.kernels``) and the plain code (``minivit.layers`` / ``minivit.optim`` on the
same device) and compares every output with the normwise relative error
``max|fused - plain| / max|plain|``. Limits: 1e-5 in float32, 1e-12 in float64. Dropout and the
residual kernel draw their uniforms from a generator seeded like the plain call's, so they
must reproduce the plain masks exactly.

``--record`` (``minivit.fast.fused.record``) adds the kernels that passed to the table of verified
kernels (``minivit/fast/fused/verified.json``, or ``$MINIVIT_FUSED_TABLE``) with the device, CuPy
version, errors and date: from then on they run by default (``MINIVIT_FUSED=verified``).
"""
from __future__ import annotations

import datetime

import numpy as np

from minivit.fast.fused import kernels as fk
from minivit import layers, optim
from minivit.backend import gpu_name, make_rng, to_numpy

TOLERANCE = {"float32": 1e-5, "float64": 1e-12}


def rel_error(fused_out, plain_out) -> float:
    """max|a - b| / max|b| over all entries (0 when both are all zero), on the host in float64."""
    a = np.asarray(to_numpy(fused_out), dtype=np.float64)
    b = np.asarray(to_numpy(plain_out), dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: fused {a.shape} vs plain {b.shape}")
    scale = np.abs(b).max() if b.size else 0.0
    diff = np.abs(a - b).max() if b.size else 0.0
    return float(diff / scale) if scale > 0 else float(diff)


# ------------------------------------------------------------------------------- the cases
# Each case: (xp, dtype, launch, rng) -> [(label, fused output, plain output), ...]
def _inputs(xp, dtype, rng, *shapes, scale=1.0):
    return [xp.asarray((scale * rng.standard_normal(s)).astype(dtype)) for s in shapes]


def _case_gelu_bias_forward(xp, dtype, launch, rng):
    h, b = _inputs(xp, dtype, rng, (520, 512), (512,), scale=2.0)
    pre = h + b                                              # linear_forward's y += b
    y, (_, t, _) = layers.gelu_forward(pre)
    fx, ft, fy = launch(h.copy(), b)
    _, ft0, fy0 = launch(pre.copy(), None)
    return [("x W + b", fx, pre), ("t", ft, t), ("y", fy, y), ("t, no bias", ft0, t), ("y, no bias", fy0, y)]


def _case_gelu_backward(xp, dtype, launch, rng):
    x, dout = _inputs(xp, dtype, rng, (520, 512), (520, 512), scale=2.0)
    _, cache = layers.gelu_forward(x)
    return [("dx", launch(dout, x, cache[1]), layers.gelu_backward(dout, cache))]


def _case_dropout_forward(xp, dtype, launch, rng):
    (x,) = _inputs(xp, dtype, rng, (8, 65, 256))
    y, mask = layers.dropout_forward(x, 0.1, make_rng(7, 1, xp=xp), True)
    u = make_rng(7, 1, xp=xp).random(x.shape, dtype=x.dtype)       # the same draw as the plain call
    fy, fmask = launch(x, u, 0.1)
    return [("y", fy, y), ("mask", fmask, mask)]


def _case_residual_forward(xp, dtype, launch, rng):
    x, a = _inputs(xp, dtype, rng, (8, 65, 256), (8, 65, 256))
    g = make_rng(7, 2, xp=xp)
    ad, dmask = layers.dropout_forward(a, 0.1, g, True)
    ap, pmask = layers.drop_path_forward(ad, 0.25, g, True)
    g = make_rng(7, 2, xp=xp)
    u = g.random(a.shape, dtype=a.dtype)
    pm = (g.random((8, 1, 1), dtype=a.dtype) >= 0.25).astype(a.dtype) * (1.0 / 0.75)
    out = launch(x, a, u, pm, 0.1)
    return [("out", out, x + ap), ("dropout mask", u, dmask), ("drop-path mask", pm, pmask),
            ("out, no masks", launch(x, a), x + a)]


def _case_residual_backward(xp, dtype, launch, rng):
    (dout,) = _inputs(xp, dtype, rng, (8, 65, 256))
    dmask = layers.dropout_forward(dout, 0.1, make_rng(7, 3, xp=xp), True)[1]
    pmask = layers.drop_path_forward(dout, 0.25, make_rng(7, 4, xp=xp), True)[1]
    plain = layers.dropout_backward(layers.drop_path_backward(dout, pmask), dmask)
    return [("da", launch(dout, dmask, pmask), plain), ("da, dropout only", launch(dout, dmask, None),
                                                          layers.dropout_backward(dout, dmask))]


def _case_softmax_forward(xp, dtype, launch, rng):
    out = []
    for shape, scale in (((8, 4, 65, 65), 3.0), ((5, 7), 1.0), ((3, 1000), 30.0)):
        (x,) = _inputs(xp, dtype, rng, shape, scale=scale)
        out.append((f"softmax {shape}", launch(x), layers.softmax_forward(x)[0]))
    return out


def _case_softmax_backward(xp, dtype, launch, rng):
    out = []
    for shape in ((8, 4, 65, 65), (5, 7), (3, 1000)):
        x, dout = _inputs(xp, dtype, rng, shape, shape)
        s, cache = layers.softmax_forward(x)
        out.append((f"dx {shape}", launch(dout, s), layers.softmax_backward(dout, cache)))
    return out


def _case_layernorm_forward(xp, dtype, launch, rng):
    x, gamma, beta = _inputs(xp, dtype, rng, (8, 65, 256), (256,), (256,))
    x = x * 3 + 5                                            # a mean far from 0: the two-pass variance
    y, (xhat, rstd, _) = layers.layernorm_forward(x, gamma, beta, 1e-6)
    fy, fxhat, frstd = launch(x, gamma, beta, 1e-6)
    return [("y", fy, y), ("xhat", fxhat, xhat), ("rstd", frstd, rstd)]


def _case_layernorm_backward(xp, dtype, launch, rng):
    x, gamma, beta, dy, dres = _inputs(xp, dtype, rng, (8, 65, 256), (256,), (256,), (8, 65, 256), (8, 65, 256))
    _, cache = layers.layernorm_forward(x, gamma, beta, 1e-6)
    dx = layers.layernorm_backward(dy, cache)[0]
    return [("dx", launch(dy, *cache), dx), ("dx + residual", launch(dy, *cache, dres), dx + dres)]


def _case_layernorm_param_grads(xp, dtype, launch, rng):
    x, gamma, beta, dy = _inputs(xp, dtype, rng, (8, 65, 256), (256,), (256,), (8, 65, 256))
    _, cache = layers.layernorm_forward(x, gamma, beta, 1e-6)
    _, dgamma, dbeta = layers.layernorm_backward(dy, cache)
    fg, fb = launch(dy, cache[0])
    return [("dgamma", fg, dgamma), ("dbeta", fb, dbeta)]


def _case_adamw_update(xp, dtype, launch, rng):
    w, g = _inputs(xp, dtype, rng, (256, 512), (256, 512))
    pw, pm, pv = w.copy(), xp.zeros_like(w), xp.zeros_like(w)       # plain
    fw, fm, fv = w.copy(), xp.zeros_like(w), xp.zeros_like(w)       # fused
    for t in (1, 2, 3):                                      # three steps: the bias corrections change
        optim.adamw_update(pw, g, pm, pv, t, 1e-3, weight_decay=0.05)
        launch(fw, g, fm, fv, t, 1e-3, weight_decay=0.05)
    return [("w", fw, pw), ("m", fm, pm), ("v", fv, pv)]


CASES = {name: globals()[f"_case_{name}"] for name in fk.KERNELS}


# ------------------------------------------------------------------------------- running
def _environment(xp) -> dict:
    env = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")}
    if xp is np:
        return {**env, "device": "cpu (NumPy: a plumbing check, not a verification)", "cupy": None}
    return {**env, "device": gpu_name(xp, xp.cuda.Device().id), "cupy": xp.__version__,
            "cuda_runtime": xp.cuda.runtime.runtimeGetVersion()}


def verify(kernel: str, xp=None, launchers=None, seed=0) -> dict:
    """Run ``kernel`` and its plain twin on the same inputs, float32 and float64.

    xp: the array module (default: CuPy, which needs a GPU); launchers: {kernel: function} to use
    instead of ``fk.LAUNCHERS`` (the CPU tests pass NumPy stand-ins to test this harness).
    returns: {kernel, ok, max_rel_error: {dtype: e}, tolerance, checks: {dtype: {label: e}},
    device, cupy, date}, and 'error' when something raised (then ok is False).
    """
    if kernel not in fk.KERNELS:
        raise ValueError(f"unknown fused kernel {kernel!r}; known: {', '.join(fk.KERNELS)}")
    if xp is None:
        from minivit.backend import get_xp

        xp = get_xp("gpu")                   # RuntimeError with a clear message without CuPy or a GPU
    launch = (launchers or fk.LAUNCHERS)[kernel]
    result = {"kernel": kernel, "ok": False, "max_rel_error": {}, "tolerance": TOLERANCE, "checks": {},
              **_environment(xp)}
    try:
        for dtype in fk.DTYPES:
            checks = {label: rel_error(f, p) for label, f, p in CASES[kernel](xp, dtype, launch,
                                                                              np.random.default_rng(seed))}
            result["checks"][dtype.name] = checks
            result["max_rel_error"][dtype.name] = max(checks.values())
        result["ok"] = all(result["max_rel_error"][d] <= TOLERANCE[d] for d in result["max_rel_error"])
    except Exception as e:                   # noqa: BLE001 - a compile or launch failure is a result too
        result["error"] = f"{type(e).__name__}: {e}"
    return result

