"""Tests for minivit.data.augment (NumPy backend; the code is written to run unchanged on CuPy)."""
import numpy as np
import pytest

from minivit.data import augment as A
from minivit.data.augment import (
    CIFAR10_MEAN,
    CIFAR10_STD,
    CIFAR100_MEAN,
    CIFAR100_STD,
    FILL,
    RANDAUGMENT_OPS,
    AugmentConfig,
    apply_op,
    augment_batch,
    mix_batch,
    normalize,
    op_value,
    rand_augment,
    random_crop,
    random_erasing,
    random_flip,
)

B, H, W, C = 16, 32, 32, 3


def images(seed=0, b=B, h=H, w=W, c=C):
    return np.random.default_rng(seed).integers(0, 256, (b, h, w, c), dtype=np.uint8)


def labels(seed=0, b=B, k=10):
    return np.random.default_rng(seed + 1000).integers(0, k, b).astype(np.int64)


def rng(seed=0):
    return np.random.default_rng(seed)


# ---------------------------------------------------------------------------
# constants and normalize


def test_cifar_stats():
    assert CIFAR10_MEAN == (0.4914, 0.4822, 0.4465)
    assert CIFAR10_STD == (0.2470, 0.2435, 0.2616)
    assert CIFAR100_MEAN == (0.5071, 0.4865, 0.4409)
    assert CIFAR100_STD == (0.2673, 0.2564, 0.2762)


def test_normalize_values_shape_dtype():
    x = images()
    out = normalize(x, CIFAR10_MEAN, CIFAR10_STD)
    assert out.shape == x.shape and out.dtype == np.float32
    ref = (x.astype(np.float64) / 255.0 - np.array(CIFAR10_MEAN)) / np.array(CIFAR10_STD)
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)
    # known values: 0 -> -mean/std, 255 -> (1-mean)/std
    x2 = np.zeros((1, 2, 2, 3), np.uint8)
    x2[0, 1] = 255
    out2 = normalize(x2, (0.5, 0.5, 0.5), (0.25, 0.5, 1.0))
    np.testing.assert_allclose(out2[0, 0, 0], [-2.0, -1.0, -0.5], atol=1e-6)
    np.testing.assert_allclose(out2[0, 1, 1], [2.0, 1.0, 0.5], atol=1e-6)
    assert normalize(x, CIFAR10_MEAN, CIFAR10_STD, dtype="float16").dtype == np.float16


def test_normalize_validation():
    x = images()
    with pytest.raises(TypeError, match="uint8"):
        normalize(x.astype(np.float32), CIFAR10_MEAN, CIFAR10_STD)
    with pytest.raises(ValueError, match="rank 4"):
        normalize(x[0], CIFAR10_MEAN, CIFAR10_STD)
    with pytest.raises(ValueError, match="per channel"):
        normalize(x, (0.5, 0.5), (0.2, 0.2))
    with pytest.raises(ValueError, match="positive"):
        normalize(x, CIFAR10_MEAN, (0.2, 0.0, 0.2))


# ---------------------------------------------------------------------------
# crop and flip


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_random_crop_matches_padded_slices(dtype):
    x = images().astype(dtype)
    p = 4
    out = random_crop(x, p, rng(3))
    assert out.shape == x.shape and out.dtype == x.dtype
    offsets = rng(3).integers(0, 2 * p + 1, size=(2, B))  # the documented draw
    padded = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
    for b in range(B):
        oy, ox = offsets[:, b]
        np.testing.assert_array_equal(out[b], padded[b, oy:oy + H, ox:ox + W])


def test_crop_known_offsets_and_identity():
    x = images()
    p = 3
    padded = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
    offs = np.stack([np.arange(B) % (2 * p + 1), (np.arange(B) * 2) % (2 * p + 1)])
    out = A._crop_flip(x, p, offsets=offs)
    for b in range(B):
        np.testing.assert_array_equal(out[b], padded[b, offs[0, b]:offs[0, b] + H, offs[1, b]:offs[1, b] + W])
    # offset == padding on both axes: no shift at all
    same = A._crop_flip(x, p, offsets=np.full((2, B), p))
    np.testing.assert_array_equal(same, x)
    # offset 0: shifted down/right by p with a zero border
    shifted = A._crop_flip(x, p, offsets=np.zeros((2, B), np.int64))
    np.testing.assert_array_equal(shifted[:, p:, p:], x[:, :-p, :-p])
    assert (shifted[:, :p] == 0).all() and (shifted[:, :, :p] == 0).all()


