"""``python -m dass.database --config configs/database/cpu.yaml [--phase all|teachers|students|merge]``: build
the meta-training database (resumable); ``--validate DIR`` checks a built one, ``--compare DB_A DB_B``
compares two label sets (:mod:`dass.database.commands`); ``--union OUT DB...`` joins databases built apart;
``--record-digests DIR`` adds the teachers' proxy digests to the task files of a database merged without them.

Only the config and the CLI plumbing are imported up front: ``--help`` and config errors answer
without torch, which :mod:`dass.database.commands` imports once the command line is known good."""
from __future__ import annotations

from ..cli import load_config, make_parser, run_main
from .config import DatabaseConfig


def main(args) -> int:
    if args.compare:
        from .commands import compare  # lazy on purpose, as below
        compare(*args.compare, as_json=args.json)
        return 0
    if args.union:
        from .format import write_union  # lazy, as below
        write_union(args.union[0], args.union[1:])
        print(f"{args.union[0]}: union of {', '.join(args.union[1:])}")
        return 0
    if args.record_digests:
        from .commands import record_digests  # lazy, as below
        record_digests(args.record_digests)
        return 0
    if args.validate:
        from .commands import validate  # lazy: torch only after the command line is checked
        validate(args.validate, as_json=args.json)
        return 0
    cfg = load_config(DatabaseConfig, args)
    from .commands import run  # lazy on purpose: torch only after the config has been checked
    run(cfg, args.phase)
    return 0


def _parser():
    p = make_parser("python -m dass.database", "Build the meta-training database (resumable).", DatabaseConfig)
    p.add_argument("--phase", default="all", choices=["all", "teachers", "students", "merge"],
                   help="run one build phase (teachers, students, merge) or all")
    p.add_argument("--validate", metavar="DIR", help="validate a built database folder, print its table and exit")
    p.add_argument("--record-digests", metavar="DIR",
                   help="add the teachers' proxy digests (teacher.proxy_digest) to the task files of a built database "
                        "folder whose teacher checkpoints are at hand, and exit")
    p.add_argument("--compare", nargs=2, metavar=("DB_A", "DB_B"),
                   help="per task: mean gain A - B and Spearman between the labels of the students in both")
    p.add_argument("--union", nargs="+", metavar="DIR",
                   help="OUT DB [DB ...]: make OUT a union database that reads the member databases as one "
                        "(e.g. strong- and weak-teacher tasks built apart) and exit")
    p.add_argument("--json", action="store_true", help="with --validate or --compare: print JSON")
    return p


if __name__ == "__main__":
    run_main(main, parser=_parser())
