"""The teacher-logit cache: exact reuse (bitwise equal KD runs), hits and misses, damaged files
rebuilt and never used, two racing writers leaving one valid cache."""
import dataclasses
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from dass.data.loader import DeviceLoader, LoaderConfig
from dass.space import Arch, build, teacher_arch
from dass.train import KDSetting, kd_train, kd_train_many
from dass import hashing
from dass.train import logit_cache

from train.test_lockstep import RECIPE, SPACE, make_setting, setting, teacher_forwards, without_time  # noqa: F401

ARCHS = [Arch((1, 1, 1, 1), ((4,), (8,), (16,), (32,))),
         Arch((2, 1, 2, 1), ((8, 6), (12,), (24, 32), (48,)))]
STEPS = 96 // 32          # batches per epoch of the 96 train images
CLASSES = 5


@pytest.fixture
def forwards(teacher_forwards):
    return teacher_forwards


def cache_files(folder: Path):
    return sorted(p.name for p in folder.iterdir() if p.suffix in (".npy", ".json")), \
        sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_cached_logits_are_the_teachers_outputs_on_the_loaders_batches(setting, tmp_path):
    teacher_sd, train, test = setting
    kd_train(ARCHS[0], KDSetting(SPACE, teacher_sd, train, test, RECIPE, device="cpu", logit_cache=tmp_path), seed=3)
    (npy,) = tmp_path.glob("*.npy")
    cached = np.load(npy)
    # independently: the same augmented batches (loader seeded 3, epochs 0 and 1) through the teacher
    teacher = build(teacher_arch(SPACE), SPACE, CLASSES)
    teacher.load_state_dict(teacher_sd)
    teacher.eval()
    loader = DeviceLoader(train, LoaderConfig(32, train=True, image_size=16, pad=2, seed=3), device="cpu")
    expected = []
    with torch.no_grad():
        for epoch in range(2):
            loader.set_epoch(epoch)
            expected.append(torch.stack([teacher(x) for x, _ in loader]))
    expected = torch.stack(expected).numpy()
    assert cached.shape == (2, STEPS, 32, CLASSES) and cached.dtype == np.float32
    assert np.array_equal(cached, expected)
    header = json.loads(npy.with_suffix(".json").read_text())
    assert header["shape"] == [2, STEPS, 32, CLASSES] and header["identity"]["seed"] == 3


def test_runs_with_and_without_cache_are_bitwise_identical(setting, tmp_path, forwards):
    teacher_sd, train, test = setting
    cpu = KDSetting(SPACE, teacher_sd, train, test, RECIPE, device="cpu")
    plain = kd_train_many(ARCHS, cpu, seed=3, run_dirs=[tmp_path / f"plain{i}" for i in range(2)])
    assert len(forwards) == RECIPE.epochs * STEPS
    cache = tmp_path / "cache"
    cached = dataclasses.replace(cpu, logit_cache=cache)
    miss = kd_train_many(ARCHS, cached, seed=3, run_dirs=[tmp_path / f"miss{i}" for i in range(2)])
    assert len(forwards) == 2 * RECIPE.epochs * STEPS  # the miss ran the teacher once per batch
    hits = [kd_train(a, cached, seed=3, run_dir=tmp_path / f"hit{i}") for i, a in enumerate(ARCHS)]
    assert len(forwards) == 2 * RECIPE.epochs * STEPS  # hits never run the teacher
    for i in range(2):
        assert without_time(miss[i]) == without_time(plain[i]) == without_time(hits[i])
        ref = torch.load(tmp_path / f"plain{i}" / "last.pt", weights_only=True)["model"]
        for run in ("miss", "hit"):
            got = torch.load(tmp_path / f"{run}{i}" / "last.pt", weights_only=True)["model"]
            assert all(torch.equal(got[k], ref[k]) for k in ref)
    assert len({r["final_loss"] for r in plain}) == 2


