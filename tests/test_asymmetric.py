"""Asymmetric losses (Zhou et al., 2021): AGCE, AUL, AEL, and the asymmetry ratio of
``analysis.asymmetry_check``, checked against the risk minimiser it predicts."""
import functools
import math

import numpy as np
import pytest
import references as R
import torch
from test_functional import LossTests, batch
from test_normalised import assert_finite_at_extremes

from noisyloss import analysis as A
from noisyloss import functional as NF
from noisyloss import losses as L
from noisyloss.registry import LOSSES


class TestAGCE(LossTests):
    fn, module = staticmethod(NF.agce), L.AGCELoss
    cases = [{"a": 1.0, "q": 2.0}, {"a": 0.6, "q": 0.6}, {"a": 1.8, "q": 3.0}]

    def reference(self, z, y, a, q):
        return R.agce(z, y, a, q)


class TestAUL(LossTests):
    fn, module = staticmethod(NF.aul), L.AULLoss
    cases = [{"a": 1.5, "q": 0.9}, {"a": 5.5, "q": 3.0}, {"a": 6.3, "q": 1.5}]

    def reference(self, z, y, a, q):
        return R.aul(z, y, a, q)

    def test_q_one_is_mae(self):
        z, y = batch()
        torch.testing.assert_close(NF.aul(z, y, a=3.0, q=1.0), NF.mae(z, y), rtol=1e-14, atol=1e-15)


class TestAEL(LossTests):
    fn, module = staticmethod(NF.ael), L.AELLoss
    cases = [{"a": 3.0}, {"a": 2.5}, {"a": 0.5}]

    def reference(self, z, y, a):
        return R.ael(z, y, a)


NCE_AGCE = LOSSES["nce_agce"].cls


class TestNCEAGCE(LossTests):
    fn, module = staticmethod(NCE_AGCE.fn), NCE_AGCE
    cases = [{"alpha": 1.0, "beta": 4.0, "a": 6.0, "q": 1.5}, {"alpha": 10.0, "beta": 0.1, "a": 1.8, "q": 3.0}]

    def reference(self, z, y, alpha, beta, a, q):
        return alpha * R.nce(z, y) + beta * R.agce(z, y, a, q)


def test_authors_code_computes_the_formulas_from_the_softmax():
    """ALFs' (and ANL's) AGCELoss, AUELoss and AExpLoss apply the formulas to softmax(logits) without
    clamps: the float64 references are their computation. Ours differ only in how they round."""
    z, y = batch(n=256, c=10, scale=5.0, dtype=torch.float32)
    p = torch.softmax(z, 1).gather(1, y[:, None]).squeeze(1)
    a, q = 1.8, 3.0
    torch.testing.assert_close(NF.agce(z, y, a=a, q=q, reduction="none"), ((a + 1) ** q - (a + p) ** q) / q)
    a, q = 6.0, 3.0
    torch.testing.assert_close(NF.aul(z, y, a=a, q=q, reduction="none"), ((a - p) ** q - (a - 1) ** q) / q)
    torch.testing.assert_close(NF.ael(z, y, a=1.5, reduction="none"), torch.exp(-p / 1.5))


@pytest.mark.parametrize("f", [functools.partial(NF.agce, a=0.6, q=0.6), functools.partial(NF.agce, a=1e-6, q=3.0),
                               functools.partial(NF.agce, a=1e-6, q=1e-30), functools.partial(NF.aul, a=5.5, q=3.0),
                               functools.partial(NF.aul, a=1 + 1e-6, q=6.0), functools.partial(NF.ael, a=2.5),
                               functools.partial(NF.ael, a=1e-30)])
def test_finite_values_and_gradients_at_extreme_logits(f):
    assert_finite_at_extremes(f)


