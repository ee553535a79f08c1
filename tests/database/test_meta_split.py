"""One check of a meta split name (dass.database.splits.check_meta_split): a bad name is one error that
names where it was read and the three allowed splits; the configs, the task-file check and load_db use it."""
from __future__ import annotations

import pytest

from dass.database.config import DatabaseConfig, TaskSpec
from dass.database.format import load_db, validate_task_db
from dass.database.splits import check_meta_split
from dass.database.subsets import SubsetTaskSpec
from dass.errors import DassError
from dass.evaluation.config import EvaluationConfig

ALLOWED = "['meta_train', 'meta_valid', 'meta_test']"  # written out by hand, not read from META_SPLITS


@pytest.mark.parametrize("split", ["meta_train", "meta_valid", "meta_test"])
def test_the_three_meta_splits_pass(split):
    assert check_meta_split(split, "anywhere") is None


@pytest.mark.parametrize("split", ["meta_tset", "train", "test", "Meta_Train", "", None, 0])
def test_a_bad_split_names_the_place_and_the_allowed_splits(split):
    with pytest.raises(DassError) as e:
        check_meta_split(split, "task 'glyphs/latin'")
    assert str(e.value) == f"task 'glyphs/latin': split must be one of {ALLOWED}, got {split!r}"


def test_the_callers_name_their_place():
    cases = [
        (lambda: TaskSpec(dataset="glyphs/latin", split="meta_tset"), "task 'glyphs/latin': "),
        (lambda: SubsetTaskSpec(pool=["glyphs/latin"], split="meta_tset"), "subset_tasks: "),
        (lambda: DatabaseConfig(out="o", work_dir="w", students={"meta_tset": 5}), "students: "),
        (lambda: DatabaseConfig(out="o", work_dir="w", splits=["meta_train", "meta_tset"]), "splits: "),
        (lambda: DatabaseConfig(out="o", work_dir="w", label_seeds={"meta_tset": [1, 2]}), "label_seeds: "),
        (lambda: EvaluationConfig(split="meta_tset"), "evaluation config: "),
        (lambda: validate_task_db({"format": "dass-db-v2", "task": {"split": "meta_tset"}, "space": {},
                                   "noise_seed": 0, "teacher": {}, "students": {}}, "x.pt"), "x.pt: task: "),
        (lambda: load_db("no_such_db", splits=("meta_tset",)), "splits asked of the database no_such_db: "),
    ]
    for make, where in cases:
        with pytest.raises(DassError) as e:
            make()
        assert str(e.value) == f"{where}split must be one of {ALLOWED}, got 'meta_tset'"


def test_valid_splits_pass_the_callers():
    assert TaskSpec(dataset="glyphs/latin", split="meta_valid").key == "glyphs-latin"
    assert SubsetTaskSpec(pool=["glyphs/latin"], split="meta_test").split == "meta_test"
    assert EvaluationConfig(split="meta_valid").split == "meta_valid"
    assert DatabaseConfig(out="o", work_dir="w", splits=["meta_test"], label_seeds={"meta_test": [1, 2]}).splits == \
        ["meta_test"]
