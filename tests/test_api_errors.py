"""Python API edge cases: empty batches, plain lists, and configurations refused when they are built."""
import numpy as np
import pytest

from minivit import ViT, ViTConfig


@pytest.fixture(scope="module")
def tiny():
    return ViT(ViTConfig.preset("tiny"), seed=0)


def test_predict_on_an_empty_batch_is_empty(tiny):
    preds = tiny.predict(np.zeros((0, 32, 32, 3), np.float32))
    assert preds.shape == (0,) and preds.dtype == np.int64


def test_predict_still_batches(tiny):
    x = np.random.default_rng(0).standard_normal((7, 32, 32, 3)).astype(np.float32)
    assert np.array_equal(tiny.predict(x, batch_size=3), np.argmax(tiny.forward(x), axis=1))


@pytest.mark.parametrize("call", ["predict", "forward"])
def test_a_plain_list_says_to_pass_an_array(tiny, call):
    images = np.zeros((2, 32, 32, 3), np.float32).tolist()
    with pytest.raises(TypeError, match="got a list; pass an array"):
        getattr(tiny, call)(images)


@pytest.mark.parametrize("overrides, fragment", [
    (dict(dropout=1.0), "dropout must be a probability in [0, 1), got 1.0"),
    (dict(dropout=-0.1), "dropout must be a probability"),
    (dict(drop_path=1.5), "drop_path must be a probability in [0, 1), got 1.5"),
    (dict(drop_path=float("nan")), "drop_path must be a probability"),
    (dict(dropout=True), "dropout must be a probability"),
    (dict(ln_eps=0.0), "ln_eps must be a positive number, got 0.0"),
    (dict(ln_eps=-1e-6), "ln_eps must be a positive number"),
    (dict(ln_eps=float("inf")), "ln_eps must be a positive number"),
    (dict(patch_size=True), "patch_size must be a positive integer, got True"),
    (dict(depth=True), "depth must be a positive integer, got True"),
    (dict(num_heads=np.True_), "num_heads must be a positive integer"),
    (dict(representation_size=True), "representation_size must be None or a positive integer"),
])
def test_config_rejects_at_construction(overrides, fragment):
    with pytest.raises(ValueError, match="invalid ViTConfig") as info:
        ViTConfig.preset("tiny", **overrides)
    assert fragment in str(info.value)


@pytest.mark.parametrize("overrides", [dict(dropout=0.0), dict(dropout=0.5, drop_path=0.99), dict(ln_eps=1e-5),
                                       dict(patch_size=np.int64(4)), dict(dropout=np.float32(0.1))])
def test_config_accepts_valid_values(overrides):
    ViTConfig.preset("tiny", **overrides)