# --------------------------------------------------------------------------------------------
# the asymmetry ratio
# --------------------------------------------------------------------------------------------
def test_asymmetry_ratios_of_known_losses():
    m = 100
    # AEL: on the grid the ratio is exp(-(i - j + d)/(m a)), smallest at i - j + d = m - 1
    for a in (0.5, 2.5):
        res = A.asymmetry_check(functools.partial(NF.ael, a=a), steps=m)
        assert res.ratio == pytest.approx(math.exp(-(m - 1) / (m * a)), rel=1e-9)
        assert not res.is_completely_asymmetric()
    for spec_fn in (NF.mae, functools.partial(NF.agce, a=1.8, q=3.0), functools.partial(NF.aul, a=1.5, q=0.5)):
        res = A.asymmetry_check(spec_fn)  # concave: completely asymmetric
        assert res.is_completely_asymmetric() and res.max_symmetric_noise == pytest.approx(0.9)
    # convex AGCE (q < 1) and AUL (q > 1): |l'(1)|/|l'(0)| up to the grid's step
    assert A.asymmetry_check(functools.partial(NF.agce, a=0.6, q=0.6), steps=400).ratio == pytest.approx(
        (0.6 / 1.6) ** 0.4, rel=2e-3)
    assert A.asymmetry_check(functools.partial(NF.aul, a=5.5, q=3.0), steps=400).ratio == pytest.approx(
        (4.5 / 5.5) ** 2, rel=2e-3)
    assert A.asymmetry_check("ce").ratio < 1e-100  # 0, up to clamp_logits' bound on -log p_y at p_y = 0


def test_the_ratio_bounds_the_weights_for_which_the_clean_label_minimises_the_risk():
    """The ratio's meaning, by brute force: the minimiser of sum_k w_k l(u_k) over the 3-class simplex
    is e_0 when w_1/w_0 (= w_2/w_0) is below r, and is not when it is above."""
    step = 1 / 200
    u = np.array([(i, j, 200 - i - j) for i in range(201) for j in range(201 - i)]) * step
    z = torch.from_numpy(u).log()
    for f in (functools.partial(NF.ael, a=1.0), functools.partial(NF.agce, a=0.6, q=0.6)):
        r = A.asymmetry_check(f, num_classes=3, steps=400).ratio
        losses = torch.stack([f(z, torch.full((len(u),), k), reduction="none") for k in range(3)], 1).numpy()
        for t, clean in ((0.97 * r, True), (1.03 * r, False)):
            best = u[np.argmin(losses @ np.array([1.0, t, t]))]
            assert np.array_equal(best, [1.0, 0.0, 0.0]) is clean, (f, t, r, best)


def test_max_symmetric_noise_solves_the_weight_ratio():
    res = A.asymmetry_check(functools.partial(NF.ael, a=2.5), num_classes=10)
    eta = res.max_symmetric_noise
    assert eta / (9 * (1 - eta)) == pytest.approx(res.ratio)


@pytest.mark.parametrize("call_,exc,match", [
    (lambda: A.asymmetry_check("nce"), ValueError, "losses of p_y alone"),
    (lambda: A.asymmetry_check(lambda z, t, reduction: -NF.mae(z, t, reduction=reduction)), ValueError,
     "must decrease strictly"),
    (lambda: A.asymmetry_check("mae", steps=1), ValueError, "steps"),
    (lambda: A.asymmetry_check("mae", num_classes=1.5), TypeError, "num_classes"),
    (lambda: A.asymmetry_check(3), TypeError, "loss must be a spec string"),
])
def test_asymmetry_check_errors(call_, exc, match):
    with pytest.raises(exc, match=match):
        call_()


Z, Y = batch(n=4, c=3, dtype=torch.float32)


@pytest.mark.parametrize("call_,exc,match", [
    (lambda: NF.agce(Z, Y, a=0.0), ValueError, r"a must be in \[1e-06, inf\), got 0$"),
    (lambda: NF.agce(Z, Y, q=-1.0), ValueError, r"q must be in \(0, inf\)"),
    (lambda: NF.agce(Z, Y, a=1.0, q=200.0), ValueError, r"\(a \+ 1\)\^q must be finite in float32 \(below 3.4e\+38\), got a=1.0, q=200.0"),
    (lambda: NF.agce(Z, Y, a="1"), TypeError, "a must be a real number, got str"),
    (lambda: NF.aul(Z, Y, a=1.0), ValueError, r"a must be in \(1, inf\), got 1$"),
    (lambda: NF.aul(Z, Y, a=1 + 1e-20, q=3.0), ValueError, "a must be in"),
    (lambda: NF.aul(Z, Y, a=1 + 1e-9, q=5.0), ValueError, r"\(a / \(a - 1\)\)\^q must be finite in float32"),
    (lambda: NF.aul(Z, Y, q=0.0), ValueError, "q must be in"),
    (lambda: NF.ael(Z, Y, a=0.0), ValueError, r"a must be in \[1e-30, inf\), got 0$"),
    (lambda: NF.ael(Z, Y, a=None), TypeError, "a must be a real number"),
])
def test_errors_name_the_argument(call_, exc, match):
    with pytest.raises(exc, match=match):
        call_()

