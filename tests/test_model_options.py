"""Model options from the paper: 2D learned position embeddings, the pre-training head (hidden
tanh layer), head replacement, and resolution change with 2D-interpolated position embeddings."""
import numpy as np
import pytest

from minivit.storage.checkpoint import model_from_checkpoint, save_checkpoint
from minivit.gradcheck import COMPONENT_TOL, MODEL_TOL, check_pair, model_check
from minivit.interpolate import interpolate_pos_embed, resize_bilinear, resize_table_1d
from minivit.layers.head import tanh_backward, tanh_forward
from minivit.layers.pos2d import learned_2d_pos_backward, learned_2d_pos_forward
from minivit.model import POS_EMBEDS, ViT, ViTConfig

SMALL = dict(image_size=16, patch_size=4, num_classes=5, dim=16, depth=2, num_heads=2, mlp_dim=32)


def randomize(model, seed=0):
    """Non-trivial weights everywhere (the zero head would hide every other parameter)."""
    rng = np.random.default_rng(seed)
    for name, p in model.named_parameters():
        p.value = (rng.standard_normal(p.value.shape) / np.sqrt(max(p.value.shape[0], 1))).astype(p.value.dtype)
    return model


# ----------------------------------------------------------------------- 2D learned position
def test_learned_2d_table_matches_loops():
    rng = np.random.default_rng(0)
    row, col = rng.standard_normal((3, 4)), rng.standard_normal((5, 4))
    for cls in (True, False):
        table, _ = learned_2d_pos_forward(row, col, cls_token=cls)
        assert table.shape == (1, 15 + cls, 8)
        if cls:
            assert np.all(table[0, 0] == 0)
        for r in range(3):
            for c in range(5):
                np.testing.assert_array_equal(table[0, cls + r * 5 + c], np.concatenate([row[r], col[c]]))


@pytest.mark.parametrize("cls", [True, False])
def test_learned_2d_gradcheck(cls):
    rng = np.random.default_rng(1)
    errs = check_pair(lambda r, c: learned_2d_pos_forward(r, c, cls), learned_2d_pos_backward,
                      [rng.standard_normal((3, 4)), rng.standard_normal((2, 4))], [0, 1], ["drow", "dcol"])
    assert max(errs.values()) < COMPONENT_TOL, errs


def test_tanh_gradcheck():
    rng = np.random.default_rng(2)
    errs = check_pair(tanh_forward, tanh_backward, [rng.standard_normal((4, 6))], [0], ["dx"])
    assert errs["dx"] < COMPONENT_TOL
    np.testing.assert_allclose(tanh_forward(np.array([0.0, 1.0]))[0], np.tanh([0.0, 1.0]))


@pytest.mark.parametrize("opts", [dict(pos_embed="learned2d"), dict(pos_embed="learned2d", pool="gap"),
                                  dict(representation_size=6), dict(pos_embed="learned2d", representation_size=6)])
def test_whole_model_gradcheck(opts):
    errors = model_check(ViTConfig(**SMALL, **opts), samples_per_param=6)
    assert max(errors.values()) < MODEL_TOL, errors
    names = " ".join(errors)
    assert ("pos_embed_row" in names) == (opts.get("pos_embed") == "learned2d")
    assert ("pre_logits.weight" in names) == ("representation_size" in opts)


def test_config_validation():
    assert "learned2d" in POS_EMBEDS
    with pytest.raises(ValueError, match="even width"):
        ViTConfig(**{**SMALL, "dim": 15, "num_heads": 3}, pos_embed="learned2d")
    with pytest.raises(ValueError, match="representation_size"):
        ViTConfig(**SMALL, representation_size=0)
    c = ViTConfig(**SMALL, representation_size=7, pos_embed="learned2d")
    assert ViTConfig.from_dict(c.to_dict()) == c


