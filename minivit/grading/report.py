"""The grading report as text (``format_report``) and as Gradescope's results (``gradescope_results``);
``grade`` returns it as a dict (``grade --json``, documented in exercises/README.md)."""
import contextlib
import json
import os
import tempfile
from pathlib import Path


HINT_LINE = "stuck? `python -m minivit hint {function}`"


def with_hint(feedback, status, function):
    """A failed check's feedback (status fail or error) ends with the command for its function's hints."""
    if status not in ("fail", "error") or not function:
        return feedback
    if feedback and HINT_LINE.split("{")[0] in feedback:     # the check named the function at fault itself
        return feedback
    return f"{feedback}\n{HINT_LINE.format(function=function)}" if feedback else HINT_LINE.format(function=function)


def _indent(text, prefix):
    return "\n".join(prefix + line if line else line for line in text.splitlines())


def format_topic(name, t, verbose=False):
    lines = [f"{name} - {t['title']} ({t['file']}): {t['points']}/{t['max']}"]
    if t["error"]:
        lines.append(_indent(t["error"], "    "))
        return "\n".join(lines)
    if not t["checks"]:
        lines.append("    no checks selected")
        return "\n".join(lines)
    if all(r["status"] == "todo" for r in t["checks"]):
        lines.append("    not implemented yet - start with the stubs in " + t["file"])
        return "\n".join(lines)
    if not verbose and all(r["status"] == "ok" and not r.get("caused_by") for r in t["checks"]):
        lines.append(f"    all {len(t['checks'])} checks passed")
        return "\n".join(lines)
    for r in t["checks"]:
        mark = {"ok": "ok  ", "fail": "FAIL", "todo": "todo", "error": "ERR ", "timeout": "TIME"}[r["status"]]
        lines.append(f"  {mark}  {r['name']}  [{r['points']}/{r['max']}]")
        if r["feedback"] and (verbose or r["status"] != "ok" or r.get("caused_by")):
            lines.append(_indent(r["feedback"], "          "))
    if verbose and t.get("output"):
        lines.append("    your code printed:")
        lines.append(_indent(t["output"], "      | "))
    return "\n".join(lines)


def format_report(report, verbose=False):
    out = [f"Grading {report['path']}  (random inputs, float64 and float32; see exercises/README.md)", ""]
    for name, t in report["topics"].items():
        out.append(format_topic(name, t, verbose))
        out.append("")
    width = max(len(n) for n in report["topics"]) if report["topics"] else 5
    width = max(width, 5)
    out.append(f"{'topic':<{width}}  {'file':<24}  points")
    out.append("-" * (width + 36))
    for name, t in report["topics"].items():
        out.append(f"{name:<{width}}  {t['file']:<24}  {t['points']:>3}/{t['max']}")
    out.append("-" * (width + 36))
    out.append(f"{'total':<{width}}  {'':<24}  {report['total']:>3}/{report['max']}")
    return "\n".join(out)



def gradescope_results(report=None, error=None, seconds=0.0):
    """Gradescope's autograder results (results.json) for ``report``, or for a grading that crashed.

    One test per check, named "topic: check", with its score, max_score, status (passed/failed)
    and the feedback as output. With ``error`` (the grading crashed or timed out) and no report:
    score 0 and the message.
    """
    if report is None:
        return {"score": 0, "execution_time": round(seconds, 3), "output": f"The grading failed: {error}",
                "tests": [{"name": "grading", "score": 0, "max_score": 0, "status": "failed",
                           "output": str(error)}]}
    tests = []
    for name, t in report["topics"].items():
        for c in t["checks"]:
            out = c["feedback"] or ("passed" if c["status"] == "ok" else c["status"])
            tests.append({"name": f"{name}: {c['name']}", "score": c["points"], "max_score": c["max"],
                          "status": "passed" if c["points"] == c["max"] else "failed", "output": out})
    seconds = seconds or sum(t.get("seconds", 0.0) for t in report["topics"].values())
    out = {"score": report["total"], "execution_time": round(seconds, 3), "tests": tests,
           "output": f"{report['total']}/{report['max']} points"}
    if error:
        out["output"] += f"; the grading did not finish: {error}"
    return out


def write_json(path, obj):
    """Write ``obj`` as JSON to ``path`` (its folder created), through a fresh temporary file (never
    one that already exists: no symlink planted beforehand is followed) and a rename; on failure
    nothing is left behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(obj, indent=1))
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
