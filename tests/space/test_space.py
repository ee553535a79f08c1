"""Student space: counts, costs, remapping, encodings and embedding against independent values."""
import numpy as np
import pytest
import torch

from dass.errors import DassError
from dass.space import (REMAPS, Arch, MapRun, SpaceConfig, build, decode_graph, decode_onehot, functional_map_single,
                        functional_maps, graph, load_space, macs, mutate, neighbours, num_architectures,
                        onehot, onehot_dim, params, remap, sample, sample_unique, teacher_arch, validate)

PAPER = SpaceConfig()  # defaults are the paper profile
CPU = load_space("configs/space/cpu.yaml")


def test_paper_profile_file_equals_defaults():
    assert load_space("configs/space/paper.yaml") == PAPER


def test_teacher_macs_params_by_hand():
    # Hand formula for ResNet42 at 64 px, 100 classes (docs/PAPER.md, "Space").
    K = 100
    stem = 64 * 64 * 9 * 3 * 32
    s1 = 10 * (64 * 64 * 9 * 32 * 32)
    s2 = 32 * 32 * 9 * 32 * 64 + 32 * 32 * 9 * 64 * 64 + 8 * (32 * 32 * 9 * 64 * 64)
    s3 = 16 * 16 * 9 * 64 * 128 + 16 * 16 * 9 * 128 * 128 + 8 * (16 * 16 * 9 * 128 * 128)
    s4 = 8 * 8 * 9 * 128 * 256 + 8 * 8 * 9 * 256 * 256 + 8 * (8 * 8 * 9 * 256 * 256)
    fc = 256 * K
    assert macs(teacher_arch(PAPER), PAPER, K) == stem + s1 + s2 + s3 + s4 + fc
    p_stem = 27 * 32 + 64
    p1 = 10 * (9 * 32 * 32 + 64)
    p2 = (9 * 32 * 64 + 128) + 9 * (9 * 64 * 64 + 128)
    p3 = (9 * 64 * 128 + 256) + 9 * (9 * 128 * 128 + 256)
    p4 = (9 * 128 * 256 + 512) + 9 * (9 * 256 * 256 + 512)
    p_fc = 256 * K + K
    assert params(teacher_arch(PAPER), PAPER, K) == p_stem + p1 + p2 + p3 + p4 + p_fc


def test_params_equal_module_parameter_count():
    rng = np.random.default_rng(0)
    for _ in range(5):
        a = sample(CPU, rng)
        net = build(a, CPU, 7)
        assert params(a, CPU, 7) == sum(p.numel() for p in net.parameters() if p.requires_grad)


def test_macs_equal_hooked_count():
    """Count conv/linear MACs with forward hooks on a real forward pass."""
    rng = np.random.default_rng(1)
    a = sample(CPU, rng)
    net = build(a, CPU, 11).eval()
    total = [0]

    def hook(m, inp, out):
        if isinstance(m, torch.nn.Conv2d):
            total[0] += out.numel() * m.in_channels * m.kernel_size[0] * m.kernel_size[1]
        else:
            total[0] += m.in_features * m.out_features

    for m in net.modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
            m.register_forward_hook(hook)
    net(torch.zeros(1, 3, CPU.image_size, CPU.image_size))
    assert macs(a, CPU, 11) == total[0]


