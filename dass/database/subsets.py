"""Class-subset tasks of the database config and the class-disjointness rule of the splits.

A ``subset_tasks`` block of the build config expands into ``count`` tasks, each a class subset
(dataset name ``subset:...``, see :mod:`dass.data.subset`) drawn from the union of the classes of
the ``pool`` datasets, as the paper cuts Tiny-ImageNet into class subsets::

    subset_tasks:
      - {split: meta_train, count: 32, pool: [glyphs/armenian, glyphs/greek, ...], classes: [20, 60], seed: 0}

The union holds every class of the pool once: classes with the same identity (two glyph datasets
rendering the same code point) count once, the first pool dataset's copy is kept. Task ``i`` draws
its size uniformly from ``classes`` (inclusive) and then that many distinct classes, with a random
stream seeded by ``(seed, i)`` alone, so raising ``count`` adds tasks and leaves the earlier ones
unchanged. Its key is ``<prefix><i>-<8 hex of the dataset name's hash>``: a changed draw gets a new
key, so a teacher trained for another class set is never reused. ``teacher_epochs`` cuts the
teachers of a block's tasks short (weaker teachers, the regime axis of docs/DATABASE.md); it enters
the hash, so a block's weak-teacher tasks never share a key, or a teacher, with full-recipe ones.

:func:`check_disjoint` enforces the rule that no class (by identity) of a meta-valid or meta-test
task appears in a meta-train task.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..data.registry import class_identities, class_list
from ..data.subset import class_identity, subset_name
from ..errors import DassError
from .splits import check_meta_split
from .jobs import content_hash


@dataclass
class SubsetTaskSpec:
    """A block of class-subset tasks drawn from the union of the pool datasets' classes."""
    pool: list[str] = field(default_factory=list)  # source datasets whose classes are drawn from
    count: int = 1  # number of tasks
    classes: list[int] = field(default_factory=lambda: [20, 60])  # [min, max] classes per task, both included
    split: str = "meta_train"  # split of these tasks
    seed: int = 0  # seed of the draws (task i uses the stream of (seed, i))
    prefix: str = "sub"  # task keys: <prefix><i:02d>-<8 hex of the dataset name's hash>
    teacher_epochs: int = 0  # epochs of these tasks' teachers, the schedule ending there (0 = the teacher recipe's): weaker teachers

    def __post_init__(self):
        check_meta_split(self.split, "subset_tasks")
        if not self.pool:
            raise DassError("subset_tasks: 'pool' must list at least one dataset")
        if self.count < 1:
            raise DassError(f"subset_tasks: count must be >= 1, got {self.count}")
        if len(self.classes) != 2 or not 2 <= self.classes[0] <= self.classes[1]:
            raise DassError(f"subset_tasks: classes must be [min, max] with 2 <= min <= max, got {self.classes}")
        if self.teacher_epochs < 0:
            raise DassError(f"subset_tasks: teacher_epochs must be >= 0, got {self.teacher_epochs}")


def pool_classes(spec: SubsetTaskSpec, root) -> list[tuple[str, int]]:
    """The union of the pool's classes as ``(source, index)``, one per identity, in pool order."""
    seen, out, cache = set(), [], {}
    for src in spec.pool:
        for s, i in class_list(src, root):
            ident = class_identity(root, s, i, cache)
            if ident not in seen:
                seen.add(ident)
                out.append((s, i))
    return out


def expand(spec: SubsetTaskSpec, root) -> list[dict]:
    """The tasks of one block: ``[{dataset, split, key}, ...]`` (see module doc)."""
    pool = pool_classes(spec, root)
    lo, hi = spec.classes
    if hi > len(pool):
        raise DassError(f"subset_tasks: {hi} classes asked for, the pool has {len(pool)}")
    tasks = []
    for i in range(spec.count):
        rng = np.random.default_rng([spec.seed, i])
        k = int(rng.integers(lo, hi + 1))
        pick = np.sort(rng.choice(len(pool), size=k, replace=False))
        name = subset_name([pool[j] for j in pick])
        task = {"dataset": name, "split": spec.split}
        hashed = name
        if spec.teacher_epochs:  # another teacher on the same classes: another key
            task["teacher_epochs"] = spec.teacher_epochs
            hashed = f"{name}|teacher_epochs={spec.teacher_epochs}"
        tasks.append({**task, "key": f"{spec.prefix}{i:02d}-{content_hash(hashed)[:8]}"})
    return tasks


def check_disjoint(tasks, root) -> None:
    """Raise (one line) if a class of a meta-valid or meta-test task appears in a meta-train task.

    ``tasks``: objects with ``dataset``, ``split`` and ``key`` attributes."""
    cache: dict = {}
    held: dict[tuple, str] = {}
    for t in tasks:
        if t.split != "meta_train":
            for ident in class_identities(t.dataset, root, cache):
                held.setdefault(ident, f"{t.key} ({t.split})")
    for t in tasks:
        if t.split == "meta_train":
            for (src, i), ident in zip(class_list(t.dataset, root), class_identities(t.dataset, root, cache)):
                if ident in held:
                    raise DassError(f"meta-train task {t.key} holds class {i} of {src} "
                                    f"({ident[1] if ident[0] == 'code_point' else 'same class'}), "
                                    f"which belongs to task {held[ident]}: splits must not share classes")
