"""``bash script/gpu_check.sh`` in its dry mode (what it does on a machine without a GPU): exit code
0, the CPU-side parts at tiny sizes, the JSON record with every field issue 31 names."""
import json
import os
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # ~26 s on 2 loaded cores (subprocesses: search, KD, the builder)

REPO = Path(__file__).resolve().parents[2]


def test_gpu_check_dry_mode(tmp_path):
    data = REPO / "data"  # the worktree's glyph data when there (the check skips what is present)
    root = data if (data / "glyphs" / "hebrew").is_dir() else tmp_path / "data"
    out = tmp_path / "check.json"
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1", "DASS_COMMIT": "abc123"}
    p = subprocess.run(["bash", str(REPO / "script/gpu_check.sh"), "--data-root", str(root), "--out", str(out),
                        "--work-root", str(tmp_path), "--workers", "2"],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert "no CUDA GPU on this machine: dry mode" in p.stdout
    rec = json.loads(out.read_text())
    assert rec["mode"] == "dry" and rec["commit"] == "abc123" and rec["device"].startswith("cpu")
    assert len(rec["date"]) == 10 and rec["date"][4] == "-"
    assert {k for k, v in rec["parts"].items() if v["status"] == "ok"} == {"data", "search", "kd", "throughput", "labels"}
    assert {k for k, v in rec["parts"].items() if v["status"].startswith("skipped")} == {"tests", "evaluation", "benchmarks"}
    assert rec["tests"] is None and rec["search_10k_s"] is None and rec["search_10k_s_cpu"] > 0
    assert [(r["profile"], r["k"]) for r in rec["kd"]] == [("paper", 1), ("paper", 8), ("cpu", 1), ("cpu", 8)]
    for r in rec["kd"]:  # 8 images at batch 8: one step of K students
        assert r["steps"] == 1 and r["batch_size"] == 8 and r["gpu_busy"] is None
        assert r["student_images_per_s"] > 0
    paper8 = rec["kd"][1]["student_images_per_s"]
    assert rec["db_students_per_gpu_hour_paper"] == paper8 * 3600 / (50 * 2160)
    assert rec["labels"]["students"] == 4 and rec["labels"]["epochs"] == 1
    assert -1 <= rec["labels_gpu_vs_cpu_spearman"] <= 1 and -1 <= rec["labels_cpu_seed_vs_seed_spearman"] <= 1
    assert "| metric |" in p.stdout and "kd paper K=8" in p.stdout
