"""Loaders: crop/flip/normalise semantics against hand computations, determinism, sharding, eval order."""
import numpy as np
import pytest
import torch

from dass.data.arrays import ImageArrays
from dass.data.loader import DeviceLoader, LoaderConfig, make_pil_loader
from dass.errors import DassError


def _arrays(n=12, size=3, seed=0) -> ImageArrays:
    """n random images; label i = image i, so a batch's labels say which images it holds."""
    images = np.random.default_rng(seed).integers(1, 256, (n, size, size, 3), dtype=np.uint8)
    return ImageArrays(images, np.arange(n), n, "toy")


def _normalised(img: np.ndarray) -> torch.Tensor:
    """Hand normalisation of one H x W x C uint8 image: C x H x W, (x / 255 - 0.5) / 0.5."""
    return torch.from_numpy((img.astype(np.float64) / 255.0 - 0.5) / 0.5).permute(2, 0, 1).float()


def _epoch(loader):
    xs, ys = zip(*loader)
    return torch.cat(xs), torch.cat(ys)


def test_eval_is_fixed_order_without_augmentation():
    data = _arrays(n=10)
    loader = DeviceLoader(data, LoaderConfig(batch_size=4, train=False, image_size=3), device="cpu")
    assert len(loader) == 3 and loader.pad == 0          # pad defaults to image_size // 8
    batches = list(loader)
    assert [len(y) for _, y in batches] == [4, 4, 2]
    x, y = _epoch(loader)
    assert y.tolist() == list(range(10))
    for i in range(10):
        torch.testing.assert_close(x[i], _normalised(data.images[i]), rtol=0, atol=1e-6)


def test_pad_zero_without_flip_is_identity_on_a_permutation():
    data = _arrays()
    loader = DeviceLoader(data, LoaderConfig(batch_size=5, train=True, image_size=3, pad=0, flip=False,
                                             drop_last=False, seed=3), device="cpu")
    x, y = _epoch(loader)
    assert sorted(y.tolist()) == list(range(12)) and y.tolist() != list(range(12))
    for xi, yi in zip(x, y):
        torch.testing.assert_close(xi, _normalised(data.images[yi]), rtol=0, atol=1e-6)


def test_flip_equals_torch_flip():
    data = _arrays(n=32)
    loader = DeviceLoader(data, LoaderConfig(batch_size=8, train=True, image_size=3, pad=0), device="cpu")
    x, y = _epoch(loader)
    flipped = 0
    for xi, yi in zip(x, y):
        plain = _normalised(data.images[yi])
        if torch.allclose(xi, torch.flip(plain, dims=[-1]), rtol=0, atol=1e-6):
            flipped += 1
        else:
            torch.testing.assert_close(xi, plain, rtol=0, atol=1e-6)
    assert 0 < flipped < 32


def _windows(img: np.ndarray, pad: int) -> list[np.ndarray]:
    """Every crop of the zero-padded image, mirrored or not (the hand-computed candidates)."""
    h, w = img.shape[:2]
    padded = np.pad(img, ((pad, pad), (pad, pad), (0, 0)))
    crops = [padded[t:t + h, l:l + w] for t in range(2 * pad + 1) for l in range(2 * pad + 1)]
    return crops + [c[:, ::-1] for c in crops]


def _which_window(x: torch.Tensor, img: np.ndarray, pad: int) -> int:
    matches = [k for k, c in enumerate(_windows(img, pad))
               if torch.allclose(x, _normalised(np.ascontiguousarray(c)), rtol=0, atol=1e-6)]
    assert matches, "output is not a crop/flip of the zero-padded image"
    return matches[0]


def test_crop_is_a_window_of_the_zero_padded_image():
    data = _arrays(n=12, size=3)
    loader = DeviceLoader(data, LoaderConfig(batch_size=6, train=True, image_size=3, pad=1, seed=1), device="cpu")
    seen = set()
    for epoch in range(12):
        loader.set_epoch(epoch)
        for x, y in loader:
            seen |= {_which_window(xi, data.images[yi], 1) for xi, yi in zip(x, y)}
    assert len(seen) == 18                     # 9 offsets x (flip or not), each drawn at some point
    # hand check of one window: top-left offset, no flip -> zero row and column, then the image
    corner = _windows(data.images[0], 1)[0]
    assert corner[0].sum() == 0 and corner[:, 0].sum() == 0
    np.testing.assert_array_equal(corner[1:, 1:], data.images[0][:2, :2])


def test_normalisation_values():
    img = np.zeros((1, 2, 2, 3), dtype=np.uint8)
    img[0, 0, 1], img[0, 1, 0], img[0, 1, 1] = 255, 51, 102
    data = ImageArrays(img, np.array([0]), 1, "toy")
    x, _ = next(iter(DeviceLoader(data, LoaderConfig(1, train=False, image_size=2), device="cpu")))
    assert x.dtype == torch.float32
    assert x[0, :, 0, 0].tolist() == [-1.0] * 3 and x[0, :, 0, 1].tolist() == [1.0] * 3
    torch.testing.assert_close(x[0, :, 1, 0], torch.full((3,), -0.6))
    per_channel = DeviceLoader(data, LoaderConfig(1, train=False, image_size=2, mean=(0.4, 0.5, 0.6), std=(0.2,
                                                  0.25, 0.5)), device="cpu")
    x, _ = next(iter(per_channel))
    torch.testing.assert_close(x[0, :, 1, 1], torch.tensor([0.0, -0.4, -0.4]))   # 102/255 = 0.4


