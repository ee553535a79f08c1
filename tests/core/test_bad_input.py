"""Bad input through every entry module, as a user meets it: a process per case.

Each case must end with exit code 2, stderr exactly one line ``error: ...`` naming the problem (a
distinctive substring: the key, the file, the value), no traceback, and, where listed, without
creating a file (a run folder that would mean work started, or the marker a malicious pickle would
write if it were ever executed).

Fixtures are tiny and made here: npy datasets, the tiny space as YAML, teacher and predictor
checkpoints, a task database. Cases run two at a time from a scratch working folder (so a relative
default path can never touch the repository's ``runs/`` or ``data/``), each in a process forked
from a warm interpreter (``tests/fork_runner.py``, so the imports are paid once); a sample of them
is checked against fresh ``python`` subprocesses.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import pickle
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from assets.tiny_db import TINY, save_teacher, tiny_teacher_state, write_images, write_predictor, write_tiny_db
from dass import config as cfgmod
from dass.io import atomic_torch_save
from dass.space import Arch, SpaceConfig, macs

REPO = Path(__file__).resolve().parents[2]
# The tiny space with another stage-3 width: same depths, a different network.
OTHER = SpaceConfig(name="other", stage_widths=[4, 8, 16, 16], depths=[1, 2], width_mults=[0.5, 1.0], image_size=8)
K = 5  # classes of the good dataset and of the good teacher
# A student of TINY (stage width choices (2, 4), (4, 8), (4, 8), (8, 16)).
STUDENT = ["student.depths=[1,1,1,1]", "student.widths=[[2],[4],[4],[8]]"]


class ShadowDict(collections.OrderedDict):
    """An OrderedDict subclass: unpickling it means importing this module, which weights_only refuses."""


class Payload:
    """Unpickling this object would call ``open(marker, 'w')``: the marker file would appear."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return open, (self.marker, "w")


@dataclass(frozen=True)
class Case:
    """``module``: ``dass.<x>`` (run with -m) or a script path relative to the repository.
    ``args``/``expect``/``absent`` may hold ``{name}`` placeholders filled from the fixture paths;
    ``expect``: substrings the error line must contain; ``absent``: paths that must not exist."""
    id: str
    module: str
    args: tuple[str, ...]
    expect: tuple[str, ...]
    absent: tuple[str, ...] = ()


def kd(*extra, teacher="{teacher}", dataset="glyphs/good"):
    return ("dass.kd", (f"teacher={teacher}", f"dataset={dataset}", "data_root={data}", "run_dir={scratch}/kd",
                        "kd_recipe.epochs=1", "progress=false", *extra))


def search(*extra, teacher="{teacher}", predictor="{predictor}"):
    return ("dass.search", (f"teacher={teacher}", f"predictor={predictor}", "run_dir={scratch}/search",
                            "pool_size=4", "progress=false", *extra))


def meta_train(*extra, db="{db}"):
    return ("dass.predictor", (f"db={db}", "run_dir={scratch}/mt", "episodes=1", "progress=false", *extra))


def evaluate(*extra):
    return ("dass.evaluation", ("db={db}", "run_dir={scratch}/ev", "plots=false", "progress=false", *extra))


def case(id, module_args, expect, absent=()):
    module, args = module_args
    return Case(id, module, tuple(args), tuple(expect), tuple(absent))


