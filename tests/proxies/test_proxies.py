"""Zero-cost proxies against closed forms and identities computed independently of their code."""
import math

import numpy as np
import pytest
import torch
from torch import nn

from assets.tiny_db import TINY, tiny_teacher_state
from dass.proxies import zero_cost as proxies
from dass.space import Arch, build_remapped, macs, sample


def remapped_student(seed: int = 0, num_classes: int = 5):
    arch = sample(TINY, np.random.default_rng(seed))
    return build_remapped(arch, TINY, num_classes, tiny_teacher_state(TINY, num_classes, seed)), arch


def batch(n=6, seed=0, num_classes=5):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, TINY.image_size, TINY.image_size, generator=g), torch.arange(n) % num_classes


# ------------------------------------------------------------------------------------- grad_norm / snip

def test_grad_norm_and_snip_closed_form_on_a_linear_layer():
    """For logits W x and mean cross-entropy, dL/dW = mean_i (softmax(W x_i) - e_{y_i}) x_i^T."""
    W = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.5]])
    X = np.array([[1.0, 2.0, -1.0], [0.5, -0.5, 3.0]])
    y = np.array([1, 0])
    logits = X @ W.T
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    G = (p - np.eye(2)[y]).T @ X / len(X)
    net = nn.Sequential(nn.Linear(3, 2, bias=False)).double()
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor(W))
    x, t = torch.tensor(X), torch.tensor(y)
    assert proxies.grad_norm(net, x, t) == pytest.approx(np.linalg.norm(G), rel=1e-10)
    assert proxies.snip(net, x, t) == pytest.approx(np.abs(W * G).sum(), rel=1e-10)


# ------------------------------------------------------------------------------------- synflow

def _linearised_forward(net, t: float) -> float:
    """R(t) = sum(output) of the BN-free, |weights| x t (biases |b|) float64 net on an all-ones image."""
    lin = proxies._without_batchnorm(net).double()
    with torch.no_grad():
        for name, p in lin.named_parameters():
            p.abs_()
            if name.endswith("weight"):
                p.mul_(t)
    with torch.no_grad():
        return float(lin(torch.ones(1, 3, TINY.image_size, TINY.image_size, dtype=torch.float64)).sum())


def test_synflow_is_the_euler_derivative_of_the_linearised_output():
    """sum_w w dR/dw = d/dt R(t w) at t = 1 (chain rule), here by a central difference of two forwards."""
    net, _ = remapped_student(3)
    h = 1e-5
    expected = (_linearised_forward(net, 1 + h) - _linearised_forward(net, 1 - h)) / (2 * h)
    assert proxies.synflow(net, (3, TINY.image_size, TINY.image_size)) == pytest.approx(expected, rel=1e-6)


def test_synflow_scales_with_the_classifier_by_the_known_factor():
    """R is linear in (fc weight, fc bias): scaling both by c scales every w dR/dw term by c (c = 4
    keeps the float32 weights exact)."""
    net, _ = remapped_student(1)
    shape = (3, TINY.image_size, TINY.image_size)
    base = proxies.synflow(net, shape)
    with torch.no_grad():
        net.fc.weight.mul_(4.0)
        net.fc.bias.mul_(4.0)
    assert proxies.synflow(net, shape) == pytest.approx(4.0 * base, rel=1e-10)


def test_synflow_ignores_batchnorm_and_weight_signs_and_leaves_the_net_unchanged():
    net, _ = remapped_student(2)
    shape = (3, TINY.image_size, TINY.image_size)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    base = proxies.synflow(net, shape)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.mul_(5.0)
                m.running_var.mul_(7.0)
            elif isinstance(m, nn.Conv2d):
                m.weight.neg_()
    assert proxies.synflow(net, shape) == pytest.approx(base, rel=1e-12)


# ------------------------------------------------------------------------------------- naswot

def test_hamming_kernel_and_logdet_by_hand():
    codes = torch.tensor([[1, 0, 1], [1, 1, 0]])
    K = proxies.hamming_kernel(codes)
    assert K.tolist() == [[3.0, 1.0], [1.0, 3.0]]        # agreements: 3 with itself, 1 across
    assert proxies.logdet(K) == pytest.approx(math.log(8.0))


