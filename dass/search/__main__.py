"""``python -m dass.search --config configs/search/cpu.yaml teacher=<pt> predictor=<best.pt> run_dir=<dir>``:
score candidate students with the adapted predictor (:func:`dass.search.searcher.run`).

Only the config and the CLI plumbing are imported up front: ``--help`` and config errors answer
without torch, which :mod:`dass.search.searcher` imports once the config is known good."""
from __future__ import annotations

from ..cli import run_main, stage_entry
from .config import SearchConfig

main, _parser = stage_entry(
    "python -m dass.search",
    "Score candidate students with the adapted predictor.",
    SearchConfig, "dass.search.searcher")

if __name__ == "__main__":
    run_main(main, parser=_parser())
