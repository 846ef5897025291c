r"""Noise-robust classification losses as short pure functions.

Every loss follows :mod:`torch.nn.functional` conventions::

    loss = NAME(logits, target, *, <params>, reduction="mean")

* ``logits``: ``(N, C)`` floating tensor, ``C >= 2``; float32 and float64 are computed as they are,
  bfloat16 and float16 in float32 (and returned as float32).
* ``target``: ``(N,)`` integer tensor of class indices in ``[0, C)``.
* ``reduction``: ``"mean"`` | ``"sum"`` | ``"none"`` (per-sample losses, shape ``(N,)``).

Each loss reads the same way: validate the arguments, take ``F.log_softmax`` of the logits, gather
:math:`\log p_y` at the target, apply the formula, reduce.  A loss with parameters checks them
with its ``<name>_params`` function, defined just above it; the loss's Module
(:class:`noisyloss.losses.FunctionalLoss`) runs the same check when it is built.

**Exact at the extremes.** Working with :math:`\log p` rather than :math:`p` keeps every loss
exact where :math:`p_y` is tiny or close to 1: :math:`1 - p^q` is ``-expm1(q log p)``,
:math:`\log(1 - p)` is a ``logsumexp`` over the other classes.  The logits enter through
:func:`clamp_logits`, which bounds them by :math:`\pm\sqrt{\max}` of the computation dtype
(float32, and so bfloat16 and float16: ±1.8e19), far beyond any logit that changes a float32
probability.  Hence no loss gives NaN or Inf, in its value or its gradient, for any logits but NaN:
finite logits up to ±3.4e38 and ±inf included.  Beyond the bound a logit counts as the bound, with
zero gradient.  Where a formula's exact value is infinite, the loss returns the finite value at the
bound: label smoothing with a −inf logit (:math:`-\frac{\varepsilon}{C}\log 0`) is about
:math:`\frac{\varepsilon}{C}\,1.8\cdot 10^{19}`.
The one NaN left is the mean over an empty batch (``N = 0``), :math:`0/0`, as in
:func:`torch.nn.functional.cross_entropy`; its sum is 0.

Notation: :math:`p = \mathrm{softmax}(z)` for the logits :math:`z` of one sample, :math:`p_y` the
probability of its labelled class :math:`y`, :math:`e_y` the one-hot vector of :math:`y`.

**torch.compile.** Every loss is captured whole by ``torch.compile(fullgraph=True)`` and gives the
eager values (``tests/test_functional.py``): no loss reads a tensor value on the host.  Hence the
check that targets lie in ``[0, C)`` (a host read) runs only in eager mode on CPU, where it raises
a ``ValueError`` naming the bad value.  On CUDA, and inside a compiled graph, it is skipped, as in
``F.cross_entropy``: an out-of-range target then trips ``gather``'s own bounds check (a device-side
assert on CUDA, an index error on CPU).  The random losses (:func:`peer`,
:func:`negative_learning`) compile too when they draw from torch's default generator; a
``torch.Generator`` argument cannot enter a graph, so with one ``fullgraph=True`` raises
``torch._dynamo.exc.Unsupported`` and a plain ``torch.compile`` breaks the graph at the draw.
Inductor may draw random numbers differently from eager mode;
``torch._inductor.config.fallback_random = True`` makes compiled and eager draws equal.
"""
from __future__ import annotations

import math
from typing import Callable, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor

from ._checks import (check_below_uniform, check_bool, check_callable, check_choice, check_float32_power,
                      check_generator, check_int, check_invertible, check_logits_target, check_param,
                      check_reduction)
from .noise import check_transition, make_transition

__all__ = [
    "REFERENCE_CODE_A",
    "GCE_MIN_Q",
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
    "reduce_loss",
    "clamp_logits",
    "forward_correction",
    "backward_correction",
    "nls",
    "poly1",
    "taylor",
    "nfl",
    "ngce",
    "nmae",
    "nrce",
    "apl",
    "agce",
    "aul",
    "ael",
    "nnce",
    "nnfl",
]

PEER_BASES = ("ce", "mae")
#: ``A = "code"``: the value the SCE and APL authors' code gives :math:`\log 0` by clamping the one-hot at 1e-4
REFERENCE_CODE_A = math.log(1e-4)
#: the smallest GCE ``q`` accepted: a value is at most ``1/q``, within :func:`clamp_logits`'s bound
GCE_MIN_Q = 1e-19


def clamp_logits(logits: Tensor) -> Tensor:
    r"""The logits every loss computes with: half precision (bfloat16, float16) upcast to float32,
    then clamped to :math:`\pm\sqrt{\text{largest float}}` of that dtype (float32: ±1.8e19).

    Then :math:`|\log p_k| \le 2\sqrt{\max} + \log C` (float32: 3.7e19), so a loss value stays
    finite times any weight, and summed over any batch or set of classes, below
    :math:`\sqrt{\max}/4` (float32: 4.6e18).  A
    larger or infinite logit counts as the bound, with zero gradient.  No float32 probability
    changes (every :math:`p_k` that rounds to 0 or 1 still does); a log-probability below about
    :math:`-2\sqrt{\max}` does, which only a loss weighing :math:`\log p_y` by a tiny factor
    notices (GCE at ``q`` near :data:`GCE_MIN_Q`).
    """
    z = logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits
    bound = math.sqrt(torch.finfo(z.dtype).max)
    return z.clamp(-bound, bound)


def _gather(log_p: Tensor, index: Tensor) -> Tensor:
    """``log_p[i, index[i]]`` for every row ``i``, shape ``(N,)``."""
    return log_p.gather(1, index.unsqueeze(1)).squeeze(1)


def reduce_loss(loss: Tensor, reduction: str) -> Tensor:
    """Per-sample losses ``(N,)`` reduced by ``reduction`` (checked: ``"mean"``, ``"sum"`` or ``"none"``)."""
    if check_reduction(reduction) == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def _device_of(generator: Optional[torch.Generator], logits: Tensor) -> torch.device:
    """Where a random draw happens: on the generator's device when one is given (then moved)."""
    return logits.device if generator is None else generator.device


def cross_entropy_params(label_smoothing: float) -> Tuple[float]:
    """:func:`cross_entropy`'s parameters, checked (its Module checks them with this at construction)."""
    return (check_param("label_smoothing", label_smoothing, low=0.0, high=1.0),)


def cross_entropy(
    logits: Tensor, target: Tensor, *, label_smoothing: float = 0.0, reduction: str = "mean"
) -> Tensor:
    r"""Cross entropy :math:`-\log p_y`, with label smoothing :math:`\varepsilon`:
    :math:`-\sum_k \big((1-\varepsilon)\,[k = y] + \varepsilon/C\big) \log p_k` (Szegedy et al., 2016).

    :func:`torch.nn.functional.cross_entropy` with validated arguments (half precision in float32).

    Args:
        label_smoothing: :math:`\varepsilon \in [0, 1]`.

    Example:
        >>> z, y = torch.tensor([[0.5, 0.25, 0.25]]).log(), torch.tensor([0])  # p = (1/2, 1/4, 1/4)
        >>> cross_entropy(z, y), cross_entropy(z, y, label_smoothing=0.3)  # ln 2 and 1.2 ln 2
        (tensor(0.6931), tensor(0.8318))
    """
    (eps,) = cross_entropy_params(label_smoothing)
    check_reduction(reduction)
    target = check_logits_target(logits, target)
    return F.cross_entropy(clamp_logits(logits), target, label_smoothing=eps, reduction=reduction)


