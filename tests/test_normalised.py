"""Normalised losses (Ma et al., 2020): NFL, NGCE, NMAE, NRCE and the active-passive combinator.

Each loss class runs the tests every loss runs (``test_functional.LossTests``: the float64 paper
formula of ``references.py``, gradcheck, Module == function, dtypes, torch.compile); then its
limits, the extremes, the argument checks, and the authors' computation with where ours differs."""
import functools
import inspect
import math

import pytest
import references as R
import torch
from test_functional import LossTests, batch

import noisyloss
from noisyloss import functional as NF
from noisyloss import losses as L
from noisyloss.registry import LOSSES

INF = float("inf")
#: logits at the ends of float32 (the gap overflows), and -inf on classes other than the target
EXTREMES = [
    (torch.tensor([[3e38, -3e38, 0.0], [-3e38, 3e38, 1.0], [3e38, 3e38, -3e38]]), torch.tensor([1, 0, 2])),
    (torch.tensor([[3e38, -3e38, 0.0], [-3e38, 3e38, 1.0], [3e38, 3e38, -3e38]]), torch.tensor([0, 1, 0])),
    (torch.tensor([[0.0, -INF, -INF], [5.0, -INF, 1.0], [-3.0, 2.0, -INF]]), torch.tensor([0, 0, 1])),
]


def assert_finite_at_extremes(f) -> None:
    """``f(logits, target, reduction="none")`` has finite values and gradients at :data:`EXTREMES`,
    in float32 and bfloat16."""
    for z0, y in EXTREMES:
        for dtype in (torch.float32, torch.bfloat16):
            z = z0.clone().to(dtype).requires_grad_(True)
            out = f(z, y, reduction="none")
            out.sum().backward()
            assert torch.isfinite(out).all(), (f, dtype, z0, y, out)
            assert torch.isfinite(z.grad.float()).all(), (f, dtype, z0, y, z.grad)


def class_sums(f, z):
    """sum_k f(z, k) per row."""
    return sum(f(z, torch.full((len(z),), k), reduction="none") for k in range(z.shape[1]))


class TestNFL(LossTests):
    fn, module = staticmethod(NF.nfl), L.NFLLoss
    cases = [{"gamma": 0.5}, {"gamma": 0.0}, {"gamma": 2.0}]

    def reference(self, z, y, gamma):
        return R.nfl(z, y, gamma)

    def test_gamma_zero_is_nce_and_the_labels_sum_to_one(self):
        z, y = batch(c=5)
        torch.testing.assert_close(NF.nfl(z, y, gamma=0.0), NF.nce(z, y), rtol=1e-14, atol=1e-15)
        for gamma in (0.5, 2.0):
            torch.testing.assert_close(class_sums(functools.partial(NF.nfl, gamma=gamma), z),
                                       torch.ones(64, dtype=torch.float64))

    def test_authors_code_gives_the_values_but_not_the_gradient(self):
        """APL, ALFs and ANL detach the focal weights (1 - p_k)^gamma: the same values, another
        gradient. Ours is the derivative of the formula (the float64 reference's, through autograd)."""
        z, y = batch(c=5)
        a, b = z.clone().requires_grad_(True), z.clone().requires_grad_(True)
        ours, theirs = NF.nfl(a, y, gamma=0.5, reduction="sum"), R.code_nfl(b, y, 0.5).sum()
        torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-12)
        ours.backward()
        theirs.backward()
        assert (a.grad - b.grad).abs().max() > 1e-3

    def test_a_class_of_probability_zero_gives_the_limit_zero(self):
        # p_2 = 0: -log p_2 = inf, so FL_y / sum_k FL_k -> 0; the logit is clamped (clamp_logits) at
        # -1.8e19, where the value is below 1e-18 and the gradient finite
        z = torch.tensor([[1.0, 0.0, -INF]], requires_grad=True)
        out = NF.nfl(z, torch.tensor([0]), gamma=2.0)
        out.backward()
        assert 0 <= float(out.detach()) < 1e-18 and torch.isfinite(z.grad).all()


