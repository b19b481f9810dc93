"""The simulated ``cupy.ndarray``: a NumPy array behind CuPy's rules.

* no implicit conversion to NumPy: ``np.asarray(x)`` / ``np.array(x)`` / any NumPy code that would
  copy it to the host raises TypeError (CuPy's ``__array__`` does); ``x.get()`` / ``asnumpy(x)`` work;
* no mixing with NumPy arrays: ``x + np_array``, ``np_array * x``, ``xp.concatenate([x, np_array])``
  raise TypeError (NumPy and Python scalars are fine, as in CuPy);
* reductions return 0-d arrays, not NumPy scalars (``x.sum()`` stays on the device);
* only the methods CuPy 13 and 14 both have (``cupy_names.json``); ufuncs refuse ``where=``;
* every device-to-host synchronization is recorded (``syncs.py``).
"""
from __future__ import annotations

import sys

import numpy as np

from minivit.simcupy import syncs
from minivit.simcupy.names import NDARRAY, UFUNC_KWARGS

SIZE_ONE_CONVERSIONS = ("__float__", "__int__", "__bool__", "__complex__")   # no __index__: CuPy has none


def unwrap(obj, what="argument"):
    """The NumPy array behind a simulated array (recursing into lists and tuples).
    A NumPy array here is a host array in device code: TypeError, as CuPy raises."""
    if type(obj) is ndarray:
        return obj._a
    if isinstance(obj, np.ndarray):
        raise TypeError(f"Unsupported type {type(obj)} ({what} of a simulated CuPy call: a host array "
                        "in device code; move it with xp.asarray first)")
    if isinstance(obj, (list, tuple)):
        return type(obj)(unwrap(o, what) for o in obj)
    return obj


def wrap(obj):
    """NumPy results back on the simulated device; NumPy scalars become 0-d arrays (as in CuPy)."""
    if isinstance(obj, np.ndarray):
        return ndarray(obj)
    if isinstance(obj, np.generic):
        return ndarray(np.asarray(obj))
    if isinstance(obj, tuple):
        return tuple(wrap(o) for o in obj)
    if isinstance(obj, list):
        return [wrap(o) for o in obj]
    return obj


def _index(key):
    """An index for the NumPy array; boolean masks make the result's shape depend on values: a sync."""
    keys = key if isinstance(key, tuple) else (key,)
    for k in keys:
        a = k._a if type(k) is ndarray else k
        if isinstance(a, np.ndarray) and a.dtype == np.bool_ and a.ndim > 0:
            syncs.record("boolean-mask indexing")
    if type(key) is tuple:
        return tuple(k._a if type(k) is ndarray else k for k in key)
    return key._a if type(key) is ndarray else key


class ufunc:
    """A simulated ``cupy.ufunc``: NumPy's, minus the arguments CuPy lacks (``where=``...)."""

    def __init__(self, np_ufunc):
        self._u = np_ufunc
        self.__name__ = self.name = np_ufunc.__name__
        self.nin, self.nout, self.nargs = np_ufunc.nin, np_ufunc.nout, np_ufunc.nargs

    def _check(self, kwargs):
        bad = sorted(set(kwargs) - UFUNC_KWARGS)
        if bad:
            raise TypeError(f"cupy.{self.name}: CuPy's ufuncs do not take {bad} (simulated CuPy)")

    def __call__(self, *args, **kwargs):
        self._check(kwargs)
        if "out" in kwargs and kwargs["out"] is not None:
            out = kwargs["out"]
            kwargs["out"] = unwrap(out if isinstance(out, tuple) else (out,), "out")
        return wrap(self._u(*unwrap(args), **kwargs))

    def _method(self, name, *args, **kwargs):
        self._check(kwargs)
        return wrap(getattr(self._u, name)(*unwrap(args), **unwrap(kwargs)))

    def reduce(self, *a, **k):
        return self._method("reduce", *a, **k)

    def accumulate(self, *a, **k):
        return self._method("accumulate", *a, **k)

    def outer(self, *a, **k):
        return self._method("outer", *a, **k)

    def at(self, *a, **k):
        return self._method("at", *a, **k)

    def __repr__(self):
        return f"<simulated ufunc '{self.name}'>"


def _binary(name, reflected=False, inplace=False):
    np_ufunc = getattr(np, name)

    def op(self, other):
        if isinstance(other, np.ndarray) and type(other) is not ndarray:
            raise TypeError(f"Unsupported type {type(other)}: a NumPy array mixed with a simulated CuPy array")
        if not isinstance(other, (ndarray, int, float, complex, bool, np.generic)):
            return NotImplemented
        if inplace:
            np_ufunc(self._a, unwrap(other), out=self._a)
            return self
        a, b = (unwrap(other), self._a) if reflected else (self._a, unwrap(other))
        return wrap(np_ufunc(a, b))
    return op