def mae(logits: Tensor, target: Tensor, *, reduction: str = "mean") -> Tensor:
    r"""Mean absolute error on probabilities, :math:`1 - p_y` (Ghosh et al., 2017, "Robust loss
    functions under label noise for deep neural networks").

    The L1 distance :math:`\lVert e_y - p\rVert_1 = 2(1 - p_y)` is twice this value; with this
    convention ``gce(q=1) == mae``.  Symmetric: :math:`\sum_k L(f(x), k) = C - 1`.

    Example:
        >>> z, y = torch.tensor([[0.5, 0.25, 0.25]]).log(), torch.tensor([0])  # p = (1/2, 1/4, 1/4)
        >>> mae(z, y)
        tensor(0.5000)
    """
    check_reduction(reduction)
    target = check_logits_target(logits, target)
    log_py = _gather(F.log_softmax(clamp_logits(logits), dim=1), target)
    return reduce_loss(-torch.expm1(log_py), reduction)


def gce_params(q: float, k: Optional[float]) -> Tuple[float, Optional[float]]:
    """:func:`gce`'s parameters, checked."""
    q = check_param("q", q, low=GCE_MIN_Q, high=1.0)
    return q, None if k is None else check_param("k", k, low=0.0, high=1.0, low_open=True, high_open=True)


def gce(
    logits: Tensor, target: Tensor, *, q: float = 0.7, k: Optional[float] = None, reduction: str = "mean"
) -> Tensor:
    r"""Generalized cross entropy :math:`(1 - p_y^q)/q` (Zhang & Sabuncu, 2018, "Generalized cross
    entropy loss for training deep neural networks with noisy labels").

    Computed as :math:`-\mathrm{expm1}(q \log p_y)/q`, exact for tiny ``q`` (``q -> 0`` is CE) and
    for :math:`p_y = 0` (the value :math:`1/q`); ``q = 1`` is :func:`mae`.  With truncation
    ``k`` (:math:`L_{trunc}`) a sample with :math:`p_y \le k` gets the constant :math:`(1-k^q)/q`,
    hence no gradient.

    Args:
        q: in :math:`[10^{-19}, 1]` (:data:`GCE_MIN_Q`): the value is at most :math:`1/q`, so a
            smaller ``q`` could overflow float32 sums (at ``q = 1e-50``, ``1/q`` itself does); below
            about ``1e-7`` GCE already equals CE to float32 precision.
        k: ``None`` or the truncation threshold in :math:`(0, 1)`.

    Example:
        >>> z, y = torch.tensor([[0.5, 0.25, 0.25], [0.2, 0.4, 0.4]]).log(), torch.tensor([0, 0])
        >>> gce(z, y, q=0.5, reduction="none")  # (1 - sqrt(p_y)) / 0.5
        tensor([0.5858, 1.1056])
        >>> gce(z, y, q=0.5, k=0.3, reduction="none")  # p_y = 0.2 <= k: (1 - sqrt(0.3)) / 0.5
        tensor([0.5858, 0.9046])
    """
    q, k = gce_params(q, k)
    check_reduction(reduction)
    target = check_logits_target(logits, target)
    log_py = _gather(F.log_softmax(clamp_logits(logits), dim=1), target)
    loss = -torch.expm1(q * log_py) / q
    if k is not None:
        loss = torch.where(log_py <= math.log(k), -math.expm1(q * math.log(k)) / q, loss)
    return reduce_loss(loss, reduction)


def rce_params(A: Union[float, str]) -> Tuple[float]:
    """:func:`rce`'s parameter, checked: a negative number, or ``"code"`` for :data:`REFERENCE_CODE_A`."""
    if isinstance(A, str):
        check_choice("A", A, ("code",))
        return (REFERENCE_CODE_A,)
    return (check_param("A", A, high=0.0, high_open=True),)


def rce(logits: Tensor, target: Tensor, *, A: Union[float, str] = -4.0, reduction: str = "mean") -> Tensor:
    r"""Reverse cross entropy :math:`-\sum_k p_k \log q_k` with :math:`q = e_y` and :math:`\log 0 := A`
    (Wang et al., 2019, "Symmetric cross entropy for robust learning with noisy labels"), which is
    :math:`-A(1 - p_y)`.

    Symmetric: :math:`\sum_k L(f(x), k) = -A(C - 1)`.  ``A = -2`` is the L1 distance
    :math:`\lVert e_y - p\rVert_1`.  The paper states ``A = -4``; its code clamps the one-hot at
    ``1e-4``, which is ``A = ln 1e-4``.

    Args:
        A: the value given to :math:`\log 0`, negative, or ``"code"`` for :data:`REFERENCE_CODE_A`
            :math:`= \ln 10^{-4} \approx -9.21`, the authors' code's one-hot clamp (the spec ``rce:A=code``).

    Example:
        >>> z, y = torch.tensor([[0.5, 0.25, 0.25]]).log(), torch.tensor([0])  # p = (1/2, 1/4, 1/4)
        >>> rce(z, y, A=-4.0)
        tensor(2.)
    """
    (A,) = rce_params(A)
    check_reduction(reduction)
    target = check_logits_target(logits, target)
    log_py = _gather(F.log_softmax(clamp_logits(logits), dim=1), target)
    return reduce_loss(A * torch.expm1(log_py), reduction)


def sce_params(alpha: float, beta: float, A: Union[float, str]) -> Tuple[float, float, float]:
    """:func:`sce`'s and :func:`nce_rce`'s parameters, checked: two nonnegative weights and RCE's ``A``."""
    return check_param("alpha", alpha, low=0.0), check_param("beta", beta, low=0.0), *rce_params(A)


def sce(
    logits: Tensor,
    target: Tensor,
    *,
    alpha: float = 0.1,
    beta: float = 1.0,
    A: Union[float, str] = -4.0,
    reduction: str = "mean",
) -> Tensor:
    r"""Symmetric cross entropy :math:`\alpha\,\mathrm{CE} + \beta\,\mathrm{RCE}
    = -\alpha \log p_y - \beta A (1 - p_y)` (Wang et al., 2019).

    The paper's CIFAR settings (alpha, beta) come with its code's ``A``: ``A="code"``
    (:func:`noisyloss.registry.presets` ``sce_cifar10``, ``sce_cifar100``).

    Args:
        alpha, beta: nonnegative weights of CE and :func:`rce`.
        A: the value given to :math:`\log 0` in RCE, negative, or ``"code"`` (:func:`rce`).

    Example:
        >>> z, y = torch.tensor([[0.5, 0.25, 0.25]]).log(), torch.tensor([0])  # p = (1/2, 1/4, 1/4)
        >>> sce(z, y, alpha=0.1, beta=1.0, A=-4.0)  # 0.1 ln 2 + 4 (1 - 1/2)
        tensor(2.0693)
        >>> sce(z, y, alpha=0.1, beta=1.0, A="code")  # 0.1 ln 2 - ln(1e-4) (1 - 1/2)
        tensor(4.6745)
    """
    alpha, beta, A = sce_params(alpha, beta, A)
    check_reduction(reduction)
    target = check_logits_target(logits, target)
    log_py = _gather(F.log_softmax(clamp_logits(logits), dim=1), target)
    return reduce_loss(-alpha * log_py + beta * A * torch.expm1(log_py), reduction)