def test_epoch_determinism_and_resume():
    data = _arrays(n=20, size=4)

    def run(seed, epoch):
        loader = DeviceLoader(data, LoaderConfig(4, train=True, image_size=4, seed=seed), device="cpu")
        loader.set_epoch(epoch)
        return _epoch(loader)

    x1, y1 = run(0, 5)
    x2, y2 = run(0, 5)
    assert torch.equal(x1, x2) and torch.equal(y1, y2)
    assert not torch.equal(run(0, 6)[1], y1)
    assert not torch.equal(run(1, 5)[1], y1)
    loader = DeviceLoader(data, LoaderConfig(4, train=True, image_size=4, seed=0), device="cpu")
    for epoch in range(3):                       # other epochs first, then resume at 5
        loader.set_epoch(epoch)
        list(loader)
    loader.set_epoch(5)
    x3, y3 = _epoch(loader)
    assert torch.equal(x3, x1) and torch.equal(y3, y1)


@pytest.mark.parametrize("n", [12, 10])
def test_train_sharding_equal_counts_covering_every_index(n):
    data = _arrays(n=n)
    per_rank = []
    for rank in range(3):
        loader = DeviceLoader(data, LoaderConfig(2, train=True, image_size=3, seed=4, drop_last=False, rank=rank,
                                                 world_size=3), device="cpu")
        loader.set_epoch(2)
        per_rank.append(_epoch(loader)[1].tolist())
    assert [len(r) for r in per_rank] == [4, 4, 4]
    everything = sum(per_rank, [])
    assert sorted(set(everything)) == list(range(n))
    assert len(everything) - n == (12 - n)        # padding repeats only what is needed


def test_eval_sharding_counts_each_image_once():
    data = _arrays(n=10)
    got = [_epoch(DeviceLoader(data, LoaderConfig(3, train=False, image_size=3, rank=r, world_size=3),
                               device="cpu"))[1].tolist()
           for r in range(3)]
    assert got == [[0, 3, 6, 9], [1, 4, 7], [2, 5, 8]]


def test_len_and_drop_last():
    data = _arrays(n=10)
    assert len(DeviceLoader(data, LoaderConfig(4, train=True, image_size=3), device="cpu")) == 2
    assert len(list(DeviceLoader(data, LoaderConfig(4, train=True, image_size=3), device="cpu"))) == 2
    assert len(DeviceLoader(data, LoaderConfig(4, train=False, image_size=3), device="cpu")) == 3


def test_resize_once_and_channels_last():
    images = np.full((3, 8, 8, 3), 77, dtype=np.uint8)
    data = ImageArrays(images, np.arange(3), 3, "toy")
    loader = DeviceLoader(data, LoaderConfig(3, train=True, image_size=4, channels_last=True), device="cpu")
    assert loader.pad == 0 and loader.images.shape == (3, 3, 4, 4)
    x, _ = next(iter(loader))
    assert x.shape == (3, 3, 4, 4) and x.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(x, torch.full_like(x, (77 / 255 - 0.5) / 0.5))
    padded = DeviceLoader(data, LoaderConfig(3, train=True, image_size=16), device="cpu")
    assert padded.pad == 2 and padded.images.shape == (3, 3, 20, 20)
    assert int(padded.images[:, :, :2].sum()) == 0 and int(padded.images[:, :, 2:18, 2:18].min()) == 77


def test_pil_loader_matches_device_semantics():
    data = _arrays(n=8, size=8)
    dev_x, dev_y = _epoch(DeviceLoader(data, LoaderConfig(4, train=False, image_size=8), device="cpu"))
    pil_x, pil_y = _epoch(make_pil_loader(data, 4, train=False, image_size=8))
    assert torch.equal(pil_y, dev_y)
    torch.testing.assert_close(pil_x, dev_x, rtol=0, atol=1e-6)
    torch.manual_seed(0)
    for x, y in make_pil_loader(data, 4, train=True, image_size=8, seed=1):
        for xi, yi in zip(x, y):
            _which_window(xi, data.images[yi], 1)     # RandomCrop(padding=8 // 8) + flip


def test_bad_arguments():
    with pytest.raises(DassError, match="rank"):
        DeviceLoader(_arrays(), LoaderConfig(2, train=True, image_size=3, rank=2, world_size=2), device="cpu")
    with pytest.raises(DassError, match="mean"):
        DeviceLoader(_arrays(), LoaderConfig(2, train=True, image_size=3, mean=(0.5, 0.5)), device="cpu")
    with pytest.raises(DassError, match="unknown device"):
        DeviceLoader(_arrays(), LoaderConfig(2, train=True, image_size=3), device="tpu:9")
