"""Regression and margin losses against their formulas (independent numpy, float64), their
derivatives against the closed forms, and the robust fit of sinc: MAE and Huber beat MSE."""
import functools
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from noisyloss import functional as NF
from noisyloss import regression as R

PRED = torch.tensor([0.0, 1.0, 2.0, -1.0, 0.3, -2.5], dtype=torch.float64)
TARGET = torch.tensor([1.0, 1.0, 0.0, 3.0, 0.1, 0.5], dtype=torch.float64)
M = torch.tensor([-30.0, -2.0, -0.5, 0.0, 0.5, 1.0, 3.0, 30.0], dtype=torch.float64)
floats = st.floats(-50, 50, allow_nan=False)


def sigma(m):
    return 1 / (1 + np.exp(-m))


# ---------------------------------------------------------------------------- regression losses
def test_regression_losses_match_numpy_formulas():
    p, t = PRED.numpy(), TARGET.numpy()
    r = p - t
    want = {
        "mse": r**2,
        "mae": np.abs(r),
        "mbe": r,
        "huber": np.where(np.abs(r) <= 0.7, 0.5 * r**2, 0.7 * (np.abs(r) - 0.35)),
        "log-cosh": np.log(np.cosh(r)),
        "quantile": np.maximum(0.2 * -r, (0.2 - 1) * -r),
    }
    params = {"huber": {"delta": 0.7}, "quantile": {"tau": 0.2}}
    for name, fn in R.REGRESSION_LOSSES.items():
        got = fn(PRED, TARGET, reduction="none", **params.get(name, {}))
        np.testing.assert_allclose(got.numpy(), want[name], rtol=1e-12, err_msg=name)
        assert float(fn(PRED, TARGET, **params.get(name, {}))) == pytest.approx(want[name].mean(), rel=1e-12)
        assert float(fn(PRED, TARGET, reduction="sum", **params.get(name, {}))) == pytest.approx(want[name].sum())


def test_quantile_at_median_is_half_mae_and_pinball_at_known_points():
    assert float(R.quantile(PRED, TARGET, tau=0.5)) == pytest.approx(0.5 * float(torch.nn.functional.l1_loss(PRED, TARGET)))
    # y - yhat = 2 (under-prediction) costs 2 tau; y - yhat = -2 costs 2 (1 - tau)
    got = R.quantile(torch.tensor([0.0, 2.0]), torch.tensor([2.0, 0.0]), tau=0.9, reduction="none")
    torch.testing.assert_close(got, torch.tensor([1.8, 0.2]))


@settings(max_examples=50, deadline=None)
@given(st.lists(floats, min_size=1, max_size=20), st.floats(0.01, 0.99))
def test_quantile_tau_and_one_minus_tau_add_to_absolute_error(residuals, tau):
    r = torch.tensor(residuals, dtype=torch.float64)
    z = torch.zeros_like(r)
    both = R.quantile(r, z, tau=tau, reduction="none") + R.quantile(r, z, tau=1 - tau, reduction="none")
    torch.testing.assert_close(both, r.abs())
    assert (R.quantile(r, z, tau=tau, reduction="none") >= 0).all()


def test_quantile_minimiser_is_the_quantile():
    y = torch.arange(1.0, 101.0, dtype=torch.float64)
    grid = torch.linspace(0, 101, 10101, dtype=torch.float64)
    for tau, lo, hi in ((0.9, 90.0, 91.0), (0.25, 25.0, 26.0)):
        risks = torch.stack([R.quantile(torch.full_like(y, g), y, tau=tau) for g in grid])
        assert lo <= float(grid[risks.argmin()]) <= hi


def test_mbe_sign_convention_is_pred_minus_target():
    assert float(R.mbe(torch.tensor([2.0, 2.0]), torch.tensor([1.0, 0.0]))) == 1.5
    # over- and under-prediction cancel
    assert float(R.mbe(torch.tensor([1.0, -1.0]), torch.zeros(2))) == 0.0


