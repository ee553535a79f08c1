"""Batches for training and evaluation.

``DeviceLoader`` keeps a whole dataset on the device as one uint8 tensor (logically N x C x H x W,
stored channels-last, already resized to ``image_size`` and zero-padded by ``pad`` once at
construction) and builds each batch with a single gather: the random crop (offsets 0..2*pad per
axis) and the horizontal flip are folded into the row/column indices, then
``(x / 255 - mean) / std`` gives float32. This is the augmentation of the original pipeline
(resize, RandomCrop(padding=pad) with zero fill, RandomHorizontalFlip, Normalize(0.5, 0.5)) done
batched on the device instead of per image with PIL.

Determinism: an epoch's order and augmentation come from a CPU ``torch.Generator`` seeded with
``SeedSequence([seed, epoch])``, so they depend only on (seed, epoch) -- call ``set_epoch(e)``
before each epoch (as with DistributedSampler); resuming at epoch e reproduces it exactly.
Sharding (``rank``/``world_size``): in training the permutation is padded by wrapping around to a
multiple of world_size and rank r takes positions r, r + world_size, ... (equal counts on every
rank); in evaluation rank r takes images r, r + world_size, ... in dataset order, without padding
(every image counted exactly once across ranks). Evaluation never augments.

``make_pil_loader`` is the plain torchvision path (per-image PIL transforms through
``torch.utils.data.DataLoader``), kept for comparison and benchmarks.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..device import resolve_device
from ..errors import DassError
from .arrays import ImageArrays

_RESIZE_CHUNK = 1024


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """A CPU generator whose stream depends only on (seed, epoch)."""
    state = int(np.random.SeedSequence([int(seed), int(epoch)]).generate_state(1, dtype=np.uint64)[0])
    return torch.Generator(device="cpu").manual_seed(state)


def resize_nchw_uint8(images: torch.Tensor, size: int) -> torch.Tensor:
    """N x C x H x W uint8 -> N x C x size x size uint8 (bilinear, antialiased), in chunks."""
    if images.shape[-2:] == (size, size):
        return images
    out = torch.empty((images.shape[0], images.shape[1], size, size), dtype=torch.uint8, device=images.device)
    for s in range(0, images.shape[0], _RESIZE_CHUNK):
        chunk = images[s:s + _RESIZE_CHUNK].float()
        chunk = F.interpolate(chunk, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        out[s:s + _RESIZE_CHUNK] = chunk.round_().clamp_(0, 255).to(torch.uint8)
    return out


def _channel_stat(value, name: str, device) -> torch.Tensor:
    t = torch.as_tensor(value, dtype=torch.float32).flatten()
    if t.numel() not in (1, 3):
        raise DassError(f"{name} must be one number or three (per channel), got {value!r}")
    if name == "std" and bool((t <= 0).any()):
        raise DassError(f"std must be positive, got {value!r}")
    return t.view(1, -1, 1, 1).to(device)


@dataclass
class LoaderConfig:
    """How a :class:`DeviceLoader` batches and augments: batch size, training order and augmentation
    (``train``: shuffled per epoch, random crops from a ``pad``-wide zero border and flips), the side
    ``image_size`` the images are resized to, the normalisation, the seed of the order and the
    augmentation, and the shard (``rank`` of ``world_size``) this process reads."""

    batch_size: int
    train: bool
    image_size: int
    pad: int | None = None          # None: image_size // 8
    flip: bool = True
    mean: float | Sequence[float] = 0.5
    std: float | Sequence[float] = 0.5
    seed: int = 0
    drop_last: bool | None = None   # None: as ``train``
    channels_last: bool = False
    rank: int = 0
    world_size: int = 1


class DeviceLoader:
    """Augmented batches ``(x float32 B x C x S x S, y int64 B)`` from a dataset held on ``device``."""

    def __init__(self, arrays: ImageArrays, config: LoaderConfig, device="auto"):
        c = config
        batch_size, train, image_size, flip, seed = c.batch_size, c.train, c.image_size, c.flip, c.seed
        drop_last, channels_last, rank, world_size = c.drop_last, c.channels_last, c.rank, c.world_size
        pad = image_size // 8 if c.pad is None else c.pad
        if batch_size < 1 or image_size < 1 or pad < 0:
            raise DassError(f"need batch_size >= 1, image_size >= 1 and pad >= 0 "
                            f"(got {batch_size}, {image_size}, {pad})")
        if world_size < 1 or not 0 <= rank < world_size:
            raise DassError(f"need 0 <= rank < world_size, got rank {rank}, world_size {world_size}")
        self.device = resolve_device(device)
        self.batch_size, self.train, self.image_size, self.pad = batch_size, train, image_size, pad
        self.flip, self.seed, self.channels_last = flip, seed, channels_last
        self.drop_last = train if drop_last is None else drop_last
        self.rank, self.world_size = rank, world_size
        self.num_classes = arrays.num_classes
        self.epoch = 0
        self.mean = _channel_stat(c.mean, "mean", self.device)
        self.std = _channel_stat(c.std, "std", self.device)
        nchw = torch.from_numpy(arrays.images).to(self.device).permute(0, 3, 1, 2)
        nchw = resize_nchw_uint8(nchw, image_size)
        n, c = nchw.shape[:2]
        store = torch.zeros((n, image_size + 2 * pad, image_size + 2 * pad, c), dtype=torch.uint8,
                            device=self.device)
        store[:, pad:pad + image_size, pad:pad + image_size] = nchw.permute(0, 2, 3, 1)
        self._store = store                       # N x (S+2p) x (S+2p) x C
        self.labels = torch.from_numpy(arrays.labels).to(self.device)

    @property
    def images(self) -> torch.Tensor:
        """The padded uint8 dataset, N x C x (S + 2 pad) x (S + 2 pad) (a channels-last view)."""
        return self._store.permute(0, 3, 1, 2)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    @property
    def dataset_size(self) -> int:
        return int(self.labels.shape[0])

    @property
    def num_samples(self) -> int:
        """Images this rank serves per epoch (before drop_last)."""
        n = self.dataset_size
        if self.train:
            return math.ceil(n / self.world_size)
        return len(range(self.rank, n, self.world_size))

    def __len__(self) -> int:
        n = self.num_samples
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def epoch_plan(self) -> dict[str, torch.Tensor]:
        """This rank's ``index`` (and in training ``top``, ``left``, ``flip``) for the current epoch (CPU)."""
        n = self.dataset_size
        if not self.train:
            return {"index": torch.arange(self.rank, n, self.world_size)}
        g = epoch_generator(self.seed, self.epoch)
        total = math.ceil(n / self.world_size) * self.world_size
        perm = torch.randperm(n, generator=g)
        perm = perm.repeat(math.ceil(total / n))[:total]
        top = torch.randint(0, 2 * self.pad + 1, (total,), generator=g)
        left = torch.randint(0, 2 * self.pad + 1, (total,), generator=g)
        flip = torch.rand(total, generator=g) < 0.5
        if not self.flip:
            flip.zero_()
        mine = slice(self.rank, total, self.world_size)
        return {"index": perm[mine], "top": top[mine], "left": left[mine], "flip": flip[mine]}

    def _gather(self, index, top=None, left=None, flip=None) -> torch.Tensor:
        """uint8 B x S x S x C: crop at (top, left) of the padded images, mirrored where ``flip``."""
        s, p = self.image_size, self.pad
        if top is None:
            return self._store[index, p:p + s, p:p + s]
        ar = torch.arange(s, device=self.device)
        rows = top[:, None] + ar
        cols = torch.where(flip[:, None], left[:, None] + (s - 1 - ar), left[:, None] + ar)
        return self._store[index[:, None, None], rows[:, :, None], cols[:, None, :]]

    def _normalise(self, nhwc: torch.Tensor) -> torch.Tensor:
        x = nhwc.permute(0, 3, 1, 2)               # channels-last memory
        if not self.channels_last:
            x = x.contiguous()
        return x.float().div_(255.0).sub_(self.mean).div_(self.std)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        plan = {k: v.to(self.device) for k, v in self.epoch_plan().items()}
        n = len(plan["index"])
        stop = n - n % self.batch_size if self.drop_last else n
        for s in range(0, stop, self.batch_size):
            part = {k: v[s:s + self.batch_size] for k, v in plan.items()}
            yield self._normalise(self._gather(**part)), self.labels[part["index"]]


