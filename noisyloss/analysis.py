r"""Looking inside a loss: its value and gradient as functions of :math:`p_y`, the symmetry test
:math:`\sum_k L(f(x), k) = \text{const}` and the noisy-risk decomposition it implies.

Every function takes ``loss`` as a spec string (``"gce:q=0.7"``, see :mod:`noisyloss.registry`),
a loss Module with a functional form (``noisyloss.GCELoss(q=0.7)``) or a callable
``f(logits, target, reduction=...)``, and evaluates the real loss in float64;
gradients come from autograd through that very function, never from a hand-written formula.

Symmetric losses (Ghosh et al., 2017): if :math:`\sum_{k=1}^{C} L(f(x), k) = K` for all :math:`f(x)`,
then under symmetric noise of rate :math:`\eta` (label flipped to each other class with prob.
:math:`\eta/(C-1)`) the noisy risk is

.. math:: R_\eta(f) = \Bigl(1 - \tfrac{\eta C}{C-1}\Bigr) R(f) + \tfrac{\eta}{C-1} K,

an increasing affine function of the clean risk when :math:`\eta < (C-1)/C`: both have the same
minimiser.
"""
from __future__ import annotations

import functools
from typing import Callable, Dict, NamedTuple, Optional, Union

import numpy as np
import torch
from torch import Tensor

from ._checks import check_float_tensor, check_generator, check_int, check_labels, check_param
from .functional import apl
from .losses import ActivePassiveLoss, FunctionalLoss
from .noise import corrupt, symmetric
from .registry import functional_loss

__all__ = ["LossCurve", "SymmetryResult", "logits_for_py", "loss_vs_py", "symmetry_check", "AsymmetryResult",
           "asymmetry_check", "noisy_risk_decomposition", "gradient_weight", "label_probs", "SimplexFlow",
           "simplex_points", "simplex_flow"]

LossLike = Union[str, FunctionalLoss, ActivePassiveLoss, Callable[..., Tensor]]

#: standard deviation of the random logits used by :func:`symmetry_check` and the risk decomposition
_SCALE = 4.0


def _resolve(loss: LossLike) -> Callable[..., Tensor]:
    """A spec string becomes its functional form, a loss Module its function with the Module's
    parameters (``make_loss("apl:...")``: both of its losses'); another callable is used as is."""
    if isinstance(loss, str):
        return functional_loss(loss)
    if isinstance(loss, FunctionalLoss):
        return functools.partial(type(loss).fn, **loss.params)
    if isinstance(loss, ActivePassiveLoss):
        return functools.partial(apl, active=_resolve(loss.active), passive=_resolve(loss.passive),
                                 alpha=loss.alpha, beta=loss.beta)
    if getattr(loss, "needs_index", False) or hasattr(loss, "next_epoch"):
        raise TypeError(f"loss must be a function of the logits and labels alone; {type(loss).__name__} keeps "
                        "per-sample or per-epoch state (the training-loop protocol of noisyloss.losses)")
    if callable(loss):
        return loss
    raise TypeError(f"loss must be a spec string like 'gce:q=0.7', a loss Module with a functional form "
                    f"(noisyloss.GCELoss(q=0.7)) or a callable f(logits, target, reduction=...), "
                    f"got {type(loss).__name__}")


def _per_sample(fn: Callable[..., Tensor], logits: Tensor, target: Tensor) -> Tensor:
    out = fn(logits, target, reduction="none")
    if not isinstance(out, Tensor) or out.shape != target.shape:
        raise ValueError(f"loss with reduction='none' must return shape {tuple(target.shape)}, "
                         f"got {getattr(out, 'shape', type(out).__name__)}")
    return out


def _random_logits(n: int, num_classes: int, scale: float, generator: Optional[torch.Generator]) -> Tensor:
    return scale * torch.randn(n, num_classes, dtype=torch.float64, generator=generator)


