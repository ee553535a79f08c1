"""The helpers that have one home each: devices, file hashes, label names, markdown tables, dataset
keys and teacher checkpoints (save, load, state-dict check, ``module.`` prefix)."""
import hashlib

import pytest
import torch

from assets.tiny_db import TINY
from dass.data import dataset_key
from dass.database.splits import LABELS
from dass.device import resolve_device
from dass.errors import DassError
from dass.evaluation.tables import markdown_table
from dass.hashing import file_sha256
from dass.io import safe_torch_load
from dass.teacher import check_teacher_state_dict, load_teacher, save_teacher, strip_module_prefix


def test_resolve_device():
    cuda = torch.cuda.is_available()
    assert resolve_device("auto").type == resolve_device(None).type == ("cuda" if cuda else "cpu")
    assert resolve_device("cpu") == torch.device("cpu") == resolve_device(torch.device("cpu"))
    with pytest.raises(DassError, match="unknown device 'gpu7'"):
        resolve_device("gpu7")
    if not cuda:  # the data loader's copy used to accept this and fail later, deep inside torch
        with pytest.raises(DassError, match="CUDA is not available"):
            resolve_device("cuda:0")


def test_file_sha256(tmp_path):
    (tmp_path / "abc").write_bytes(b"abc")  # the FIPS 180-2 test vector
    assert file_sha256(tmp_path / "abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    data = bytes(range(256)) * 4100  # several chunks and a partial one
    (tmp_path / "big").write_bytes(data)
    assert file_sha256(tmp_path / "big", chunk=1000) == hashlib.sha256(data).hexdigest()


def test_labels_have_one_definition():
    from dass.database import saved
    from dass.evaluation import baselines
    assert LABELS == ("best_acc", "final_acc")
    assert saved.LABELS is LABELS and baselines.LABELS is LABELS


def test_markdown_table_by_hand():
    got = markdown_table(["method", "a|b", "mean"], [["macs", "0.5", 1], ["x", "**0.7**", "nan"]])
    assert got == ("| method | a\\|b | mean |\n"
                   "| --- | ---: | ---: |\n"
                   "| macs | 0.5 | 1 |\n"
                   "| x | **0.7** | nan |\n")


@pytest.mark.parametrize("name, key", [("glyphs/latin", "glyphs-latin"), ("cub", "cub"),
                                       ("tiny_imagenet/3", "tiny_imagenet-3"),
                                       ("folder:/data/x/", "folder--data-x"), ("/", "dataset")])
def test_dataset_key(name, key):
    assert dataset_key(name) == key


def test_module_prefix_is_stripped_only_from_a_dataparallel_save():
    t = torch.zeros(1)
    assert strip_module_prefix({"module.a": t, "module.b.c": t}) == {"a": t, "b.c": t}
    assert strip_module_prefix({"module.a": t, "b": t}) == {"module.a": t, "b": t}


def test_teacher_checkpoint_round_trip(tiny_teacher, tmp_path):
    from dass.train.recipe import TeacherRecipe
    path = save_teacher(tmp_path / "t.pt", tiny_teacher, TINY, 5, "glyphs/x", {"best_acc": 61.5},
                        recipe=TeacherRecipe(epochs=3, lr=0.25), seed=7, source={"n": 1})
    raw = safe_torch_load(path)
    assert raw["num_classes"] == 5 and raw["dataset"] == "glyphs/x" and raw["source"] == {"n": 1}
    assert raw["seed"] == 7 and raw["recipe"]["epochs"] == 3 and raw["recipe"]["lr"] == 0.25
    assert raw["arch"] == {"depths": [2, 2, 2, 2], "widths": [[4, 4], [8, 8], [8, 8], [16, 16]]}
    net, sd, meta = load_teacher(path, TINY, num_classes=5)
    assert meta["metrics"] == {"best_acc": 61.5} and meta["dataset"] == "glyphs/x"
    assert meta["seed"] == 7 and meta["recipe"] == raw["recipe"]
    with pytest.raises(TypeError, match="recipe"):   # no writer may leave out what trained the teacher
        save_teacher(tmp_path / "u.pt", tiny_teacher, TINY, 5, "glyphs/x", {}, seed=1)
    assert sd.keys() == tiny_teacher.keys() and all(torch.equal(sd[k], tiny_teacher[k]) for k in sd)


def test_teacher_state_dict_check(tiny_teacher):
    sd = {k: v for k, v in tiny_teacher.items() if not k.endswith("num_batches_tracked")}
    fixed, classes = check_teacher_state_dict(sd, TINY, "t.pt")
    assert classes == 5 and fixed["bn1.num_batches_tracked"] == 0 and fixed.keys() == tiny_teacher.keys()
    with pytest.raises(DassError, match=r"t.pt: 'conv1.weight' has shape \(4, 3, 1, 1\).*needs \(4, 3, 3, 3\)"):
        check_teacher_state_dict({**tiny_teacher, "conv1.weight": torch.zeros(4, 3, 1, 1)}, TINY, "t.pt")
    with pytest.raises(DassError, match="has an unexpected 'extra'"):
        check_teacher_state_dict({**tiny_teacher, "extra": torch.zeros(1)}, TINY, "t.pt")
    with pytest.raises(DassError, match="no 2-d 'fc.weight'"):
        check_teacher_state_dict({k: v for k, v in tiny_teacher.items() if k != "fc.weight"}, TINY, "t.pt")


def test_teacher_at_half_precision(tiny_teacher, tmp_path):
    from dass.teacher.checkpoint import store_half
    from dass.hashing import tensor_dict_sha256
    f32 = save_teacher(tmp_path / "t32.pt", tiny_teacher, TINY, 5, "glyphs/x", {"best_acc": 61.5}, recipe=None, seed=None)
    record = store_half(f32, tmp_path / "t16.pt")
    assert record == {"dtype": "float16", "float32_sha256": hashlib.sha256(f32.read_bytes()).hexdigest(),
                      "float32_state_sha256": tensor_dict_sha256(tiny_teacher)}
    raw = safe_torch_load(tmp_path / "t16.pt")
    assert raw["half"] == record and raw["metrics"] == {"best_acc": 61.5} and raw["dataset"] == "glyphs/x"
    for k, v in tiny_teacher.items():  # floats stored as float16, counters untouched
        assert raw["state_dict"][k].dtype == (torch.float16 if v.is_floating_point() else v.dtype)
    _, sd, meta = load_teacher(tmp_path / "t16.pt", TINY, num_classes=5)
    assert meta["half"] == record
    for k, v in tiny_teacher.items():  # float32 again, each value its float16 rounding
        want = v.numpy().astype("float16").astype("float32") if v.is_floating_point() else v.numpy()
        assert sd[k].dtype == v.dtype and (sd[k].numpy() == want).all()
    _, sd32, meta32 = load_teacher(f32, TINY, num_classes=5)  # a float32 file still loads as it was
    assert meta32["half"] is None and all(torch.equal(sd32[k], tiny_teacher[k]) for k in sd32)
    before = (tmp_path / "t16.pt").read_bytes()  # halving a half file changes nothing
    assert store_half(tmp_path / "t16.pt") == record and (tmp_path / "t16.pt").read_bytes() == before
    big = {**tiny_teacher, "fc.bias": torch.full_like(tiny_teacher["fc.bias"], 70000.0)}
    save_teacher(tmp_path / "big.pt", big, TINY, 5, "glyphs/x", {}, recipe=None, seed=None)
    with pytest.raises(DassError, match="'fc.bias' holds 7e\\+04, beyond float16's 65504"):
        store_half(tmp_path / "big.pt")


def test_shipped_teachers_are_half_precision_and_load_as_float32():
    from pathlib import Path
    from dass.database.format import load_db
    root = Path(__file__).resolve().parents[2]
    files = sorted((root / "assets/cpu/teachers").glob("*/teacher.pt"))
    # shipped: the teachers of the meta-valid and meta-test tasks (the meta-train ones left git; their
    # proxies are in the shipped cache)
    db = load_db(root / "assets/cpu/db", ("meta_valid", "meta_test"))
    wanted = sorted(root / t["task"]["teacher_ckpt"] for t in db["meta_valid"] + db["meta_test"])
    assert len(wanted) == 12 and [f for f in files if f.parent.name.startswith("glyphs-")] == wanted
    for f in files:
        raw = safe_torch_load(f)
        assert raw["half"]["dtype"] == "float16" and len(raw["half"]["float32_sha256"]) == 64
        assert {v.dtype for v in raw["state_dict"].values()} == {torch.float16, torch.int64}
    _, sd, meta = load_teacher(files[0])
    assert {v.dtype for v in sd.values()} == {torch.float32, torch.int64} and meta["space"].name == "cpu"