def test_naswot_kernel_equals_codes_of_every_functional_relu(monkeypatch):
    """Record every F.relu output of the forward pass independently and build K from them."""
    net, arch = remapped_student(4)
    x, _ = batch(5, seed=1)
    recorded = []
    real_relu = torch.nn.functional.relu

    def spy(t, *a, **k):
        out = real_relu(t, *a, **k)
        recorded.append((out > 0).reshape(len(x), -1).double())
        return out

    monkeypatch.setattr(torch.nn.functional, "relu", spy)
    net.eval()
    with torch.no_grad():
        net(x)
    monkeypatch.setattr(torch.nn.functional, "relu", real_relu)
    codes = torch.cat(recorded, dim=1).numpy()
    expected = codes @ codes.T + (1 - codes) @ (1 - codes).T
    # units by hand: the stem (C x S x S) and two ReLUs of width w at resolution r per block
    units = TINY.stem_width * TINY.image_size ** 2
    r = TINY.image_size
    for ws, stride in zip(arch.widths, TINY.stage_strides):
        r //= stride
        units += sum(2 * w * r * r for w in ws)
    assert codes.shape[1] == units
    K = proxies.naswot_kernel(net, x).numpy()
    np.testing.assert_array_equal(K, expected)
    assert np.all(np.diag(K) == units)


def test_naswot_of_identical_codes_is_minus_infinity():
    """Identical images give identical codes: K is N_A times the all-ones matrix, singular."""
    net, _ = remapped_student(5)
    x = batch(1)[0].repeat(4, 1, 1, 1)
    K = proxies.naswot_kernel(net, x)
    assert torch.all(K == K[0, 0])
    assert proxies.naswot(net, x) == float("-inf")


# ------------------------------------------------------------------------------------- jacov

