"""Every functional loss against an independent float64 formula written from the softmax
probabilities, its limits and special cases, autograd, extreme logits, reductions and input errors.

Every test runs twice: on the native CPU kernels (``_native.c``) and on the pure-torch path (the
one CUDA tensors and machines without a C compiler take), so the two are held to the same
references."""
import math
import shutil
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from noisyloss import _native
from noisyloss import functional as NF


@pytest.fixture(autouse=True, params=["native", "torch"])
def backend(request, monkeypatch):
    if request.param == "native" and _native.library() is None:
        pytest.skip(f"native kernels unavailable: {_native.status()}")
    monkeypatch.setattr(_native, "enabled", request.param == "native")
    return request.param


@pytest.fixture
def torch_path(backend):
    """For tests of the torch path's own machinery (scratch buffers, exp2): once, on that path."""
    if backend != "torch":
        pytest.skip("tests the pure-torch path")


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def clone(g: torch.Generator) -> torch.Generator:
    out = torch.Generator()
    out.set_state(g.get_state())
    return out


def batch(n=64, c=7, scale=3.0, seed=0, dtype=torch.float64):
    g = gen(seed)
    return scale * torch.randn(n, c, generator=g, dtype=dtype), torch.randint(0, c, (n,), generator=g)


# --------------------------------------------------------------------------------------------
# independent references: naive softmax probabilities, the formulas as written in the papers
# --------------------------------------------------------------------------------------------
def probs(z):
    e = torch.exp(z - z.max(dim=1, keepdim=True).values.detach())
    return e / e.sum(dim=1, keepdim=True)


def onehot(y, c):
    return torch.eye(c, dtype=torch.float64)[y]


def ref_ce(z, y, eps=0.0):
    p, c = probs(z), z.shape[1]
    t = (1 - eps) * onehot(y, c) + eps / c
    return -(t * torch.log(p)).sum(1)


def ref_mae(z, y):
    return 1 - (probs(z) * onehot(y, z.shape[1])).sum(1)


def ref_gce(z, y, q, k=None):
    py = (probs(z) * onehot(y, z.shape[1])).sum(1)
    loss = (1 - py ** q) / q
    if k is not None:
        loss = torch.where(py <= k, torch.full_like(loss, (1 - k ** q) / q), loss)
    return loss


def ref_rce(z, y, A):
    # -sum_k p_k log q_k with q the one-hot label and log 0 := A
    log_q = torch.where(onehot(y, z.shape[1]) > 0, 0.0, float(A)).double()
    return -(probs(z) * log_q).sum(1)


def ref_nce(z, y):
    log_p = torch.log(probs(z))
    return (log_p * onehot(y, z.shape[1])).sum(1) / log_p.sum(1)


def ref_focal(z, y, gamma):
    py = (probs(z) * onehot(y, z.shape[1])).sum(1)
    return -(1 - py) ** gamma * torch.log(py)


def ref_bootstrap(z, y, beta, hard):
    p, c = probs(z), z.shape[1]
    t = onehot(p.detach().argmax(1), c) if hard else p
    return -((beta * onehot(y, c) + (1 - beta) * t) * torch.log(p)).sum(1)


REFERENCES = {
    "ce": (NF.cross_entropy, {}, ref_ce),
    "ls": (NF.cross_entropy, {"label_smoothing": 0.2}, lambda z, y: ref_ce(z, y, 0.2)),
    "mae": (NF.mae, {}, ref_mae),
    "gce_0.7": (NF.gce, {"q": 0.7}, lambda z, y: ref_gce(z, y, 0.7)),
    "gce_0.1": (NF.gce, {"q": 0.1}, lambda z, y: ref_gce(z, y, 0.1)),
    "gce_trunc": (NF.gce, {"q": 0.7, "k": 0.3}, lambda z, y: ref_gce(z, y, 0.7, 0.3)),
    "rce": (NF.rce, {"A": -4.0}, lambda z, y: ref_rce(z, y, -4.0)),
    "rce_A1.5": (NF.rce, {"A": -1.5}, lambda z, y: ref_rce(z, y, -1.5)),
    "sce": (NF.sce, {"alpha": 0.3, "beta": 0.7, "A": -3.0},
            lambda z, y: 0.3 * ref_ce(z, y) + 0.7 * ref_rce(z, y, -3.0)),
    "nce": (NF.nce, {}, ref_nce),
    "nce_rce": (NF.nce_rce, {"alpha": 2.0, "beta": 0.5, "A": -4.0},
                lambda z, y: 2.0 * ref_nce(z, y) + 0.5 * ref_rce(z, y, -4.0)),
    "focal_2": (NF.focal, {"gamma": 2.0}, lambda z, y: ref_focal(z, y, 2.0)),
    "focal_0.5": (NF.focal, {"gamma": 0.5}, lambda z, y: ref_focal(z, y, 0.5)),
    "bootstrap_soft": (NF.bootstrap, {"beta": 0.8}, lambda z, y: ref_bootstrap(z, y, 0.8, False)),
    "bootstrap_hard": (NF.bootstrap, {"beta": 0.8, "hard": True}, lambda z, y: ref_bootstrap(z, y, 0.8, True)),
}