CASES = [
    # ---- configs and overrides
    case("unknown-config-key", ("dass.space", ("--config", "{cfg_unknown_key}")),
         ["cfg_unknown_key.yaml", "unknown key 'stage_width'"]),
    case("ill-typed-config-value", ("dass.kd", ("--config", "{cfg_ill_typed}")),
         ["cfg_ill_typed.yaml", "'seeds'", "'one'"]),
    case("unknown-override-key", meta_train("n_querry=5"), ["unknown key 'n_querry'"], absent=["{scratch}/mt"]),
    case("override-without-equals", search("top_k"), ["override 'top_k'", "key=value"]),
    case("missing-config-file", ("dass.teacher", ("--config", "{scratch}/nowhere.yaml")),
         ["config file not found", "nowhere.yaml"]),
    case("invalid-yaml", ("dass.evaluation", ("--config", "{cfg_bad_yaml}")), ["cfg_bad_yaml.yaml", "not valid YAML"]),
    # ---- datasets
    case("missing-dataset-folder", ("dass.data", ("validate", "cub", "--root", "{data}")),
         ["dataset folder not found", "cub"]),
    case("images-labels-length-mismatch", ("dass.data", ("validate", "glyphs/mismatch", "--root", "{data}")),
         ["train_labels.npy", "9 labels", "10 images"]),
    case("labels-out-of-range", ("dass.teacher", ("dataset=glyphs/negative", "data_root={data}",
                                                       "space={space}", "run_dir={scratch}/tt")),
         ["negative", "labels must lie in [0,", "found -1"], absent=["{scratch}/tt"]),
    case("float-labels-not-whole", ("dass.data", ("validate", "glyphs/fractional", "--root", "{data}")),
         ["fractional", "whole numbers"]),
    case("truncated-npy", ("dass.data", ("validate", "glyphs/truncated", "--root", "{data}")),
         ["train_images.npy", "not a readable .npy"]),
    case("empty-image-folder", kd(*STUDENT, dataset="folder:{empty_folder}"),
         ["empty_folder", "no images"], absent=["{scratch}/kd"]),
    case("unknown-dataset-name", kd(*STUDENT, dataset="imagenet21k"),
         ["unknown dataset 'imagenet21k'"], absent=["{scratch}/kd"]),
    # ---- teacher checkpoints
    case("teacher-class-count-mismatch", kd(*STUDENT, teacher="{teacher3}"),
         ["teacher has 3 classes", f"glyphs/good has {K}"], absent=["{scratch}/kd"]),
    case("teacher-from-another-space", kd(*STUDENT, "space={space}", teacher="{teacher_other}"),
         ["teacher_other.pt", "space 'other'", "stage_widths"], absent=["{scratch}/kd"]),
    case("truncated-teacher-checkpoint", kd(*STUDENT, teacher="{truncated}"),
         ["truncated.pt", "not a readable checkpoint"], absent=["{scratch}/kd"]),
    case("teacher-not-a-checkpoint", kd(*STUDENT, teacher="{garbage}"),
         ["garbage.pt", "not a readable checkpoint"], absent=["{scratch}/kd"]),
    case("teacher-with-malformed-space-entry", search(teacher="{teacher_space_str}"),
         ["teacher_space_str.pt", "expected a mapping"], absent=["{scratch}/search"]),
    case("teacher-with-namespace-object", kd(*STUDENT, teacher="{namespace}"),
         ["namespace.pt", "could run code", "argparse.Namespace"], absent=["{scratch}/kd"]),
    case("teacher-ordereddict-subclass", search(teacher="{odict}"),
         ["odict.pt", "could run code", "ShadowDict"], absent=["{scratch}/search"]),
    case("raw-pickle-payload-as-original-teacher",
         ("dass.compat", ("teacher", "--src", "{evil_teacher}", "--out", "{scratch}/t.pt")),
         ["evil_teacher.pth.tar", "could run code", "io.open"], absent=["{marker_teacher}", "{scratch}/t.pt"]),
    case("raw-pickle-payload-in-database", meta_train(db="{evil_db}"),
         ["task.pt", "could run code"], absent=["{marker_db}", "{scratch}/mt"]),
    # ---- predictors, candidates, budgets (search)
    case("predictor-from-another-space", evaluate("predictors.dass={predictor_other}"),
         ["predictor_other.pt", "space 'other'"], absent=["{scratch}/ev"]),
    case("candidates-outside-the-space", search("candidates={bad_candidates}"),
         ["bad_candidates.json", "candidate 1", "width 5 not in"], absent=["{scratch}/search"]),
    case("max-macs-below-smallest", search("budget.macs={least_macs_minus_1}"),
         ["budget.macs={least_macs_minus_1}:", "{least_macs}"], absent=["{scratch}/search"]),
    # ---- students (kd)
    case("student-depth-zero", kd("student.depths=[0,1,1,1]", "student.widths=[[],[4],[4],[8]]"),
         ["stage 1", "depth 0 not in"], absent=["{scratch}/kd"]),
    case("student-width-not-in-space", kd("student.depths=[1,1,1,1]", "student.widths=[[3],[4],[4],[8]]"),
         ["width 3 not in"], absent=["{scratch}/kd"]),
    case("student-wrong-number-of-stages", kd("student.depths=[1,1,1]", "student.widths=[[2],[4],[4]]"),
         ["3 stages", "has 4"], absent=["{scratch}/kd"]),
    case("unknown-remap", kd(*STUDENT, "remap=copy_paste_middle"),
         ["unknown remap 'copy_paste_middle'"], absent=["{scratch}/kd"]),
    case("student-index-out-of-range", kd("student_file={top_json}", "student_index=7"),
         ["top.json", "index 7 out of range"], absent=["{scratch}/kd"]),
    # ---- databases (predictor, evaluation, database)
    case("meta-train-missing-db", meta_train(db="{scratch}/no_db"),
         ["database folder not found", "no_db"], absent=["{scratch}/mt"]),
    case("meta-train-wrong-format-db", meta_train(db="{wrong_db}"),
         ["wrong_db", "not a dass-db-v1 or dass-db-v2 task file"], absent=["{scratch}/mt"]),
    case("db-task-file-with-malformed-students", ("dass.database", ("--validate", "{malformed_db}")),
         ["malformed.pt", "students.arch must be a list"]),
    case("evaluate-unknown-method", evaluate("methods=[macs,oracle_plus]"),
         ["unknown method 'oracle_plus'"], absent=["{scratch}/ev"]),
    case("build-db-duplicate-task-keys", ("dass.database", ("--config", "{cfg_dup_tasks}")),
         ["two tasks share a key"], absent=["{scratch}/bd"]),
    case("build-db-bad-split", ("dass.database", ("--config", "{cfg_bad_split}")),
         ["split must be one of", "'meta_training'"], absent=["{scratch}/bd"]),
    # ---- ranges at the edge (issue 15; more in test_reliability.py and test_config_fuzz.py)
    case("nan-budget", search("budget.macs=.nan"), ["'budget.macs' must be a finite number"], absent=["{scratch}/search"]),
    case("negative-seed", search("seed=-1"), ["'seed' must be a seed in [0, 2^63)"], absent=["{scratch}/search"]),
    case("repeated-kd-seed", kd(*STUDENT, "seeds=[1,1]"), ["seeds lists a seed twice"], absent=["{scratch}/kd"]),
    case("nan-outer-lr", meta_train("outer_lr=.nan"), ["'outer_lr' must be a finite number"],
         absent=["{scratch}/mt"]),
    case("negative-image-size", ("dass.space", ("--describe", "image_size=-16")), ["image_size must lie in"]),
    case("manifest-not-json", ("dass.database", ("--validate", "{manifest_db}")), ["manifest.json", "not valid JSON"]),
    # ---- compat and downloads
    case("compat-import-without-original-files",
         ("dass.compat", ("import", "--src", "{empty_release}", "--out", "{scratch}/imported")),
         ["empty_release", "no original files found"], absent=["{scratch}/imported"]),
    case("download-unknown-dataset", ("download/download_dataset.py", ("--name", "imagenet", "--root", "{scratch}/dl")),
         ["--name", "invalid choice", "'imagenet'"], absent=["{scratch}/dl"]),
    case("download-unknown-checkpoint", ("download/download_checkpoint.py",
                                         ("--names", "cub", "cifar100", "--root", "{scratch}/dl")),
         ["unknown checkpoint key(s) cifar100"], absent=["{scratch}/dl"]),
    case("download-negative-retries", ("download/download_preprocessed.py",
                                       ("--root", "{scratch}/dl", "--retries", "-1")),
         ["--retries"], absent=["{scratch}/dl"]),
]


