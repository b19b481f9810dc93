"""gradcheck on a device: `python -m minivit gradcheck --device gpu` (the GPU run itself is marked gpu)."""
import numpy as np
import pytest

from minivit.backend import gpu_available
from minivit.gradcheck import numerical_gradient, run_all


class ViewIndexing(np.ndarray):
    """Indexing with a full tuple of integers gives a 0-d *view*, as CuPy's ``x[ix]`` does
    (NumPy gives a copied scalar)."""

    def __getitem__(self, ix):
        if isinstance(ix, tuple) and len(ix) == self.ndim and all(isinstance(i, (int, np.integer)) for i in ix):
            return np.ndarray.__getitem__(self, ix + (Ellipsis,))
        return np.ndarray.__getitem__(self, ix)


def test_numerical_gradient_restores_entries_of_arrays_that_index_as_views():
    x = np.random.default_rng(0).standard_normal((3, 4)).view(ViewIndexing)
    before = np.array(x, copy=True)
    assert np.ndarray.__getitem__(x, (0, 0, Ellipsis)).ndim == 0      # the stand-in does give views
    grad = numerical_gradient(lambda: np.asarray(x) ** 2, x, dout=np.ones((3, 4)))
    np.testing.assert_allclose(grad, 2 * before, rtol=1e-8)           # each stencil point from the true x_i
    assert np.array_equal(np.asarray(x), before)                      # and every entry put back exactly


def test_gradcheck_device_cpu_and_cli_without_gpu(capsys):
    assert run_all(verbose=False, device="cpu")
    if gpu_available():
        return
    from minivit.cli.main import main

    assert main(["gradcheck", "--device", "gpu"]) != 0
    assert "CuPy" in capsys.readouterr().err


@pytest.mark.gpu
@pytest.mark.skipif(not gpu_available(), reason="needs CuPy and a CUDA GPU")
def test_gradcheck_passes_on_the_gpu_in_float64():
    assert run_all(verbose=False, device="gpu")