# the native kernels transpose blocks of 64 rows up to 12 classes and work row by row above: both
# layouts, full and partial blocks
SHAPES = [(64, 7), (70, 12), (150, 40)]


@pytest.mark.parametrize("name", sorted(REFERENCES))
@pytest.mark.parametrize("n,c", SHAPES)
def test_value_and_gradient_match_reference(name, n, c):
    fn, params, ref = REFERENCES[name]
    z, y = batch(n=n, c=c)
    a, b = z.clone().requires_grad_(True), z.clone().requires_grad_(True)
    out, expected = fn(a, y, reduction="none", **params), ref(b, y)
    assert out.dtype == torch.float64 and out.shape == (n,)
    torch.testing.assert_close(out, expected, rtol=1e-10, atol=1e-12)
    w = torch.rand(n, generator=gen(1), dtype=torch.float64)  # a random cotangent
    (out * w).sum().backward()
    (expected * w).sum().backward()
    torch.testing.assert_close(a.grad, b.grad, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", sorted(REFERENCES))
@pytest.mark.parametrize("c", [4, 20])
def test_gradcheck(name, c):
    fn, params, _ = REFERENCES[name]
    z, y = batch(n=6, c=c, scale=1.5, seed=2)
    assert torch.autograd.gradcheck(lambda x: fn(x, y, reduction="none", **params), z.requires_grad_(True))


# --------------------------------------------------------------------------------------------
# limits and identities
# --------------------------------------------------------------------------------------------
def test_gce_tends_to_ce_as_q_goes_to_zero():
    z, y = batch()
    torch.testing.assert_close(NF.gce(z, y, q=1e-6, reduction="none"), NF.cross_entropy(z, y, reduction="none"),
                               rtol=1e-4, atol=1e-4)


def test_gce_with_q_one_is_exactly_mae():
    for dtype in (torch.float32, torch.float64, torch.bfloat16):
        z, y = batch(dtype=dtype)
        assert torch.equal(NF.gce(z, y, q=1.0, reduction="none"), NF.mae(z, y, reduction="none"))


def test_rce_with_A_minus_two_is_the_l1_distance():
    z, y = batch()
    l1 = (onehot(y, 7) - probs(z)).abs().sum(1)
    torch.testing.assert_close(NF.rce(z, y, A=-2.0, reduction="none"), l1, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(NF.mae(z, y, reduction="none"), l1 / 2, rtol=1e-12, atol=1e-12)


def test_truncated_gce_is_constant_without_gradient_below_k():
    q, k = 0.7, 0.4
    p_y = torch.tensor([0.05, 0.2, 0.39, 0.41, 0.6, 0.95], dtype=torch.float64)
    c = 5
    z = torch.log(torch.stack([p_y] + [(1 - p_y) / (c - 1)] * (c - 1), dim=1)).requires_grad_(True)
    y = torch.zeros(6, dtype=torch.long)
    out = NF.gce(z, y, q=q, k=k, reduction="none")
    const = (1 - k ** q) / q
    below = p_y <= k
    torch.testing.assert_close(out[below], torch.full((3,), const, dtype=torch.float64))
    torch.testing.assert_close(out[~below], (1 - p_y[~below] ** q) / q)
    out.sum().backward()
    assert (z.grad[below] == 0).all() and (z.grad[~below].abs().sum(1) > 0).all()


def test_combinations():
    z, y = batch()
    kw = dict(reduction="none")
    torch.testing.assert_close(NF.sce(z, y, alpha=0.2, beta=3.0, A=-6.0, **kw),
                               0.2 * NF.cross_entropy(z, y, **kw) + 3.0 * NF.rce(z, y, A=-6.0, **kw))
    torch.testing.assert_close(NF.nce_rce(z, y, alpha=0.5, beta=2.0, A=-1.0, **kw),
                               0.5 * NF.nce(z, y, **kw) + 2.0 * NF.rce(z, y, A=-1.0, **kw))
    # -log p_y = log s - t_y: both sides round log s (~2 here) differently, so a few ulp of it
    ulps = dict(rtol=1e-14, atol=1e-15)
    torch.testing.assert_close(NF.focal(z, y, gamma=0.0, **kw), NF.cross_entropy(z, y, **kw), **ulps)
    for hard in (False, True):
        torch.testing.assert_close(NF.bootstrap(z, y, beta=1.0, hard=hard, **kw), NF.cross_entropy(z, y, **kw), **ulps)


def test_soft_bootstrap_is_ce_plus_entropy():
    """Not detached: -sum (beta y + (1-beta) p) log p = beta CE + (1 - beta) H(p), gradient included."""
    z, y = batch()
    a, b = z.clone().requires_grad_(True), z.clone().requires_grad_(True)
    out = NF.bootstrap(a, y, beta=0.6, reduction="sum")
    p = probs(b)
    expected = (0.6 * ref_ce(b, y) - 0.4 * (p * torch.log(p)).sum(1)).sum()
    torch.testing.assert_close(out, expected)
    out.backward()
    expected.backward()
    torch.testing.assert_close(a.grad, b.grad)


def test_nce_in_unit_interval_and_sums_to_one():
    z, _ = batch(c=5)
    total = sum(NF.nce(z, torch.full((64,), k), reduction="none") for k in range(5))
    torch.testing.assert_close(total, torch.ones(64, dtype=torch.float64))


# --------------------------------------------------------------------------------------------
# random losses: peer and negative learning
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("base", ["ce", "mae"])
def test_peer_equals_manual_computation(base):
    z, y = batch(n=32)
    g = gen(11)
    g_copy = clone(g)
    out = NF.peer(z, y, alpha=0.3, base=base, generator=g, reduction="none")
    j = torch.randperm(32, generator=g_copy)
    k = torch.randperm(32, generator=g_copy)
    ref = ref_ce if base == "ce" else ref_mae
    expected = ref(z, y) - 0.3 * ref(z[j], y[k])
    torch.testing.assert_close(out, expected, rtol=1e-10, atol=1e-12)
    # a callable base gives the same
    out_callable = NF.peer(z, y, alpha=0.3, base=NF.cross_entropy if base == "ce" else NF.mae,
                           generator=gen(11), reduction="none")
    torch.testing.assert_close(out_callable, expected, rtol=1e-10, atol=1e-12)


def test_peer_reproducible_and_alpha_zero_is_base():
    z, y = batch()
    assert torch.equal(NF.peer(z, y, generator=gen(1)), NF.peer(z, y, generator=gen(1)))
    assert not torch.equal(NF.peer(z, y, generator=gen(1)), NF.peer(z, y, generator=gen(2)))
    torch.testing.assert_close(NF.peer(z, y, alpha=0.0, reduction="none"), ref_ce(z, y))


def test_negative_learning_against_independent_formula():
    """Each per-sample loss is -log(1 - p_k) for exactly one k != y, and the k are uniform."""
    n, c = 6000, 4
    z, y = batch(n=n, c=c, scale=2.0)
    out = NF.negative_learning(z, y, generator=gen(5), reduction="none")
    candidates = -torch.log(1 - probs(z))  # (n, c)
    match = (candidates - out[:, None]).abs() < 1e-10
    assert (match.sum(1) == 1).all()
    ybar = match.double().argmax(1)
    assert (ybar != y).all()
    # uniform over the c - 1 other classes: shift (ybar - y) mod c is uniform on {1, .., c-1}
    counts = torch.bincount((ybar - y) % c, minlength=c)[1:].double()
    expected = n / (c - 1)
    assert counts.sum() == n and ((counts - expected).abs() < 4 * math.sqrt(expected)).all()
    # the documented draw: ybar = (y + randint(1, C)) mod C from the generator
    shift = torch.randint(1, c, (n,), generator=gen(5))
    assert torch.equal(ybar, (y + shift) % c)


def test_negative_learning_binary_is_ce_even_when_saturated():
    # with two classes the complementary label is 1 - y, so -log(1 - p_{1-y}) = -log p_y
    z = torch.tensor([[0.0, 1.0], [0.0, 50.0], [0.0, 1e4], [3.0, -2.0], [20.0, 0.0]])
    y = torch.tensor([0, 0, 0, 1, 1])
    out = NF.negative_learning(z, y, reduction="none")
    torch.testing.assert_close(out, NF.cross_entropy(z, y, reduction="none"), rtol=1e-6, atol=1e-6)
    assert out[2].item() == pytest.approx(1e4)


def test_negative_learning_saturated_branch_gradient():
    # p_ybar > 0.999 takes the exact logsumexp branch; its gradient must equal the reference's
    z = torch.tensor([[12.0, 0.0, 1.0], [0.5, 9.0, -1.0]], dtype=torch.float64)
    y = torch.tensor([1, 2])  # ybar drawn from the others; force ybar = argmax via C=3 retries
    for seed in range(20):
        g = gen(seed)
        shift = torch.randint(1, 3, (2,), generator=clone(g))
        ybar = (y + shift) % 3
        if torch.equal(ybar, torch.tensor([0, 1])):
            break
    else:
        pytest.fail("no seed drew the argmax classes")
    a, b = z.clone().requires_grad_(True), z.clone().requires_grad_(True)
    out = NF.negative_learning(a, y, generator=g, reduction="none")
    expected = -torch.log(1 - (probs(b) * onehot(ybar, 3)).sum(1))
    torch.testing.assert_close(out, expected, rtol=1e-9, atol=1e-12)
    out.sum().backward()
    expected.sum().backward()
    torch.testing.assert_close(a.grad, b.grad, rtol=1e-7, atol=1e-12)


@pytest.mark.parametrize("fn", [NF.peer, NF.negative_learning])
def test_gradcheck_random_losses(fn):
    z, y = batch(n=6, c=4, scale=1.5, seed=3)
    assert torch.autograd.gradcheck(lambda x: fn(x, y, generator=gen(0), reduction="none"),
                                    z.requires_grad_(True))


# --------------------------------------------------------------------------------------------
# every loss: reductions, dtypes, extreme logits
# --------------------------------------------------------------------------------------------
ALL = {
    **{name: (fn, params) for name, (fn, params, _) in REFERENCES.items()},
    "peer": (NF.peer, {"alpha": 0.5}),
    "peer_mae": (NF.peer, {"alpha": 0.5, "base": "mae"}),
    "nl": (NF.negative_learning, {}),
    "gce_tiny_q": (NF.gce, {"q": 1e-4}),
    "focal_0.1": (NF.focal, {"gamma": 0.1}),
}
RANDOM = {"peer", "peer_mae", "nl"}


def call(name, z, y, reduction="mean"):
    fn, params = ALL[name]
    extra = {"generator": gen(0)} if name in RANDOM else {}
    return fn(z, y, reduction=reduction, **params, **extra)


@pytest.mark.parametrize("name", sorted(ALL))
def test_reductions_are_consistent(name):
    z, y = batch()
    none = call(name, z, y, "none")
    assert none.shape == (64,)
    torch.testing.assert_close(call(name, z, y, "mean"), none.mean(), rtol=1e-14, atol=1e-14)
    torch.testing.assert_close(call(name, z, y, "sum"), none.sum(), rtol=1e-14, atol=1e-14)


@pytest.mark.parametrize("name", sorted(ALL))
def test_dtypes(name):
    z, y = batch(dtype=torch.float32)
    assert call(name, z, y).dtype == torch.float32
    assert call(name, z.double(), y).dtype == torch.float64
    half = call(name, z.bfloat16(), y, "none")
    assert half.dtype == torch.float32
    torch.testing.assert_close(half, call(name, z.bfloat16().float(), y, "none"), rtol=1e-6, atol=1e-6)
    # int32 targets work like int64
    torch.testing.assert_close(call(name, z, y.int()), call(name, z, y))


EXTREMES = st.one_of(st.sampled_from([-1e4, -1e3, -88.0, -30.0, 0.0, 30.0, 88.0, 1e3, 1e4]),
                     st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False))


@st.composite
def logits_and_targets(draw):
    n, c = draw(st.integers(1, 5)), draw(st.sampled_from([2, 3, 5, 6, 13, 17]))
    values = draw(st.lists(EXTREMES, min_size=n * c, max_size=n * c))
    target = draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n))
    return torch.tensor(values).reshape(n, c), torch.tensor(target)