def test_regression_influence_matches_closed_forms():
    r = np.linspace(-3, 3, 61) + 0.013  # avoid the kinks
    for name, params, want in (
        ("mse", {}, 2 * r),
        ("mae", {}, np.sign(r)),
        ("mbe", {}, np.ones_like(r)),
        ("huber", {"delta": 0.5}, np.clip(r, -0.5, 0.5)),
        ("quantile", {"tau": 0.8}, np.where(r < 0, -0.8, 0.2)),  # r < 0: under-prediction
    ):
        _, grad = R.loss_curve(name, r, **params)
        np.testing.assert_allclose(grad, want, rtol=1e-12, err_msg=name)


# ---------------------------------------------------------------------------- margin losses
def test_margin_losses_match_numpy_formulas_and_derivatives():
    m = M.numpy()
    s, sn, log_s = sigma(m), sigma(-m), -np.log1p(np.exp(-m))  # sn = 1 - s without cancellation
    want = {
        "0-1": (m <= 0).astype(float),
        "logistic": -log_s,
        "hinge": np.maximum(0, 1 - m),
        "exponential": np.exp(-m),
        "sigmoid": sn,
        "focal": -(sn**2) * log_s,
    }
    dwant = {
        "0-1": np.zeros_like(m),
        "logistic": -sn,
        "hinge": np.where(m < 1, -1.0, 0.0),
        "exponential": -np.exp(-m),
        "sigmoid": -s * sn,
        "focal": 2 * sn**2 * s * log_s - sn**3,  # d/dm of -(1-s)^2 log s, ds/dm = s(1-s)
    }
    for name in R.MARGIN_LOSSES:
        keep = m != 1.0 if name == "hinge" else slice(None)  # hinge kink
        value, grad = R.loss_curve(name, m)
        np.testing.assert_allclose(value, want[name], rtol=1e-10, atol=1e-300, err_msg=name)
        np.testing.assert_allclose(grad[keep], dwant[name][keep], rtol=1e-9, atol=1e-15, err_msg=name)


def test_focal_gamma_zero_is_logistic_and_focal_is_below_it():
    torch.testing.assert_close(R.focal_margin(M, gamma=0.0), R.logistic(M), rtol=1e-14, atol=0)
    for gamma in (0.5, 1.0, 2.0, 5.0):
        assert (R.focal_margin(M, gamma=gamma) <= R.logistic(M)).all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_logistic_exact_and_finite_at_extreme_margins(dtype):
    m = torch.tensor([-1e4, 1e4], dtype=dtype, requires_grad=True)
    out = R.logistic(m)
    assert out[0].item() == 1e4 and out[1].item() == 0.0
    (out.sum() + R.focal_margin(m, gamma=0.5).sum() + R.focal_margin(m).sum()).backward()
    assert torch.isfinite(m.grad).all()
    torch.testing.assert_close(m.grad, torch.tensor([-3.0, 0.0], dtype=dtype))
    assert torch.isfinite(R.focal_margin(m.detach(), gamma=2.0)).all()


def test_binary_multiclass_losses_reduce_to_margin_losses():
    """Logits (0, m) for classes (-1, +1) and label +1: p_y = sigma(m)."""
    logits = torch.stack([torch.zeros_like(M), M], dim=1)
    target = torch.ones(len(M), dtype=torch.long)
    torch.testing.assert_close(NF.cross_entropy(logits, target, reduction="none"), R.logistic(M))
    torch.testing.assert_close(NF.mae(logits, target, reduction="none"), R.sigmoid_loss(M))
    torch.testing.assert_close(NF.focal(logits, target, gamma=2.0, reduction="none"), R.focal_margin(M, gamma=2.0))


def test_only_bounded_margin_losses_are_symmetric():
    m = torch.linspace(0.1, 5, 50, dtype=torch.float64)  # m != 0 (there 1[m <= 0] counts both signs)
    sums = {name: fn(m) + fn(-m) for name, fn in R.MARGIN_LOSSES.items()}
    torch.testing.assert_close(sums["0-1"], torch.ones_like(m))
    torch.testing.assert_close(sums["sigmoid"], torch.ones_like(m))
    for name in ("logistic", "hinge", "exponential", "focal"):
        assert float(sums[name].max() - sums[name].min()) > 0.5, name


