"""Lockstep multi-student KD equals sequential single-student runs, with one teacher forward per batch."""
import numpy as np
import pytest
import torch

from dass.data.arrays import ImageArrays
from dass.io import safe_torch_load
from dass.space import Arch, build, load_space, teacher_arch
from dass.train import KDRecipe, KDSetting, kd_train, kd_train_many
from dass.train import lockstep as lockstep_mod

SPACE = load_space(None, ["name=tiny", "stage_widths=[8,16,32,64]", "depths=[1,2]", "image_size=16",
                          "width_mults=[0.5,0.75,1.0]"])
ARCHS = [Arch((1, 1, 1, 1), ((4,), (8,), (16,), (32,))),
         Arch((2, 1, 2, 1), ((8, 6), (12,), (24, 32), (48,))),
         Arch((2, 2, 2, 2), ((8, 8), (16, 16), (32, 32), (64, 64)))]
RECIPE = KDRecipe(epochs=2, batch_size=32, lr=0.05, eval_every=1, eval_batch_size=50, crop_pad=2)
TRAIN_STEPS = 2 * (96 // 32)


def random_set(n, seed):
    rng = np.random.default_rng(seed)
    return ImageArrays(rng.integers(0, 256, (n, 16, 16, 3), dtype=np.uint8), rng.integers(0, 5, n), 5, "random")


def make_setting():
    """(teacher state dict with non-trivial BN statistics, 96 train images, 40 test images), 5 classes."""
    torch.set_num_threads(1)
    torch.manual_seed(0)
    teacher = build(teacher_arch(SPACE), SPACE, 5)
    with torch.no_grad():  # non-trivial BN statistics, as a trained teacher has
        for m in teacher.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
    return teacher.state_dict(), random_set(96, 0), random_set(40, 1)


@pytest.fixture(scope="module")
def setting():
    return make_setting()


@pytest.fixture
def teacher_forwards(monkeypatch):
    """A list that grows by one at every forward of every teacher the KD path builds."""
    calls = []
    real_loader = lockstep_mod.load_teacher_net

    def counting_teacher(*args, **kwargs):
        net = real_loader(*args, **kwargs)
        net.register_forward_hook(lambda *_: calls.append(1))
        return net

    monkeypatch.setattr(lockstep_mod, "load_teacher_net", counting_teacher)
    return calls


def without_time(result):
    return {k: ([{kk: vv for kk, vv in h.items() if kk != "seconds"} for h in v] if k == "history" else v)
            for k, v in result.items() if k != "wall_s"}


@pytest.mark.slow
def test_lockstep_equals_sequential_bitwise(setting, tmp_path, teacher_forwards):
    teacher_sd, train, test = setting
    forwards = teacher_forwards
    cpu = KDSetting(SPACE, teacher_sd, train, test, RECIPE, device="cpu")
    together = kd_train_many(ARCHS, cpu, seed=3, run_dirs=[tmp_path / f"many{i}" for i in range(len(ARCHS))])
    assert len(forwards) == TRAIN_STEPS  # one teacher forward per batch for all three students
    for i, arch in enumerate(ARCHS):
        alone = kd_train(arch, cpu, seed=3, run_dir=tmp_path / f"one{i}")
        assert without_time(together[i]) == without_time(alone)
        a = safe_torch_load(tmp_path / f"many{i}" / "last.pt")["model"]
        b = safe_torch_load(tmp_path / f"one{i}" / "last.pt")["model"]
        assert all(torch.equal(a[k], b[k]) for k in b)
    assert len(forwards) == (1 + len(ARCHS)) * TRAIN_STEPS  # each lone run has its own teacher forwards
    # the students really differ (no state shared by mistake)
    assert len({r["final_loss"] for r in together}) == len(ARCHS)


def test_lockstep_resumes_students_that_are_at_different_epochs(setting, tmp_path):
    teacher_sd, train, test = setting
    dirs = [tmp_path / "a", tmp_path / "b"]
    cpu = KDSetting(SPACE, teacher_sd, train, test, RECIPE, device="cpu")
    reference = kd_train_many(ARCHS[:2], cpu, seed=5)
    # student a finished, student b has nothing yet: b trains alone, a is reloaded untouched
    kd_train(ARCHS[0], cpu, seed=5, run_dir=dirs[0])
    resumed = kd_train_many(ARCHS[:2], cpu, seed=5, run_dirs=dirs)
    assert [without_time(r) for r in resumed] == [without_time(r) for r in reference]


def test_learner_sgd_step_is_bitwise_the_per_parameter_loop():
    """The trainer's (multi-tensor) SGD gives exactly the weights of torch's plain for-loop SGD."""
    from dass.train.trainer import make_sgd
    torch.manual_seed(0)
    nets = [build(ARCHS[1], SPACE, 5) for _ in range(2)]
    nets[1].load_state_dict(nets[0].state_dict())
    fast = make_sgd(nets[0].parameters(), RECIPE)
    loop = torch.optim.SGD(nets[1].parameters(), lr=RECIPE.lr, momentum=RECIPE.momentum, nesterov=RECIPE.nesterov,
                           weight_decay=RECIPE.weight_decay, foreach=False)
    x, y = torch.randn(8, 3, 16, 16), torch.randint(0, 5, (8,))
    for _ in range(4):
        for net, opt in zip(nets, (fast, loop)):
            opt.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(net(x), y).backward()
            opt.step()
    a, b = nets[0].state_dict(), nets[1].state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["fc.weight"], build(ARCHS[1], SPACE, 5).state_dict()["fc.weight"])