@settings(max_examples=40, deadline=None)
@given(data=logits_and_targets(), dtype=st.sampled_from([torch.float32, torch.bfloat16]))
def test_extreme_logits_are_finite(data, dtype):
    z0, y = data
    for name in ALL:
        z = z0.to(dtype).requires_grad_(True)
        out = call(name, z, y)
        out.backward()
        assert torch.isfinite(out), (name, dtype, z0, y, out)
        assert torch.isfinite(z.grad.float()).all(), (name, dtype, z0, y, z.grad)


# --------------------------------------------------------------------------------------------
# the fused backward (row statistics of log_softmax) against plain autograd
# --------------------------------------------------------------------------------------------
def ref_stats(z, index, log_sum, entropy):
    """The same statistics through plain autograd on naive softmax probabilities."""
    log_p = torch.log(probs(z))
    cols = [log_p.gather(1, index)]
    if log_sum:
        cols.append(log_p.sum(1, keepdim=True))
    if entropy:
        cols.append((log_p.exp() * log_p).sum(1, keepdim=True))
    return torch.cat(cols, 1)


@pytest.mark.parametrize("log_sum,entropy", [(False, False), (True, False), (False, True), (True, True)])
@pytest.mark.parametrize("c", [6, 30])
def test_row_statistics_match_autograd(log_sum, entropy, c):
    z, y = batch(n=32, c=c)
    index = torch.stack((y, (y + 1) % c, y), 1)  # repeated classes must accumulate
    a, b = z.clone().requires_grad_(True), z.clone().requires_grad_(True)
    out = NF._row_stats(a, index, log_sum=log_sum, entropy=entropy)
    expected = ref_stats(b, index, log_sum, entropy)
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)
    w = torch.rand(out.shape, generator=gen(3), dtype=torch.float64)
    (out * w).sum().backward()
    (expected * w).sum().backward()
    torch.testing.assert_close(a.grad, b.grad, rtol=1e-10, atol=1e-12)
    assert torch.autograd.gradcheck(
        lambda x: NF._row_stats(x, index[:4], log_sum=log_sum, entropy=entropy),
        z[:4].clone().requires_grad_(True))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("name", ["ls", "bootstrap_soft", "bootstrap_hard"])
