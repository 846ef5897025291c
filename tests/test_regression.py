"""Regression and margin losses against their formulas; the robust fit of sinc beats MSE."""
import math

import numpy as np
import pytest
import torch

from noisyloss import regression as R


def test_quantile_is_pinball_and_half_mae_at_median():
    pred = torch.tensor([0.0, 1.0, 2.0, -1.0], dtype=torch.float64)
    target = torch.tensor([1.0, 1.0, 0.0, 3.0], dtype=torch.float64)
    r = (target - pred).numpy()
    for tau in (0.1, 0.5, 0.9):
        want = np.where(r >= 0, tau * r, (tau - 1) * r)
        np.testing.assert_allclose(R.quantile(pred, target, tau=tau, reduction="none").numpy(), want)
    assert float(R.quantile(pred, target, tau=0.5)) == pytest.approx(0.5 * float((pred - target).abs().mean()))


def test_quantile_minimiser_is_the_quantile():
    y = torch.arange(1.0, 101.0, dtype=torch.float64)
    grid = torch.linspace(0, 101, 10101, dtype=torch.float64)
    risks = torch.stack([R.quantile(torch.full_like(y, g), y, tau=0.9) for g in grid])
    assert 89.9 <= float(grid[risks.argmin()]) <= 91.0


def test_mbe_sign_convention():
    assert float(R.mbe(torch.tensor([2.0, 2.0]), torch.tensor([1.0, 0.0]))) == 1.5


def test_margin_losses_at_known_points():
    m = torch.tensor([-2.0, 0.0, 0.5, 1.0, 3.0], dtype=torch.float64)
    np.testing.assert_allclose(R.zero_one(m).numpy(), [1, 1, 0, 0, 0])
    np.testing.assert_allclose(R.hinge(m).numpy(), [3, 1, 0.5, 0, 0])
    np.testing.assert_allclose(R.exponential(m).numpy(), np.exp(-m.numpy()))
    np.testing.assert_allclose(R.logistic(m).numpy(), np.log1p(np.exp(-m.numpy())))
    s = 1 / (1 + np.exp(-m.numpy()))
    np.testing.assert_allclose(R.focal_margin(m, gamma=2.0).numpy(), -((1 - s) ** 2) * np.log(s))
    torch.testing.assert_close(R.focal_margin(m, gamma=0.0), R.logistic(m))


def test_logistic_and_focal_exact_at_extreme_margins():
    m = torch.tensor([-1e4, 1e4], requires_grad=True)
    out = R.logistic(m)
    assert out[0].item() == pytest.approx(1e4) and out[1].item() == 0.0
    (out.sum() + R.focal_margin(m).sum()).backward()
    assert torch.isfinite(m.grad).all()


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match="tau"):
        R.quantile(torch.zeros(2), torch.zeros(2), tau=1.0)
    with pytest.raises(ValueError, match="same shape"):
        R.mbe(torch.zeros(2), torch.zeros(3))
    with pytest.raises(ValueError, match="gamma"):
        R.focal_margin(torch.zeros(2), gamma=-1)
    with pytest.raises(TypeError, match="margin"):
        R.hinge(torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="impulse_frac"):
        R.sinc_data(10, impulse_frac=2.0)


def test_robust_losses_fit_sinc_better_than_mse_under_impulse_noise():
    x, y, clean = R.sinc_data(300, generator=torch.Generator().manual_seed(1))
    rmse = {}
    for name in ("mse", "mae", "huber"):
        model, hist = R.fit_regression(x, y, R.REGRESSION_LOSSES[name], epochs=600)
        with torch.no_grad():
            rmse[name] = math.sqrt(float(((model(x) - clean) ** 2).mean()))
        assert hist[-1] < hist[0]
    assert rmse["mae"] < 0.7 * rmse["mse"] and rmse["huber"] < 0.85 * rmse["mse"], rmse
