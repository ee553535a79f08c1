"""``python -m dass``: the stages, one line each (``python -m dass.<stage> --help`` for a stage's keys)."""
from __future__ import annotations

import importlib

# In pipeline order; each entry module builds its parser with ``_parser()`` (``make_parser()`` in
# dass.compat), whose description is the line shown.
STAGES = ("data", "space", "train_teacher", "build_db", "meta_train", "search", "kd", "evaluate", "compat",
          "pipeline")


def describe() -> list[tuple[str, str]]:
    out = []
    for name in STAGES:
        mod = importlib.import_module(f"dass.{name}")
        if hasattr(mod, "__path__"):  # a package: its entry is __main__
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
