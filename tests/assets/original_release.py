"""Tiny files in the original DaSS release's structures (docs/COMPAT.md), laid out as the download
mirror serves them (``<kind>/<group>/<relative_path>``, :mod:`dass.data.download`):

* every dataset of the source table: uint8 8 x 8 x 3 images, one training image per class (the
  downloader checks that training labels cover every class) and a few test images;
  Tiny-ImageNet with its ``labels/`` and ``10_split/split_<k>.npz`` (40 classes per split);
* every teacher checkpoint: a ResNet42 state dict (paper space) saved as the original's training
  script saves it (``module.`` prefixes, ``best_acc1``, ``epoch``, ``arch``, ``optimizer``). All its
  tensors are views of two small shared storages, so each file holds ~0.6 M numbers, not 2.8 M;
* ``preprocessed.zip`` holding ``preprocessed/``: the database files of each split
  (``ours/<mode>/<ds_key>-logs_noise_actmap.pt`` and their teacher files), the search pools of the
  four meta-test datasets and ``net_info/net_samples.pt`` / ``net_samples_50_for_correlation.pt``.

``release_files()`` returns ``({mirror path: bytes}, facts)``; ``facts`` holds what the tests check
against: the nets of ``net_samples.pt`` and, per pool, the net index of each entry.
"""
from __future__ import annotations

import io
import zipfile

import numpy as np
import torch

from dass.space import Arch, SpaceConfig, build, sample_unique, teacher_arch

PAPER = SpaceConfig()  # the defaults are the paper profile
CLASSES = {"tiny_imagenet": 200, "cub": 200, "dtd": 47, "quickdraw": 345, "stanford_cars": 196}
META_TEST = ("cub", "dtd", "quickdraw", "stanford_cars")
TASKS = {"tiny_imagenet-0": "meta_train", "tiny_imagenet-1": "meta_train", "tiny_imagenet-8": "meta_valid",
         **{ds: "meta_test" for ds in META_TEST}}
N_STUDENTS = 6
N_NETS = 10
TEST_IMAGES = 24


def _bytes(save, obj) -> bytes:
    buf = io.BytesIO()
    save(obj, buf)
    return buf.getvalue()


def npy(array) -> bytes:
    return _bytes(lambda obj, buf: np.save(buf, obj), array)


def pt(obj) -> bytes:
    return _bytes(torch.save, obj)


def orig_fields(arch: Arch, pad: bool) -> tuple[list, list]:
    """``depth_config``/``channel_widths`` as the original stores them (widths lists padded to 5)."""
    widths = [list(ws) + ([0] * (5 - len(ws)) if pad else []) for ws in arch.widths]
    return list(arch.depths), widths


def original_checkpoint(sd: dict, best_acc1) -> dict:
    """``model_best.pth.tar`` as the original's training script saves it (DataParallel keys)."""
    return {"epoch": 180, "arch": "resnet42", "state_dict": {"module." + k: v for k, v in sd.items()},
            "best_acc1": best_acc1,
            "optimizer": {"state": {}, "param_groups": [{"lr": 0.05, "momentum": 0.9, "params": [0, 1]}]}}


