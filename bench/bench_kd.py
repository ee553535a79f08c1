"""KD training throughput: the project's trainer (``dass.train.kd_train``) vs a plain reference loop
written here (fp32, NCHW, the PIL DataLoader, a ``.item()`` per step for logging, a teacher forward
every step), same teacher, student, recipe and data.

    python bench/bench_kd.py                        # cpu profile (16 px) and paper profile (64 px)
    python bench/bench_kd.py --quick                # step check + a smoke timing, cpu profile, 256 images
    python bench/bench_kd.py --threads 1            # steadier on a machine shared with other jobs
    python bench/bench_kd.py --profiles cpu         # only one profile

Profiles: ``cpu`` = configs/space/cpu.yaml + configs/kd/cpu.yaml recipe (batch 128, validation after
every epoch) for ``--epochs`` epochs (default 2) on the whole train split; ``paper`` =
configs/space/paper.yaml + configs/kd/paper.yaml recipe (batch 64) on ``--paper-steps`` batches
(default 3: a train subset of that many batches, one epoch, a 64-image test subset), one round.
Both paths run the same number of epochs and validate after the same epochs; each timing is a
whole run (set-up, training, validation), images/s = train images stepped / wall seconds.

Teacher: the space's teacher, randomly initialised (seed 0); student: every stage at the middle
depth, every block at the middle width (throughput does not depend on the weights). Dataset:
``--dataset`` (default glyphs/latin) or synthetic noise of the same size when it is missing.

Check (quick and full): from the same initial weights, three steps (one in the paper profile) of the
trainer's ``Learner`` in float32 and of the reference on the same batches and teacher logits give
the same mean loss and weights (relative tolerance 1e-4 on every device), i.e. the two paths compute
the same KD step. The check runs in deterministic mode (``common.deterministic_kernels``: cuDNN's
deterministic algorithms, no autotuning, no TF32); with cuDNN free to choose, the two paths differed
by 6.4e-2 on an H200, 1.7e-8 in deterministic mode.

On CUDA the trainer runs under bf16 autocast (fp16 when bf16 is unsupported) with channels_last;
the row then also gives achieved TFLOP/s and the fraction of the GPU's dense bf16 peak, counting per
train image 2 * MACs * 3 (student forward + backward) + 2 * MACs (teacher forward), MACs from
``dass.space.macs``; validation and data time are in the wall clock. Target on CPU: >= 2x.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from bench_data import load_or_synthesise, quick_subset
from common import (ROOT, base_parser, check, deterministic_kernels, emit_json, markdown_table, median,
                    peak_tflops, setup, time_interleaved, verdict)
from dass import config as cfgmod
from dass.data.loader import DeviceLoader, LoaderConfig, make_pil_loader
from dass.space import Arch, build, load_space, macs, remap, teacher_arch
from dass.train import KDRecipe, KDSetting, kd_train
from dass.train.distributed import single_process
from dass.train.trainer import Precision, kd_learner, load_teacher_net, precision_for

TARGET = 2.0
REMAP = "copy_paste_first"


def middle_arch(space) -> Arch:
    """Every stage at the middle depth of the space, every block at the middle width choice."""
    d = space.depths[len(space.depths) // 2]
    return Arch(tuple(d for _ in space.stage_widths),
                tuple(tuple(ch[len(ch) // 2] for _ in range(d)) for ch in space.width_choices))


def read_recipe(profile: str, **overrides) -> KDRecipe:
    path = ROOT / "configs" / "kd" / f"{profile}.yaml"
    data = {**cfgmod.read_with_bases(path)["kd_recipe"], **overrides}
    return cfgmod.from_dict(KDRecipe, data, where=str(path))


def random_teacher(space, num_classes: int) -> dict:
    torch.manual_seed(0)
    return build(teacher_arch(space), space, num_classes).state_dict()


# ------------------------------------------------------------------------------ the reference loop

def reference_loss(s: torch.Tensor, t: torch.Tensor, y: torch.Tensor, alpha: float, temp: float) -> torch.Tensor:
    """(1 - alpha) T^2 KL-style soft cross-entropy + alpha CE, both summed over the batch / batch size."""
    soft = -(F.softmax(t / temp, dim=1) * F.log_softmax(s / temp, dim=1)).sum(1).mean()
    return (1 - alpha) * temp * temp * soft + alpha * F.cross_entropy(s, y)


def reference_models(arch: Arch, space, teacher_sd: dict, num_classes: int, seed: int, device):
    torch.manual_seed(seed)
    student = remap(build(arch, space, num_classes), teacher_sd, REMAP).to(device)
    teacher = build(teacher_arch(space), space, num_classes)
    teacher.load_state_dict(teacher_sd)
    return student, teacher.to(device).eval()


def reference_optimizer(student, recipe: KDRecipe, total_steps: int):
    opt = torch.optim.SGD(student.parameters(), lr=recipe.lr, momentum=recipe.momentum,
                          nesterov=recipe.nesterov, weight_decay=recipe.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda step: 0.5 * (1 + math.cos(math.pi * min(step, total_steps) / total_steps)))
    return opt, sched


def reference_step(student, teacher, opt, sched, x, y, recipe: KDRecipe) -> float:
    with torch.no_grad():
        t_logits = teacher(x)
    loss = reference_loss(student(x), t_logits, y, recipe.alpha, recipe.temperature)
    opt.zero_grad()
    loss.backward()
    opt.step()
    sched.step()
    return loss.item()


def reference_kd(arch: Arch, space, teacher_sd: dict, train, test, recipe: KDRecipe, seed: int, device) -> dict:
    """The plain loop: PIL loader (num_workers 0), fp32 NCHW, a .item() per step, teacher every step."""
    student, teacher = reference_models(arch, space, teacher_sd, train.num_classes, seed, device)
    loader = make_pil_loader(train, recipe.batch_size, True, space.image_size, num_workers=0, seed=seed)
    test_loader = make_pil_loader(test, recipe.eval_batch_size, False, space.image_size)
    opt, sched = reference_optimizer(student, recipe, recipe.epochs * len(loader))
    steps, accs = 0, []
    for epoch in range(recipe.epochs):
        student.train()
        log = []  # the per-step losses of the epoch
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            log.append(reference_step(student, teacher, opt, sched, x, y, recipe))
            steps += 1
        if recipe.validates_after(epoch + 1):
            student.eval()
            with torch.no_grad():
                correct = sum((student(x.to(device)).argmax(1) == y.to(device)).sum().item() for x, y in test_loader)
            accs.append(100.0 * correct / len(test))
    return {"final_loss": sum(log) / len(log), "final_acc": accs[-1], "steps": steps}


# ------------------------------------------------------------------------------ the check

TOLERANCE = 1e-4  # relative; the measured differences: ~1e-8 on CPU and (deterministic) on an H200


def check_same_step(arch: Arch, space, teacher_sd: dict, train, recipe: KDRecipe, device, steps: int,
                    step=None) -> float:
    """Largest relative difference between the trainer's and the reference's mean loss and weights
    after ``steps`` float32 steps on the same batches, computed in deterministic mode; exits 1 above
    :data:`TOLERANCE`. ``step``: the reference step (default :func:`reference_step`; a test gives a
    wrong one to see the check fail)."""
    with deterministic_kernels():
        worst = _max_step_difference(arch, space, teacher_sd, train, recipe, device, steps, step or reference_step)
    check(worst <= TOLERANCE, f"{steps} KD step(s), trainer vs reference: same mean loss and weights "
                              f"(max relative difference {worst:.1e}, tolerance {TOLERANCE:g}, deterministic kernels)")
    return worst


def _max_step_difference(arch, space, teacher_sd, train, recipe, device, steps, step) -> float:
    ctx = single_process(device)
    fp32 = Precision()
    loader = DeviceLoader(train, LoaderConfig(recipe.batch_size, train=True, image_size=space.image_size,
                                              pad=recipe.crop_pad, seed=0), device=device)
    batches = [b for _, b in zip(range(steps), loader)]
    setting = KDSetting(space, teacher_sd, train, train, recipe, remap=REMAP)   # the test split: not read here
    learner = kd_learner(arch, setting, 0, len(loader), ctx, fp32)
    teacher = load_teacher_net(space, teacher_sd, train.num_classes, ctx, fp32)
    student, ref_teacher = reference_models(arch, space, teacher_sd, train.num_classes, 0, device)
    opt, sched = reference_optimizer(student, recipe, recipe.epochs * len(loader))
    learner.start_epoch()
    ref_losses = []
    for x, y in batches:
        with torch.no_grad():
            t_logits = teacher(x)
        learner.train_step(x, y, t_logits)
        ref_losses.append(step(student, ref_teacher, opt, sched, x, y, recipe))
    trainer_loss, _ = learner.finish_training()
    ref_loss = sum(ref_losses) / len(ref_losses)
    worst = abs(trainer_loss - ref_loss) / abs(ref_loss)
    for p, q in zip(learner.net.state_dict().values(), student.state_dict().values()):
        if p.is_floating_point():
            worst = max(worst, float((p - q).abs().max() / q.abs().max().clamp_min(1e-12)))
    return worst


# ------------------------------------------------------------------------------ the benchmark

def flops_per_image(arch: Arch, space, num_classes: int) -> int:
    """2 * MACs * 3 (student fwd + bwd) + 2 * MACs (teacher forward), per train image."""
    return 6 * macs(arch, space, num_classes) + 2 * macs(teacher_arch(space), space, num_classes)


def bench_profile(profile: str, train, test, args, device) -> dict:
    space = load_space(ROOT / "configs" / "space" / f"{profile}.yaml")
    arch = middle_arch(space)
    if profile == "paper":
        recipe = read_recipe("paper", epochs=1)
        n = min(args.paper_steps * recipe.batch_size, len(train))
        train, test = quick_subset(train, n), quick_subset(test, 64)
        repeats, warmup = 1, 0
    else:
        quick = dict(batch_size=64, eval_batch_size=128) if args.quick else {}
        recipe = read_recipe("cpu", epochs=1 if args.quick else args.epochs, **quick)
        repeats, warmup = args.repeats, args.warmup
    if recipe.crop_pad not in (None, space.image_size // 8):
        raise SystemExit(f"the PIL loader pads by image_size / 8; recipe crop_pad {recipe.crop_pad} differs")
    teacher_sd = random_teacher(space, train.num_classes)
    steps = recipe.epochs * (len(train) // recipe.batch_size)
    images = steps * recipe.batch_size
    print(f"profile {profile}: {space.image_size} px, student {arch}, {len(train)} train images, "
          f"batch {recipe.batch_size}, {recipe.epochs} epoch(s) = {steps} steps, {repeats} timed round(s)")
    max_rel = check_same_step(arch, space, teacher_sd, train, recipe, device, 1 if profile == "paper" else 3)
    results = {}

    def trainer():
        results["trainer"] = kd_train(arch, KDSetting(space, teacher_sd, train, test, recipe, remap=REMAP,
                                                      device=str(device)), seed=1)

    def reference():
        results["reference"] = reference_kd(arch, space, teacher_sd, train, test, recipe, 1, device)

    seconds = time_interleaved({"trainer": trainer, "reference": reference}, device, repeats, warmup)
    if results["reference"]["steps"] != steps:
        raise SystemExit(f"reference took {results['reference']['steps']} steps, expected {steps}")
    rate = {name: images / median(s) for name, s in seconds.items()}
    flops = flops_per_image(arch, space, train.num_classes)
    achieved = {name: r * flops / 1e12 for name, r in rate.items()}
    peak = peak_tflops(device)
    precision = precision_for(device)
    return {"profile": profile, "image_size": space.image_size, "num_classes": train.num_classes,
            "student": str(arch),
            "student_macs": macs(arch, space, train.num_classes),
            "teacher_macs": macs(teacher_arch(space), space, train.num_classes),
            "batch_size": recipe.batch_size, "epochs": recipe.epochs, "steps": steps, "train_images": len(train),
            "trainer_precision": str(precision.dtype or torch.float32).replace("torch.", "")
            + (" + channels_last" if precision.channels_last else ""),
            "check_max_rel_diff": max_rel, "seconds": seconds, "images_per_s": rate,
            "ratio": rate["trainer"] / rate["reference"], "flops_per_image": flops,
            "achieved_tflops": achieved, "peak_tflops": peak,
            "fraction_of_peak": {k: v / peak for k, v in achieved.items()} if peak else None,
            "final_loss": {k: r["final_loss"] for k, r in results.items()}}


def main() -> None:
    ap = base_parser(__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="glyphs/latin")
    ap.add_argument("--data-root", default=str(ROOT / "data"))
    ap.add_argument("--profiles", default=None, help="comma-separated: cpu,paper (default both; quick: cpu)")
    ap.add_argument("--epochs", type=int, default=2, help="epochs of the cpu profile (full mode)")
    ap.add_argument("--paper-steps", type=int, default=3, help="batches of the paper profile")
    args = ap.parse_args()
    device = setup(args)
    profiles = args.profiles.split(",") if args.profiles else (["cpu"] if args.quick else ["cpu", "paper"])
    train = load_or_synthesise(args.dataset, args.data_root, "train")
    test = load_or_synthesise(args.dataset, args.data_root, "test")
    if args.quick:
        train, test = quick_subset(train, 256), quick_subset(test, 128)
    print(f"dataset {train.name}, device {device}, torch threads {torch.get_num_threads()}")
    results = [bench_profile(p, train, test, args, device) for p in profiles]

    rows = []
    for r in results:
        for name in ("trainer", "reference"):
            label = (f"trainer: kd_train ({r['trainer_precision']}, DeviceLoader)" if name == "trainer"
                     else "reference: plain loop (float32, NCHW, PIL loader, .item() per step)")
            frac = r["fraction_of_peak"][name] if r["fraction_of_peak"] else None
            rows.append([r["profile"], r["image_size"], label, r["images_per_s"][name],
                         r["achieved_tflops"][name] * 1e3, "n/a" if frac is None else f"{100 * frac:.1f} %"])
    print(markdown_table(["profile", "px", "path", "train images/s", "achieved GFLOP/s", "of GPU peak"], rows))
    for r in results:
        unknown_gpu = device.type == "cuda" and not r["peak_tflops"]
        note = " (GPU not in the peak table of bench/common.py)" if unknown_gpu else ""
        print(f"{r['profile']}: trainer {r['ratio']:.2f}x the reference (target {TARGET:g}x: "
              f"{verdict(r['ratio'], TARGET)}){note}")
    emit_json("kd", args, device, dataset=train.name, target=TARGET, results=results,
              met=all(r["ratio"] >= TARGET for r in results))


if __name__ == "__main__":
    main()
