"""ELRLoss (Liu et al., 2020): the formula against float64, the target update, the authors'
computation (shengliu66/ELR ``ELR/model/loss.py``) and where ours differs, training through fit."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import noisyloss
from noisyloss import ELRLoss
from noisyloss.data import load_dataset
from noisyloss.models import make_model
from noisyloss.train import NoisyLabels, fit

CLAMP = 1e-4  # the authors' clamp on the softmax


def _reference(logits, target, index, t, lam, beta):
    """Float64 ELR, written out directly: returns (loss, t updated), t a float64 numpy array."""
    z = logits.double().numpy()
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    hat = np.clip(p, CLAMP, 1 - CLAMP)
    hat /= hat.sum(1, keepdims=True)
    t = t.copy()
    t[index] = beta * t[index] + (1 - beta) * hat
    ce = -np.log(p[np.arange(len(z)), target.numpy()])
    reg = np.log(1.0 - (p * t[index]).sum(1))
    return float(np.mean(ce + lam * reg)), t


def _batches(n=12, c=5, steps=6, batch=4, scale=2.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        yield (scale * torch.randn(batch, c, generator=g, dtype=torch.float64),
               torch.randint(0, c, (batch,), generator=g), torch.randperm(n, generator=g)[:batch])


@pytest.mark.parametrize("lam,beta", [(3.0, 0.7), (1.0, 0.9), (0.0, 0.5)])
def test_matches_the_float64_formula_over_several_steps(lam, beta):
    loss = ELRLoss(num_examples=12, num_classes=5, lam=lam, beta=beta)
    t = np.zeros((12, 5))
    for logits, target, index in _batches():
        ref, t = _reference(logits, target, index, t, lam, beta)
        assert float(loss(logits, target, index)) == pytest.approx(ref, rel=1e-6)
        np.testing.assert_allclose(loss.targets.double().numpy(), t, rtol=1e-6, atol=1e-7)


def test_targets_start_at_zero_and_are_updated_before_use():
    loss = ELRLoss(num_examples=6, num_classes=3, lam=2.0, beta=0.7)
    assert torch.equal(loss.targets, torch.zeros(6, 3))
    logits = torch.tensor([[1.0, 0.0, -1.0], [0.0, 2.0, 0.0]])
    target, index = torch.tensor([0, 1]), torch.tensor([4, 1])
    value = loss(logits, target, index)
    p = logits.softmax(1)
    hat = p.clamp(CLAMP, 1 - CLAMP)
    hat = hat / hat.sum(1, keepdim=True)
    torch.testing.assert_close(loss.targets[index], 0.3 * hat)  # t = beta * 0 + (1 - beta) p_hat
    assert torch.equal(loss.targets[[0, 2, 3, 5]], torch.zeros(4, 3))  # rows not in the batch untouched
    ce = F.cross_entropy(logits, target, reduction="none")
    used = ce + 2.0 * torch.log(1 - (p * 0.3 * hat).sum(1))  # the regulariser sees the updated t
    torch.testing.assert_close(value, used.mean())
    # a second visit: t <- beta t + (1 - beta) p_hat, from the new predictions
    logits2 = torch.tensor([[0.0, 3.0, 0.0], [1.0, 1.0, 1.0]])
    loss(logits2, target, index)
    hat2 = logits2.softmax(1).clamp(CLAMP, 1 - CLAMP)
    hat2 = hat2 / hat2.sum(1, keepdim=True)
    torch.testing.assert_close(loss.targets[index], 0.7 * 0.3 * hat + 0.3 * hat2)


def test_the_gradient_matches_float64_autograd_and_the_targets_carry_none():
    loss = ELRLoss(num_examples=12, num_classes=5, lam=3.0, beta=0.7)
    t = np.zeros((12, 5))
    for logits, target, index in _batches():
        t_before = t
        _, t = _reference(logits, target, index, t_before, 3.0, 0.7)
        z = logits.clone().requires_grad_(True)
        loss(z, target, index).backward()
        zr = logits.clone().requires_grad_(True)
        p = zr.softmax(1)
        ref = F.cross_entropy(zr, target) + 3.0 * torch.log(1 - (p * torch.from_numpy(t[index])).sum(1)).mean()
        ref.backward()
        torch.testing.assert_close(z.grad, zr.grad, rtol=1e-5, atol=1e-7)
    assert not loss.targets.requires_grad


def _authors(logits, target, index, t, lam, beta):
    """The authors' forward, in our words: softmax clamped to [1e-4, 1 - 1e-4]; the targets move
    towards the clamped prediction renormalised (detached); CE on the logits plus lam times the mean
    of log(1 - <clamped p, t>).  ``t`` (a tensor) is updated in place."""
    p = logits.softmax(1).clamp(CLAMP, 1 - CLAMP)
    detached = p.detach()
    t[index] = beta * t[index] + (1 - beta) * detached / detached.sum(1, keepdim=True)
    return F.cross_entropy(logits, target) + lam * torch.log(1 - (t[index] * p).sum(1)).mean()


def test_reproduces_the_authors_computation_inside_their_clamp():
    ours = ELRLoss(num_examples=12, num_classes=5, lam=3.0, beta=0.7)
    t = torch.zeros(12, 5)
    for logits, target, index in _batches(scale=1.5):
        logits = logits.float()
        assert bool(((logits.softmax(1) > CLAMP) & (logits.softmax(1) < 1 - CLAMP)).all())
        z, za = logits.clone().requires_grad_(True), logits.clone().requires_grad_(True)
        mine, theirs = ours(z, target, index), _authors(za, target, index, t, 3.0, 0.7)
        torch.testing.assert_close(mine, theirs)
        torch.testing.assert_close(ours.targets, t)
        mine.backward(), theirs.backward()
        torch.testing.assert_close(z.grad, za.grad)


def test_differs_from_the_authors_where_they_clamp_the_prediction():
    """A confident prediction (every probability outside [1e-4, 1 - 1e-4]): the authors' clamp
    changes the regulariser's value and cuts its gradient to zero, leaving only CE's; ours stays the
    exact formula (float64 reference) with the regulariser's gradient r - p.  Both move the targets
    identically: that clamp is theirs, kept here."""
    logits, target, index = torch.tensor([[12.0, 0.0, 0.0, 0.0]]), torch.tensor([0]), torch.tensor([0])
    ours, t, t64 = ELRLoss(num_examples=1, num_classes=4), torch.zeros(1, 4), np.zeros((1, 4))
    for _ in range(40):  # the targets become confident too
        z, za = logits.clone().requires_grad_(True), logits.clone().requires_grad_(True)
        mine, theirs = ours(z, target, index), _authors(za, target, index, t, 3.0, 0.7)
        ref, t64 = _reference(logits, target, index, t64, 3.0, 0.7)
    torch.testing.assert_close(ours.targets, t)
    assert float(mine.detach()) == pytest.approx(ref, rel=1e-4)  # rel. 1e-4: 1 - t_0 ~ 3e-4 from float32 t
    assert abs(float(theirs.detach()) - ref) > 0.1  # log(1 - <p, t>) with p_0 clamped to 1 - 1e-4
    mine.backward(), theirs.backward()
    zc = logits.clone().requires_grad_(True)
    F.cross_entropy(zc, target).backward()
    torch.testing.assert_close(za.grad, zc.grad)  # theirs: CE's gradient only
    assert float((z.grad - zc.grad).abs().max()) > 0.1


def test_the_regulariser_is_bounded_below_by_the_clamp_of_the_targets():
    c = 10
    loss = ELRLoss(num_examples=1, num_classes=c, lam=1.0, beta=0.5)
    logits, target, index = torch.tensor([[30.0] + [0.0] * (c - 1)]), torch.tensor([0]), torch.tensor([0])
    for _ in range(80):  # t_0 -> its largest value, the clamped prediction renormalised
        value = loss(logits, target, index)
    delta = (c - 1) * CLAMP / (1 + (c - 2) * CLAMP)
    ce = float(F.cross_entropy(logits, target))
    assert math.log(delta) - 1e-3 <= float(value) - ce <= math.log(delta) + 1e-2


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_extreme_logits_give_finite_values_and_gradients(dtype):
    big = torch.finfo(dtype).max
    logits = torch.tensor([[big, -big, 0.0], [-big, big, 0.0], [0.0, -math.inf, 1.0]], dtype=dtype)
    target, index = torch.tensor([0, 0, 2]), torch.tensor([0, 1, 2])
    loss = ELRLoss(num_examples=3, num_classes=3)
    for _ in range(3):
        z = logits.clone().requires_grad_(True)
        value = loss(z, target, index)
        value.backward()
        assert torch.isfinite(value) and bool(torch.isfinite(z.grad).all())


def test_reduction_none_gives_the_per_sample_terms():
    a = ELRLoss(num_examples=12, num_classes=5, reduction="none")
    b = ELRLoss(num_examples=12, num_classes=5, reduction="sum")
    for logits, target, index in _batches():
        per_sample = a(logits, target, index)
        assert per_sample.shape == (4,)
        torch.testing.assert_close(per_sample.sum(), b(logits, target, index))


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="lam"):
        ELRLoss(10, 3, lam=-1.0)
    with pytest.raises(ValueError, match="beta"):
        ELRLoss(10, 3, beta=1.0)
    with pytest.raises(TypeError, match="num_examples"):
        ELRLoss(10.0, 3)
    loss = ELRLoss(10, 3)
    logits, target = torch.zeros(2, 3), torch.tensor([0, 1])
    with pytest.raises(ValueError, match="num_classes"):
        loss(torch.zeros(2, 4), target, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="index"):
        loss(logits, target, torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="index must be in \\[0, 9\\]"):
        loss(logits, target, torch.tensor([0, 10]))
    with pytest.raises(TypeError, match="index"):
        loss(logits, target, torch.tensor([0.0, 1.0]))


def test_trains_through_fit_and_averages_every_seen_sample():
    digits = load_dataset("digits", device="cpu")
    g = torch.Generator().manual_seed(0)
    flipped = torch.rand(len(digits.y_train), generator=g) < 0.3
    noisy = torch.where(flipped, (digits.y_train + 1 + torch.randint(0, 9, digits.y_train.shape, generator=g)) % 10,
                        digits.y_train)
    torch.manual_seed(0)
    loss = noisyloss.make_loss("elr", num_examples=len(noisy), num_classes=10)
    res = fit(make_model("mlp", 10, 1, 8), digits, loss, NoisyLabels(noisy, noisy != digits.y_train), epochs=5,
              batch_size=449, progress=False)
    assert res.history[-1]["test_acc"] > 0.8
    sums = loss.targets.sum(1)  # every sample seen 5 times (449 divides 1347): sum 1 - 0.7^5
    torch.testing.assert_close(sums, torch.full_like(sums, 1 - 0.7 ** 5))


def _steps(loss, batches, device):
    """Values and gradients of ``loss`` over ``batches`` on ``device``."""
    out = []
    for logits, target, index in batches:
        z = logits.to(device).requires_grad_(True)
        value = loss(z, target.to(device), index.to(device))
        value.backward()
        out.append((value.detach().cpu(), z.grad.cpu()))
    return out


def test_compiles_whole_with_the_eager_values():
    eager, compiled = ELRLoss(12, 5), ELRLoss(12, 5)
    torch._dynamo.reset()
    steps = _steps(torch.compile(compiled, fullgraph=True, backend="aot_eager"), _batches(), "cpu")
    for (v, g), (vc, gc) in zip(_steps(eager, _batches(), "cpu"), steps):
        torch.testing.assert_close(vc, v, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(gc, g, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(compiled.targets, eager.targets, rtol=0, atol=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu_without_a_host_sync():
    cpu, cuda = ELRLoss(12, 5), ELRLoss(12, 5).to("cuda")
    for (v, g), (vc, gc) in zip(_steps(cpu, _batches(), "cpu"), _steps(cuda, _batches(), "cuda")):
        torch.testing.assert_close(vc, v, rtol=1e-9, atol=1e-9)
        torch.testing.assert_close(gc, g, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(cuda.targets.cpu(), cpu.targets, rtol=1e-6, atol=1e-7)
    logits, target, index = next(_batches())
    logits, target, index = logits.cuda().requires_grad_(True), target.cuda(), index.cuda()
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        cuda(logits, target, index).backward()
    finally:
        torch.cuda.set_sync_debug_mode(0)
