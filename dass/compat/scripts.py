"""The original DaSS README's run commands, carried out by this project's stages.

``script/run_meta_train.sh``, ``script/run_search.sh`` and ``script/run_kd.sh`` call this module when
their first argument is made only of digits (the original's ``GPU_NUM``)::

    bash script/run_meta_train.sh GPU        python -m dass.compat.scripts meta_train GPU
    bash script/run_search.sh GPU            python -m dass.compat.scripts search GPU
    bash script/run_kd.sh GPU DATASET        python -m dass.compat.scripts kd GPU DATASET

Such a command means the paper profile and the original's file layout, under the current directory
(the folders the original's download scripts fill)::

    data/<dataset>/{train,test}_{images,labels}.npy       python download/download_dataset.py
    checkpoint/teacher/<ds_key>/model_best.pth.tar       python download/download_checkpoint.py
    preprocessed/{ours,search,net_info}/...              python download/download_preprocessed.py
    exp/database/            the release imported with dass.compat (on first use, again when a
                             release file is newer than its manifest.json)
    exp/meta_train/dass/     the meta-trained predictor (best.pt, last.pt, history.csv, metrics.json)
    exp/search/<dataset>/    one search per meta-test dataset (top.json, scores.csv)
    exp/search/obtained_net_index.yaml   {net_index: {<dataset>: {dass: <net index>}}}, the original's
                             search output: the index into preprocessed/net_info/net_samples.pt
    exp/kd/<dataset>/<arch>-<hash>/seed{1,2,3}/   KD of the searched student, as the original: seeds 1, 2, 3

``GPU`` becomes ``CUDA_VISIBLE_DEVICES`` of the stage processes when ``nvidia-smi`` lists that GPU;
otherwise one warning line, and the stages run on what there is (``device: auto``). Every input is
checked before a stage starts: a missing one ends in one ``error:`` line naming the file and the
command that fetches or makes it (exit 2). The stages run as ``python -m dass.<stage>`` subprocesses
(their own error boundary and logs); extra ``key=value`` settings for them, to shrink the recipes
(tests, a quick look), come from the environment: ``DASS_META_TRAIN_ARGS``, ``DASS_SEARCH_ARGS``,
``DASS_KD_ARGS`` (split like a shell line, appended to the stage's command line).
"""
from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from ..cli import run_main, setup_logging
from ..errors import DassError
from ..io import atomic_write_text, read_json

META_TEST = ("cub", "dtd", "quickdraw", "stanford_cars")  # the original's unseen datasets, in its order
METHOD = "dass"                                           # the original's --proxy_type of its scripts
DATA = Path("data")
CHECKPOINTS = Path("checkpoint/teacher")
PREPROCESSED = Path("preprocessed")
DB = Path("exp/database")
META_DIR = Path("exp/meta_train") / METHOD
SEARCH_DIR = Path("exp/search")
NET_INDEX_FILE = SEARCH_DIR / "obtained_net_index.yaml"
KD_ROOT = Path("exp")
PAPER = {"space": "configs/space/paper.yaml", "predictor": "configs/predictor/paper.yaml",
         "search": "configs/search/paper.yaml", "kd": "configs/kd/paper.yaml"}
ENV_ARGS = {"meta_train": "DASS_META_TRAIN_ARGS", "search": "DASS_SEARCH_ARGS", "kd": "DASS_KD_ARGS"}
SEARCH_OUTPUTS = ("top.json", "scores.csv", "config.yaml", "search.log", "identity.json")

FETCH_DATA = "python download/download_dataset.py --name {ds}"
FETCH_CKPT = "python download/download_checkpoint.py"
FETCH_PRE = "python download/download_preprocessed.py"


def missing(path, command: str, what: str = "") -> DassError:
    """The error of a missing input: the file, what it is, the command that fetches or makes it."""
    return DassError(f"{path} not found{f' ({what})' if what else ''}; {command} fetches or makes it")


# ----------------------------------------------------------------------------------------------
# GPU, stage processes


