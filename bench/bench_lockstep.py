"""Lockstep multi-student KD: ``kd_train_many`` (K students on the same batches, one teacher forward
per batch) vs K sequential ``kd_train`` runs, in students per hour, cpu profile.

    python bench/bench_lockstep.py                 # K = 4, cpu KD recipe for 2 epochs, whole train split
    python bench/bench_lockstep.py --quick         # equality check + a smoke timing on 256 images
    python bench/bench_lockstep.py --threads 1     # steadier on a machine shared with other jobs

Students: ``--k`` distinct architectures sampled from configs/space/cpu.yaml (numpy seed 0);
teacher: the space's teacher, randomly initialised (seed 0); recipe: configs/kd/cpu.yaml with
``--epochs`` epochs (quick: 1 epoch at batch 64); dataset: ``--dataset`` (default glyphs/latin) or
synthetic noise of the same size when it is missing. A timing is a whole run of all K students
(set-up, training, validation); students/hour = K * 3600 / median seconds.

Check (quick and full): every student's best_acc, final_acc and final_loss from the lockstep run
equal those of its sequential run exactly (the trainer promises bitwise equality on the CPU).
Target on CPU: lockstep >= 1.3x sequential at K = 4.
"""
from __future__ import annotations

import numpy as np
import torch

from bench_data import load_or_synthesise, quick_subset
from bench_kd import REMAP, random_teacher, read_recipe
from common import (ROOT, base_parser, check, emit_json, markdown_table, median, setup, time_interleaved,
                    verdict)
from dass.space import load_space, sample_unique
from dass.train import KDSetting, kd_train, kd_train_many

TARGET = 1.3
COMPARED = ("best_acc", "final_acc", "final_loss")


def main() -> None:
    ap = base_parser(__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="glyphs/latin")
    ap.add_argument("--data-root", default=str(ROOT / "data"))
    ap.add_argument("--k", type=int, default=4, help="students trained together")
    ap.add_argument("--epochs", type=int, default=2, help="KD epochs (full mode)")
    args = ap.parse_args()
    device = setup(args)
    space = load_space(ROOT / "configs" / "space" / "cpu.yaml")
    train = load_or_synthesise(args.dataset, args.data_root, "train")
    test = load_or_synthesise(args.dataset, args.data_root, "test")
    if args.quick:
        train, test = quick_subset(train, 256), quick_subset(test, 128)
        recipe = read_recipe("cpu", epochs=1, batch_size=64, eval_batch_size=128)
    else:
        recipe = read_recipe("cpu", epochs=args.epochs)
    archs = sample_unique(space, args.k, np.random.default_rng(0))
    teacher_sd = random_teacher(space, train.num_classes)
    print(f"dataset {train.name} ({len(train)} train images), device {device}, torch threads "
          f"{torch.get_num_threads()}, K = {args.k}, {recipe.epochs} epoch(s) at batch {recipe.batch_size}")

    out = {}
    setting = KDSetting(space, teacher_sd, train, test, recipe, remap=REMAP, device=str(device))

    def sequential():
        out["sequential"] = [kd_train(a, setting, seed=1) for a in archs]

    def lockstep():
        out["lockstep"] = kd_train_many(archs, setting, seed=1)

    seconds = time_interleaved({"sequential": sequential, "lockstep": lockstep}, device, args.repeats, args.warmup)
    same = all(s[k] == m[k] for s, m in zip(out["sequential"], out["lockstep"]) for k in COMPARED)
    check(same, f"{args.k} students: lockstep best_acc/final_acc/final_loss == sequential runs (exactly)")

    per_hour = {name: args.k * 3600.0 / median(s) for name, s in seconds.items()}
    ratio = per_hour["lockstep"] / per_hour["sequential"]
    rows = [[f"{args.k} x kd_train (sequential)", median(seconds["sequential"]), per_hour["sequential"], "-"],
            [f"kd_train_many ({args.k} students, lockstep)", median(seconds["lockstep"]), per_hour["lockstep"],
             f"{ratio:.2f}x"]]
    print(markdown_table(["path", "seconds (median)", "students/hour", "speed-up"], rows))
    print(f"lockstep {ratio:.2f}x sequential at K = {args.k} (target {TARGET:g}x: {verdict(ratio, TARGET)})")
    emit_json("lockstep", args, device, dataset=train.name, train_images=len(train), k=args.k,
              epochs=recipe.epochs, batch_size=recipe.batch_size, archs=[str(a) for a in archs],
              repeats=args.repeats, warmup=args.warmup, seconds=seconds, students_per_hour=per_hour,
              ratio=ratio, target=TARGET, met=ratio >= TARGET, identical=same,
              results={name: [{k: r[k] for k in COMPARED} for r in rs] for name, rs in out.items()})


if __name__ == "__main__":
    main()
