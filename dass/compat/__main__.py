"""``python -m dass.compat``: convert the original DaSS release (see ``docs/COMPAT.md``).

* ``import --src ROOT --out DB [--space YAML] [--num-classes KEY=N ...]``: database files, teacher
  checkpoints, search pools and net-sample lists under ROOT -> task files and the rest under DB;
* ``teacher --src model_best.pth.tar --out teacher.pt [--space YAML] [--dataset NAME] [--best-acc X]``:
  one original teacher checkpoint -> this project's teacher file.

Without ``--space`` the paper profile (the ``SpaceConfig`` defaults) is used.
"""
from __future__ import annotations

import argparse
import sys

from ..cli import run_main, setup_logging
from ..errors import DassError
from ..space import load_space


MAX_CLASSES = 1_000_000   # most classes a task may have (a classifier row each)


def _num_classes(items) -> dict[str, int]:
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key or not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= MAX_CLASSES:
            raise DassError(f"--num-classes expects KEY=N with N in [1, {MAX_CLASSES}], got {item[:60]!r}")
        out[key] = int(value)
    return out


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m dass.compat", description="Convert the original DaSS release's files "
                                "(teachers, database, search pools; docs/COMPAT.md).")
    p.add_argument("--debug", action="store_true", help="show full tracebacks")
    sub = p.add_subparsers(dest="command", required=True)
    imp = sub.add_parser("import", help="convert the original release into a database folder")
    imp.add_argument("--src", required=True, help="root of the original files (the download scripts' --root)")
    imp.add_argument("--out", required=True, help="database folder to write (empty or a previous import)")
    imp.add_argument("--space", help="space profile YAML (default: the paper profile)")
    imp.add_argument("--num-classes", nargs="*", metavar="KEY=N", help="class count of tasks the release does not name")
    t = sub.add_parser("teacher", help="convert one original teacher checkpoint")
    t.add_argument("--src", required=True, help="original model_best.pth.tar")
    t.add_argument("--out", required=True, help="teacher file to write")
    t.add_argument("--space", help="space profile YAML (default: the paper profile)")
    t.add_argument("--dataset", default="", help="dataset name recorded in the file (default: the checkpoint's folder)")
    t.add_argument("--best-acc", type=float, help="teacher accuracy in percent (default: the checkpoint's best_acc1)")
    for sp in (imp, t):
        sp.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show full tracebacks")
    return p


def main(args) -> int:
    from .importer import convert_teacher, import_release  # torch: after the command line is checked
    setup_logging()
    space = load_space(args.space)
    if args.command == "import":
        m = import_release(args.src, args.out, space, _num_classes(args.num_classes))
        print(f"imported {len(m['tasks'])} tasks, {len(m['teachers'])} teachers, {len(m['search_pools'])} "
              f"search pools, {len(m['net_info'])} net-sample lists into {args.out}")
    else:
        info = convert_teacher(args.src, args.out, space, args.dataset, args.best_acc)
        print(f"wrote {info['path']}: {info['num_classes']} classes, best_acc {info['best_acc']}")
    return 0


if __name__ == "__main__":
    run_main(main, sys.argv[1:], make_parser())