def test_random_crop_zero_padding_and_validation():
    x = images()
    r = rng(0)
    state = r.bit_generator.state
    assert random_crop(x, 0, r) is x
    assert r.bit_generator.state == state  # nothing drawn
    with pytest.raises(ValueError, match="padding"):
        random_crop(x, -1, rng())
    with pytest.raises(ValueError, match="rank 4"):
        random_crop(x[0], 4, rng())


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_random_flip(dtype):
    x = images(b=64).astype(dtype)
    out = random_flip(x, rng(5))
    assert out.shape == x.shape and out.dtype == x.dtype
    flips = rng(5).random(64) < 0.5
    assert 0 < flips.sum() < 64
    np.testing.assert_array_equal(out[flips], x[:, :, ::-1][flips])
    np.testing.assert_array_equal(out[~flips], x[~flips])


def test_fused_crop_flip_equals_sequential():
    x = images()
    y = labels()
    cfg = AugmentConfig(crop_padding=4, flip=True)
    fused, t = augment_batch(x, y, rng(9), cfg, 10)
    r = rng(9)
    ref = normalize(random_flip(random_crop(x, 4, r), r), cfg.mean, cfg.std)
    np.testing.assert_array_equal(fused, ref)
    np.testing.assert_array_equal(t, y)
    assert t.dtype == np.int64


# ---------------------------------------------------------------------------
# RandAugment ops, one at a time, with known answers


def test_op_value_ranges():
    for name in RANDAUGMENT_OPS:
        v0 = op_value(name, 0, np.array([1.0, -1.0]))
        assert v0.dtype == np.float32
    assert op_value("rotate", 30, np.array([1.0, -1.0])).tolist() == [30.0, -30.0]
    assert op_value("rotate", 0, np.array([1.0])).tolist() == [0.0]
    assert op_value("brightness", 30, np.array([1.0, -1.0])).tolist() == pytest.approx([1.9, 0.1])
    assert op_value("brightness", 0, np.array([-1.0])).tolist() == [1.0]
    assert op_value("posterize", 0).item() == 8 and op_value("posterize", 30).item() == 4
    assert op_value("posterize", 9).item() == 7  # torchvision: 8 - round(9 / 7.5)
    assert op_value("solarize", 0).item() == 256 and op_value("solarize", 30).item() == 0
    assert op_value("shear_x", 30, np.array([-1.0])).item() == pytest.approx(-0.3)
    assert op_value("translate_x", 30, np.array([1.0]), size=(32, 32)).item() == pytest.approx(32 * 150 / 331)
    with pytest.raises(ValueError, match="magnitude"):
        op_value("rotate", 31)
    with pytest.raises(ValueError, match="unknown"):
        op_value("invert_everything", 3)


def test_solarize_threshold():
    x = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1).repeat(3, axis=3)
    out = apply_op(x, "solarize", 128)
    expect = np.where(x >= 128, 255 - x, x)
    np.testing.assert_array_equal(out, expect)
    np.testing.assert_array_equal(apply_op(x, "solarize", 0), 255 - x)  # = invert
    np.testing.assert_array_equal(apply_op(x, "solarize", 256), x)  # = identity


def test_posterize_bits():
    x = images()
    np.testing.assert_array_equal(apply_op(x, "posterize", 4), x & 0xF0)
    np.testing.assert_array_equal(apply_op(x, "posterize", 1), x & 0x80)
    np.testing.assert_array_equal(apply_op(x, "posterize", 8), x)
    # one value per image
    out = apply_op(x[:2], "posterize", np.array([6, 2]))
    np.testing.assert_array_equal(out[0], x[0] & 0xFC)
    np.testing.assert_array_equal(out[1], x[1] & 0xC0)