def nce(logits: Tensor, target: Tensor, *, reduction: str = "mean") -> Tensor:
    r"""Normalized cross entropy :math:`\log p_y / \sum_k \log p_k` (Ma et al., 2020, "Normalized
    loss functions for deep learning with noisy labels").

    Values in :math:`[0, 1]`; symmetric: :math:`\sum_k L(f(x), k) = 1`.  The denominator grows
    without bound as any :math:`p_k \to 0`, so NCE tends to 0 whatever :math:`p_y` when one
    non-target logit goes to :math:`-\infty`: a −inf logit gives about :math:`10^{-19}` and no gradient.

    Example:
        >>> z, y = torch.tensor([[0.5, 0.25, 0.25]]).log(), torch.tensor([0])  # p = (1/2, 1/4, 1/4)
        >>> nce(z, y)  # ln 2 / (ln 2 + 2 ln 4)
        tensor(0.2000)
    """
    check_reduction(reduction)
    target = check_logits_target(logits, target)
    log_p = F.log_softmax(clamp_logits(logits), dim=1)
    return reduce_loss(_gather(log_p, target) / log_p.sum(dim=1), reduction)


def nce_rce(
    logits: Tensor,
    target: Tensor,
    *,
    alpha: float = 1.0,
    beta: float = 1.0,
    A: Union[float, str] = -4.0,
    reduction: str = "mean",
) -> Tensor:
    r"""Active-passive loss :math:`\alpha\,\mathrm{NCE} + \beta\,\mathrm{RCE}
    = \alpha \log p_y / \sum_k \log p_k - \beta A (1 - p_y)` (Ma et al., 2020).

    The APL configs' settings come with their code's ``A``: ``A="code"``
    (:func:`noisyloss.registry.presets` ``nce_rce_cifar10``, ``nce_rce_cifar100``).

    Args:
        alpha, beta: nonnegative weights of :func:`nce` and :func:`rce`.
        A: the value given to :math:`\log 0` in RCE, negative, or ``"code"`` (:func:`rce`).

    Example:
        >>> z, y = torch.tensor([[0.5, 0.25, 0.25]]).log(), torch.tensor([0])  # p = (1/2, 1/4, 1/4)
        >>> nce_rce(z, y, alpha=1.0, beta=1.0, A=-4.0)
        tensor(2.2000)
    """
    alpha, beta, A = sce_params(alpha, beta, A)
    check_reduction(reduction)
    target = check_logits_target(logits, target)
    log_p = F.log_softmax(clamp_logits(logits), dim=1)
    log_py = _gather(log_p, target)
    return reduce_loss(alpha * log_py / log_p.sum(dim=1) + beta * A * torch.expm1(log_py), reduction)


def _focal_terms(log_p: Tensor, gamma: float) -> Tensor:
    r"""The focal loss :math:`-(1 - p)^\gamma \log p` of every entry of ``log_p``, with
    :math:`1 - p` as ``-expm1(log p)``, kept at the smallest normal float for :math:`0 < \gamma < 1`
    (where the derivative of :math:`(1 - p)^\gamma` is infinite at :math:`p = 1`)."""
    one_minus_p = -torch.expm1(log_p)
    if 0.0 < gamma < 1.0:
        one_minus_p = one_minus_p.clamp_min(torch.finfo(one_minus_p.dtype).tiny)
    return -one_minus_p.pow(gamma) * log_p


def focal_params(gamma: float) -> Tuple[float]:
    """:func:`focal`'s parameter, checked."""
    return (check_param("gamma", gamma, low=0.0),)


def focal(logits: Tensor, target: Tensor, *, gamma: float = 2.0, reduction: str = "mean") -> Tensor:
    r"""Focal loss :math:`-(1 - p_y)^\gamma \log p_y` (Lin et al., 2017, "Focal loss for dense object
    detection"); ``gamma = 0`` is CE.

    :math:`1 - p_y` is ``-expm1(log p_y)``.  For :math:`0 < \gamma < 1` the derivative of
    :math:`(1 - p_y)^\gamma` is infinite at :math:`p_y = 1`, so there the base is kept at the
    smallest normal float, which changes the value by less than that float.

    Args:
        gamma: the focusing exponent, nonnegative.

    Example:
        >>> z, y = torch.tensor([[0.5, 0.25, 0.25]]).log(), torch.tensor([0])  # p = (1/2, 1/4, 1/4)
        >>> focal(z, y, gamma=2.0), focal(z, y, gamma=0.0)  # ln 2 / 4, ln 2
        (tensor(0.1733), tensor(0.6931))
    """
    (gamma,) = focal_params(gamma)
    check_reduction(reduction)
    target = check_logits_target(logits, target)
    log_py = _gather(F.log_softmax(clamp_logits(logits), dim=1), target)
    return reduce_loss(_focal_terms(log_py, gamma), reduction)


def bootstrap_params(beta: float, hard: bool) -> Tuple[float, bool]:
    """:func:`bootstrap`'s parameters, checked."""
    return check_param("beta", beta, low=0.0, high=1.0), check_bool("hard", hard)


def bootstrap(
    logits: Tensor, target: Tensor, *, beta: float = 0.95, hard: bool = False, reduction: str = "mean"
) -> Tensor:
    r"""Bootstrapping loss :math:`-\sum_k (\beta [k = y] + (1-\beta) t_k) \log p_k` (Reed et al., 2015,
    "Training deep neural networks on noisy labels with bootstrapping").

    Soft: :math:`t = p`; hard: :math:`t = e_{\arg\max_k p_k}` (the first of tied maxima).
    ``beta = 1`` is CE.  The soft target is deliberately *not* detached: with a detached
    :math:`t = p` the gradient of :math:`-\sum_k t_k \log p_k` is :math:`p - t = 0` and soft
    bootstrapping would collapse to :math:`\beta\,\mathrm{CE}`; not detached, the self term is the
    entropy :math:`H(p)`, Reed et al.'s "minimum entropy regularisation".

    Args:
        beta: weight of the given label, in :math:`[0, 1]`.
        hard: hard (argmax) instead of soft (``p``) self-targets.

    Example:
        >>> z, y = torch.tensor([[0.5, 0.25, 0.25]]).log(), torch.tensor([1])
        >>> bootstrap(z, y, beta=0.8)  # 0.8 ln 4 + 0.2 H(p), H(p) = 1.5 ln 2
        tensor(1.3170)
        >>> bootstrap(z, y, beta=0.8, hard=True)  # 0.8 ln 4 + 0.2 ln 2
        tensor(1.2477)
    """
    beta, hard = bootstrap_params(beta, hard)
    check_reduction(reduction)
    target = check_logits_target(logits, target)
    log_p = F.log_softmax(clamp_logits(logits), dim=1)
    if hard:
        self_term = _gather(log_p, log_p.argmax(dim=1))
    else:
        self_term = (log_p.exp() * log_p).sum(dim=1)
    return reduce_loss(-beta * _gather(log_p, target) - (1.0 - beta) * self_term, reduction)


