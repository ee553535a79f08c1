"""The teacher stage's config (no torch: ``python -m dass.teacher --help`` and config errors answer
without importing it)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from ..errors import DassError
from ..train.recipe import TeacherRecipe


@dataclass
class TeacherRunConfig:
    # Keys outside the run identity (dass.runid): where it is written, how it runs and shows progress,
    # and the inputs the identity holds by content (the dataset's bytes, the space's resolved profile).
    IDENTITY_FREE: ClassVar[tuple[str, ...]] = ("runs_root", "run_dir", "progress", "device", "data_root", "space")

    dataset: str = ""                       # registry name, e.g. glyphs/latin, tiny_imagenet-3, cub
    data_root: str = "data"  # folder of the built-in datasets
    space: str = "configs/space/cpu.yaml"   # space profile (YAML) fixing the teacher network
    runs_root: str = "runs"  # parent of the default run folder
    run_dir: str = ""                       # default <runs_root>/teacher/<dataset>
    seed: int = 0  # seed of the initialisation and the batches
    device: str = "auto"  # auto, cpu, cuda or cuda:<i>
    progress: bool = True  # progress bars
    teacher_recipe: TeacherRecipe = field(default_factory=TeacherRecipe)  # teacher recipe (the database and the pipeline reference it)

    def check(self) -> None:
        """The check that needs no file: a dataset is named."""
        if not self.dataset:
            raise DassError("no dataset given (dataset=<name>, e.g. dataset=glyphs/latin)")
