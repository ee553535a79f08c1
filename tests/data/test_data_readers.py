"""Dataset readers: the .npy layout, Tiny-ImageNet split tasks, image folders, the registry, the CLI."""
import json

import numpy as np
import pytest
from PIL import Image

from dass.data import tiny_imagenet
from dass.data.__main__ import main as data_main
from dass.data.arrays import ImageArrays, read_split, write_split
from dass.data.folder import load_image_folder
from dass.data.registry import dataset_info, list_datasets, load_dataset
from dass.errors import DassError


def _save(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, array)


def _savez(path, **arrays):
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)


def _npy_dataset(root, name, n_train=6, n_test=4, grey=False):
    """Images whose pixel (0, 0, 0) encodes the image index; labels i % 3."""
    shape = (8, 8) if grey else (8, 8, 3)
    for split, n in (("train", n_train), ("test", n_test)):
        images = np.zeros((n, *shape), dtype=np.uint8)
        images.reshape(n, -1)[:, 0] = np.arange(n) + 10
        _save(root / name / f"{split}_images.npy", images)
        _save(root / name / f"{split}_labels.npy", (np.arange(n) % 3).astype(np.int32))


# ------------------------------------------------------------------ npy layout

def test_write_read_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (5, 4, 6, 3), dtype=np.uint8)
    labels = np.array([0, 3, 1, 3, 2])
    write_split(tmp_path, "toy", "train", ImageArrays(images, labels, 4, "toy"))
    back = read_split(tmp_path, "toy", "train")
    assert back.images.dtype == np.uint8 and back.labels.dtype == np.int64
    np.testing.assert_array_equal(back.images, images)
    np.testing.assert_array_equal(back.labels, labels)
    assert back.num_classes == 4
    assert not list((tmp_path / "toy").glob("*.tmp"))


def test_grey_images_repeated_to_three_channels(tmp_path):
    _npy_dataset(tmp_path, "cub", grey=True)
    arrays = load_dataset("cub", tmp_path, "train")
    assert arrays.images.shape == (6, 8, 8, 3)
    assert arrays.images[4, 0, 0].tolist() == [14, 14, 14]
    assert arrays.labels.tolist() == [0, 1, 2, 0, 1, 2]


def test_num_classes_agrees_between_splits(tmp_path):
    _npy_dataset(tmp_path, "dtd")
    _save(tmp_path / "dtd" / "test_labels.npy", np.array([0, 1, 2, 6]))   # class 6 only in test
    assert load_dataset("dtd", tmp_path, "train").num_classes == 7


def test_image_size_resizes(tmp_path):
    _npy_dataset(tmp_path, "quickdraw")
    arrays = load_dataset("quickdraw", tmp_path, "test", image_size=4)
    assert arrays.images.shape == (4, 4, 4, 3)


@pytest.mark.parametrize("break_it, message", [
    (lambda d: (d / "train_images.npy").unlink(), r"file not found: .*cub/train_images\.npy"),
    (lambda d: _save(d / "train_labels.npy", np.arange(5) % 3), r"train_labels\.npy: 5 labels but .* 6 images"),
    (lambda d: _save(d / "train_labels.npy", np.array([0, 1, 2, 0, 1, -1])), r"train_images\.npy: labels must lie in \[0"),
    (lambda d: _save(d / "train_images.npy", np.zeros((0, 8, 8, 3), np.uint8)), r"train_images\.npy"),
    (lambda d: _save(d / "train_images.npy", np.zeros((6, 8, 8, 3), np.float32)), r"train_images\.npy: images must be uint8"),
    (lambda d: (d / "train_images.npy").write_bytes(b"junk"), r"train_images\.npy: not a readable"),
    (lambda d: _save(d / "train_images.npy", np.array([{"a": 1}] * 6, dtype=object)), r"train_images\.npy: not a readable"),
])
def test_bad_npy_input_is_one_dass_error_naming_the_file(tmp_path, break_it, message):
    _npy_dataset(tmp_path, "cub")
    break_it(tmp_path / "cub")
    with pytest.raises(DassError, match=message):
        load_dataset("cub", tmp_path, "train")


def test_missing_dataset_folder(tmp_path):
    with pytest.raises(DassError, match=r"dataset folder not found: .*stanford_cars"):
        load_dataset("stanford_cars", tmp_path, "train")