def test_parameter_names_and_counts():
    m = ViT(ViTConfig(**SMALL, pos_embed="learned2d", representation_size=6))
    shapes = {n: p.shape for n, p in m.named_parameters()}
    assert "pos_embed" not in shapes
    assert shapes["pos_embed_row"] == (4, 8) and shapes["pos_embed_col"] == (4, 8)
    assert shapes["pre_logits.weight"] == (16, 6) and shapes["head.weight"] == (6, 5)
    assert np.all(m.head.weight.value == 0)                       # zero-initialized classifier
    assert ViT(ViTConfig(**SMALL)).pre_logits is None             # default: a single linear head


def test_checkpoint_roundtrip_with_options(tmp_path):
    m = randomize(ViT(ViTConfig(**SMALL, pos_embed="learned2d", representation_size=6)))
    save_checkpoint(tmp_path / "m.npz", m)
    m2, _ = model_from_checkpoint(tmp_path / "m.npz")
    x = np.random.default_rng(0).standard_normal((2, 16, 16, 3)).astype(np.float32)
    np.testing.assert_array_equal(m.forward(x), m2.forward(x))


def test_no_position_embedding_sees_a_bag_of_patches():
    """Without position embeddings, shuffling the patches does not change the output (why one matters)."""
    m = randomize(ViT(ViTConfig(**SMALL, pos_embed="none")).to(dtype=np.float64))
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 16, 16, 3))
    patches = x.reshape(2, 4, 4, 4, 4, 3).transpose(0, 1, 3, 2, 4, 5).reshape(2, 16, 48)
    shuffled = patches[:, rng.permutation(16)].reshape(2, 4, 4, 4, 4, 3).transpose(0, 1, 3, 2, 4, 5).reshape(x.shape)
    np.testing.assert_allclose(m.forward(x), m.forward(shuffled), atol=1e-10)
    m1 = randomize(ViT(ViTConfig(**SMALL, pos_embed="learned")).to(dtype=np.float64))
    assert not np.allclose(m1.forward(x), m1.forward(shuffled))


# --------------------------------------------------------------------------- head replacement
def test_replace_head_drops_pre_logits():
    m = randomize(ViT(ViTConfig(**SMALL, representation_size=6)))
    x = np.random.default_rng(0).standard_normal((3, 16, 16, 3)).astype(np.float32)
    before = {n: p.value.copy() for n, p in m.named_parameters()}
    m.replace_head(7)
    names = {n for n, _ in m.named_parameters()}
    assert not any(n.startswith("pre_logits") for n in names)
    assert m.head.weight.shape == (16, 7) and np.all(m.head.weight.value == 0) and np.all(m.head.bias.value == 0)
    assert m.config.num_classes == 7 and m.config.representation_size is None
    for n, p in m.named_parameters():
        if not n.startswith("head"):
            np.testing.assert_array_equal(p.value, before[n])    # the body is untouched
    logits = m.forward(x)
    assert logits.shape == (3, 7) and np.all(logits == 0)       # zero head: uniform predictions at the start
    m.backward(np.ones_like(logits))
    assert m.head.weight.grad.shape == (16, 7)


# -------------------------------------------------------------------------------- interpolation
def test_interpolate_pos_embed_shape_identity_and_cls_row():
    rng = np.random.default_rng(0)
    pos = rng.standard_normal((1, 1 + 16, 8)).astype(np.float32)
    np.testing.assert_array_equal(interpolate_pos_embed(pos, 4), pos)              # same size: identity
    for align in (False, True):
        big = interpolate_pos_embed(pos, 7, 6, align_corners=align)
        assert big.shape == (1, 1 + 42, 8) and big.dtype == np.float32
        np.testing.assert_array_equal(big[:, 0], pos[:, 0])                        # class token kept
    no_cls = pos[:, 1:]
    assert interpolate_pos_embed(no_cls, 6).shape == (1, 36, 8)                    # inferred: no class token
    with pytest.raises(ValueError, match="grid"):
        interpolate_pos_embed(pos[:, :12], 5)


