"""``python -m dass.export --config configs/export/cpu.yaml run=<KD run folder>``: the KD-trained
student as files that run without this package (:func:`dass.export.exporter.run`).

Only the config and the CLI plumbing are imported up front: ``--help`` and config errors answer
without torch, which :mod:`dass.export.exporter` imports once the config is known good."""
from __future__ import annotations

from ..cli import run_main, stage_entry
from .config import ExportConfig

main, _parser = stage_entry(
    "python -m dass.export",
    "Export a KD-trained student: TorchScript, ONNX, state dict, model.json and MODEL_CARD.md.",
    ExportConfig, "dass.export.exporter")

if __name__ == "__main__":
    run_main(main, parser=_parser())
