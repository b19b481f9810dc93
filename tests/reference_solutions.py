"""Exercise files that hold minivit's reference solutions *as source text*, for tests and notebook runs.

    from reference_solutions import write_reference
    write_reference(folder)                    # every topic's exercise file, solved
    write_reference(folder, ["attention"])     # only some topics

Each file is the topic's stub (header and imports, as ``python -m minivit.stubs`` writes them) with
every exercise function replaced by the full source of minivit's reference function of the same
name. Names the reference code uses from its own module (helpers, constants) are imported from that
module, unless the file defines them itself (another exercise function of the same topic: the
file's own is used, as a learner's would be).

Calls through ``F`` to a function of the same topic (attention's ``F.softmax_forward``) become calls to
the file's own function, as in a learner's file. A file that *imports* minivit's graded functions is not a solution: the grader scores a function that
is, wraps or reaches minivit's own implementation of itself as 0. These files are typed-in
solutions, which is what a learner who did the work hands in.
"""
from __future__ import annotations

import builtins
import inspect
import sys
import textwrap
import types
from pathlib import Path

from minivit.grading import stubs
from minivit.grading import TOPIC_BY_NAME, TOPICS


def _global_names(code: types.CodeType) -> set:
    """Every global name a function's code (and the code of functions nested in it) may look up."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _global_names(const)
    return names


def render_solution(topic_name: str) -> str:
    """The exercise file of ``topic_name`` with minivit's reference code typed into every function."""
    topic = TOPIC_BY_NAME[topic_name]
    stub = stubs.render_topic(topic_name)
    header_end = stub.index("\n\n\ndef ") if "\n\n\ndef " in stub else len(stub)
    head = stub[:header_end].rstrip() + "\n"
    own = set(topic.functions)
    imports: dict[str, set] = {}
    bodies = []
    for name in topic.functions:
        fn = getattr(stubs.ops.reference(), name)
        source = textwrap.dedent(inspect.getsource(fn)).rstrip() + "\n"
        for other in own:
            source = source.replace(f"F.{other}(", f"{other}(")
        bodies.append(source)
        module = sys.modules[fn.__module__]
        for g in sorted(_global_names(fn.__code__)):
            if g in own or hasattr(builtins, g) or g not in vars(module):
                continue
            value = vars(module)[g]
            if isinstance(value, types.ModuleType):
                imports.setdefault(None, set()).add(f"import {value.__name__} as {g}")
            else:
                imports.setdefault(None, set()).add(f"from {fn.__module__} import {g}")
    lines = [f"{line}  # noqa: E402,F401" for line in sorted(imports.get(None, ()))]
    return head + ("\n" + "\n".join(lines) + "\n" if lines else "") + "\n\n" + "\n\n".join(bodies)


def write_reference(folder, topics=None) -> Path:
    """Write the solved exercise files of ``topics`` (default: all) into ``folder``; returns it."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for t in TOPICS:
        if topics is None or t.name in topics:
            (folder / t.file).write_text(render_solution(t.name))
    return folder
