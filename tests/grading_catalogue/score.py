"""Score the grader on a catalogue of planted learner mistakes.

    python tests/grading_catalogue/score.py                      # this folder (the in-repo catalogue)
    python tests/grading_catalogue/score.py tests/grading_heldout  # the held-out part

Each case is a standalone exercise file ``<topic>__<slug>.py`` whose docstring has the lines
``TOPIC:``, ``FUNCTION:``, ``EXPECT:`` (a mistake id, ``VALID`` for correct code, ``UNNAMED`` when
no name is expected) and ``KIND:``. A case is graded alone: its file becomes the topic's exercise
file in a temporary folder. Rates, over the cases that hold a mistake:

* caught: the grader took points off;
* named: the set of named mistakes is exactly {EXPECT};
* wrong-named: some named mistake is not EXPECT.

VALID cases must get full marks (reported as "valid kept full marks").
"""
from __future__ import annotations

import inspect
import re
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
FIELDS = ("TOPIC", "FUNCTION", "EXPECT", "KIND")


def read_case(path):
    """{TOPIC, FUNCTION, EXPECT, KIND, path} from a case file's header lines."""
    text = Path(path).read_text()
    case = {"path": Path(path)}
    for field in FIELDS:
        m = re.search(rf"^\s*{field}:\s*(\S+)", text, re.M)
        case[field] = m.group(1) if m else None
    if case["TOPIC"] is None or case["FUNCTION"] is None:
        raise ValueError(f"{path}: the docstring needs TOPIC: and FUNCTION: lines")
    return case


def cases(folder=HERE):
    return [read_case(p) for p in sorted(Path(folder).glob("*__*.py"))]


def grade_case(case, restrict=True):
    """The grader's report for one case, graded alone (only its FUNCTION's checks when supported)."""
    from minivit.grading import TOPIC_BY_NAME, grade
    topic = TOPIC_BY_NAME[case["TOPIC"]]
    with tempfile.TemporaryDirectory() as d:
        shutil.copy(case["path"], Path(d) / topic.file)
        kwargs = {}
        if (restrict and case["FUNCTION"] in topic.functions
                and "functions" in inspect.signature(grade).parameters):
            kwargs["functions"] = [case["FUNCTION"]]
        return grade([topic.name], path=d, **kwargs)


def outcome(case, report):
    """(lost_points, named_mistakes) for a graded case."""
    t = report["topics"][case["TOPIC"]]
    named = {c.get("mistake") for c in t["checks"] if c.get("mistake") and c["points"] < c["max"]}
    return t["points"] < t["max"], named


def score(folder=HERE, verbose=True):
    rows = []
    for case in cases(folder):
        lost, named = outcome(case, grade_case(case))
        rows.append((case, lost, named))
    mistakes = [r for r in rows if r[0]["EXPECT"] != "VALID"]
    valid = [r for r in rows if r[0]["EXPECT"] == "VALID"]
    caught = sum(r[1] for r in mistakes)
    nameable = [r for r in mistakes if r[0]["EXPECT"] not in (None, "UNNAMED")]
    named = sum(r[2] == {r[0]["EXPECT"]} for r in mistakes)
    wrong = sum(bool(r[2] - {r[0]["EXPECT"]}) for r in mistakes)
    if verbose:
        for case, lost, got in rows:
            ok = (not lost) if case["EXPECT"] == "VALID" else (lost and got == ({case["EXPECT"]} if case["EXPECT"] not in (None, "UNNAMED") else set()))
            print(f"{'ok ' if ok else 'BAD'} {case['path'].name:50s} expect {case['EXPECT']!s:32s} "
                  f"lost={lost!s:5s} named={sorted(got)}")
    n = len(mistakes)
    print(f"{folder}: {n} mistake cases, {len(valid)} valid cases")
    if n:
        print(f"  caught {caught}/{n} ({100 * caught / n:.0f}%), named {named}/{n} ({100 * named / n:.0f}%), "
              f"wrong-named {wrong}/{n} ({100 * wrong / n:.0f}%); {len(nameable)} have an expected name")
    print(f"  valid kept full marks: {sum(not r[1] for r in valid)}/{len(valid)}")
    return rows


if __name__ == "__main__":
    score(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE)