class TestNGCE(LossTests):
    fn, module = staticmethod(NF.ngce), L.NGCELoss
    cases = [{"q": 0.7}, {"q": 0.1}, {"q": 1.0}]

    def reference(self, z, y, q):
        return R.ngce(z, y, q)

    def test_q_one_is_nmae_small_q_tends_to_nce_and_the_labels_sum_to_one(self):
        z, y = batch(c=5)
        torch.testing.assert_close(NF.ngce(z, y, q=1.0), NF.nmae(z, y), rtol=1e-14, atol=1e-15)
        torch.testing.assert_close(NF.ngce(z, y, q=1e-8), NF.nce(z, y), rtol=1e-6, atol=1e-7)
        torch.testing.assert_close(class_sums(functools.partial(NF.ngce, q=0.7), z),
                                   torch.ones(64, dtype=torch.float64))

    def test_authors_code_clamps_p_at_1e_minus_7(self):
        """APL clamps p at 1e-7 before p^q: equal values while every p_k > 1e-7; where one is below,
        its code counts p_k^q at (1e-7)^q, and ours at the exact p_k."""
        z, y = batch(c=5)
        torch.testing.assert_close(NF.ngce(z, y, q=0.7, reduction="none"), R.apl_code_ngce(z, y, 0.7))
        z = torch.tensor([[0.0, 0.0, -40.0]], dtype=torch.float64)  # p_2 = 2e-18 / 2
        y = torch.tensor([0])
        ours, theirs = NF.ngce(z, y, q=0.7), R.apl_code_ngce(z, y, 0.7)
        torch.testing.assert_close(ours, R.ngce(z, y, 0.7)[0])
        assert abs(float(ours - theirs)) > 1e-6


class TestNMAE(LossTests):
    fn, module = staticmethod(NF.nmae), L.NMAELoss

    def reference(self, z, y):
        return R.nmae(z, y)

    def test_authors_codes_differ_by_the_scale_of_their_mae(self):
        """Normalising removes the base loss's scale: (1 - p_y) and the L1 distance 2 (1 - p_y) give the
        same NMAE. APL's code divides 1 - p_y by 2 (C - 1): half of it; ALFs' by C - 1: this."""
        z, y = batch(c=7)
        ours = NF.nmae(z, y, reduction="none")
        torch.testing.assert_close(ours, R.normalised(R.mae, z, y))  # from 1 - p_y
        torch.testing.assert_close(ours, R.alfs_code_nmae(z, y))
        torch.testing.assert_close(ours / 2, R.apl_code_nmae(z, y))


class TestNRCE(LossTests):
    fn, module = staticmethod(NF.nrce), L.NRCELoss

    def reference(self, z, y):
        return R.nrce(z, y, -4.0)

    def test_A_cancels_so_nrce_is_nmae(self):
        z, y = batch()
        for A in (-4.0, math.log(1e-4), -1.0):
            torch.testing.assert_close(NF.nrce(z, y, reduction="none"), R.nrce(z, y, A), rtol=1e-12, atol=1e-12)
        assert torch.equal(NF.nrce(z, y), NF.nmae(z, y))

    def test_authors_code_multiplies_by_c_minus_one_over_four(self):
        """APL's NormalizedReverseCrossEntropy multiplies RCE (A = ln 1e-4, p clamped at 1e-7) by
        ``1 / 4 * (num_classes - 1)`` = (C - 1)/4, where the normaliser 1/(-A (C - 1)) was meant: at
        C = 100 its "NRCE" is 24.75 RCE, ours RCE / 921. Ours is the normalised loss by definition."""
        for c in (10, 100):
            z, y = batch(c=c, scale=1.0)  # every p_k > 1e-7: the clamp of p does nothing
            theirs = R.apl_code_nrce(z, y)
            A = math.log(1e-4)
            torch.testing.assert_close(theirs, (c - 1) / 4 * NF.rce(z, y, A=A, reduction="none"))
            torch.testing.assert_close(theirs, (c - 1) ** 2 * -A / 4 * NF.nrce(z, y, reduction="none"))


NFL_RCE = LOSSES["nfl_rce"].cls


