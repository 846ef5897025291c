r"""Regression and margin losses for the basics chapters, plus a robust-regression demo.

Regression losses take ``(pred, target, *, <params>, reduction="mean")`` like
``torch.nn.functional``; MSE, MAE and Huber are torch's own (``mse_loss``, ``l1_loss``,
``huber_loss``).  The residual is :math:`r = \hat y - y` (prediction minus target).

Margin losses take the margin :math:`m = y\,f(x)` of a binary label :math:`y \in \{-1, +1\}` and a
score :math:`f(x)`, and return the loss of each element (no reduction): :math:`m > 0` when the
prediction is right, large when it is confidently right.  With two classes and logits
:math:`(0, f(x))` for the labels :math:`(-1, +1)` the softmax gives :math:`p_y = \sigma(m)`, so
the multi-class losses reduce to margin losses: CE to :func:`logistic`, MAE to
:func:`sigmoid_loss`, focal to :func:`focal_margin`.
"""
from __future__ import annotations

from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._checks import check_callable, check_float_tensor, check_generator, check_int, check_param, check_reduction
from .functional import clamp_logits, reduce_loss

__all__ = [
    "mbe", "huber", "log_cosh", "quantile",
    "zero_one", "logistic", "hinge", "exponential", "sigmoid_loss", "focal_margin",
    "REGRESSION_LOSSES", "MARGIN_LOSSES", "loss_curve", "sinc_data", "fit_regression",
]


# ---- regression losses ----
def _check_pair(pred: Tensor, target: Tensor, reduction: str) -> None:
    check_float_tensor("pred", pred)
    check_float_tensor("target", target)
    if pred.shape != target.shape:
        raise ValueError(f"pred and target must have the same shape, got {tuple(pred.shape)} and {tuple(target.shape)}")
    check_reduction(reduction)


def mbe(pred: Tensor, target: Tensor, *, reduction: str = "mean") -> Tensor:
    r"""Mean bias error :math:`\frac1N\sum_i (\hat y_i - y_i)`, signed: positive when the model
    over-predicts on average.  Over- and under-prediction cancel, so it is a diagnostic of
    systematic bias, not a loss to minimise (it is unbounded below)."""
    _check_pair(pred, target, reduction)
    return reduce_loss(pred - target, reduction)


def huber(pred: Tensor, target: Tensor, *, delta: float = 1.0, reduction: str = "mean") -> Tensor:
    r"""Huber loss (Huber, 1964): :math:`\tfrac12 r^2` for :math:`|r| \le \delta`, else
    :math:`\delta(|r| - \tfrac12\delta)`.  Quadratic near 0, linear beyond :math:`\delta`, so its
    influence :math:`\partial L/\partial\hat y = \operatorname{clip}(r, -\delta, \delta)` is bounded.
    This is ``torch.nn.functional.huber_loss`` with ``delta`` validated (``delta > 0``)."""
    delta = check_param("delta", delta, low=0.0, low_open=True)
    _check_pair(pred, target, reduction)
    return F.huber_loss(pred, target, delta=delta, reduction=reduction)


def quantile(pred: Tensor, target: Tensor, *, tau: float = 0.5, reduction: str = "mean") -> Tensor:
    r"""Pinball (quantile) loss :math:`\max(\tau u, (\tau - 1) u)` with :math:`u = y - \hat y`
    (Koenker & Bassett, 1978), :math:`0 < \tau < 1`.  Under-prediction costs :math:`\tau` per unit,
    over-prediction :math:`1-\tau`; the minimiser over a constant is the :math:`\tau`-quantile of
    the targets.  ``tau=0.5`` is half the absolute error."""
    tau = check_param("tau", tau, low=0.0, high=1.0, low_open=True, high_open=True)
    _check_pair(pred, target, reduction)
    u = target - pred
    return reduce_loss(torch.maximum(tau * u, (tau - 1.0) * u), reduction)


def log_cosh(pred: Tensor, target: Tensor, *, reduction: str = "mean") -> Tensor:
    r"""Log-cosh loss :math:`\log\cosh(r)`, :math:`r = \hat y - y`: about :math:`r^2/2` for small
    :math:`|r|` and :math:`|r| - \log 2` for large, so a smooth Huber-like loss with
    :math:`\delta \approx 1` whose influence :math:`\tanh(r)` is bounded by 1.  ``log(cosh(r))``
    overflows beyond :math:`|r| \approx 89` in float32 and loses all digits for small r, so with
    :math:`a = |r|`: :math:`\operatorname{log1p}(2\sinh^2(a/2))` for :math:`a < 1` and
    :math:`a + \operatorname{log1p}(\operatorname{expm1}(-2a)/2)` beyond, both exact."""
    _check_pair(pred, target, reduction)
    a = (pred - target).abs()
    small = torch.log1p(2.0 * torch.sinh(a.clamp(max=1.0) / 2) ** 2)  # clamped: no inf, no NaN gradient
    large = a + torch.log1p(torch.expm1(-2.0 * a) / 2)
    return reduce_loss(torch.where(a < 1.0, small, large), reduction)


