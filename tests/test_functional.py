"""Every loss, one class each: the float64 paper formula (``references.py``), gradcheck, the Module
equal to the function, reductions and dtypes, extreme logits in float32/bfloat16, capture by
``torch.compile(fullgraph=True)`` with the eager values; then each loss's own limits and special
cases, the argument checks and the docstring examples."""
import doctest
import math
from typing import Any, Callable, Dict, List

import numpy as np
import pytest
import references as R
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import noisyloss
from noisyloss import _checks
from noisyloss import functional as NF
from noisyloss import losses as L


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def batch(n=64, c=7, scale=3.0, seed=0, dtype=torch.float64):
    g = gen(seed)
    return scale * torch.randn(n, c, generator=g, dtype=dtype), torch.randint(0, c, (n,), generator=g)


def permutations(n: int, generator: torch.Generator):
    """peer's documented draw of its two permutations j, k."""
    return torch.randperm(n, generator=generator), torch.randperm(n, generator=generator)


def complementary(y: torch.Tensor, c: int, generator: torch.Generator) -> torch.Tensor:
    """negative learning's documented draw: ybar = (y + randint(1, C)) mod C."""
    return (y + torch.randint(1, c, y.shape, generator=generator)) % c


EXTREMES = st.one_of(st.sampled_from([-1e4, -1e3, -88.0, -30.0, 0.0, 30.0, 88.0, 1e3, 1e4]),
                     st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False))


def assert_compiled_equals_eager(f: Callable, z: torch.Tensor, y: torch.Tensor, *, seed: int, rtol: float,
                                 atol: float, **compile_kwargs: Any) -> None:
    """``torch.compile(f, fullgraph=True)`` gives eager ``f``'s values and gradients (both random
    streams started from ``seed``)."""
    compiled = torch.compile(f, fullgraph=True, **compile_kwargs)
    a, b = z.clone().requires_grad_(True), z.clone().requires_grad_(True)
    torch.manual_seed(seed)
    expected = f(a, y)
    torch.manual_seed(seed)
    out = compiled(b, y)
    torch.testing.assert_close(out, expected, rtol=rtol, atol=atol)
    expected.sum().backward()
    out.sum().backward()
    torch.testing.assert_close(b.grad, a.grad, rtol=rtol, atol=atol)


@st.composite
def logits_and_targets(draw):
    n, c = draw(st.integers(1, 5)), draw(st.sampled_from([2, 3, 5, 13]))
    values = draw(st.lists(EXTREMES, min_size=n * c, max_size=n * c))
    target = draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n))
    return torch.tensor(values).reshape(n, c), torch.tensor(target)