def test_brightness():
    x = images()
    np.testing.assert_array_equal(apply_op(x, "brightness", 1.0), x)
    np.testing.assert_array_equal(apply_op(x, "brightness", 0.0), np.zeros_like(x))
    expect = np.clip(np.rint(x.astype(np.float64) * 1.5), 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(apply_op(x, "brightness", 1.5), expect)


def test_contrast_and_color():
    x = images()
    np.testing.assert_array_equal(apply_op(x, "contrast", 1.0), x)
    np.testing.assert_array_equal(apply_op(x, "color", 1.0), x)
    grey = x.astype(np.float64) @ np.array([0.299, 0.587, 0.114])  # (B, H, W)
    out = apply_op(x, "contrast", 0.0)  # every pixel = the image's mean grey level
    np.testing.assert_array_equal(out, np.broadcast_to(np.rint(grey.mean(axis=(1, 2)))[:, None, None, None], x.shape))
    out = apply_op(x, "color", 0.0)  # fully desaturated: the grey image in all channels
    assert (np.abs(out.astype(int) - np.rint(grey)[..., None]) <= 1).all()
    assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()


def test_sharpness():
    x = images()
    np.testing.assert_array_equal(apply_op(x, "sharpness", 1.0), x)
    const = np.full((2, 8, 8, 3), 77, np.uint8)
    np.testing.assert_array_equal(apply_op(const, "sharpness", 1.9), const)
    out = apply_op(x, "sharpness", 0.0)  # = the smoothed image, border kept
    xf = x.astype(np.float64)
    k = np.array([[1, 1, 1], [1, 5, 1], [1, 1, 1]]) / 13.0
    sm = sum(k[dy, dx] * xf[:, dy:dy + H - 2, dx:dx + W - 2] for dy in range(3) for dx in range(3))
    np.testing.assert_array_equal(out[:, 1:-1, 1:-1], np.rint(sm).astype(np.uint8))
    np.testing.assert_array_equal(out[:, 0], x[:, 0])
    np.testing.assert_array_equal(out[:, :, -1], x[:, :, -1])


def test_autocontrast_known():
    x = np.random.default_rng(0).integers(50, 101, (4, 8, 8, 3)).astype(np.uint8)
    x[:, 0, 0] = 50
    x[:, 0, 1] = 100
    x[1, ..., 2] = 7  # a constant channel is left alone
    out = apply_op(x, "autocontrast", 0)
    expect = ((x.astype(int) - 50) * 255) // 50
    expect[1, ..., 2] = 7
    np.testing.assert_array_equal(out, expect)


def test_equalize_known():
    x = np.full((1, 32, 32, 3), 10, np.uint8)
    x[:, 16:] = 200  # half 10, half 200 -> 0 and 255
    out = apply_op(x, "equalize", 0)
    np.testing.assert_array_equal(out[:, :16], 0)
    np.testing.assert_array_equal(out[:, 16:], 255)
    const = np.full((2, 4, 4, 3), 99, np.uint8)
    np.testing.assert_array_equal(apply_op(const, "equalize", 0), const)


@pytest.mark.parametrize("name", ["equalize", "autocontrast", "solarize", "posterize"])
def test_matches_pil(name):
    Image = pytest.importorskip("PIL.Image")
    ImageOps = pytest.importorskip("PIL.ImageOps")
    r = np.random.default_rng(1)
    x = r.integers(0, 256, (6, 32, 32, 3)).astype(np.uint8)
    x[1] = (x[1] // 4) + 60  # low-contrast image
    x[2] = r.integers(0, 4, (32, 32, 3)) * 60  # few distinct values
    x[3, ..., 1] = 17  # constant channel
    value = {"solarize": 100, "posterize": 3}.get(name, 0)
    out = apply_op(x, name, value)
    pil = {
        "equalize": ImageOps.equalize,
        "autocontrast": ImageOps.autocontrast,
        "solarize": lambda im: ImageOps.solarize(im, 100),
        "posterize": lambda im: ImageOps.posterize(im, 3),
    }[name]
    for b in range(len(x)):
        np.testing.assert_array_equal(out[b], np.asarray(pil(Image.fromarray(x[b]))))


@pytest.mark.parametrize("name", ["brightness", "color", "contrast", "sharpness"])
def test_blend_ops_close_to_pil(name):
    """Our blends round to nearest where PIL truncates: at most 1 apart."""
    Image = pytest.importorskip("PIL.Image")
    ImageEnhance = pytest.importorskip("PIL.ImageEnhance")
    r = np.random.default_rng(1)
    x = np.clip(np.cumsum(r.integers(-20, 21, (4, H, W, C)), axis=2) + 128, 0, 255).astype(np.uint8)
    enh = {"brightness": ImageEnhance.Brightness, "color": ImageEnhance.Color,
           "contrast": ImageEnhance.Contrast, "sharpness": ImageEnhance.Sharpness}[name]
    for f in (0.1, 0.6, 1.4, 1.9):
        out = apply_op(x, name, f).astype(int)
        ref = np.stack([np.asarray(enh(Image.fromarray(im)).enhance(f)) for im in x]).astype(int)
        assert np.abs(out - ref).max() <= 1, (name, f)


def test_geometry_matches_pil():
    """Rotation (counter-clockwise, about the centre) and shear agree with PIL's nearest-neighbour warps."""
    Image = pytest.importorskip("PIL.Image")
    x = images(b=4)
    grey = (FILL, FILL, FILL)
    for angle in (12.0, -27.0, 30.0):
        out = apply_op(x, "rotate", angle)
        ref = np.stack([np.asarray(Image.fromarray(im).rotate(angle, resample=Image.NEAREST, fillcolor=grey))
                        for im in x])
        # identical up to exact rounding ties (float32 here, float64 in PIL): a handful of pixels
        assert (out != ref).any(-1).mean() < 0.005, angle
    for s in (0.3, -0.2):  # PIL's affine about the centre (16, 16) in PIL's pixel-centre coordinates
        out = apply_op(x, "shear_x", s)
        ref = np.stack([np.asarray(Image.fromarray(im).transform(
            (W, H), Image.AFFINE, (1, s, -s * H / 2, 0, 1, 0), resample=Image.NEAREST, fillcolor=grey)) for im in x])
        np.testing.assert_array_equal(out, ref)
        out = apply_op(x, "shear_y", s)
        ref = np.stack([np.asarray(Image.fromarray(im).transform(
            (W, H), Image.AFFINE, (1, 0, 0, s, 1, -s * W / 2), resample=Image.NEAREST, fillcolor=grey)) for im in x])
        np.testing.assert_array_equal(out, ref)


def test_translate():
    x = images()
    out = apply_op(x, "translate_x", 3)
    np.testing.assert_array_equal(out[:, :, 3:], x[:, :, :-3])
    assert (out[:, :, :3] == FILL).all()
    out = apply_op(x, "translate_y", -5)
    np.testing.assert_array_equal(out[:, :-5], x[:, 5:])
    assert (out[:, -5:] == FILL).all()
    np.testing.assert_array_equal(apply_op(x, "translate_x", 0), x)


def test_rotate():
    x = images()
    for name in ("rotate", "shear_x", "shear_y"):
        np.testing.assert_array_equal(apply_op(x, name, 0.0), x)
    r90 = apply_op(x, "rotate", 90.0)  # counter-clockwise, like np.rot90 over (H, W)
    np.testing.assert_array_equal(r90, np.rot90(x, 1, axes=(1, 2)))
    np.testing.assert_array_equal(apply_op(r90, "rotate", -90.0), x)
    np.testing.assert_array_equal(apply_op(x, "rotate", 180.0), x[:, ::-1, ::-1])
    # a small rotation brings in grey fill at the corners only
    r = apply_op(x, "rotate", 20.0)
    assert (r[:, 0, 0] == FILL).all() and (r[:, 16, 16] == x[:, 16, 16]).all()


def test_shear_moves_along_one_axis():
    rows = np.broadcast_to(np.arange(H, dtype=np.uint8)[None, :, None, None] * 3 + 1, (2, H, W, C))
    out = apply_op(np.ascontiguousarray(rows), "shear_x", 0.3)
    keep = out != FILL  # shear_x moves pixels along their row only
    np.testing.assert_array_equal(out[keep], rows[keep])
    assert (~keep).any()
    cols = np.ascontiguousarray(np.swapaxes(rows, 1, 2))
    out = apply_op(cols, "shear_y", -0.3)
    keep = out != FILL
    np.testing.assert_array_equal(out[keep], cols[keep])
    assert (~keep).any()


def test_apply_op_per_image_values_and_errors():
    x = images(b=3)
    out = apply_op(x, "translate_x", np.array([0.0, 2.0, -2.0]))
    np.testing.assert_array_equal(out[0], x[0])
    np.testing.assert_array_equal(out[1, :, 2:], x[1, :, :-2])
    np.testing.assert_array_equal(out[2, :, :-2], x[2, :, 2:])
    with pytest.raises(ValueError, match="unknown"):
        apply_op(x, "nope", 1)
    with pytest.raises(TypeError, match="uint8"):
        apply_op(x.astype(np.float32), "identity", 0)


# ---------------------------------------------------------------------------
# RandAugment policy


def test_rand_augment_shape_range_and_no_mutation():
    x = images()
    x0 = x.copy()
    out = rand_augment(x, 2, 9, rng(1))
    assert out.shape == x.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(x, x0)  # input untouched
    assert not np.array_equal(out, x)


def test_rand_augment_identity_cases():
    x = images()
    assert rand_augment(x, 0, 9, rng()) is x
    np.testing.assert_array_equal(rand_augment(x, 3, 30, rng(), ops=("identity",)), x)
    magnitude_ops = tuple(o for o in RANDAUGMENT_OPS if o not in ("autocontrast", "equalize"))
    np.testing.assert_array_equal(rand_augment(x, 3, 0, rng(2), ops=magnitude_ops), x)


def test_rand_augment_single_op_lists():
    x = images()
    np.testing.assert_array_equal(rand_augment(x, 1, 30, rng(), ops=("solarize",)), 255 - x)
    np.testing.assert_array_equal(rand_augment(x, 1, 30, rng(), ops=("posterize",)), x & 0xF0)
    out = rand_augment(x, 1, 30, rng(4), ops=("brightness",))  # factor 1.9 or 0.1 per image
    bright = np.clip(np.rint(x * 1.9), 0, 255).astype(np.uint8)
    dark = np.rint(x * 0.1).astype(np.uint8)
    kinds = [np.array_equal(out[b], bright[b]) + 2 * np.array_equal(out[b], dark[b]) for b in range(B)]
    assert set(kinds) == {1, 2}  # both signs occur, each image is exactly one of them


def test_rand_augment_equals_per_image_reference():
    """The batched gather/scatter equals applying each image's ops one by one."""
    n, m = 2, 13
    x = images(b=48)
    out = rand_augment(x, n, m, rng(7))
    r = rng(7)
    ops = RANDAUGMENT_OPS
    choices = r.integers(0, len(ops), size=(n, 48))
    signs = np.where(r.random((n, 48)) < 0.5, -1.0, 1.0)
    assert len(set(choices.ravel().tolist())) >= 10  # most ops exercised
    for b in range(48):
        img = x[b:b + 1]
        for k in range(n):
            name = ops[choices[k, b]]
            img = apply_op(img, name, op_value(name, m, signs[k, b:b + 1], size=(H, W)))
        np.testing.assert_array_equal(out[b:b + 1], img, err_msg=f"image {b}")


def test_rand_augment_determinism_and_validation():
    x = images()
    a = rand_augment(x, 2, 9, rng(11))
    np.testing.assert_array_equal(a, rand_augment(x, 2, 9, rng(11)))
    assert not np.array_equal(a, rand_augment(x, 2, 9, rng(12)))
    with pytest.raises(TypeError, match="uint8"):
        rand_augment(x.astype(np.float32), 2, 9, rng())
    with pytest.raises(ValueError, match="magnitude"):
        rand_augment(x, 2, 31, rng())
    with pytest.raises(ValueError, match="n must"):
        rand_augment(x, -1, 9, rng())
    with pytest.raises(ValueError, match="unknown"):
        rand_augment(x, 1, 9, rng(), ops=("identity", "nope"))
    with pytest.raises(ValueError, match="rank 4"):
        rand_augment(x[0], 1, 9, rng())


# ---------------------------------------------------------------------------
# random erasing


def test_random_erasing_prob_zero_is_identity():
    x = normalize(images(), CIFAR10_MEAN, CIFAR10_STD)
    r = rng()
    state = r.bit_generator.state
    assert random_erasing(x, 0.0, r) is x
    assert r.bit_generator.state == state


def test_random_erasing_boxes():
    x = np.ones((64, H, W, C), np.float32)
    out = random_erasing(x, 1.0, rng(3))
    assert out.shape == x.shape and out.dtype == np.float32
    np.testing.assert_array_equal(x, 1.0)  # input untouched
    for b in range(64):
        z = out[b, :, :, 0] == 0
        assert (out[b][~z] == 1).all() and (out[b][z] == 0).all()
        rows, cols = np.flatnonzero(z.any(1)), np.flatnonzero(z.any(0))
        assert z.sum() == len(rows) * len(cols)  # one solid rectangle
        assert np.ptp(rows) + 1 == len(rows) and np.ptp(cols) + 1 == len(cols)
        frac = z.sum() / (H * W)
        assert 0.01 <= frac <= 0.36
    # prob 0.5: some images erased, some not
    out = random_erasing(x, 0.5, rng(4))
    erased = (out == 0).any(axis=(1, 2, 3))
    assert 0 < erased.sum() < 64


def test_random_erasing_validation():
    x = np.ones((2, 4, 4, 3), np.float32)
    with pytest.raises(ValueError, match="probability"):
        random_erasing(x, 1.5, rng())
    with pytest.raises(TypeError, match="floating"):
        random_erasing(x.astype(np.uint8), 0.5, rng())


# ---------------------------------------------------------------------------
# mixup / CutMix


def constant_batch(b=B):
    """Image i is constant i + 1, label i: mixing is readable from the pixels."""
    x = np.broadcast_to(np.arange(1, b + 1, dtype=np.float32)[:, None, None, None], (b, H, W, C)).copy()
    return x, np.arange(b, dtype=np.int64)


def test_mixup():
    x, y = constant_batch()
    out, ys = mix_batch(x, y, B, rng(2), mixup_alpha=0.4)
    assert out.shape == x.shape and out.dtype == np.float32
    assert ys.shape == (B, B) and ys.dtype == np.float32
    np.testing.assert_allclose(ys.sum(1), 1.0, atol=1e-6)
    for i in range(B):
        # the pixel value is the label-weighted average of the two source values
        np.testing.assert_allclose(out[i], (ys[i] * np.arange(1, B + 1)).sum(), rtol=1e-5)
    assert (ys.max(1) < 1).any()  # really mixed


def test_cutmix_lambda_is_area_fraction():
    for seed in range(5):
        x, y = constant_batch()
        out, ys = mix_batch(x, y, B, rng(seed), cutmix_alpha=1.0)
        np.testing.assert_allclose(ys.sum(1), 1.0, atol=1e-6)
        for i in range(B):
            kept = (out[i, ..., 0] == i + 1).mean()
            assert ys[i, i] == pytest.approx(kept, abs=1e-6)
        # one box, in the same place for every image
        changed = out[..., 0] != x[..., 0]
        box = changed.any(0)
        for i in range(B):  # each image: the whole box changed, or nothing (paired with itself)
            assert np.array_equal(changed[i], box) or not changed[i].any()


def test_mix_off_paths():
    x, y = constant_batch()
    for kw in ({"mixup_alpha": 1.0, "mix_prob": 0.0}, {}):
        r = rng()
        out, ys = mix_batch(x, y, B, r, **kw)
        assert out is x
        np.testing.assert_array_equal(ys, np.eye(B, dtype=np.float32)[y])
    # both alphas: mixup or CutMix per batch
    kinds = set()
    for seed in range(12):
        out, ys = mix_batch(*constant_batch(), B, rng(seed), mixup_alpha=1.0, cutmix_alpha=1.0)
        kinds.add("cutmix" if np.isin(out, np.arange(1, B + 1)).all() else "mixup")
    assert kinds == {"cutmix", "mixup"}


def test_mix_validation():
    x, y = constant_batch()
    with pytest.raises(ValueError, match="probability"):
        mix_batch(x, y, B, rng(), mixup_alpha=1.0, mix_prob=1.5)
    with pytest.raises(ValueError, match="shape"):
        mix_batch(x, y[:3], B, rng(), mixup_alpha=1.0)
    with pytest.raises(TypeError, match="integer"):
        mix_batch(x, y.astype(np.float32), B, rng(), mixup_alpha=1.0)
    with pytest.raises(ValueError, match="mixup_alpha"):
        mix_batch(x, y, B, rng(), mixup_alpha=-1.0)
    with pytest.raises(TypeError, match="floating"):
        mix_batch(x.astype(np.uint8), y, B, rng(), mixup_alpha=1.0)


# ---------------------------------------------------------------------------
# the pipeline


FULL = AugmentConfig(
    crop_padding=4, flip=True, randaugment_n=2, randaugment_m=9, mixup_alpha=0.8, cutmix_alpha=1.0, erasing_prob=0.25
)


def test_eval_path_only_normalizes():
    x, y = images(), labels()
    r = rng()
    state = r.bit_generator.state
    out, t = augment_batch(x, y, r, FULL, 10, train=False)
    np.testing.assert_array_equal(out, normalize(x, FULL.mean, FULL.std))
    np.testing.assert_array_equal(t, y)
    assert t.dtype == np.int64 and out.dtype == np.float32
    assert r.bit_generator.state == state


def test_augment_batch_full_shapes_and_determinism():
    x, y = images(), labels()
    out, t = augment_batch(x, y, rng(5), FULL, 10)
    assert out.shape == x.shape and out.dtype == np.float32
    assert t.shape == (B, 10) and t.dtype == np.float32
    np.testing.assert_allclose(t.sum(1), 1.0, atol=1e-6)
    out2, t2 = augment_batch(x, y, rng(5), FULL, 10)
    np.testing.assert_array_equal(out, out2)
    np.testing.assert_array_equal(t, t2)
    out3, _ = augment_batch(x, y, rng(6), FULL, 10)
    assert not np.array_equal(out, out3)


def test_augment_batch_targets_policy():
    x, y = images(), labels()
    # no mixing configured -> int labels
    _, t = augment_batch(x, y, rng(), AugmentConfig(), 10)
    assert t.dtype == np.int64 and t.shape == (B,)
    _, t = augment_batch(x, y, rng(), AugmentConfig(mixup_alpha=1.0, mix_prob=0.0), 10)
    assert t.dtype == np.int64
    # mixing configured -> always soft, one-hot for batches the draw left unmixed
    cfg = AugmentConfig(mixup_alpha=1.0, mix_prob=0.5)
    seen = set()
    for seed in range(10):
        _, t = augment_batch(x, y, rng(seed), cfg, 10)
        assert t.dtype == np.float32 and t.shape == (B, 10)
        seen.add(bool(np.array_equal(t, np.eye(10, dtype=np.float32)[y])))
    assert seen == {True, False}


def test_augment_batch_no_ops_is_normalize():
    x, y = images(), labels()
    cfg = AugmentConfig(crop_padding=0, flip=False)
    out, t = augment_batch(x, y, rng(), cfg, 10)
    np.testing.assert_array_equal(out, normalize(x, cfg.mean, cfg.std))


def test_augment_batch_validation():
    x, y = images(), labels()
    with pytest.raises(TypeError, match="uint8"):
        augment_batch(x.astype(np.float32), y, rng(), AugmentConfig(), 10)
    with pytest.raises(ValueError, match="rank 4"):
        augment_batch(x[0], y, rng(), AugmentConfig(), 10)
    with pytest.raises(ValueError, match="shape"):
        augment_batch(x, y[:-1], rng(), AugmentConfig(), 10)
    with pytest.raises(ValueError, match="crop_padding"):
        AugmentConfig(crop_padding=-1)
    with pytest.raises(ValueError, match="erasing_prob"):
        AugmentConfig(erasing_prob=1.5)
    with pytest.raises(ValueError, match="mix_prob"):
        AugmentConfig(mix_prob=-0.1)
    with pytest.raises(ValueError, match="magnitude"):
        AugmentConfig(randaugment_m=40)
    with pytest.raises(ValueError, match="randaugment_n"):
        AugmentConfig(randaugment_n=-2)
    with pytest.raises(ValueError, match="mixup_alpha"):
        AugmentConfig(mixup_alpha=-1)
