r"""Noise-robust classification losses as pure functions.

Every loss follows :mod:`torch.nn.functional` conventions::

    loss = NAME(logits, target, *, <params>, reduction="mean")

* ``logits``: ``(N, C)`` floating tensor (float32/float64/bfloat16/float16, CPU or CUDA), ``C >= 2``.
* ``target``: ``(N,)`` integer tensor of class indices in ``[0, C)``.
* ``reduction``: ``"mean"`` | ``"sum"`` | ``"none"`` (per-sample losses, shape ``(N,)``).

All losses are computed from ``log_softmax`` and gather the true-class term, so they are exact in
log space and never produce NaN/Inf for finite logits, even at ``|logit| ~ 1e4``.  Half-precision
inputs (bf16/fp16) are computed and returned in float32; float64 stays float64.

Notation: :math:`p = \mathrm{softmax}(z)`, :math:`p_y` the probability of the labelled class.
"""
from __future__ import annotations

import math
import numbers
from typing import Callable, Dict, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "cross_entropy",
    "mae",
    "gce",
    "rce",
    "sce",
    "nce",
    "nce_rce",
    "focal",
    "bootstrap",
    "peer",
    "negative_learning",
    "check_param",
]

REDUCTIONS = ("mean", "sum", "none")
_HALF = (torch.float16, torch.bfloat16)


