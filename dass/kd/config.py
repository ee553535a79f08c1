"""The KD stage's config (no torch: ``python -m dass.kd --help`` and config errors answer without
importing it)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from ..errors import DassError
from ..train.recipe import KDRecipe


@dataclass
class StudentSpec:
    depths: list[int]  # blocks per stage
    widths: list[list[int]]  # per stage, the width of each block


@dataclass
class KDRunConfig:
    # Keys outside the run identity (dass.runid): where it is written, how it shows progress, which seeds
    # (each seed is its own sub-folder), and the inputs the identity holds by content (teacher bytes,
    # data bytes, the resolved student and space).
    IDENTITY_FREE: ClassVar[tuple[str, ...]] = (
        "runs_root", "run_dir", "progress", "device", "seeds", "teacher", "data_root", "space", "student",
        "student_file", "student_index", "candidates_file", "index")

    teacher: str = ""              # teacher checkpoint (teacher.pt or the original model_best.pth.tar)
    dataset: str = ""              # registry name; its classes must match the teacher's
    data_root: str = "data"  # folder of the built-in datasets
    space: str = ""                # space profile YAML; needed for checkpoints that record none
    runs_root: str = "runs"  # parent of the default run folder
    run_dir: str = ""              # default <runs_root>/kd/<dataset>/<arch key>
    student: StudentSpec | None = None  # the student's depths and widths
    student_file: str = ""  # search result (top.json) holding the student
    student_index: int = 0  # entry of student_file's top list (0 = the best)
    candidates_file: str = ""  # JSON/.pt list of architectures holding the student
    index: int = 0  # entry of candidates_file
    seeds: list[int] = field(default_factory=lambda: [1])  # KD seeds, one run each
    remap: str = "copy_paste_first"  # initialisation of the student from the teacher (copy_paste_first ...)
    device: str = "auto"  # auto, cpu, cuda or cuda:<i>
    progress: bool = True  # progress bars
    kd_recipe: KDRecipe = field(default_factory=KDRecipe)  # KD recipe (configs/kd/<profile>.yaml); the database and the pipeline reference it

    def check(self) -> None:
        """The checks that need no file: teacher and dataset given, seeds distinct and not empty."""
        for key in ("teacher", "dataset"):
            if not getattr(self, key):
                raise DassError(f"no {key} given ({key}=...)")
        if not self.seeds:
            raise DassError("seeds is empty")
        if len(set(self.seeds)) != len(self.seeds):
            raise DassError(f"seeds lists a seed twice ({self.seeds}): each seed is one run")
