"""TruncatedGCELoss (Zhang & Sabuncu, 2018) as the authors' code trains it (AlanChou/Truncated-Loss
``TruncatedLoss.py``, ``main.py``): the loss against the formula, the pruning rounds and their
schedule, the authors' computation, training through fit."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import noisyloss
from noisyloss import TruncatedGCELoss
from noisyloss.data import load_dataset
from noisyloss.losses import EpochEnd
from noisyloss.models import make_model
from noisyloss.train import NoisyLabels, fit, predict


def _softmax64(logits):
    z = logits.double().numpy()
    p = np.exp(z - z.max(1, keepdims=True))
    return p / p.sum(1, keepdims=True)


def _end(epoch, logits, epochs=120):
    return EpochEnd(epoch, epochs, logits)


def _seen_all(loss, labels, c):
    """One forward over every sample, so that the loss knows each sample's label."""
    loss(torch.zeros(len(labels), c), labels, torch.arange(len(labels)))


@pytest.mark.parametrize("q,k", [(0.7, 0.5), (0.3, 0.2), (1.0, 0.6)])
def test_the_loss_is_the_weighted_formula(q, k):
    g = torch.Generator().manual_seed(0)
    n, c = 16, 4
    labels = torch.randint(0, c, (n,), generator=g)
    loss = TruncatedGCELoss(num_examples=n, q=q, k=k, start_prune=2)
    _seen_all(loss, labels, c)
    loss.next_epoch(_end(1, 2 * torch.randn(n, c, generator=g)))  # a pruning round: some weights 0
    w = loss.weights.double().numpy()
    assert 0 < w.sum() < n
    logits, index = 2 * torch.randn(6, c, generator=g, dtype=torch.float64), torch.randperm(n, generator=g)[:6]
    py = _softmax64(logits)[np.arange(6), labels[index].numpy()]
    ref = w[index.numpy()] * ((1 - py ** q) / q - (1 - k ** q) / q)
    assert float(loss(logits, labels[index], index)) == pytest.approx(ref.mean(), rel=1e-12)
    none = TruncatedGCELoss(num_examples=n, q=q, k=k, reduction="none")
    np.testing.assert_allclose(none(logits, labels[index], index).numpy(), (1 - py ** q) / q - (1 - k ** q) / q,
                               rtol=1e-12)


def test_a_pruning_round_matches_an_independent_computation():
    g = torch.Generator().manual_seed(1)
    n, c, k = 200, 10, 0.5
    labels = torch.randint(0, c, (n,), generator=g)
    loss = TruncatedGCELoss(num_examples=n, k=k, start_prune=5, prune_every=3)
    _seen_all(loss, labels, c)
    logits = 3 * torch.randn(n, c, generator=g)
    loss.next_epoch(_end(4, logits))  # before epoch 5 = start_prune
    expected = _softmax64(logits)[np.arange(n), labels.numpy()] > k
    assert 0 < expected.sum() < n
    np.testing.assert_array_equal(loss.weights.numpy(), expected.astype(np.float32))
    # a round replaces the weights: a pruned sample comes back when its label becomes likely
    confident = torch.nn.functional.one_hot(labels, c).float() * 20
    loss.next_epoch(_end(7, confident))
    assert torch.equal(loss.weights, torch.ones(n))


def test_no_pruning_before_start_prune_and_then_every_prune_every_epochs():
    n, c = 8, 3
    labels = torch.zeros(n, dtype=torch.long)
    loss = TruncatedGCELoss(num_examples=n, k=0.5, start_prune=40, prune_every=10)
    _seen_all(loss, labels, c)
    unlikely = torch.tensor([[0.0, 5.0, 5.0]]).expand(n, c)  # p_y ~ 0.003 < k: a round prunes everything
    pruned_after = []
    for epoch in range(1, 121):
        loss.weights.fill_(1.0)
        loss.next_epoch(_end(epoch, unlikely))
        if not bool(loss.weights.bool().any()):
            pruned_after.append(epoch)
    assert pruned_after == [39, 49, 59, 69, 79, 89, 99, 109, 119]
    # the authors' main.py prunes before (0-based) epoch e when e + 1 >= 40 and (e + 1) % 10 == 0,
    # that is after the 1-based epochs e = 39, 49, ..., 119: the same rounds
    assert pruned_after == [e for e in range(120) if e + 1 >= 40 and (e + 1) % 10 == 0]
    assert [e for e in range(1, 121) if loss.prunes_after(e)] == pruned_after