def test_jacov_closed_form_for_identical_jacobians():
    """A linear map has the same input gradient for every image: corrcoef is all ones, eigenvalues
    (B, 0, ..., 0), so the score is -(log(B+k) + 1/(B+k)) - (B-1)(log k + 1/k)."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(12, 3, bias=False))
    B, k = 4, 1e-5
    x = torch.randn(B, 3, 2, 2)
    expected = -(math.log(B + k) + 1 / (B + k)) - (B - 1) * (math.log(k) + 1 / k)
    assert proxies.jacov(net, x) == pytest.approx(expected, rel=1e-6)


def test_jacov_is_nan_for_a_constant_jacobian_row():
    net = nn.Sequential(nn.Flatten(), nn.Linear(12, 3, bias=False))
    nn.init.zeros_(net[1].weight)
    assert math.isnan(proxies.jacov(net, torch.randn(3, 3, 2, 2)))


def test_every_proxy_is_finite_on_a_remapped_student_and_unknown_names_fail():
    net, _ = remapped_student(6)
    x, y = batch(8, seed=2)
    for name in proxies.PROXIES:
        assert math.isfinite(proxies.compute(name, net, x, y)), name
    with pytest.raises(ValueError, match="unknown proxy"):
        proxies.compute("zen", net, x, y)


def test_bigger_width_gives_bigger_synflow_on_the_same_teacher(tiny_teacher):
    """Widening every block of a remapped student adds paths of non-negative flow: synflow grows."""
    sd = tiny_teacher  # of TINY, 5 classes (conftest.py)
    narrow = Arch((2, 2, 2, 2), tuple((c[0], c[0]) for c in TINY.width_choices))
    wide = Arch((2, 2, 2, 2), tuple((c[-1], c[-1]) for c in TINY.width_choices))
    assert macs(wide, TINY, 5) > macs(narrow, TINY, 5)
    shape = (3, TINY.image_size, TINY.image_size)
    s_n = proxies.synflow(build_remapped(narrow, TINY, 5, sd), shape)
    s_w = proxies.synflow(build_remapped(wide, TINY, 5, sd), shape)
    assert s_w > s_n


# ------------------------------------------------------------------------------------- diswot

def test_diswot_relation_matrix_by_hand():
    # Two images whose stage output is a single value each, 1 and 2: G = [[1, 2], [2, 4]]; rows
    # divided by their norms sqrt(5) and sqrt(20).
    class OneStage(nn.Module):
        def forward_stages(self, x):
            return [x]
    g = proxies.relation_matrices(OneStage(), torch.tensor([[1.0], [2.0]]))[0]
    want = torch.tensor([[1, 2], [2, 4]], dtype=torch.float64)
    want = want / want.norm(dim=1, keepdim=True)
    torch.testing.assert_close(g, want)
    # A student on which the two images are orthogonal has G_S = I; with a = 1/sqrt5, b = 2/sqrt5
    # the teacher's rows are (a, b), (a, b): ||I - G_T||^2 = (1-a)^2 + b^2 + a^2 + (1-b)^2, score -that / B.
    a, b = 1 / math.sqrt(5), 2 / math.sqrt(5)
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    d = (1 - a) ** 2 + b ** 2 + a ** 2 + (1 - b) ** 2
    assert proxies.diswot(OneStage(), [want], x) == pytest.approx(-d / 2)


def test_diswot_of_the_teacher_itself_is_the_best_possible_score():
    from dass.space import build, teacher_arch
    sd = tiny_teacher_state(TINY, 5, 0)
    teacher = build(teacher_arch(TINY), TINY, 5)
    teacher.load_state_dict(sd)
    x, _ = batch(8)
    rel = proxies.relation_matrices(teacher, x)
    assert proxies.diswot(teacher, rel, x) == 0.0   # identical networks: the maximum (scores are <= 0)
    twin = build_remapped(teacher_arch(TINY), TINY, 5, sd)   # the teacher remapped onto itself
    assert proxies.diswot(twin, rel, x) == pytest.approx(0.0, abs=1e-12)
    for seed in range(3):
        student = build_remapped(sample(TINY, np.random.default_rng(seed + 10)), TINY, 5, sd)
        assert proxies.diswot(student, rel, x) < 0.0


# ------------------------------------------------------------------------------------------- inherit

def test_inherit_normalises_by_the_batch_by_hand_and_leaves_the_net_unchanged():
    # BN over 2 features then the identity classifier: the batch [[10, 0], [0, 10], [10, 0], [0, 10]]
    # normalises to [[1, -1], [-1, 1], [1, -1], [-1, 1]] -> classes 0 1 0 1; with labels 0 1 0 0 that
    # is 3 of 4 right. The stored running statistics (mean 100 on feature 0) would call every image
    # class 1 (1 of 4): inherit must not use them, nor change them.
    bn = nn.BatchNorm1d(2)
    bn.running_mean.copy_(torch.tensor([100.0, 0.0]))
    fc = nn.Linear(2, 2)
    with torch.no_grad():
        fc.weight.copy_(torch.eye(2))
        fc.bias.zero_()
    net = nn.Sequential(bn, fc).eval()
    x = torch.tensor([[10.0, 0.0], [0.0, 10.0], [10.0, 0.0], [0.0, 10.0]])
    y = torch.tensor([0, 1, 0, 0])
    assert proxies.inherit(net, x, y) == pytest.approx(75.0)
    assert proxies.compute("inherit", net, x, y) == pytest.approx(75.0)
    assert (net(x).argmax(1) == y).float().mean().item() == pytest.approx(0.25)   # eval mode: running stats
    assert bn.running_mean.tolist() == [100.0, 0.0] and int(bn.num_batches_tracked) == 0 and not net.training


# ------------------------------------------------------------------------------------- batched passes

@pytest.mark.slow
@pytest.mark.parametrize("space_name", ["tiny", "cpu"])
def test_batched_proxies_equal_one_network_at_a_time(space_name, monkeypatch):
    """naswot, synflow and diswot of many students in masked passes of the teacher (dass.proxies.masked)
    equal those of each student built, remapped and run on its own (zero_cost, the reference) within
    1e-4 relative, across chunk boundaries (rows per pass forced small), with the teacher and the
    smallest student among them."""
    from dass.config import load
    from dass.proxies import masked
    from dass.proxies.batch import ProxySetting, archs_proxy
    from dass.space import SpaceConfig, sample_unique, teacher_arch
    space = TINY if space_name == "tiny" else load(SpaceConfig, "configs/space/cpu.yaml", [])
    sd = tiny_teacher_state(space, 5, 3)
    smallest = Arch(tuple(1 for _ in space.stage_widths), tuple((c[0],) for c in space.width_choices))
    archs = sample_unique(space, 11, np.random.default_rng(4)) + [teacher_arch(space), smallest]
    g = torch.Generator().manual_seed(5)
    x = torch.randn(6, 3, space.image_size, space.image_size, generator=g)
    y = torch.arange(6) % 5
    monkeypatch.setattr(masked, "ROWS", 20)  # 3 students of 6 images per pass: 5 passes
    for name in masked.BATCHED:
        fast = archs_proxy(name, archs, ProxySetting(space, 5, sd), (x, y))
        ref = np.array([proxies.compute(name, build_remapped(a, space, 5, sd), x, y) if name != "diswot" else
                        archs_proxy(name, [a], ProxySetting(space, 5, sd), (x, y), batched=False)[0]
                        for a in archs])
        assert np.isfinite(ref).all(), name
        np.testing.assert_allclose(fast, ref, rtol=1e-4, atol=1e-12, err_msg=name)
    # the teacher's own DisWOT is 0 (its relations are the teacher's)
    assert archs_proxy("diswot", [teacher_arch(space)], ProxySetting(space, 5, sd), (x, y))[0] == \
        pytest.approx(0.0, abs=1e-12)


def test_batched_naswot_is_minus_infinity_for_identical_images():
    """Two identical images have identical codes: K is singular in the batched path too."""
    from dass.proxies import masked
    sd = tiny_teacher_state(TINY, 5, 1)
    x, _ = batch(4, seed=1)
    x[1] = x[0]
    archs = [sample(TINY, np.random.default_rng(i)) for i in range(3)]
    assert np.all(masked.naswot(archs, TINY, 5, sd, x) == -np.inf)
