"""Loss curves against closed forms, symmetry constants, the noisy-risk decomposition."""
import math

import numpy as np
import pytest
import torch

from noisyloss import analysis as A
from noisyloss import functional as NF

P = np.linspace(0.02, 0.98, 25)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --------------------------------------------------------------------------------------------
# logits_for_py
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("C,target", [(2, 0), (10, 0), (10, 7), (100, 99)])
def test_logits_for_py_softmax(C, target):
    z = A.logits_for_py(P, C, target=target)
    assert z.shape == (len(P), C) and z.dtype == torch.float64
    p = z.softmax(dim=1).numpy()
    np.testing.assert_allclose(p[:, target], P, rtol=1e-13)
    others = np.delete(p, target, axis=1)
    np.testing.assert_allclose(others, np.repeat(((1 - P) / (C - 1))[:, None], C - 1, axis=1), rtol=1e-12)


def test_logits_for_py_scalar():
    z = A.logits_for_py(0.3, 4)
    assert z.shape == (1, 4) and z.softmax(dim=1)[0, 0].item() == pytest.approx(0.3)


@pytest.mark.parametrize("call,exc,match", [
    (lambda: A.logits_for_py([0.0, 0.5], 10), ValueError, "p_y"),
    (lambda: A.logits_for_py(1.0, 10), ValueError, "p_y"),
    (lambda: A.logits_for_py([], 10), ValueError, "p_y"),
    (lambda: A.logits_for_py(0.5, 1), ValueError, "num_classes"),
    (lambda: A.logits_for_py(0.5, 10, target=10), ValueError, "target"),
    (lambda: A.loss_vs_py(3.0, P), TypeError, "loss"),
    (lambda: A.loss_vs_py("nope", P), ValueError, "unknown loss"),
    (lambda: A.loss_vs_py(lambda z, t, reduction="mean": z.sum(), P), ValueError, "reduction='none'"),
    (lambda: A.symmetry_check("mae", n=0), ValueError, "n"),
    (lambda: A.symmetry_check("mae", scale=0.0), ValueError, "scale"),
    (lambda: A.noisy_risk_decomposition("mae", 1.5), ValueError, "eta"),
])
def test_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


# --------------------------------------------------------------------------------------------
# loss_vs_py against closed forms: L = g(p_y) gives dL/dz_y = g'(p_y) p_y (1 - p_y)
# --------------------------------------------------------------------------------------------
def _log(p):
    return np.log(p)


CLOSED_FORMS = {
    # spec: (g(p), g'(p))
    "ce": (lambda p: -_log(p), lambda p: -1 / p),
    "mae": (lambda p: 1 - p, lambda p: -np.ones_like(p)),
    "gce:q=0.5": (lambda p: (1 - p ** 0.5) / 0.5, lambda p: -p ** -0.5),
    "gce:q=0.7": (lambda p: (1 - p ** 0.7) / 0.7, lambda p: -p ** -0.3),
    "rce:A=-4": (lambda p: 4 * (1 - p), lambda p: -4 * np.ones_like(p)),
    "focal:gamma=2": (lambda p: -(1 - p) ** 2 * _log(p), lambda p: 2 * (1 - p) * _log(p) - (1 - p) ** 2 / p),
    "sce:alpha=0.1,beta=1,A=-4": (lambda p: -0.1 * _log(p) + 4 * (1 - p), lambda p: -0.1 / p - 4),
}


@pytest.mark.parametrize("spec", sorted(CLOSED_FORMS))
@pytest.mark.parametrize("C", [2, 10])
def test_loss_vs_py_matches_closed_form(spec, C):
    g, dg = CLOSED_FORMS[spec]
    curve = A.loss_vs_py(spec, P, num_classes=C)
    assert isinstance(curve, A.LossCurve) and all(isinstance(a, np.ndarray) for a in curve)
    np.testing.assert_array_equal(curve.p_y, P)
    np.testing.assert_allclose(curve.loss, g(P), rtol=1e-10, atol=1e-12)
    grad_y = dg(P) * P * (1 - P)
    np.testing.assert_allclose(curve.grad_y, grad_y, rtol=1e-9, atol=1e-12)
    # dL/dz = g'(p) p (e_y - p) and ||e_y - p|| = (1 - p) sqrt(C / (C - 1)) for these logits
    np.testing.assert_allclose(curve.grad_norm, np.abs(grad_y) * math.sqrt(C / (C - 1)), rtol=1e-9, atol=1e-12)


def test_gce_gradient_formula():
    """GCE's gradient -p^q (1 - p): CE's -(1 - p) reweighted by p^q, small for low-confidence samples."""
    q = 0.5
    curve = A.loss_vs_py(f"gce:q={q}", P)
    np.testing.assert_allclose(curve.grad_y, -P ** q * (1 - P), rtol=1e-10)
    ce = A.loss_vs_py("ce", P)
    np.testing.assert_allclose(curve.grad_y / ce.grad_y, P ** q, rtol=1e-10)


def _nce_numpy(z: np.ndarray, y: int) -> float:
    log_p = z - np.log(np.exp(z - z.max()).sum()) - z.max()
    return log_p[y] / log_p.sum()