# ------------------------------------------------------------------------------------------ fixtures


def _write_yaml(path: Path, data) -> str:
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return str(path)


def _npy_dataset(root: Path, name: str, images: np.ndarray, labels: np.ndarray) -> None:
    folder = root / "glyphs" / name
    folder.mkdir(parents=True)
    for split in ("train", "test"):
        np.save(folder / f"{split}_images.npy", images)
        np.save(folder / f"{split}_labels.npy", labels)


def _evil_pickle(path: Path, marker: Path, protocol: int) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(Payload(str(marker)), protocol=protocol))
    return str(path)


def make_files(root: Path) -> dict[str, str]:
    f: dict[str, str] = {"scratch": str(root / "scratch")}
    (root / "scratch").mkdir()
    # space profile and datasets
    f["space"] = _write_yaml(root / "space.yaml", cfgmod.to_dict(TINY))
    data = root / "data"
    f["data"] = str(data)
    write_images(data / "glyphs", "good", K, n_train=10, n_test=5, size=8)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(10, 8, 8, 3), dtype=np.uint8)
    _npy_dataset(data, "mismatch", images, np.arange(9) % K)
    _npy_dataset(data, "negative", images, np.arange(10) % K - 1)
    _npy_dataset(data, "fractional", images, np.arange(10) % K + 0.5)
    _npy_dataset(data, "truncated", images, np.arange(10) % K)
    trunc = data / "glyphs" / "truncated" / "train_images.npy"
    trunc.write_bytes(trunc.read_bytes()[:150])
    for cls in ("a", "b"):  # class folders without a single image
        (root / "empty_folder" / cls).mkdir(parents=True)
        (root / "empty_folder" / cls / "notes.txt").write_text("not an image")
    f["empty_folder"] = str(root / "empty_folder")
    # teachers
    sd = tiny_teacher_state(TINY, K, seed=0)
    f["teacher"] = str(save_teacher(root / "teacher.pt", sd, TINY, K, "glyphs/good", 50.0))
    f["teacher3"] = str(save_teacher(root / "teacher3.pt", tiny_teacher_state(TINY, 3, seed=1), TINY, 3,
                                     "glyphs/good", 50.0))
    f["teacher_other"] = str(save_teacher(root / "teacher_other.pt", tiny_teacher_state(OTHER, K, seed=2), OTHER,
                                          K, "glyphs/good", 50.0))
    blob = Path(f["teacher"]).read_bytes()
    (root / "truncated.pt").write_bytes(blob[: len(blob) // 2])
    f["truncated"] = str(root / "truncated.pt")
    (root / "garbage.pt").write_bytes(b"this is not a checkpoint\n" * 8)
    f["garbage"] = str(root / "garbage.pt")
    ckpt = torch.load(f["teacher"], weights_only=True)
    torch.save({**ckpt, "args": argparse.Namespace(lr=0.05)}, root / "namespace.pt")
    f["namespace"] = str(root / "namespace.pt")
    torch.save({**ckpt, "state_dict": ShadowDict(ckpt["state_dict"])}, root / "odict.pt")
    torch.save({**ckpt, "space": "tiny"}, root / "teacher_space_str.pt")
    f["teacher_space_str"] = str(root / "teacher_space_str.pt")
    f["odict"] = str(root / "odict.pt")
    # pickles whose loading would create a marker file
    # (protocol 2 reaches the allowlist check of the global; the default protocol 4 is refused at
    # its first unsupported opcode, after torch warns about it)
    for name, path, protocol in (("teacher", root / "evil_teacher.pth.tar", 2),
                                 ("db", root / "evil_db" / "task.pt", pickle.DEFAULT_PROTOCOL)):
        f[f"marker_{name}"] = str(root / f"executed_{name}")
        f[f"evil_{name}"] = _evil_pickle(path, root / f"executed_{name}", protocol)
    f["evil_db"] = str(root / "evil_db")
    # predictors, database, candidates, a search result
    f["predictor"] = str(write_predictor(root / "predictor.pt", TINY))
    f["predictor_other"] = str(write_predictor(root / "predictor_other.pt", OTHER))
    write_tiny_db(root / "tiny", tasks=(("dtd", "meta_test"),), n_students=4, num_classes=K)
    f["db"] = str(root / "tiny" / "db")
    atomic_torch_save({"format": "dass-db-v0", "students": []}, root / "wrong_db" / "stale.pt")
    f["wrong_db"] = str(root / "wrong_db")
    task = torch.load(root / "tiny" / "db" / "dtd.pt", weights_only=True)
    task["students"]["arch"] = [[1, 1, 1, 1]] * len(task["students"]["arch"])
    atomic_torch_save(task, root / "malformed_db" / "malformed.pt")
    f["malformed_db"] = str(root / "malformed_db")
    atomic_torch_save(torch.load(root / "tiny" / "db" / "dtd.pt", weights_only=True), root / "manifest_db" / "dtd.pt")
    (root / "manifest_db" / "manifest.json").write_text('{"tasks": [')
    f["manifest_db"] = str(root / "manifest_db")
    (root / "bad_candidates.json").write_text(json.dumps([
        {"depths": [1, 1, 1, 1], "widths": [[2], [4], [4], [8]]},
        {"depths": [1, 1, 1, 1], "widths": [[5], [4], [4], [8]]}]))
    f["bad_candidates"] = str(root / "bad_candidates.json")
    (root / "top.json").write_text(json.dumps({"top": [{"arch": {"depths": [1, 1, 1, 1],
                                                                  "widths": [[2], [4], [4], [8]]}}]}))
    f["top_json"] = str(root / "top.json")
    least = Arch((1, 1, 1, 1), ((2,), (4,), (4,), (8,)))  # depth 1, half width everywhere
    f["least_macs"] = str(macs(least, TINY, K))
    f["least_macs_minus_1"] = str(macs(least, TINY, K) - 1)
    # config files
    f["cfg_unknown_key"] = _write_yaml(root / "cfg_unknown_key.yaml", {"name": "x", "stage_width": [4, 8]})
    f["cfg_ill_typed"] = _write_yaml(root / "cfg_ill_typed.yaml", {"teacher": f["teacher"], "seeds": "one"})
    f["cfg_bad_yaml"] = _write_yaml(root / "cfg_bad_yaml.yaml", "db: [unclosed\nsplit: meta_test\n")
    build = {"space": f["space"], "data_root": f["data"], "out": f"{root}/scratch/bd/db",
             "work_dir": f"{root}/scratch/bd"}
    f["cfg_dup_tasks"] = _write_yaml(root / "cfg_dup_tasks.yaml", {**build, "tasks": [
        {"dataset": "glyphs/good", "split": "meta_train"}, {"dataset": "glyphs/good", "split": "meta_valid"}]})
    f["cfg_bad_split"] = _write_yaml(root / "cfg_bad_split.yaml", {**build, "tasks": [
        {"dataset": "glyphs/good", "split": "meta_training"}]})
    (root / "empty_release" / "preprocessed").mkdir(parents=True)
    f["empty_release"] = str(root / "empty_release")
    return f


def _request(c: Case, files: dict[str, str]) -> dict:
    args = [a.format(**files) for a in c.args]
    head = ["-m", c.module] if c.module.startswith("dass.") else [str(REPO / c.module)]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return {"argv": [*head, *args], "cwd": files["scratch"], "env": env}


def run_case(c: Case, files: dict[str, str]) -> subprocess.CompletedProcess:
    """One case in a fresh interpreter, exactly as a user runs it."""
    r = _request(c, files)
    return subprocess.run([sys.executable, *r["argv"]], cwd=r["cwd"], env=r["env"], capture_output=True, text=True,
                          timeout=120)


def run_cases_forked(cases: list[Case], files: dict[str, str], lanes: int = 2) -> list[subprocess.CompletedProcess]:
    """Every case in its own process, forked from one of ``lanes`` warm interpreters
    (``tests/fork_runner.py``: torch and the package are imported once per lane, not once per case)."""
    runner = [sys.executable, str(Path(__file__).resolve().parents[1] / "fork_runner.py")]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}

    def lane(part: list[Case]) -> list[subprocess.CompletedProcess]:
        stdin = "".join(json.dumps(_request(c, files)) + "\n" for c in part)
        p = subprocess.run(runner, input=stdin, capture_output=True, text=True, env=env, cwd=files["scratch"],
                           timeout=120 * max(1, len(part)))
        assert p.returncode == 0, p.stderr[-2000:]
        rows = [json.loads(line) for line in p.stdout.splitlines()]
        assert len(rows) == len(part), p.stderr[-2000:]
        return [subprocess.CompletedProcess(c.module, r["returncode"], r["stdout"], r["stderr"])
                for c, r in zip(part, rows)]

    parts = [cases[i::lanes] for i in range(lanes)]
    with ThreadPoolExecutor(max_workers=lanes) as pool:
        done = list(pool.map(lane, parts))
    by_id = {c.id: r for part, rows in zip(parts, done) for c, r in zip(part, rows)}
    return [by_id[c.id] for c in cases]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return make_files(tmp_path_factory.mktemp("bad_input"))


@pytest.fixture(scope="module")
def results(files):
    """Every case run once in its own process (forked from two warm interpreters: the machine has
    two shared cores). ``test_the_good_dataset_passes_the_same_checks`` and
    ``test_forked_cases_match_fresh_interpreters`` run real ``python`` subprocesses."""
    return dict(zip([c.id for c in CASES], run_cases_forked(CASES, files)))


# ------------------------------------------------------------------------------------------ tests


def test_cases_are_distinct_and_cover_every_entry_module():
    assert len({c.id for c in CASES}) == len(CASES) >= 30
    assert len({(c.module, c.args) for c in CASES}) == len(CASES)
    modules = {c.module for c in CASES}
    # every stage's command (the old alias modules are gone: one name per stage)
    for m in ("dass.space", "dass.data", "dass.teacher", "dass.kd", "dass.database", "dass.predictor", "dass.search", "dass.evaluation", "dass.compat",
              "download/download_dataset.py",
              "download/download_checkpoint.py", "download/download_preprocessed.py"):
        assert m in modules, m


@pytest.mark.slow
@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_error_line_and_exit_2(c: Case, results, files):
    proc = results[c.id]
    where = f"{c.module} {' '.join(c.args)}\nrc={proc.returncode}\nstderr:\n{proc.stderr[-3000:]}"
    assert "Traceback" not in proc.stderr, where
    assert proc.returncode == 2, where
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), where
    for text in c.expect:
        assert text.format(**files) in lines[0], f"{text!r} missing: {where}"
    for path in c.absent:
        assert not Path(path.format(**files)).exists(), f"{path.format(**files)} was created: {where}"