class TestNFLRCE(LossTests):
    fn, module = staticmethod(NFL_RCE.fn), NFL_RCE
    cases = [{"alpha": 10.0, "beta": 0.1, "gamma": 0.5, "A": math.log(1e-4)}, {"alpha": 1.0, "beta": 1.0, "gamma": 0.0}]

    def reference(self, z, y, alpha, beta, gamma, A=-4.0):
        return alpha * R.nfl(z, y, gamma) + beta * R.rce(z, y, A)


class TestAPL:
    """The combinator, its Modules, its specs and the published pairs."""

    def test_weights_the_two_losses(self):
        z, y = batch()
        active, passive = functools.partial(NF.nfl, gamma=0.5), functools.partial(NF.rce, A=-4.0)
        out = NF.apl(z, y, active=active, passive=passive, alpha=10.0, beta=0.1, reduction="none")
        torch.testing.assert_close(out, 10 * R.nfl(z, y, 0.5) + 0.1 * R.rce(z, y, -4.0))
        assert torch.equal(NF.apl(z, y, active=NF.nce, passive=functools.partial(NF.rce, A=-4.0)),
                           NF.nce_rce(z, y, A=-4.0))

    def test_compiles_in_one_graph(self):
        z, y = batch(n=8, c=4)
        f = functools.partial(NF.apl, active=functools.partial(NF.nfl, gamma=0.5), passive=NF.mae, alpha=2.0)
        torch.testing.assert_close(torch.compile(f, fullgraph=True, backend="aot_eager")(z, y), f(z, y))


    def test_a_spec_names_the_sub_losses_with_their_parameters(self):
        z, y = batch()
        spec = noisyloss.make_loss("apl:active=nfl:gamma=0.5,passive=rce:A=code,alpha=10,beta=0.1", reduction="none")
        expected = 10 * R.nfl(z, y, 0.5) + 0.1 * R.rce(z, y, math.log(1e-4))
        torch.testing.assert_close(spec(z, y), expected)
        torch.testing.assert_close(noisyloss.make_loss("nfl_rce_cifar100", reduction="none")(z, y), expected)
        two = noisyloss.make_loss("apl:active=ngce:q=0.5;reduction=sum,passive=mae")  # ";" separates
        assert (two.active.q, two.active.reduction) == (0.5, "sum")
        modules = noisyloss.make_loss("apl", active=L.NGCELoss(q=0.3), passive=L.AELLoss(a=2.0), beta=2.0)
        torch.testing.assert_close(modules(z, y), (R.ngce(z, y, 0.3) + 2 * R.ael(z, y, 2.0)).mean())

    @pytest.mark.parametrize("name,refs", [
        ("nce_mae", lambda z, y: (R.nce(z, y), R.mae(z, y))),
        ("nfl_mae", lambda z, y: (R.nfl(z, y, 0.5), R.mae(z, y))),
        ("nfl_rce", lambda z, y: (R.nfl(z, y, 0.5), R.rce(z, y, -4.0))),
        ("ngce_mae", lambda z, y: (R.ngce(z, y, 0.7), R.mae(z, y))),
        ("ngce_rce", lambda z, y: (R.ngce(z, y, 0.7), R.rce(z, y, -4.0))),
        ("nce_agce", lambda z, y: (R.nce(z, y), R.agce(z, y, 1.0, 2.0))),
        ("nce_aul", lambda z, y: (R.nce(z, y), R.aul(z, y, 1.5, 0.9))),
        ("nce_ael", lambda z, y: (R.nce(z, y), R.ael(z, y, 3.0))),
        ("nfl_agce", lambda z, y: (R.nfl(z, y, 0.5), R.agce(z, y, 1.0, 2.0))),
        ("nfl_aul", lambda z, y: (R.nfl(z, y, 0.5), R.aul(z, y, 1.5, 0.9))),
        ("nfl_ael", lambda z, y: (R.nfl(z, y, 0.5), R.ael(z, y, 3.0))),
        ("anl_ce", lambda z, y: (R.nce(z, y), R.nnce(z, y, 1e-7))),
        ("anl_fl", lambda z, y: (R.nfl(z, y, 0.5), R.nnfl(z, y, 0.5, 1e-7))),
    ])
    def test_every_published_pair_is_its_weighted_sum(self, name, refs):
        z, y = batch()
        active, passive = refs(z, y)
        loss = noisyloss.make_loss(f"{name}:alpha=2,beta=0.5", reduction="none")
        torch.testing.assert_close(loss(z, y), 2 * active + 0.5 * passive, rtol=1e-10, atol=1e-12)
        assert name in noisyloss.available_losses()

    def test_pairs_take_both_losses_parameters_once_and_refuse_others(self):
        assert list(inspect.signature(L.active_passive_loss(L.NFLLoss, L.NNFLLoss)).parameters) == [
            "alpha", "beta", "gamma", "min_prob", "reduction"]
        with pytest.raises(ValueError, match=r"does not take \['k'\]"):
            noisyloss.make_loss("nce_agce:k=0.3")
        with pytest.raises(ValueError, match="a must be in"):
            noisyloss.make_loss("nce_agce:a=0")
        with pytest.raises(TypeError, match="passive must be a FunctionalLoss Module"):
            L.ActivePassiveLoss(L.NCELoss(), L.OnlineLabelSmoothing(3))
        with pytest.raises(TypeError, match="active must be a FunctionalLoss subclass"):
            L.active_passive_loss(torch.nn.Module, L.MAELoss)
        assert noisyloss.canonical_spec("nce_agce_cifar100") == "nce_agce:alpha=10,beta=0.1,a=1.8,q=3"

    def test_a_pair_module_compiles_in_one_graph(self):
        z, y = batch(n=8, c=4)
        loss = noisyloss.make_loss("nce_agce_cifar10")
        torch.testing.assert_close(torch.compile(loss, fullgraph=True, backend="aot_eager")(z, y), loss(z, y))