class ndarray:
    """A simulated CuPy array (the NumPy array it holds is ``_a``; never touch it outside the simulation)."""

    __slots__ = ("_a",)
    __hash__ = None

    def __init__(self, a):
        if isinstance(a, tuple):      # cupy.ndarray(shape, dtype): an uninitialized array
            raise TypeError("construct simulated arrays with xp.empty / xp.asarray")
        self._a = a

    # -- what CuPy refuses -------------------------------------------------------------
    def __array__(self, *args, **kwargs):
        raise TypeError("Implicit conversion to a NumPy array is not allowed. Please use `.get()` to construct a "
                        "NumPy array explicitly. (simulated CuPy)")

    def __array_ufunc__(self, np_ufunc, method, *inputs, **kwargs):
        simcupy = sys.modules["minivit.simcupy"]      # the namespace (imported first)
        sim = getattr(simcupy, np_ufunc.__name__, None)
        if not isinstance(sim, ufunc):
            return NotImplemented
        return sim(*inputs, **kwargs) if method == "__call__" else getattr(sim, method)(*inputs, **kwargs)

    def __array_function__(self, func, types, args, kwargs):
        simcupy = sys.modules["minivit.simcupy"]      # the namespace (imported first)
        target = simcupy
        for part in func.__module__.split(".")[1:] + [func.__name__]:
            target = getattr(target, part, None)     # numpy.linalg.norm -> simcupy.linalg.norm
            if target is None:
                return NotImplemented                 # NumPy then raises TypeError, as with CuPy
        return target(*args, **kwargs)

    # -- attributes --------------------------------------------------------------------
    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    itemsize = property(lambda self: self._a.itemsize)
    nbytes = property(lambda self: self._a.nbytes)
    strides = property(lambda self: self._a.strides)
    flags = property(lambda self: self._a.flags)
    T = property(lambda self: ndarray(self._a.T))
    real = property(lambda self: wrap(self._a.real))
    imag = property(lambda self: wrap(self._a.imag))
    base = property(lambda self: None if self._a.base is None else ndarray(self._a.base))

    def __len__(self):
        return len(self._a)

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d array")
        return (ndarray(self._a[i]) for i in range(len(self._a)))

    def __getattr__(self, name):
        if name not in NDARRAY or not hasattr(self._a, name):
            raise AttributeError(f"'cupy.ndarray' object has no attribute {name!r} (simulated CuPy "
                                 f"{'has no' if name not in NDARRAY else 'does not simulate'} it)")
        method = getattr(self._a, name)

        def call(*args, **kwargs):
            if "where" in kwargs:              # x.sum(where=...): CuPy's reductions lack it
                raise TypeError(f"cupy.ndarray.{name}() takes no 'where' argument (simulated CuPy)")
            if name in ("nonzero",):
                syncs.record(f".{name}()")
            return wrap(method(*unwrap(args), **unwrap(kwargs)))
        return call

    # -- transfers and synchronizations -----------------------------------------------
    def get(self, stream=None, order="C", out=None, blocking=True):
        syncs.record(".get()")
        return self._a.copy(order=order)

    def item(self, *args):
        syncs.record(".item()")
        return self._a.item(*args)

    def tolist(self):
        syncs.record(".tolist()")
        return self._a.tolist()

    def __repr__(self):
        syncs.record("repr()")
        return repr(self._a).replace("array(", "array(", 1)

    def __str__(self):
        syncs.record("str()")
        return str(self._a)

    def __format__(self, spec):
        syncs.record("format()")
        return format(self._a.item() if self._a.ndim == 0 else self._a, spec)

    def __getitem__(self, key):
        k = _index(key)
        out = self._a[k]
        if isinstance(out, np.generic):      # x[i, j]: CuPy gives a 0-d *view* (NumPy a copied scalar)
            out = self._a[(k if isinstance(k, tuple) else (k,)) + (Ellipsis,)]
        return ndarray(out)

    def __setitem__(self, key, value):
        self._a[_index(key)] = value._a if type(value) is ndarray else value

    def astype(self, dtype, order="K", casting=None, subok=None, copy=True):
        return ndarray(self._a.astype(dtype, order=order, copy=copy))

    def copy(self, order="C"):
        return ndarray(self._a.copy(order=order))

    def __copy__(self):
        return self.copy()

    def __deepcopy__(self, memo):
        return self.copy()

    def __neg__(self):
        return ndarray(-self._a)

    def __pos__(self):
        return ndarray(+self._a)

    def __abs__(self):
        return ndarray(abs(self._a))

    def __invert__(self):
        return ndarray(~self._a)

    def __matmul__(self, other):
        return _binary("matmul")(self, other)

    def __rmatmul__(self, other):
        return _binary("matmul", reflected=True)(self, other)


def _conversion(name):
    def convert(self):
        syncs.record(f"{name.strip('_')}()")
        return getattr(self._a, name)()
    return convert


for _name in SIZE_ONE_CONVERSIONS:
    setattr(ndarray, _name, _conversion(_name))

for _op, _uf in [("add", "add"), ("sub", "subtract"), ("mul", "multiply"), ("truediv", "true_divide"),
                 ("floordiv", "floor_divide"), ("mod", "remainder"), ("pow", "power"), ("and", "bitwise_and"),
                 ("or", "bitwise_or"), ("xor", "bitwise_xor"), ("lshift", "left_shift"), ("rshift", "right_shift")]:
    setattr(ndarray, f"__{_op}__", _binary(_uf))
    setattr(ndarray, f"__r{_op}__", _binary(_uf, reflected=True))
    setattr(ndarray, f"__i{_op}__", _binary(_uf, inplace=True))
for _op, _uf in [("lt", "less"), ("le", "less_equal"), ("gt", "greater"), ("ge", "greater_equal"),
                 ("eq", "equal"), ("ne", "not_equal")]:
    setattr(ndarray, f"__{_op}__", _binary(_uf))
