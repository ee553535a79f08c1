"""Jobs of the database build and their content hashes.

A job is one unit of work whose result is one file: a teacher (``kind="teacher"``) or a group of
students of one task KD-trained together (``kind="students"``; a group of one is a plain KD run,
larger groups train in lockstep with one teacher forward per batch, with identical results).
Each student's identity is a content hash (``student_id``) of everything that determines its
result: space, dataset identity, teacher checkpoint bytes, KD recipe, remap, seed and architecture.
A result file is written atomically under ``<work_dir>/results/<task>/<student_id>.json``; a
rerun skips every student whose file exists, so finished work is never redone or lost.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..hashing import json_sha256


def content_hash(obj) -> str:
    return json_sha256(obj)[:20]


@dataclass
class StudentJob:
    task: str                 # task key
    arch: dict                # {"depths", "widths"}
    seed: int
    student_id: str           # content hash (see module doc)

    def result_path(self, work_dir) -> Path:
        return Path(work_dir) / "results" / self.task / f"{self.student_id}.json"


@dataclass
class JobGroup:
    """Students of one task trained together (lockstep when more than one)."""
    task: str
    jobs: list[StudentJob] = field(default_factory=list)

    @property
    def key(self) -> str:
        return content_hash([j.student_id for j in self.jobs])
