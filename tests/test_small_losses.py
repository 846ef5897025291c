"""nls, poly1 and taylor: the suite every loss runs (``test_functional.LossTests``: the float64 paper
formula, gradcheck, Module == function, dtypes, extremes, torch.compile), each loss's limits and
special cases, their values at ±3e38 and at -inf logits (tests/test_extremes.py checks them finite
for every registered loss), and their argument checks."""
import math

import pytest
import references as R
import torch
from test_functional import assert_compiled_equals_eager, batch, LossTests

import noisyloss
from noisyloss import functional as NF
from noisyloss import losses as L

INF = float("inf")
#: logits at float32's edge and with -inf on classes other than the target (target: class 0)
EDGE = [[3e38, -3e38, 0.0], [-3e38, 3e38, 3e38], [0.0, -INF, -INF], [5.0, -INF, 1.0], [-3e38, -3e38, -3e38]]


def at_the_edge(fn, dtype, **params):
    """Per-sample values and the gradient of their sum at ``EDGE`` (target 0), in ``dtype``."""
    z = torch.tensor(EDGE, dtype=dtype, requires_grad=True)
    out = fn(z, torch.zeros(len(EDGE), dtype=torch.long), reduction="none", **params)
    out.sum().backward()
    return out.detach(), z.grad.float()


def at_the_bound(fn, **params):
    """The same per-sample values computed in float64 from the logits clamp_logits makes of ``EDGE``:
    what the losses promise at the edge (``noisyloss.functional``, "Exact at the extremes")."""
    z = NF.clamp_logits(torch.tensor(EDGE, dtype=torch.float32)).double()
    return fn(z, torch.zeros(len(EDGE), dtype=torch.long), reduction="none", **params).float()


class TestNLS(LossTests):
    fn, module = staticmethod(NF.nls), L.NLSLoss
    cases = [{"smooth_rate": -0.2}, {"smooth_rate": -2.0}, {"smooth_rate": 0.4}]

    def reference(self, z, y, smooth_rate):
        return R.nls(z, y, smooth_rate)

    def test_nonnegative_rates_are_label_smoothing_and_zero_is_ce(self):
        z, y = batch()
        for r in (0.0, 0.1, 0.5, 1.0):
            torch.testing.assert_close(NF.nls(z, y, smooth_rate=r), NF.cross_entropy(z, y, label_smoothing=r),
                                       rtol=1e-14, atol=1e-14)

    def test_the_authors_loss_gls(self):
        # UCSC-REAL/negative-label-smoothing loss.py, loss_gls with wa=0, wb=1 (the defaults), in our
        # words: (1 - r) * nll + r * mean over classes of -log_softmax, then summed / batch size
        z, y = batch(n=32, c=10)
        for r in (-0.2, -1.0, -8.0, 0.6):
            log_p = torch.log_softmax(z, dim=-1)
            nll = -log_p.gather(-1, y.unsqueeze(1)).squeeze(1)
            gls = ((1 - r) * nll + r * -log_p.mean(dim=-1)).sum() / len(y)
            torch.testing.assert_close(NF.nls(z, y, smooth_rate=r), gls, rtol=1e-14, atol=1e-14)

    def test_negative_rates_reward_small_probabilities_of_the_other_classes(self):
        # the same p_y, other classes spread evenly or with one near 0: NLS (r < 0) prefers the
        # uneven one, CE is indifferent, positive smoothing prefers the even one
        even = torch.tensor([[0.6, 0.2, 0.2]], dtype=torch.float64).log()
        uneven = torch.tensor([[0.6, 0.4 - 1e-6, 1e-6]], dtype=torch.float64).log()
        y = torch.tensor([0])
        assert NF.nls(uneven, y, smooth_rate=-0.4) < NF.nls(even, y, smooth_rate=-0.4)
        assert NF.nls(uneven, y, smooth_rate=0.4) > NF.nls(even, y, smooth_rate=0.4)
        torch.testing.assert_close(NF.nls(uneven, y, smooth_rate=0.0), NF.nls(even, y, smooth_rate=0.0))

    @pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
    def test_at_the_edge_of_the_float_range(self, dtype):
        # finite values and gradients; a -inf on another class (exact value -inf) gives the value at
        # clamp_logits' bound, about (r / C) 3.7e19, negative
        out, grad = at_the_edge(NF.nls, dtype, smooth_rate=-0.2)
        assert torch.isfinite(out).all() and torch.isfinite(grad).all()
        torch.testing.assert_close(out, at_the_bound(NF.nls, smooth_rate=-0.2), rtol=1e-6, atol=0)
        assert out[2] < -1e18 and out[3] < -1e18 and out[4] == pytest.approx(math.log(3), rel=1e-6)