#: name -> ``f(pred, target, *, <params>, reduction="mean")``.  ``"mse"`` and ``"mae"`` are torch's
#: ``mse_loss`` and ``l1_loss``; ``"mbe"`` is a signed diagnostic, listed so that it can be plotted
#: next to the losses, not minimised.
REGRESSION_LOSSES: Dict[str, Callable[..., Tensor]] = {
    "mse": F.mse_loss, "mae": F.l1_loss, "mbe": mbe, "huber": huber, "log-cosh": log_cosh, "quantile": quantile,
}


# ---- margin losses ----
def _check_margin(m: Tensor) -> None:
    check_float_tensor("m (the margin y*f(x))", m)


def zero_one(m: Tensor) -> Tensor:
    r"""0-1 loss :math:`\mathbb 1[m \le 0]`: the error the surrogates below stand in for.  Piecewise
    constant, so its derivative is 0 wherever it exists (the result does not require grad)."""
    _check_margin(m)
    return (m <= 0).to(m.dtype)


def logistic(m: Tensor) -> Tensor:
    r"""Logistic loss :math:`\log(1 + e^{-m}) = -\log\sigma(m)`, the binary cross entropy, as
    ``softplus(-m)``: exact at any finite m (e.g. :math:`L(-10^4) = 10^4`, :math:`L(10^4) = 0`)."""
    _check_margin(m)
    return F.softplus(-m)


def hinge(m: Tensor) -> Tensor:
    r"""Hinge loss :math:`\max(0, 1 - m)` (support vector machines)."""
    _check_margin(m)
    return F.relu(1.0 - m)


def exponential(m: Tensor) -> Tensor:
    r"""Exponential loss :math:`e^{-m}` (AdaBoost): loss and gradient grow exponentially on the
    wrong side."""
    _check_margin(m)
    return torch.exp(-m)


def sigmoid_loss(m: Tensor) -> Tensor:
    r"""Sigmoid loss :math:`1 - \sigma(m) = \sigma(-m)`, the binary case of MAE (:math:`1 - p_y`).
    Bounded and symmetric, :math:`L(m) + L(-m) = 1` (Ghosh et al., 2017)."""
    _check_margin(m)
    return torch.sigmoid(-m)


def focal_margin(m: Tensor, *, gamma: float = 2.0) -> Tensor:
    r"""Binary focal loss :math:`-(1 - \sigma(m))^\gamma \log \sigma(m)` (Lin et al., 2017), in log
    space: :math:`(1 - \sigma(m))^\gamma = e^{\gamma \log\sigma(-m)}` via ``logsigmoid``, finite with
    finite gradients at any m: the margin enters through :func:`~noisyloss.functional.clamp_logits`,
    as a logit does (half precision computed in float32; in float32 :math:`|m| \le 1.8 \cdot 10^{19}`; at
    :math:`m = -3 \cdot 10^{38}` the backward pass would multiply an overflowing
    :math:`\gamma \log\sigma(m)` by :math:`\sigma(m) = 0`).  ``gamma = 0`` is :func:`logistic`; ``gamma >= 0``."""
    gamma = check_param("gamma", gamma, low=0.0)
    _check_margin(m)
    m = clamp_logits(m)
    return -torch.exp(gamma * F.logsigmoid(-m)) * F.logsigmoid(m)


#: name -> ``f(m, **params)``, the loss of each margin
MARGIN_LOSSES: Dict[str, Callable[..., Tensor]] = {
    "0-1": zero_one, "logistic": logistic, "hinge": hinge, "exponential": exponential,
    "sigmoid": sigmoid_loss, "focal": focal_margin,
}


