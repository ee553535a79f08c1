"""dass.task.Task: a dataset bound to a teacher in a space. Its maps against students built and run one
by one, its dataset features and accuracy against the images computed by hand, the teacher loaded
once, the support point as the predictor reads it, and the refusal of a teacher of another space or
class count."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import dass.task
from dass import config as cfgmod
from dass.data.arrays import ImageArrays, write_split
from dass.database.format import FORMAT_V1
from dass.database.saved import SavedTask
from dass.errors import DassError
from dass.io import atomic_torch_save
from dass.predictor.data import TaskData, support_inputs
from dass.space import ResNet, build_remapped, load_space, macs, onehot, params, sample_unique, teacher_arch
from dass.task import Task
from synthetic_db import NUM_CLASSES, random_teacher_sd, teacher_net, tiny_space

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def space():
    return tiny_space()


def one_by_one(archs, sd, space, seed: int, strategy: str) -> torch.Tensor:
    """The reference: each student built, remapped from the teacher and run alone on the noise image,
    its last stage zero-padded to the teacher's width."""
    x = torch.randn(1, space.in_channels, space.image_size, space.image_size,
                    generator=torch.Generator().manual_seed(seed))
    out = []
    with torch.no_grad():
        for a in archs:
            m = build_remapped(a, space, NUM_CLASSES, sd, strategy).eval().forward_stages(x)[-1][0]
            out.append(F.pad(m, (0, 0, 0, 0, 0, space.stage_widths[-1] - m.shape[0])))
    return torch.stack(out)


def save(sd, space, path, **extra):
    atomic_torch_save({"state_dict": sd, "space": cfgmod.to_dict(space), "num_classes": NUM_CLASSES, **extra}, path)
    return path


def noise_arrays(n: int, seed: int, num_classes: int = NUM_CLASSES, labels=None) -> ImageArrays:
    images = np.random.default_rng(seed).integers(0, 256, size=(n, 16, 16, 3), dtype=np.uint8)
    return ImageArrays(images, np.arange(n) % num_classes if labels is None else labels, num_classes, "noise")


def as_input(images: np.ndarray) -> torch.Tensor:
    return (torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255 - 0.5) / 0.5


@pytest.mark.parametrize("strategy", ["copy_paste_first", "copy_paste_uniform"])
def test_student_and_teacher_maps_equal_the_students_run_one_by_one(space, tmp_path, strategy):
    sd = random_teacher_sd(space, 3)
    task = Task(space, teacher=save(sd, space, tmp_path / "t.pt"), remap=strategy, noise_seed=7)
    archs = sample_unique(space, 9, np.random.default_rng(0))
    maps = task.student_maps(archs, batch_size=4)           # batched: 3 batches
    assert maps.dtype == torch.float16 and maps.shape == (9, 16, 2, 2)
    torch.testing.assert_close(maps.float(), one_by_one(archs, sd, space, 7, strategy), rtol=1e-3, atol=1e-3)
    t = task.teacher_map()
    assert t.dtype == torch.float16
    torch.testing.assert_close(t.float(), one_by_one([teacher_arch(space)], sd, space, 7, strategy)[0],
                               rtol=1e-3, atol=1e-3)
    other = Task(space, teacher=tmp_path / "t.pt", remap=strategy, noise_seed=8).teacher_map()
    assert not torch.equal(other, t)                         # the noise seed is the task's


def test_dataset_features_are_a_class_balanced_sample_of_train_images(space):
    sd = random_teacher_sd(space, 5)
    arrays = noise_arrays(30, 0)
    with torch.no_grad():
        every = teacher_net(sd, space).forward_stages(as_input(arrays.images))[-1].mean(dim=(2, 3))
    for max_total, expect in ((100, 2 * NUM_CLASSES), (7, 7)):
        task = Task(space, noise_seed=1).use_teacher(sd).use_arrays(train=arrays)
        feats = task.dataset_features(per_class=2, max_total=max_total)
        assert feats.shape == (expect, space.stage_widths[-1]) and feats.dtype == torch.float16
        dist = torch.cdist(feats.float(), every)
        assert (dist.min(dim=1).values < 1e-2).all()
        picked = dist.argmin(dim=1).tolist()
        assert len(set(picked)) == expect
        counts = np.bincount(arrays.labels[picked], minlength=NUM_CLASSES)
        assert counts.max() <= 2
        if max_total == 100:
            assert (counts == 2).all()  # class-balanced