def peer_params(
    alpha: float, base: str, generator: Optional[torch.Generator]
) -> Tuple[float, str, Optional[torch.Generator]]:
    """:func:`peer`'s parameters, checked."""
    return check_param("alpha", alpha, low=0.0), check_choice("base", base, PEER_BASES), check_generator(generator)


def peer(
    logits: Tensor,
    target: Tensor,
    *,
    alpha: float = 0.5,
    base: str = "ce",
    generator: Optional[torch.Generator] = None,
    reduction: str = "mean",
) -> Tensor:
    r"""Peer loss :math:`\ell(f(x_i), y_i) - \alpha\,\ell(f(x_{j_i}), y_{k_i})` (Liu & Guo, 2020,
    "Peer loss functions: learning from noisy labels without knowing noise rates").

    ``j`` and ``k`` are two independent random permutations of the batch, ``torch.randperm(N,
    generator=generator)`` in this order, so the peer term pairs a prediction with an unrelated label.

    Args:
        alpha: weight of the peer term, nonnegative.
        base: the loss :math:`\ell`, ``"ce"`` (:math:`-\log p_y`) or ``"mae"`` (:math:`1 - p_y`).
        generator: ``None`` (torch's default) or the ``torch.Generator`` of the permutations.

    Example:
        >>> z = torch.tensor([[0.5, 0.25, 0.25]]).log().repeat(2, 1)  # the same prediction twice
        >>> y = torch.tensor([0, 1])
        >>> cross_entropy(z, y), peer(z, y, alpha=0.5)  # the peer terms sum to the CE: (1 - alpha) CE
        (tensor(1.0397), tensor(0.5199))
    """
    alpha, base, generator = peer_params(alpha, base, generator)
    check_reduction(reduction)
    target = check_logits_target(logits, target)
    log_p = F.log_softmax(clamp_logits(logits), dim=1)
    n, device = len(target), _device_of(generator, logits)
    j = torch.randperm(n, generator=generator, device=device).to(logits.device)
    k = torch.randperm(n, generator=generator, device=device).to(logits.device)
    # target.gather(0, k) is target[k]: torch.compile's inductor (2.13) fails on indexing by a randperm
    log_py, log_p_peer = _gather(log_p, target), log_p[j, target.gather(0, k)]
    if base == "ce":
        return reduce_loss(-log_py + alpha * log_p_peer, reduction)
    return reduce_loss(-torch.expm1(log_py) + alpha * torch.expm1(log_p_peer), reduction)


def negative_learning_params(generator: Optional[torch.Generator]) -> Tuple[Optional[torch.Generator]]:
    """:func:`negative_learning`'s parameter, checked."""
    return (check_generator(generator),)


def negative_learning(
    logits: Tensor,
    target: Tensor,
    *,
    generator: Optional[torch.Generator] = None,
    reduction: str = "mean",
) -> Tensor:
    r"""Negative learning :math:`-\log(1 - p_{\bar y})` with a complementary label :math:`\bar y`
    drawn uniformly from the classes other than ``y`` (Kim et al., 2019, "NLNL: negative learning
    for noisy labels").

    :math:`\bar y = (y + s) \bmod C` with :math:`s` from ``torch.randint(1, C, (N,), generator)``.
    :math:`\log(1 - p_{\bar y}) = \log \sum_{k \ne \bar y} p_k`, a ``logsumexp`` of the other
    classes' :math:`\log p_k`: exact where :math:`p_{\bar y}` rounds to 1, where
    :math:`\log(1 - \exp(\log p_{\bar y}))` would be :math:`\log 0`.

    Args:
        generator: ``None`` (torch's default) or the ``torch.Generator`` of the complementary labels.

    Example:
        >>> z, y = torch.tensor([[0.5, 0.25, 0.25]]).log(), torch.tensor([0])  # p = (1/2, 1/4, 1/4)
        >>> negative_learning(z, y)  # ybar is 1 or 2, both with p = 1/4: -ln(3/4)
        tensor(0.2877)
    """
    (generator,) = negative_learning_params(generator)
    check_reduction(reduction)
    target = check_logits_target(logits, target)
    n, c = logits.shape
    shift = torch.randint(1, c, (n,), generator=generator, device=_device_of(generator, logits))
    complementary = (target + shift.to(logits.device)) % c
    log_p = F.log_softmax(clamp_logits(logits), dim=1)
    others = log_p.scatter(1, complementary.unsqueeze(1), float("-inf"))
    return reduce_loss(-torch.logsumexp(others, dim=1), reduction)


# --------------------------------------------------------------------------------------------
# loss correction, negative label smoothing, poly-1, Taylor cross entropy
# --------------------------------------------------------------------------------------------
def _transition(T: object, logits: Tensor, *, invertible: bool = False) -> Tensor:
    """``T`` (a matrix, or a noise spec built for the logits' ``C`` classes) checked, float64 on the
    logits' device.

    The values (nonnegative, rows summing to 1, invertible when asked) are read on the host, so, as
    for targets, they are checked only in eager mode for a ``T`` on the CPU; a ``T`` already on an
    accelerator (a Module's buffer) and a compiled graph get the shape check alone.
    """
    c = logits.shape[1]
    if isinstance(T, str):
        T = make_transition(T, c)
    on_host = not isinstance(T, Tensor) or (T.device.type == "cpu" and not torch.compiler.is_compiling())
    if on_host:
        T = check_transition(T)
    if T.shape != (c, c):
        raise ValueError(f"T must be a ({c}, {c}) transition matrix for logits with C={c}, got shape {tuple(T.shape)}")
    if on_host and invertible:
        check_invertible("T", T)
    return T.to(device=logits.device, dtype=torch.float64)


