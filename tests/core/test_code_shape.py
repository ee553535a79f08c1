"""Code shape of ``dass/`` (RULES.md, issue #28): no function takes more than MAX_PARAMS parameters
and no module is longer than MAX_LINES lines, read from the source with ``ast``.

Parameters counted: every named parameter (positional-only, ordinary, keyword-only), less a leading
``self`` or ``cls``; ``*args`` and ``**kwargs`` count one each (each is one more way in). Lambdas
are not functions here. ``ALLOWED`` names the functions that are being converted elsewhere (to a
Task object, issue #28) and may keep their long signature until then: empty it when they are."""
from __future__ import annotations

import ast
from pathlib import Path

DASS = Path(__file__).resolve().parents[2] / "dass"
MAX_PARAMS = 8
MAX_LINES = 400
# "<module path under dass/ without .py, dotted>:<qualified name>" -> why it may stay long for now
ALLOWED: dict = {}


def param_count(args: ast.arguments) -> int:
    names = [a.arg for a in args.posonlyargs + args.args + args.kwonlyargs]
    own = 1 if names and names[0] in ("self", "cls") else 0
    return len(names) - own + (args.vararg is not None) + (args.kwarg is not None)


def long_functions(source: str, module: str = "m") -> dict[str, int]:
    """``{"<module>:<qualified name>": parameter count}`` of the functions of ``source`` over MAX_PARAMS."""
    out = {}

    def visit(node, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = prefix + child.name
                if param_count(child.args) > MAX_PARAMS:
                    out[f"{module}:{name}"] = param_count(child.args)
                visit(child, name + ".")
            elif isinstance(child, ast.ClassDef):
                visit(child, prefix + child.name + ".")
            else:
                visit(child, prefix)

    visit(ast.parse(source), "")
    return out


def sources():
    for path in sorted(DASS.rglob("*.py")):
        yield ".".join(path.relative_to(DASS).with_suffix("").parts), path.read_text()


def test_no_function_takes_more_than_max_params():
    found = {}
    for module, text in sources():
        found.update(long_functions(text, module))
    new = {k: n for k, n in found.items() if k not in ALLOWED}
    assert new == {}, f"functions over {MAX_PARAMS} parameters (group them in a dataclass or pass a config): {new}"
    stale = sorted(set(ALLOWED) - set(found))
    assert stale == [], f"ALLOWED names functions that are no longer long (remove them): {stale}"


def test_no_module_longer_than_max_lines():
    long = {m: n for m, text in sources() if (n := len(text.splitlines())) > MAX_LINES}
    assert long == {}, f"modules over {MAX_LINES} lines: {long}"


def test_checker_counts_parameters_as_stated():
    snippet = '''
def nine(a, b, c, d, e, f, g, h, i): pass
def eight(a, b, c, d, e, f, g, h): pass
def star(a, b, c, d, e, f, g, *args, **kwargs): pass
def kwonly(a, /, b, c, *, d, e, f, g, h, i): pass
class K:
    def method(self, a, b, c, d, e, f, g, h): pass
    def wide(self, a, b, c, d, e, f, g, h, i): pass
    @classmethod
    def build(cls, a, b, c, d, e, f, g, h): pass
def outer():
    def inner(a, b, c, d, e, f, g, h, i): pass
'''
    assert long_functions(snippet) == {"m:nine": 9, "m:star": 9, "m:kwonly": 9, "m:K.wide": 9,
                                       "m:outer.inner": 9}