def test_losses_reduced_inside_the_fused_function_have_reference_gradients(name, reduction):
    # these reduce inside the autograd Function, so the mean/sum backward is a separate code path
    fn, params, ref = REFERENCES[name]
    z, y = batch()
    a, b = z.clone().requires_grad_(True), z.clone().requires_grad_(True)
    out = fn(a, y, reduction=reduction, **params)
    expected = getattr(ref(b, y), reduction)() if reduction != "none" else ref(b, y)
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)
    w = torch.rand(out.shape, generator=gen(4), dtype=torch.float64)
    (out * w).sum().backward()
    (expected * w).sum().backward()
    torch.testing.assert_close(a.grad, b.grad, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_argmax_of_shifted_logits_is_argmax_including_ties_and_nan(dtype, torch_path):
    z = torch.randn(500, 37, generator=gen(5), dtype=dtype)
    z[3] = 0.0  # all tied: the first class
    z[7, 4] = z[7, 20] = 50.0  # two tied maxima
    z[9, 11] = float("nan")
    z[12] = float("-inf")
    z[15, 30] = float("inf")
    with torch.no_grad():
        t = z - z.amax(1, keepdim=True)
    torch.testing.assert_close(NF._argmax_of_shifted(t, z), z.argmax(1), rtol=0, atol=0)


def test_hard_bootstrap_uses_the_first_of_tied_maxima():
    # as torch.argmax: all-equal logits (a zero-initialised last layer) pick class 0
    z = torch.zeros(3, 4, dtype=torch.float64, requires_grad=True)
    y = torch.tensor([0, 1, 3])
    NF.bootstrap(z, y, beta=0.8, hard=True, reduction="sum").backward()
    p = torch.full((3, 4), 0.25, dtype=torch.float64)
    torch.testing.assert_close(z.grad, 0.8 * (p - onehot(y, 4)) + 0.2 * (p - onehot(torch.zeros(3).long(), 4)))


@pytest.mark.parametrize("name", ["mae", "nce", "bootstrap_soft", "bootstrap_hard", "ls"])
def test_second_backward_with_retain_graph_recomputes(name):
    # the first backward builds the gradient in place in the saved buffers; a second one must not
    # see the overwritten values
    fn, params, _ = REFERENCES[name]
    z, y = batch()
    z.requires_grad_(True)
    loss = fn(z, y, **params)
    (g1,) = torch.autograd.grad(loss, z, retain_graph=True)
    g1 = g1.clone()  # the mutation to catch would write the second gradient into the first's buffer
    (g2,) = torch.autograd.grad(loss, z)
    torch.testing.assert_close(g1, g2, rtol=0, atol=0)


@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_gradients_of_several_losses_accumulate(reduction):
    # the native forward computes the gradient and hands its buffer over as x.grad: a later
    # backward must add to it, not be aliased with it
    z, y = batch(n=100, c=10)
    x = z.clone().requires_grad_(True)
    loss_a, loss_b = NF.gce(x, y, reduction=reduction), NF.nce(x, y, reduction=reduction)
    loss_a.sum().backward()
    g_a = x.grad.clone()
    (2.0 * loss_b.sum()).backward()
    b = z.clone().requires_grad_(True)
    (2.0 * NF.nce(b, y, reduction=reduction).sum()).backward()
    torch.testing.assert_close(x.grad, g_a + b.grad, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_no_grad_mode_gives_the_same_values_without_a_graph(name):
    fn, params, _ = REFERENCES[name]
    z, y = batch()
    x = z.clone().requires_grad_(True)
    with torch.no_grad():
        quiet = fn(x, y, reduction="none", **params)
    assert quiet.grad_fn is None and not quiet.requires_grad
    torch.testing.assert_close(quiet, fn(x, y, reduction="none", **params).detach(), rtol=0, atol=0)


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_autocast_does_not_lower_the_precision(name):
    # CPU autocast runs bmm/mm in bf16 (a bmm-based entropy was off by 3e-3); on CUDA mv is on the
    # float16 list too (tests/test_cuda.py): the fused statistics run with autocast disabled
    fn, params, _ = REFERENCES[name]
    z, y = batch(n=256, c=100, scale=10.0, dtype=torch.float32)
    a, b = z.clone().requires_grad_(True), z.clone().requires_grad_(True)
    ref = fn(a, y, reduction="none", **params)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = fn(b, y, reduction="none", **params)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, ref, rtol=1e-6, atol=1e-6)
    ref.sum().backward()
    out.sum().backward()
    torch.testing.assert_close(b.grad, a.grad, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("with_et", [False, True])
def test_exp2_based_probabilities_are_float32_accurate(with_et, torch_path):
    # exp(t) is taken as exp2(t * log2(e)), 3.5x faster than torch.exp on CPU: p = e / s must stay
    # within a few float32 ulp (6e-8) of float64 softmax, at large logits too
    z, _ = batch(n=512, c=100, scale=10.0)
    z = z + torch.linspace(-3000, 3000, 512, dtype=torch.float64)[:, None]  # large logits, same p
    z32 = z.float()
    e, et, s = NF._exp_parts(z32 - z32.amax(1, keepdim=True), with_et)
    p, ref = (e / s).double(), torch.softmax(z32.double(), dim=1)
    rel = (p - ref).abs() / ref
    assert rel[ref > 1e-3].max() < 2e-6 and rel[ref > 1e-30].max() < 2e-5
    if with_et:  # sum_k p_k log p_k = ln 2 sum_k e_k t_k log2(e) / s - log s
        ent = (et.sum(1) / s[:, 0] * math.log(2) - s[:, 0].log()).double()
        torch.testing.assert_close(ent, (ref * ref.log()).sum(1), rtol=2e-6, atol=2e-6)


@pytest.mark.parametrize("base", ["ce", "mae"])
def test_peer_reduced_inside_has_the_gradient_of_the_per_sample_losses(base):
    # with a CE base and mean/sum the loss is reduced inside the fused Function, in row order m = j_i
    z, y = batch()
    for reduction in ("mean", "sum"):
        a, b = z.clone().requires_grad_(True), z.clone().requires_grad_(True)
        out = NF.peer(a, y, base=base, generator=gen(2), reduction=reduction)
        none = NF.peer(b, y, base=base, generator=gen(2), reduction="none")
        expected = getattr(none, reduction)()
        torch.testing.assert_close(out, expected, rtol=1e-13, atol=1e-13)
        out.backward()
        expected.backward()
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-12, atol=1e-14)


def test_interleaved_graphs_keep_their_own_scratch_buffers(torch_path):
    # soft bootstrap keeps exp(t) in the shared scratch buffer until its backward, and hard bootstrap
    # borrows it for its argmax mask: graphs alive at the same time must not share it
    z, y = batch(n=300, c=40, dtype=torch.float32)
    soft = lambda x: NF.bootstrap(x, y, beta=0.6)  # noqa: E731
    hard = lambda x: NF.bootstrap(x, y, beta=0.6, hard=True)  # noqa: E731
    fns = [soft, hard, soft, soft]
    zs = [z * (1 + i) for i in range(len(fns))]  # different probabilities in each graph
    expected = []
    for fn, zi in zip(fns, zs):
        x = zi.clone().requires_grad_(True)
        fn(x).backward()
        expected.append(x.grad)
    xs = [zi.clone().requires_grad_(True) for zi in zs]
    losses = [fn(x) for fn, x in zip(fns, xs)]
    for i in (1, 3, 0, 2):
        losses[i].backward()
    for x, g in zip(xs, expected):
        torch.testing.assert_close(x.grad, g, rtol=0, atol=0)


def test_the_scratch_buffer_is_reused_across_calls(torch_path):
    z, y = batch(n=300, c=40, dtype=torch.float32)
    z.requires_grad_(True)
    NF.bootstrap(z, y).backward()
    kept = NF._SCRATCH[torch.float32].data_ptr()
    NF.bootstrap(z, y).backward()
    assert NF._SCRATCH[torch.float32].data_ptr() == kept


def test_double_backward_is_refused_clearly():
    # the torch path refuses at the second backward, the native one already at create_graph=True
    z, y = batch(n=4, c=3)
    z.requires_grad_(True)
    with pytest.raises(RuntimeError, match="once_differentiable|double backward|differentiable|first order"):
        (g,) = torch.autograd.grad(NF.gce(z, y), z, create_graph=True)
        g.sum().backward()


def test_non_contiguous_logits(monkeypatch):
    # from an empty scratch buffer (the torch path's first allocation of it must be row-major too,
    # whatever the logits' strides): the result does not depend on which tests ran before
    monkeypatch.setattr(NF, "_SCRATCH", {})
    z, y = batch(n=16, c=5)
    zt = z.t().contiguous().t().requires_grad_(True)  # column-major (N, C)
    zc = z.clone().requires_grad_(True)
    for fn in (NF.mae, NF.nce, lambda a, b: NF.bootstrap(a, b, hard=True), NF.bootstrap):
        zt.grad = zc.grad = None
        fn(zt, y).backward()
        fn(zc, y).backward()
        torch.testing.assert_close(zt.grad, zc.grad, rtol=1e-12, atol=1e-14)


# --------------------------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------------------------
Z, Y = batch(n=4, c=3, dtype=torch.float32)


@pytest.mark.parametrize("call_,exc,match", [
    (lambda: NF.gce(Z, Y, q=0.0), ValueError, r"q must be in \(0, 1\]"),
    (lambda: NF.gce(Z, Y, q=1.5), ValueError, r"q must be in \(0, 1\]"),
    (lambda: NF.gce(Z, Y, q="0.7"), TypeError, "q"),
    (lambda: NF.gce(Z, Y, q=0.7, k=1.0), ValueError, "k must be in"),
    (lambda: NF.gce(Z, Y, q=0.7, k=0.0), ValueError, "k must be in"),
    (lambda: NF.rce(Z, Y, A=0.0), ValueError, "A must be in"),
    (lambda: NF.rce(Z, Y, A=1.0), ValueError, "A must be in"),
    (lambda: NF.sce(Z, Y, A=0.0), ValueError, "A must be in"),
    (lambda: NF.sce(Z, Y, alpha=-1.0), ValueError, "alpha must be in"),
    (lambda: NF.nce_rce(Z, Y, beta=-1.0), ValueError, "beta must be in"),
    (lambda: NF.bootstrap(Z, Y, beta=-0.1), ValueError, r"beta must be in \[0, 1\]"),
    (lambda: NF.bootstrap(Z, Y, beta=1.1), ValueError, r"beta must be in \[0, 1\]"),
    (lambda: NF.bootstrap(Z, Y, hard="yes"), TypeError, "hard"),
    (lambda: NF.focal(Z, Y, gamma=-1.0), ValueError, "gamma must be in"),
    (lambda: NF.focal(Z, Y, gamma=float("nan")), ValueError, "gamma"),
    (lambda: NF.cross_entropy(Z, Y, label_smoothing=1.5), ValueError, "label_smoothing"),
    (lambda: NF.peer(Z, Y, alpha=-0.5), ValueError, "alpha"),
    (lambda: NF.peer(Z, Y, base="focal"), ValueError, "base"),
    (lambda: NF.peer(Z, Y, base=3), TypeError, "base"),
    (lambda: NF.mae(Z, torch.tensor([0, 1, 2, -1])), ValueError, "target"),
    (lambda: NF.mae(Z, torch.tensor([0, 1, 2, 3])), ValueError, "target"),
    (lambda: NF.mae(Z, Y.float()), TypeError, "target"),
    (lambda: NF.mae(Z, Y.bool()), TypeError, "target"),
    (lambda: NF.mae(Z[0], Y), ValueError, "logits"),
    (lambda: NF.mae(Z[:, :1], Y), ValueError, "logits"),
    (lambda: NF.mae(Z, Y[:3]), ValueError, "target"),
    (lambda: NF.mae(Z.long(), Y), TypeError, "logits"),
    (lambda: NF.mae(Z.numpy(), Y), TypeError, "logits"),
    (lambda: NF.mae(Z, Y.tolist()), TypeError, "target"),
    (lambda: NF.mae(Z, Y, reduction="avg"), ValueError, "reduction"),
    (lambda: NF.cross_entropy(Z, Y, reduction="avg"), ValueError, "reduction"),
    (lambda: NF.peer(Z, Y, reduction="avg"), ValueError, "reduction"),
])
def test_errors(call_, exc, match):
    with pytest.raises(exc, match=match):
        call_()


@pytest.mark.parametrize("fn", [NF.cross_entropy, NF.mae, NF.gce, NF.rce, NF.sce, NF.nce, NF.nce_rce, NF.focal,
                                NF.bootstrap, NF.peer, NF.negative_learning])
@pytest.mark.parametrize("bad", [-1, 3])
def test_every_loss_rejects_out_of_range_targets(fn, bad):
    # the native kernels check the targets as they read them, the torch path beforehand: same error
    with pytest.raises(ValueError, match=rf"target values must be in \[0, 2\] \(C=3\), found {bad}$"):
        fn(Z, torch.tensor([0, 1, 2, bad]))
    with pytest.raises(ValueError, match=rf"found {bad}$"):  # float64, a larger batch, the bad one last
        fn(torch.zeros(300, 3, dtype=torch.float64), torch.tensor([1] * 299 + [bad]))


def test_check_param():
    assert NF.check_param("x", 1, low=0.0) == 1.0 and isinstance(NF.check_param("x", 1, low=0.0), float)
    assert NF.check_param("x", torch.tensor(0.5), low=0.0, high=1.0) == 0.5
    with pytest.raises(ValueError, match=r"x must be in \(0, 1\), got 1"):
        NF.check_param("x", 1.0, low=0.0, high=1.0, low_open=True, high_open=True)
    with pytest.raises(TypeError, match="x must be a real number"):
        NF.check_param("x", True)
    with pytest.raises(ValueError, match="x must be in"):
        NF.check_param("x", float("inf"))
    assert np.isclose(NF.check_param("x", np.float64(0.25)), 0.25)


@pytest.mark.parametrize("value", [np.float32(0.5), np.int64(2), np.float64(0.5)])
def test_check_param_accepts_numpy_scalars(value):
    """numpy scalars are real numbers (``numbers.Real``), e.g. ``for gamma in np.arange(4)``."""
    assert NF.check_param("gamma", value, low=0.0) == float(value)
    z, y = batch(n=4, c=3)
    torch.testing.assert_close(NF.focal(z, y, gamma=value), NF.focal(z, y, gamma=float(value)))


# --------------------------------------------------------------------------------------------
# the native kernels: present where a compiler is, equal to the torch path, and a clean fallback
# --------------------------------------------------------------------------------------------
def test_native_kernels_are_built_where_a_compiler_exists():
    if shutil.which("cc") or shutil.which("gcc"):
        assert _native.library() is not None, _native.status()
        assert _native.status() == "native kernels loaded"


@pytest.mark.parametrize("name", sorted(REFERENCES) + ["peer", "nl"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("c,reduction", [(10, "mean"), (13, "none")])
def test_native_and_torch_paths_agree(name, dtype, c, reduction):
    if _native.library() is None:
        pytest.skip(_native.status())
    z, y = batch(n=300, c=c, scale=4.0, dtype=dtype)
    outs = []
    for enabled in (True, False):
        _native.enabled = enabled
        x = z.clone().requires_grad_(True)
        out = call(name, x, y, reduction=reduction)
        (out.sum() * 3.0).backward()  # an upstream gradient other than 1
        outs.append((out.detach(), x.grad))
    tol = dict(rtol=1e-5, atol=3e-6) if dtype == torch.float32 else dict(rtol=1e-12, atol=3e-14)
    if name == "nl" and dtype == torch.float32:  # torch's -log(-expm1(log p)) loses ~ulp/(1 - p) as p -> 1,
        tol = dict(rtol=1e-4, atol=1e-5)         # the kernel's log(1 - p) is exact
    torch.testing.assert_close(outs[0][0], outs[1][0], **tol)
    torch.testing.assert_close(outs[0][1], outs[1][1], **tol)


@pytest.mark.parametrize("c", [10, 30])
def test_native_multithreaded_rows_equal_one_thread(backend, c):
    if backend != "native":
        pytest.skip("tests the native kernels")
    z, y = batch(n=5000, c=c, dtype=torch.float32)  # above the kernels' one-thread grain
    threads = torch.get_num_threads()
    grads = []
    try:
        for nt in (1, 2):
            torch.set_num_threads(nt)
            x = z.clone().requires_grad_(True)
            loss = (NF.sce(x, y) + NF.bootstrap(x, y, hard=True) + NF.nce(x, y) + NF.bootstrap(x, y)
                    + NF.negative_learning(x, y, generator=gen(1)))
            loss.backward()
            grads.append((loss.detach(), x.grad))
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(grads[0][0], grads[1][0]) and torch.equal(grads[0][1], grads[1][1])


def test_native_build_failure_warns_and_falls_back(monkeypatch, tmp_path):
    z, y = batch(n=20, c=4)
    expected = NF.gce(z, y, q=0.5)
    monkeypatch.setattr(_native, "_tried", False)
    monkeypatch.setattr(_native, "_lib", None)
    monkeypatch.setattr(_native, "_why", _native._why)
    monkeypatch.setenv("NOISYLOSS_CACHE", str(tmp_path))
    monkeypatch.setenv("CC", "false")  # a compiler that always fails
    with pytest.warns(RuntimeWarning, match="native build failed"):
        assert _native.library() is None
    assert "native build failed" in _native.status()
    torch.testing.assert_close(NF.gce(z, y, q=0.5), expected, rtol=1e-12, atol=1e-14)


def test_native_can_be_switched_off_by_the_environment(monkeypatch):
    monkeypatch.setattr(_native, "_tried", False)
    monkeypatch.setattr(_native, "_lib", None)
    monkeypatch.setattr(_native, "_why", _native._why)
    monkeypatch.setenv("NOISYLOSS_NATIVE", "0")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _native.library() is None
    assert _native.status() == "disabled by NOISYLOSS_NATIVE=0"
