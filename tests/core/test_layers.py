"""The import rule of docs/ARCHITECTURE.md ("Layers"), read from the source with ``ast``: every
``import`` of a ``dass`` module, at module top or inside a function, is a dependency. A component
may import itself (entry modules excepted: none imports another) and the components listed for it
in ``MAY_IMPORT``; the edges in ``KNOWN_LEAKS``
break that rule today and are to be removed, not added to. No two modules may import each other,
directly or through others, except the cycles in ``KNOWN_CYCLES``. An import inside a function says
why it is not at the module top (start-up time, an optional dependency, a cycle) in a comment on
its line."""
from __future__ import annotations

import ast
import functools
import io
import tokenize
from pathlib import Path

DASS = Path(__file__).resolve().parents[2] / "dass"

PLUMBING = {"dass", "dass.errors", "dass.io", "dass.hashing", "dass.config", "dass.config_help", "dass.device", "dass.cli", "dass._lazy", "dass.runid", "dass.correlation"}
# the one entry module outside the stage packages (a package's __main__.py belongs to its package):
# dass.__main__, which lists the stages
ENTRY = {"dass.__main__"}

# component -> the components it may import (besides itself); keep in step with docs/ARCHITECTURE.md
MAY_IMPORT = {
    "plumbing": set(),
    "data": {"plumbing"},
    "space": {"plumbing"},
    # the training loop: a library shared by the teacher, database and kd stages
    "train": {"plumbing", "data", "space"},
    # zero-cost proxies of remapped students on a batch of a task's images: a library shared by the
    # predictor's proxy inputs and the evaluation's baselines
    "proxies": {"plumbing", "data", "space"},
    # teacher training and checkpoints
    "teacher": {"plumbing", "data", "space", "train"},
    # dass/task.py: a dataset bound to a teacher in a space, and what the stages compute from it
    # (student and teacher maps, dataset features, proxy batches, the support point, its accuracy)
    "task": {"plumbing", "data", "space", "train", "proxies", "teacher"},
    "database": {"plumbing", "data", "space", "train", "teacher", "task"},
    "predictor": {"plumbing", "space", "proxies", "database", "task"},
    "search": {"plumbing", "space", "teacher", "predictor", "task"},
    "kd": {"plumbing", "data", "space", "train", "teacher"},
    # a KD run's student as TorchScript / ONNX / state dict, with model.json and MODEL_CARD.md
    "export": {"plumbing", "data", "space", "train", "teacher", "kd"},
    "evaluation": {"plumbing", "data", "space", "train", "proxies", "task", "database", "predictor", "kd"},
    "compat": {"plumbing", "data", "space", "train", "teacher", "database"},
    # one dataset end to end: calls the stages' public run() functions
    "pipeline": {"plumbing", "data", "space", "train", "teacher", "task", "predictor", "search", "kd", "export",
                 "evaluation"},
    # dass.api (find_student): builds the pipeline's config and calls its run(); writes in-memory arrays
    "api": {"plumbing", "data", "space", "export", "pipeline"},
    # dass.__main__ lists the stages through importlib (no static import)
    "entry": set(),
}

# (importing module, imported component): why it is there today. Remove an entry when its import goes.
KNOWN_LEAKS: dict = {}

# Sets of modules that import each other. Remove an entry when the cycle goes.
KNOWN_CYCLES: list = []