def loss_curve(
    loss: Union[str, Callable[..., Tensor]], x: Union[Sequence[float], np.ndarray, Tensor], **params
) -> Tuple[np.ndarray, np.ndarray]:
    r"""Values and autograd derivatives of a loss at the points ``x`` (float64 numpy arrays).

    A name from :data:`REGRESSION_LOSSES` is evaluated at :math:`\hat y = x`, :math:`y = 0`, so
    ``x`` is the residual :math:`r = \hat y - y` and the derivative is the influence
    :math:`\partial L/\partial \hat y`.  A name from :data:`MARGIN_LOSSES`, or a callable, is
    evaluated element-wise as ``f(x, **params)``.  A loss that does not depend differentiably on
    ``x`` (the 0-1 loss) has derivative 0.
    """
    if isinstance(loss, str):
        if loss in REGRESSION_LOSSES:
            reg = REGRESSION_LOSSES[loss]

            def fn(r: Tensor, **kw) -> Tensor:
                return reg(r, torch.zeros_like(r), reduction="none", **kw)
        elif loss in MARGIN_LOSSES:
            fn = MARGIN_LOSSES[loss]
        else:
            raise ValueError(f"loss must be one of {sorted(REGRESSION_LOSSES) + sorted(MARGIN_LOSSES)} "
                             f"or a callable, got {loss!r}")
    elif callable(loss):
        fn = loss
    else:
        raise TypeError(f"loss must be a name or a callable, got {type(loss).__name__}")
    pts = torch.as_tensor(x, dtype=torch.float64).detach().cpu().clone().requires_grad_(True)
    values = fn(pts, **params)
    if not isinstance(values, Tensor) or values.shape != pts.shape:
        raise ValueError(f"loss must be element-wise, a tensor of the shape {tuple(pts.shape)} of x: got "
                         f"{tuple(values.shape) if isinstance(values, Tensor) else type(values).__name__}")
    if not values.requires_grad:
        return values.detach().numpy(), np.zeros(pts.shape)
    (grad,) = torch.autograd.grad(values.sum(), pts)
    return values.detach().numpy(), grad.numpy()


# ---- robust-regression demo ----
def sinc_data(
    n: int = 400,
    *,
    noise_std: float = 0.05,
    impulse_frac: float = 0.15,
    impulse_scale: float = 3.0,
    generator: Optional[torch.Generator] = None,
) -> Tuple[Tensor, Tensor, Tensor]:
    r"""Noisy samples of :math:`\operatorname{sinc}(x) = \sin(\pi x)/(\pi x)`, :math:`x \sim U(-4, 4)`.

    Each target gets Gaussian noise :math:`\mathcal N(0, \text{noise\_std}^2)`; a random fraction
    ``impulse_frac`` of them also gets an impulse :math:`\sim U(-\text{scale}, \text{scale})`.
    Returns ``(x, y_noisy, y_clean)``, float32 of shape ``(n, 1)``.  ``generator=None`` uses torch's
    global generator.
    """
    n = check_int("n", n, 2)
    check_param("noise_std", noise_std, low=0.0)
    check_param("impulse_frac", impulse_frac, low=0.0, high=1.0)
    check_param("impulse_scale", impulse_scale, low=0.0)
    generator = check_generator(generator)
    x = torch.rand(n, 1, generator=generator) * 8 - 4
    clean = torch.sinc(x)
    hit = torch.rand(n, 1, generator=generator) < impulse_frac
    impulse = (torch.rand(n, 1, generator=generator) * 2 - 1) * impulse_scale
    noisy = clean + noise_std * torch.randn(n, 1, generator=generator) + hit * impulse
    return x, noisy, clean


def fit_regression(
    x: Tensor,
    y: Tensor,
    loss: Union[str, Callable[..., Tensor]],
    *,
    hidden: int = 64,
    epochs: int = 600,
    lr: float = 0.01,
    seed: int = 0,
) -> Tuple[nn.Module, List[float]]:
    r"""Fit a 1-``hidden``-``hidden``-1 tanh MLP to ``(x, y)``, both ``(N, 1)``, by full-batch Adam
    (cosine learning-rate decay) on ``loss(pred, y)`` averaged over the samples.

    ``loss`` is a name from :data:`REGRESSION_LOSSES` or a callable ``f(pred, target)`` (e.g.
    ``functools.partial(huber, delta=0.1)``).  The initialisation depends only on ``seed`` (torch's
    global generator is left as it was).  Returns the model (eval mode, on ``x``'s device and
    dtype) and the training loss per epoch.  Under a second per 600 epochs on a CPU.
    """
    for name, t in (("x", x), ("y", y)):
        if not isinstance(t, Tensor) or not t.is_floating_point() or t.dim() != 2 or t.shape[1] != 1:
            raise ValueError(f"{name} must be a floating tensor of shape (N, 1), got "
                             f"{tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__}")
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    if isinstance(loss, str):
        if loss not in REGRESSION_LOSSES:
            raise ValueError(f"loss must be one of {sorted(REGRESSION_LOSSES)} or a callable, got {loss!r}")
        loss = REGRESSION_LOSSES[loss]
    loss = check_callable("loss", loss)
    hidden = check_int("hidden", hidden, 1)
    epochs = check_int("epochs", epochs, 1)
    lr = check_param("lr", lr, low=0.0, low_open=True)
    seed = check_int("seed", seed, 0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = nn.Sequential(nn.Linear(1, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(),
                              nn.Linear(hidden, 1))
    model = model.to(device=x.device, dtype=x.dtype)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    history: List[float] = []
    for _ in range(epochs):
        opt.zero_grad(set_to_none=True)
        value = loss(model(x), y).mean()
        value.backward()
        opt.step()
        sched.step()
        history.append(value.item())
    return model.eval(), history
