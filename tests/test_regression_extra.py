"""Log-cosh (noisyloss.regression.log_cosh) against independent formulas in its three regimes."""
import math

import pytest
import torch

from noisyloss import regression as R


def _value_and_grad(r: torch.Tensor):
    r = r.clone().requires_grad_(True)
    value = R.log_cosh(r, torch.zeros_like(r), reduction="none")
    (grad,) = torch.autograd.grad(value.sum(), r)
    return value.detach(), grad


class TestLogCosh:
    def test_small_residuals_match_the_series(self):
        r = torch.tensor([1e-6, -1e-4, 1e-3, 0.01, -0.05], dtype=torch.float64)  # series error < 1e-13 here
        series = r ** 2 / 2 - r ** 4 / 12 + r ** 6 / 45 - 17 * r ** 8 / 2520
        value, _ = _value_and_grad(r)
        assert torch.allclose(value, series, rtol=1e-12, atol=0)

    def test_moderate_residuals_match_log_cosh(self):
        r = torch.linspace(-20, 20, 401, dtype=torch.float64)
        r = r[r.abs() > 0.3]
        value, grad = _value_and_grad(r)
        assert torch.allclose(value, torch.log(torch.cosh(r)), rtol=1e-13, atol=0)
        assert torch.allclose(grad, torch.tanh(r), rtol=1e-12, atol=1e-15)

    def test_large_residuals_are_finite_and_linear(self):
        r = torch.tensor([100.0, -1e4, 1e30], dtype=torch.float32)
        value, grad = _value_and_grad(r)
        assert torch.isfinite(value).all() and torch.isfinite(grad).all()
        assert torch.allclose(value.double(), r.double().abs() - math.log(2), rtol=1e-6)
        assert torch.equal(grad, torch.sign(r))

    def test_float32_keeps_its_digits_for_small_residuals(self):
        r = torch.tensor([1e-3, 3e-2, 0.9, 1.0, 1.1], dtype=torch.float32)
        value32, _ = _value_and_grad(r)
        value64, _ = _value_and_grad(r.double())
        assert torch.allclose(value32.double(), value64, rtol=1e-6, atol=0)

    def test_zero_gradient_at_zero_and_no_nan(self):
        value, grad = _value_and_grad(torch.zeros(3, dtype=torch.float64))
        assert torch.equal(value, torch.zeros(3, dtype=torch.float64)) and torch.equal(grad, torch.zeros(3, dtype=torch.float64))

    def test_reduction_and_registry(self):
        pred, target = torch.randn(5, dtype=torch.float64), torch.randn(5, dtype=torch.float64)
        per = R.log_cosh(pred, target, reduction="none")
        assert torch.allclose(R.log_cosh(pred, target), per.mean())
        assert torch.allclose(R.log_cosh(pred, target, reduction="sum"), per.sum())
        assert R.REGRESSION_LOSSES["log-cosh"] is R.log_cosh

    def test_bad_input_is_named(self):
        with pytest.raises(ValueError, match="reduction"):
            R.log_cosh(torch.zeros(2), torch.zeros(2), reduction="max")
        with pytest.raises(ValueError, match="same shape"):
            R.log_cosh(torch.zeros(2), torch.zeros(3))