def forward_correction(
    logits: Tensor, target: Tensor, *, T: Union[Tensor, str], reduction: str = "mean"
) -> Tensor:
    r"""Forward loss correction :math:`-\log\,(p^\top T)_{\tilde y} = -\log \sum_i p_i T_{i\tilde y}`
    (Patrini et al., 2017, "Making deep neural networks robust to label noise: a loss correction
    approach"), with :math:`T_{ij} = P(\tilde y = j \mid y = i)`.

    The model's clean posterior :math:`p` is pushed through the noise, :math:`p^\top T` being the
    posterior of the noisy label, and scored by CE against the noisy label :math:`\tilde y`; with
    the true ``T`` the minimiser of the noisy risk is the clean posterior.  Computed as
    :math:`-\mathrm{logsumexp}_i (\log p_i + \log T_{i\tilde y})`, a zero of ``T`` being an exact
    :math:`-\infty` (that term is absent), so the loss is at most
    :math:`-\log \min_i \{T_{i\tilde y} : T_{i\tilde y} > 0\}` while the classes that can turn into
    :math:`\tilde y` keep a probability that does not round to 0, and at most about
    :math:`3.7 \cdot 10^{19}` (float32, :func:`clamp_logits`) otherwise.  The authors' Keras code
    clips :math:`p` to :math:`[10^{-7}, 1 - 10^{-7}]` before the product ``K.dot(y_pred, P)`` and its
    log (``loss.py``, ``robust("forward", P)``), which bounds the loss by :math:`-\log 10^{-7} = 16.1`;
    nothing is clipped here.

    Args:
        T: the ``(C, C)`` row-stochastic transition matrix (tensor or array-like; a constant), or a
            noise spec of :func:`noisyloss.noise.make_transition` (``"sym:0.4"``) built for the
            logits' ``C`` classes.

    Example:
        >>> T = torch.tensor([[0.8, 0.2], [0.2, 0.8]])  # 20 % of each class flipped to the other
        >>> z, y = torch.tensor([[0.75, 0.25]]).log(), torch.tensor([0])  # p = (3/4, 1/4)
        >>> forward_correction(z, y, T=T)  # -ln(0.75 * 0.8 + 0.25 * 0.2) = -ln 0.65
        tensor(0.4308)
    """
    check_reduction(reduction)
    target = check_logits_target(logits, target)
    log_p = F.log_softmax(clamp_logits(logits), dim=1)
    log_T = _transition(T, logits).log().to(log_p.dtype)  # log 0 = -inf: that term is absent
    return reduce_loss(-torch.logsumexp(log_p + log_T.t()[target], dim=1), reduction)


def backward_correction(
    logits: Tensor, target: Tensor, *, T: Union[Tensor, str], reduction: str = "mean"
) -> Tensor:
    r"""Backward loss correction :math:`(T^{-1} \ell)_{\tilde y} = \sum_k (T^{-1})_{\tilde y k}\,(-\log p_k)`
    (Patrini et al., 2017), with :math:`\ell_k = -\log p_k` the CE of every label and
    :math:`T_{ij} = P(\tilde y = j \mid y = i)`.

    Unbiased: its expectation over the noisy label :math:`\tilde y \sim T_{y,\cdot}` is the clean CE
    :math:`-\log p_y`, because :math:`T\,T^{-1} = I`.  :math:`T^{-1}` has negative entries, so the
    loss is unbounded below: it can be negative, and it falls without limit as a class with
    :math:`(T^{-1})_{\tilde y k} < 0` gets :math:`p_k \to 0`.  At :math:`p_k = 0` (a logit of
    :math:`-\infty`), where that limit is :math:`-\infty`, the loss takes its value at
    :func:`clamp_logits`'s bound (each :math:`\ell_k` at most about :math:`3.7 \cdot 10^{19}` in
    float32), finite for any ``T``.  The gradient is :math:`p - (T^{-1})_{\tilde y \cdot}`.  The
    authors' Keras code clips :math:`p` to :math:`[10^{-7}, 1 - 10^{-7}]` before the log, which
    bounds each :math:`\ell_k` by 16.1 and zeroes its gradient there (``loss.py``,
    ``robust("backward", P)``).

    Args:
        T: the ``(C, C)`` row-stochastic transition matrix, invertible (``ValueError`` otherwise), or
            a noise spec (``"sym:0.4"``), as in :func:`forward_correction`.

    Example:
        >>> T = torch.tensor([[0.8, 0.2], [0.2, 0.8]])  # T^-1 = [[4/3, -1/3], [-1/3, 4/3]]
        >>> z, y = torch.tensor([[0.75, 0.25]]).log(), torch.tensor([0])
        >>> backward_correction(z, y, T=T)  # (4/3)(-ln 3/4) - (1/3)(-ln 1/4)
        tensor(-0.0785)
    """
    check_reduction(reduction)
    target = check_logits_target(logits, target)
    neg_log_p = -F.log_softmax(clamp_logits(logits), dim=1)
    T_inv = torch.linalg.inv_ex(_transition(T, logits, invertible=True)).inverse  # no host sync
    return reduce_loss((T_inv.to(neg_log_p.dtype)[target] * neg_log_p).sum(dim=1), reduction)


def nls_params(smooth_rate: float) -> Tuple[float]:
    """:func:`nls`'s parameter, checked: a smoothing rate of at most 1."""
    return (check_param("smooth_rate", smooth_rate, high=1.0),)


def nls(logits: Tensor, target: Tensor, *, smooth_rate: float = -0.2, reduction: str = "mean") -> Tensor:
    r"""Generalized label smoothing :math:`-\sum_k \big((1 - r)[k = y] + r/C\big) \log p_k
    = (1 - r)(-\log p_y) + r\,\frac1C \sum_k (-\log p_k)`, with a negative smoothing rate
    :math:`r < 0` allowed: negative label smoothing, NLS (Wei et al., 2022, "To smooth or not? When
    label smoothing meets noisy labels").

    For :math:`r \in [0, 1]` this is :func:`cross_entropy` with ``label_smoothing=r`` (torch's
    convention, and the authors' ``loss_gls``); :func:`torch.nn.functional.cross_entropy` rejects
    :math:`r < 0`, hence this function.  Allowed: :math:`r \le 1` (above 1 the labelled class would
    get a negative weight); the paper's sweep runs from 0.8 down to -8.  With :math:`r < 0` every
    other class gets the negative weight :math:`r/C`, so the loss rewards pushing their
    probabilities to 0 and is unbounded below.  At a logit of :math:`-\infty` on another class (the
    exact value :math:`-\infty`) it takes its value at :func:`clamp_logits`'s bound, about
    :math:`\frac{r}{C}\,3.7 \cdot 10^{19}` in float32.  The gradient is :math:`p - t`.  The authors'
    ``loss_gls`` (``loss.py``) computes the same value.

    Args:
        smooth_rate: :math:`r \le 1`; :math:`r < 0` is NLS, :math:`r = 0` CE, :math:`r > 0` label smoothing.

    Example:
        >>> z, y = torch.tensor([[0.5, 0.25, 0.25]]).log(), torch.tensor([0])  # p = (1/2, 1/4, 1/4)
        >>> nls(z, y, smooth_rate=-0.3)  # 1.3 ln 2 - 0.3 (ln 2 + 2 ln 4) / 3 = 0.8 ln 2
        tensor(0.5545)
    """
    (r,) = nls_params(smooth_rate)
    check_reduction(reduction)
    target = check_logits_target(logits, target)
    neg_log_p = -F.log_softmax(clamp_logits(logits), dim=1)
    return reduce_loss((1.0 - r) * _gather(neg_log_p, target) + r * neg_log_p.mean(dim=1), reduction)