class TestPoly1(LossTests):
    fn, module = staticmethod(NF.poly1), L.Poly1Loss
    cases = [{"epsilon": 1.0}, {"epsilon": -1.0}, {"epsilon": 2.0}]

    def reference(self, z, y, epsilon):
        return R.poly1(z, y, epsilon)

    def test_epsilon_zero_is_ce_and_minus_one_drops_the_first_term(self):
        z, y = batch()
        torch.testing.assert_close(NF.poly1(z, y, epsilon=0.0), NF.cross_entropy(z, y), rtol=1e-14, atol=1e-14)
        z, y = batch(scale=0.5)  # p_y not tiny: the series converges within 2000 terms
        u = 1 - R.p_at(z, y)  # CE = sum_j u^j / j; poly-1 at epsilon = -1 is that series from j = 2
        series = sum(u**j / j for j in range(2, 2000))
        torch.testing.assert_close(NF.poly1(z, y, epsilon=-1.0, reduction="none"), series, rtol=1e-9, atol=1e-12)

    def test_decreasing_in_p_y_exactly_for_epsilon_at_least_minus_one(self):
        p_y = torch.linspace(0.01, 1.0, 200, dtype=torch.float64)
        z = torch.stack([p_y.log(), torch.log1p(-p_y + 1e-300)], dim=1)  # two classes
        y = torch.zeros(200, dtype=torch.long)
        for eps in (-1.0, 0.0, 3.0):
            assert (NF.poly1(z, y, epsilon=eps, reduction="none").diff() < 0).all()
        # below -1 the loss would rise towards p_y = 1, which is why epsilon < -1 is refused
        assert (R.poly1(z, y, -1.5).diff()[-20:] > 0).all()

    @pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
    def test_at_the_edge_of_the_float_range(self, dtype):
        out, grad = at_the_edge(NF.poly1, dtype, epsilon=2.0)
        assert torch.isfinite(out).all() and torch.isfinite(grad).all()
        torch.testing.assert_close(out, at_the_bound(NF.poly1, epsilon=2.0), rtol=1e-6, atol=1e-6)


class TestTaylor(LossTests):
    fn, module = staticmethod(NF.taylor), L.TaylorLoss
    cases = [{"order": 2}, {"order": 1}, {"order": 6}]

    def reference(self, z, y, order):
        return R.taylor(z, y, order)

    def test_order_one_is_mae_and_high_orders_tend_to_ce(self):
        z, y = batch(scale=1.0)
        torch.testing.assert_close(NF.taylor(z, y, order=1), NF.mae(z, y), rtol=1e-14, atol=1e-15)
        gaps = [float(NF.cross_entropy(z, y) - NF.taylor(z, y, order=t)) for t in (2, 8, 32, 128, 2048)]
        assert gaps == sorted(gaps, reverse=True) and gaps[-1] > 0 and gaps[-1] < 1e-3 * gaps[0]

    def test_bounded_by_the_harmonic_number(self):
        z = torch.tensor([[-INF, 0.0, 0.0], [-1e4, 1e4, 0.0]])
        for t in (1, 2, 6):
            h_t = sum(1 / k for k in range(1, t + 1))
            torch.testing.assert_close(NF.taylor(z, torch.tensor([0, 0]), order=t, reduction="none"),
                                       torch.full((2,), h_t))

    @pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
    def test_at_the_edge_of_the_float_range(self, dtype):
        out, grad = at_the_edge(NF.taylor, dtype, order=6)
        assert torch.isfinite(out).all() and torch.isfinite(grad).all()
        torch.testing.assert_close(out, at_the_bound(NF.taylor, order=6))
        assert out.max() <= sum(1 / k for k in range(1, 7))