def test_teacher_accuracy_counts_correct_predictions(space):
    sd = random_teacher_sd(space, 6)
    images = noise_arrays(12, 1).images
    with torch.no_grad():
        guess = teacher_net(sd, space)(as_input(images)).argmax(1).numpy()
    labels = guess.copy()
    labels[:3] = (guess[:3] + 1) % NUM_CLASSES      # 3 of 12 wrong -> 75 %
    task = Task(space).use_teacher(sd).use_arrays(test=ImageArrays(images, labels, NUM_CLASSES, "noise"))
    assert task.teacher_accuracy() == pytest.approx(75.0)


def test_the_teacher_is_loaded_once(space, tmp_path, monkeypatch):
    sd = random_teacher_sd(space, 2)
    root = tmp_path / "data"
    for split, n in (("train", 20), ("test", 10)):
        write_split(root, "dtd", split, noise_arrays(n, n))
    path = save(sd, space, tmp_path / "t.pt", metrics={"best_acc": 61.5})
    loads = []
    real = dass.task.load_teacher
    monkeypatch.setattr(dass.task, "load_teacher", lambda *a, **k: loads.append(a[0]) or real(*a, **k))
    task = Task(space, "dtd", root, path, noise_seed=3)
    task.teacher_map()
    task.student_maps(sample_unique(space, 3, np.random.default_rng(1)))
    task.dataset_features(2, 8)
    task.teacher_accuracy()
    task.proxy_batches(["naswot", "synflow"], 4, 0)
    assert task.recorded_accuracy() == 61.5 and task.support_point().accuracy == 61.5
    assert loads == [path]
    # a task that takes its class count from its teacher loads it there, once too
    loads.clear()
    Task.for_teacher(space, path, "dtd", root).teacher_map()
    assert loads == [path]


def costs(archs, space) -> dict:
    """The students' ``macs`` and ``params`` as a task file holds them."""
    return {"macs": torch.tensor([macs(a, space, NUM_CLASSES) for a in archs]),
            "params": torch.tensor([params(a, space, NUM_CLASSES) for a in archs])}


def test_the_support_point_is_the_one_the_predictor_reads(space, tmp_path):
    """The support inputs of a Task's support point equal those TaskData builds from a task file
    holding the same teacher map and encoding; the teacher's row is its own map as S and T."""
    sd = random_teacher_sd(space, 4)
    task = Task(space, "synth", noise_seed=2).use_teacher(sd).use_arrays(train=noise_arrays(20, 2))
    archs = sample_unique(space, 4, np.random.default_rng(3))
    t = teacher_arch(space)
    d = {"format": FORMAT_V1,
         "task": {"key": "k", "dataset": "synth", "split": "meta_train", "num_classes": NUM_CLASSES},
         "space": cfgmod.to_dict(space), "noise_seed": 2, "remap": "copy_paste_first",
         "teacher": {"arch": t.to_dict(), "best_acc": 70.0, "onehot": onehot(t, space), "fmap": task.teacher_map()},
         "students": {"arch": [a.to_dict() for a in archs], "best_acc": torch.full((4,), 50.0),
                      "onehot": torch.stack([onehot(a, space) for a in archs]),
                      "fmap": task.student_maps(archs), **costs(archs, space)},
         "dataset_feats": task.dataset_features(2, 8)}
    saved = TaskData.from_db(d)
    saved.proxy = torch.ones(4, 2)
    point = task.support_point(70.0)
    assert point == point and point.accuracy == saved.support_point.accuracy == 70.0
    needs = {"smap", "tmap", "onehot", "graph", "cost", "dset", "proxy"}
    ours = support_inputs(point, space, NUM_CLASSES, needs, saved.dset, num_proxies=2)
    theirs = saved.support(needs)
    assert set(ours) == set(theirs) == needs
    for k in needs - {"graph"}:
        torch.testing.assert_close(ours[k].float(), theirs[k].float())
    for k in theirs["graph"]:
        torch.testing.assert_close(ours["graph"][k], theirs["graph"][k])
    ref = one_by_one([t], sd, space, 2, "copy_paste_first")
    torch.testing.assert_close(ours["smap"][0].float(), ref[0], rtol=1e-3, atol=1e-3)
    torch.testing.assert_close(ours["tmap"].float(), ref[0], rtol=1e-3, atol=1e-3)
    assert ours["proxy"].tolist() == [[0.0, 0.0]]


