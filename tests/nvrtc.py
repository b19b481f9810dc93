"""NVRTC, the CUDA runtime compiler, loaded with ctypes: compile CUDA C to PTX without CuPy, a driver or a GPU.

The library comes from the ``nvidia-cuda-nvrtc-cu12`` pip wheel (a dev dependency). Used by
tests/test_fused.py to check that every fused kernel compiles.

    lib = load()                           # None when the wheel's library cannot be found
    ptx = compile_ptx(lib, source, ["-arch=compute_90"])   # raises NvrtcError with the log
"""
from __future__ import annotations

import ctypes
import glob
import os


class NvrtcError(RuntimeError):
    """A failed NVRTC call; for a failed compile the message holds the compiler's log."""


def library_candidates() -> list[str]:
    """Paths where the wheel puts libnvrtc.so.* (site-packages/nvidia/cuda_nvrtc/lib), newest first."""
    found = []
    try:
        import nvidia.cuda_nvrtc as pkg                        # a namespace package: no __file__
        for d in pkg.__path__:
            found += sorted(glob.glob(os.path.join(d, "lib", "libnvrtc.so.*")), reverse=True)
            found += sorted(glob.glob(os.path.join(d, "bin", "nvrtc64_*.dll")), reverse=True)
    except ImportError:
        pass
    # libnvrtc.alt.so is a variant with a different C++ runtime; prefer the plain one.
    return [p for p in found if ".alt." not in p] + [p for p in found if ".alt." in p]


def load():
    """The NVRTC library as a ctypes.CDLL, or None when it is not installed."""
    for path in library_candidates():
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        lib.nvrtcGetErrorString.restype = ctypes.c_char_p
        lib.path = path
        return lib
    return None


def version(lib) -> tuple[int, int]:
    major, minor = ctypes.c_int(), ctypes.c_int()
    _check(lib, lib.nvrtcVersion(ctypes.byref(major), ctypes.byref(minor)), "nvrtcVersion")
    return major.value, minor.value


def _check(lib, result, what, log=""):
    if result != 0:
        raise NvrtcError(f"{what}: {lib.nvrtcGetErrorString(result).decode()}" + (f"\n{log}" if log else ""))


def compile_ptx(lib, source: str, options=("-arch=compute_90",), name: str = "kernels.cu", log_out=None) -> str:
    """Compile ``source`` with ``options``; return the PTX text. Raises NvrtcError with the log on failure.
    log_out: a list to append the compiler's log to (warnings, when it succeeds)."""
    prog = ctypes.c_void_p()
    _check(lib, lib.nvrtcCreateProgram(ctypes.byref(prog), source.encode(), name.encode(), 0, None, None),
           "nvrtcCreateProgram")
    try:
        opts = (ctypes.c_char_p * len(options))(*[o.encode() for o in options])
        result = lib.nvrtcCompileProgram(prog, len(options), opts)
        size = ctypes.c_size_t()
        _check(lib, lib.nvrtcGetProgramLogSize(prog, ctypes.byref(size)), "nvrtcGetProgramLogSize")
        log = ctypes.create_string_buffer(size.value)
        _check(lib, lib.nvrtcGetProgramLog(prog, log), "nvrtcGetProgramLog")
        if log_out is not None:
            log_out.append(log.value.decode(errors="replace"))
        _check(lib, result, f"nvrtcCompileProgram {' '.join(options)}", log.value.decode(errors="replace"))
        _check(lib, lib.nvrtcGetPTXSize(prog, ctypes.byref(size)), "nvrtcGetPTXSize")
        ptx = ctypes.create_string_buffer(size.value)
        _check(lib, lib.nvrtcGetPTX(prog, ptx), "nvrtcGetPTX")
        return ptx.value.decode()
    finally:
        lib.nvrtcDestroyProgram(ctypes.byref(prog))
