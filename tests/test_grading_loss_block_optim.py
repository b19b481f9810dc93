"""Feedback of the loss, block and optim topics beyond the catalogue's names: the dropout hint only
where dropout is the problem, the "where" diagnosis by parts (block dx, dlogits), and two fitting
mistakes naming none (AdamW with a zero gradient)."""
from pathlib import Path

from minivit.grading import TOPIC_BY_NAME, grade

CATALOGUE = Path(__file__).resolve().parent / "grading_catalogue"


def _grade(tmp_path, case, topic, function, old=None, new=None):
    """Grade a catalogue case (optionally with ``old`` replaced by ``new``) -> {check name: row}."""
    src = (CATALOGUE / case).read_text()
    if old is not None:
        assert old in src
        src = src.replace(old, new)
    (tmp_path / TOPIC_BY_NAME[topic].file).write_text(src)
    report = grade([topic], path=tmp_path, functions=[function])
    return {c["name"]: c for c in report["topics"][topic]["checks"]}


def _row(rows, start):
    [row] = [r for n, r in rows.items() if n.startswith(start)]
    return row


def test_block_dropout_hint_only_where_dropout_is_the_problem(tmp_path):
    rows = _grade(tmp_path, "block__backward_first_residual_missing.py", "block", "encoder_block_backward")
    row = _row(rows, "encoder block: dropout and drop-path in training mode (backward)")
    assert row["status"] == "fail" and "train=False too" in row["feedback"]
    assert "F.dropout_forward" not in row["feedback"]
    # dropout forgotten on the MLP branch only: right with train=False, so the hint is the feedback
    rows = _grade(tmp_path, "block__backward_first_residual_missing.py", "block", "encoder_block_forward",
                  "    m, drop2 = F.dropout_forward(m, dropout, rng, train)\n", "    drop2 = None\n")
    row = _row(rows, "encoder block: dropout and drop-path in training mode (forward)")
    assert row["status"] == "fail" and row["mistake"] is None
    assert "F.dropout_forward" in row["feedback"] and "with train=False it is right" in row["feedback"]


def test_block_backward_feedback_names_the_first_broken_link_and_the_wrong_term(tmp_path):
    rows = _grade(tmp_path, "block__valid_mixed_draw_orders.py", "block", "encoder_block_backward",
                  "    dz1 = dz1 + dout\n", "    dz1 = dz1 - dout\n")
    row = _row(rows, "encoder_block_backward: gradients match")
    assert row["mistake"] is None
    assert "the first wrong link is the attention" in row["feedback"]
    assert "the term dout (straight through both residuals) has the wrong sign" in row["feedback"]


def test_loss_dlogits_feedback_says_which_term_is_off(tmp_path):
    rows = _grade(tmp_path, "loss__backward_smoothing_over_k_minus_1.py", "loss", "cross_entropy_backward",
                  "        t = t * (1 - eps) + (1 - t) * eps / (K - 1)\n", "        t = t * (1 - eps) + 2 * eps / K\n")
    row = _row(rows, "cross_entropy_backward: dlogits match")
    assert row["mistake"] is None
    assert "the term through the uniform smoothing is scaled by 2" in row["feedback"]


def test_adamw_two_fitting_mistakes_name_none(tmp_path):
    """w = w - ... (not in place) with a zero gradient leaves w as a forgotten weight decay would:
    that check names nothing; a check with a nonzero gradient names not_in_place."""
    rows = _grade(tmp_path, "optim__w_rebound_not_in_place.py", "optim", "adamw_update")
    zero = _row(rows, "adamw_update: tiny and zero gradients")
    assert zero["status"] == "fail" and zero["mistake"] is None
    assert _row(rows, "adamw_update: first step")["mistake"] == "not_in_place"


def test_adamw_eps_argument_is_varied(tmp_path):
    rows = _grade(tmp_path, "optim__eps_hard_coded.py", "optim", "adamw_update")
    row = _row(rows, "adamw_update: tiny and zero gradients")
    assert row["mistake"] == "eps_hardcoded" and "eps=0.001" in row["feedback"]


def test_adamw_feedback_reads_w_by_its_parts(tmp_path):
    """m and v are checked before w; a w off only in its decay says by how much it shrinks."""
    rows = _grade(tmp_path, "optim__valid_folded_step_size.py", "optim", "adamw_update",
                  "        w *= 1.0 - lr * weight_decay\n", "        w *= 1.0 - 2 * lr * weight_decay\n")
    row = _row(rows, "adamw_update: 5 steps")
    assert row["mistake"] is None and "m and v are right" in row["feedback"]
    assert "w shrinks by the factor 0.9 (expected 0.95 with this lr and weight_decay)" in row["feedback"]
