"""Zero-cost proxies as predictor inputs: features relative to the teacher, the prior over them,
and search's shortlist re-scoring."""
import math

import numpy as np
import pytest
import torch

from dass.errors import DassError
from dass.predictor import InputDims, Predictor, PredictorConfig, proxy_inputs
from dass.predictor.config import check_proxy_names
from dass.search import shortlist_rescore
from synthetic_db import random_teacher_sd, tiny_space


def test_relative_features_by_hand():
    np.testing.assert_allclose(proxy_inputs.relative("naswot", [10.0, 7.5], 8.0), [2.0, -0.5])
    np.testing.assert_allclose(proxy_inputs.relative("synflow", [math.e ** 3, 1.0], math.e), [2.0, -1.0])
    # a singular NASWOT kernel (-inf) and anything below the floor land on the floor
    f = proxy_inputs.relative("naswot", [float("-inf"), -1000.0], 0.0)
    assert f.tolist() == [proxy_inputs.FLOOR, proxy_inputs.FLOOR]
    with pytest.raises(DassError):
        check_proxy_names(["naswot", "naswot"])
    with pytest.raises(DassError):
        check_proxy_names(["snip"])


def test_diswot_input_is_zero_for_the_teacher_and_negative_for_a_smaller_student():
    """DisWOT compares a student's sample relations with the teacher's: the teacher architecture,
    remapped from the teacher, is the teacher (0 exactly); the smallest student relates the images
    otherwise (< 0)."""
    from dass.search import smallest_arch
    from dass.space import teacher_arch
    space = tiny_space()
    sd = random_teacher_sd(space, 0)
    n_cls = sd["fc.weight"].shape[0]
    x = torch.randn(8, 3, space.image_size, space.image_size, generator=torch.Generator().manual_seed(0))
    y = torch.arange(8) % n_cls
    f = proxy_inputs.features(["diswot"], [teacher_arch(space), smallest_arch(space)],
                              proxy_inputs.ProxySetting(space, n_cls, sd), {"diswot": (x, y)})
    assert f.shape == (2, 1)
    assert f[0, 0].item() == 0.0 and f[1, 0].item() < 0.0
    np.testing.assert_allclose(proxy_inputs.relative("diswot", [-0.5, 0.0], 0.0), [-0.5, 0.0])


def test_inherit_input_is_the_teachers_accuracy_gap_as_a_fraction():
    # the teacher inherits all of itself: 0 exactly; a student 12.5 points below it: -0.125
    np.testing.assert_allclose(proxy_inputs.relative("inherit", [75.0, 62.5], 75.0), [0.0, -0.125])
    from dass.proxies import proxy_images
    assert proxy_images("inherit", 32) == 1024 and proxy_images("naswot", 32) == 32
    assert proxy_images("inherit", 2048) == 2048


def test_the_prior_reads_cost_then_proxy_scalars():
    space = tiny_space()
    cfg = PredictorConfig(InputDims.for_space(space), "A", cost_prior=True, proxies=["naswot", "synflow"])
    model = Predictor(cfg)
    assert {"cost", "proxy"} <= model.needs
    model.set_prior([1.0, 2.0, 3.0, 4.0], 0.5)
    cost = torch.tensor([[0.1, 0.2], [1.0, 0.0]])
    proxy = torch.tensor([[1.0, -1.0], [0.0, 2.0]])
    onehot = torch.rand(2, InputDims.for_space(space).onehot_dim)
    got = model({"cost": cost, "proxy": proxy, "onehot": onehot})
    # the residual head starts at 0: output = 0.5 + 1*c0 + 2*c1 + 3*p0 + 4*p1
    torch.testing.assert_close(got, torch.tensor([0.5 + 0.1 + 0.4 + 3 - 4, 0.5 + 1 + 8]))
    with pytest.raises(DassError, match="cost"):
        PredictorConfig(InputDims.for_space(space), "A", proxies=["naswot"])


class _StubScorer:
    def __init__(self, rescored):
        self.rescored = rescored
        self.asked = None

    def score(self, archs, fmap=None, proxies=False):
        assert proxies
        self.asked = list(archs)
        return torch.tensor([self.rescored[a] for a in archs])