# --------------------------------------------------------------------------------------------
# what every loss must do
# --------------------------------------------------------------------------------------------
class LossTests:
    """Subclasses name the function, its Module, parameter sets and the reference."""

    fn: Callable[..., torch.Tensor]
    module: type
    cases: List[Dict[str, Any]] = [{}]
    random = False  # draws from a generator: the reference repeats the draw from a clone

    def reference(self, z, y, **params):
        raise NotImplementedError

    def kwargs(self, params):
        return {**params, "generator": gen(0)} if self.random else dict(params)

    def call(self, z, y, params, reduction="none"):
        return type(self).fn(z, y, reduction=reduction, **self.kwargs(params))

    @pytest.mark.parametrize("n,c", [(64, 7), (40, 30)])
    def test_value_and_gradient_match_the_paper_formula(self, n, c):
        z, y = batch(n=n, c=c)
        for params in self.cases:
            a, b = z.clone().requires_grad_(True), z.clone().requires_grad_(True)
            out, expected = self.call(a, y, params), self.reference(b, y, **self.kwargs(params))
            assert out.dtype == torch.float64 and out.shape == (n,)
            torch.testing.assert_close(out, expected, rtol=1e-10, atol=1e-12)
            w = torch.rand(n, generator=gen(1), dtype=torch.float64)  # a random cotangent
            (out * w).sum().backward()
            (expected * w).sum().backward()
            torch.testing.assert_close(a.grad, b.grad, rtol=1e-9, atol=1e-12)

    def test_gradcheck_and_gradgradcheck(self):
        z, y = batch(n=5, c=4, scale=1.5, seed=2)
        z.requires_grad_(True)
        for params in self.cases:
            assert torch.autograd.gradcheck(lambda x: self.call(x, y, params), z)
        # plain autograd all the way: second derivatives too
        assert torch.autograd.gradgradcheck(lambda x: self.call(x, y[:3], self.cases[0]), z[:3])

    @pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
    def test_module_equals_function(self, reduction):
        z, y = batch()
        for params in self.cases:
            module = self.module(**self.kwargs(params), reduction=reduction)
            assert all(getattr(module, k) == v for k, v in params.items())  # named attributes
            assert torch.equal(module(z, y), self.call(z, y, params, reduction))

    def test_reductions_are_mean_and_sum_of_the_per_sample_losses(self):
        z, y = batch()
        for params in self.cases:
            none = self.call(z, y, params)
            torch.testing.assert_close(self.call(z, y, params, "mean"), none.mean(), rtol=1e-14, atol=1e-14)
            torch.testing.assert_close(self.call(z, y, params, "sum"), none.sum(), rtol=1e-14, atol=1e-14)

    def test_dtypes(self):
        z, y = batch(dtype=torch.float32)
        params = self.cases[0]
        assert self.call(z, y, params).dtype == torch.float32
        assert self.call(z.double(), y, params).dtype == torch.float64
        for half in (torch.bfloat16, torch.float16):  # computed, and returned, in float32
            out = self.call(z.to(half), y, params)
            assert out.dtype == torch.float32
            torch.testing.assert_close(out, self.call(z.to(half).float(), y, params), rtol=0, atol=0)
        torch.testing.assert_close(self.call(z, y.int(), params), self.call(z, y, params), rtol=0, atol=0)

    # one test method run by every loss class: examples saved for one class are replayed in all
    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.differing_executors])
    @given(data=logits_and_targets(), dtype=st.sampled_from([torch.float32, torch.bfloat16]))
    def test_extreme_logits_give_finite_values_and_gradients(self, data, dtype):
        z0, y = data
        for params in self.cases:
            z = z0.to(dtype).requires_grad_(True)
            out = self.call(z, y, params, "mean")
            out.backward()
            assert torch.isfinite(out), (params, dtype, z0, y, out)
            assert torch.isfinite(z.grad.float()).all(), (params, dtype, z0, y, z.grad)

    def test_autocast_keeps_float32(self):
        z, y = batch(n=128, c=100, scale=10.0, dtype=torch.float32)
        params = self.cases[0]
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = self.call(z, y, params)
        assert out.dtype == torch.float32
        torch.testing.assert_close(out, self.call(z, y, params), rtol=1e-6, atol=1e-6)

    def test_compile_fullgraph_gives_the_eager_values(self):
        # fullgraph=True: a graph break (a host read, an unsupported call) is an error. The backend
        # aot_eager traces forward and backward without building C++ (one test below uses inductor).
        torch._dynamo.reset()  # this test's lambda is one code object for all classes: no recompile limit
        z, y = batch(n=16, c=5)
        for params in self.cases:
            f = lambda x, t: type(self).fn(x, t, reduction="none", **params)  # noqa: E731
            assert_compiled_equals_eager(f, z, y, seed=3, rtol=1e-12, atol=1e-12, backend="aot_eager")

    @pytest.mark.parametrize("bad", [-1, 3])
    def test_out_of_range_targets_raise_a_clear_error(self, bad):
        z = torch.zeros(4, 3)
        with pytest.raises(ValueError, match=rf"target must be in \[0, 2\] \(C=3\), found {bad}$"):
            self.call(z, torch.tensor([0, 1, 2, bad]), self.cases[0])


