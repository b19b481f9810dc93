"""Score the grader on a catalogue of planted learner mistakes.

    python tests/grading_catalogue/score.py                      # this folder (the in-repo catalogue)
    python tests/grading_catalogue/score.py tests/grading_heldout  # the held-out part

Each case is a standalone exercise file ``<topic>__<slug>.py`` whose docstring has the lines
``TOPIC:``, ``FUNCTION:``, ``EXPECT:`` (a mistake id, ``VALID`` for correct code, ``UNNAMED`` when
no name is expected) and ``KIND:``. A case is graded alone: its file becomes the topic's exercise
file in a temporary folder. Rates, over the cases that hold a mistake:

* caught: the grader took points off;
* named: the set of named mistakes is exactly {EXPECT};
* wrong-named: some named mistake is not EXPECT;
* leak: some printed message (any failed check's feedback, the topic graded whole) contains a derived
  expression of ``tests/test_stubs_contract.py``'s DERIVED list (the answer: hint level 3 only);
* misleading: some advice or localisation points at a function other than the case's FUNCTION (a
  "stuck? ... hint X" pointer, a "Next step" of a check of another function, "fix X first", a
  backward's diagnosis by parts when the backward is not the function at fault);
* named-correctly: named exactly EXPECT (UNNAMED: caught, no name, nothing misleading).

VALID cases must get full marks (reported as "valid kept full marks").
"""
from __future__ import annotations

import copy
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


_REPORTS = {}      # (case file, its text, restrict) -> report: one grading per case in a test session


def grade_case(case, restrict=True):
    """The grader's report for one case, graded alone (only its FUNCTION's checks when supported).
    Graded once per process: the catalogue, feedback and held-out tests read the same report."""
    key = (str(case["path"]), Path(case["path"]).read_text(), restrict)
    if key not in _REPORTS:
        _REPORTS[key] = _grade_case(case, restrict)
    return copy.deepcopy(_REPORTS[key])


def _grade_case(case, restrict):
    from minivit.grading import TOPIC_BY_NAME, grade
    topic = TOPIC_BY_NAME[case["TOPIC"]]
    with tempfile.TemporaryDirectory() as d:
        shutil.copy(case["path"], Path(d) / topic.file)
        kwargs = {}
        if (restrict and case["FUNCTION"] in topic.functions
                and "functions" in inspect.signature(grade).parameters):
            kwargs["functions"] = [case["FUNCTION"]]
        return grade([topic.name], path=d, **kwargs)


def _own(case, t):
    """The checks of the case's FUNCTION (what ``grade --only FUNCTION`` runs), or all when it has none."""
    topic_functions = {c["function"] for c in t["checks"]}
    if case["FUNCTION"] not in topic_functions:
        return t["checks"]
    return [c for c in t["checks"] if c["function"] == case["FUNCTION"]]


def outcome(case, report):
    """(lost_points, named_mistakes) for a graded case (the checks of its FUNCTION only)."""
    t = report["topics"][case["TOPIC"]]
    own = _own(case, t)
    named = {c.get("mistake") for c in own if c.get("mistake") and c["points"] < c["max"]}
    return any(c["points"] < c["max"] for c in own), named


def _derived():
    sys.path.insert(0, str(HERE.parent))
    from test_stubs_contract import DERIVED, normalize
    return [x for exprs in DERIVED.values() for x in exprs], normalize


LEARNER_LINE = re.compile(r"line \d+, in \w+: `[^`]*`")      # the learner's own line, quoted in an error


def leaks(text):
    """The derived expressions (tests/test_stubs_contract.py's DERIVED) that ``text`` contains (the
    learner's own code, quoted where an exception came from, is theirs, not the grader's words)."""
    exprs, normalize = _derived()
    t = normalize(LEARNER_LINE.sub("", text))
    return sorted({x for x in exprs if normalize(x) in t})


CALL = re.compile(r"\b\w+\((?:[^()]|\([^()]*\))*\)")
HINT_RE = re.compile(r"python -m minivit hint (\w+)")
FIRST_RE = re.compile(r"(?:fix|passes with the reference) (\w+)(?: and (\w+))?")
DIAGNOSIS = ("The links that break", "first wrong link", "the chain breaks", "is exactly a combination",
             "exactly; the reference", "Your d")


def blamed(check, functions):
    """The functions a failed check's advice points at: its hint pointers, the functions it asks to fix
    first, and (for a "Next step" or a diagnosis by parts that names no function) the check's own."""
    fb = check.get("feedback") or ""
    out = set(HINT_RE.findall(fb))
    for m in FIRST_RE.finditer(fb):
        out |= {g for g in m.groups() if g in functions}
    for line in fb.splitlines():
        if line.startswith("Next step:") or any(d in line for d in DIAGNOSIS):
            line = CALL.sub("", LEARNER_LINE.sub("", line))         # "after f(x (2, 3))" says which input, not who
            named = {f for f in functions if re.search(rf"\b{f}\b", line)}
            out |= named or {check["function"]}
    return out


def misleading(case, report):
    """[(check name, the function blamed)] for advice whose premise is false: it points at a function
    other than the case's FUNCTION (the one holding the mistake)."""
    if case["EXPECT"] == "VALID":
        return []
    t = report["topics"][case["TOPIC"]]
    functions = {c["function"] for c in t["checks"]} | {case["FUNCTION"]}
    return [(c["name"], f) for c in t["checks"] if c["points"] < c["max"] or c.get("caused_by")
            for f in sorted(blamed(c, functions)) if f != case["FUNCTION"]]


def case_leaks(report, topic):
    """[(check name, expression)] for every failed check's message that prints a derived expression."""
    return [(c["name"], x) for c in report["topics"][topic]["checks"] for x in leaks(c.get("feedback") or "")]


def measure(case, report):
    """Per-case row: lost, named (as ``outcome``), leak, misleading, named_correctly."""
    lost, named = outcome(case, report)
    leak = case_leaks(report, case["TOPIC"])
    mis = misleading(case, report)
    want = case["EXPECT"]
    if want == "VALID":
        ok = not lost
    elif want in (None, "UNNAMED"):
        ok = lost and not named and not mis
    else:
        ok = named == {want}
    return dict(lost=lost, named=named, leak=leak, misleading=mis, named_correctly=ok)


def score(folder=HERE, verbose=True, details=None):
    """Grade every case (its topic whole), print the rates; [(case, lost, named)]. ``details``: a list
    that gets each case's ``measure`` row (leak, misleading, named_correctly too)."""
    rows = []
    details = [] if details is None else details
    for case in cases(folder):
        report = grade_case(case, restrict=False)
        m = measure(case, report)
        details.append((case, m))
        rows.append((case, m["lost"], m["named"]))
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
    if n:
        ms = [m for c, m in details if c["EXPECT"] != "VALID"]
        leak = sum(bool(m["leak"]) for c, m in details)
        mis = sum(bool(m["misleading"]) for m in ms)
        good = sum(m["named_correctly"] for m in ms)
        print(f"  leak {leak}/{len(details)}, misleading {mis}/{n}, named-correctly {good}/{n} ({100 * good / n:.0f}%)")
        if verbose:
            for c, m in details:
                for what, x in m["leak"]:
                    print(f"  LEAK {c['path'].name}: {what}: {x!r}")
                for what, f in m["misleading"]:
                    print(f"  MISLEADING {c['path'].name}: {what}: points at {f}")
    return rows


if __name__ == "__main__":
    score(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE)
