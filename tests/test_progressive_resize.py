"""Progressive resizing: the schedule (minivit/train/resize_schedule.py), the position tables resized in
the forward with a backward (minivit/layers/pos_resize.py, gradient-checked in float64) and the
ViT trained at a reduced resolution (``flexible_resolution``), whole-model gradient check included."""
import json

import numpy as np
import pytest

from minivit.storage.checkpoint import extra_arrays, load_checkpoint, save_checkpoint
from minivit.gradcheck import COMPONENT_TOL, MODEL_TOL, check_pair
from minivit.interpolate import interpolate_pos_embed, resize_table_1d
from minivit.layers.pos_resize import (interpolation_matrix, pos_resize_backward, pos_resize_forward,
                                       table_resize_backward, table_resize_forward)
from minivit.model import ViT, ViTConfig
from minivit.train.resize_schedule import ResizeSchedule
from tests.test_token_drop import _randomized_model, model_gradcheck

SMALL = dict(image_size=16, patch_size=4, num_classes=5, dim=16, depth=2, num_heads=2, mlp_dim=32)


# ------------------------------------------------------------------------------- the schedule
def test_schedule_sizes_per_step():
    s = ResizeSchedule(((0.0, 24), (0.5, 28), (0.75, 32)), patch_size=4)
    sizes = [s.size_at(i, 8) for i in range(8)]
    assert sizes == [24, 24, 24, 24, 28, 28, 32, 32]
    assert s.step_counts(8) == {24: 4, 28: 2, 32: 2}
    assert s.step_counts(1000) == {24: 500, 28: 250, 32: 250}
    assert [s.size_at(i, 1000) for i in (499, 500, 749, 750, 999)] == [24, 28, 28, 32, 32]
    assert s.relative_cost(8, 4, 32) == pytest.approx((4 * 36 + 2 * 49 + 2 * 64) / (8 * 64))


def test_schedule_float_boundaries_agree_with_first_step():
    s = ResizeSchedule(((0.0, 24), (0.7, 32)))
    for total in (10, 100, 7, 13, 1000):
        first = s.first_step(1, total)
        assert s.size_at(first - 1, total) == 24 and s.size_at(first, total) == 32
        assert sum(s.step_counts(total).values()) == total
    assert s.first_step(1, 10) == 7                   # 0.7 * 10 = 7.000000000000001


@pytest.mark.parametrize("stages, match", [
    (((0.1, 24), (0.5, 32)), "starting at 0.0"), (((0.0, 24), (0.0, 32)), "increase"),
    (((0.0, 24), (1.0, 32)), "below 1"), (((0.0, 26), (0.5, 32)), "multiple of the patch size")])
def test_schedule_refuses_bad_stages(stages, match):
    with pytest.raises(ValueError, match=match):
        ResizeSchedule(stages, patch_size=4)


def test_schedule_state_round_trips_through_a_checkpoint(tmp_path):
    """In last.npz both ways: as JSON in the meta and as arrays under resize/ (allow_pickle=False); the
    position in the schedule is the step counter the meta already holds."""
    s = ResizeSchedule(((0.0, 24), (0.6, 32)), patch_size=4)
    model = ViT(ViTConfig.preset("tiny"))
    save_checkpoint(tmp_path / "last.npz", model, meta={"resize": s.to_list(), "global_step": 41},
                    extra={f"resize/{k}": v for k, v in s.state_dict().items()})
    back = ResizeSchedule.from_state_dict(extra_arrays(tmp_path / "last.npz", "resize/"), patch_size=4)
    _, _, meta = load_checkpoint(tmp_path / "last.npz")
    assert back == s == ResizeSchedule(json.loads(json.dumps(meta["resize"])))
    assert back.state_dict()["starts"].tobytes() == s.state_dict()["starts"].tobytes()
    assert [back.size_at(i, 97) for i in range(meta["global_step"], 97)] == [s.size_at(i, 97) for i in range(41, 97)]


