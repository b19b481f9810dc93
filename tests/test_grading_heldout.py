"""The grader on the held-out catalogue (tests/grading_heldout/, written before the detector rework).

Rates, not cases: the catalogue stays a measurement, not a target to tune single detectors to.
Issue 12's bar: points taken off for >= 99% of the mistakes, the specific mistake named for >= 80%,
no wrong name, and full marks for every valid case. Issue 23's: no printed answer (leak), no advice
or localisation whose premise is false (misleading), named correctly for >= 90% (``score.measure``).
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "grading_catalogue"))
import score  # noqa: E402

HELDOUT = Path(__file__).resolve().parent / "grading_heldout"


def test_heldout_rates():
    details = []
    rows = score.score(HELDOUT, verbose=False, details=details)
    mistakes = [(c, lost, named) for c, lost, named in rows if c["EXPECT"] != "VALID"]
    valid = [(c, lost) for c, lost, _ in rows if c["EXPECT"] == "VALID"]
    assert len(mistakes) >= 30 and valid
    caught = sum(lost for _, lost, _ in mistakes) / len(mistakes)
    named = sum(n == {c["EXPECT"]} for c, _, n in mistakes) / len(mistakes)
    wrong = [c["path"].name for c, _, n in mistakes if n - {c["EXPECT"]}]
    assert caught >= 0.99, f"caught {caught:.0%}"
    assert named >= 0.80, f"named {named:.0%}"
    assert not wrong, f"wrong names for {wrong}"
    assert not [c["path"].name for c, lost in valid if lost], "valid code lost points"
    leaks = [c["path"].name for c, m in details if m["leak"]]
    misleading = [c["path"].name for c, m in details if m["misleading"]]
    assert not leaks, f"printed answers in {leaks}"
    assert not misleading, f"misleading advice in {misleading}"
    good = sum(m["named_correctly"] for c, m in details if c["EXPECT"] != "VALID") / len(mistakes)
    assert good >= 0.90, f"named correctly {good:.0%}"
