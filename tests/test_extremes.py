"""Every registered loss at extreme logits: float32 logits of ±3e38 and -inf on non-target classes
give finite values and finite gradients, in float32 and bfloat16 (``noisyloss.functional``'s
promise, bounded by ``clamp_logits``).  The losses come from the registry, so a new loss is covered
as soon as it is registered."""
from __future__ import annotations

import inspect
import math
from typing import List

import pytest
import torch

from noisyloss import EpochEnd, make_loss
from noisyloss import functional as NF
from noisyloss.registry import LOSSES

BIG = 3e38  # finite in float32 and bfloat16
INF = float("inf")
N, C = 24, 5
#: every registered name with its defaults, and the parameter settings with their own extremes
SPECS: List[str] = sorted(LOSSES) + ["focal:gamma=0.5", "focal:gamma=0", "bootstrap:hard=true",
                                     "peer:base=mae", "gce:q=1e-19", "gce:q=0.7,k=0.3", "sce:A=code",
                                     "nce_rce:A=code"]


def build(spec: str) -> torch.nn.Module:
    """The loss of ``spec``, with the constructor arguments a runner sets itself where it takes them."""
    accepted = inspect.signature(LOSSES[spec.partition(":")[0]].cls).parameters
    runner = {"num_classes": C, "num_examples": N, "reduction": "none"}
    return make_loss(spec, **{k: v for k, v in runner.items() if k in accepted})


def call(loss: torch.nn.Module, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """One call by the training-loop protocol (``noisyloss.losses``)."""
    return loss(z, y, torch.arange(len(y))) if getattr(loss, "needs_index", False) else loss(z, y)


def logits(case: str, generator: torch.Generator) -> torch.Tensor:
    """``(N, C)`` float32 logits with targets ``arange(N) % C``: ``"big"`` draws each logit from
    {-3e38, -1, 0, 1, 3e38}; ``"neginf"`` puts -inf on some non-target classes of every row (all of
    them in the first row) and moderate values elsewhere; ``"both"`` is ``"neginf"`` with ±3e38."""
    y = torch.arange(N) % C
    if case == "big":
        choices = torch.tensor([-BIG, -1.0, 0.0, 1.0, BIG])
        z = choices[torch.randint(0, 5, (N, C), generator=generator)]
        z[0], z[1] = BIG, -BIG  # rows of equal extreme logits
        return z
    z = 3 * torch.randn(N, C, generator=generator)
    if case == "both":
        z = torch.where(torch.rand(N, C, generator=generator) < 0.5, z.sign() * BIG, z)
    off = torch.rand(N, C, generator=generator) < 0.5
    off[0] = True
    off[torch.arange(N), y] = False  # the target's logit stays finite
    return z.masked_fill(off, -INF)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("case", ["big", "neginf", "both"])
@pytest.mark.parametrize("spec", SPECS)
def test_extreme_logits_give_finite_values_and_gradients(spec, case, dtype):
    g = torch.Generator().manual_seed(0)
    loss = build(spec)
    loss.train()
    for epoch in (1, 2):  # a stateful loss's second epoch uses what it learnt from the first
        z = logits(case, g).to(dtype).requires_grad_(True)
        y = torch.arange(N) % C
        torch.manual_seed(epoch)  # the random losses draw from torch's default generator
        out = call(loss, z, y)
        assert torch.isfinite(out).all(), (spec, case, dtype, out)
        for total in (out.mean(), out.sum()):
            assert torch.isfinite(total), (spec, case, dtype, total)
        out.sum().backward()
        assert torch.isfinite(z.grad.float()).all(), (spec, case, dtype, z.grad)
        if hasattr(loss, "next_epoch"):
            loss.next_epoch(EpochEnd(epoch, 2, z.detach().float()))


def test_clamp_logits_bounds_by_the_root_of_the_largest_float():
    bound = math.sqrt(torch.finfo(torch.float32).max)
    z = torch.tensor([[-INF, -BIG, -1e4, 0.0, 1e4, BIG, INF]])
    for dtype in (torch.float32, torch.bfloat16, torch.float16):
        out = NF.clamp_logits(z.to(dtype))
        assert out.dtype == torch.float32
        assert out.abs().max() == torch.tensor(bound, dtype=torch.float32)
    assert torch.equal(NF.clamp_logits(z)[0, 2:5], z[0, 2:5])  # unchanged within the bound
    assert NF.clamp_logits(z.double()).abs().max() == math.sqrt(torch.finfo(torch.float64).max)


def test_values_at_the_bound_are_the_clamped_logits_values():
    bound = math.sqrt(torch.finfo(torch.float32).max)
    z = torch.tensor([[BIG, -BIG, 0.0], [1.0, -INF, 0.0]], requires_grad=True)
    y = torch.tensor([1, 1])
    out = NF.cross_entropy(z, y, reduction="none")
    # -log p_y = logsumexp - z_y: 2 bounds in the first row (log p_y of the -inf logit: bound + lse)
    torch.testing.assert_close(out, torch.tensor([2 * bound, bound + math.log(math.e + 1)]))
    out.sum().backward()
    # the gradient p - e_y of the clamped logits, zero on a clamped logit: the second row's p alone
    p = torch.tensor([math.e, 0.0, 1.0]) / (math.e + 1)
    torch.testing.assert_close(z.grad, torch.stack([torch.zeros(3), p]))


def test_nce_tends_to_zero_with_a_minus_infinite_non_target_logit():
    z = torch.tensor([[0.0, 0.0, -INF], [2.0, 0.0, 0.0]], requires_grad=True)
    out = NF.nce(z, torch.tensor([0, 0]), reduction="none")
    assert 0 < out[0] < 1e-18 and 0 < out[1] < 1
    out[0].backward()
    assert (z.grad.abs() < 1e-18).all()


@pytest.mark.parametrize("q", [1e-50, 1e-40, 1e-20])
def test_gce_refuses_a_q_whose_values_could_overflow(q):
    with pytest.raises(ValueError, match=r"q must be in \[1e-19, 1\]"):
        NF.gce(torch.zeros(2, 3), torch.tensor([0, 1]), q=q)


def test_gce_at_its_smallest_q_sums_a_large_batch_of_saturated_samples():
    # log p_y = -2 bound (the clamped logits): each value is (1 - exp(-2 q bound))/q, about 1e19;
    # float32 sums of a million of them stay finite
    q, bound = NF.GCE_MIN_Q, math.sqrt(torch.finfo(torch.float32).max)
    z = torch.tensor([[-BIG, BIG]]).repeat(10 ** 6, 1).requires_grad_(True)
    out = NF.gce(z, torch.zeros(10 ** 6, dtype=torch.long), q=q, reduction="sum")
    assert torch.isfinite(out) and out.item() == pytest.approx(1e6 * -math.expm1(-2 * q * bound) / q, rel=1e-3)
    out.backward()
    assert torch.isfinite(z.grad).all()