def logits_for_py(p_y: Union[float, np.ndarray, Tensor], num_classes: int, target: int = 0) -> Tensor:
    r"""Logits ``(n, C)`` float64 whose softmax puts :math:`p_y` on class ``target`` and
    :math:`(1-p_y)/(C-1)` on every other class: :math:`z_y = \log p_y`,
    :math:`z_k = \log\frac{1-p_y}{C-1}`.  ``p_y`` (scalar or 1-D) must lie in (0, 1)."""
    C = check_int("num_classes", num_classes, 2)
    target = check_int("target", target, 0)
    if target >= C:
        raise ValueError(f"target must be in [0, {C - 1}], got {target}")
    p = torch.as_tensor(p_y, dtype=torch.float64).detach().cpu().reshape(-1)
    if p.numel() == 0 or not bool(((p > 0) & (p < 1)).all()):
        raise ValueError("p_y must be a non-empty array of probabilities in the open interval (0, 1)")
    logits = (torch.log1p(-p) - np.log(C - 1)).unsqueeze(1).repeat(1, C)
    logits[:, target] = torch.log(p)
    return logits


class LossCurve(NamedTuple):
    """Loss, :math:`\\partial L/\\partial z_y` and :math:`\\lVert\\partial L/\\partial z\\rVert_2` along ``p_y``."""

    p_y: np.ndarray
    loss: np.ndarray
    grad_y: np.ndarray
    grad_norm: np.ndarray


def loss_vs_py(loss: LossLike, p_y: Union[float, np.ndarray, Tensor], num_classes: int = 10) -> LossCurve:
    r"""The loss and its logit gradient at the points :func:`logits_for_py` (target class 0).

    All points are evaluated as one batch (``reduction="none"``) and differentiated by autograd
    through the sum of the per-sample losses.  For a loss that couples the samples of a batch
    (peer loss pairs each sample with a random other one) the values are those of that batch.
    """
    fn = _resolve(loss)
    logits = logits_for_py(p_y, num_classes).requires_grad_(True)
    target = torch.zeros(logits.shape[0], dtype=torch.long)
    values = _per_sample(fn, logits, target)
    (grad,) = torch.autograd.grad(values.sum(), logits)
    return LossCurve(
        p_y=torch.as_tensor(p_y, dtype=torch.float64).detach().cpu().reshape(-1).numpy(),
        loss=values.detach().numpy(),
        grad_y=grad[:, 0].numpy(),
        grad_norm=grad.norm(dim=1).numpy(),
    )


class SymmetryResult(NamedTuple):
    """Per-sample sums :math:`\\sum_k L(f(x), k)`, their mean and their spread (max - min)."""

    sums: np.ndarray
    mean: float
    spread: float

    def is_symmetric(self, tol: float = 1e-4) -> bool:
        """True when the sums are constant up to ``tol`` (absolute)."""
        return self.spread <= tol


def _class_sums(fn: Callable[..., Tensor], logits: Tensor) -> Tensor:
    r""":math:`\sum_k L(f(x_n), k)` for each row of ``logits``."""
    n, C = logits.shape
    return sum(_per_sample(fn, logits, torch.full((n,), k, dtype=torch.long)) for k in range(C))


def symmetry_check(
    loss: LossLike,
    num_classes: int = 10,
    n: int = 2000,
    scale: float = _SCALE,
    generator: Optional[torch.Generator] = None,
) -> SymmetryResult:
    r"""Evaluate :math:`\sum_{k=1}^{C} L(f(x), k)` on ``n`` random logits :math:`z \sim \mathcal N(0, \text{scale}^2)`.

    A symmetric loss (MAE: :math:`C-1`, RCE: :math:`-A(C-1)`, NCE: 1) gives the same sum for every
    :math:`z`, i.e. spread ≈ 0; CE, focal and GCE with :math:`q < 1` do not.
    """
    fn = _resolve(loss)
    C = check_int("num_classes", num_classes, 2)
    n = check_int("n", n, 1)
    scale = check_param("scale", scale, low=0.0, low_open=True)
    generator = check_generator(generator)
    with torch.no_grad():
        sums = _class_sums(fn, _random_logits(n, C, scale, generator))
    return SymmetryResult(sums.numpy(), float(sums.mean()), float(sums.max() - sums.min()))