def test_subset_keeps_classes():
    arrays = ImageArrays(np.arange(4, dtype=np.uint8).reshape(4, 1, 1), np.array([0, 1, 2, 1]), 5, "x")
    sub = arrays.subset(np.array([3, 1]))
    assert sub.images[:, 0, 0, 0].tolist() == [3, 1] and sub.labels.tolist() == [1, 1] and sub.num_classes == 5


def test_image_arrays_validation():
    with pytest.raises(DassError, match="2 images but 3 labels"):
        ImageArrays(np.zeros((2, 4, 4), np.uint8), np.zeros(3), 2, "x")
    with pytest.raises(DassError, match="labels must lie in"):
        ImageArrays(np.zeros((2, 4, 4), np.uint8), np.array([0, 2]), 2, "x")
    with pytest.raises(DassError, match="whole numbers"):
        ImageArrays(np.zeros((2, 4, 4), np.uint8), np.array([0.0, 0.5]), 2, "x")


# ------------------------------------------------------------------ Tiny-ImageNet

def _tiny(root, labels_in_subfolder, n_classes=6, per_class=4):
    """Train image i has pixel value i at (0, 0, 0) and class i // per_class."""
    folder = root / "tiny_imagenet"
    n = n_classes * per_class
    images = np.zeros((n, 4, 4, 3), dtype=np.uint8)
    images[:, 0, 0, 0] = np.arange(n)
    labels = np.arange(n) // per_class
    _save(folder / "train_images.npy", images)
    _save(folder / "valid_images.npy", images[:n_classes])
    lab = folder / "labels" if labels_in_subfolder else folder
    _save(lab / "train_labels.npy", labels)
    _save(lab / "valid_labels.npy", np.arange(n_classes))
    return labels


@pytest.mark.parametrize("labels_in_subfolder", [False, True])
def test_tiny_split_from_npz_remaps_labels(tmp_path, labels_in_subfolder):
    _tiny(tmp_path, labels_in_subfolder)
    # classes 4 and 1 in that order; images of class 4 are 16..19, of class 1 are 4..7
    _savez(tiny_imagenet.split_path(tmp_path, 3), label_list=np.array([4, 1]),
             idx_train=np.array([4, 5, 16, 17, 18]), idx_valid=np.array([19, 6]))
    train = load_dataset("tiny_imagenet-3", tmp_path, "train")
    assert train.num_classes == 2 and train.name == "tiny_imagenet-3"
    assert train.images[:, 0, 0, 0].tolist() == [4, 5, 16, 17, 18]
    assert train.labels.tolist() == [1, 1, 0, 0, 0]
    test = load_dataset("tiny_imagenet-3", tmp_path, "test")
    assert test.images[:, 0, 0, 0].tolist() == [19, 6]
    assert test.labels.tolist() == [0, 1]
    full = load_dataset("tiny_imagenet", tmp_path, "test")
    assert full.num_classes == 6 and len(full) == 6
    assert dataset_info("tiny_imagenet-3", tmp_path) == {"name": "tiny_imagenet-3", "num_classes": 2, "train": 5,
                                                         "test": 2, "image_shape": [4, 4, 3]}
    assert dataset_info("tiny_imagenet", tmp_path) == {"name": "tiny_imagenet", "num_classes": 6, "train": 24,
                                                       "test": 6, "image_shape": [4, 4, 3]}


def test_tiny_split_naming_a_class_outside_label_list(tmp_path):
    _tiny(tmp_path, False)
    _savez(tiny_imagenet.split_path(tmp_path, 0), label_list=np.array([4, 1]),
             idx_train=np.array([0, 16]), idx_valid=np.array([17]))
    with pytest.raises(DassError, match=r"split_0\.npz: .*class 0, which is not in label_list"):
        load_dataset("tiny_imagenet-0", tmp_path, "train")


def test_tiny_missing_labels_names_both_places(tmp_path):
    _tiny(tmp_path, True)
    (tmp_path / "tiny_imagenet" / "labels" / "train_labels.npy").unlink()
    with pytest.raises(DassError, match=r"labels not found: .*train_labels\.npy.*labels/train_labels\.npy"):
        load_dataset("tiny_imagenet-0", tmp_path, "train")