# ---------------------------------------------------------------------------- errors
def test_errors_name_the_argument_and_range():
    z = torch.zeros(2)
    with pytest.raises(ValueError, match=r"tau must be in \(0, 1\)"):
        R.quantile(z, z, tau=1.0)
    with pytest.raises(ValueError, match="delta must be in"):
        R.huber(z, z, delta=0.0)
    with pytest.raises(TypeError, match="delta must be a real number"):
        R.huber(z, z, delta="1")
    with pytest.raises(ValueError, match="same shape"):
        R.mbe(z, torch.zeros(3))
    with pytest.raises(TypeError, match="target must be a floating"):
        R.quantile(z, torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="reduction"):
        R.mbe(z, z, reduction="avg")
    with pytest.raises(ValueError, match=r"gamma must be in \[0, inf\)"):
        R.focal_margin(z, gamma=-1)
    with pytest.raises(TypeError, match="margin"):
        R.hinge(torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="loss must be one of"):
        R.loss_curve("nope", [0.0])
    with pytest.raises(ValueError, match="impulse_frac"):
        R.sinc_data(10, impulse_frac=2.0)
    with pytest.raises(ValueError, match="n must be an int >= 2"):
        R.sinc_data(1)
    x, y, _ = R.sinc_data(10)
    with pytest.raises(ValueError, match=r"x must be a floating tensor of shape \(N, 1\)"):
        R.fit_regression(x[:, 0], y, "mse")
    with pytest.raises(ValueError, match="lr must be in"):
        R.fit_regression(x, y, "mse", lr=0.0)
    with pytest.raises(ValueError, match="epochs must be an int >= 1"):
        R.fit_regression(x, y, "mse", epochs=0)


# ---------------------------------------------------------------------------- sinc demo
def test_sinc_data_shapes_noise_and_impulse_fraction():
    x, y, clean = R.sinc_data(4000, noise_std=0.0, impulse_frac=0.25, impulse_scale=2.0,
                              generator=torch.Generator().manual_seed(3))
    assert x.shape == y.shape == clean.shape == (4000, 1)
    assert float(x.min()) >= -4 and float(x.max()) <= 4
    np.testing.assert_allclose(clean.numpy(), np.sinc(x.numpy()), atol=1e-6)  # numpy sinc is sin(pi x)/(pi x)
    hit = (y - clean).abs() > 0
    assert 0.23 < float(hit.float().mean()) < 0.27 and float((y - clean).abs().max()) <= 2.0
    x2, y2, _ = R.sinc_data(4000, noise_std=0.0, impulse_frac=0.25, impulse_scale=2.0,
                            generator=torch.Generator().manual_seed(3))
    assert torch.equal(x, x2) and torch.equal(y, y2)


def test_fit_regression_is_seeded_and_leaves_global_state_alone():
    x, y, _ = R.sinc_data(50, generator=torch.Generator().manual_seed(0))
    threads, rng = torch.get_num_threads(), torch.get_rng_state()
    m1, h1 = R.fit_regression(x, y, "mse", epochs=5, seed=4)
    m2, h2 = R.fit_regression(x, y, "mse", epochs=5, seed=4)
    assert h1 == h2 and len(h1) == 5
    assert torch.get_num_threads() == threads and torch.equal(torch.get_rng_state(), rng)
    m64, _ = R.fit_regression(x.double(), y.double(), "mae", epochs=2)
    assert m64(x.double()).dtype == torch.float64


def test_robust_losses_fit_sinc_better_than_mse_under_impulse_noise():
    x, y, clean = R.sinc_data(300, generator=torch.Generator().manual_seed(1))
    rmse = {}
    for name, loss in (("mse", "mse"), ("mae", "mae"), ("huber", functools.partial(R.huber, delta=0.1))):
        model, hist = R.fit_regression(x, y, loss, epochs=400, lr=0.02)
        with torch.no_grad():
            rmse[name] = math.sqrt(float(((model(x) - clean) ** 2).mean()))
        assert hist[-1] < hist[0], name
    assert rmse["mae"] < 0.6 * rmse["mse"] and rmse["huber"] < 0.6 * rmse["mse"], rmse