# --------------------------------------------------------------------------------------------
# validation helpers
# --------------------------------------------------------------------------------------------
def check_param(
    name: str,
    value: object,
    *,
    low: Optional[float] = None,
    high: Optional[float] = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """Check that a scalar hyper-parameter is a finite real number in an interval.

    Raises ``TypeError`` for non-numbers and ``ValueError`` naming ``name`` and the allowed range
    otherwise.  Returns the value as ``float``.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        if isinstance(value, Tensor) and value.numel() == 1 and not value.requires_grad:
            value = value.item()
        else:
            raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    lo = "-inf" if low is None else f"{low:g}"
    hi = "inf" if high is None else f"{high:g}"
    interval = f"{'(' if low_open or low is None else '['}{lo}, {hi}{')' if high_open or high is None else ']'}"
    bad = not math.isfinite(value)
    if low is not None:
        bad |= value <= low if low_open else value < low
    if high is not None:
        bad |= value >= high if high_open else value > high
    if bad:
        raise ValueError(f"{name} must be in {interval}, got {value:g}")
    return value


def _check_reduction(reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")


def check_inputs(logits: Tensor, target: Tensor) -> Tensor:
    """Validate ``(logits, target)`` and return ``target`` as int64 (no copy when already int64)."""
    if not isinstance(logits, Tensor):
        raise TypeError(f"logits must be a torch.Tensor, got {type(logits).__name__}")
    if not isinstance(target, Tensor):
        raise TypeError(f"target must be a torch.Tensor, got {type(target).__name__}")
    if not logits.is_floating_point():
        raise TypeError(f"logits must be a floating tensor, got dtype {logits.dtype}")
    if logits.dim() != 2 or logits.shape[1] < 2:
        raise ValueError(f"logits must have shape (N, C) with C >= 2, got {tuple(logits.shape)}")
    if target.is_floating_point() or target.is_complex() or target.dtype == torch.bool:
        raise TypeError(f"target must be an integer tensor of class indices, got dtype {target.dtype}")
    if target.dim() != 1 or target.shape[0] != logits.shape[0]:
        raise ValueError(
            f"target must have shape (N,) = ({logits.shape[0]},) to match logits, got {tuple(target.shape)}"
        )
    if target.device != logits.device:
        raise ValueError(f"target is on {target.device} but logits are on {logits.device}")
    num_classes = logits.shape[1]
    if target.numel() and bool(((target < 0) | (target >= num_classes)).any()):
        bad = target[(target < 0) | (target >= num_classes)][0].item()
        raise ValueError(f"target values must be in [0, {num_classes - 1}] (C={num_classes}), found {bad}")
    return target.long()


def _prepare(logits: Tensor, target: Tensor, reduction: str) -> Tuple[Tensor, Tensor]:
    """Validate, upcast half precision to float32 and return ``(log_softmax, target)``."""
    _check_reduction(reduction)
    target = check_inputs(logits, target)
    x = logits.float() if logits.dtype in _HALF else logits
    return F.log_softmax(x, dim=1), target


def _gather(log_p: Tensor, target: Tensor) -> Tensor:
    return log_p.gather(1, target.unsqueeze(1)).squeeze(1)


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


# --------------------------------------------------------------------------------------------
# losses
# --------------------------------------------------------------------------------------------
def cross_entropy(
    logits: Tensor, target: Tensor, *, label_smoothing: float = 0.0, reduction: str = "mean"
) -> Tensor:
    r"""Cross entropy :math:`-\log p_y`, optionally with label smoothing ε.

    With smoothing the target is :math:`(1-\varepsilon)e_y + \varepsilon/C` (Szegedy et al., 2016);
    this is :func:`torch.nn.functional.cross_entropy` with validated inputs.
    """
    eps = check_param("label_smoothing", label_smoothing, low=0.0, high=1.0)
    _check_reduction(reduction)
    target = check_inputs(logits, target)
    x = logits.float() if logits.dtype in _HALF else logits
    return F.cross_entropy(x, target, label_smoothing=eps, reduction=reduction)


def mae(logits: Tensor, target: Tensor, *, reduction: str = "mean") -> Tensor:
    r"""Mean absolute error on probabilities, :math:`1 - p_y` (Ghosh et al., 2017).

    The L1 distance :math:`\lVert e_y - p\rVert_1 = 2(1 - p_y)` is twice this value; with this
    convention ``gce(q=1) == mae`` exactly.  Symmetric: :math:`\sum_k L(f(x), k) = C - 1`.
    """
    log_p, target = _prepare(logits, target, reduction)
    return _reduce(-torch.expm1(_gather(log_p, target)), reduction)


def gce(
    logits: Tensor, target: Tensor, *, q: float = 0.7, k: Optional[float] = None, reduction: str = "mean"
) -> Tensor:
    r"""Generalized cross entropy :math:`(1 - p_y^q)/q` (Zhang & Sabuncu, 2018).

    ``q -> 0`` gives CE, ``q = 1`` gives MAE.  Computed as ``-expm1(q log p_y)/q`` which is exact for
    tiny ``q``.  With truncation ``k`` (truncated GCE, :math:`L_{trunc}`), samples with
    :math:`p_y \le k` get the constant :math:`(1-k^q)/q` and hence no gradient.
    """
    q = check_param("q", q, low=0.0, high=1.0, low_open=True)
    log_p, target = _prepare(logits, target, reduction)
    log_py = _gather(log_p, target)
    loss = -torch.expm1(q * log_py) / q
    if k is not None:
        k = check_param("k", k, low=0.0, high=1.0, low_open=True, high_open=True)
        const = -math.expm1(q * math.log(k)) / q
        loss = torch.where(log_py <= math.log(k), torch.full_like(loss, const), loss)
    return _reduce(loss, reduction)


def rce(logits: Tensor, target: Tensor, *, A: float = -4.0, reduction: str = "mean") -> Tensor:
    r"""Reverse cross entropy :math:`-\sum_k p_k \log q_k` with the label distribution q one-hot and
    :math:`\log 0 := A` (Wang et al., 2019), which equals :math:`-A(1 - p_y)`.

    Symmetric: :math:`\sum_k L(f(x), k) = -A(C - 1)`.  ``A = -2`` gives the L1 distance
    :math:`\lVert e_y - p\rVert_1`.
    """
    A = check_param("A", A, high=0.0, high_open=True)
    log_p, target = _prepare(logits, target, reduction)
    return _reduce(A * torch.expm1(_gather(log_p, target)), reduction)


def _active_plus_rce(
    active: Callable[[Tensor, Tensor], Tensor],
    logits: Tensor,
    target: Tensor,
    alpha: float,
    beta: float,
    A: float,
    reduction: str,
) -> Tensor:
    r""":math:`\alpha\cdot` active(log p, log p_y) :math:`+ \beta\cdot\mathrm{RCE}` with validated weights."""
    alpha = check_param("alpha", alpha, low=0.0)
    beta = check_param("beta", beta, low=0.0)
    A = check_param("A", A, high=0.0, high_open=True)
    log_p, target = _prepare(logits, target, reduction)
    log_py = _gather(log_p, target)
    return _reduce(alpha * active(log_p, log_py) + beta * A * torch.expm1(log_py), reduction)


def sce(
    logits: Tensor,
    target: Tensor,
    *,
    alpha: float = 0.1,
    beta: float = 1.0,
    A: float = -4.0,
    reduction: str = "mean",
) -> Tensor:
    r"""Symmetric cross entropy :math:`\alpha\,\mathrm{CE} + \beta\,\mathrm{RCE}` (Wang et al., 2019)."""
    return _active_plus_rce(lambda log_p, log_py: -log_py, logits, target, alpha, beta, A, reduction)


def _nce(log_p: Tensor, log_py: Tensor) -> Tensor:
    # log p_y / sum_k log p_k; the denominator is < 0 for C >= 2 and finite for finite logits.
    return log_py / log_p.sum(dim=1)


def nce(logits: Tensor, target: Tensor, *, reduction: str = "mean") -> Tensor:
    r"""Normalized cross entropy :math:`\log p_y / \sum_k \log p_k` (Ma et al., 2020).

    Values in [0, 1]; symmetric: :math:`\sum_k L(f(x), k) = 1`.
    """
    log_p, target = _prepare(logits, target, reduction)
    return _reduce(_nce(log_p, _gather(log_p, target)), reduction)


def nce_rce(
    logits: Tensor,
    target: Tensor,
    *,
    alpha: float = 1.0,
    beta: float = 1.0,
    A: float = -4.0,
    reduction: str = "mean",
) -> Tensor:
    r"""Active-passive loss :math:`\alpha\,\mathrm{NCE} + \beta\,\mathrm{RCE}` (Ma et al., 2020)."""
    return _active_plus_rce(_nce, logits, target, alpha, beta, A, reduction)


def focal(logits: Tensor, target: Tensor, *, gamma: float = 2.0, reduction: str = "mean") -> Tensor:
    r"""Focal loss :math:`-(1 - p_y)^\gamma \log p_y` (Lin et al., 2017); ``gamma = 0`` is CE.

    ``1 - p_y`` is computed as ``-expm1(log p_y)``.  For ``0 < gamma < 1`` the base is kept above the
    smallest normal float so that the gradient stays finite when :math:`p_y` rounds to 1.
    """
    gamma = check_param("gamma", gamma, low=0.0)
    log_p, target = _prepare(logits, target, reduction)
    log_py = _gather(log_p, target)
    one_minus = -torch.expm1(log_py)
    if 0.0 < gamma < 1.0:
        one_minus = one_minus.clamp_min(torch.finfo(one_minus.dtype).tiny)
    return _reduce(-one_minus.pow(gamma) * log_py, reduction)


def bootstrap(
    logits: Tensor, target: Tensor, *, beta: float = 0.95, hard: bool = False, reduction: str = "mean"
) -> Tensor:
    r"""Bootstrapping loss :math:`-\sum_k (\beta y_k + (1-\beta) t_k) \log p_k` (Reed et al., 2015).

    Soft: :math:`t = p`, hard: :math:`t = e_{\arg\max p}` (no gradient through the argmax).
    ``beta = 1`` is CE.  The soft target is deliberately *not* detached: with a detached
    :math:`t = p` the gradient of :math:`-\sum_k t_k \log p_k` is :math:`p - t = 0`, and soft
    bootstrapping would collapse to :math:`\beta\,\mathrm{CE}`.  Not detached, the self term is the
    entropy :math:`H(p)`, i.e. Reed et al.'s "minimum entropy regularisation".
    """
    beta = check_param("beta", beta, low=0.0, high=1.0)
    if not isinstance(hard, bool):
        raise TypeError(f"hard must be a bool, got {type(hard).__name__}")
    log_p, target = _prepare(logits, target, reduction)
    if hard:
        # log p at the argmax (amax: 10x faster than max/argmax on CPU; a tie would split the gradient)
        own = log_p.amax(dim=1)
    else:
        own = (log_p.exp() * log_p).sum(dim=1)
    return _reduce(-beta * _gather(log_p, target) - (1.0 - beta) * own, reduction)


def _permutation(n: int, device: torch.device, generator: Optional[torch.Generator]) -> Tensor:
    gen_device = generator.device if generator is not None else device
    return torch.randperm(n, generator=generator, device=gen_device).to(device)


#: per-sample base losses of peer loss, as functions of log p_y
_PEER_BASES: Dict[str, Callable[[Tensor], Tensor]] = {
    "ce": lambda log_py: -log_py,
    "mae": lambda log_py: -torch.expm1(log_py),
}


def peer(
    logits: Tensor,
    target: Tensor,
    *,
    alpha: float = 0.5,
    base: Union[str, Callable[..., Tensor]] = "ce",
    generator: Optional[torch.Generator] = None,
    reduction: str = "mean",
) -> Tensor:
    r"""Peer loss :math:`\ell(f(x_i), y_i) - \alpha\,\ell(f(x_j), y_k)` (Liu & Guo, 2020).

    ``j`` and ``k`` are two independent random permutations of the batch (the "peer" sample pairs a
    prediction with an unrelated label).  ``base`` is ``"ce"``, ``"mae"`` or a callable
    ``base(logits, target, reduction="none")``.  Pass a ``generator`` for reproducibility.
    """
    alpha = check_param("alpha", alpha, low=0.0)
    if isinstance(base, str) and base not in _PEER_BASES:
        raise ValueError(f"base must be one of {tuple(_PEER_BASES)} or a callable, got {base!r}")
    if not isinstance(base, str) and not callable(base):
        raise TypeError(f"base must be a str or callable, got {type(base).__name__}")
    _check_reduction(reduction)
    target = check_inputs(logits, target)
    n = logits.shape[0]
    j = _permutation(n, logits.device, generator)
    k = _permutation(n, logits.device, generator)
    if isinstance(base, str):
        x = logits.float() if logits.dtype in _HALF else logits
        log_p = F.log_softmax(x, dim=1)
        # One gather for both terms: row m's second column holds log p[m, y_k(i)] for the i with j_i = m.
        peer_target = torch.empty_like(target).index_copy_(0, j, target[k])
        both = log_p.gather(1, torch.stack((target, peer_target), dim=1))
        fn = _PEER_BASES[base]
        loss = fn(both[:, 0]) - alpha * fn(both[:, 1])[j]
    else:
        loss = base(logits, target, reduction="none") - alpha * base(logits[j], target[k], reduction="none")
    return _reduce(loss, reduction)


def negative_learning(
    logits: Tensor,
    target: Tensor,
    *,
    generator: Optional[torch.Generator] = None,
    reduction: str = "mean",
) -> Tensor:
    r"""Negative learning :math:`-\log(1 - p_{\bar y})` with a complementary label :math:`\bar y`
    drawn uniformly from the classes other than ``y`` (Kim et al., 2019, NLNL).

    Computed as ``-log(-expm1(log p_ybar))``.  Where :math:`p_{\bar y} > 0.999` the rounding inside
    ``log_softmax`` would dominate (and give ``log 0`` once :math:`p_{\bar y}` rounds to 1), so those
    rows use the exact form :math:`\mathrm{logsumexp}_k z_k - \mathrm{logsumexp}_{k \ne \bar y} z_k`.
    """
    log_p, target = _prepare(logits, target, reduction)
    n, c = log_p.shape
    gen_device = generator.device if generator is not None else log_p.device
    shift = torch.randint(1, c, (n,), generator=generator, device=gen_device).to(log_p.device)
    comp = (target + shift) % c
    log_pbar = _gather(log_p, comp)
    risky = log_pbar > math.log(0.999)
    loss = -torch.log(-torch.expm1(torch.where(risky, torch.full_like(log_pbar, -1.0), log_pbar)))
    if bool(risky.any()):
        rows = risky.nonzero().squeeze(1)
        x = logits[rows].to(log_p.dtype)
        others = x.scatter(1, comp[rows].unsqueeze(1), float("-inf"))
        loss = loss.index_put((rows,), torch.logsumexp(x, dim=1) - torch.logsumexp(others, dim=1))
    return _reduce(loss, reduction)
