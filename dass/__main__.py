"""``python -m dass``: the stages, one line each (``python -m dass.<stage> --help`` for a stage's keys)."""
from __future__ import annotations

import importlib

# In pipeline order, one package per stage; each package's __main__ builds its parser with
# ``_parser()`` (``make_parser()`` in dass.compat), whose description is the line shown.
STAGES = ("data", "space", "teacher", "database", "predictor", "search", "kd", "export", "evaluation", "compat", "pipeline")


def describe() -> list[tuple[str, str]]:
    out = []
    for name in STAGES:
        mod = importlib.import_module(f"dass.{name}.__main__")
        parser = getattr(mod, "_parser", None) or mod.make_parser
        out.append((name, parser().description))
    return out


def main() -> None:
    rows = describe()
    print("DaSS stages (python -m dass.<stage> --help lists a stage's options and config keys):")
    w = max(len(n) for n, _ in rows)
    for name, line in rows:
        print(f"  {name:<{w}}  {line}")


if __name__ == "__main__":
    main()
