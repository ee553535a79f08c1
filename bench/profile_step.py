"""Where a KD student's training step spends its time on the CPU, and what channels_last would change.

    python bench/profile_step.py --threads 1 --data-root /work/data      # cpu profile, glyphs/hebrew
    python bench/profile_step.py --quick                                   # 2 students, 2 steps, synthetic

Students: ``--students`` architectures the database builder samples for the task (configs/database/cpu.yaml
sampler); teacher: the shipped ``assets/cpu/teachers/<task>/teacher.pt`` when present, else a random
one (and synthetic noise data, 1,024 + 256 images, 40 classes, when the task's data is missing); recipe: configs/database/cpu.yaml's KD recipe. The teacher's logits are computed beforehand (as the
teacher-logit cache serves them), so the profiled step is the student's alone.

Prints (1) the share of ``torch.profiler`` self CPU time per kind of operator over ``--steps`` steps
of every student, with the teacher's forward time per batch next to the mean student step, and (2)
the median student step in NCHW and in channels_last (alternating, same batches) and whether the
weights after those steps are bitwise equal. One JSON line at the end.
"""
from __future__ import annotations

import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import torch

from bench_db import write_random_teacher
from common import ROOT, base_parser, emit_json, markdown_table, setup
from dass import config as cfgmod
from dass.data.arrays import ImageArrays
from dass.data.registry import list_datasets, load_dataset
from dass.database.plan import _task_seed, sample_students
from dass.space import load_space
from dass.teacher import load_teacher
from dass.train import KDRecipe, KDSetting
from dass.train.distributed import single_process
from dass.train.trainer import Precision, kd_learner, load_teacher_net, make_loaders

KINDS = (("convolution_backward", "conv backward"), ("mkldnn_convolution", "conv forward"),
         ("batch_norm_backward", "BN backward"), ("batch_norm", "BN forward"), ("max_pool", "max-pool fwd+bwd"),
         ("SGD", "optimizer"), ("foreach", "optimizer"))


def kind(name: str) -> str:
    return next((k for key, k in KINDS if key in name), "other (elementwise, loss, autograd, allocations)")


def main() -> None:
    ap = base_parser(__doc__.splitlines()[0])
    ap.add_argument("--task", default="glyphs/hebrew")
    ap.add_argument("--data-root", default=str(ROOT / "data"))
    ap.add_argument("--students", type=int, default=6)
    ap.add_argument("--steps", type=int, default=6)
    args = ap.parse_args()
    device = setup(args)
    if args.quick:
        args.students, args.steps = 2, 2
    space = load_space(ROOT / "configs" / "space" / "cpu.yaml")
    db = cfgmod.read_with_bases(ROOT / "configs" / "database" / "cpu.yaml")
    recipe = cfgmod.from_dict(KDRecipe, db["kd_recipe"], where="configs/database/cpu.yaml")
    key = args.task.replace("/", "-")
    if args.task in list_datasets(args.data_root):
        tr, te = (load_dataset(args.task, args.data_root, s) for s in ("train", "test"))
    else:
        g = torch.Generator().manual_seed(0)
        tr, te = (ImageArrays(torch.randint(0, 256, (n, 32, 32, 3), generator=g, dtype=torch.uint8).numpy(),
                              (torch.arange(n) % 40).numpy(), 40, "synthetic") for n in (1024, 256))
    teacher_file = ROOT / "assets" / "cpu" / "teachers" / key / "teacher.pt"
    if not teacher_file.is_file() or tr.name == "synthetic":
        with tempfile.TemporaryDirectory() as tmp:
            teacher_file = Path(tmp) / "teacher.pt"
            write_random_teacher(teacher_file, space, tr.num_classes, tr.name)
            _, sd, _ = load_teacher(teacher_file, space, tr.num_classes)
    else:
        _, sd, _ = load_teacher(teacher_file, space, tr.num_classes)
    archs = sample_students(space, args.students, _task_seed(0, key), 20, tr.num_classes)
    ctx = single_process(device)
    loader, _ = make_loaders(tr, te, recipe, space, 1, ctx, Precision())
    teacher = load_teacher_net(space, sd, tr.num_classes, ctx, Precision())
    batches = [b for _, b in zip(range(args.steps + 2), loader)]
    t0 = time.perf_counter()
    with torch.no_grad():
        logits = [teacher(x) for x, _ in batches]
    teacher_ms = 1000 * (time.perf_counter() - t0) / len(batches)

    shares, total = defaultdict(float), 0.0
    setting = KDSetting(space, sd, tr, tr, recipe)   # the test split: not read by kd_learner
    for a in archs:
        learner = kd_learner(a, setting, 1, len(loader), ctx, Precision())
        learner.start_epoch()
        for (x, y), t in zip(batches[:2], logits[:2]):   # warm-up (oneDNN builds its kernels)
            learner.train_step(x, y, t)
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            for (x, y), t in zip(batches[2:], logits[2:]):
                learner.train_step(x, y, t)
        for e in prof.key_averages():
            shares[kind(e.key)] += e.self_cpu_time_total
            total += e.self_cpu_time_total
    student_ms = total / 1000 / (len(archs) * args.steps)
    rows = [[k, f"{100 * v / total:.1f} %"] for k, v in sorted(shares.items(), key=lambda kv: -kv[1])]
    print(markdown_table(["operators", "share of the student step"], rows))
    print(f"teacher forward {teacher_ms:.1f} ms per batch; student step (profiled) {student_ms:.1f} ms")

    steps = {"NCHW": [], "channels_last": []}
    equal = True
    for a in archs:
        weights = {}
        for name, cl in (("NCHW", False), ("channels_last", True)):
            prec = Precision(None, cl)
            learner = kd_learner(a, setting, 1, len(loader), ctx, prec)
            learner.start_epoch()
            xs = [x.contiguous(memory_format=torch.channels_last) if cl else x for x, _ in batches]
            for i, (x, (_, y), t) in enumerate(zip(xs, batches, logits)):
                t0 = time.perf_counter()
                learner.train_step(x, y, t)
                if i >= 2:
                    steps[name].append(time.perf_counter() - t0)
            weights[name] = learner.net.state_dict()
        equal = equal and all(torch.equal(weights["NCHW"][k], weights["channels_last"][k]) for k in weights["NCHW"])
    med = {k: 1000 * statistics.median(v) for k, v in steps.items()}
    print(markdown_table(["memory format", "median student step (ms)"], [[k, v] for k, v in med.items()]))
    print(f"channels_last {med['NCHW'] / med['channels_last']:.2f}x NCHW per step; weights bitwise equal: {equal}")
    emit_json("profile_step", args, device, task=tr.name, students=[str(a) for a in archs], steps=args.steps,
              shares={k: v / total for k, v in shares.items()}, teacher_ms=teacher_ms, student_ms=student_ms,
              step_ms=med, channels_last_ratio=med["NCHW"] / med["channels_last"], bitwise_equal=equal,
              target=None, met=None)


if __name__ == "__main__":
    main()