@pytest.mark.slow
def test_forked_cases_match_fresh_interpreters(results, files):
    """The forked runs say what a user's fresh ``python`` says: one case per entry module (the first
    of each) and every script, run again as real subprocesses, give the same exit code and stderr.
    A case that writes nothing (no ``absent`` path) is chosen, so the two runs cannot interfere."""
    sample, seen = [], set()
    for c in CASES:
        if c.module not in seen and not c.absent:
            seen.add(c.module)
            sample.append(c)
    with ThreadPoolExecutor(max_workers=2) as pool:
        fresh = list(pool.map(lambda c: run_case(c, files), sample))
    for c, p in zip(sample, fresh):
        assert (p.returncode, p.stderr) == (results[c.id].returncode, results[c.id].stderr), c.id


@pytest.mark.slow
def test_the_good_dataset_passes_the_same_checks(files):
    """The fixtures are sound: the dataset the bad cases start from validates (5 classes)."""
    proc = run_case(Case("good", "dass.data", ("validate", "glyphs/good", "--root", "{data}"), ()), files)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["num_classes"] == K


# ------------------------------------------------------------------------------------------ loaders
# Structurally malformed files (right format tag, wrong shapes of content) must also give one
# DassError naming the entry, not a TypeError/AttributeError from deep inside: checked in process.