def test_architecture_count_closed_form_and_enumeration():
    assert num_architectures(PAPER) == (9 * (9 ** 5 - 1) // 8) ** 4
    tiny = SpaceConfig(name="tiny", stage_widths=[4, 8], stage_strides=[1, 2], depths=[1, 2],
                       width_mults=[0.5, 1.0], image_size=8)
    # enumerate by brute force: per stage depth d in {1,2}, 2 widths per block
    seen = set()
    rng = np.random.default_rng(0)
    for _ in range(3000):
        seen.add(sample(tiny, rng))
    assert len(seen) == num_architectures(tiny) == (2 + 4) ** 2


def _random_bn(net, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.1)
    return net


@pytest.mark.parametrize("space", [CPU, PAPER], ids=["cpu", "paper"])
def test_full_student_remapped_equals_teacher(space):
    t = teacher_arch(space)
    teacher = _random_bn(build(t, space, 10)).eval()
    student = remap(build(t, space, 10), teacher.state_dict(), "copy_paste_first").eval()
    x = torch.randn(2, 3, space.image_size, space.image_size)
    lt, st = teacher(x, return_stages=True)
    ls, ss = student(x, return_stages=True)
    assert torch.equal(lt, ls)
    for a, b in zip(st, ss):
        assert torch.equal(a, b)


def test_copy_paste_first_slices():
    t = teacher_arch(CPU)
    tsd = _random_bn(build(t, CPU, 5)).state_dict()
    a = Arch((1, 2, 3, 1), ((5,), (10, 16), (16, 20, 32), (40,)))
    s = remap(build(a, CPU, 5), tsd, "copy_paste_first").state_dict()
    assert torch.equal(s["conv1.weight"], tsd["conv1.weight"])
    assert torch.equal(s["layer1.0.conv1.weight"], tsd["layer1.0.conv1.weight"][:5, :8])
    assert torch.equal(s["layer2.1.conv1.weight"], tsd["layer2.1.conv1.weight"][:16, :10])
    assert torch.equal(s["layer3.2.conv2.weight"], tsd["layer3.2.conv2.weight"][:32, :32])
    assert torch.equal(s["layer4.0.conv1.weight"], tsd["layer4.0.conv1.weight"][:40, :32])
    assert torch.equal(s["layer3.1.bn1.running_var"], tsd["layer3.1.bn1.running_var"][:20])
    assert torch.equal(s["fc.weight"], tsd["fc.weight"][:, :40])
    assert torch.equal(s["fc.bias"], tsd["fc.bias"])


def test_copy_paste_last_and_uniform_slices():
    t = teacher_arch(CPU)
    tsd = _random_bn(build(t, CPU, 5)).state_dict()
    a = Arch((1, 2, 2, 1), ((4,), (8, 12), (16, 20), (32,)))
    s = remap(build(a, CPU, 5), tsd, "copy_paste_last").state_dict()
    # stage 2 depth 2 of 3 -> teacher blocks 1, 2; last channels
    assert torch.equal(s["layer2.1.conv2.weight"], tsd["layer2.2.conv2.weight"][-12:, -12:])
    # stage 1 depth 1 of 3 -> teacher block 2
    assert torch.equal(s["layer1.0.conv1.weight"], tsd["layer1.2.conv1.weight"][-4:, -8:])
    assert torch.equal(s["fc.weight"], tsd["fc.weight"][:, -32:])
    u = remap(build(a, CPU, 5), tsd, "copy_paste_uniform").state_dict()
    # stage 3 depth 2 of 3 -> teacher blocks 0 and 2; 16 of 32 channels at round(linspace(0, 31, 16))
    idx = [round(i * 31 / 15) for i in range(16)]
    assert torch.equal(u["layer3.0.conv2.weight"], tsd["layer3.0.conv2.weight"][idx][:, idx])
    assert torch.equal(u["layer4.0.conv1.weight"][:, :16], tsd["layer4.0.conv1.weight"][
        [round(i * 63 / 31) for i in range(32)]][:, [round(i * 31 / 19) for i in range(20)]][:, :16])


@pytest.mark.parametrize("strategy", REMAPS)
def test_every_remap_gives_a_working_student(strategy):
    t = teacher_arch(CPU)
    tsd = build(t, CPU, 6).state_dict()
    a = sample(CPU, np.random.default_rng(3))
    net = remap(build(a, CPU, 6), tsd, strategy)
    out = net(torch.randn(3, 3, 16, 16))
    assert out.shape == (3, 6) and torch.isfinite(out).all()


def test_remap_rejects_class_mismatch():
    tsd = build(teacher_arch(CPU), CPU, 6).state_dict()
    with pytest.raises(DassError, match="classes"):
        remap(build(teacher_arch(CPU), CPU, 7), tsd)


def test_encodings_round_trip():
    rng = np.random.default_rng(0)
    for space in (CPU, PAPER):
        for a in [teacher_arch(space)] + [sample(space, rng) for _ in range(50)]:
            v = onehot(a, space)
            assert v.shape == (onehot_dim(space),) and v.sum() == len(a.depths) + sum(a.depths)
            assert decode_onehot(v, space) == a
            assert decode_graph(graph(a, space), space) == a
    assert onehot_dim(PAPER) == 4 * (5 + 5 * 9)


def test_graph_edges_follow_present_blocks():
    a = Arch((1, 2, 1, 1), ((4,), (8, 8), (16,), (32,)))
    g = graph(a, CPU)
    n = g["x"].shape[0]
    # nodes: 0 stem, stage s block b at 1 + 3s + b, head n-1
    order = [0, 1, 4, 5, 7, 10, n - 1]
    expect = torch.zeros(n, n)
    for i, j in zip(order[:-1], order[1:]):
        expect[i, j] = 1
    assert torch.equal(g["adj"], expect)
    assert g["mask"].sum() == len(order)


@pytest.mark.parametrize("bad", [
    Arch((0, 1, 1, 1), ((), (8,), (16,), (32,))),
    Arch((1, 1, 1, 1), ((3,), (8,), (16,), (32,))),
    Arch((1, 1, 1), ((4,), (8,), (16,))),
    Arch((4, 1, 1, 1), ((4, 4, 4, 4), (8,), (16,), (32,))),
    Arch((2, 1, 1, 1), ((4,), (8,), (16,), (32,))),
], ids=["depth0", "width", "stages", "too-deep", "depth-mismatch"])
def test_invalid_architectures_raise(bad):
    with pytest.raises(DassError):
        validate(bad, CPU)
    with pytest.raises(DassError):
        build(bad, CPU, 10)


def test_sampling_mutation_neighbours_stay_in_space():
    rng = np.random.default_rng(5)
    archs = sample_unique(CPU, 200, rng)
    assert len(set(archs)) == 200
    for a in archs[:20]:
        validate(a, CPU)
        m = mutate(a, CPU, rng)
        assert m != a
        validate(m, CPU)
        for nb in neighbours(a, CPU):
            validate(nb, CPU)
            assert nb != a
    small = macs(Arch((1, 1, 1, 1), ((4,), (8,), (16,), (32,))), CPU)
    budget = 2 * small
    under = sample_unique(CPU, 10, rng, accept=lambda a: macs(a, CPU) <= budget)
    assert all(macs(a, CPU) <= budget for a in under)


@pytest.mark.parametrize("strategy", REMAPS)
def test_batched_functional_maps_equal_single(strategy):
    t = teacher_arch(CPU)
    tsd = _random_bn(build(t, CPU, 9), seed=2).state_dict()
    rng = np.random.default_rng(0)
    archs = [sample(CPU, rng) for _ in range(12)] + [t]
    batched = functional_maps(archs, tsd, CPU, 9, seed=7, strategy=strategy, run=MapRun(batch_size=5))
    single = torch.stack([functional_map_single(a, tsd, CPU, 9, 7, strategy) for a in archs])
    assert batched.shape == (13, 64, 2, 2)
    torch.testing.assert_close(batched, single, rtol=1e-4, atol=1e-4)
    # channels beyond the student's last width are zero (padding)
    w = archs[0].widths[-1][-1]
    assert (batched[0, w:] == 0).all()


def test_functional_map_of_teacher_equals_teacher_stage4():
    t = teacher_arch(CPU)
    teacher = _random_bn(build(t, CPU, 9)).eval()
    from dass.space import noise_input
    expect = teacher(noise_input(CPU, 11), return_stages=True)[1][-1][0]
    got = functional_maps([t], teacher.state_dict(), CPU, 9, seed=11)[0]
    torch.testing.assert_close(got, expect, rtol=1e-5, atol=1e-5)


def test_stage_encoding_by_hand():
    from dass.config import load
    from dass.space import stage, stage_batch, stage_dim
    space = load(SpaceConfig, "configs/space/cpu.yaml", [])   # stage widths 8/16/32/64, depths 1-3
    a = Arch((1, 2, 3, 1), ((4,), (8, 10), (16, 16, 32), (32,)))
    want = [1 / 3, 4 / 24, 2 / 3, 18 / 48, 1.0, 64 / 96, 1 / 3, 32 / 192]
    assert stage_dim(space) == 8
    assert stage(a, space).tolist() == pytest.approx(want)
    assert stage(teacher_arch(space), space).tolist() == [1.0] * 8
    assert stage_batch([a, teacher_arch(space)], space).shape == (2, 8)
    # mean widths: 4/8, (8+10)/2/16, (16+16+32)/3/32, 32/64; the depths as above
    mean = [1 / 3, 0.5, 2 / 3, 9 / 16, 1.0, 2 / 3, 1 / 3, 0.5]
    assert stage(a, space, "mean").tolist() == pytest.approx(mean)
    assert stage_batch([a], space, "mean")[0].tolist() == pytest.approx(mean)
    assert stage(teacher_arch(space), space, "mean").tolist() == [1.0] * 8
    with pytest.raises(DassError, match="width"):
        stage(a, space, "max")


def test_sampler_draws_the_stream_of_rng_choice_and_batch_encodings_equal_single_ones():
    """The sampler's fast index draw gives the architectures the plain ``rng.choice`` sampler gives
    (same seed, same stream), and the batched one-hot and cost equal their one-arch forms."""
    import numpy as np
    import torch
    from dass.config import load
    from dass.space import Arch, SpaceConfig, macs, macs_params, params, sample
    from dass.space.encodings import onehot, onehot_batch

    def reference(space, rng):
        depths, widths = [], []
        for s in range(space.num_stages):
            d = int(rng.choice(space.depths))
            ch = space.width_choices[s]
            depths.append(d)
            widths.append(tuple(int(ch[i]) for i in rng.integers(0, len(ch), size=d)))
        return Arch(tuple(depths), tuple(widths))

    for profile in ("cpu", "paper"):
        space = load(SpaceConfig, f"configs/space/{profile}.yaml", [])
        r1, r2 = np.random.default_rng(3), np.random.default_rng(3)
        archs = [sample(space, r1) for _ in range(300)]
        assert archs == [reference(space, r2) for _ in range(300)]
        assert torch.equal(onehot_batch(archs, space), torch.stack([onehot(a, space) for a in archs]))
        assert onehot_batch([], space).shape == (0, onehot(archs[0], space).numel())
        assert all(macs_params(a, space, 11) == (macs(a, space, 11), params(a, space, 11)) for a in archs)