# --------------------------------------------------------------------------------------------
# one class per loss
# --------------------------------------------------------------------------------------------
class TestCrossEntropy(LossTests):
    fn, module = staticmethod(NF.cross_entropy), L.CrossEntropyLoss
    cases = [{}, {"label_smoothing": 0.2}]

    def reference(self, z, y, label_smoothing=0.0):
        return R.cross_entropy(z, y, label_smoothing)

    def test_equals_torch(self):
        z, y = batch()
        assert torch.equal(NF.cross_entropy(z, y, label_smoothing=0.1),
                           torch.nn.functional.cross_entropy(z, y, label_smoothing=0.1))


class TestMAE(LossTests):
    fn, module = staticmethod(NF.mae), L.MAELoss

    def reference(self, z, y):
        return R.mae(z, y)

    def test_half_the_l1_distance_and_symmetric(self):
        z, y = batch(c=5)
        l1 = (R.onehot(y, 5) - R.probs(z)).abs().sum(1)
        torch.testing.assert_close(NF.mae(z, y, reduction="none"), l1 / 2, rtol=1e-12, atol=1e-12)
        total = sum(NF.mae(z, torch.full_like(y, k), reduction="none") for k in range(5))
        torch.testing.assert_close(total, torch.full((64,), 4.0, dtype=torch.float64))


class TestGCE(LossTests):
    fn, module = staticmethod(NF.gce), L.GCELoss
    cases = [{"q": 0.7}, {"q": 0.1}, {"q": 1e-4}, {"q": 0.7, "k": 0.3}]

    def reference(self, z, y, q, k=None):
        return R.gce(z, y, q, k)

    def test_tends_to_ce_as_q_goes_to_zero(self):
        z, y = batch()
        torch.testing.assert_close(NF.gce(z, y, q=1e-7, reduction="none"),
                                   NF.cross_entropy(z, y, reduction="none"), rtol=1e-6, atol=1e-6)

    def test_q_one_is_exactly_mae(self):
        for dtype in (torch.float32, torch.float64, torch.bfloat16):
            z, y = batch(dtype=dtype)
            assert torch.equal(NF.gce(z, y, q=1.0, reduction="none"), NF.mae(z, y, reduction="none"))

    def test_a_target_logit_of_minus_infinity_gives_one_over_q(self):
        # p_y = 0 exactly: (1 - 0^q)/q = 1/q, and the gradient is 0 (not NaN)
        z = torch.tensor([[float("-inf"), 1.0, 2.0], [0.0, 0.0, 0.0]], requires_grad=True)
        out = NF.gce(z, torch.tensor([0, 0]), q=0.5, reduction="none")
        torch.testing.assert_close(out, torch.tensor([2.0, 2 * (1 - 3**-0.5)]))
        out[0].backward()
        assert torch.equal(z.grad, torch.zeros(2, 3))

    def test_truncation_is_constant_without_gradient_below_k(self):
        q, k, c = 0.7, 0.4, 5
        p_y = torch.tensor([0.05, 0.2, 0.39, 0.41, 0.6, 0.95], dtype=torch.float64)
        z = torch.log(torch.stack([p_y] + [(1 - p_y) / (c - 1)] * (c - 1), dim=1)).requires_grad_(True)
        out = NF.gce(z, torch.zeros(6, dtype=torch.long), q=q, k=k, reduction="none")
        below = p_y <= k
        torch.testing.assert_close(out[below], torch.full((3,), (1 - k**q) / q, dtype=torch.float64))
        torch.testing.assert_close(out[~below], (1 - p_y[~below] ** q) / q)
        out.sum().backward()
        assert (z.grad[below] == 0).all() and (z.grad[~below].abs().sum(1) > 0).all()


class TestRCE(LossTests):
    fn, module = staticmethod(NF.rce), L.RCELoss
    cases = [{"A": -4.0}, {"A": math.log(1e-4)}]

    def reference(self, z, y, A):
        return R.rce(z, y, A)

    def test_A_minus_two_is_the_l1_distance(self):
        z, y = batch()
        l1 = (R.onehot(y, 7) - R.probs(z)).abs().sum(1)
        torch.testing.assert_close(NF.rce(z, y, A=-2.0, reduction="none"), l1, rtol=1e-12, atol=1e-12)