def test_presets_of_these_families_name_their_config_file_and_the_gradient_clipping():
    ours = {k: v for k, v in noisyloss.presets().items()
            if k.split("_cifar")[0] in ("nce_mae", "nfl_mae", "nfl_rce", "ngce_mae", "ngce_rce", "ngce", "nfl",
                                        "agce", "aul", "ael", "nce_agce", "nce_aul", "nce_ael", "anl_ce", "anl_fl")}
    assert len(ours) == 28
    for name, preset in ours.items():
        noisyloss.make_loss(name)
        assert any(f in preset.source for f in (".yaml", "config.py", ".json")), name
        assert "clipping at 5" in preset.note, name
        assert ("l1_penalty" in preset.note) == name.startswith("anl"), name


@pytest.mark.parametrize("f", [functools.partial(NF.nfl, gamma=0.5), functools.partial(NF.nfl, gamma=0.0),
                               functools.partial(NF.nfl, gamma=2.0), functools.partial(NF.ngce, q=0.7),
                               functools.partial(NF.ngce, q=NF.GCE_MIN_Q), NF.nmae, NF.nrce,
                               functools.partial(NF.apl, active=functools.partial(NF.nfl, gamma=0.5),
                                                 passive=NF.mae)])
def test_finite_values_and_gradients_at_extreme_logits(f):
    assert_finite_at_extremes(f)


Z, Y = batch(n=4, c=3, dtype=torch.float32)


@pytest.mark.parametrize("call_,exc,match", [
    (lambda: NF.nfl(Z, Y, gamma=-1.0), ValueError, r"gamma must be in \[0, inf\), got -1$"),
    (lambda: NF.nfl(Z, Y, gamma="2"), TypeError, "gamma must be a real number, got str"),
    (lambda: NF.ngce(Z, Y, q=0.0), ValueError, "q must be in"),
    (lambda: NF.ngce(Z, Y, q=1.5), ValueError, "q must be in"),
    (lambda: NF.ngce(Z, Y, q=None), TypeError, "q must be a real number"),
    (lambda: NF.apl(Z, Y, active=NF.nce, passive=NF.mae, alpha=-1.0), ValueError, r"alpha must be in \[0, inf\)"),
    (lambda: NF.apl(Z, Y, active=NF.nce, passive=NF.mae, beta=float("nan")), ValueError, "beta must be in"),
    (lambda: NF.nmae(Z, Y, reduction="avg"), ValueError, "reduction must be one of"),
])
def test_errors_name_the_argument(call_, exc, match):
    with pytest.raises(exc, match=match):
        call_()