def poly1_params(epsilon: float) -> Tuple[float]:
    """:func:`poly1`'s parameter, checked: at least -1."""
    return (check_param("epsilon", epsilon, low=-1.0),)


def poly1(logits: Tensor, target: Tensor, *, epsilon: float = 1.0, reduction: str = "mean") -> Tensor:
    r"""Poly-1 loss :math:`-\log p_y + \varepsilon\,(1 - p_y)` (Leng et al., 2022, "PolyLoss: a
    polynomial expansion perspective of classification loss functions").

    CE is :math:`\sum_{j \ge 1} (1 - p_y)^j / j`; Poly-1 changes the weight of its first term from 1 to
    :math:`1 + \varepsilon`.  :math:`\varepsilon = -1` removes that term, ``epsilon = 0`` is CE.
    Allowed: :math:`\varepsilon \ge -1`, where the loss decreases as :math:`p_y` grows (its slope in
    :math:`p_y` is :math:`-1/p_y - \varepsilon`).  :math:`1 - p_y` is ``-expm1(log p_y)``.  The paper
    gives the loss as TensorFlow pseudo-code (``CE + epsilon * (1 - pt)`` with ``pt`` from a softmax,
    commented ``epsilon >= -1``), which this computes; no released implementation was found.

    Args:
        epsilon: :math:`\varepsilon \ge -1`, the extra weight of the first polynomial term.

    Example:
        >>> z, y = torch.tensor([[0.5, 0.25, 0.25]]).log(), torch.tensor([0])  # p = (1/2, 1/4, 1/4)
        >>> poly1(z, y, epsilon=2.0)  # ln 2 + 2 (1 - 1/2)
        tensor(1.6931)
    """
    (epsilon,) = poly1_params(epsilon)
    check_reduction(reduction)
    target = check_logits_target(logits, target)
    log_py = _gather(F.log_softmax(clamp_logits(logits), dim=1), target)
    return reduce_loss(-log_py - epsilon * torch.expm1(log_py), reduction)


def taylor_params(order: int) -> Tuple[int]:
    """:func:`taylor`'s parameter, checked: an int of at least 1."""
    return (check_int("order", order, 1),)


def taylor(logits: Tensor, target: Tensor, *, order: int = 2, reduction: str = "mean") -> Tensor:
    r"""Taylor cross entropy :math:`\sum_{k=1}^{t} (1 - p_y)^k / k` (Feng et al., 2020, "Can cross
    entropy loss be robust to label noise?"): the series :math:`-\log p_y = \sum_{k \ge 1} (1 - p_y)^k/k`
    cut after order :math:`t`.

    ``order = 1`` is :func:`mae`; order 2 adds half the squared error :math:`(1 - p_y)^2/2`;
    :math:`t \to \infty` gives CE.  Bounded by the harmonic number :math:`H_t = \sum_{k \le t} 1/k`
    (the value at :math:`p_y = 0`).  :math:`1 - p_y` is ``-expm1(log p_y)``, exact where :math:`p_y`
    is close to 1.  No code released by the authors was found.

    Args:
        order: the number of terms :math:`t`, an int :math:`\ge 1`.

    Example:
        >>> z, y = torch.tensor([[0.5, 0.25, 0.25]]).log(), torch.tensor([0])  # p = (1/2, 1/4, 1/4)
        >>> taylor(z, y, order=2)  # 1/2 + (1/2)^2 / 2
        tensor(0.6250)
    """
    (order,) = taylor_params(order)
    check_reduction(reduction)
    target = check_logits_target(logits, target)
    one_minus_py = -torch.expm1(_gather(F.log_softmax(clamp_logits(logits), dim=1), target))
    k = torch.arange(1, order + 1, dtype=one_minus_py.dtype, device=one_minus_py.device)
    return reduce_loss((one_minus_py.unsqueeze(1).pow(k) / k).sum(dim=1), reduction)
# ----------------------------------------------------------------------------------------------
# normalised, asymmetric and active negative losses (Ma et al. 2020; Zhou et al. 2021; Ye et al. 2023)
# ----------------------------------------------------------------------------------------------
def nfl(logits: Tensor, target: Tensor, *, gamma: float = 0.5, reduction: str = "mean") -> Tensor:
    r"""Normalised focal loss :math:`\mathrm{FL}(p, y) / \sum_k \mathrm{FL}(p, k)` with
    :math:`\mathrm{FL}(p, k) = -(1 - p_k)^\gamma \log p_k` (Ma et al., 2020, "Normalized loss functions
    for deep learning with noisy labels"); ``gamma = 0`` is :func:`nce`.

    Values in :math:`[0, 1]`, symmetric: :math:`\sum_k \mathrm{NFL}(p, k) = 1`.  The authors' code
    (APL, ALFs and ANL ``NormalizedFocalLoss``) computes the same value but detaches
    :math:`(1 - p_k)^\gamma` in numerator and denominator, so its gradient differs; here autograd
    differentiates the formula.

    Args:
        gamma: the focusing exponent, nonnegative.

    Example:
        >>> z, y = torch.tensor([[0.5, 0.25, 0.25]]).log(), torch.tensor([0])  # p = (1/2, 1/4, 1/4)
        >>> nfl(z, y, gamma=1.0)  # (ln 2)/2 / ((ln 2)/2 + 2 (3/4) ln 4)
        tensor(0.1429)
    """
    (gamma,) = focal_params(gamma)
    check_reduction(reduction)
    target = check_logits_target(logits, target)
    terms = _focal_terms(F.log_softmax(clamp_logits(logits), dim=1), gamma)
    return reduce_loss(_gather(terms, target) / terms.sum(dim=1), reduction)


def ngce_params(q: float) -> Tuple[float]:
    """:func:`ngce`'s parameter, checked."""
    return (check_param("q", q, low=GCE_MIN_Q, high=1.0),)


def ngce(logits: Tensor, target: Tensor, *, q: float = 0.7, reduction: str = "mean") -> Tensor:
    r"""Normalised generalized cross entropy :math:`(1 - p_y^q) / \sum_k (1 - p_k^q)
    = (1 - p_y^q) / (C - \sum_k p_k^q)` (Ma et al., 2020); the :math:`1/q` of :func:`gce` cancels.

    Each :math:`1 - p^q` is ``-expm1(q log p)``.  Values in :math:`[0, 1]`, symmetric.  The authors'
    code (APL ``NormalizedGeneralizedCrossEntropy``) clamps :math:`p` at 1e-7 first.

    Args:
        q: in :math:`(0, 1]` (from ``GCE_MIN_Q``).

    Example:
        >>> z, y = torch.tensor([[0.5, 0.25, 0.25]]).log(), torch.tensor([0])  # p = (1/2, 1/4, 1/4)
        >>> ngce(z, y, q=0.5)  # (1 - sqrt(1/2)) / (3 - sqrt(1/2) - 2 sqrt(1/4))
        tensor(0.2265)
    """
    (q,) = ngce_params(q)
    check_reduction(reduction)
    target = check_logits_target(logits, target)
    terms = -torch.expm1(q * F.log_softmax(clamp_logits(logits), dim=1))
    return reduce_loss(_gather(terms, target) / terms.sum(dim=1), reduction)