class TestSCE(LossTests):
    fn, module = staticmethod(NF.sce), L.SCELoss
    cases = [{"alpha": 0.1, "beta": 1.0, "A": -4.0}, {"alpha": 0.3, "beta": 0.7, "A": -3.0}]

    def reference(self, z, y, alpha, beta, A):
        return R.sce(z, y, alpha, beta, A)


class TestNCE(LossTests):
    fn, module = staticmethod(NF.nce), L.NCELoss

    def reference(self, z, y):
        return R.nce(z, y)

    def test_in_the_unit_interval_and_sums_to_one_over_the_labels(self):
        z, _ = batch(c=5)
        values = torch.stack([NF.nce(z, torch.full((64,), k), reduction="none") for k in range(5)])
        assert ((values >= 0) & (values <= 1)).all()
        torch.testing.assert_close(values.sum(0), torch.ones(64, dtype=torch.float64))


class TestNCERCE(LossTests):
    fn, module = staticmethod(NF.nce_rce), L.NCERCELoss
    cases = [{"alpha": 1.0, "beta": 1.0, "A": -4.0}, {"alpha": 2.0, "beta": 0.5, "A": -1.0}]

    def reference(self, z, y, alpha, beta, A):
        return R.nce_rce(z, y, alpha, beta, A)


class TestFocal(LossTests):
    fn, module = staticmethod(NF.focal), L.FocalLoss
    cases = [{"gamma": 2.0}, {"gamma": 0.5}, {"gamma": 0.1}]

    def reference(self, z, y, gamma):
        return R.focal(z, y, gamma)

    def test_gamma_zero_is_ce(self):
        z, y = batch()
        torch.testing.assert_close(NF.focal(z, y, gamma=0.0), NF.cross_entropy(z, y), rtol=1e-14, atol=1e-15)


class TestBootstrap(LossTests):
    fn, module = staticmethod(NF.bootstrap), L.BootstrapLoss
    cases = [{"beta": 0.8}, {"beta": 0.8, "hard": True}]

    def reference(self, z, y, beta, hard=False):
        return R.bootstrap(z, y, beta, hard)

    def test_beta_one_is_ce(self):
        z, y = batch()
        for hard in (False, True):
            torch.testing.assert_close(NF.bootstrap(z, y, beta=1.0, hard=hard), NF.cross_entropy(z, y),
                                       rtol=1e-14, atol=1e-15)

    def test_soft_is_ce_plus_entropy_with_its_gradient(self):
        """Not detached: -sum (beta y + (1-beta) p) log p = beta CE + (1 - beta) H(p)."""
        z, y = batch()
        a, b = z.clone().requires_grad_(True), z.clone().requires_grad_(True)
        out = NF.bootstrap(a, y, beta=0.6, reduction="sum")
        p = R.probs(b)
        expected = (0.6 * R.cross_entropy(b, y) - 0.4 * (p * torch.log(p)).sum(1)).sum()
        torch.testing.assert_close(out, expected)
        out.backward()
        expected.backward()
        torch.testing.assert_close(a.grad, b.grad)

    def test_hard_uses_the_first_of_tied_maxima(self):
        z = torch.zeros(3, 4, dtype=torch.float64, requires_grad=True)  # a zero-initialised last layer
        y = torch.tensor([0, 1, 3])
        NF.bootstrap(z, y, beta=0.8, hard=True, reduction="sum").backward()
        p = torch.full((3, 4), 0.25, dtype=torch.float64)
        first = R.onehot(torch.zeros(3, dtype=torch.long), 4)
        torch.testing.assert_close(z.grad, 0.8 * (p - R.onehot(y, 4)) + 0.2 * (p - first))


