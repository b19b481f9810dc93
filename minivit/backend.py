"""Backend: which array library runs the math (NumPy on the CPU, CuPy on a GPU).

Every function in minivit takes its array module from its inputs
(``xp = get_array_module(x)``), so the same code runs on both. CuPy is never
imported at module import time: a CPU-only machine never needs it.

The device is chosen, in this order, by an explicit ``device=`` argument
(``--device`` on the command line), the environment variable
``MINIVIT_DEVICE`` (``auto``, ``cpu`` or ``gpu``), and finally ``auto``:
CuPy when it imports and sees a GPU, NumPy otherwise. ``sim`` (a test aid, not offered by
``--device``) is the CuPy simulation of ``minivit/simcupy``: NumPy under CuPy's rules, on the CPU.

Transfers are explicit and happen only at the edges (data loading,
checkpoints, plots): ``to_device(a, xp)`` and ``to_numpy(a)``.

Randomness: :func:`make_rng` builds a generator from a seed *and* a tuple of
counters (epoch, step, ...). Deriving every step's generator from
(seed, counters) instead of carrying one generator along means a resumed run
re-creates exactly the numbers an uninterrupted run would have drawn.
"""
from __future__ import annotations

import os

import numpy as np

DEVICES = ("auto", "cpu", "gpu")
SIM = "sim"          # the simulated CuPy (tests only): MINIVIT_DEVICE=sim or device="sim"


def _import_cupy():
    """Return the cupy module if it imports and sees at least one GPU, else None."""
    try:
        import cupy  # noqa: F401  (optional dependency)

        if cupy.cuda.runtime.getDeviceCount() > 0:
            return cupy
    except Exception:  # ImportError, CUDA driver errors, no device...
        return None
    return None


def gpu_available() -> bool:
    """True when CuPy is installed and a CUDA device is visible."""
    return _import_cupy() is not None


ENV_VAR = "MINIVIT_DEVICE"


def device_from_env() -> str:
    """``$MINIVIT_DEVICE`` (unset or empty: ``auto``); ValueError naming the variable for any other
    value than auto, cpu, gpu (or the tests' sim). ``python -m minivit`` checks it before every command."""
    value = os.environ.get(ENV_VAR, "") or "auto"
    if value.lower() not in (*DEVICES, SIM):
        raise ValueError(f"{ENV_VAR}={value}: expected one of {', '.join(DEVICES)} (or unset)")
    return value


def resolve_device(device: str | None = None) -> str:
    """Turn ``device`` (or ``$MINIVIT_DEVICE``, or ``auto``) into ``'cpu'`` or ``'gpu'``.

    Raises ValueError for an unknown name and RuntimeError when ``gpu`` is
    requested but CuPy or a GPU is missing.
    """
    if device is None:
        device = device_from_env()
    device = device.lower()
    if device == SIM:
        return SIM
    if device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, got {device!r}")
    if device == "cpu":
        return "cpu"
    has_gpu = gpu_available()
    if device == "gpu" and not has_gpu:
        raise RuntimeError(
            "device 'gpu' was requested but CuPy is not installed or sees no GPU. "
            "Install the GPU extra (pip install -e '.[gpu]', see README) or use --device cpu."
        )
    return "gpu" if has_gpu else "cpu"


def get_xp(device: str | None = None):
    """The array module for ``device``: ``numpy`` for ``'cpu'``, ``cupy`` for ``'gpu'``
    (``minivit.simcupy`` for ``'sim'``)."""
    resolved = resolve_device(device)
    if resolved == SIM:
        from minivit import simcupy

        return simcupy
    if resolved == "gpu":
        import cupy

        return cupy
    return np


def get_array_module(*arrays):
    """The array module (numpy or cupy) that owns ``arrays`` (NumPy when none is a CuPy array)."""
    for a in arrays:
        mod = type(a).__module__
        if mod.startswith("cupy"):
            import cupy

            return cupy
        if mod.startswith("minivit.simcupy"):
            from minivit import simcupy

            return simcupy
    return np


def is_gpu_array(a) -> bool:
    """True for a CuPy array (or a simulated one)."""
    mod = type(a).__module__
    return mod.startswith("cupy") or mod.startswith("minivit.simcupy")


def to_device(a, xp):
    """Copy a host (NumPy) array to ``xp``'s device; a no-op when it is already there."""
    if xp is np:
        return to_numpy(a)
    return xp.asarray(a)


def to_numpy(a):
    """Bring an array back to the host as a NumPy array (a no-op for NumPy arrays)."""
    if is_gpu_array(a):
        return a.get()
    return np.asarray(a)


def make_rng(seed: int, *counters: int, xp=np):
    """A random generator determined by ``seed`` and ``counters`` (e.g. epoch, step).

    NumPy: ``numpy.random.Generator(PCG64)``; CuPy: ``cupy.random.Generator``.
    The same (seed, counters) always gives the same stream on the same backend.
    """
    ss = np.random.SeedSequence([int(seed), *[int(c) for c in counters]])
    if xp is np:
        return np.random.Generator(np.random.PCG64(ss))
    # CuPy's generator takes an integer seed: draw one from the seed sequence.
    return xp.random.default_rng(int(ss.generate_state(1, np.uint64)[0] >> np.uint64(1)))


def synchronize(xp) -> None:
    """Wait for queued GPU work (for timing); nothing to do on the CPU."""
    if xp is not np:
        xp.cuda.Device().synchronize()


def gpu_name(cp, device_id: int = 0) -> str:
    """The name of CUDA device ``device_id``, as CuPy reports it (bytes or str, by version)."""
    name = cp.cuda.runtime.getDeviceProperties(device_id)["name"]
    return name.decode() if isinstance(name, bytes) else name


def info() -> dict:
    """Backend, device and library versions, as a dict (what ``python -m minivit info`` prints).
    Never raises for a device that is asked for but missing: it reports what it found."""
    import platform
    import sys

    out = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "numpy": np.__version__,
        "MINIVIT_DEVICE": os.environ.get("MINIVIT_DEVICE", "(unset: auto)"),
    }
    try:
        cfg = np.show_config(mode="dicts")
        blas = cfg.get("Build Dependencies", {}).get("blas", {})
        out["numpy_blas"] = f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    except Exception:
        pass
    for name in ("matplotlib", "tqdm", "torch"):
        try:
            mod = __import__(name)
            out[name] = getattr(mod, "__version__", "?")
        except Exception:
            out[name] = "not installed"
    cp = _import_cupy()
    if cp is None:
        try:
            import cupy

            out["cupy"] = f"{cupy.__version__} (no usable GPU)"
        except Exception:
            out["cupy"] = "not installed"
    else:
        out["cupy"] = cp.__version__
        out["gpu"] = gpu_name(cp)
        out["cuda_runtime"] = cp.cuda.runtime.runtimeGetVersion()
    try:
        dev = resolve_device()
    except (RuntimeError, ValueError) as e:      # MINIVIT_DEVICE asks for what is not here: say so
        out["device"] = f"none usable: {e}"
        out["backend"] = "none (training would stop; unset MINIVIT_DEVICE or use --device cpu)"
        return out
    out["device"] = dev
    out["backend"] = {"gpu": "cupy", SIM: "simulated cupy (minivit.simcupy, a test aid)"}.get(dev, "numpy")
    return out