def nmae(logits: Tensor, target: Tensor, *, reduction: str = "mean") -> Tensor:
    r"""Normalised mean absolute error :math:`(1 - p_y) / (C - 1)` (Ma et al., 2020): :func:`mae`
    divided by its sum over the labels, :math:`\sum_k (1 - p_k) = C - 1`.

    Normalising removes the scale of the base loss: the L1 distance :math:`2(1 - p_y)` gives the same
    NMAE.  The authors' code differs by that factor: APL's ``NormalizedMeanAbsoluteError`` divides
    :math:`1 - p_y` by :math:`2(C - 1)` (half of this), ALFs' ``NMAE`` by :math:`C - 1` (this).

    Example:
        >>> z, y = torch.tensor([[0.5, 0.25, 0.25]]).log(), torch.tensor([0])  # p = (1/2, 1/4, 1/4)
        >>> nmae(z, y)  # (1 - 1/2) / 2
        tensor(0.2500)
    """
    check_reduction(reduction)
    target = check_logits_target(logits, target)
    log_py = _gather(F.log_softmax(clamp_logits(logits), dim=1), target)
    return reduce_loss(-torch.expm1(log_py) / (logits.shape[1] - 1), reduction)


def nrce(logits: Tensor, target: Tensor, *, reduction: str = "mean") -> Tensor:
    r"""Normalised reverse cross entropy (Ma et al., 2020): :func:`rce` :math:`-A(1 - p_y)` divided by
    its sum over the labels :math:`-A(C - 1)`, which is :math:`(1 - p_y)/(C - 1)` for every ``A``:
    exactly :func:`nmae`.

    The authors' code (APL ``NormalizedReverseCrossEntropy``) multiplies RCE (with
    :math:`A = \ln 10^{-4}` and :math:`p` clamped at 1e-7) by ``1 / 4 * (num_classes - 1)``, i.e. by
    :math:`(C - 1)/4` where dividing by :math:`-A(C - 1)` was meant: its "NRCE" grows with ``C``.

    Example:
        >>> z, y = torch.tensor([[0.5, 0.25, 0.25]]).log(), torch.tensor([0])  # p = (1/2, 1/4, 1/4)
        >>> nrce(z, y)  # (1 - 1/2) / 2
        tensor(0.2500)
    """
    return nmae(logits, target, reduction=reduction)


def apl_params(alpha: float, beta: float) -> Tuple[float, float]:
    """:func:`apl`'s weights, checked: two nonnegative numbers."""
    return check_param("alpha", alpha, low=0.0), check_param("beta", beta, low=0.0)


def apl(
    logits: Tensor,
    target: Tensor,
    *,
    active: Callable[..., Tensor],
    passive: Callable[..., Tensor],
    alpha: float = 1.0,
    beta: float = 1.0,
    reduction: str = "mean",
) -> Tensor:
    r"""Active-passive loss :math:`\alpha\,L_\text{active} + \beta\,L_\text{passive}` (Ma et al., 2020).

    An active loss (NCE, NFL, NGCE) raises :math:`p_y`, a passive one (MAE, RCE, an asymmetric loss)
    also lowers the other probabilities; each normalised or symmetric, so the sum stays robust.  The
    active negative losses of Ye et al. (2023) have this shape too, with a normalised negative loss
    (:func:`nnce`, :func:`nnfl`) in the passive place.  :func:`nce_rce` is ``apl(active=nce,
    passive=rce)``.

    Args:
        active, passive: losses ``f(logits, target, reduction="none")`` with their parameters bound,
            e.g. ``functools.partial(agce, a=1.8, q=3.0)``.
        alpha, beta: nonnegative weights.

    Example:
        >>> z, y = torch.tensor([[0.5, 0.25, 0.25]]).log(), torch.tensor([0])  # p = (1/2, 1/4, 1/4)
        >>> apl(z, y, active=nce, passive=mae, alpha=1.0, beta=2.0)  # 0.2 + 2 (1 - 1/2)
        tensor(1.2000)
    """
    alpha, beta = apl_params(alpha, beta)
    active, passive = check_callable("active", active), check_callable("passive", passive)
    check_reduction(reduction)
    loss = alpha * active(logits, target, reduction="none") + beta * passive(logits, target, reduction="none")
    return reduce_loss(loss, reduction)


def agce_params(a: float, q: float) -> Tuple[float, float]:
    r""":func:`agce`'s parameters, checked: :math:`a \ge 10^{-6}` (so that :math:`1/(a + 1)` stays
    below 1 in float32), :math:`q > 0`, and :math:`(a + 1)^q` finite in float32."""
    a, q = check_param("a", a, low=1e-6), check_param("q", q, low=0.0, low_open=True)
    check_float32_power("(a + 1)^q", a + 1, q, f"a={a!r}, q={q!r}")
    return a, q


def agce(logits: Tensor, target: Tensor, *, a: float = 1.0, q: float = 2.0, reduction: str = "mean") -> Tensor:
    r"""Asymmetric generalized cross entropy :math:`\big((a + 1)^q - (a + p_y)^q\big) / q`
    (Zhou et al., 2021, "Asymmetric loss functions for learning with noisy labels").

    Computed as :math:`-(a+1)^q\,\mathrm{expm1}\big(q\,\mathrm{log1p}(-(1 - p_y)/(a + 1))\big)/q`,
    exact as :math:`p_y \to 1`.  Completely asymmetric for :math:`q \ge 1`
    (:func:`noisyloss.analysis.asymmetry_check`).  The authors' code (ALFs and ANL ``AGCELoss``)
    computes the formula from the softmax directly; defaults are its class defaults.

    Args:
        a: positive (from 1e-6).
        q: positive.

    Example:
        >>> z, y = torch.tensor([[0.5, 0.25, 0.25]]).log(), torch.tensor([0])  # p = (1/2, 1/4, 1/4)
        >>> agce(z, y, a=1.0, q=2.0)  # (2^2 - 1.5^2) / 2
        tensor(0.8750)
    """
    a, q = agce_params(a, q)
    check_reduction(reduction)
    target = check_logits_target(logits, target)
    one_minus_py = -torch.expm1(_gather(F.log_softmax(clamp_logits(logits), dim=1), target))
    return reduce_loss(-((a + 1) ** q) * torch.expm1(q * torch.log1p(-one_minus_py / (a + 1))) / q, reduction)


def aul_params(a: float, q: float) -> Tuple[float, float]:
    """:func:`aul`'s parameters, checked: :math:`a > 1`, :math:`q > 0`, with :math:`a^q` and
    :math:`(a / (a - 1))^q` finite in float32."""
    a, q = check_param("a", a, low=1.0, low_open=True), check_param("q", q, low=0.0, low_open=True)
    check_float32_power("a^q", a, q, f"a={a!r}, q={q!r}")
    check_float32_power("(a / (a - 1))^q", a / (a - 1), q, f"a={a!r}, q={q!r}")
    return a, q