def test_a_sample_not_seen_yet_keeps_its_weight():
    loss = TruncatedGCELoss(num_examples=4, k=0.5, start_prune=2)
    loss(torch.zeros(2, 3), torch.tensor([0, 0]), torch.tensor([0, 2]))
    loss.next_epoch(_end(1, torch.tensor([[0.0, 5.0, 5.0]]).expand(4, 3)))
    assert loss.weights.tolist() == [0.0, 1.0, 0.0, 1.0]
    assert loss.labels.tolist() == [0, -1, 0, -1]


def _authors_loss(logits, targets, weight, q, k):
    """TruncatedLoss.forward in our words: softmax, the label's probability Yg, then
    ((1 - Yg^q)/q) w - ((1 - k^q)/q) w, averaged over the batch."""
    yg = logits.softmax(1).gather(1, targets.unsqueeze(1))
    return (((1 - yg ** q) / q) * weight - ((1 - k ** q) / q) * weight).mean()


def _authors_weights(logits, targets, q, k):
    """TruncatedLoss.update_weight in our words: weight 1 where the loss (1 - Yg^q)/q is below the
    truncation constant (1 - k^q)/q (computed in float64 by numpy, then cast to float32), else 0."""
    yg = logits.softmax(1).gather(1, targets.unsqueeze(1))
    lq = (1 - yg ** q) / q
    lqk = torch.full_like(lq, float(np.float32((1 - k ** q) / q)))
    return (lqk > lq).float().squeeze(1)


def test_reproduces_the_authors_computation():
    g = torch.Generator().manual_seed(2)
    n, c, q, k = 64, 10, 0.7, 0.5
    labels = torch.randint(0, c, (n,), generator=g)
    loss = TruncatedGCELoss(num_examples=n, q=q, k=k, start_prune=2)
    _seen_all(loss, labels, c)
    logits = 3 * torch.randn(n, c, generator=g)
    py = logits.softmax(1)[torch.arange(n), labels]
    assert float((py - k).abs().min()) > 1e-4  # no tie: the two tests p > k and L_q(p) < L_q(k) agree
    loss.next_epoch(_end(1, logits))
    theirs = _authors_weights(logits, labels, q, k)
    assert torch.equal(loss.weights, theirs)
    batch, index = 2 * torch.randn(16, c, generator=g), torch.randperm(n, generator=g)[:16]
    weight = theirs[index].unsqueeze(1)  # their weights are (N, 1)
    z, za = batch.clone().requires_grad_(True), batch.clone().requires_grad_(True)
    mine, ref = loss(z, labels[index], index), _authors_loss(za, labels[index], weight, q, k)
    torch.testing.assert_close(mine, ref)
    mine.backward(), ref.backward()
    torch.testing.assert_close(z.grad, za.grad)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_extreme_logits_give_finite_values_and_gradients(dtype):
    big = torch.finfo(dtype).max
    logits = torch.tensor([[big, -big, 0.0], [-big, big, 0.0], [0.0, -math.inf, 1.0]], dtype=dtype)
    loss = TruncatedGCELoss(num_examples=3)
    z = logits.clone().requires_grad_(True)
    value = loss(z, torch.tensor([0, 0, 2]), torch.arange(3))
    value.backward()
    assert torch.isfinite(value) and bool(torch.isfinite(z.grad).all())
    loss.next_epoch(_end(39, logits.float()))
    assert loss.weights.tolist() == [1.0, 0.0, 1.0]


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="k"):
        TruncatedGCELoss(10, k=1.0)
    with pytest.raises(TypeError, match="k"):
        TruncatedGCELoss(10, k=None)
    with pytest.raises(ValueError, match="q"):
        TruncatedGCELoss(10, q=0.0)
    with pytest.raises(ValueError, match="start_prune"):
        TruncatedGCELoss(10, start_prune=1)
    with pytest.raises(ValueError, match="prune_every"):
        TruncatedGCELoss(10, prune_every=0)
    with pytest.raises(ValueError, match="index must be in"):
        TruncatedGCELoss(10)(torch.zeros(2, 3), torch.tensor([0, 1]), torch.tensor([3, 10]))