class TestPeer(LossTests):
    fn, module = staticmethod(NF.peer), L.PeerLoss
    cases = [{"alpha": 0.3}, {"alpha": 0.5, "base": "mae"}]
    random = True

    def reference(self, z, y, alpha, generator, base="ce"):
        j, k = permutations(len(y), generator)
        return R.peer(z, y, alpha, base, j, k)

    def test_reproducible_and_alpha_zero_is_the_base(self):
        z, y = batch()
        assert torch.equal(NF.peer(z, y, generator=gen(1)), NF.peer(z, y, generator=gen(1)))
        assert not torch.equal(NF.peer(z, y, generator=gen(1)), NF.peer(z, y, generator=gen(2)))
        torch.testing.assert_close(NF.peer(z, y, alpha=0.0, reduction="none"), R.cross_entropy(z, y))

    def test_a_generator_cannot_enter_a_full_graph(self):
        z, y = batch(n=4, c=3)
        compiled = torch.compile(NF.peer, fullgraph=True, backend="aot_eager")
        with pytest.raises(torch._dynamo.exc.Unsupported):
            compiled(z, y, generator=gen(0))


class TestNegativeLearning(LossTests):
    fn, module = staticmethod(NF.negative_learning), L.NegativeLearningLoss
    random = True

    def reference(self, z, y, generator):
        return R.negative_learning(z, complementary(y, z.shape[1], generator))

    def test_complementary_labels_are_uniform_over_the_other_classes(self):
        n, c = 6000, 4
        z, y = batch(n=n, c=c, scale=2.0)
        out = NF.negative_learning(z, y, generator=gen(5), reduction="none")
        match = (-torch.log(1 - R.probs(z)) - out[:, None]).abs() < 1e-10  # which class was drawn
        assert (match.sum(1) == 1).all()
        ybar = match.double().argmax(1)
        assert (ybar != y).all()
        counts = torch.bincount((ybar - y) % c, minlength=c)[1:].double()
        assert ((counts - n / (c - 1)).abs() < 4 * math.sqrt(n / (c - 1))).all()

    def test_two_classes_is_ce_even_when_saturated(self):
        z = torch.tensor([[0.0, 1.0], [0.0, 50.0], [0.0, 1e4], [3.0, -2.0], [20.0, 0.0]])
        y = torch.tensor([0, 0, 0, 1, 1])
        out = NF.negative_learning(z, y, reduction="none")
        torch.testing.assert_close(out, NF.cross_entropy(z, y, reduction="none"), rtol=1e-6, atol=1e-6)

    def test_exact_where_p_ybar_rounds_to_one(self):
        # float32 p_ybar = 1 - 2e^-30 rounds to 1 (log p = 0, log(1 - p) = -inf); exact: 30 - ln 2
        z = torch.tensor([[30.0, 0.0, 0.0], [0.0, 30.0, 0.0], [40.0, 0.0, 0.0]], requires_grad=True)
        y = torch.tensor([1, 0, 2])
        ybar = torch.tensor([0, 1, 0])
        g = next(gen(s) for s in range(100) if torch.equal(complementary(y, 3, gen(s)), ybar))
        out = NF.negative_learning(z, y, generator=g, reduction="none")
        # -log(1 - p_ybar) = log(e^d + 2) - log 2 for a gap d: d - ln 2 + log1p(2 e^-d)
        expected = [d - math.log(2) + math.log1p(2 * math.exp(-d)) for d in (30.0, 30.0, 40.0)]
        torch.testing.assert_close(out, torch.tensor(expected), rtol=1e-7, atol=0)
        out.sum().backward()
        assert torch.isfinite(z.grad).all()

    def test_a_generator_cannot_enter_a_full_graph(self):
        z, y = batch(n=4, c=3)
        compiled = torch.compile(NF.negative_learning, fullgraph=True, backend="aot_eager")
        with pytest.raises(torch._dynamo.exc.Unsupported):
            compiled(z, y, generator=gen(0))