def test_shortlist_rescore_ranks_the_rescored_shortlist_first():
    archs = ["a", "b", "c", "d", "e"]
    pre = torch.tensor([0.1, 0.9, 0.5, 0.8, 0.2])
    # shortlist of 3 by the pre-filter: b, d, c; their rescored values put c first, then b, then d
    stub = _StubScorer({"b": 0.3, "d": -1.0, "c": 2.0})
    scores, order, short = shortlist_rescore(stub, archs, pre, 3)
    assert stub.asked == ["b", "d", "c"]
    assert [archs[i] for i in order] == ["c", "b", "d", "e", "a"]
    assert short.tolist() == [False, True, True, True, False]
    torch.testing.assert_close(scores, torch.tensor([0.1, 0.3, 2.0, -1.0, 0.2]))


def test_attach_caches_each_proxy_on_its_own(tmp_path, monkeypatch):
    """Runs reading different proxy sets share the proxies they have in common: a second run with
    [synflow, diswot] computes only diswot (students and teacher), the columns follow the order asked
    for and equal what computing without a cache gives; another batch seed is computed again."""
    import dass.proxies.cache as pc
    from dass.space import sample
    space = tiny_space()
    sd = random_teacher_sd(space, 0)
    n_cls = sd["fc.weight"].shape[0]
    teacher = tmp_path / "teacher.pt"
    torch.save({"state_dict": sd}, teacher)
    g = np.random.default_rng(0)
    archs = [sample(space, g) for _ in range(3)]

    def fake_batch(dataset, data_root, space_, num_classes, n, seed, device):
        gen = torch.Generator().manual_seed(1000 * seed + n)
        return torch.randn(n, 3, space.image_size, space.image_size, generator=gen), torch.arange(n) % n_cls

    import dass.task
    # the task's image batch is drawn with [seed, crc32(dataset)]: the fake reads the seed
    monkeypatch.setattr(dass.task, "image_batch", lambda d, root, sp, c, n, seed, dev: fake_batch(d, root, sp, c, n,
                                                                                                  seed[0], dev))
    computed = []
    real = pc.archs_proxy
    monkeypatch.setattr(pc, "archs_proxy", lambda name, a, *r, **k: computed.append((name, len(a))) or real(name, a, *r, **k))

    class Task:
        key, dataset, space, num_classes, remap, teacher_ckpt = "t", "d", tiny_space(), n_cls, "copy_paste_first", str(teacher)
        noise_seed = 0
        proxy = None

        def __len__(self):
            return len(self.archs)

    t = Task()
    t.archs = archs
    proxy_inputs.attach([t], ["naswot", "synflow"], "root", 8, 0, tmp_path / "cache")
    assert computed == [("naswot", 1), ("naswot", 3), ("synflow", 1), ("synflow", 3)]
    first = t.proxy.clone()
    proxy_inputs.attach([t], ["synflow", "diswot"], "root", 8, 0, tmp_path / "cache")
    assert computed[4:] == [("diswot", 1), ("diswot", 3)]
    torch.testing.assert_close(t.proxy[:, 0], first[:, 1])
    uncached = proxy_inputs.features(["synflow", "diswot"], archs, proxy_inputs.ProxySetting(space, n_cls, sd),
                                     {n: fake_batch("d", "root", space, n_cls, 8, 0, "cpu") for n in ("synflow", "diswot")})
    torch.testing.assert_close(t.proxy, uncached)
    # another batch seed is another key: computed again
    proxy_inputs.attach([t], ["diswot"], "root", 8, 1, tmp_path / "cache")
    assert computed[10:] == [("diswot", 1), ("diswot", 3)]   # (6-9: the uncached call above)
    # the folder as a read-only cache (the shipped one) behind an empty writable one: read, nothing computed or written
    proxy_inputs.attach([t], ["synflow", "diswot"], "root", 8, 0,
                        pc.ProxyCache(tmp_path / "own", read_only=[tmp_path / "cache"]))
    assert len(computed) == 12 and not (tmp_path / "own").exists()
    torch.testing.assert_close(t.proxy, uncached)