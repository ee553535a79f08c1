"""The KD and teacher losses against hand computations (python math, not torch)."""
import math

import pytest
import torch

from dass.train.losses import kd_loss, smoothed_cross_entropy

STUDENT = [[1.0, -0.5, 2.0], [0.3, 0.2, -1.0]]
TEACHER = [[2.5, 0.0, -1.0], [-0.4, 1.5, 0.7]]
LABELS = [2, 0]


def softmax(row, t=1.0):
    e = [math.exp(v / t) for v in row]
    z = sum(e)
    return [v / z for v in e]


def hand_kd(alpha, temp):
    b = len(STUDENT)
    soft = 0.0
    hard = 0.0
    for s, t, y in zip(STUDENT, TEACHER, LABELS):
        p_t, p_s = softmax(t, temp), softmax(s, temp)
        soft += -sum(pt * math.log(ps) for pt, ps in zip(p_t, p_s))
        hard += -math.log(softmax(s)[y])
    return (1 - alpha) * temp ** 2 * soft / b + alpha * hard / b


@pytest.mark.parametrize("alpha,temp", [(0.5, 6.0), (0.0, 1.0), (0.3, 2.5)])
def test_kd_loss_equals_hand_computation(alpha, temp):
    got = kd_loss(torch.tensor(STUDENT), torch.tensor(TEACHER), torch.tensor(LABELS), alpha, temp)
    assert got.item() == pytest.approx(hand_kd(alpha, temp), rel=1e-6)


def test_alpha_one_is_plain_cross_entropy_and_needs_no_teacher():
    got = kd_loss(torch.tensor(STUDENT), None, torch.tensor(LABELS), 1.0, 6.0)
    expected = sum(-math.log(softmax(s)[y]) for s, y in zip(STUDENT, LABELS)) / 2
    assert got.item() == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ValueError):
        kd_loss(torch.tensor(STUDENT), None, torch.tensor(LABELS), 0.5, 6.0)


def test_soft_term_gradient_closed_form():
    # d/ds of T^2 * softCE(s/T, t/T) / B  =  T * (softmax(s/T) - softmax(t/T)) / B
    s = torch.tensor(STUDENT, dtype=torch.float64, requires_grad=True)
    kd_loss(s, torch.tensor(TEACHER, dtype=torch.float64), torch.tensor(LABELS), 0.0, 4.0).backward()
    for i, (srow, trow) in enumerate(zip(STUDENT, TEACHER)):
        ps, pt = softmax(srow, 4.0), softmax(trow, 4.0)
        for k in range(3):
            assert s.grad[i, k].item() == pytest.approx(4.0 * (ps[k] - pt[k]) / 2, rel=1e-5, abs=1e-7)  # computed in float32


def test_teacher_loss_is_label_smoothed_cross_entropy():
    eps, k = 0.1, 3
    expected = 0.0
    for s, y in zip(STUDENT, LABELS):
        logp = [math.log(p) for p in softmax(s)]
        target = [eps / k + (1 - eps) * (j == y) for j in range(k)]
        expected += -sum(q * lp for q, lp in zip(target, logp))
    got = smoothed_cross_entropy(torch.tensor(STUDENT), torch.tensor(LABELS), eps)
    assert got.item() == pytest.approx(expected / 2, rel=1e-6)