def visible_gpus() -> int:
    """GPUs ``nvidia-smi -L`` lists (0 without the tool); asked without torch, so that the stage
    processes still see ``CUDA_VISIBLE_DEVICES`` before CUDA starts."""
    tool = shutil.which("nvidia-smi")
    if tool is None:
        return 0
    try:
        out = subprocess.run([tool, "-L"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(1 for line in out.splitlines() if line.startswith("GPU "))


def stage_env(gpu: str) -> dict:
    """The environment of the stage processes: ``CUDA_VISIBLE_DEVICES=gpu`` when that GPU exists,
    else the current one after one warning line."""
    env = dict(os.environ)
    n = visible_gpus()
    if int(gpu) < n:
        env["CUDA_VISIBLE_DEVICES"] = gpu
    else:
        there = f"{n} GPU(s)" if n else "the CPU"
        print(f"warning: GPU {gpu} not found ({n} visible); running on {there}", file=sys.stderr)
    return env


def extra_args(command: str) -> list[str]:
    value = os.environ.get(ENV_ARGS[command], "")
    try:
        return shlex.split(value)
    except ValueError as e:
        raise DassError(f"${ENV_ARGS[command]}: {e}") from None


def run_stage(module: str, args: list[str], env: dict) -> None:
    """``python -m <module> args``; a failure (its own ``error:`` line already printed) ends this
    command with the stage's exit code."""
    rc = subprocess.run([sys.executable, "-m", module, *args], env=env).returncode
    if rc:
        sys.exit(rc)


# ----------------------------------------------------------------------------------------------
# The imported release


def release_files() -> list[Path]:
    files = [p for p in PREPROCESSED.rglob("*.pt") if p.is_file()] if PREPROCESSED.is_dir() else []
    return files + sorted(CHECKPOINTS.glob("*/model_best.pth.tar"))


def ensure_database() -> Path:
    """Import the release under the current directory into ``exp/database`` unless an import newer
    than every release file is there; returns the manifest's path."""
    manifest = DB / "manifest.json"
    files = release_files()
    if manifest.is_file() and all(p.stat().st_mtime <= manifest.stat().st_mtime for p in files):
        return manifest
    from ..space import load_space  # torch: only once an import is due
    from .importer import import_release  # torch: only once an import is due
    print(f"importing the original release ({len(files)} files) into {DB}", file=sys.stderr)
    import_release(".", DB, load_space(PAPER["space"]))
    return manifest


def need_database_split(mode: str, first: str) -> None:
    """At least one database file of split ``mode``; the error names ``first``, the release's first."""
    folder = PREPROCESSED / "ours" / mode
    if not any(folder.glob("*-logs_noise_actmap.pt")):
        raise missing(folder / f"{first}-logs_noise_actmap.pt", FETCH_PRE, f"the original's {mode} database")


# ----------------------------------------------------------------------------------------------
# The search output of the original


def read_net_index(path=NET_INDEX_FILE) -> dict:
    """``{net_index: {<dataset>: {<method>: index}}}`` as a plain dict (empty when absent)."""
    path = Path(path)
    if not path.is_file():
        return {"net_index": {}}
    try:
        d = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise DassError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(d, dict) or not isinstance(d.get("net_index"), dict):
        raise DassError(f"{path}: expected a mapping with 'net_index'")
    return d


def write_net_index(dataset: str, method: str, index: int, path=NET_INDEX_FILE) -> dict:
    """Record ``index`` under ``net_index.<dataset>.<method>`` of the original's search output,
    keeping every other entry (the original rewrites the file the same way); atomic."""
    d = read_net_index(path)
    entry = d["net_index"].setdefault(dataset, {})
    if not isinstance(entry, dict):
        raise DassError(f"{path}: net_index.{dataset} must be a mapping")
    entry[method] = int(index)
    atomic_write_text(path, yaml.safe_dump(d, sort_keys=True))
    return d


def top_net_index(top_json, candidates) -> int:
    """The net index (into ``net_samples.pt``) of the best candidate of a search over an imported pool."""
    from ..space import Arch  # torch-free, kept beside the torch import below
    from ..space.arch import read_candidates_file  # torch: reads the .pt candidates file
    best = Arch.from_dict(read_json(top_json)["top"][0]["arch"])
    archs, d = read_candidates_file(candidates)
    for pos, a in enumerate(archs):
        if Arch.from_dict(a) == best:
            return int(d["net_index"][pos]) if "net_index" in d else pos
    raise DassError(f"{top_json}: its best architecture is not in {candidates}")


# ----------------------------------------------------------------------------------------------
# The three commands


def meta_train(gpu: str) -> None:
    need_database_split("meta_train", "tiny_imagenet-0")
    need_database_split("meta_valid", "tiny_imagenet-8")
    env = stage_env(gpu)
    ensure_database()
    run_stage("dass.predictor", ["--config", PAPER["predictor"], f"db={DB}", f"run_dir={META_DIR}",
                                 f"data_root={DATA}", *extra_args("meta_train")], env)
    print(f"meta-trained predictor: {META_DIR / 'best.pt'}")


def search(gpu: str) -> None:
    for ds in META_TEST:
        if not (PREPROCESSED / "search" / f"{ds}.pt").is_file():
            raise missing(PREPROCESSED / "search" / f"{ds}.pt", FETCH_PRE, "the original's search pool")
    if not (PREPROCESSED / "net_info" / "net_samples.pt").is_file():
        raise missing(PREPROCESSED / "net_info" / "net_samples.pt", FETCH_PRE, "the architectures of the pools")
    predictor = META_DIR / "best.pt"
    if not predictor.is_file():
        released = META_DIR / "checkpoint" / "model_best.pth.tar"
        note = (f"; {released} (the original's predictor) cannot be read here: its architecture input is the "
                f"release's unpublished 181-d encoding" if released.is_file() else "")
        raise DassError(f"{predictor} not found (the meta-trained predictor){note}; "
                        f"bash script/run_meta_train.sh {gpu} makes it")
    for ds in META_TEST:
        if not (CHECKPOINTS / ds / "model_best.pth.tar").is_file():
            raise missing(CHECKPOINTS / ds / "model_best.pth.tar", FETCH_CKPT, f"the teacher of {ds}")
    env = stage_env(gpu)
    ensure_database()
    for ds in META_TEST:
        run_dir = SEARCH_DIR / ds
        for name in SEARCH_OUTPUTS:  # the original's search overwrites its result: so does this one
            (run_dir / name).unlink(missing_ok=True)
        candidates = DB / "search" / f"{ds}.pt"
        run_stage("dass.search", ["--config", PAPER["search"], f"teacher={DB / 'teachers' / ds / 'teacher.pt'}",
                                  f"predictor={predictor}", f"candidates={candidates}", f"run_dir={run_dir}",
                                  f"dataset={ds}", f"data_root={DATA}", *extra_args("search")], env)
        index = top_net_index(run_dir / "top.json", candidates)
        write_net_index(ds, METHOD, index)
        print(f"Search Result ==> {ds} | {METHOD} | {index}")
    print(f"wrote {NET_INDEX_FILE}")


def kd(gpu: str, ds: str) -> None:
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", ds):
        raise DassError(f"dataset name {ds!r}: expected one of {', '.join(META_TEST)} (or another folder of data/)")
    for split in ("train", "test"):
        for role in ("images", "labels"):
            f = DATA / ds / f"{split}_{role}.npy"
            if not f.is_file():
                raise missing(f, FETCH_DATA.format(ds=ds), f"the images of {ds}")
    teacher = CHECKPOINTS / ds / "model_best.pth.tar"
    if not teacher.is_file():
        raise missing(teacher, FETCH_CKPT, f"the teacher of {ds}")
    picked = read_net_index()["net_index"].get(ds) or {}
    if METHOD not in picked:
        what = f"no searched student of {ds}" if NET_INDEX_FILE.is_file() else "the searched students"
        raise missing(NET_INDEX_FILE if not NET_INDEX_FILE.is_file() else f"{NET_INDEX_FILE}: net_index.{ds}.{METHOD}",
                      f"bash script/run_search.sh {gpu}", what)
    samples_pt = PREPROCESSED / "net_info" / "net_samples.pt"
    if not samples_pt.is_file():
        raise missing(samples_pt, FETCH_PRE, "the architectures the net indices name")
    env = stage_env(gpu)
    ensure_database()
    run_stage("dass.kd", ["--config", PAPER["kd"], f"teacher={teacher}", f"space={PAPER['space']}", f"dataset={ds}",
                          f"data_root={DATA}", f"runs_root={KD_ROOT}",
                          f"candidates_file={DB / 'net_info' / 'net_samples.json'}", f"index={picked[METHOD]}",
                          "seeds=[1,2,3]", *extra_args("kd")], env)


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m dass.compat.scripts",
                                description="The original DaSS README's run commands (docs/COMPAT.md).")
    p.add_argument("--debug", action="store_true", help="show full tracebacks")
    sub = p.add_subparsers(dest="command", required=True)
    for name, text in (("meta_train", "script/run_meta_train.sh GPU_NUM"), ("search", "script/run_search.sh GPU_NUM"),
                       ("kd", "script/run_kd.sh GPU_NUM DATASET_NAME")):
        s = sub.add_parser(name, help=text)
        s.add_argument("gpu", metavar="GPU_NUM", help="GPU index (CUDA_VISIBLE_DEVICES)")
        if name == "kd":
            s.add_argument("dataset", metavar="DATASET_NAME", help=f"one of {', '.join(META_TEST)}")
    return p


def main(args) -> int:
    setup_logging()
    if not args.gpu.isdigit():
        raise DassError(f"GPU_NUM must be a GPU index (digits), got {args.gpu!r}")
    if args.command == "kd":
        kd(args.gpu, args.dataset)
    else:
        {"meta_train": meta_train, "search": search}[args.command](args.gpu)
    return 0


if __name__ == "__main__":
    run_main(main, sys.argv[1:], make_parser())
