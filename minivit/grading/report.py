"""The grading report as text (``format_report``); ``grade`` returns it as a dict (``--json``)."""


def _indent(text, prefix):
    return "\n".join(prefix + line if line else line for line in text.splitlines())


def format_topic(name, t, verbose=False):
    lines = [f"{name} - {t['title']} ({t['file']}): {t['points']}/{t['max']}"]
    if t["error"]:
        lines.append(_indent(t["error"], "    "))
        return "\n".join(lines)
    if all(r["status"] == "todo" for r in t["checks"]):
        lines.append("    not implemented yet - start with the stubs in " + t["file"])
        return "\n".join(lines)
    if not verbose and all(r["status"] == "ok" for r in t["checks"]):
        lines.append(f"    all {len(t['checks'])} checks passed")
        return "\n".join(lines)
    for r in t["checks"]:
        mark = {"ok": "ok  ", "fail": "FAIL", "todo": "todo", "error": "ERR "}[r["status"]]
        lines.append(f"  {mark}  {r['name']}  [{r['points']}/{r['max']}]")
        if r["feedback"] and (verbose or r["status"] != "ok"):
            lines.append(_indent(r["feedback"], "          "))
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

