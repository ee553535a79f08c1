"""The benchmarks' --quick modes run, pass their own correctness checks and print their JSON line.

Each benchmark runs in a process of its own, forked from one warm interpreter, on an empty data root
(so on its synthetic 40-class dataset of 2,160 + 720 images of 32 x 32, of which quick mode keeps
256 + 128) with one torch thread. No timing is asserted; the counts and costs are checked against
hand computations.
"""
import json
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # each benchmark runs as a subprocess

BENCH = Path(__file__).resolve().parents[2] / "bench"
QUICK_TRAIN, BATCH, SYNTHETIC_CLASSES = 256, 64, 40


SCRIPTS = ["bench_data.py", "bench_kd.py", "bench_lockstep.py", "bench_db.py", "profile_step.py",
           "latency_model.py"] + (["bench_search.py"] if (BENCH / "bench_search.py").is_file() else [])
NO_DATA = ("bench_search.py", "latency_model.py")   # take no --data-root


@pytest.fixture(scope="module")
def quick_runs(tmp_path_factory, forked) -> dict[str, subprocess.CompletedProcess]:
    """Every benchmark's ``--quick``, each in its own process forked from one warm interpreter
    (``forked`` of tests/conftest.py: torch, the package and ``torch._dynamo``, which the first optimizer
    imports, are imported once, not once per benchmark: the imports were most of their time)."""
    empty_root = tmp_path_factory.mktemp("no_data")
    return {script: forked([BENCH / script, "--quick", "--threads", "1",
                            *([] if script in NO_DATA else ["--data-root", empty_root])], cwd=BENCH.parent)
            for script in SCRIPTS}


def finish(quick_runs: dict, script: str) -> tuple[str, dict | None]:
    """(stdout, the JSON line's object or None) of ``script --quick``; fails the test on a non-zero exit."""
    proc = quick_runs[script]
    stdout, stderr, rc = proc.stdout, proc.stderr, proc.returncode
    assert rc == 0, f"{script} exited {rc}:\n{stdout[-2000:]}\n{stderr[-2000:]}"
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    return stdout, json.loads(lines[-1]) if lines else None


def check_common(record: dict, bench: str) -> None:
    assert record["bench"] == bench and record["mode"] == "quick"
    assert {"cpu", "cores", "torch", "threads", "device", "date"} <= set(record["machine"])
    assert record["machine"]["threads"] == 1
    assert "met" in record and "target" in record


