"""Input pipeline throughput: the device-resident ``DeviceLoader`` vs the per-image PIL/torchvision
``make_pil_loader`` (num_workers 0 and 2), training mode (random crop with padding S/8, horizontal
flip, normalise 0.5/0.5), batch 64, over the same dataset, at the paper size 64 and the cpu size 16.

    python bench/bench_data.py                 # full: the whole train split, 3 timed epochs per path
    python bench/bench_data.py --quick         # checks + a smoke timing on 256 images at 16 px
    python bench/bench_data.py --threads 1     # steadier on a machine shared with other jobs

Dataset: ``--dataset`` (default glyphs/latin, 2,160 train images of 32 x 32) under ``--data-root``;
when it is missing, a synthetic uint8 dataset of the same size (seeded noise). Images/s counts the
images served per epoch (both paths drop the last partial batch); the DeviceLoader's one-off
set-up (upload, resize, padding) is reported separately (``setup_s``), not in images/s.

Checks (quick and full):
* eval mode at the native size: both paths give bitwise equal tensors;
* eval mode at the resized sizes: the DeviceLoader resizes with torch's antialiased bilinear, the
  PIL path with PIL's bilinear; they may differ by rounding, at most one grey level
  (1/127.5 after normalisation);
* train mode: each DeviceLoader image equals torchvision's pad / crop / flip of the same image with
  the crop offsets and flips of the loader's ``epoch_plan``.
Target on CPU: DeviceLoader >= 5x the faster PIL configuration.
"""
from __future__ import annotations

import numpy as np
import torch

from common import (ROOT, base_parser, check, emit_json, markdown_table, median, setup, time_interleaved,
                    timed, verdict)
from dass.data.arrays import ImageArrays
from dass.data.loader import DeviceLoader, LoaderConfig, make_pil_loader
from dass.data.registry import list_datasets, load_dataset

BATCH = 64
TARGET = 5.0
ONE_LEVEL = 1.0 / 127.5   # one uint8 grey level after (x / 255 - 0.5) / 0.5


def load_or_synthesise(name: str, root: str, split: str) -> ImageArrays:
    """The named dataset when present under ``root``, else seeded uint8 noise of the glyphs' size."""
    if name in list_datasets(root):
        return load_dataset(name, root, split)
    n = 2160 if split == "train" else 720
    rng = np.random.default_rng(0 if split == "train" else 1)
    images = rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)
    return ImageArrays(images, np.arange(n) % 40, 40, f"synthetic ({name} not found)")


def quick_subset(arrays: ImageArrays, n: int) -> ImageArrays:
    """``n`` images drawn without replacement (numpy seed 0): every class, not the first few."""
    index = np.sort(np.random.default_rng(0).permutation(len(arrays))[:min(n, len(arrays))])
    return arrays.subset(index)


def stack_epoch(loader) -> torch.Tensor:
    return torch.cat([x.cpu() for x, _ in loader])


def check_eval(arrays: ImageArrays, sizes: list[int], device) -> dict:
    """Max |DeviceLoader - PIL| of eval-mode outputs at the native size and at ``sizes``."""
    native = arrays.image_size[0]
    out = {}
    for size in [native] + [s for s in sizes if s != native]:
        dev = stack_epoch(DeviceLoader(arrays, LoaderConfig(BATCH, train=False, image_size=size, pad=0), device=device))
        pil = stack_epoch(make_pil_loader(arrays, BATCH, train=False, image_size=size))
        diff = float((dev - pil).abs().max())
        out[size] = diff
        if size == native:
            check(torch.equal(dev, pil), f"eval mode at native {size} px: DeviceLoader == PIL path (bitwise)")
        else:
            check(diff <= ONE_LEVEL + 1e-6, f"eval mode at {size} px: max difference {diff * 127.5:.2f} "
                                            f"grey levels (resize rounding, at most 1)")
    return out


def check_train(arrays: ImageArrays, device) -> None:
    """A train batch of the DeviceLoader equals torchvision pad/crop/flip with the loader's plan."""
    from torchvision import transforms as T
    from torchvision.transforms import functional as TF

    size = arrays.image_size[0]
    pad = size // 8
    loader = DeviceLoader(arrays, LoaderConfig(BATCH, train=True, image_size=size, pad=pad, seed=3), device=device)
    loader.set_epoch(1)
    plan = loader.epoch_plan()
    x, y = next(iter(loader))
    to_input = T.Compose([T.ToTensor(), T.Normalize((0.5,) * 3, (0.5,) * 3)])
    from PIL import Image
    expected = []
    for i in range(x.shape[0]):
        img = TF.pad(Image.fromarray(arrays.images[int(plan["index"][i])]), pad)
        img = TF.crop(img, int(plan["top"][i]), int(plan["left"][i]), size, size)
        expected.append(to_input(TF.hflip(img) if bool(plan["flip"][i]) else img))
    same = torch.equal(x.cpu(), torch.stack(expected))
    labels = torch.equal(y.cpu(), torch.as_tensor(arrays.labels[plan["index"][:x.shape[0]].numpy()]))
    check(same and labels, f"train mode at {size} px: DeviceLoader batch == torchvision pad/crop/flip "
                           f"with the same offsets and flips")