class _PilDataset(torch.utils.data.Dataset):
    def __init__(self, arrays: ImageArrays, transform):
        self.images, self.labels, self.transform = arrays.images, arrays.labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        from PIL import Image  # lazy: PIL only on the torchvision path (make_pil_loader)
        return self.transform(Image.fromarray(self.images[i])), int(self.labels[i])


def make_pil_loader(arrays: ImageArrays, batch_size: int, train: bool, image_size: int,
                    num_workers: int = 0, seed: int = 0) -> torch.utils.data.DataLoader:
    """The torchvision path: Resize, [RandomCrop(padding=S/8), RandomHorizontalFlip], ToTensor,
    Normalize(0.5, 0.5), per image, shuffled (train) by a generator seeded with ``seed``."""
    from torchvision import transforms as T  # lazy: torchvision costs ~1.8 s on top of torch, only for loader=pil

    steps = [T.Resize(image_size)]
    if train:
        steps += [T.RandomCrop(image_size, padding=image_size // 8), T.RandomHorizontalFlip()]
    steps += [T.ToTensor(), T.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))]
    return torch.utils.data.DataLoader(
        _PilDataset(arrays, T.Compose(steps)), batch_size=batch_size, shuffle=train, drop_last=train,
        num_workers=num_workers, generator=torch.Generator().manual_seed(seed),
        persistent_workers=num_workers > 0)
