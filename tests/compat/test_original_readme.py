"""Every command of the original DaSS README, typed as it writes them, in a fresh copy of the project
(docs/COMPAT.md): the downloads come from a loopback mirror (``DASS_MIRROR``) serving tiny files in
the original's structures (:mod:`assets.original_release`); the recipes are shrunk through the
documented ``DASS_*_ARGS`` variables, so the commands stay the original's. Outputs are checked
against the fixture's own facts (which net each pool entry is), not against what the code wrote.

Without the mirror and the downloads, each run command ends in one ``error:`` line naming the missing
file and the command that fetches or makes it (the fast tests below)."""
from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from assets.original_release import CLASSES, META_TEST, N_NETS, TASKS, release_files
from data.test_download import Mirror, make_handler

REPO = Path(__file__).resolve().parents[2]
PROJECT_PARTS = ("dass", "script", "download", "configs", "setup.py", "README.md")

# the original README, command by command (its search line is commented out there: "# bash ...")
DOWNLOADS = ["python download/download_dataset.py --name all",
             "python download/download_checkpoint.py",
             "python download/download_preprocessed.py",
             "rm preprocessed.zip"]
RUNS = ["bash script/run_meta_train.sh 0",
        "bash script/run_search.sh 0",
        *[f"bash script/run_kd.sh 0 {ds}" for ds in META_TEST]]
# after the downloads, before meta-training: each names the step that is missing
EARLY = {"bash script/run_search.sh 0 # early": ["exp/meta_train/dass/best.pt", "bash script/run_meta_train.sh 0"],
         "bash script/run_kd.sh 0 cub # early": ["exp/search/obtained_net_index.yaml", "bash script/run_search.sh 0"]}
SHRINK = {"DASS_META_TRAIN_ARGS": "episodes=2 eval_every=1 checkpoint_every=1 n_query=4 meta_batch=0 "
                                  "progress=false device=cpu",
          "DASS_SEARCH_ARGS": "progress=false device=cpu",
          "DASS_KD_ARGS": "space={space8} kd_recipe.epochs=1 kd_recipe.eval_every=1 kd_recipe.batch_size=40 "
                          "progress=false device=cpu"}