def epoch_runner(loader, device, device_loader: bool):
    """A callable that draws one epoch from ``loader`` onto ``device`` and returns the images served
    (the PIL path's batches are copied to the device, as a training loop would)."""
    state = {"epoch": 0}

    def run() -> int:
        if device_loader:
            state["epoch"] += 1
            loader.set_epoch(state["epoch"])
        return sum(int(x.to(device, non_blocking=True).shape[0]) for x, _ in loader)
    return run


def bench_size(arrays: ImageArrays, size: int, device, repeats: int, warmup: int) -> dict:
    setup_s, dev_loader = timed(lambda: DeviceLoader(arrays, LoaderConfig(BATCH, train=True, image_size=size),
                                                     device=device), device)
    contenders = {"DeviceLoader": epoch_runner(dev_loader, device, True)}
    for w in (0, 2):
        pil = make_pil_loader(arrays, BATCH, train=True, image_size=size, num_workers=w)
        contenders[f"PIL w{w}"] = epoch_runner(pil, device, False)
    images = {name: fn() for name, fn in contenders.items()}   # also serves as a first warm-up
    if len(set(images.values())) != 1:
        raise SystemExit(f"paths serve different numbers of images per epoch: {images}")
    seconds = time_interleaved(contenders, device, repeats, warmup)
    n = images["DeviceLoader"]
    rate = {name: n / median(s) for name, s in seconds.items()}
    best_pil = max(rate["PIL w0"], rate["PIL w2"])
    return {"image_size": size, "images_per_epoch": n, "setup_s": setup_s,
            "images_per_s": rate, "seconds": seconds,
            "ratio_vs_pil_w0": rate["DeviceLoader"] / rate["PIL w0"],
            "ratio_vs_pil_w2": rate["DeviceLoader"] / rate["PIL w2"],
            "ratio_vs_best_pil": rate["DeviceLoader"] / best_pil}


def main() -> None:
    ap = base_parser(__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="glyphs/latin")
    ap.add_argument("--data-root", default=str(ROOT / "data"))
    ap.add_argument("--sizes", default=None, help="comma-separated image sizes (default 64,16; quick 16)")
    args = ap.parse_args()
    device = setup(args)
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else ([16] if args.quick else [64, 16])

    train = load_or_synthesise(args.dataset, args.data_root, "train")
    test = load_or_synthesise(args.dataset, args.data_root, "test")
    if args.quick:
        train, test = quick_subset(train, 256), quick_subset(test, 128)
    print(f"dataset {train.name}: {len(train)} train images of {train.image_size}, device {device}, "
          f"torch threads {torch.get_num_threads()}")
    eval_diffs = check_eval(test, sizes, device)
    check_train(test.subset(np.arange(BATCH)), device)

    results = [bench_size(train, s, device, args.repeats, args.warmup) for s in sizes]
    rows = []
    for r in results:
        for name, rate in r["images_per_s"].items():
            ratio = r["images_per_s"]["DeviceLoader"] / rate
            rows.append([r["image_size"], name, rate, f"{ratio:.1f}x" if name != "DeviceLoader" else "-"])
    print(markdown_table(["size", "path (train mode, batch 64)", "images/s", "DeviceLoader speed-up"], rows))
    for r in results:
        print(f"{r['image_size']} px: DeviceLoader {r['ratio_vs_best_pil']:.1f}x the faster PIL path "
              f"(target {TARGET:g}x: {verdict(r['ratio_vs_best_pil'], TARGET)}); "
              f"one-off set-up {r['setup_s']:.3f} s")
    emit_json("data", args, device, dataset=train.name, train_images=len(train), batch_size=BATCH,
              repeats=args.repeats, warmup=args.warmup, target=TARGET,
              eval_max_abs_diff={str(k): v for k, v in eval_diffs.items()}, results=results,
              met=all(r["ratio_vs_best_pil"] >= TARGET for r in results))


if __name__ == "__main__":
    main()