def test_all_three_compile_with_inductor_in_one_graph():
    def all_three(x, t):
        return torch.stack([NF.nls(x, t, reduction="none"), NF.poly1(x, t, epsilon=2.0, reduction="none"),
                            NF.taylor(x, t, order=3, reduction="none")])

    z, y = batch(n=16, c=5, dtype=torch.float32)
    assert_compiled_equals_eager(all_three, z, y, seed=0, rtol=1e-5, atol=1e-6)


Z, Y = batch(n=4, c=3, dtype=torch.float32)


@pytest.mark.parametrize("call_,exc,match", [
    (lambda: NF.nls(Z, Y, smooth_rate=1.5), ValueError, r"smooth_rate must be in \(-inf, 1\], got 1.5$"),
    (lambda: NF.nls(Z, Y, smooth_rate="-0.2"), TypeError, "smooth_rate must be a real number, got str"),
    (lambda: NF.nls(Z, Y, smooth_rate=-INF), ValueError, "smooth_rate must be in"),
    (lambda: NF.poly1(Z, Y, epsilon=-1.5), ValueError, r"epsilon must be in \[-1, inf\), got -1.5$"),
    (lambda: NF.poly1(Z, Y, epsilon=None), TypeError, "epsilon must be a real number, got NoneType"),
    (lambda: NF.taylor(Z, Y, order=0), ValueError, "order must be an int >= 1, got 0"),
    (lambda: NF.taylor(Z, Y, order=2.0), TypeError, "order must be an int, got float"),
    (lambda: NF.taylor(Z, Y, order=True), TypeError, "order must be an int, got bool"),
    (lambda: NF.taylor(Z, Y, reduction="avg"), ValueError, "reduction must be one of"),
    (lambda: NF.poly1(Z, Y.float()), TypeError, "target must be an integer tensor"),
])
def test_errors_name_the_argument(call_, exc, match):
    with pytest.raises(exc, match=match):
        call_()


@pytest.mark.parametrize("build,exc,match", [
    (lambda: L.NLSLoss(smooth_rate=2.0), ValueError, "smooth_rate"),
    (lambda: L.Poly1Loss(epsilon=-2.0), ValueError, "epsilon"),
    (lambda: L.TaylorLoss(order=0), ValueError, "order"),
    (lambda: L.TaylorLoss(order=1.5), TypeError, "order"),
])
def test_modules_check_every_argument_at_construction(build, exc, match):
    with pytest.raises(exc, match=match):
        build()


@pytest.mark.parametrize("spec,cls,params", [
    ("nls", L.NLSLoss, {"smooth_rate": -0.2}),
    ("nls:smooth_rate=-0.6", L.NLSLoss, {"smooth_rate": -0.6}),
    ("poly1:epsilon=2", L.Poly1Loss, {"epsilon": 2.0}),
    ("taylor:order=6", L.TaylorLoss, {"order": 6}),
])
def test_specs_build_the_modules(spec, cls, params):
    loss = noisyloss.make_loss(spec)
    assert type(loss) is cls and all(getattr(loss, k) == v for k, v in params.items())
    z, y = batch()
    name = spec.partition(":")[0]
    assert torch.equal(loss(z, y), getattr(NF, name)(z, y, **params))
    assert name in noisyloss.available_losses()