def fresh_copy(dest: Path) -> Path:
    """The project's code, scripts and configs (not its shipped assets) in ``dest``; a ``python`` on
    ``dest/bin`` that is this interpreter."""
    for part in PROJECT_PARTS:
        src = REPO / part
        if src.is_dir():
            shutil.copytree(src, dest / part, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(src, dest / part)
    (dest / "bin").mkdir()
    (dest / "bin" / "python").symlink_to(sys.executable)
    return dest


def project_env(root: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DASS_")}
    env.update(PATH=f"{root / 'bin'}{os.pathsep}{env.get('PATH', '')}", PYTHON=sys.executable,
               PYTHONPATH=str(root), OMP_NUM_THREADS="1", **extra)
    return env


def sh(command: str, root: Path, env: dict, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", command], cwd=root, env=env, capture_output=True, text=True,
                          timeout=timeout)


def error_lines(proc) -> list[str]:
    return [line for line in proc.stderr.splitlines() if line.startswith("error:")]


# ----------------------------------------------------------------------------------------------
# No network, nothing downloaded: one error line naming the missing file and its command


@pytest.fixture(scope="module")
def bare(tmp_path_factory) -> Path:
    return fresh_copy(tmp_path_factory.mktemp("fresh") / "DaSS")


@pytest.mark.parametrize("command, names", [
    ("bash script/run_kd.sh 0 cub", ["data/cub/train_images.npy", "python download/download_dataset.py --name cub"]),
    ("bash script/run_search.sh 0", ["preprocessed/search/cub.pt", "python download/download_preprocessed.py"]),
    ("bash script/run_meta_train.sh 0", ["preprocessed/ours/meta_train/", "python download/download_preprocessed.py"]),
])
def test_fresh_copy_run_command_names_missing_file_and_its_command(bare, command, names):
    proc = sh(command, bare, project_env(bare), timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for name in names:
        assert name in lines[0]
    for word in ("override", "key", "config"):
        assert word not in lines[0]
    assert not (bare / "exp").exists()


def test_original_forms_refuse_a_wrong_argument_count(bare):
    for command, usage in (("bash script/run_kd.sh 0", "run_kd.sh GPU_NUM DATASET_NAME"),
                           ("bash script/run_search.sh 0 cub", "run_search.sh GPU_NUM")):
        proc = sh(command, bare, project_env(bare), timeout=60)
        assert proc.returncode == 2 and usage in proc.stderr


@pytest.mark.slow
def test_project_forms_unchanged(bare):
    """A first argument that is not all digits is still the project's own form: a database folder
    for run_meta_train.sh (see the next test), a dataset for the others."""
    proc = sh("bash script/run_meta_train.sh no_such_db episodes=1", bare, project_env(bare), timeout=120)
    assert proc.returncode == 2 and "no_such_db" in proc.stderr and "dass.compat" not in proc.stderr


@pytest.mark.slow
def test_project_form_of_run_meta_train_still_trains(bare, synthetic_db, tmp_path):
    run = tmp_path / "meta"
    proc = sh(f"bash script/run_meta_train.sh {synthetic_db} episodes=2 eval_every=1 n_query=8 model.map_hidden=16 "
              f"model.map_out=16 proxies=[] progress=false run_dir={run}", bare, project_env(bare), timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (run / "best.pt").is_file() and "warning: GPU" not in proc.stderr
    assert not (bare / "exp").exists()


def test_failed_download_names_url_and_default_folder_leaves_nothing(bare, tmp_path):
    cwd = tmp_path / "user"
    cwd.mkdir()
    proc = subprocess.run([sys.executable, str(bare / "download" / "download_checkpoint.py"), "--base-url",
                           "http://127.0.0.1:9", "--retries", "0"], cwd=cwd, env=project_env(bare),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: download failed: "), proc.stderr
    assert "http://127.0.0.1:9/teacher_checkpoint/tiny_imagenet-0/model_best.pth.tar" in lines[0]
    assert "default folder checkpoint/teacher/" in lines[0]
    assert list(cwd.rglob("*")) == []


def test_net_index_file_keeps_other_entries(tmp_path):
    from dass.compat.scripts import write_net_index
    path = tmp_path / "exp" / "search" / "obtained_net_index.yaml"
    write_net_index("cub", "dass", 3, path)
    write_net_index("dtd", "dass", 5, path)
    write_net_index("cub", "flops", 1, path)
    write_net_index("cub", "dass", 7, path)
    assert yaml.safe_load(path.read_text()) == {"net_index": {"cub": {"dass": 7, "flops": 1}, "dtd": {"dass": 5}}}


@pytest.mark.parametrize("listed, gpu, visible, warning", [
    (0, "0", None, "warning: GPU 0 not found (0 visible); running on the CPU"),
    (2, "1", "1", None),
    (2, "3", None, "warning: GPU 3 not found (2 visible); running on 2 GPU(s)"),
])
def test_gpu_argument(tmp_path, monkeypatch, capsys, listed, gpu, visible, warning):
    from dass.compat.scripts import stage_env
    if listed:  # an nvidia-smi that lists `listed` GPUs
        tool = tmp_path / "nvidia-smi"
        tool.write_text("#!/bin/sh\n" + "".join(f"echo 'GPU {i}: NVIDIA H200 (UUID: GPU-{i})'\n"
                                                for i in range(listed)))
        tool.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    env = stage_env(gpu)
    assert env.get("CUDA_VISIBLE_DEVICES") == visible
    err = capsys.readouterr().err.splitlines()
    assert err == ([warning] if warning else [])


# ----------------------------------------------------------------------------------------------
# The whole README against the loopback mirror


@pytest.fixture(scope="module")
def readme(tmp_path_factory):
    """Run every command of the original README in order in a fresh copy; returns
    ``(root, {command: CompletedProcess}, facts, served files, notes)``."""
    root = fresh_copy(tmp_path_factory.mktemp("readme") / "DaSS")
    space8 = root.parent / "space8.yaml"
    space8.write_text((REPO / "configs/space/paper.yaml").read_text().replace("image_size: 64", "image_size: 8"))
    files, facts = release_files()
    mirror = Mirror()
    mirror.files = files
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(mirror))
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    env = project_env(root, DASS_MIRROR=f"http://127.0.0.1:{httpd.server_address[1]}",
                      **{k: v.format(space8=space8) for k, v in SHRINK.items()})
    results, notes = {}, {}
    try:
        for command in [*DOWNLOADS, *EARLY, *RUNS]:
            t0 = time.perf_counter()
            results[command] = sh(command, root, env)
            if command in EARLY:  # expected to stop: checked by test_next_step_named
                continue
            notes[command] = {"seconds": time.perf_counter() - t0,
                              "zip_there": (root / "preprocessed.zip").is_file()}
            if results[command].returncode:
                break
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()
    return root, results, facts, files, notes


def finished(readme, command):
    root, results, *_ = readme
    assert command in results, f"not reached: an earlier command failed ({list(results)[-1]})"
    proc = results[command]
    assert proc.returncode == 0, f"{command}\n{proc.stderr[-3000:]}"
    assert "Traceback" not in proc.stderr
    return root, proc


@pytest.mark.slow
def test_download_dataset_all(readme):
    root, _ = finished(readme, DOWNLOADS[0])
    files = readme[3]
    for name in CLASSES:
        served = {p.split(f"/dataset/{name}/", 1)[1]: b for p, b in files.items() if p.startswith(f"/dataset/{name}/")}
        assert served
        for rel, data in served.items():
            assert (root / "data" / name / rel).read_bytes() == data, rel


@pytest.mark.slow
def test_download_checkpoint(readme):
    root, _ = finished(readme, DOWNLOADS[1])
    keys = [f"tiny_imagenet-{k}" for k in range(10)] + list(META_TEST)
    for key in keys:
        got = root / "checkpoint" / "teacher" / key / "model_best.pth.tar"
        assert got.read_bytes() == readme[3][f"/teacher_checkpoint/{key}/model_best.pth.tar"]


@pytest.mark.slow
def test_download_preprocessed_then_rm_zip(readme):
    root, _ = finished(readme, DOWNLOADS[2])
    assert readme[4][DOWNLOADS[2]]["zip_there"]  # where the original's next step removes it
    finished(readme, DOWNLOADS[3])
    assert not (root / "preprocessed.zip").exists()
    for member in readme[2]["members"]:
        assert (root / member).is_file(), member


@pytest.mark.slow
@pytest.mark.parametrize("command", EARLY)
def test_next_step_named(readme, command):
    proc = readme[1][command]
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.strip().splitlines() if not line.startswith("warning:")]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for name in EARLY[command]:
        assert name in lines[0]


@pytest.mark.slow
def test_run_meta_train(readme):
    root, proc = finished(readme, RUNS[0])
    if shutil.which("nvidia-smi") is None:
        assert [line for line in proc.stderr.splitlines() if line.startswith("warning:")] == \
            ["warning: GPU 0 not found (0 visible); running on the CPU"]
    manifest = json.loads((root / "exp/database/manifest.json").read_text())
    assert {t["key"]: t["split"] for t in manifest["tasks"]} == TASKS
    assert (root / "exp/meta_train/dass/best.pt").is_file()
    history = list(csv.DictReader(open(root / "exp/meta_train/dass/history.csv")))
    assert len(history) >= 2  # the two episodes of DASS_META_TRAIN_ARGS


@pytest.mark.slow
def test_run_search_writes_the_original_output(readme):
    root, proc = finished(readme, RUNS[1])
    facts = readme[2]
    out = yaml.safe_load((root / "exp/search/obtained_net_index.yaml").read_text())
    assert set(out) == {"net_index"} and set(out["net_index"]) == set(META_TEST)
    for ds in META_TEST:
        index = out["net_index"][ds]["dass"]
        assert isinstance(index, int) and index in facts["pool_index"][ds]
        # the index names, in net_samples.pt, the architecture the search ranked first
        best = json.loads((root / "exp/search" / ds / "top.json").read_text())["top"][0]["arch"]
        net = facts["nets"][index]
        assert best == {"depths": list(net.depths), "widths": [list(w) for w in net.widths]}
        assert f"Search Result ==> {ds} | dass | {index}" in proc.stdout


@pytest.mark.slow
@pytest.mark.parametrize("ds", META_TEST)
def test_run_kd(readme, ds):
    root, _ = finished(readme, f"bash script/run_kd.sh 0 {ds}")
    index = yaml.safe_load((root / "exp/search/obtained_net_index.yaml").read_text())["net_index"][ds]["dass"]
    (run,) = (root / "exp/kd" / ds).iterdir()
    rows = list(csv.DictReader(open(run / "results.csv")))
    assert [int(r["seed"]) for r in rows] == [1, 2, 3]
    net = readme[2]["nets"][index]
    assert all(r["arch"] == str(net) for r in rows)
    for seed in (1, 2, 3):
        m = json.loads((run / f"seed{seed}" / "metrics.json").read_text())
        assert 0 <= m["best_acc"] <= 100