# --------------------------------------------------------------------------------------------
# inductor, once for every loss
# --------------------------------------------------------------------------------------------
ALL_LOSSES = [(NF.cross_entropy, {"label_smoothing": 0.1}), (NF.mae, {}), (NF.gce, {"q": 0.7, "k": 0.2}),
              (NF.rce, {}), (NF.sce, {}), (NF.nce, {}), (NF.nce_rce, {}), (NF.focal, {"gamma": 0.5}),
              (NF.bootstrap, {}), (NF.bootstrap, {"hard": True}), (NF.peer, {}),
              (NF.peer, {"base": "mae"}), (NF.negative_learning, {})]


def test_every_loss_compiles_with_inductor_in_one_graph(monkeypatch):
    # the default backend generates and builds C++ (seconds): one graph holds all the losses
    monkeypatch.setattr(torch._inductor.config, "fallback_random", True)  # the eager random stream

    def all_losses(x, t):
        return torch.stack([fn(x, t, reduction="none", **params) for fn, params in ALL_LOSSES])

    z, y = batch(n=16, c=5, dtype=torch.float32)
    assert_compiled_equals_eager(all_losses, z, y, seed=4, rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------------------------
# argument checks, docstring examples
# --------------------------------------------------------------------------------------------
Z, Y = batch(n=4, c=3, dtype=torch.float32)


@pytest.mark.parametrize("call_,exc,match", [
    (lambda: NF.gce(Z, Y, q=0.0), ValueError, r"q must be in \[1e-19, 1\], got 0$"),
    (lambda: NF.gce(Z, Y, q=1.5), ValueError, r"q must be in \[1e-19, 1\], got 1.5$"),
    (lambda: NF.gce(Z, Y, q="0.7"), TypeError, "q must be a real number, got str"),
    (lambda: NF.gce(Z, Y, q=0.7, k=1.0), ValueError, r"k must be in \(0, 1\)"),
    (lambda: NF.gce(Z, Y, q=0.7, k=0.0), ValueError, r"k must be in \(0, 1\)"),
    (lambda: NF.rce(Z, Y, A=0.0), ValueError, r"A must be in \(-inf, 0\), got 0"),
    (lambda: NF.sce(Z, Y, A=1.0), ValueError, "A must be in"),
    (lambda: NF.sce(Z, Y, alpha=-1.0), ValueError, r"alpha must be in \[0, inf\)"),
    (lambda: NF.nce_rce(Z, Y, beta=-1.0), ValueError, "beta must be in"),
    (lambda: NF.bootstrap(Z, Y, beta=1.1), ValueError, r"beta must be in \[0, 1\]"),
    (lambda: NF.bootstrap(Z, Y, hard="yes"), TypeError, "hard must be a bool"),
    (lambda: NF.focal(Z, Y, gamma=float("nan")), ValueError, "gamma must be in"),
    (lambda: NF.cross_entropy(Z, Y, label_smoothing=1.5), ValueError, "label_smoothing"),
    (lambda: NF.peer(Z, Y, alpha=-0.5), ValueError, "alpha"),
    (lambda: NF.peer(Z, Y, base="focal"), ValueError, r"base must be one of \('ce', 'mae'\)"),
    (lambda: NF.peer(Z, Y, generator=0), TypeError, "generator must be a torch.Generator or None"),
    (lambda: NF.negative_learning(Z, Y, generator="seed"), TypeError, "generator"),
    (lambda: NF.mae(Z, Y.float()), TypeError, "target must be an integer tensor"),
    (lambda: NF.mae(Z, Y.bool()), TypeError, "target"),
    (lambda: NF.mae(Z[0], Y), ValueError, r"logits must have shape \(N, C\) with C >= 2, got \(3,\)"),
    (lambda: NF.mae(Z[:, :1], Y), ValueError, "logits"),
    (lambda: NF.mae(Z, Y[:3]), ValueError, r"target must have shape \(N,\) = \(4,\)"),
    (lambda: NF.mae(Z.long(), Y), TypeError, "logits must be a floating tensor"),
    (lambda: NF.mae(Z.numpy(), Y), TypeError, "logits must be a torch.Tensor"),
    (lambda: NF.mae(Z, Y.tolist()), TypeError, "target must be a torch.Tensor"),
    (lambda: NF.mae(Z, Y, reduction="avg"), ValueError, "reduction must be one of"),
])
def test_errors_name_the_argument(call_, exc, match):
    with pytest.raises(exc, match=match):
        call_()


@pytest.mark.parametrize("build,exc,match", [
    (lambda: L.GCELoss(q=1.5), ValueError, "q"),
    (lambda: L.GCELoss(k=1.0), ValueError, "k"),
    (lambda: L.SCELoss(A=1.0), ValueError, "A"),
    (lambda: L.BootstrapLoss(hard=1), TypeError, "hard"),
    (lambda: L.PeerLoss(base="focal"), ValueError, "base"),
    (lambda: L.PeerLoss(generator=3), TypeError, "generator"),
    (lambda: L.NegativeLearningLoss(generator="seed"), TypeError, "generator"),
    (lambda: L.MAELoss(reduction="avg"), ValueError, "reduction"),
])
def test_modules_check_every_argument_at_construction(build, exc, match):
    with pytest.raises(exc, match=match):
        build()


def test_module_repr_and_attributes():
    loss = L.GCELoss(q=0.3, reduction="sum")
    assert (loss.q, loss.k, loss.reduction) == (0.3, None, "sum")
    assert "q=0.3, k=None, reduction='sum'" in repr(loss)
    loss.q = 0.5  # an attribute is the hyperparameter forward uses
    z, y = batch()
    assert torch.equal(loss(z, y), NF.gce(z, y, q=0.5, reduction="sum"))
    g = gen(0)
    state = g.get_state()
    L.PeerLoss(generator=g)
    assert torch.equal(g.get_state(), state)  # building the module does not advance the generator


def test_check_param():
    assert _checks.check_param("x", 1, low=0.0) == 1.0 and isinstance(_checks.check_param("x", 1, low=0.0), float)
    assert _checks.check_param("x", torch.tensor(0.5), low=0.0, high=1.0) == 0.5
    assert _checks.check_param("x", np.float32(0.25), low=0.0) == 0.25
    with pytest.raises(ValueError, match=r"x must be in \(0, 1\), got 1$"):
        _checks.check_param("x", 1.0, low=0.0, high=1.0, low_open=True, high_open=True)
    with pytest.raises(TypeError, match="x must be a real number, got bool"):
        _checks.check_param("x", True)
    with pytest.raises(ValueError, match=r"x must be in \(-inf, inf\), got inf"):
        _checks.check_param("x", float("inf"))


def test_check_int_labels_generator():
    assert _checks.check_int("n", np.int64(3), 1) == 3
    with pytest.raises(TypeError, match="n must be an int, got float"):
        _checks.check_int("n", 3.0, 1)
    with pytest.raises(ValueError, match="n must be an int >= 1, got 0"):
        _checks.check_int("n", 0, 1)
    assert _checks.check_labels("labels", torch.tensor([0, 2], dtype=torch.int32), 3).dtype == torch.long
    with pytest.raises(ValueError, match=r"labels must be in \[0, 2\] \(C=3\), found 3"):
        _checks.check_labels("labels", torch.tensor([0, 3]), 3)
    with pytest.raises(ValueError, match=r"labels must have shape \(N,\)"):
        _checks.check_labels("labels", torch.zeros(2, 2, dtype=torch.long))
    assert _checks.check_generator(None) is None
    with pytest.raises(TypeError, match="generator"):
        _checks.check_generator(0)


@pytest.mark.parametrize("module", [NF, L, noisyloss])
def test_docstring_examples(module):
    result = doctest.testmod(module, extraglobs={"torch": torch})
    assert result.failed == 0 and (module is L or result.attempted > 0)