def modules() -> dict[str, Path]:
    out = {}
    for p in sorted(DASS.rglob("*.py")):
        parts = list(p.relative_to(DASS.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = p
    return out


def component(mod: str) -> str:
    if mod in PLUMBING:
        return "plumbing"
    if mod in ENTRY:
        return "entry"
    return mod.split(".")[1]


def imports(mod: str, path: Path, known: dict) -> set[str]:
    """The ``dass`` modules (or packages, for names they re-export) that ``mod`` imports."""
    out = set()
    package = mod.split(".") if path.name == "__init__.py" else mod.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.split(".")[0] == "dass"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package[:len(package) - node.level + 1])
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            if target.split(".")[0] != "dass":
                continue
            for a in node.names:  # `from pkg import submodule` depends on the submodule
                out.add(f"{target}.{a.name}" if f"{target}.{a.name}" in known else target)
    out.discard(mod)
    return out


@functools.cache   # parsed once for the three tests that read it (none changes it)
def graph() -> dict[str, set[str]]:
    known = modules()
    g = {m: imports(m, p, known) for m, p in known.items()}
    unknown = {d for ds in g.values() for d in ds if d not in known}
    assert not unknown, f"imports of modules that do not exist: {sorted(unknown)}"
    return g


def cycles(g: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(g[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(comp)

    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def test_every_module_has_a_component():
    for m in modules():
        assert component(m) in MAY_IMPORT, f"{m}: no component; add it to MAY_IMPORT and docs/ARCHITECTURE.md"


def test_imports_follow_the_layers():
    g = graph()
    leaks, used = [], set()
    for m, deps in sorted(g.items()):
        for d in sorted(deps):
            a, b = component(m), component(d)
            if (a == b and a != "entry") or b in MAY_IMPORT[a]:  # entry modules are not libraries
                continue
            if (m, b) in KNOWN_LEAKS:
                used.add((m, b))
            else:
                leaks.append(f"{m} ({a}) imports {d} ({b})")
    assert not leaks, "imports against docs/ARCHITECTURE.md:\n" + "\n".join(leaks)
    assert not set(KNOWN_LEAKS) - used, f"fixed leaks still listed in KNOWN_LEAKS: {sorted(set(KNOWN_LEAKS) - used)}"


def test_every_permitted_edge_is_used():
    """MAY_IMPORT is the layer map as it is, not a wish list: an edge nobody uses is removed, so that
    a new dependency is a visible change of this table and of docs/ARCHITECTURE.md."""
    used = {c: set() for c in MAY_IMPORT}
    for m, deps in graph().items():
        for d in deps:
            used[component(m)].add(component(d))
    unused = {c: sorted(allowed - used[c]) for c, allowed in MAY_IMPORT.items() if allowed - used[c]}
    assert not unused, f"permitted but unused edges (remove them from MAY_IMPORT and the docs): {unused}"


def test_no_import_cycles():
    found = cycles(graph())
    new = [c for c in found if c not in KNOWN_CYCLES]
    assert not new, f"import cycles: {[sorted(c) for c in new]}"
    assert all(c in found for c in KNOWN_CYCLES), "a cycle in KNOWN_CYCLES is gone: remove it from the list"


def test_the_checker_sees_leaks_and_cycles():
    """The rule and the cycle search themselves, on a hand-made graph."""
    assert "train" not in MAY_IMPORT["space"] and component("dass.space.arch") == "space"
    assert component("dass.data.__main__") == "data" and component("dass.io") == "plumbing"
    g = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(g) == [{"a", "b", "c"}]
    known = modules()
    # a relative import of a re-exported name resolves to the package, of a submodule to the module
    assert "dass.train" in imports("dass.database.runners", known["dass.database.runners"], known)
    assert "dass.database.saved" in imports("dass.predictor.data", known["dass.predictor.data"], known)


def uncommented_local_imports(source: str) -> list[int]:
    """Lines of the imports inside functions of ``source`` with no ``#`` comment on any of their lines."""
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    commented = {t.start[0] for t in tokens if t.type == tokenize.COMMENT}
    out = []
    for fn in ast.walk(ast.parse(source)):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for node in ast.walk(fn):
                if isinstance(node, (ast.Import, ast.ImportFrom)) and \
                        not commented & set(range(node.lineno, node.end_lineno + 1)):
                    out.append(node.lineno)
    return sorted(set(out))


def test_imports_inside_functions_say_why():
    """Imports belong at the module top; one inside a function is lazy on purpose and says why in a
    trailing comment (``# lazy: scipy costs ~0.9 s at start-up``, ``# lazy: import cycle a <-> b``)."""
    bare = [f"{p.relative_to(DASS.parent)}:{n}" for p in modules().values()
            for n in uncommented_local_imports(p.read_text())]
    assert not bare, "imports inside functions without a comment saying why they are lazy:\n" + "\n".join(bare)


def test_the_lazy_import_check_sees_bare_imports():
    source = ("import os\n"
              "def f():\n"
              "    import json\n"                           # line 3: bare
              "    import csv  # lazy: a reason\n"
              "    def g():\n"
              "        from math import (pi,\n"             # line 6: bare, over two lines
              "                          tau)\n"
              "    from re import (sub,  # lazy: a reason\n"
              "                    match)\n"
              "    x = '# not a comment'; import glob\n"     # line 10: a '#' in a string is no comment
              "class C:\n"
              "    def m(self):\n"
              "        import heapq\n")                      # line 13: bare, in a method
    assert uncommented_local_imports(source) == [3, 6, 10, 13]
