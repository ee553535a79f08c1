"""The export stage's config (no torch: ``python -m dass.export --help`` and config errors answer
without importing it)."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import DassError

FORMATS = ("torchscript", "onnx", "state_dict")


@dataclass
class ExportConfig:
    run: str = ""  # KD run folder (python -m dass.kd), pipeline run, or a pipeline's kd/<rank>-<arch> folder
    pick: int = 1  # pipeline run: rank of the pick to export (its kd/<rank>-<arch> folder)
    out: str = ""  # output folder; default <KD run folder>/export
    format: list[str] = field(default_factory=lambda: list(FORMATS))  # what to write: torchscript, onnx, state_dict
    seed: int = 0  # seed whose best.pt is exported; 0 = the seed with the best test accuracy
    opset: int = 17  # ONNX opset version
    data_root: str = ""  # folder of the built-in datasets; default the KD run's data_root
    check_images: int = 0  # test images on which torch, TorchScript and ONNX are compared; 0 = all
    tolerance: float = 1e-4  # largest max abs logit difference accepted between torch and an exported file

    def __post_init__(self):
        if not isinstance(self.format, list) or not self.format:
            raise ValueError(f"format must be a non-empty list of {', '.join(FORMATS)}")
        bad = [f for f in self.format if f not in FORMATS]
        if bad:
            raise ValueError(f"unknown format '{bad[0]}' (known: {', '.join(FORMATS)})")
        if len(set(self.format)) != len(self.format):
            raise ValueError(f"format lists a format twice ({self.format})")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0 (0 = the best seed), got {self.seed}")
        if not 7 <= self.opset <= 21:
            raise ValueError(f"opset must lie in 7..21, got {self.opset}")
        if self.pick < 1:
            raise ValueError(f"pick must be >= 1 (the rank of a pipeline pick), got {self.pick}")
        if self.check_images < 0:
            raise ValueError(f"check_images must be >= 0, got {self.check_images}")
        if not self.tolerance > 0:
            raise ValueError(f"tolerance must be > 0, got {self.tolerance}")

    def check(self) -> None:
        """The check that needs no file: a run folder given."""
        if not self.run:
            raise DassError("no run given (run=<KD run folder>)")