class AsymmetryResult(NamedTuple):
    r"""The asymmetry ratio :math:`r(\ell)` of a loss of :math:`p_y` alone, and the largest symmetric
    noise rate :math:`\eta` under which it is asymmetric with ``num_classes`` classes."""

    ratio: float
    max_symmetric_noise: float

    def is_completely_asymmetric(self, tol: float = 1e-9) -> bool:
        r"""True when :math:`r \ge 1`: asymmetric for every weighting with a unique largest weight."""
        return self.ratio >= 1.0 - tol


def _loss_of_py(fn: Callable[..., Tensor], p_y: Tensor, num_classes: int, rest: Tensor) -> Tensor:
    """The loss of target 0 at probabilities ``(p_y, (1 - p_y) rest)``, ``rest`` summing to 1 (log 0 = -inf)."""
    p = torch.cat([p_y.unsqueeze(1), (1.0 - p_y).unsqueeze(1) * rest], dim=1)
    return _per_sample(fn, p.log(), torch.zeros(len(p_y), dtype=torch.long))


def asymmetry_check(loss: LossLike, num_classes: int = 10, steps: int = 100) -> AsymmetryResult:
    r"""The asymmetry ratio of Zhou et al. (2021, "Asymmetric loss functions for learning with noisy
    labels") of a loss :math:`L(u, k) = \ell(u_k)` that depends on the probability of the label alone:

    .. math:: r(\ell) = \inf \frac{\ell(u_i) - \ell(u_i + \Delta)}{\ell(u_j - \Delta) - \ell(u_j)}
        \quad\text{over } 0 < \Delta \le u_j < u_i,\; u_i + u_j \le 1,

    what moving :math:`\Delta` of probability from a class :math:`j` to a likelier class :math:`i`
    gains, relative to what it costs.  :math:`L` is asymmetric on weights :math:`w` whose largest is
    :math:`w_y` (the clean label's share, so the minimiser of :math:`\sum_k w_k \ell(u_k)` is
    :math:`e_y`) when :math:`\max_{i \ne y} w_i / w_y \le r(\ell)`; under symmetric noise of rate
    :math:`\eta` that ratio is :math:`\eta / ((C - 1)(1 - \eta))`.  A concave :math:`\ell`
    (MAE, AGCE with :math:`q \ge 1`, AUL with :math:`q \le 1`) has :math:`r = 1`, "completely
    asymmetric"; a convex one has :math:`r = |\ell'(1)| / |\ell'(0)|` (AEL :math:`e^{-1/a}`, CE 0).

    :math:`\ell(u)` is the real loss at target 0 with the rest of the probability spread evenly, on
    the grid :math:`u = 0, 1/\text{steps}, \dots, 1` (so the infimum is a minimum over the grid, where
    :math:`u_j < u_i` by at least one step: a strictly concave :math:`\ell` gets a ratio a little above
    its :math:`r = 1`, AGCE with ``a=1, q=2`` 1.013 at 100 steps); it must be strictly decreasing there,
    and the same with the rest spread unevenly (a loss of :math:`p_y` alone), else ``ValueError``.
    Returns the ratio and
    :math:`\eta^* = \min\big(\frac{r (C-1)}{1 + r (C-1)}, \frac{C-1}{C}\big)`.
    """
    fn = _resolve(loss)
    C = check_int("num_classes", num_classes, 2)
    m = check_int("steps", steps, 3)
    u = torch.linspace(0.0, 1.0, m + 1, dtype=torch.float64)
    with torch.no_grad():
        ell = _loss_of_py(fn, u, C, torch.full((C - 1,), 1.0 / (C - 1), dtype=torch.float64))
        uneven = torch.arange(1, C, dtype=torch.float64)
        other = _loss_of_py(fn, u, C, uneven / uneven.sum())
    if not bool(torch.isclose(ell, other, rtol=1e-9, atol=1e-12, equal_nan=True).all()):
        raise ValueError("the asymmetry ratio is defined for losses of p_y alone; this loss depends on "
                         "how the other classes share 1 - p_y")
    if not bool((ell[1:] < ell[:-1]).all()):
        raise ValueError(f"the loss must decrease strictly in p_y on the grid of {m} steps, got {ell.tolist()}")
    i, j = torch.arange(m + 1).unsqueeze(1), torch.arange(m + 1)  # receiver u_i = i/m, donor u_j = j/m
    ratios = []
    for d in range(1, (m - 1) // 2 + 1):  # Delta = d/m <= u_j < u_i with u_i + u_j <= 1
        ok = (d <= j) & (j < i) & (i + j <= m)
        gain = ell[i] - ell[(i + d).clamp(max=m)]
        cost = ell[(j - d).clamp(min=0)] - ell[j]
        ratios.append((gain / cost)[ok].min())
    ratio = float(torch.stack(ratios).min())
    r = (C - 1) * ratio
    return AsymmetryResult(ratio, min(r / (1.0 + r), (C - 1) / C))


def noisy_risk_decomposition(
    loss: LossLike, eta: float, n: int = 4000, generator: Optional[torch.Generator] = None
) -> Dict[str, float]:
    r"""Check :math:`R_\eta(f) = (1-2\eta) R(f) + \eta\,\overline{\sum_k L(f(x), k)}` for binary
    symmetric noise.

    Draws ``n`` random logits ``(n, 2)``, clean labels from the model's own predictive distribution
    :math:`y_n \sim \mathrm{softmax}(z_n)` (a calibrated classifier, so the clean risk is small),
    flips each label with probability ``eta`` (:func:`noisyloss.noise.corrupt`) and returns

    * ``clean_risk``: mean loss on the clean labels, :math:`R(f)`;
    * ``noisy_risk``: mean loss on the flipped labels, :math:`R_\eta(f)` (a sample: it agrees with
      the prediction up to sampling error :math:`O(n^{-1/2})`);
    * ``predicted``: :math:`(1-2\eta) R(f) + \eta \cdot \text{mean}_n \sum_k L(f(x_n), k)`;
    * ``constant_spread``: max - min over the samples of :math:`\sum_k L(f(x_n), k)` — zero for a
      symmetric loss, whose noisy risk is then an affine function of the clean risk alone.
    """
    fn = _resolve(loss)
    eta = check_param("eta", eta, low=0.0, high=1.0)
    n = check_int("n", n, 1)
    generator = check_generator(generator)
    with torch.no_grad():
        logits = _random_logits(n, 2, _SCALE, generator)
        clean = torch.multinomial(logits.softmax(dim=1), 1, generator=generator).squeeze(1)
        noisy = corrupt(clean, symmetric(2, eta), generator=generator).labels
        clean_risk = float(_per_sample(fn, logits, clean).mean())
        noisy_risk = float(_per_sample(fn, logits, noisy).mean())
        sums = _class_sums(fn, logits)
    return {
        "clean_risk": clean_risk,
        "noisy_risk": noisy_risk,
        "predicted": (1.0 - 2.0 * eta) * clean_risk + eta * float(sums.mean()),
        "constant_spread": float(sums.max() - sums.min()),
    }


# ---- how hard a loss pulls on a sample: gradient weight, per-sample p_y, flows on the 3-class simplex ----
def gradient_weight(loss: LossLike, p_y: Union[float, np.ndarray, Tensor], num_classes: int = 10) -> np.ndarray:
    r"""The loss's pull on the labelled class relative to cross entropy's,
    :math:`w(p_y) = \frac{\partial L/\partial z_y}{\partial \mathrm{CE}/\partial z_y}
    = \frac{\partial L/\partial z_y}{p_y - 1}`,
    at the points of :func:`logits_for_py` (autograd through the loss, :func:`loss_vs_py`).

    CE: 1; MAE: :math:`p_y`; GCE: :math:`p_y^q`; SCE: :math:`\alpha + \beta|A|\,p_y`; truncated GCE: 0
    where :math:`p_y \le k`.  A sample whose label the model finds unlikely (small :math:`p_y`, e.g. a
    wrong label, or any label at the start with many classes) is pulled with weight :math:`w(p_y)`.
    """
    curve = loss_vs_py(loss, p_y, num_classes)
    return curve.grad_y / (curve.p_y - 1.0)


def label_probs(logits: Tensor, labels: Tensor) -> Tensor:
    r""":math:`p_{y_n}`, the softmax probability that row ``n`` of ``logits`` ``(N, C)`` gives its label
    ``labels[n]`` (integer class indices in ``[0, C)``), as float32 ``(N,)``."""
    labels = check_labels("labels", labels)
    check_float_tensor("logits", logits)
    if logits.ndim != 2 or labels.shape != logits.shape[:1]:
        raise ValueError(f"logits must be (N, C) and labels (N,), got {tuple(logits.shape)} and {tuple(labels.shape)}")
    labels = check_labels("labels", labels, logits.shape[1])
    return logits.float().softmax(dim=1).gather(1, labels.to(logits.device).view(-1, 1)).squeeze(1)


class SimplexFlow(NamedTuple):
    r"""Points ``p`` ``(n, 3)`` of the probability simplex and, at each, the change ``dp`` ``(n, 3)`` of
    the prediction under one gradient step on the logits, :math:`dp = J\,(-\nabla_z L)` with the softmax
    Jacobian :math:`J = \mathrm{diag}(p) - p p^\top`, and that gradient ``grad_z`` ``(n, 3)``."""

    p: np.ndarray
    dp: np.ndarray
    grad_z: np.ndarray


def simplex_points(steps: int) -> np.ndarray:
    """The interior points ``(i, j, k) / steps`` (``i + j + k = steps``, all ``>= 1``) of the 3-class
    probability simplex, ``((steps - 1)(steps - 2)/2, 3)`` float64."""
    steps = check_int("steps", steps, 3)
    return np.array([(i, j, steps - i - j) for i in range(1, steps) for j in range(1, steps - i)],
                    dtype=np.float64) / steps


def simplex_flow(loss: LossLike, label: int = 0, steps: int = 12) -> SimplexFlow:
    r"""Where one gradient step of ``loss`` moves a 3-class prediction, at every point of
    :func:`simplex_points` (logits :math:`z = \log p`, target ``label``).

    For a loss of :math:`p_y` alone (CE, MAE, GCE, RCE, SCE) :math:`\nabla_z L = w(p_y)\,(p - e_y)`:
    every arrow points along the same curve towards the corner of the label and the losses differ only
    in the arrows' lengths; NCE depends on the other probabilities too, and its arrows turn.
    """
    fn = _resolve(loss)
    label = check_int("label", label, 0)
    if label > 2:
        raise ValueError(f"label must be 0, 1 or 2 on the 3-class simplex, got {label}")
    p = torch.from_numpy(simplex_points(steps))
    z = p.log().requires_grad_(True)
    values = _per_sample(fn, z, torch.full((len(p),), label, dtype=torch.long))
    (grad,) = torch.autograd.grad(values.sum(), z)
    jac = torch.diag_embed(p) - p.unsqueeze(2) * p.unsqueeze(1)
    dp = torch.einsum("nij,nj->ni", jac, -grad)
    return SimplexFlow(p.numpy(), dp.detach().numpy(), grad.numpy())
