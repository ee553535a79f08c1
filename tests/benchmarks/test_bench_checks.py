"""The benchmarks' correctness checks compare in deterministic mode and fail on a wrong step
(in process, CPU, tiny sizes; the benchmarks themselves run in tests/benchmarks/test_bench.py)."""
import dataclasses
import sys
from pathlib import Path

import pytest
import torch

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import bench_kd  # noqa: E402
from bench_data import load_or_synthesise, quick_subset  # noqa: E402
from common import deterministic_kernels  # noqa: E402

from dass.space import load_space  # noqa: E402


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    space = load_space(bench_kd.ROOT / "configs" / "space" / "cpu.yaml")
    train = quick_subset(load_or_synthesise("glyphs/latin", str(tmp_path_factory.mktemp("none")), "train"), 128)
    recipe = bench_kd.read_recipe("cpu", epochs=1, batch_size=32)
    return bench_kd.middle_arch(space), space, bench_kd.random_teacher(space, train.num_classes), train, recipe


def test_deterministic_kernels_sets_then_restores():
    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    before = (cudnn.deterministic, cudnn.benchmark, cudnn.allow_tf32, matmul.allow_tf32)
    cudnn.benchmark = True  # as the trainer leaves it on CUDA (precision_for)
    try:
        with deterministic_kernels():
            assert (cudnn.deterministic, cudnn.benchmark, cudnn.allow_tf32, matmul.allow_tf32) == (True, False, False, False)
        assert cudnn.benchmark is True and cudnn.deterministic == before[0]
    finally:
        cudnn.benchmark = before[1]


def test_kd_step_check_passes_on_the_right_step(tiny):
    worst = bench_kd.check_same_step(*tiny, torch.device("cpu"), 3)
    assert worst <= bench_kd.TOLERANCE


def _lr_a_thousandth_high(student, teacher, opt, sched, x, y, recipe):
    """The schedule's learning rate x 1.001 (LambdaLR sets it afresh at every step). Measured: weights
    6.5e-2 apart (relative) after 3 steps, the size of cuDNN's non-deterministic spread on an H200
    (6.4e-2), which is why the check needs deterministic kernels."""
    for group in opt.param_groups:
        group["lr"] *= 1.001
    return bench_kd.reference_step(student, teacher, opt, sched, x, y, recipe)


def _temperature_one(student, teacher, opt, sched, x, y, recipe):
    return bench_kd.reference_step(student, teacher, opt, sched, x, y, dataclasses.replace(recipe, temperature=1.0))


@pytest.mark.parametrize("wrong", [_lr_a_thousandth_high, _temperature_one])
def test_kd_step_check_fails_on_a_wrong_step(tiny, wrong, capsys):
    with pytest.raises(SystemExit) as e:
        bench_kd.check_same_step(*tiny, torch.device("cpu"), 3, step=wrong)
    assert e.value.code == 1 and "FAILED" in capsys.readouterr().out
