"""A CuPy simulation for the test suite: NumPy underneath, CuPy's rules on top. A test aid, never
a way to run minivit (it is slower than NumPy and runs nothing on a GPU).

``MINIVIT_DEVICE=sim`` (or ``device="sim"``) makes minivit's backend use this module as its ``xp``.
It is not ``cupy`` and never pretends to be: ``sys.modules['cupy']`` is left alone, and code that
asks for CuPy by name (``import cupy``) does not get it. Where CuPy differs from NumPy, it acts
like CuPy (see ``array.py``):

* arrays refuse implicit conversion to NumPy and arithmetic with NumPy arrays (TypeError);
  ``asarray`` / ``asnumpy`` / ``x.get()`` are the explicit transfers;
* only the names CuPy 13 and 14 both have (``names.py``); NumPy's others raise AttributeError;
* device-to-host synchronizations are recorded (``syncs.py``): float(), int(), bool(), .item(),
  .tolist(), printing, asnumpy, boolean masks, nonzero / unique / argwhere / one-argument where,
  ``cuda.Device().synchronize()`` and ``cuda.Event.synchronize()``.
"""
from __future__ import annotations

import types

import numpy as np

from minivit.simcupy import cuda, syncs  # noqa: F401 (cuda: part of the namespace)
from minivit.simcupy.array import ndarray, ufunc, unwrap, wrap
from minivit.simcupy.names import CUPY, GENERATOR, LINALG, RANDOM, VERSIONS  # noqa: F401

__version__ = f"simulated ({' and '.join(VERSIONS)})"

SHAPE_DEPENDENT = frozenset({"nonzero", "unique", "argwhere", "flatnonzero", "extract"})
TRANSFERS = frozenset({"asarray", "array", "asanyarray", "ascontiguousarray"})   # may take NumPy arrays


def _function(name, np_func):
    """``np_func`` on simulated arrays: NumPy arrays refused (except by the transfers), results wrapped."""
    def function(*args, **kwargs):
        if "where" in kwargs and name != "where":     # cupy.sum(x, where=...): CuPy's reductions lack it
            raise TypeError(f"cupy.{name}() takes no 'where' argument (simulated CuPy)")
        if name in SHAPE_DEPENDENT or (name == "where" and len(args) + len(kwargs) == 1):
            syncs.record(f"{name}()")
        if name in TRANSFERS:
            if args and isinstance(args[0], np.ndarray):      # host -> device: a copy, as on a GPU
                return ndarray(np.array(args[0], dtype=kwargs.get("dtype", args[1] if len(args) > 1 else None)))
            if args and type(args[0]) is ndarray:          # already on the device
                return wrap(np_func(args[0]._a, *unwrap(args[1:]), **kwargs))
        out = np_func(*unwrap(args), **{k: unwrap(v, k) for k, v in kwargs.items()})
        return wrap(out)
    function.__name__ = function.__qualname__ = name
    function.__doc__ = f"Simulated cupy.{name} (numpy.{name} underneath)."
    return function


def _lookup(np_namespace, name, allowed, where):
    if name not in allowed:
        raise AttributeError(f"module '{where}' has no attribute {name!r} (CuPy {'/'.join(VERSIONS)} lacks it; "
                             "simulated CuPy)")
    obj = getattr(np_namespace, name, None)
    if obj is None:
        raise AttributeError(f"{where}.{name} is not simulated")
    if isinstance(obj, np.ufunc):
        return ufunc(obj)
    if isinstance(obj, (type, types.ModuleType)) or not callable(obj):
        if isinstance(obj, types.ModuleType):
            raise AttributeError(f"{where}.{name} is not simulated")
        return obj                                   # dtypes (float32, ...), constants (pi, newaxis, ...)
    return _function(name, obj)


def asnumpy(a, stream=None, order="C", out=None, blocking=True):
    """Device -> host: a NumPy copy (a synchronization)."""
    if type(a) is ndarray:
        return a.get(order=order)
    return np.asarray(a, order=order)


def get_array_module(*args):
    return _this if any(type(a) is ndarray for a in args) else np


class _MemoryPool:
    """Simulated ``cupy.get_default_memory_pool()``: it tracks nothing (every figure is 0)."""

    def total_bytes(self):
        return 0

    def used_bytes(self):
        return 0

    def free_all_blocks(self):
        pass


_POOL = _MemoryPool()


def get_default_memory_pool():
    return _POOL


def __getattr__(name):
    value = _lookup(np, name, CUPY, "cupy")
    globals()[name] = value                      # built once
    return value


# -- cupy.random and cupy.linalg -------------------------------------------------------------
class Generator:
    """Simulated ``cupy.random.Generator`` (NumPy's PCG64 underneath; the numbers differ from CuPy's)."""

    def __init__(self, np_generator):
        self._g = np_generator

    def __getattr__(self, name):
        if name not in GENERATOR:
            raise AttributeError(f"'cupy.random.Generator' object has no attribute {name!r} (simulated CuPy)")
        method = getattr(self._g, name)
        return lambda *a, **k: wrap(np.asarray(method(*unwrap(a), **unwrap(k))))


def _default_rng(seed=None):
    if not isinstance(seed, (int, np.integer)) and seed is not None:
        raise TypeError(f"cupy.random.default_rng takes an integer seed (simulated CuPy), got {type(seed)}")
    return Generator(np.random.default_rng(seed))


class _Namespace(types.ModuleType):
    def __init__(self, name, np_namespace, allowed, extra):
        super().__init__(name)
        self._np, self._allowed = np_namespace, allowed
        self.__dict__.update(extra)

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        value = _lookup(self._np, name, self._allowed, self.__name__)
        setattr(self, name, value)
        return value


def _erf(x):
    """cupyx.scipy.special.erf (SciPy's, or math.erf elementwise, underneath)."""
    a = unwrap(x)
    try:
        from scipy.special import erf
    except ImportError:
        import math

        return ndarray(np.vectorize(math.erf, otypes=[a.dtype])(a))
    return ndarray(erf(a))


# cupyx.scipy.special.erf, the one cupyx function minivit uses (not in the cupy namespace: a name of its own)
cupyx = types.SimpleNamespace(scipy=types.SimpleNamespace(special=types.SimpleNamespace(erf=_erf)))
random = _Namespace("cupy.random", np.random, RANDOM, {"default_rng": _default_rng, "Generator": Generator})
linalg = _Namespace("cupy.linalg", np.linalg, LINALG, {})
_this = __import__(__name__, fromlist=["_"])
