"""Shared fixtures: ``xp`` (the array backend) and ``dtype`` (float32 / float64)."""
import os

# The tests multiply tiny matrices: BLAS worker threads only add contention (on a busy 2-core
# machine a 0.2 s training loop took 20 s with them). Set before NumPy is first imported; a value
# the user set on purpose wins.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from minivit.backend import gpu_available  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line("markers", "gpu: needs CuPy and a CUDA GPU")
    config.addinivalue_line("markers", "gpu_sim: runs on the CuPy simulation (minivit.simcupy, CPU only)")


@pytest.fixture(params=[
    "numpy",
    pytest.param("sim", marks=pytest.mark.gpu_sim),
    pytest.param("cupy", marks=[pytest.mark.gpu,
                                pytest.mark.skipif(not gpu_available(), reason="needs CuPy and a CUDA GPU")]),
])
def xp(request):
    """The array module to run on: numpy always, the CuPy simulation always (``-m gpu_sim``),
    cupy when a GPU is usable."""
    if request.param == "numpy":
        return np
    if request.param == "sim":
        from minivit import simcupy

        return simcupy
    import cupy

    return cupy


@pytest.fixture(params=[np.float32, np.float64], ids=["float32", "float64"])
def dtype(request):
    return request.param
