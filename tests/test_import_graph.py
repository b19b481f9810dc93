"""Dependencies run one way: no module of minivit imports, directly or through others, a module
that imports it back. Read with ``ast`` (nothing is imported), counting imports at the top level
and inside functions alike, in every module of the package and its subpackages.

An edge A -> B means A's source has ``import B``, ``from B import name`` or ``from P import B``
(B a submodule of P). Importing a submodule also runs its parent packages' ``__init__``; that
implicit step is not an edge (every package would otherwise be a cycle with its own __init__).
"""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "minivit"


def module_files(root=PACKAGE):
    """{dotted module name: path} for every .py file under the package (recursively)."""
    mods = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = path
    return mods


def imports_of(name, path, modules):
    """The minivit modules that ``name`` (at ``path``) imports anywhere in its source."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_pkg = path.name == "__init__.py"
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:                       # relative: from . import x / from ..y import z
                pkg = name.split(".") if is_pkg else name.split(".")[:-1]
                pkg = pkg[:len(pkg) - (node.level - 1)]
                base = ".".join(pkg + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in modules:        # import minivit.layers.norm.something -> the module part
                t = t.rpartition(".")[0]
            if t and t != name:
                found.add(t)
    return found


def import_graph(root=PACKAGE):
    modules = module_files(root)
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def find_cycles(graph):
    """One cycle path (a -> b -> ... -> a) through each group of modules that reach each other."""
    return [_cycle_through(graph, comp) for comp in tangles(graph)]


def tangles(graph):
    """The strongly connected components with more than one module (sorted names each):
    every module in one reaches every other. Tarjan's algorithm, iterative."""
    index, low, on_stack, stack, comps, counter = {}, {}, set(), [], [], [0]

    def strongconnect(v):
        work = [(v, iter(sorted(graph[v])))]
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        while work:
            node, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                    break
                if w in on_stack:
                    low[node] = min(low[node], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        comp.append(w)
                        if w == node:
                            break
                    if len(comp) > 1:
                        comps.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            strongconnect(v)
    return comps


def _cycle_through(graph, comp):
    """A shortest cycle starting at the first module of a strongly connected component (BFS)."""
    start, members = comp[0], set(comp)
    prev, queue = {start: None}, [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(graph[v] & members):
            if w == start:
                path = [v]
                while prev[path[-1]] is not None:
                    path.append(prev[path[-1]])
                return path[::-1] + [start]
            if w not in prev:
                prev[w] = v
                queue.append(w)
    return comp


def test_the_graph_sees_imports_in_functions_and_subpackages():
    graph = import_graph()
    assert "minivit.layers.attention" in graph and "minivit.cli.main" in graph
    assert "minivit.backend" in graph["minivit.layers.norm"]            # top level, in a subpackage
    assert "minivit.train.trainer" in graph["minivit.cli.main"]                 # inside a function


def test_cycle_finder_reports_any_cycle(tmp_path):
    pkg = tmp_path / "minivit"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from minivit import b\n")
    (pkg / "b.py").write_text("def f():\n    from minivit.sub import c\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "c.py").write_text("from .. import a\n")
    (pkg / "d.py").write_text("import minivit.a\n")
    cycles = find_cycles(import_graph(pkg))
    assert cycles == [["minivit.a", "minivit.b", "minivit.sub.c", "minivit.a"]]


def test_no_import_cycles():
    graph = import_graph()
    comps = tangles(graph)
    assert not comps, "import cycles in minivit/ (move the shared piece into a small module both can import):\n" + \
        "\n".join(f"  {' -> '.join(_cycle_through(graph, c))}   (tangled: {', '.join(c)})" for c in comps)
