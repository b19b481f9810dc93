"""Official ViT checkpoints (Flax layout .npz) -> minivit, checked against an independent reader,
and fine-tuning from a checkpoint end to end."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from minivit.storage.checkpoint import CheckpointError, save_checkpoint
from minivit.train.finetune import FINETUNE_RECIPES, FineTuner, finetune, prepare_model, resize_batches
from minivit.model import ViT, ViTConfig
from minivit.optim import SGD
from minivit.pretrained import (
    OFFICIAL_MEAN, load_model, load_official_npz, official_config, read_npz, save_official_npz,
)

from test_train import STANDIN, synthetic

ROOT = Path(__file__).resolve().parents[1]
# The tiny "official" model: depth 2, width 16, 2 heads of 8, patch 4, 16 x 16 images (16 patches),
# MLP 32, a pre-logits layer of 12 and 5 classes.
L, D, H, P, S, M, R, K, C = 2, 16, 2, 4, 16, 32, 12, 5, 3


def write_official(path, seed=0, pre_logits=True, image_size=S):
    """A random checkpoint in exactly the layout of google-research/vision_transformer's .npz files."""
    rng = np.random.default_rng(seed)
    r = lambda *shape, s=0.3: (s * rng.standard_normal(shape)).astype(np.float32)  # noqa: E731
    T = 1 + (image_size // P) ** 2
    a = {"embedding/kernel": r(P, P, C, D), "embedding/bias": r(D), "cls": r(1, 1, D),
         "Transformer/posembed_input/pos_embedding": r(1, T, D),
         "Transformer/encoder_norm/scale": 1 + r(D), "Transformer/encoder_norm/bias": r(D)}
    for i in range(L):
        b = f"Transformer/encoderblock_{i}/"
        a[b + "LayerNorm_0/scale"], a[b + "LayerNorm_0/bias"] = 1 + r(D), r(D)
        a[b + "LayerNorm_2/scale"], a[b + "LayerNorm_2/bias"] = 1 + r(D), r(D)
        for n in ("query", "key", "value"):
            a[f"{b}MultiHeadDotProductAttention_1/{n}/kernel"] = r(D, H, D // H, s=0.5)
            a[f"{b}MultiHeadDotProductAttention_1/{n}/bias"] = r(H, D // H)
        a[b + "MultiHeadDotProductAttention_1/out/kernel"] = r(H, D // H, D)
        a[b + "MultiHeadDotProductAttention_1/out/bias"] = r(D)
        a[b + "MlpBlock_3/Dense_0/kernel"], a[b + "MlpBlock_3/Dense_0/bias"] = r(D, M), r(M)
        a[b + "MlpBlock_3/Dense_1/kernel"], a[b + "MlpBlock_3/Dense_1/bias"] = r(M, D), r(D)
    if pre_logits:
        a["pre_logits/kernel"], a["pre_logits/bias"] = r(D, R), r(R)
    a["head/kernel"], a["head/bias"] = r(R if pre_logits else D, K), r(K)
    np.savez(path, **a)
    return path


def reference_logits(path, x, image_size=None):
    """The Flax ViT forward written directly from the checkpoint's arrays with torch: a strided
    conv for the patches, per-head einsums with (D, h, d) kernels, as in flax.linen's
    DenseGeneral / MultiHeadDotProductAttention. Nothing from minivit's mapping is used."""
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    with np.load(path, allow_pickle=False) as z:
        w = {k: torch.as_tensor(z[k], dtype=torch.float64) for k in z.files}
    x = torch.as_tensor(x, dtype=torch.float64)
    kernel = w["embedding/kernel"]                                        # (P, P, C, D)
    p = kernel.shape[0]
    y = F.conv2d(x.permute(0, 3, 1, 2), kernel.permute(3, 2, 0, 1), w["embedding/bias"], stride=p)  # (B, D, gh, gw)
    B, Dm, gh, gw = y.shape
    z = y.flatten(2).transpose(1, 2)                                      # (B, N, D), row-major patches
    z = torch.cat([w["cls"].expand(B, 1, Dm), z], dim=1)
    pos = w["Transformer/posembed_input/pos_embedding"]
    if pos.shape[1] != z.shape[1]:                                        # resolution change: 2D interpolation
        g0 = int(round((pos.shape[1] - 1) ** 0.5))
        grid = pos[:, 1:].reshape(1, g0, g0, Dm).permute(0, 3, 1, 2)
        grid = F.interpolate(grid, size=(gh, gw), mode="bilinear", align_corners=False)
        pos = torch.cat([pos[:, :1], grid.permute(0, 2, 3, 1).reshape(1, gh * gw, Dm)], dim=1)
    z = z + pos
    ln = lambda t, pre: F.layer_norm(t, (Dm,), w[pre + "/scale"], w[pre + "/bias"], eps=1e-6)  # noqa: E731
    i = 0
    while f"Transformer/encoderblock_{i}/LayerNorm_0/scale" in w:
        b = f"Transformer/encoderblock_{i}/"
        mha = b + "MultiHeadDotProductAttention_1/"
        h = ln(z, b + "LayerNorm_0")
        q, k, v = (torch.einsum("btD,Dhd->bthd", h, w[f"{mha}{n}/kernel"]) + w[f"{mha}{n}/bias"]
                   for n in ("query", "key", "value"))
        att = torch.softmax(torch.einsum("bqhd,bkhd->bhqk", q, k) / q.shape[-1] ** 0.5, dim=-1)
        o = torch.einsum("bhqk,bkhd->bqhd", att, v)
        z = z + torch.einsum("bqhd,hdD->bqD", o, w[mha + "out/kernel"]) + w[mha + "out/bias"]
        h = ln(z, b + "LayerNorm_2")
        h = F.gelu(h @ w[b + "MlpBlock_3/Dense_0/kernel"] + w[b + "MlpBlock_3/Dense_0/bias"], approximate="tanh")
        z = z + h @ w[b + "MlpBlock_3/Dense_1/kernel"] + w[b + "MlpBlock_3/Dense_1/bias"]
        i += 1
    rep = ln(z, "Transformer/encoder_norm")[:, 0]
    if "pre_logits/kernel" in w:
        rep = torch.tanh(rep @ w["pre_logits/kernel"] + w["pre_logits/bias"])
    return (rep @ w["head/kernel"] + w["head/bias"]).numpy()


@pytest.fixture
def official(tmp_path):
    return write_official(tmp_path / "ViT-T_4.npz")


def images(n=3, size=S, seed=5):
    return np.random.default_rng(seed).standard_normal((n, size, size, C))


def test_config_is_inferred(official):
    c = official_config(read_npz(official))
    assert (c.image_size, c.patch_size, c.in_channels, c.dim, c.depth, c.num_heads, c.mlp_dim, c.num_classes,
            c.representation_size, c.pool, c.pos_embed) == (S, P, C, D, L, H, M, K, R, "cls", "learned")


@pytest.mark.parametrize("pre_logits", [True, False])
def test_logits_match_independent_reference(tmp_path, pre_logits):
    path = write_official(tmp_path / "ck.npz", pre_logits=pre_logits)
    model = load_official_npz(path, dtype=np.float64)
    assert (model.pre_logits is not None) == pre_logits
    x = images()
    ours = model.forward(x)
    ref = reference_logits(path, x)
    assert ours.shape == (3, K)
    np.testing.assert_allclose(ours, ref, rtol=1e-10, atol=1e-10)
    assert np.abs(ref).max() > 0.1                                     # a non-trivial comparison
    m32 = load_official_npz(path)                                      # float32 by default
    assert m32.dtype == np.float32
    np.testing.assert_allclose(m32.forward(x.astype(np.float32)), ref, rtol=1e-4, atol=1e-4)


def test_load_at_another_resolution(official):
    model = load_official_npz(official, image_size=24, dtype=np.float64)
    assert model.config.image_size == 24 and model.pos_embed.shape == (1, 1 + 36, D)
    with np.load(official) as z:
        np.testing.assert_array_equal(model.pos_embed.value[:, 0], z["Transformer/posembed_input/pos_embedding"][:, 0])
    x = images(size=24)
    np.testing.assert_allclose(model.forward(x), reference_logits(official, x), rtol=1e-10, atol=1e-10)


def test_head_replacement(official):
    model = load_official_npz(official, num_classes=10)
    assert model.pre_logits is None and model.head.weight.shape == (D, 10)
    assert np.all(model.forward(images().astype(np.float32)) == 0)    # zero-initialized fine-tuning head
    body = load_official_npz(official)
    np.testing.assert_array_equal(model.blocks[1].mlp.fc2.weight.value, body.blocks[1].mlp.fc2.weight.value)


def test_roundtrip_and_load_model(tmp_path, official):
    model = load_official_npz(official, dtype=np.float64)
    again = load_official_npz(save_official_npz(model, tmp_path / "again.npz"), dtype=np.float64)
    x = images()
    np.testing.assert_array_equal(model.forward(x), again.forward(x))
    m, info = load_model(official)
    assert info["source"] == "official" and info["mean"] == OFFICIAL_MEAN
    save_checkpoint(tmp_path / "mini.npz", m)
    m2, info2 = load_model(tmp_path / "mini.npz")
    assert info2["source"] == "minivit" and m2.config == m.config


def test_clear_errors(tmp_path, official):
    with np.load(official) as z:
        a = {k: z[k] for k in z.files}
    broken = dict(a)
    del broken["Transformer/encoderblock_1/MlpBlock_3/Dense_1/bias"]
    np.savez(tmp_path / "missing.npz", **broken)
    with pytest.raises(CheckpointError, match="encoderblock_1/MlpBlock_3/Dense_1/bias"):
        load_official_npz(tmp_path / "missing.npz")
    broken = dict(a)
    broken["Transformer/encoderblock_0/LayerNorm_2/scale"] = np.ones(D + 1, np.float32)
    np.savez(tmp_path / "shape.npz", **broken)
    with pytest.raises(CheckpointError, match=r"LayerNorm_2/scale has shape \(17,\), expected \(16,\)"):
        load_official_npz(tmp_path / "shape.npz")
    np.savez(tmp_path / "other.npz", weights=np.zeros(3))
    with pytest.raises(CheckpointError, match="neither"):
        load_model(tmp_path / "other.npz")
    with pytest.raises(FileNotFoundError):
        load_official_npz(tmp_path / "nope.npz")


# ----------------------------------------------------------------------------------- fine-tuning
def test_resize_batches():
    t = resize_batches(16)
    x = np.random.default_rng(0).standard_normal((2, 32, 32, 3)).astype(np.float32)
    y = t(x)
    assert y.shape == (2, 16, 16, 3) and y.dtype == np.float32
    np.testing.assert_allclose(y[0, 0, 0], x[0, :2, :2].mean(axis=(0, 1)), rtol=1e-5)  # halving averages 2x2
    assert t(y) is y


def test_finetune_official_end_to_end(tmp_path, official):
    data = synthetic(n_train=128, n_test=64, k=4)
    tuner = finetune(official, preset="smoke", out=tmp_path / "run", dataset_obj=data, progress=False, device="cpu",
                     epochs=2, subset=128, test_subset=64, lr=0.05)
    assert isinstance(tuner, FineTuner) and isinstance(tuner.opt, SGD)
    assert tuner.model.config.num_classes == 4 and tuner.model.config.image_size == S
    assert tuner.cfg.augment["mean"] == OFFICIAL_MEAN and tuner.cfg.weight_decay == 0
    assert len(tuner.history) == 2 and (tmp_path / "run" / "best.npz").is_file()
    assert tuner.history[-1]["train_loss"] < np.log(4)                 # learned something
    # A minivit checkpoint works too, and so does a resolution change.
    model, info = prepare_model(tmp_path / "run" / "last.npz", num_classes=3, image_size=24)
    assert model.config.image_size == 24 and model.config.num_classes == 3 and info["source"] == "minivit"


@pytest.mark.skipif(not (STANDIN / "cifar-10-batches-bin").is_dir(), reason="CIFAR-10 stand-in not available")
def test_finetune_cli(tmp_path, official):
    r = subprocess.run([sys.executable, "-m", "minivit", "finetune", "--from", str(official), "--preset", "smoke",
                        "--out", str(tmp_path / "ft"), "--device", "cpu", "--subset", "64", "--batch-size", "32"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120,
                       env={**os.environ, "MINIVIT_DATA": str(STANDIN), "MPLBACKEND": "Agg"})
    assert r.returncode == 0, r.stdout + r.stderr
    assert "fine-tuning" in r.stdout and (tmp_path / "ft" / "last.npz").is_file()
    assert set(FINETUNE_RECIPES) >= {"smoke", "cpu", "gpu"}