def test_a_teacher_of_another_space_or_class_count_is_refused(space, tmp_path):
    other = load_space(str(ROOT / "configs/space/cpu.yaml"))
    net = ResNet(teacher_arch(other), other, NUM_CLASSES)
    foreign = save(net.state_dict(), other, tmp_path / "other.pt")
    with pytest.raises(DassError, match="space"):
        Task(space, teacher=foreign).teacher()
    with pytest.raises(DassError):
        Task(space).use_teacher(net.state_dict())
    mine = save(random_teacher_sd(space, 1), space, tmp_path / "mine.pt")
    with pytest.raises(DassError, match=f"{NUM_CLASSES} classes"):
        Task(space, teacher=mine, num_classes=3).teacher()
    with pytest.raises(DassError, match=f"{NUM_CLASSES} classes"):     # the dataset's class count is the task's
        Task(space, "noise", teacher=mine).use_arrays(train=noise_arrays(12, 0, num_classes=3)).teacher()
    with pytest.raises(DassError, match="classes"):
        Task(space).use_teacher(random_teacher_sd(space, 1)).use_arrays(test=noise_arrays(12, 0, num_classes=3))
    with pytest.raises(DassError, match="no teacher"):
        Task(space, "noise").teacher_map()


def test_a_saved_task_gives_back_its_task(space, tmp_path):
    """Task.from_saved reads a saved database task (SavedTask of a task dict): its space, dataset, class
    count, remap, noise seed and teacher (the file's, or the one given); its teacher map is the one the
    file holds."""
    mine = save(random_teacher_sd(space, 9), space, tmp_path / "mine.pt")
    made = Task(space, "glyphs/x", teacher=mine, num_classes=NUM_CLASSES, remap="copy_paste_uniform", noise_seed=4)
    t, none = teacher_arch(space), torch.zeros(0)
    saved = SavedTask.from_db({
        "task": {"key": "glyphs-x", "dataset": "glyphs/x", "split": "meta_test", "num_classes": NUM_CLASSES,
                 "teacher_ckpt": str(mine)},
        "space": cfgmod.to_dict(space), "remap": "copy_paste_uniform", "noise_seed": 4,
        "teacher": {"arch": t.to_dict(), "best_acc": 50.0, "onehot": onehot(t, space), "fmap": made.teacher_map()},
        "students": {"arch": [], "onehot": none, "fmap": none, "macs": none, "params": none}})
    task = Task.from_saved(saved, "root")
    assert (task.dataset, task.data_root, task.num_classes, task.remap, task.noise_seed) == \
        ("glyphs/x", "root", NUM_CLASSES, "copy_paste_uniform", 4)
    assert cfgmod.to_dict(task.space) == cfgmod.to_dict(space) and task.teacher_path == mine
    assert torch.equal(task.teacher_map(), saved.teacher_fmap)
    other = save(random_teacher_sd(space, 10), space, tmp_path / "other.pt")
    assert Task.from_saved(saved, teacher=other).teacher_path == other


def test_search_and_meta_training_adapt_on_the_same_support_point(space, tmp_path):
    """Search's AdaptedScorer (a Task, its support point, maps computed) scores students as the
    meta-training path does on the saved task holding the same maps (TaskData, predict_task)."""
    from dass.predictor import InputDims, LoadedPredictor, Predictor, PredictorConfig
    from dass.predictor.adapt import predict_task
    from dass.search.searcher import AdaptedScorer
    sd = random_teacher_sd(space, 11)
    task = Task(space, "synth", noise_seed=5).use_teacher(sd, metrics={"best_acc": 80.0})
    archs = sample_unique(space, 6, np.random.default_rng(5))
    torch.manual_seed(0)
    model = Predictor(PredictorConfig(InputDims.for_space(space), "STA", "onehot", cost_features=True))
    pred = LoadedPredictor(model, {k: torch.full_like(v, 0.01) for k, v in model.named_parameters()}, space,
                           {"kind": "raw", "label": "best_acc", "support_default": 0.0},
                           {"steps": 2, "first_order": False}, {"noise_seed": 5, "remap": "copy_paste_first"})
    t = teacher_arch(space)
    saved = TaskData.from_db({
        "task": {"key": "k", "dataset": "synth", "split": "meta_test", "num_classes": NUM_CLASSES},
        "space": cfgmod.to_dict(space), "noise_seed": 5, "remap": "copy_paste_first",
        "teacher": {"arch": t.to_dict(), "best_acc": 80.0, "onehot": onehot(t, space), "fmap": task.teacher_map()},
        "students": {"arch": [a.to_dict() for a in archs], "best_acc": torch.full((6,), 50.0),
                     "onehot": torch.stack([onehot(a, space) for a in archs]), "fmap": task.student_maps(archs),
                     **costs(archs, space)}})
    ours = AdaptedScorer(pred, task, task.support_point()).score(archs)
    theirs = predict_task(pred.model, pred.inner_lrs, pred.target, 2, saved)
    torch.testing.assert_close(ours, theirs.float())
    assert len(set(ours.tolist())) > 1          # the scores rank, they are not all one value
