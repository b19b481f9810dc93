"""The grader on the in-repo catalogue of planted learner mistakes (tests/grading_catalogue/).

Every case is a standalone learner-style exercise file with one mistake (or none: ``VALID``),
graded alone. It must lose points and be named exactly as its ``EXPECT:`` line says (``UNNAMED``:
no name, but points lost and no wrong name); a VALID case must keep full marks. Every mistake the
grader can name has at least one case that must be named, and every topic has at least 10 cases,
at least half of them in backward passes. ``python tests/grading_catalogue/score.py`` prints the rates.
"""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "grading_catalogue"))
import score  # noqa: E402

CASES = score.cases()


@pytest.mark.parametrize("case", CASES, ids=[c["path"].stem for c in CASES])
def test_catalogue_case(case):
    report = score.grade_case(case, restrict=False)      # the topic whole, as the feedback test reads it;
    lost, named = score.outcome(case, report)            # outcome() judges the case's FUNCTION's checks
    t = report["topics"][case["TOPIC"]]
    details = "\n".join(f"  {c['status']} {c['name']} [{c['points']}/{c['max']}] {c.get('mistake')}: "
                        f"{(c.get('feedback') or '')[:300]}" for c in t["checks"])
    if case["EXPECT"] == "VALID":
        assert not lost, f"correct code lost points:\n{details}"
        return
    assert lost, f"the mistake was not caught:\n{details}"
    want = set() if case["EXPECT"] in (None, "UNNAMED") else {case["EXPECT"]}
    assert named == want, f"named {sorted(named)}, expected {sorted(want)}:\n{details}"


def test_every_nameable_mistake_has_a_case():
    from minivit.grading import MISTAKES
    expected = {c["EXPECT"] for c in CASES}
    missing = sorted(set(MISTAKES) - expected)
    assert not missing, f"mistakes without a planted catalogue case: {missing}"


@pytest.mark.parametrize("topic", [t.name for t in __import__("minivit.grading", fromlist=["TOPICS"]).TOPICS])
def test_each_topic_has_ten_cases_half_backward(topic):
    mine = [c for c in CASES if c["TOPIC"] == topic]
    mistakes = [c for c in mine if c["EXPECT"] != "VALID"]
    assert len(mistakes) >= 10, f"{topic}: {len(mistakes)} mistake cases, want >= 10"
    later = sum(c["KIND"] in ("backward", "optimizer") for c in mistakes)   # optim has no backward: its update logic
    assert later * 2 >= len(mistakes), f"{topic}: {later} of {len(mistakes)} cases in backward passes, want half"