def test_interpolation_is_smooth():
    """Linear functions of (row, col) are reproduced; bilinear never overshoots (no new extremes,
    neighbour differences no larger than the original grid's)."""
    g, D = 4, 3
    r, c = np.meshgrid(np.arange(g), np.arange(g), indexing="ij")
    lin = np.stack([r, c, 2 * r - 3 * c + 1], axis=-1).reshape(1, g * g, D).astype(np.float64)
    pos = np.concatenate([np.full((1, 1, D), 9.0), lin], axis=1)
    new = interpolate_pos_embed(pos, 7, align_corners=True)[0, 1:].reshape(7, 7, D)
    rr, cc = np.meshgrid(np.arange(7) * 3 / 6, np.arange(7) * 3 / 6, indexing="ij")
    np.testing.assert_allclose(new, np.stack([rr, cc, 2 * rr - 3 * cc + 1], -1), atol=1e-12)
    # By location in the image: new patch j's centre sits at old coordinate (j + 0.5) * 4/8 - 0.5.
    new = interpolate_pos_embed(pos, 8)[0, 1:].reshape(8, 8, D)
    coord = (np.arange(8) + 0.5) * 0.5 - 0.5
    inner = slice(1, 7)                                          # the two edge samples are clamped
    np.testing.assert_allclose(new[inner, inner, 0], np.broadcast_to(coord[inner, None], (6, 6)), atol=1e-12)
    np.testing.assert_allclose(new[inner, inner, 1], np.broadcast_to(coord[None, inner], (6, 6)), atol=1e-12)
    rng = np.random.default_rng(1)
    noisy = rng.standard_normal((1, 1 + 25, 4))
    big = interpolate_pos_embed(noisy, 12)[0, 1:].reshape(12, 12, 4)
    old = noisy[0, 1:].reshape(5, 5, 4)
    assert big.max() <= old.max() + 1e-12 and big.min() >= old.min() - 1e-12
    step = lambda a: max(np.abs(np.diff(a, axis=0)).max(), np.abs(np.diff(a, axis=1)).max())  # noqa: E731
    assert step(big) <= step(old) + 1e-12


@pytest.mark.parametrize("align", [False, True])
@pytest.mark.parametrize("size", [(7, 5), (3, 2), (12, 12)])
def test_resize_bilinear_matches_torch(align, size):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).standard_normal((2, 6, 4, 3))
    ours = resize_bilinear(x, *size, align_corners=align)
    ref = torch.nn.functional.interpolate(torch.as_tensor(x).permute(0, 3, 1, 2), size=size, mode="bilinear",
                                          align_corners=align).permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(ours, ref, atol=1e-12)
    assert resize_table_1d(x[0, :, 0], 9).shape == (9, 3)


# ------------------------------------------------------------------------------ ViT.resize
@pytest.mark.parametrize("pos", ["learned", "learned2d", "sincos", "none"])
@pytest.mark.parametrize("pool", ["cls", "gap"])
def test_resize(pos, pool):
    m = randomize(ViT(ViTConfig(**SMALL, pos_embed=pos, pool=pool)))
    x = np.random.default_rng(0).standard_normal((2, 16, 16, 3)).astype(np.float32)
    same = m.forward(x)
    m.resize(16)                                                   # same size: nothing changes
    np.testing.assert_array_equal(m.forward(x), same)
    table = m.position_table()
    m.resize(24)
    assert m.config.image_size == 24 and m.config.num_patches == 36
    assert m.forward(np.zeros((1, 24, 24, 3), np.float32)).shape == (1, 5)
    if pos == "learned":
        assert m.pos_embed.shape == (1, 36 + (pool == "cls"), 16)
        if pool == "cls":
            np.testing.assert_array_equal(m.pos_embed.value[:, 0], table[:, 0])
    if pos == "learned2d":
        assert m.pos_embed_row.shape == (6, 8) and m.pos_embed_col.shape == (6, 8)
    if pos == "sincos":
        fresh = ViT(ViTConfig(**{**SMALL, "image_size": 24}, pos_embed=pos, pool=pool))
        np.testing.assert_allclose(m.position_table(), fresh.position_table())
    with pytest.raises(ValueError, match="divisible"):
        m.resize(26)