def test_hit_and_miss_follow_the_identity(setting, tmp_path, forwards):
    teacher_sd, train, test = setting
    args = (SPACE, teacher_sd, train, test)
    kd_train(ARCHS[0], KDSetting(*args, RECIPE, device="cpu", logit_cache=tmp_path), seed=3)
    n = len(forwards)
    # another learning rate, loss weight or temperature sees the same batches: a hit
    other = dataclasses.replace(RECIPE, lr=0.1, alpha=0.3, temperature=2.0)
    kd_train(ARCHS[1], KDSetting(*args, other, device="cpu", logit_cache=tmp_path), seed=3)
    assert len(forwards) == n and len(cache_files(tmp_path)[0]) == 2
    # another seed, batch size or number of epochs means other batches: misses, one more cache each
    for seed, recipe in ((4, RECIPE), (3, dataclasses.replace(RECIPE, batch_size=16)),
                         (3, dataclasses.replace(RECIPE, epochs=1))):
        kd_train(ARCHS[0], KDSetting(*args, recipe, device="cpu", logit_cache=tmp_path), seed=seed)
        assert len(forwards) == n + recipe.epochs * (96 // recipe.batch_size)
        n = len(forwards)
    assert len(cache_files(tmp_path)[0]) == 2 * 4
    # another teacher: a miss
    other_sd = {k: v + 0.01 if v.is_floating_point() else v for k, v in teacher_sd.items()}
    kd_train(ARCHS[0], KDSetting(SPACE, other_sd, train, test, RECIPE, device="cpu", logit_cache=tmp_path), seed=3)
    assert len(forwards) == n + RECIPE.epochs * STEPS


def _damage_flip(npy: Path):
    data = bytearray(npy.read_bytes())
    data[-7] ^= 0x40          # one bit of the last logit: same size, a valid .npy, other values
    npy.write_bytes(bytes(data))


def _damage_truncate(npy: Path):
    npy.write_bytes(npy.read_bytes()[: npy.stat().st_size // 2])


def _damage_header(npy: Path):
    npy.with_suffix(".json").write_text('{"format": "dass-teacher-logits-v1", "identity": ')


def _damage_no_header(npy: Path):
    npy.with_suffix(".json").unlink()


@pytest.mark.parametrize("damage", [_damage_flip, _damage_truncate, _damage_header, _damage_no_header])
def test_damaged_cache_is_rebuilt_and_never_used(setting, tmp_path, forwards, damage):
    teacher_sd, train, test = setting
    plain = kd_train(ARCHS[0], KDSetting(SPACE, teacher_sd, train, test, RECIPE, device="cpu"), seed=3)
    cached = KDSetting(SPACE, teacher_sd, train, test, RECIPE, device="cpu", logit_cache=tmp_path)
    kd_train(ARCHS[0], cached, seed=3)
    (npy,) = tmp_path.glob("*.npy")
    good = npy.read_bytes()
    damage(npy)
    n = len(forwards)
    again = kd_train(ARCHS[0], cached, seed=3)
    assert len(forwards) == n + RECIPE.epochs * STEPS     # detected: the teacher ran again
    assert without_time(again) == without_time(plain)     # the damaged values were not used
    assert npy.read_bytes() == good                         # and the cache was rewritten intact
    assert cache_files(tmp_path) == ([npy.with_suffix(".json").name, npy.name], [])
    kd_train(ARCHS[0], cached, seed=3)
    assert len(forwards) == n + RECIPE.epochs * STEPS     # the rebuilt cache is a hit


RACER = """
import sys, time
from pathlib import Path
sys.path.insert(0, {root!r})
import torch
torch.set_num_threads(1)
sys.path.insert(0, {tests!r})
import train.test_logit_cache as t
from dass.data.loader import DeviceLoader, LoaderConfig
from dass.space import build, teacher_arch
from dass.train.trainer import Precision
from dass.train import logit_cache
go = Path({go!r})
sd, train, _ = t.make_setting()
loader = DeviceLoader(train, LoaderConfig(32, train=True, image_size=16, pad=2, seed=3), device="cpu")
ident = logit_cache.cache_identity(sd, train, loader, Precision(), 2)
def make():
    net = build(teacher_arch(t.SPACE), t.SPACE, t.CLASSES)
    net.load_state_dict(sd)
    return net.eval()
while not go.exists():
    time.sleep(0.005)
out = logit_cache.teacher_logits({folder!r}, ident, make, loader, 2, Precision())
print("built" if out.built else "read", float(abs(torch.from_numpy(out.array.copy())).sum()))
"""


@pytest.mark.slow  # two fresh interpreters importing torch (the rest of the file covers the cache in process)
def test_two_racing_writers_leave_one_valid_cache(tmp_path):
    root = str(Path(__file__).resolve().parents[2])
    go, folder = tmp_path / "go", tmp_path / "cache"
    script = RACER.format(root=root, tests=str(Path(__file__).resolve().parents[1]), go=str(go), folder=str(folder))
    procs = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    time.sleep(0.5)
    go.touch()
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err[-2000:]
        outs.append(out.split())
    assert sorted(o[0] for o in outs) == ["built", "read"]  # one computed, the other waited and read
    assert outs[0][1] == outs[1][1]
    names, tmps = cache_files(folder)
    assert len(names) == 2 and tmps == []
    header, npy = json.loads((folder / names[0]).read_text()), folder / names[1]
    assert hashing.file_sha256(npy) == header["sha256"]
    assert np.load(npy).shape == (2, STEPS, 32, CLASSES)