def _edit_task(files, edit):
    d = torch.load(Path(files["db"]) / "dtd.pt", weights_only=True)
    edit(d)
    return d


@pytest.mark.parametrize("edit, message", [
    (lambda d: d.__setitem__("teacher", None), "'teacher' must be a mapping"),
    (lambda d: d.__setitem__("task", ["meta_test"]), "'task' must be a mapping"),
    (lambda d: d["teacher"].__setitem__("best_acc", "high"), "teacher.best_acc must be a number"),
    (lambda d: d["teacher"].__setitem__("onehot", [0.0, 1.0]), "teacher.onehot must be a tensor"),
    (lambda d: d["students"].__setitem__("arch", [{"depths": [1], "widths": [2]}] * len(d["students"]["arch"])),
     "students.arch must be a list"),
])
def test_malformed_task_file_is_one_error(files, edit, message):
    from dass.database.format import validate_task_db
    from dass.errors import DassError
    with pytest.raises(DassError, match=message):
        validate_task_db(_edit_task(files, edit), "task.pt")


@pytest.mark.parametrize("entry, value, message", [
    ("num_classes", "five", "'num_classes' must be an integer"),
    ("metrics", [50.0], "'metrics' must be a mapping"),
])
def test_malformed_teacher_entries_are_one_error(files, tmp_path, entry, value, message):
    from dass.errors import DassError
    from dass.teacher import load_teacher
    ckpt = torch.load(files["teacher"], weights_only=True)
    atomic_torch_save({**ckpt, entry: value}, tmp_path / "t.pt")
    with pytest.raises(DassError, match=message):
        load_teacher(tmp_path / "t.pt")


def test_malformed_predictor_and_candidates_are_one_error(files, tmp_path):
    from dass.errors import DassError
    from dass.predictor.checkpoint import load_predictor
    from dass.search import read_candidates
    d = torch.load(files["predictor"], weights_only=True)
    atomic_torch_save({**d, "target": "raw"}, tmp_path / "p.pt")
    with pytest.raises(DassError, match="'target' must be a mapping"):
        load_predictor(tmp_path / "p.pt")
    archs = [{"depths": [1, 1, 1, 1], "widths": [[2], [4], [4], [8]]}]
    atomic_torch_save({"archs": archs, "teacher": [1.0]}, tmp_path / "c.pt")
    with pytest.raises(DassError, match="'teacher' must be a mapping"):
        read_candidates(tmp_path / "c.pt", TINY)
