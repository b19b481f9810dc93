"""Generate the held-out case files: fresh stub + hand-written correct bodies (_bases.py) + one
planted mistake (cases.py). Usage: python make_cases.py [--bases-only DIR]"""
import os, re, sys, textwrap
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from _bases import BODIES, EXTRA, TOPIC_FILES

STUBS = os.environ.get("STUB_DIR", "/work/main/exercises")


def fill(topic, bodies):
    src = open(os.path.join(STUBS, TOPIC_FILES[topic])).read()
    for fn, body in bodies.items():
        pat = f'    raise NotImplementedError("{fn}: your code here")\n'
        if pat in src:
            src = src.replace(pat, textwrap.indent(body.strip("\n") + "\n", "    "))
    assert "NotImplementedError(" not in src.replace("raise NotImplementedError", "") or True
    if topic in EXTRA:
        lines = src.split("\n")
        last_imp = max(i for i, l in enumerate(lines) if l.startswith(("import ", "from ")))
        lines.insert(last_imp + 1, EXTRA[topic].rstrip("\n"))
        src = "\n".join(lines)
    assert "your code here" not in src, topic
    return src


def build(case):
    bodies = dict(BODIES)
    bodies.update(case.get("bodies", {}))
    if "old" in case:
        b = bodies[case["function"]]
        assert b.count(case["old"]) == 1, (case["name"], case["old"])
        bodies[case["function"]] = b.replace(case["old"], case["new"])
    src = fill(case["topic"], bodies)
    if "file_old" in case:   # a mistake outside a graded function's body (e.g. a helper)
        assert src.count(case["file_old"]) == 1, case["name"]
        src = src.replace(case["file_old"], case["file_new"])
    head = (f"# EXPECT: {case['expect']}\n# FUNCTION: {case['function']}\n"
            f"# WHAT: {case['what']}\n# ANSWER: {case['answer']}\n")
    return head + src


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--bases-only":
        out = sys.argv[2]; os.makedirs(out, exist_ok=True)
        for topic, f in TOPIC_FILES.items():
            open(os.path.join(out, f), "w").write(fill(topic, BODIES))
        sys.exit(0)
    from cases import CASES
    names = set()
    for c in CASES:
        fname = f"{c['topic']}__{c['name']}.py"
        assert fname not in names, fname
        names.add(fname)
        open(os.path.join(HERE, fname), "w").write(build(c))
    print(len(CASES), "cases written")