def aul(logits: Tensor, target: Tensor, *, a: float = 1.5, q: float = 0.9, reduction: str = "mean") -> Tensor:
    r"""Asymmetric unhinged loss :math:`\big((a - p_y)^q - (a - 1)^q\big) / q` (Zhou et al., 2021).

    Computed as :math:`(a-1)^q\,\mathrm{expm1}\big(q\,\mathrm{log1p}((1 - p_y)/(a - 1))\big)/q`,
    exact as :math:`p_y \to 1`.  Completely asymmetric for :math:`q \le 1`.  The authors' code (ALFs
    ``AUELoss``, ANL ``AUELoss``) computes the formula from the softmax directly; defaults are its
    class defaults.

    Args:
        a: greater than 1.
        q: positive.

    Example:
        >>> z, y = torch.tensor([[0.5, 0.25, 0.25]]).log(), torch.tensor([0])  # p = (1/2, 1/4, 1/4)
        >>> aul(z, y, a=2.0, q=2.0)  # (1.5^2 - 1) / 2
        tensor(0.6250)
    """
    a, q = aul_params(a, q)
    check_reduction(reduction)
    target = check_logits_target(logits, target)
    one_minus_py = -torch.expm1(_gather(F.log_softmax(clamp_logits(logits), dim=1), target))
    return reduce_loss((a - 1) ** q * torch.expm1(q * torch.log1p(one_minus_py / (a - 1))) / q, reduction)


def ael_params(a: float) -> Tuple[float]:
    """:func:`ael`'s parameter, checked: :math:`a \\ge 10^{-30}`, so that :math:`1/a` is a float32
    number and value and gradient stay finite."""
    return (check_param("a", a, low=1e-30),)


def ael(logits: Tensor, target: Tensor, *, a: float = 3.0, reduction: str = "mean") -> Tensor:
    r"""Asymmetric exponential loss :math:`e^{-p_y / a}` (Zhou et al., 2021).

    Asymmetric with ratio :math:`e^{-1/a} < 1` (never completely asymmetric; towards MAE as
    :math:`a \to \infty`).  The authors' code (ALFs ``AExpLoss``) computes the same; the default is
    its class default.

    Args:
        a: positive (from 1e-30).

    Example:
        >>> z, y = torch.tensor([[0.5, 0.25, 0.25]]).log(), torch.tensor([0])  # p = (1/2, 1/4, 1/4)
        >>> ael(z, y, a=0.5)  # e^-1
        tensor(0.3679)
    """
    (a,) = ael_params(a)
    check_reduction(reduction)
    target = check_logits_target(logits, target)
    p_y = _gather(F.log_softmax(clamp_logits(logits), dim=1), target).exp()
    return reduce_loss(torch.exp(-p_y / a), reduction)


def nnce_params(min_prob: float) -> Tuple[float]:
    """:func:`nnce`'s parameter, checked: in (0, 1); below 1/C is checked with the logits."""
    return (check_param("min_prob", min_prob, low=0.0, high=1.0, low_open=True, high_open=True),)


def nnce(logits: Tensor, target: Tensor, *, min_prob: float = 1e-7, reduction: str = "mean") -> Tensor:
    r"""Normalised negative cross entropy :math:`1 - \frac{A - \mathrm{CE}_y}{\sum_k (A - \mathrm{CE}_k)}`
    with :math:`\mathrm{CE}_k = -\log \max(p_k, m)` and :math:`A = -\log m` (Ye et al., 2023, "Active
    negative loss functions for learning with noisy labels").

    :math:`A - \mathrm{CE}_k \ge 0` is the "negative" loss of class :math:`k`: largest where
    :math:`p_k = 1`, zero where :math:`p_k \le m`.  The clamp of :math:`p` at ``min_prob`` is the
    paper's and its code's (``NormalizedNegativeCrossEntropy``), taken here on :math:`\log p`
    (:math:`\max(\log p_k, \log m)`, the same values).  Values in :math:`[0, 1]`;
    :math:`\sum_k \mathrm{NNCE}(p, k) = C - 1`.

    Args:
        min_prob: :math:`m \in (0, 1/C)`.

    Example:
        >>> z, y = torch.tensor([[0.5, 0.25, 0.25]]).log(), torch.tensor([0])  # p = (1/2, 1/4, 1/4)
        >>> nnce(z, y, min_prob=1 / 16)  # A = ln 16: 1 - ln 8 / (ln 8 + 2 ln 4)
        tensor(0.5714)
    """
    (min_prob,) = nnce_params(min_prob)
    check_reduction(reduction)
    target = check_logits_target(logits, target)
    check_below_uniform("min_prob", min_prob, logits.shape[1])
    log_m = math.log(min_prob)
    negative = F.log_softmax(clamp_logits(logits), dim=1).clamp_min(log_m) - log_m  # A - CE_k
    return reduce_loss(1.0 - _gather(negative, target) / negative.sum(dim=1), reduction)


def nnfl_params(gamma: float, min_prob: float) -> Tuple[float, float]:
    """:func:`nnfl`'s parameters, checked: ``gamma`` as :func:`focal`'s, ``min_prob`` in (0, 1)."""
    return (*focal_params(gamma), *nnce_params(min_prob))


def nnfl(
    logits: Tensor, target: Tensor, *, gamma: float = 0.5, min_prob: float = 1e-7, reduction: str = "mean"
) -> Tensor:
    r"""Normalised negative focal loss :math:`1 - \frac{A - \mathrm{FL}_y}{\sum_k (A - \mathrm{FL}_k)}`
    with :math:`\mathrm{FL}_k = -(1 - p_k)^\gamma \log p_k` at :math:`p_k` clamped below at
    :math:`m` and :math:`A = -(1 - m)^\gamma \log m`, the focal loss at :math:`p = m` (Ye et al., 2023).

    ``gamma = 0`` is :func:`nnce`.  The clamp is the paper's and its code's
    (``NormalizedNegativeFocalLoss``, on :math:`\log p` as here).  That code detaches
    :math:`(1 - p_k)^\gamma`, so its gradient differs; its values are these.

    Args:
        gamma: the focusing exponent, nonnegative.
        min_prob: :math:`m \in (0, 1/C)`.

    Example:
        >>> z, y = torch.tensor([[0.5, 0.25, 0.25]]).log(), torch.tensor([0])  # p = (1/2, 1/4, 1/4)
        >>> nnfl(z, y, gamma=0.0, min_prob=1 / 16)  # nnce
        tensor(0.5714)
    """
    gamma, min_prob = nnfl_params(gamma, min_prob)
    check_reduction(reduction)
    target = check_logits_target(logits, target)
    check_below_uniform("min_prob", min_prob, logits.shape[1])
    log_p = F.log_softmax(clamp_logits(logits), dim=1).clamp_min(math.log(min_prob))
    A = _focal_terms(log_p.new_full((), math.log(min_prob)), gamma)  # in log_p's dtype: 0 where clamped
    negative = A - _focal_terms(log_p, gamma)
    return reduce_loss(1.0 - _gather(negative, target) / negative.sum(dim=1), reduction)