def test_loss_vs_py_nce_against_finite_differences():
    C = 5
    curve = A.loss_vs_py("nce", P, num_classes=C)
    z = A.logits_for_py(P, C).numpy()
    h = 1e-6
    for i in range(len(P)):
        assert curve.loss[i] == pytest.approx(_nce_numpy(z[i], 0), rel=1e-12)
        grad = np.array([(_nce_numpy(z[i] + h * e, 0) - _nce_numpy(z[i] - h * e, 0)) / (2 * h) for e in np.eye(C)])
        assert curve.grad_y[i] == pytest.approx(grad[0], abs=1e-8)
        assert curve.grad_norm[i] == pytest.approx(np.linalg.norm(grad), abs=1e-8)


def test_loss_vs_py_stochastic_losses():
    # NL: all other classes carry (1 - p)/(C - 1), so the random complementary label does not matter
    C = 10
    curve = A.loss_vs_py("nl", P, num_classes=C)
    np.testing.assert_allclose(curve.loss, -np.log(1 - (1 - P) / (C - 1)), rtol=1e-10)
    # peer with all targets 0: d/dz_i of the batch sum is (1 - alpha) dCE/dz_i whatever the permutation
    curve = A.loss_vs_py("peer:alpha=0.5", P, num_classes=C)
    np.testing.assert_allclose(curve.grad_y, -0.5 * (1 - P), rtol=1e-10)


def test_loss_vs_py_accepts_a_callable():
    curve = A.loss_vs_py(lambda z, t, reduction="mean": NF.gce(z, t, q=0.3, reduction=reduction), P)
    np.testing.assert_allclose(curve.loss, A.loss_vs_py("gce:q=0.3", P).loss, rtol=0, atol=0)


# --------------------------------------------------------------------------------------------
# symmetry
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("spec,constant", [
    ("mae", 9.0),                      # C - 1
    ("rce", 36.0),                     # -A (C - 1), A = -4
    ("rce:A=-2", 18.0),
    ("nce", 1.0),
    ("nce_rce:alpha=1,beta=1", 37.0),  # sum of symmetric losses
    ("gce:q=1", 9.0),                  # = MAE
])
def test_symmetric_losses(spec, constant):
    res = A.symmetry_check(spec, num_classes=10, n=500, generator=gen(0))
    assert isinstance(res, A.SymmetryResult) and res.sums.shape == (500,)
    assert res.spread < 1e-9 and res.is_symmetric()
    assert res.mean == pytest.approx(constant, rel=1e-12)


@pytest.mark.parametrize("spec", ["ce", "gce:q=0.5", "gce:q=0.9", "focal", "sce", "bootstrap", "ls"])
def test_non_symmetric_losses(spec):
    res = A.symmetry_check(spec, num_classes=10, n=500, generator=gen(0))
    assert res.spread > 0.1 and not res.is_symmetric()
    assert res.spread == pytest.approx(res.sums.max() - res.sums.min())
    assert res.mean == pytest.approx(res.sums.mean())


def test_symmetry_sums_match_direct_computation():
    z = 4.0 * torch.randn(50, 3, dtype=torch.float64, generator=gen(5))
    res = A.symmetry_check("ce", num_classes=3, n=50, generator=gen(5))
    expected = -torch.log_softmax(z, dim=1).sum(dim=1)
    np.testing.assert_allclose(res.sums, expected.numpy(), rtol=1e-12)


def test_symmetry_check_runs_stochastic_losses():
    for spec in ("nl", "peer"):
        res = A.symmetry_check(spec, n=200, generator=gen(1))
        assert np.isfinite(res.sums).all() and res.spread > 0


# --------------------------------------------------------------------------------------------
# noisy risk decomposition
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("spec,K", [("mae", 1.0), ("rce:A=-4", 4.0), ("nce", 1.0)])
def test_noisy_risk_decomposition_symmetric(spec, K):
    eta, n = 0.3, 20_000
    out = A.noisy_risk_decomposition(spec, eta, n=n, generator=gen(0))
    assert set(out) == {"clean_risk", "noisy_risk", "predicted", "constant_spread"}
    assert out["constant_spread"] < 1e-9
    assert out["predicted"] == pytest.approx((1 - 2 * eta) * out["clean_risk"] + eta * K, rel=1e-12)
    # sampled noisy risk: each flip changes the loss by at most K, so its std is <= K sqrt(eta(1-eta)/n)
    assert abs(out["noisy_risk"] - out["predicted"]) < 4 * K * math.sqrt(eta * (1 - eta) / n)
    # and the noise really hurts: the noisy risk is far from the clean one
    assert out["noisy_risk"] - out["clean_risk"] > 20 * K * math.sqrt(eta * (1 - eta) / n)


def test_noisy_risk_decomposition_ce_and_limits():
    ce = A.noisy_risk_decomposition("ce", 0.2, n=2000, generator=gen(0))
    assert ce["constant_spread"] > 1.0
    clean = A.noisy_risk_decomposition("mae", 0.0, n=2000, generator=gen(1))
    assert clean["noisy_risk"] == clean["clean_risk"] == pytest.approx(clean["predicted"], rel=1e-12)
    half = A.noisy_risk_decomposition("mae", 0.5, n=2000, generator=gen(1))
    assert half["predicted"] == pytest.approx(0.5, rel=1e-12)  # eta * K with K = 1
