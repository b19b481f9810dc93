"""The small training pieces (token dropping, resized position tables, Muon, EMA, flip TTA) run on
every backend: on the xp fixture's (the CuPy simulation always, a real GPU when there is one) they
give NumPy's numbers."""
import numpy as np

from minivit import layers, ops
from minivit.data.augment import AugmentConfig
from minivit.backend import make_rng, to_numpy
from minivit.train.ema import EMA
from minivit.layers.loss import cross_entropy_backward, cross_entropy_forward
from minivit.layers.pos_resize import pos_resize_backward, pos_resize_forward
from minivit.layers.token_drop import token_drop_backward, token_drop_forward, token_keep_indices
from minivit.model import ViT, ViTConfig
from minivit.optim.muon import Muon, newton_schulz
from minivit.train.tta import evaluate_tta

SMALL = dict(image_size=16, patch_size=4, num_classes=5, dim=16, depth=2, num_heads=2, mlp_dim=32)


def test_token_drop_and_pos_resize_pairs(xp):
    rng = np.random.default_rng(0)
    x, dout = rng.standard_normal((3, 9, 4)), rng.standard_normal((3, 5, 4))
    keep = token_keep_indices(make_rng(1), 3, 8, 4)
    out, cache = token_drop_forward(x, keep, 1)
    out_d, cache_d = token_drop_forward(xp.asarray(x), xp.asarray(keep), 1)
    np.testing.assert_array_equal(to_numpy(out_d), out)
    np.testing.assert_array_equal(to_numpy(token_drop_backward(xp.asarray(dout), cache_d)),
                                  token_drop_backward(dout, cache))
    idx = token_keep_indices(make_rng(1, xp=xp), 3, 8, 4, xp=xp)
    assert idx.shape == (3, 4) and len(set(to_numpy(idx)[0].tolist())) == 4
    pos, dpos = rng.standard_normal((1, 65, 4)), rng.standard_normal((1, 37, 4))
    out, cache = pos_resize_forward(pos, 8, 8, 6, 6)
    out_d, cache_d = pos_resize_forward(xp.asarray(pos), 8, 8, 6, 6)
    np.testing.assert_allclose(to_numpy(out_d), out, atol=1e-14)
    np.testing.assert_allclose(to_numpy(pos_resize_backward(xp.asarray(dpos), cache_d)),
                               pos_resize_backward(dpos, cache), atol=1e-13)


def test_newton_schulz(xp):
    g = np.random.default_rng(1).standard_normal((6, 10))
    np.testing.assert_allclose(to_numpy(newton_schulz(xp.asarray(g))), newton_schulz(g), atol=1e-12)


def test_a_step_with_every_piece(xp):
    """Token dropping at a reduced resolution, Muon, EMA and flip TTA together, on xp and on NumPy."""
    cfg = ViTConfig(**SMALL, token_drop=0.5, flexible_resolution=True)
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((4, 12, 12, 3)).astype(np.float32), rng.integers(0, 5, 4)
    xu, yu = rng.integers(0, 256, (5, 16, 16, 3), dtype=np.uint8), rng.integers(0, 5, 5)
    results = []
    for lib in (np, xp):
        model = ViT(cfg, seed=0, xp=lib).train()
        opt, ema = Muon(model.named_parameters(), lr=1e-2), EMA(model, decay=0.9)
        keep = lib.asarray(token_keep_indices(make_rng(3), 4, 9, 4))
        for _ in range(2):
            with ops.use({"token_drop_forward": lambda z, k, p: layers.token_drop_forward(z, keep, p)}):
                logits = model.forward(lib.asarray(x), make_rng(0, 1, xp=lib))  # same kept tokens on both
            loss, cache = cross_entropy_forward(logits, lib.asarray(y))
            model.backward(cross_entropy_backward(cache))
            opt.step()
            ema.update(model)
        with ema.swapped(model):
            r = evaluate_tta(model, lib.asarray(xu), lib.asarray(yu), AugmentConfig(), 5)
        results.append((model.state_dict(), ema.state_dict(), r["loss"], r["loss_tta"]))
    (w, e, l, lt), (w_d, e_d, l_d, lt_d) = results
    for n in w:
        np.testing.assert_allclose(w_d[n], w[n], rtol=1e-4, atol=1e-5, err_msg=n)
        np.testing.assert_allclose(e_d[n], e[n], rtol=1e-4, atol=1e-5, err_msg=n)
    np.testing.assert_allclose([l_d, lt_d], [l, lt], rtol=1e-5)