def test_trains_through_fit_and_prunes_with_the_model_of_that_epoch():
    digits = load_dataset("digits", device="cpu")
    g = torch.Generator().manual_seed(0)
    flipped = torch.rand(len(digits.y_train), generator=g) < 0.3
    noisy = torch.where(flipped, (digits.y_train + 1 + torch.randint(0, 9, digits.y_train.shape, generator=g)) % 10,
                        digits.y_train)
    corrupted = noisy != digits.y_train
    torch.manual_seed(0)
    model = make_model("mlp", 10, 1, 8)
    loss = noisyloss.make_loss("gce_prune", num_examples=len(noisy), start_prune=3, prune_every=3)
    logits = {}
    res = fit(model, digits, loss, NoisyLabels(noisy, corrupted), epochs=6, progress=False,
              callback=lambda entry: logits.update({entry["epoch"]: predict(model, digits.x_train)}))
    assert res.history[-1]["test_acc"] > 0.6  # it learns (chance: 0.1); GCE fits more slowly than CE
    # the rounds came after epochs 2 and 5; the weights are those of the model after epoch 5
    py = F.softmax(logits[5], dim=1)[torch.arange(len(noisy)), noisy]
    assert torch.equal(loss.weights, (py > 0.5).float())
    kept_corrupted, kept_clean = float(loss.weights[corrupted].mean()), float(loss.weights[~corrupted].mean())
    assert kept_corrupted < 0.25 * kept_clean, (kept_corrupted, kept_clean)  # the pruned are mostly wrong labels


def _batches(n=12, c=5, steps=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, c, (n,), generator=g)
    for _ in range(steps):
        index = torch.randperm(n, generator=g)[:4]
        yield 2 * torch.randn(4, c, generator=g, dtype=torch.float64), labels[index], index


def _steps(loss, device):
    """Values and gradients over the batches, with a pruning round after the second one."""
    out = []
    for step, (logits, target, index) in enumerate(_batches()):
        z = logits.to(device).requires_grad_(True)
        value = loss(z, target.to(device), index.to(device))
        value.backward()
        out.append((value.detach().cpu(), z.grad.cpu()))
        if step == 1:
            loss.next_epoch(_end(1, 2 * torch.randn(12, 5, generator=torch.Generator().manual_seed(9)).to(device)))
    return out


def test_compiles_whole_with_the_eager_values():
    eager, compiled = TruncatedGCELoss(12, start_prune=2), TruncatedGCELoss(12, start_prune=2)
    torch._dynamo.reset()
    steps = _steps(torch.compile(compiled, fullgraph=True, backend="aot_eager"), "cpu")  # next_epoch: eager
    for (v, g), (vc, gc) in zip(_steps(eager, "cpu"), steps):
        torch.testing.assert_close(vc, v, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(gc, g, rtol=1e-12, atol=1e-12)
    assert torch.equal(compiled.weights, eager.weights) and 0 < float(eager.weights.sum()) < 12


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu_without_a_host_sync():
    cpu, cuda = TruncatedGCELoss(12, start_prune=2), TruncatedGCELoss(12, start_prune=2).to("cuda")
    for (v, g), (vc, gc) in zip(_steps(cpu, "cpu"), _steps(cuda, "cuda")):
        torch.testing.assert_close(vc, v, rtol=1e-9, atol=1e-9)
        torch.testing.assert_close(gc, g, rtol=1e-9, atol=1e-9)
    assert torch.equal(cuda.weights.cpu(), cpu.weights)
    logits, target, index = (t.cuda() for t in next(_batches()))
    logits.requires_grad_(True)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        cuda(logits, target, index).backward()
        cuda.next_epoch(_end(1, torch.randn(12, 5, device="cuda")))
    finally:
        torch.cuda.set_sync_debug_mode(0)
