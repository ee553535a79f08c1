"""Several KD students trained in lockstep: one augmented batch and ONE teacher forward per step,
shared by every student.

Each student gets exactly what a lone :func:`dass.train.kd_train` run with the same seed gets: the
same batches (the loader's order depends only on (seed, epoch)), the same teacher logits, the same
initialisation (built under ``torch.manual_seed(seed)``, then remapped) and its own optimiser and
schedule, so the results equal K sequential runs (bitwise on the CPU).
"""
from __future__ import annotations

from pathlib import Path

from ..space import Arch
from .distributed import single_process
from .kd_setting import KDSetting
from .logit_cache import cache_identity, teacher_logits
from .trainer import check_data, fit, kd_learner, kd_result, load_teacher_net, make_loaders, precision_for


def kd_train_many(archs: list[Arch], setting: KDSetting, seed: int, run_dirs: list | None = None) -> list[dict]:
    """KD-train every architecture of ``archs`` with ``seed``; one result dict per student, in order
    (keys as :func:`dass.train.kd_train`). ``run_dirs`` (optional, one per student) keeps per-student
    checkpoints and resumes from them."""
    if run_dirs is not None and len(run_dirs) != len(archs):
        raise ValueError(f"{len(run_dirs)} run folders for {len(archs)} students")
    s = setting
    space, teacher_sd, train, recipe = s.space, s.teacher_sd, s.train, s.recipe
    ctx = s.ctx or single_process(s.device)
    precision = precision_for(ctx.device)
    num_classes = check_data(train, s.test, int(teacher_sd["fc.weight"].shape[0]))
    train_loader, test_loader = make_loaders(train, s.test, recipe, space, seed, ctx, precision)
    learners = [kd_learner(a, s, seed, len(train_loader), ctx, precision,
                           None if run_dirs is None else Path(run_dirs[i]), name=f"student {i} ({a})")
                for i, a in enumerate(archs)]
    teacher = cached = None
    if recipe.alpha != 1.0:
        def make_teacher():
            return load_teacher_net(space, teacher_sd, num_classes, ctx, precision)
        if s.logit_cache is not None:
            identity = cache_identity(teacher_sd, train, train_loader, precision, recipe.epochs)
            cached = teacher_logits(s.logit_cache, identity, make_teacher, train_loader, recipe.epochs, precision,
                                    wait=s.wait_for_cache)
        if cached is None:
            teacher = make_teacher()
    desc = "kd" if len(archs) == 1 else f"kd x{len(archs)}"
    fit(learners, train_loader, test_loader, teacher, teacher_logits=cached, progress=s.progress, desc=desc)
    return [kd_result(l, a, space, num_classes) for l, a in zip(learners, archs)]


def kd_train(arch: Arch, setting: KDSetting, seed: int, run_dir=None) -> dict:
    """KD-train one student; returns ``{best_acc, final_acc, final_loss, best_epoch, history, wall_s,
    macs, params, arch}`` (accuracies: test top-1 %). Files only when ``run_dir`` is given."""
    return kd_train_many([arch], setting, seed, run_dirs=None if run_dir is None else [run_dir])[0]
