"""EMA of the weights (minivit/train/ema.py): the update rule, evaluation with the EMA weights swapped in
and out, and the state through a checkpoint (last.npz, allow_pickle=False) restored bit-exactly."""
import numpy as np
import pytest

from minivit.storage.checkpoint import extra_arrays, load_checkpoint, save_checkpoint
from minivit.train.ema import EMA
from minivit.layers.loss import cross_entropy_backward, cross_entropy_forward
from minivit.model import ViT, ViTConfig
from minivit.optim import AdamW

SMALL = dict(image_size=16, patch_size=4, num_classes=5, dim=16, depth=2, num_heads=2, mlp_dim=32)


def _train(model, opt, ema, steps, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((8, 16, 16, 3)).astype(np.float32)
    y = rng.integers(0, 5, 8)
    for _ in range(steps):
        loss, cache = cross_entropy_forward(model.forward(x), y)
        model.backward(cross_entropy_backward(cache))
        opt.step()
        ema.update(model)
    return x


def test_update_rule_with_and_without_warmup():
    model = ViT(ViTConfig(**SMALL), seed=0)
    w0 = {n: p.value.copy() for n, p in model.named_parameters()}
    ema = EMA(model, decay=0.9, warmup=False)
    plain = EMA(model, decay=0.9)
    history = []
    for k in range(1, 4):
        for p in model.parameters():
            p.value = p.value + np.float32(0.1 * k)
        history.append({n: p.value.copy() for n, p in model.named_parameters()})
        assert plain.current_decay() == min(0.9, k / (9 + k))
        ema.update(model)
        plain.update(model)
    name = "blocks.0.mlp.fc1.weight"
    expected = w0[name].astype(np.float64)
    for w in history:
        expected = 0.9 * expected + 0.1 * w[name]
    np.testing.assert_allclose(ema.shadow[name], expected, rtol=1e-6, atol=1e-6)
    d = [1 / 10, 2 / 11, 3 / 12]                               # warmup: (1 + n) / (10 + n)
    expected = w0[name].astype(np.float64)
    for di, w in zip(d, history):
        expected = di * expected + (1 - di) * w[name]
    np.testing.assert_allclose(plain.shadow[name], expected, rtol=1e-6, atol=1e-6)
    assert ema.updates == plain.updates == 3 and ema.shadow[name].dtype == np.float32
    with pytest.raises(ValueError, match="decay"):
        EMA(model, decay=1.0)


def test_evaluation_swaps_the_ema_weights_in_and_out():
    model = ViT(ViTConfig(**SMALL), seed=0)
    ema = EMA(model, decay=0.5)
    x = _train(model, AdamW(model.named_parameters(), lr=1e-2), ema, 3)
    raw = {n: p.value.copy() for n, p in model.named_parameters()}
    shadow = {n: s.copy() for n, s in ema.shadow.items()}
    raw_logits = model.eval().forward(x)
    other = ViT(ViTConfig(**SMALL)).load_state_dict(shadow).eval()
    with ema.swapped(model):
        for n, p in model.named_parameters():
            assert np.array_equal(p.value, shadow[n])
        ema_logits = model.forward(x)
    np.testing.assert_array_equal(ema_logits, other.forward(x))         # the EMA weights' prediction
    assert not np.allclose(ema_logits, raw_logits)
    for n, p in model.named_parameters():                               # back, bit for bit
        assert np.array_equal(p.value, raw[n]) and np.array_equal(ema.shadow[n], shadow[n])
    with pytest.raises(RuntimeError), ema.swapped(model):
        raise RuntimeError("an evaluation failed")
    assert all(np.array_equal(p.value, raw[n]) for n, p in model.named_parameters())


def test_state_restored_bit_exactly_from_last_npz(tmp_path):
    model = ViT(ViTConfig(**SMALL), seed=0)
    opt = AdamW(model.named_parameters(), lr=1e-2)
    ema = EMA(model, decay=0.99)
    _train(model, opt, ema, 3)
    save_checkpoint(tmp_path / "last.npz", model, opt, meta={}, extra=ema.checkpoint_arrays())
    params, optim, _ = load_checkpoint(tmp_path / "last.npz")
    assert not any(k.startswith("ema") for k in params) and not any(k.startswith("ema") for k in optim)
    model2 = ViT(ViTConfig(**SMALL), seed=3).load_state_dict(params)
    opt2 = AdamW(model2.named_parameters(), lr=1e-2).load_state_dict(optim)
    ema2 = EMA(model2, decay=0.5, warmup=False).load_state_dict(extra_arrays(tmp_path / "last.npz", EMA.PREFIX))
    assert (ema2.updates, ema2.decay, ema2.warmup) == (3, 0.99, True)
    for n in ema.shadow:
        assert ema2.shadow[n].dtype == ema.shadow[n].dtype and np.array_equal(ema2.shadow[n], ema.shadow[n])
    _train(model, opt, ema, 2)
    _train(model2, opt2, ema2, 2)
    for n in ema.shadow:
        assert np.array_equal(ema2.shadow[n], ema.shadow[n]), n


def test_extra_entries_must_not_shadow_the_model(tmp_path):
    model = ViT(ViTConfig(**SMALL))
    for bad in ("param/head.weight", "optim/t", "noprefix"):
        with pytest.raises(ValueError, match="extra checkpoint entry"):
            save_checkpoint(tmp_path / "x.npz", model, extra={bad: np.zeros(1)})
    assert extra_arrays(save_checkpoint(tmp_path / "y.npz", model), "ema/") == {}


def test_mismatched_state_is_refused():
    model = ViT(ViTConfig(**SMALL))
    state = EMA(model).state_dict()
    with pytest.raises(KeyError, match="missing"):
        EMA(model).load_state_dict({k: v for k, v in state.items() if k != "head.weight"})
    state["head.weight"] = np.zeros((3, 3), np.float32)
    with pytest.raises(ValueError, match="shape"):
        EMA(model).load_state_dict(state)
