"""GELU, the MLP's nonlinearity (Hendrycks & Gimpel 2016).

    exact:  gelu(x) = x * Phi(x),  Phi the standard normal CDF
    tanh:   gelu(x) ~ 0.5 x (1 + tanh(c (x + 0.044715 x^3))),  c = sqrt(2/pi)

The official ViT code (Flax ``nn.gelu``) uses the tanh form, so that is minivit's default.
"""
import math

from minivit.backend import get_array_module

_C = math.sqrt(2.0 / math.pi)
_K = 0.044715


def erf(x):
    """Elementwise erf, the Gauss error function, for NumPy (SciPy when present, else math.erf) and
    CuPy. GELU's exact form needs it; exercise 6 (``exercises/ex06_mlp.py``) imports it too."""
    xp = get_array_module(x)
    if xp.__name__ == "cupy":
        from cupyx.scipy.special import erf as cupy_erf

        return cupy_erf(x)
    if xp.__name__ == "minivit.simcupy":     # the test suite's CuPy simulation: its cupyx stand-in
        return xp.cupyx.scipy.special.erf(x)
    try:
        from scipy.special import erf as scipy_erf

        return scipy_erf(x)
    except ImportError:
        import numpy as np

        return np.frompyfunc(math.erf, 1, 1)(x).astype(x.dtype)


_erf = erf      # its old name: exercise files generated before erf was public import ``_erf as erf``


def gelu_forward(x, approximate="tanh"):
    """x: any shape -> y same shape, cache. ``approximate``: 'tanh' (default) or 'none' (exact erf).

    'tanh': y = 0.5 x (1 + tanh(c (x + 0.044715 x^3))), c = sqrt(2 / pi)
    'none': y = x Phi(x) = 0.5 x (1 + erf(x / sqrt(2))), Phi the standard normal CDF
    Finite for |x| up to 100.

    Keeps the input's dtype (float32 in, float32 out) and does not modify its inputs.

    Derivation:
        Compute the tanh argument with x * x * x (the power is slow for float32); keep t (or Phi)
        in the cache: the backward needs it.
    """
    xp = get_array_module(x)
    if approximate == "tanh":
        inner = x * x                 # write x*x*x, not x**3: the power is slow for float32
        inner *= _K
        inner += 1.0
        inner *= x
        inner *= _C                   # c (x + 0.044715 x^3)
        t = xp.tanh(inner, out=inner)
        y = t + 1.0
        y *= x
        y *= 0.5
        return y, (x, t, approximate)
    if approximate == "none":
        cdf = 0.5 * (1.0 + erf(x / math.sqrt(2.0)))
        return x * cdf, (x, cdf, approximate)
    raise ValueError(f"approximate must be 'tanh' or 'none', got {approximate!r}")


def gelu_backward(dout, cache):
    """dout: same shape as x -> dx, the gradient with respect to x (cache: from gelu_forward, which
    knows the form).

    Keeps the dtype (float32 in, float32 out). Does not modify dout: the caller's array may be used
    elsewhere. Everything it needs comes from the cache (it may run after other forward calls). Finite
    for |x| up to 100.

    Derivation:
    tanh form:  d/dx = 0.5 (1 + t) + 0.5 x (1 - t^2) c (1 + 3 * 0.044715 x^2),  t = tanh(...)
    exact form: d/dx = Phi(x) + x phi(x),  phi the standard normal density
    """
    x, t, approximate = cache
    xp = get_array_module(x)
    if approximate == "tanh":
        dinner = x * x
        dinner *= 3 * _K * _C
        dinner += _C                   # c (1 + 3k x^2)
        sech2 = t * t
        xp.subtract(1.0, sech2, out=sech2)
        dinner *= sech2
        dinner *= x
        dinner += t
        dinner += 1.0
        dinner *= 0.5
        dinner *= dout
        return dinner
    cdf = t
    pdf = xp.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)
    return dout * (cdf + x * pdf)