def test_generated_splits(tmp_path):
    n_classes, per_class = 10, 6
    labels = np.repeat(np.arange(n_classes), per_class)
    splits = tiny_imagenet.generate_splits(labels, num_splits=4, classes_per_split=4, valid_per_class=2, seed=7)
    # 10 classes / 4 per split -> 2 splits per permutation: splits 0 and 1 are disjoint, as are 2 and 3
    assert not set(splits[0]["label_list"]) & set(splits[1]["label_list"])
    assert not set(splits[2]["label_list"]) & set(splits[3]["label_list"])
    for s in splits:
        classes = s["label_list"]
        assert len(set(classes)) == 4
        tr, va = s["idx_train"], s["idx_valid"]
        assert not set(tr) & set(va)
        assert sorted(np.concatenate([tr, va])) == sorted(np.flatnonzero(np.isin(labels, classes)))
        assert np.bincount(labels[va], minlength=n_classes)[classes].tolist() == [2] * 4
        assert list(tr) == sorted(tr) and list(va) == sorted(va)
    again = tiny_imagenet.generate_splits(labels, num_splits=4, classes_per_split=4, valid_per_class=2, seed=7)
    for a, b in zip(splits, again):
        for k in a:
            np.testing.assert_array_equal(a[k], b[k])


def test_absent_split_files_are_generated_and_used(tmp_path):
    """Defaults: 10 splits of 40 classes, 50 validation images per class."""
    n_classes, per_class = 40, 53
    n = n_classes * per_class
    labels = np.arange(n) % n_classes
    images = np.zeros((n, 2, 2, 3), dtype=np.uint8)           # image index in two pixels
    images[:, 0, 0, 0], images[:, 0, 1, 0] = np.arange(n) % 256, np.arange(n) // 256
    _save(tmp_path / "tiny_imagenet" / "train_images.npy", images)
    _save(tmp_path / "tiny_imagenet" / "labels" / "train_labels.npy", labels)
    train = load_dataset("tiny_imagenet-7", tmp_path, "train")
    test = load_dataset("tiny_imagenet-7", tmp_path, "test")
    files = sorted(p.name for p in (tmp_path / "tiny_imagenet" / "10_split").iterdir())
    assert files == sorted(f"split_{k}.npz" for k in range(10))
    with np.load(tmp_path / "tiny_imagenet" / "10_split" / "split_7.npz") as z:
        label_list, idx_train, idx_valid = z["label_list"], z["idx_train"], z["idx_valid"]
    assert sorted(label_list.tolist()) == list(range(40))
    assert len(idx_valid) == 40 * 50 and len(idx_train) == 40 * 3
    for arrays, idx in ((train, idx_train), (test, idx_valid)):
        index = arrays.images[:, 0, 0, 0].astype(int) + 256 * arrays.images[:, 0, 1, 0].astype(int)
        assert index.tolist() == idx.tolist()
        assert arrays.labels.tolist() == [label_list.tolist().index(labels[i]) for i in index]
        assert arrays.num_classes == 40


# ------------------------------------------------------------------ image folders

def _png(path, colour):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (6, 4), colour).save(path)


def test_image_folder_train_test(tmp_path):
    for split in ("train", "test"):
        _png(tmp_path / split / "zebra" / "a.png", (200, 0, 0))
        _png(tmp_path / split / "ant" / "b.png", (0, 50, 0))
    train = load_dataset(f"folder:{tmp_path}", "unused", "train", image_size=4)
    assert train.num_classes == 2 and train.images.shape == (2, 4, 4, 3)
    # classes sorted by name: ant = 0, zebra = 1
    assert train.labels.tolist() == [0, 1]
    assert train.images[0, 2, 2].tolist() == [0, 50, 0] and train.images[1, 0, 3].tolist() == [200, 0, 0]


def test_image_folder_single_folder_split_by_fraction(tmp_path):
    for c in ("a", "b"):
        for i in range(5):
            _png(tmp_path / c / f"{i}.png", (i, 0, 0))
    train = load_image_folder(tmp_path, "train", test_fraction=0.4, seed=3)
    test = load_image_folder(tmp_path, "test", test_fraction=0.4, seed=3)
    assert len(train) == 6 and len(test) == 4
    for c in (0, 1):
        ids = sorted(train.images[train.labels == c, 0, 0, 0].tolist() + test.images[test.labels == c, 0, 0, 0].tolist())
        assert ids == [0, 1, 2, 3, 4]


def test_empty_image_folder(tmp_path):
    (tmp_path / "a").mkdir()
    with pytest.raises(DassError, match=f"{tmp_path}: no images"):
        load_image_folder(tmp_path, "train")
    with pytest.raises(DassError, match="image folder not found"):
        load_image_folder(tmp_path / "nope", "train")