# ---------------------------------------------------------------- the resize forward/backward
def test_interpolation_matrix_is_the_forward():
    rng = np.random.default_rng(0)
    table = rng.standard_normal((8, 5))
    for n in (6, 7, 8, 11):
        np.testing.assert_allclose(interpolation_matrix(8, n) @ table, resize_table_1d(table, n), atol=1e-14)
        np.testing.assert_allclose(interpolation_matrix(8, n).sum(axis=1), 1.0)
    pos = rng.standard_normal((1, 1 + 64, 5))
    out, _ = pos_resize_forward(pos, 8, 8, 6, 6)
    np.testing.assert_array_equal(out, interpolate_pos_embed(pos, 6, 6, 8, 8, cls_token=True))
    mh = interpolation_matrix(8, 6)
    np.testing.assert_allclose(out[0, 1:].reshape(6, 6, 5), np.einsum("ja,kb,abd->jkd", mh, mh,
                                                                        pos[0, 1:].reshape(8, 8, 5)), atol=1e-14)


@pytest.mark.parametrize("new, cls", [((6, 6), True), ((6, 6), False), ((5, 7), True), ((10, 10), True)])
def test_pos_resize_backward_against_finite_differences(new, cls):
    pos = np.random.default_rng(1).standard_normal((1, int(cls) + 64, 6))
    errs = check_pair(lambda p: pos_resize_forward(p, 8, 8, *new, cls_token=cls), pos_resize_backward,
                      [pos], [0], ["dpos"])
    assert errs["dpos"] < COMPONENT_TOL


def test_table_resize_backward_against_finite_differences():
    table = np.random.default_rng(2).standard_normal((8, 4))
    errs = check_pair(lambda t: table_resize_forward(t, 6), table_resize_backward, [table], [0], ["dtable"])
    assert errs["dtable"] < COMPONENT_TOL


# ---------------------------------------------------------------- the ViT at a reduced size
@pytest.mark.parametrize("pos", ["learned", "learned2d"])
@pytest.mark.parametrize("token_drop", [0.0, 0.5])
def test_whole_vit_gradcheck_at_a_reduced_resolution(pos, token_drop):
    from minivit.backend import make_rng

    model = _randomized_model(ViTConfig(**SMALL, pos_embed=pos, flexible_resolution=True,
                                        token_drop=token_drop)).train()
    x = np.random.default_rng(5).standard_normal((2, 12, 12, 3))           # a 3x3 grid; the table is 4x4
    errors = model_gradcheck(model, x, lambda: make_rng(7, 1))
    assert ("pos_resize" in model.cache) == (pos == "learned")
    assert max(errors.values()) < MODEL_TOL, errors


@pytest.mark.parametrize("pos", ["learned", "learned2d", "sincos", "none"])
def test_reduced_resolution_forward_equals_a_resized_model(pos):
    """Training at 12x12 with a 16x16 model's table = the same model resized to 12x12 (Section 3.2)."""
    cfg = ViTConfig(**SMALL, pos_embed=pos, flexible_resolution=True)
    model = _randomized_model(cfg).eval()
    x = np.random.default_rng(5).standard_normal((2, 12, 12, 3))
    small = _randomized_model(cfg).resize(12).eval()
    np.testing.assert_allclose(model.forward(x), small.forward(x), rtol=1e-12, atol=1e-12)
    full = np.random.default_rng(6).standard_normal((2, 16, 16, 3))
    plain = _randomized_model(ViTConfig(**SMALL, pos_embed=pos)).eval()
    np.testing.assert_array_equal(model.forward(full), plain.forward(full))   # at full size: unchanged


def test_other_sizes_are_refused_by_default():
    model = ViT(ViTConfig(**SMALL))
    assert model.config.flexible_resolution is False
    with pytest.raises(ValueError, match="built for 16x16 images, got 12x12"):
        model.forward(np.zeros((1, 12, 12, 3), np.float32))


def test_step_kinds_are_the_stages_lengths_per_size():
    s = ResizeSchedule(((0.0, 24), (0.25, 32), (0.5, 24), (0.75, 32)), patch_size=4)
    assert s.step_kinds() == [("24px", 0.5), ("32px", 0.5)]
    assert ResizeSchedule(((0.0, 16), (0.6, 32))).step_kinds() == [("16px", 0.6), ("32px", pytest.approx(0.4))]
    assert ResizeSchedule.size_of_kind("24px") == 24
    counts = s.step_counts(1000)
    assert {f"{k}px": v / 1000 for k, v in counts.items()} == dict(s.step_kinds())
