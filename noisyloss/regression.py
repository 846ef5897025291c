r"""Regression and margin losses for the basics chapters, plus a robust-regression demo.

Regression losses take ``(pred, target)`` like :mod:`torch.nn.functional`; MSE, MAE and Huber are
torch's own (``mse_loss``, ``l1_loss``, ``huber_loss``).  Margin losses take the margin
:math:`m = y\,f(x)` with :math:`y \in \{-1, +1\}`: positive when the prediction is right.
"""
from __future__ import annotations

from typing import Callable, Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .functional import REDUCTIONS, _reduce, check_param

__all__ = [
    "mbe", "quantile", "zero_one", "logistic", "hinge", "exponential", "focal_margin",
    "REGRESSION_LOSSES", "MARGIN_LOSSES", "sinc_data", "fit_regression",
]


def _check_pair(pred: Tensor, target: Tensor, reduction: str) -> None:
    if not isinstance(pred, Tensor) or not isinstance(target, Tensor):
        raise TypeError("pred and target must be torch.Tensors")
    if pred.shape != target.shape:
        raise ValueError(f"pred and target must have the same shape, got {tuple(pred.shape)} and {tuple(target.shape)}")
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")


def mbe(pred: Tensor, target: Tensor, *, reduction: str = "mean") -> Tensor:
    r"""Mean bias error :math:`\frac1N\sum_i (\hat y_i - y_i)`: signed, so over- and under-prediction
    cancel.  A diagnostic of systematic bias, not a loss to minimise (it is unbounded below)."""
    _check_pair(pred, target, reduction)
    return _reduce(pred - target, reduction)


def quantile(pred: Tensor, target: Tensor, *, tau: float = 0.5, reduction: str = "mean") -> Tensor:
    r"""Pinball (quantile) loss :math:`\max(\tau r, (\tau - 1) r)`, :math:`r = y - \hat y`
    (Koenker & Bassett, 1978).  Its minimiser is the :math:`\tau`-quantile; ``tau=0.5`` is MAE/2."""
    tau = check_param("tau", tau, low=0.0, high=1.0, low_open=True, high_open=True)
    _check_pair(pred, target, reduction)
    r = target - pred
    return _reduce(torch.maximum(tau * r, (tau - 1.0) * r), reduction)


def _check_margin(m: Tensor) -> None:
    if not isinstance(m, Tensor) or not m.is_floating_point():
        raise TypeError("m (the margin y*f(x)) must be a floating torch.Tensor")


def zero_one(m: Tensor) -> Tensor:
    r"""0-1 loss :math:`\mathbb 1[m \le 0]` (no useful gradient: the target of the surrogates below)."""
    _check_margin(m)
    return (m <= 0).to(m.dtype)


def logistic(m: Tensor) -> Tensor:
    r"""Logistic loss :math:`\log(1 + e^{-m})` = binary cross entropy, as ``softplus(-m)`` (exact at any m)."""
    _check_margin(m)
    return F.softplus(-m)


def hinge(m: Tensor) -> Tensor:
    r"""Hinge loss :math:`\max(0, 1 - m)` (SVM)."""
    _check_margin(m)
    return F.relu(1.0 - m)


def exponential(m: Tensor) -> Tensor:
    r"""Exponential loss :math:`e^{-m}` (AdaBoost): grows fastest for wrong-side points."""
    _check_margin(m)
    return torch.exp(-m)


def focal_margin(m: Tensor, *, gamma: float = 2.0) -> Tensor:
    r"""Binary focal loss :math:`-(1 - \sigma(m))^\gamma \log \sigma(m)` (Lin et al., 2017) with
    :math:`1 - \sigma(m) = \sigma(-m)`, in log space; ``gamma = 0`` is the logistic loss."""
    gamma = check_param("gamma", gamma, low=0.0)
    _check_margin(m)
    return -torch.exp(gamma * F.logsigmoid(-m)) * F.logsigmoid(m)


#: name -> f(pred, target, **params), per-element (reduction="none")
REGRESSION_LOSSES: Dict[str, Callable[..., Tensor]] = {
    "mse": lambda p, t: F.mse_loss(p, t, reduction="none"),
    "mae": lambda p, t: F.l1_loss(p, t, reduction="none"),
    "huber": lambda p, t, delta=1.0: F.huber_loss(p, t, delta=delta, reduction="none"),
    "quantile": lambda p, t, tau=0.5: quantile(p, t, tau=tau, reduction="none"),
}
#: name -> f(margin, **params)
MARGIN_LOSSES: Dict[str, Callable[..., Tensor]] = {
    "0-1": zero_one, "logistic": logistic, "hinge": hinge, "exponential": exponential, "focal": focal_margin,
}


def sinc_data(
    n: int = 400,
    *,
    noise_std: float = 0.05,
    impulse_frac: float = 0.15,
    impulse_scale: float = 3.0,
    generator: Optional[torch.Generator] = None,
) -> Tuple[Tensor, Tensor, Tensor]:
    r""":math:`x \sim U(-4, 4)`, clean :math:`\operatorname{sinc}(x) = \sin(\pi x)/(\pi x)`, noisy = clean +
    Gaussian noise + on a fraction ``impulse_frac`` of points an impulse :math:`\pm U(0, \text{scale})`.
    Returns ``(x, y_noisy, y_clean)`` of shape ``(n, 1)``."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise ValueError(f"n must be an int >= 2, got {n!r}")
    check_param("noise_std", noise_std, low=0.0)
    check_param("impulse_frac", impulse_frac, low=0.0, high=1.0)
    check_param("impulse_scale", impulse_scale, low=0.0)
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    x = torch.rand(n, 1, generator=g) * 8 - 4
    clean = torch.sinc(x)
    hit = torch.rand(n, 1, generator=g) < impulse_frac
    impulse = (torch.rand(n, 1, generator=g) * 2 - 1) * impulse_scale
    noisy = clean + noise_std * torch.randn(n, 1, generator=g) + hit * impulse
    return x, noisy, clean


def fit_regression(
    x: Tensor,
    y: Tensor,
    loss: Callable[[Tensor, Tensor], Tensor],
    *,
    hidden: int = 64,
    epochs: int = 1500,
    lr: float = 0.01,
    seed: int = 0,
) -> Tuple[nn.Module, List[float]]:
    """Fit a 1-64-64-1 tanh MLP to ``(x, y)`` by full-batch Adam on ``loss(pred, y)`` (per element,
    averaged).  Returns the model and the loss history.  A few seconds on a CPU."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(1, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(), nn.Linear(hidden, 1))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    history = []
    for _ in range(epochs):
        opt.zero_grad()
        value = loss(model(x), y).mean()
        value.backward()
        opt.step()
        sched.step()
        history.append(float(value.detach()))
    return model.eval(), history