def student_db(archs, seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    maps = [torch.randn(256, 8, 8, generator=g) for _ in archs]
    fields = [orig_fields(a, pad=i % 2 == 0) for i, a in enumerate(archs)]
    return {
        "net_index": [100 + 7 * i for i in range(len(archs))],
        "final_acc": [30.5 + i for i in range(len(archs))],
        "best_acc": [torch.tensor(31.25 + i) for i in range(len(archs))],  # tensors, as saved from a trainer
        "final_loss": [1.5 - 0.125 * i for i in range(len(archs))],
        "arch_enc": [torch.randn(181, generator=g) for _ in archs],
        "depth_config": [f[0] for f in fields],
        "channel_widths": [f[1] for f in fields],
        # every other map with the leading batch dimension of 1
        "noise_actmap_stage-4": [m[None] if i % 2 else m for i, m in enumerate(maps)],
    }


def teacher_db(best_acc: float, seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    dc, cw = orig_fields(teacher_arch(PAPER), pad=False)
    return {"net_index": [-1], "final_acc": [best_acc - 0.5], "best_acc": [best_acc], "final_loss": [0.75],
            "arch_enc": [torch.randn(181, generator=g)], "depth_config": [dc], "channel_widths": [cw],
            "noise_actmap_stage-4": [torch.randn(1, 256, 8, 8, generator=g)]}


def shared_teacher_state(num_classes: int, seed: int) -> dict:
    """A paper-space teacher state dict whose tensors are views of two shared random storages
    (weights ~ N(0, 0.05^2); BN variances in [0.5, 1.5])."""
    g = torch.Generator().manual_seed(seed)
    shapes = {k: v.shape for k, v in build(teacher_arch(PAPER), PAPER, num_classes).state_dict().items()}
    big = max(int(torch.Size(s).numel()) for s in shapes.values())
    weights = torch.randn(big, generator=g) * 0.05
    variances = torch.rand(big, generator=g) + 0.5
    sd = {}
    for k, shape in shapes.items():
        n = int(torch.Size(shape).numel())
        if k.endswith("num_batches_tracked"):
            sd[k] = torch.tensor(1000)
        elif k.endswith("running_var"):
            sd[k] = variances[:n].view(shape)
        elif k.endswith(".weight") and len(shape) == 1:  # BN scale near 1
            sd[k] = (variances[:n]).view(shape)
        else:
            sd[k] = weights[:n].view(shape)
    return sd


def dataset_files(name: str, rng) -> dict[str, bytes]:
    k = CLASSES[name]
    train = rng.integers(0, 256, size=(k, 8, 8, 3), dtype=np.uint8)
    test = rng.integers(0, 256, size=(TEST_IMAGES, 8, 8, 3), dtype=np.uint8)
    train_labels, test_labels = np.arange(k), np.arange(TEST_IMAGES) % k
    if name != "tiny_imagenet":
        return {"train_images.npy": npy(train), "test_images.npy": npy(test),
                "train_labels.npy": npy(train_labels), "test_labels.npy": npy(test_labels)}
    files = {"train_images.npy": npy(train), "valid_images.npy": npy(test),
             "labels/train_labels.npy": npy(train_labels), "labels/valid_labels.npy": npy(test_labels)}
    for s in range(10):  # split s: classes 20 s .. 20 s + 39 (mod 200), their train images
        labels = (np.arange(40) + 20 * s) % k
        idx = np.flatnonzero(np.isin(train_labels, labels))
        files[f"10_split/split_{s}.npz"] = _bytes(
            lambda obj, buf: np.savez(buf, **obj), {"label_list": labels, "idx_train": idx, "idx_valid": idx[:5]})
    return files


def preprocessed_zip(rng) -> tuple[bytes, dict]:
    members = {}
    for i, (key, mode) in enumerate(TASKS.items()):
        archs = sample_unique(PAPER, N_STUDENTS, rng, exclude={teacher_arch(PAPER)})
        members[f"preprocessed/ours/{mode}/{key}-logs_noise_actmap.pt"] = pt(student_db(archs, seed=i))
        members[f"preprocessed/ours/{mode}/teacher/{key}-logs_noise_actmap.pt"] = pt(teacher_db(60.0 + i, 100 + i))
    nets = sample_unique(PAPER, N_NETS, rng, exclude={teacher_arch(PAPER)})
    members["preprocessed/net_info/net_samples.pt"] = pt(
        [[1000.0 + i, 10.0 + i, *orig_fields(a, pad=True), "extra"] for i, a in enumerate(nets)])
    members["preprocessed/net_info/net_samples_50_for_correlation.pt"] = pt(
        [[i, [1000.0 + i, 10.0 + i, *orig_fields(a, pad=False)]] for i, a in enumerate(nets[:3])])
    g = torch.Generator().manual_seed(5)
    pool_index = {}
    for j, ds in enumerate(META_TEST):
        # cub: entry i is net i (the original's reading); the others name their nets with net_index
        idx = list(range(N_NETS)) if ds == "cub" else [int(x) for x in rng.permutation(N_NETS)[:N_NETS - j]]
        inp = {"arch_enc": torch.randn(len(idx), 181, generator=g)}
        if ds != "cub":
            inp["net_index"] = idx
        members[f"preprocessed/search/{ds}.pt"] = pt(
            {"pred_inp": inp, "noise_actmap_stage-4": [torch.randn(256, 8, 8, generator=g) for _ in idx]})
        pool_index[ds] = idx
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue(), {"nets": nets, "pool_index": pool_index, "members": sorted(members)}


def release_files(seed: int = 0) -> tuple[dict[str, bytes], dict]:
    """Every file of the source table, keyed by its mirror path (``/<kind>/<group>/<path>``)."""
    from dass.data.download import read_sources
    rng = np.random.default_rng(seed)
    files, facts = {}, {}
    data = {name: dataset_files(name, rng) for name in CLASSES}
    zip_bytes, facts = preprocessed_zip(rng)
    for s in read_sources():
        path = "/" + "/".join(p for p in (s.kind, s.group, s.relative_path) if p != "-")
        if s.kind == "dataset":
            files[path] = data[s.group][s.relative_path]
        elif s.kind == "teacher_checkpoint":
            k = 40 if s.group.startswith("tiny_imagenet") else CLASSES[s.group]
            files[path] = pt(original_checkpoint(shared_teacher_state(k, seed=len(files)), torch.tensor(70.5)))
        else:
            files[path] = zip_bytes
    return files, facts
