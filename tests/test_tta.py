"""Flip test-time augmentation (minivit/train/tta.py): a left-right symmetric image gets the same prediction
with and without TTA, the TTA probabilities are the mean of the two views' softmax, and
evaluate_tta reports the plain numbers that train.evaluate gives next to the TTA ones."""
import numpy as np
import pytest

from minivit.data.augment import AugmentConfig
from minivit.layers.attention import softmax_forward
from minivit.model import ViT, ViTConfig
from minivit.train.trainer import evaluate
from minivit.train.tta import evaluate_tta, flip_tta_probs, hflip

SMALL = dict(image_size=16, patch_size=4, num_classes=5, dim=16, depth=2, num_heads=2, mlp_dim=32)


@pytest.fixture
def model():
    m = ViT(ViTConfig(**SMALL), seed=0).eval()
    rng = np.random.default_rng(1)
    for p in m.parameters():                                    # a non-zero head: real predictions
        p.value = p.value + (0.2 * rng.standard_normal(p.value.shape)).astype(np.float32)
    return m


def _images(n, seed=0):
    return np.random.default_rng(seed).standard_normal((n, 16, 16, 3)).astype(np.float32)


def test_hflip_mirrors_the_width_axis():
    x = _images(2)
    np.testing.assert_array_equal(hflip(x)[:, :, 0], x[:, :, -1])
    np.testing.assert_array_equal(hflip(x)[:, 0], x[:, 0, ::-1])
    assert hflip(x).flags["C_CONTIGUOUS"]


def test_tta_is_the_mean_of_the_two_softmaxes(model):
    x = _images(6)
    p_tta, p = flip_tta_probs(model.forward, x)
    by_hand = 0.5 * (softmax_forward(model.forward(x))[0] + softmax_forward(model.forward(x[:, :, ::-1]))[0])
    np.testing.assert_allclose(p_tta, by_hand, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(p, softmax_forward(model.forward(x))[0])
    np.testing.assert_allclose(p_tta.sum(axis=1), 1.0, rtol=1e-6)
    assert not np.allclose(p_tta, p)                               # the flip changed something here


def test_symmetric_images_change_nothing(model):
    x = _images(6)
    sym = np.concatenate([x[:, :, :8], x[:, :, :8][:, :, ::-1]], axis=2)     # left-right symmetric
    assert np.array_equal(sym, sym[:, :, ::-1]) and not np.array_equal(sym, sym[:, ::-1])
    p_tta, p = flip_tta_probs(model.forward, sym)
    np.testing.assert_allclose(p_tta, p, rtol=1e-6, atol=1e-7)
    # ...while an image symmetric top-bottom only is changed by TTA (so the flip is left-right):
    vsym = np.concatenate([x[:, :8], x[:, :8][:, ::-1]], axis=1)
    p_tta, p = flip_tta_probs(model.forward, vsym)
    assert np.abs(p_tta - p).max() > 1e-3


def test_evaluate_tta_reports_with_and_without(model):
    rng = np.random.default_rng(2)
    x_uint8 = rng.integers(0, 256, (23, 16, 16, 3), dtype=np.uint8)
    y = rng.integers(0, 5, 23)
    aug = AugmentConfig()
    r = evaluate_tta(model, x_uint8, y, aug, 5, batch_size=10)
    loss, acc, preds = evaluate(model, x_uint8, y, aug, 5, batch_size=10)
    assert r["acc"] == acc and np.array_equal(r["preds"], preds)
    assert r["loss"] == loss                                       # the same sum as train.evaluate's
    xn = (x_uint8 / 255.0 - np.array(aug.mean)) / np.array(aug.std)
    p_tta, _ = flip_tta_probs(model.forward, xn.astype(np.float32))
    assert np.array_equal(r["preds_tta"], p_tta.argmax(axis=1))
    assert r["acc_tta"] == pytest.approx(float((p_tta.argmax(axis=1) == y).mean()))
    assert r["loss_tta"] == pytest.approx(-np.log(p_tta[np.arange(23), y]).mean(), rel=1e-4)
    assert model.training is False
    model.train()
    evaluate_tta(model, x_uint8, y, aug, 5)
    assert model.training is True                                  # the mode is restored


def test_eval_reports_with_and_without_flip_tta(tmp_path, monkeypatch, capsys):
    """``evaluate_checkpoint(flip_tta=True)`` / ``eval --flip-tta``: the plain numbers unchanged, the TTA ones added."""
    import minivit.data.cifar
    from minivit.cli.main import main
    from minivit.train.trainer import Trainer, evaluate_checkpoint
    from tests.test_train import synthetic, tiny_cfg

    data = synthetic()
    Trainer(tiny_cfg(epochs=1), tmp_path, device="cpu", dataset_obj=data, progress=False).fit()
    monkeypatch.setattr(minivit.data.cifar, "load_cifar", lambda *a, **k: data)
    plain = evaluate_checkpoint(tmp_path / "last.npz")
    r = evaluate_checkpoint(tmp_path / "last.npz", flip_tta=True)
    assert (r["test_acc"], r["test_loss"], r["confusion"]) == (plain["test_acc"], plain["test_loss"], plain["confusion"])
    assert "test_acc_tta" not in plain and 0 <= r["test_acc_tta"] <= 1 and np.isfinite(r["test_loss_tta"])
    capsys.readouterr()
    assert main(["eval", str(tmp_path / "last.npz"), "--flip-tta", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert f"test accuracy {100 * plain['test_acc']:.2f}%" in out
    assert f"with horizontal-flip TTA: {100 * r['test_acc_tta']:.2f}%" in out


def test_metrics_csv_has_the_flip_tta_columns_next_to_the_plain_ones(tmp_path):
    from minivit.train.progress import read_metrics
    from minivit.train.trainer import Trainer
    from test_train import synthetic, tiny_cfg

    t = Trainer(tiny_cfg(epochs=1, flip_tta=True, ema_decay=0.9), tmp_path, device="cpu", dataset_obj=synthetic(),
                progress=False)
    t.fit()
    row = read_metrics(tmp_path / "metrics.csv")[0]
    assert row["test_acc_tta"] == pytest.approx(t.history[0]["test_acc_tta"]) and 0 <= row["test_acc_tta"] <= 1
    assert row["test_loss_tta"] > 0 and row["eval_weights"] == "ema" and row["test_acc"] == t.history[0]["test_acc"]