# ------------------------------------------------------------------ registry and CLI

def test_unknown_dataset_lists_known_names():
    with pytest.raises(DassError, match=r"unknown dataset 'imagenet' \(known: .*cub.*tiny_imagenet-<k>.*glyphs/<member>"):
        load_dataset("imagenet", "/nonexistent", "train")


def test_list_datasets_and_cli(tmp_path, capsys):
    _npy_dataset(tmp_path, "cub")
    _npy_dataset(tmp_path / "glyphs", "latin")
    assert list_datasets(tmp_path) == ["cub", "glyphs/latin"]
    with pytest.raises(SystemExit) as e:
        data_main(["describe", "--root", str(tmp_path)])
    assert e.value.code == 0
    described = {d["name"]: d for d in json.loads(capsys.readouterr().out)["datasets"]}
    assert described["glyphs/latin"] == {"name": "glyphs/latin", "num_classes": 3, "train": 6, "test": 4,
                                         "image_shape": [8, 8, 3]}
    with pytest.raises(SystemExit) as e:
        data_main(["validate", "glyphs/latin", "--root", str(tmp_path)])
    assert e.value.code == 0 and json.loads(capsys.readouterr().out)["ok"] is True
    _save(tmp_path / "cub" / "test_labels.npy", np.array([0, 1, 2]))
    with pytest.raises(SystemExit) as e:
        data_main(["validate", "cub", "--root", str(tmp_path)])
    assert e.value.code == 2
    assert "3 labels but" in capsys.readouterr().err


# ------------------------------------------------------------------ npy:<path> (any folder)

def test_npy_folder_at_any_path(tmp_path):
    _npy_dataset(tmp_path / "deep" / "dir", "mine", grey=True)
    folder = tmp_path / "deep" / "dir" / "mine"
    train = load_dataset(f"npy:{folder}", "unused-root", "train")
    test = load_dataset(f"npy:{folder}", "unused-root", "test", image_size=4)
    assert train.name == f"npy:{folder}" and train.num_classes == 3
    assert train.images.shape == (6, 8, 8, 3) and train.images[5, 0, 0].tolist() == [15, 15, 15]
    assert train.labels.tolist() == [0, 1, 2, 0, 1, 2]
    assert test.images.shape == (4, 4, 4, 3) and test.labels.tolist() == [0, 1, 2, 0]
    assert dataset_info(f"npy:{folder}", "unused-root") == {"name": f"npy:{folder}", "num_classes": 3, "train": 6,
                                                            "test": 4, "image_shape": [8, 8, 3]}


@pytest.mark.parametrize("break_it, message", [
    (lambda d: None, None),
    (lambda d: (d / "test_labels.npy").unlink(), r"file not found: .*mine/test_labels\.npy"),
    (lambda d: _save(d / "train_labels.npy", np.array([0, 2, 2, 0, 2, 2])),
     r"mine/train_labels\.npy: class 1 of 0\.\.2 has no training image"),
    (lambda d: _save(d / "train_labels.npy", np.array([1, 2, 2, 1, 2, 3])), r"class 0 of 0\.\.3 has no training"),
    (lambda d: [_save(d / f"{s}_labels.npy", np.zeros(n, np.int64)) for s, n in (("train", 6), ("test", 4))],
     r"mine: labels name 1 class"),
    (lambda d: _save(d / "test_images.npy", np.zeros((4, 8, 8, 3), np.int16)), r"test_images\.npy: images must be uint8"),
    (lambda d: _save(d / "test_images.npy", np.zeros((4, 8), np.uint8)), r"test_images\.npy: images must be N x H x W"),
    (lambda d: _save(d / "test_labels.npy", np.array([0.5, 1, 2, 0])), r"test_labels\.npy|labels must be whole"),
])
def test_npy_folder_validation(tmp_path, break_it, message):
    _npy_dataset(tmp_path, "mine")
    break_it(tmp_path / "mine")
    if message is None:
        assert len(load_dataset(f"npy:{tmp_path / 'mine'}", None, "test")) == 4
        return
    with pytest.raises(DassError, match=message):
        load_dataset(f"npy:{tmp_path / 'mine'}", None, "test")


def test_npy_folder_missing(tmp_path):
    with pytest.raises(DassError, match=r"dataset folder not found: .*nowhere"):
        load_dataset(f"npy:{tmp_path / 'nowhere'}", None, "train")
