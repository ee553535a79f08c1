"""One home per name: a package's lazy export names the module that defines the name, and no module of
``dass`` keeps an import only to re-export it (a shim a reader must follow to find the definition)."""
from __future__ import annotations

import ast
from pathlib import Path

DASS = Path(__file__).resolve().parents[2] / "dass"


def lazy_maps() -> dict[Path, dict[str, list[str]]]:
    """package ``__init__.py`` -> its ``lazy_exports`` mapping, read from the source."""
    out = {}
    for init in sorted(DASS.rglob("__init__.py")):
        for node in ast.walk(ast.parse(init.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "lazy_exports":
                out[init] = ast.literal_eval(node.args[1])
    return out


def defined_names(module: Path) -> set[str]:
    """Names a module defines at its top level (functions, classes, assignments), not the ones it imports."""
    names = set()
    for node in ast.parse(module.read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


def test_the_lazy_maps_were_found():
    maps = lazy_maps()
    assert DASS / "search" / "__init__.py" in maps and DASS / "space" / "__init__.py" in maps
    assert maps[DASS / "search" / "__init__.py"]["budget"] == ["Budget", "smallest_arch"]


def test_every_lazy_export_points_at_its_defining_module():
    wrong = []
    for init, mapping in lazy_maps().items():
        for sub, names in mapping.items():
            module = init.parent / f"{sub}.py"
            if not module.is_file():
                module = init.parent / sub / "__init__.py"
            missing = sorted(set(names) - defined_names(module))
            wrong += [f"{init.parent.name}.{n} is not defined in {module.relative_to(DASS)}" for n in missing]
    assert wrong == []


def test_no_import_kept_only_to_re_export():
    shims = [f"{p.relative_to(DASS)}:{i}" for p in sorted(DASS.rglob("*.py")) if p.name != "__init__.py"
             for i, line in enumerate(p.read_text().splitlines(), 1) if "noqa: F401" in line and "re-export" in line]
    assert shims == []


def test_defined_names_ignores_imports(tmp_path):
    (tmp_path / "m.py").write_text("from x import a\nimport b\nc = 1\nd: int = 2\ndef e(): pass\nclass F: pass\n")
    assert defined_names(tmp_path / "m.py") == {"c", "d", "e", "F"}