def test_bench_data_quick(quick_runs):
    out, record = finish(quick_runs, "bench_data.py")
    check_common(record, "data")
    assert record["train_images"] == QUICK_TRAIN and record["batch_size"] == BATCH
    # native 32 px: bitwise equal; resized to 16 px: at most one grey level = 2/255 after normalising by 0.5
    assert record["eval_max_abs_diff"]["32"] == 0.0
    assert record["eval_max_abs_diff"]["16"] <= 2 / 255 + 1e-6
    (result,) = record["results"]
    assert result["image_size"] == 16
    assert result["images_per_epoch"] == (QUICK_TRAIN // BATCH) * BATCH == 256
    assert set(result["images_per_s"]) == {"DeviceLoader", "PIL w0", "PIL w2"}
    assert all(v > 0 for v in result["images_per_s"].values())
    assert out.count("check:") == 3 and "FAILED" not in out


def test_bench_kd_quick(quick_runs):
    _, record = finish(quick_runs, "bench_kd.py")
    check_common(record, "kd")
    (result,) = record["results"]
    assert result["profile"] == "cpu" and result["image_size"] == 16
    assert result["num_classes"] == SYNTHETIC_CLASSES
    assert result["steps"] == QUICK_TRAIN // BATCH == 4          # one epoch of 256 images at batch 64
    assert result["check_max_rel_diff"] <= 1e-4
    # hand count, 16 px, stem 3->8 then stages at 16/8/4/2 px, classifier 48 (or 64) x 40:
    # student 6-6|12-12|24-24|48-48: 55,296 + 359,424 + 3 x 290,304 + 1,920
    # teacher 8x3|16x3|32x3|64x3:    55,296 + 884,736 + 3 x 811,008 + 2,560
    assert result["student_macs"] == 1_287_552
    assert result["teacher_macs"] == 3_375_616
    assert result["flops_per_image"] == 6 * 1_287_552 + 2 * 3_375_616
    assert set(result["images_per_s"]) == {"trainer", "reference"}
    assert result["ratio"] == pytest.approx(result["images_per_s"]["trainer"] / result["images_per_s"]["reference"])


def test_bench_lockstep_quick(quick_runs):
    _, record = finish(quick_runs, "bench_lockstep.py")
    check_common(record, "lockstep")
    assert record["k"] == 4 and len(record["archs"]) == len(set(record["archs"])) == 4
    assert record["identical"] is True
    seq, lock = record["results"]["sequential"], record["results"]["lockstep"]
    assert len(seq) == len(lock) == 4 and seq == lock
    for name, seconds in record["seconds"].items():
        assert record["students_per_hour"][name] == pytest.approx(4 * 3600 / seconds[0])


def test_bench_db_quick(quick_runs):
    _, record = finish(quick_runs, "bench_db.py")
    check_common(record, "db")
    # two synthetic tasks of 5 students each, one epoch of 64 images at batch 16, one worker
    assert record["students"] == 10 and len(record["results"]) == 10
    assert record["tasks"] == ["glyphs-synthetic_a", "glyphs-synthetic_b"]
    assert record["workers"] == 1 and record["epochs"] == 1 and record["batch_size"] == 16
    assert record["identical"] is True
    for r in record["results"].values():  # top-1 over the 32 test images: a whole number of them
        assert 0 <= r["best_acc"] <= 100 and (r["best_acc"] * 32 / 100) == pytest.approx(round(r["best_acc"] * 32 / 100))
    for name, seconds in record["seconds"].items():
        assert record["students_per_hour"][name] == pytest.approx(10 * 3600 / seconds[0])
    assert record["ratio"] == pytest.approx(record["students_per_hour"]["new"] / record["students_per_hour"]["old"])


def test_profile_step_quick(quick_runs):
    _, record = finish(quick_runs, "profile_step.py")
    assert record["bench"] == "profile_step" and record["machine"]["threads"] == 1
    assert len(record["students"]) == 2 and record["steps"] == 2
    assert sum(record["shares"].values()) == pytest.approx(1.0)
    assert record["shares"]["conv forward"] > 0 and record["shares"]["conv backward"] > 0
    assert record["channels_last_ratio"] == pytest.approx(record["step_ms"]["NCHW"] / record["step_ms"]["channels_last"])


@pytest.mark.skipif(not (BENCH / "bench_search.py").is_file(), reason="bench/bench_search.py not present")
def test_bench_search_quick(quick_runs):
    out, record = finish(quick_runs, "bench_search.py")
    assert "candidates/s" in out
    check_common(record, "search")
    assert record["candidates"] == 1000
    if record["default_predictor_s"] is not None:  # the glyph data is there
        assert record["ratio"] == pytest.approx(record["reference_s"] / record["default_predictor_s"], rel=0.01)
        assert "give the same scores and picks: ok" in out


def test_latency_model_quick(quick_runs):
    out, record = finish(quick_runs, "latency_model.py")
    check_common(record, "latency_model")
    assert [(r["profile"], r["model"], r["students"]) for r in record["rows"]] == [("cpu", "lut", 8),
                                                                                  ("cpu", "regression", 8)]
    # cpu space: the stem, stage 1's 5 x 5 stride-1 blocks (its first block reads the stem's 8 channels,
    # one of stage 1's widths), 5 x 5 first and 5 x 5 further blocks in each of stages 2-4, 5 heads
    assert record["rows"][0]["table_entries"] == 1 + 25 + 3 * 50 + 5
    assert "finite Spearman and MAPE: ok" in out


def test_predictor_designs_tabulates_finished_seeds_on_the_database_as_it_is_now(synthetic_db, tmp_path, forked):
    """bench/predictor_designs.py: runs seed-major, tabulates each design over its finished seeds, and
    with --table-only measures finished runs on another database (here: the same tasks plus one
    meta-test task more, as when the last meta-test tasks land after the runs)."""
    import shutil
    out = tmp_path / "designs"
    fast = ["--extra", "episodes=4", "eval_every=2", "model.map_hidden=16", "model.map_out=32", "n_query=10"]
    cmd = [BENCH / "predictor_designs.py", "--db", synthetic_db, "--out", out,    # forked: conftest.py
           "--designs", "prior", "A (KD-unaware)", "--seeds", "0", "--jobs", "2", *fast]
    done = forked(cmd, cwd=BENCH.parent)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    rows = {r["design"]: r for r in json.loads((out / "designs.json").read_text())}
    assert rows["prior"]["seeds"] == [0] and rows["A (KD-unaware)"]["seeds"] == [0]
    # the table's meta-valid number is the run's own (same model, same tasks)
    own = json.loads((out / "prior" / "seed0" / "metrics.json").read_text())
    assert rows["prior"]["meta_valid_spearman"][0] == pytest.approx(own["best_valid_spearman"], abs=1e-6)
    # a bigger database: one more meta-test task (a copy of one under another key)
    bigger = tmp_path / "bigger"
    shutil.copytree(synthetic_db, bigger)
    import torch
    t = torch.load(bigger / "synth-7.pt", weights_only=True)
    t["task"]["key"] = "synth-8"
    torch.save(t, bigger / "synth-8.pt")
    again = forked([*cmd[:2], bigger, *cmd[3:], "--table-only"], cwd=BENCH.parent)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    assert "3 meta-test tasks" in again.stdout
    rows = {r["design"]: r for r in json.loads((out / "designs.json").read_text())}
    per_task = {k: v["spearman"] for k, v in own["meta_test"].items()}
    assert set(per_task) == {"synth-6", "synth-7"}
    want = (per_task["synth-6"] + 2 * per_task["synth-7"]) / 3      # synth-8 ranks as synth-7 does
    assert rows["prior"]["meta_test_spearman"][0] == pytest.approx(want, abs=1e-6)
    assert not (out / "prior" / "seed1").exists()
