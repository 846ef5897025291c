r"""Noise-robust classification losses as pure functions.

Every loss follows :mod:`torch.nn.functional` conventions::

    loss = NAME(logits, target, *, <params>, reduction="mean")

* ``logits``: ``(N, C)`` floating tensor (float32/float64/bfloat16/float16, CPU or CUDA), ``C >= 2``.
* ``target``: ``(N,)`` integer tensor of class indices in ``[0, C)``.
* ``reduction``: ``"mean"`` | ``"sum"`` | ``"none"`` (per-sample losses, shape ``(N,)``).

All losses are computed from ``log_softmax`` and gather the true-class term, so they are exact in
log space and never produce NaN/Inf for finite logits, even at ``|logit| ~ 1e4``.  Half-precision
inputs (bf16/fp16) are computed and returned in float32; float64 stays float64.

Each loss is a function of a few per-row statistics of ``log_softmax`` (:math:`\log p` at the label,
a peer or complementary label or the argmax, :math:`\sum_k \log p_k`, :math:`\sum_k p_k \log p_k`); one
autograd Function computes them and writes their ``N x C`` gradient in place, so no loss allocates
more ``N x C`` temporaries than ``F.cross_entropy``.  Gradients are first order: differentiating a
gradient again (``create_graph=True``) raises an error.

Two backends compute the statistics, with the same numbers (the tests hold both to the same
references): on CPU float32/float64 tensors, fused C kernels (``_native.c``, built with the system C
compiler on first use, see :mod:`noisyloss._native`) that also evaluate each loss's formula and its
derivative per row; when the logits require a gradient the same kernel call writes it too, and the
backward only scales it by the upstream gradient, so a training step reads the logits once
(``benchmarks/bench_losses.py`` measures the cost against ``F.cross_entropy``); elsewhere (CUDA,
no compiler, ``NOISYLOSS_NATIVE=0``) torch operations, :class:`_LogSoftmaxStats`.  Each loss below
names its C formula next to its torch code.

Notation: :math:`p = \mathrm{softmax}(z)`, :math:`p_y` the probability of the labelled class.
"""
from __future__ import annotations

import ctypes
import math
import numbers
from typing import Callable, Dict, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor

from . import _native
from ._checks import REDUCTIONS, check_param
from ._checks import check_reduction as _check_reduction

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

_HALF = (torch.float16, torch.bfloat16)


# --------------------------------------------------------------------------------------------
# validation helpers
# --------------------------------------------------------------------------------------------
def _out_of_range(target: Tensor, num_classes: int) -> bool:
    # one reduction instead of two comparisons, an or and an any; one host transfer
    lo, hi = torch.stack(torch.aminmax(target)).tolist() if target.is_cuda else torch.aminmax(target)
    return int(lo) < 0 or int(hi) >= num_classes


def _target_error(target: Tensor, position: int, num_classes: int) -> ValueError:
    """The error for an out-of-range class index, at ``position`` of the flattened ``target``."""
    bad = target.reshape(-1)[position].item()
    return ValueError(f"target values must be in [0, {num_classes - 1}] (C={num_classes}), found {bad}")


def _check_kernel(bad: int, index: Tensor, num_classes: int) -> None:
    """Raise for the position of an out-of-range class index that a kernel returned (-1: none)."""
    if bad >= 0:
        raise _target_error(index, bad, num_classes)


def check_inputs(logits: Tensor, target: Tensor, *, check_range: bool = True) -> Tensor:
    """Validate ``(logits, target)`` and return ``target`` as int64 (no copy when already int64).

    ``check_range=False`` leaves out the check that every target is in ``[0, C)``, for callers that
    hand the targets to the native kernels, which check it as they read them."""
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
    if check_range:
        _check_range(target, logits.shape[1])
    return target.long()


def _check_range(target: Tensor, num_classes: int) -> None:
    if target.numel() and _out_of_range(target, num_classes):
        bad = ((target < 0) | (target >= num_classes)).nonzero()[0, 0].item()
        raise _target_error(target, bad, num_classes)


def _validated(logits: Tensor, target: Tensor, reduction: str) -> Tuple[Tensor, Tensor]:
    """Validate, upcast half precision to float32 and return ``(logits, target)``."""
    _check_reduction(reduction)
    target = check_inputs(logits, target)
    return (logits.float() if logits.dtype in _HALF else logits), target


def _validated_native(logits: Tensor, target: Tensor, reduction: str) -> Tuple[Tensor, Tensor, bool]:
    """:func:`_validated` for a loss with a native path: ``(logits, target, native)``, ``native``
    whether the kernels take the logits (:func:`noisyloss._native.usable`); they check the range
    of the targets themselves, as they read them (``_native_call``)."""
    _check_reduction(reduction)
    target = check_inputs(logits, target, check_range=False)
    x = logits.float() if logits.dtype in _HALF else logits
    native = _native.usable(x)
    if not native:
        _check_range(target, x.shape[1])
    return x, target, native


def _prepare(logits: Tensor, target: Tensor, reduction: str) -> Tuple[Tensor, Tensor]:
    """Validate, upcast half precision to float32 and return ``(log_softmax, target)``."""
    x, target = _validated(logits, target, reduction)
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
# row statistics of log_softmax with a fused backward
# --------------------------------------------------------------------------------------------
class _LogSoftmaxStats(torch.autograd.Function):
    r"""A few per-row statistics of :math:`\log p = \mathrm{log\_softmax}(z)`, shape ``(N, K)``.

    Columns, in this order: :math:`\log p_{t}` for each column ``t`` of ``index`` ``(N, G)``, ``G >= 1`` (and, with
    ``want_argmax``, at the row's argmax, the first of tied maxima); then, if asked,
    :math:`S = \sum_k \log p_k` and :math:`E = \sum_k p_k \log p_k`.  Every loss in this
    module is an ordinary autograd function of these ``N x K`` numbers, so its own formula (clamps,
    ``expm1``, truncation) is differentiated by autograd on ``N``-sized tensors, while the ``N x C``
    part of the chain rule is written out once:

    .. math::
        \frac{\partial \log p_t}{\partial z} = e_t - p,\qquad
        \frac{\partial S}{\partial z} = 1 - C p,\qquad
        \frac{\partial E}{\partial z} = p \odot (\log p - E).

    The statistics come from the shifted logits :math:`t = z - \max_k z_k` and :math:`s = \sum_k e^{t_k}`
    (:math:`\log p = t - \log s`, as ``log_softmax`` computes it); ``log p`` itself is never
    materialised.  :math:`e^t` is computed in place in the buffer of ``t`` (unless :math:`E` needs
    both), and the backward writes :math:`\partial L/\partial z` in place into that buffer, so a loss
    allocates one ``N x C`` buffer where ``F.cross_entropy`` allocates three; the second one that
    :math:`E` needs, and the mask that finds the argmax, reuse a scratch buffer (:func:`_take_scratch`).

    With ``weights`` (a tuple of floats, one per column) the Function returns the loss
    :math:`\sum_j w_j\,\mathrm{stat}_j` reduced by ``reduction`` instead of the statistics: a loss
    linear in them (bootstrapping, label smoothing, peer loss with a CE base) then needs no autograd
    graph of its own.  First-order only (``once_differentiable``).
    """

    @staticmethod
    def forward(
        ctx,
        x: Tensor,
        index: Tensor,
        want_sum: bool,
        want_ent: bool,
        want_argmax: bool,
        weights: Optional[Tuple[float, ...]],
        reduction: str,
    ) -> Tensor:
        if torch.is_autocast_enabled(x.device.type):
            # autocast would run the matrix-vector products (the argmax positions, the weighted loss of
            # two gathered columns) in half precision: the statistics are float32 by design
            with torch.autocast(x.device.type, enabled=False):
                return _LogSoftmaxStats.forward(ctx, x, index, want_sum, want_ent, want_argmax, weights, reduction)
        n, c = x.shape
        t = x - x.amax(dim=1, keepdim=True)
        if want_argmax:  # one more gathered class: the row's argmax, where t == 0
            index = torch.cat((index, _argmax_of_shifted(t, x).unsqueeze(1)), dim=1)
        cols = [t.gather(1, index)]
        if want_sum:
            cols.append(t.sum(dim=1, keepdim=True))
        e, et, s = _exp_parts(t, want_ent)
        log_s = s.log()
        r = s.reciprocal()  # p = r e
        # log p_k = t_k - log s;  S = sum_k t_k - C log s;  E = h - log s with h = sum_k p_k t_k
        cols[0].sub_(log_s)
        if want_sum:
            cols[1].sub_(log_s, alpha=c)
        h = None
        if want_ent:
            h = et.sum(dim=1, keepdim=True).mul_(r).mul_(_LN2)
            cols.append(h - log_s)
        # Intermediates kept on ctx (not saved tensors): the first backward consumes them in place;
        # a second backward (retain_graph=True) recomputes them from x.
        ctx.e, ctx.et = e, et
        ctx.flags = (want_sum, want_ent, weights, reduction)
        ctx.save_for_backward(x, index, r, h)
        if weights is None:
            return torch.cat(cols, dim=1) if len(cols) > 1 else cols[0]
        # a loss linear in the statistics, reduced here: sum_j w_j stat_j
        if index.shape[1] == 1:
            loss = cols[0].mul_(weights[0])
        else:  # the weights of the gathered columns, kept for the backward's scatter
            ctx.w_idx = cols[0].new_tensor(weights[: index.shape[1]])
            loss = torch.mv(cols[0], ctx.w_idx)
        for w, col in zip(weights[index.shape[1]:], cols[1:]):
            loss = loss.add_(col, alpha=w)
        return _reduce(loss.view(n), reduction)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g: Tensor):
        x, index, r, h = ctx.saved_tensors
        want_sum, want_ent, weights, reduction = ctx.flags
        n, c = x.shape
        n_idx = index.shape[1]
        e, et = ctx.e, ctx.et
        ctx.e = ctx.et = None
        if e is None:
            e, et, _ = _exp_parts(x - x.amax(dim=1, keepdim=True), want_ent)
        if weights is None:
            # dL/d(statistic), one column each, (N, 1)
            g_idx = g[:, :n_idx]
            g_sum = g[:, n_idx : n_idx + 1] if want_sum else None
            g_ent = g[:, -1:] if want_ent else None
            a = -g_idx if n_idx == 1 else -g_idx.sum(dim=1, keepdim=True)  # coefficient of p
            if want_sum:
                a = a.sub_(g_sum, alpha=c)
        else:
            # a linear loss: dL/d(statistic) = w_j times dL/d(row loss), a scalar when reduced
            g = g.unsqueeze(1) if reduction == "none" else g / n if reduction == "mean" else g
            g_idx = g * ctx.w_idx if n_idx > 1 else g * weights[0]
            g_sum = g * weights[n_idx] if want_sum else None
            g_ent = g * weights[-1] if want_ent else None
            a = g * -(sum(weights[:n_idx]) + (c * weights[n_idx] if want_sum else 0.0))
        if want_ent:
            # p * (a + g_ent (log p - E)) = r (a - g_ent h) e + r g_ent ln2 (e t log2(e)): two in-place passes
            rg = r * g_ent
            grad = et.mul_(rg * _LN2).addcmul_(e, r * a - rg * h)
            _give_scratch(e)
        else:
            grad = e.mul_(r * a)
        if want_sum:
            grad.add_(g_sum)
        grad.scatter_add_(1, index, g_idx.expand(n, n_idx))
        return grad, None, None, None, None, None, None


_NATIVE_FN = {torch.float32: "f32", torch.float64: "f64"}
_NATIVE_CTYPE = {torch.float32: ctypes.c_float, torch.float64: ctypes.c_double}
_NATIVE_PARAMS: Dict[Tuple[torch.dtype, Tuple[float, ...]], ctypes.Array] = {}
#: the statistics' columns after the gathered ones, for each combination of ARGMAX, SUM and ENT
_NCOLS = tuple(bin(f).count("1") for f in range(8))


def _native_call(x: Tensor, index: Tensor, flags: int, k: int, formula: int, params: Tuple[float, ...],
                 reduction: str, out: Optional[Tensor] = None, res: Optional[Tensor] = None,
                 G: Optional[Tensor] = None, grad: Optional[Tensor] = None) -> None:
    """One call of ``nl_rows`` (see ``_native.c`` for its modes) on contiguous tensors."""
    prm = _NATIVE_PARAMS.get((x.dtype, params))
    if prm is None:  # the parameters as a C array, kept: a training loop passes the same ones each step
        if len(_NATIVE_PARAMS) > 256:
            _NATIVE_PARAMS.clear()
        prm = _NATIVE_PARAMS[x.dtype, params] = (_NATIVE_CTYPE[x.dtype] * max(len(params), 1))(*params)
    n, c = x.shape
    bad = getattr(_native.library(), "nl_rows_" + _NATIVE_FN[x.dtype])(
        x.data_ptr(), n, c, index.data_ptr(), 1 if index.dim() == 1 else index.shape[1], flags, _ptr(out), k,
        formula, prm, _native.REDUCTION[reduction], _ptr(res), _ptr(G), _ptr(grad),
        1.0 / n if reduction == "mean" and n else 1.0, torch.get_num_threads())
    _check_kernel(bad, index, c)


class _NativeRows(torch.autograd.Function):
    """The row statistics of :class:`_LogSoftmaxStats` (``formula = STATS``), or a whole loss built
    on them, by the fused kernels of ``_native.c`` (CPU, float32/float64): ``_native.LINEAR``
    (``params``: one weight per statistic) or one of the formulas there, each the C twin of its
    loss's torch code below, which computes the row losses and their derivatives by the statistics
    and reduces them, so that the loss needs no autograd graph of its own.

    A loss whose input requires a gradient gets that gradient from the same kernel call as its
    value (for an upstream gradient of 1; the backward scales it by the actual one, or hands it
    over as is when that is 1): one pass over the logits for a training step, where
    ``F.cross_entropy`` makes two.  The statistics' backward, and a second backward
    (``retain_graph=True``), recompute from ``x``; nothing else is kept.  First-order only."""

    @staticmethod
    def run(x: Tensor, index: Tensor, flags: int, formula: int, params: Tuple[float, ...], reduction: str,
            with_grad: bool) -> Tuple[Tensor, Optional[Tensor], int]:
        """The forward's kernel call: ``(statistics or loss, gradient or None, number of statistics)``."""
        n = x.shape[0]
        k = (1 if index.dim() == 1 else index.shape[1]) + _NCOLS[flags & 7]
        if k > _native.MAX_COLS:
            raise ValueError(f"at most {_native.MAX_COLS} statistics per row, got {k}")
        if formula == _native.STATS:
            out = x.new_empty(n, k)
            _native_call(x, index, flags, k, formula, params, reduction, out=out)
            return out, None, k
        grad = torch.empty_like(x) if with_grad else None
        res = x.new_empty(n if reduction == "none" else ())
        _native_call(x, index, flags, k, formula, params, reduction, res=res, grad=grad)
        return res, grad, k

    @staticmethod
    def forward(ctx, x: Tensor, index: Tensor, flags: int, formula: int, params: Tuple[float, ...],
                reduction: str) -> Tensor:
        x, index = x.contiguous(), index.contiguous()
        result, grad, k = _NativeRows.run(x, index, flags, formula, params, reduction, True)
        ctx.grad, ctx.conf = grad, (flags, k, formula, params, reduction)
        ctx.save_for_backward(x, index)
        return result

    @staticmethod
    def backward(ctx, g: Tensor):
        if torch.is_grad_enabled():  # create_graph=True: the kernel's gradient is no autograd graph
            raise RuntimeError("noisyloss losses are first order: their gradient cannot be differentiated "
                               "again (create_graph=True / double backward is not supported)")
        x, index = ctx.saved_tensors
        flags, k, formula, params, reduction = ctx.conf
        grad, ctx.grad = ctx.grad, None  # handed over once (it becomes x.grad); a second backward recomputes
        g = g.to(x.dtype)
        if formula == _native.STATS:  # dL/d(statistics) -> dL/dx
            grad = torch.empty_like(x)
            _native_call(x, index, flags, k, formula, params, "none", G=g.contiguous(), grad=grad)
            return grad, None, None, None, None, None
        if grad is None:
            grad = torch.empty_like(x)
            res = x.new_empty(x.shape[0] if reduction == "none" else ())
            _native_call(x, index, flags, k, formula, params, reduction, res=res, grad=grad)
        if reduction == "none":
            grad.mul_(g.unsqueeze(1))
        elif g.item() != 1.0:
            grad.mul_(g)
        return grad, None, None, None, None, None


def _ptr(t: Optional[Tensor]) -> Optional[int]:
    return None if t is None else t.data_ptr()


def _fused(x: Tensor, index: Tensor, formula: int, params: Tuple[float, ...], reduction: str, flags: int = 0) -> Tensor:
    """A loss computed whole by the native kernels, or with ``formula = STATS`` the statistics
    (``_native.usable(x)`` must hold): :class:`_NativeRows`, or its kernel call alone where no
    gradient can be asked for (no grad mode, or logits that do not require one), which then
    computes no gradient and builds no graph."""
    if torch.is_grad_enabled() and x.requires_grad:
        return _NativeRows.apply(x, index, flags, formula, params, reduction)
    return _NativeRows.run(x.contiguous(), index.contiguous(), flags, formula, params, reduction, False)[0]


_LN2 = math.log(2.0)
_LOG2E = 1.0 / _LN2

#: One reusable CPU buffer per dtype for the Function's internal ``N x C`` intermediates (``exp`` next
#: to ``e * t``, the argmax mask), which never leave it.  glibc's malloc returns freed blocks of this
#: size to the kernel and every fresh one then costs a page fault per 4 KiB (on a VM, 2-3x the
#: arithmetic of the whole loss); torch caches CUDA memory itself, so this is CPU only.
_SCRATCH: Dict[torch.dtype, Tensor] = {}


def _take_scratch(like: Tensor) -> Tensor:
    """An uninitialised tensor of ``like``'s shape and dtype (row-major on CPU, whatever ``like``'s
    strides); hand it back with :func:`_give_scratch` once nothing reads it any more."""
    if like.device.type != "cpu":
        return torch.empty_like(like)
    flat = _SCRATCH.pop(like.dtype, None)  # taken out: a second caller meanwhile allocates its own
    if flat is None or flat.numel() < like.numel():
        return torch.empty(like.shape, dtype=like.dtype)  # not empty_like, which keeps like's strides
    return flat[: like.numel()].view(like.shape)


def _give_scratch(buf: Tensor) -> None:
    if buf.device.type == "cpu":
        kept = _SCRATCH.get(buf.dtype)
        if kept is None or kept.numel() <= buf.numel():
            _SCRATCH[buf.dtype] = buf.view(-1)


def _exp_parts(t: Tensor, with_et: bool) -> Tuple[Tensor, Optional[Tensor], Tensor]:
    """``(e, e * t * log2(e), s)`` with ``e = exp(t)`` and ``s`` its row sums, consuming the buffer of
    ``t``: ``exp`` is taken in place unless the product is wanted, which then overwrites ``t`` and ``e``
    goes to a scratch buffer (see :func:`_take_scratch`).

    ``e`` is computed as ``exp2(t * log2(e))``: torch's CPU ``exp`` is the slow, 1-ulp kernel (3.5x
    the time of ``exp2`` here), which would make the exponential alone cost half of a whole
    ``F.cross_entropy``.  The rounding of ``t * log2(e)`` costs a few ulp in ``e`` (relative error
    below 1e-6 where ``p > 1e-3``, about twice that of torch's ``softmax``), and none in ``log p``,
    which is gathered from ``t`` itself.
    """
    t.mul_(_LOG2E)  # t in bits (the product e * t stays in bits: callers scale its row sums by ln 2)
    if not with_et:
        e = t.exp2_()
        return e, None, e.sum(dim=1, keepdim=True)
    e = torch.exp2(t, out=_take_scratch(t))
    return e, t.mul_(e), e.sum(dim=1, keepdim=True)


def _row_stats(
    x: Tensor,
    index: Tensor,
    *,
    log_sum: bool = False,
    entropy: bool = False,
    argmax: bool = False,
    weights: Optional[Sequence[float]] = None,
    reduction: str = "none",
) -> Tensor:
    """``_LogSoftmaxStats`` for a validated float logit tensor ``x`` (``index``: ``(N,)`` or ``(N, G)``).

    With ``weights`` (one per column) the result is the loss ``stats @ weights`` reduced by
    ``reduction``: a linear loss then needs no autograd graph of its own.
    """
    if _native.usable(x):
        flags = (_native.SUM if log_sum else 0) | (_native.ENT if entropy else 0) | (_native.ARGMAX if argmax else 0)
        if weights is None:
            return _fused(x, index, _native.STATS, (), "none", flags)
        return _fused(x, index, _native.LINEAR, tuple(weights), reduction, flags)
    if index.dim() == 1:
        index = index.unsqueeze(1)
    return _LogSoftmaxStats.apply(x, index, log_sum, entropy, argmax, None if weights is None else tuple(weights), reduction)


def _argmax_of_shifted(t: Tensor, x: Tensor) -> Tensor:
    """``x.argmax(dim=1)`` (the first of tied maxima) given ``t = x - x.amax(1)``, which is exactly 0
    at the maxima.  On CPU an equality mask and a matrix-vector product with the column positions,
    because torch's CPU ``argmax``/``max`` reductions are not vectorised and cost 2-3x this; rows with
    a tied (or NaN) maximum fall back to ``argmax``."""
    if x.device.type != "cpu" or x.shape[1] > 2**24:
        return x.argmax(dim=1)
    mask = torch.eq(t, 0.0, out=_take_scratch(t))
    idx = torch.mv(mask, torch.arange(x.shape[1], dtype=x.dtype))
    odd = mask.sum(dim=1) != 1
    _give_scratch(mask)
    if bool(odd.any()):
        idx[odd] = x[odd].argmax(dim=1).to(idx.dtype)
    return idx.long()


# --------------------------------------------------------------------------------------------
# losses
# --------------------------------------------------------------------------------------------
def cross_entropy(
    logits: Tensor, target: Tensor, *, label_smoothing: float = 0.0, reduction: str = "mean"
) -> Tensor:
    r"""Cross entropy :math:`-\log p_y`, optionally with label smoothing ε.

    With smoothing the target is :math:`(1-\varepsilon)e_y + \varepsilon/C` (Szegedy et al., 2016);
    the values equal :func:`torch.nn.functional.cross_entropy` with validated inputs.
    """
    eps = check_param("label_smoothing", label_smoothing, low=0.0, high=1.0)
    if eps == 0.0:
        x, target = _validated(logits, target, reduction)
        return F.cross_entropy(x, target, reduction=reduction)
    x, target, _ = _validated_native(logits, target, reduction)  # the kernels check the targets
    # (1 - eps) * (-log p_y) + eps * mean_k(-log p_k), the definition torch uses; row statistics
    # instead of torch's composite label-smoothing path, which costs 1.5x plain CE on CPU.
    return _row_stats(x, target, log_sum=True, weights=(eps - 1.0, -eps / x.shape[1]), reduction=reduction)


def mae(logits: Tensor, target: Tensor, *, reduction: str = "mean") -> Tensor:
    r"""Mean absolute error on probabilities, :math:`1 - p_y` (Ghosh et al., 2017).

    The L1 distance :math:`\lVert e_y - p\rVert_1 = 2(1 - p_y)` is twice this value; with this
    convention ``gce(q=1) == mae`` exactly.  Symmetric: :math:`\sum_k L(f(x), k) = C - 1`.
    """
    x, target, native = _validated_native(logits, target, reduction)
    if native:
        return _fused(x, target, _native.CE_RCE, (0.0, 1.0, -1.0), reduction)
    return _reduce(-torch.expm1(_row_stats(x, target).squeeze(1)), reduction)


def gce(
    logits: Tensor, target: Tensor, *, q: float = 0.7, k: Optional[float] = None, reduction: str = "mean"
) -> Tensor:
    r"""Generalized cross entropy :math:`(1 - p_y^q)/q` (Zhang & Sabuncu, 2018).

    ``q -> 0`` gives CE, ``q = 1`` gives MAE.  Computed as ``-expm1(q log p_y)/q`` which is exact for
    tiny ``q``.  With truncation ``k`` (truncated GCE, :math:`L_{trunc}`), samples with
    :math:`p_y \le k` get the constant :math:`(1-k^q)/q` and hence no gradient.
    """
    q = check_param("q", q, low=0.0, high=1.0, low_open=True)
    if k is not None:
        k = check_param("k", k, low=0.0, high=1.0, low_open=True, high_open=True)
        const = -math.expm1(q * math.log(k)) / q
    x, target, native = _validated_native(logits, target, reduction)
    if native:
        trunc = (1.0, math.log(k), const) if k is not None else (0.0, 0.0, 0.0)
        return _fused(x, target, _native.GCE, (q,) + trunc, reduction)
    log_py = _row_stats(x, target).squeeze(1)
    loss = -torch.expm1(q * log_py) / q
    if k is not None:
        loss = torch.where(log_py <= math.log(k), torch.full_like(loss, const), loss)
    return _reduce(loss, reduction)


def rce(logits: Tensor, target: Tensor, *, A: float = -4.0, reduction: str = "mean") -> Tensor:
    r"""Reverse cross entropy :math:`-\sum_k p_k \log q_k` with the label distribution q one-hot and
    :math:`\log 0 := A` (Wang et al., 2019), which equals :math:`-A(1 - p_y)`.

    Symmetric: :math:`\sum_k L(f(x), k) = -A(C - 1)`.  ``A = -2`` gives the L1 distance
    :math:`\lVert e_y - p\rVert_1`.
    """
    A = check_param("A", A, high=0.0, high_open=True)
    x, target, native = _validated_native(logits, target, reduction)
    if native:
        return _fused(x, target, _native.CE_RCE, (0.0, 1.0, A), reduction)
    return _reduce(A * torch.expm1(_row_stats(x, target).squeeze(1)), reduction)


def _active_plus_rce(
    active: str,
    logits: Tensor,
    target: Tensor,
    alpha: float,
    beta: float,
    A: float,
    reduction: str,
) -> Tensor:
    r""":math:`\alpha\cdot` (CE or NCE) :math:`+ \beta\cdot\mathrm{RCE}` with validated weights."""
    alpha = check_param("alpha", alpha, low=0.0)
    beta = check_param("beta", beta, low=0.0)
    A = check_param("A", A, high=0.0, high_open=True)
    x, target, native = _validated_native(logits, target, reduction)
    if native:
        formula, flags = (_native.NCE_RCE, _native.SUM) if active == "nce" else (_native.CE_RCE, 0)
        return _fused(x, target, formula, (alpha, beta, A), reduction, flags)
    stats = _row_stats(x, target, log_sum=active == "nce")
    log_py = stats[:, 0]
    first = _nce(log_py, stats[:, 1]) if active == "nce" else -log_py
    return _reduce(alpha * first + beta * A * torch.expm1(log_py), reduction)


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
    return _active_plus_rce("ce", logits, target, alpha, beta, A, reduction)


def _nce(log_py: Tensor, log_sum: Tensor) -> Tensor:
    # log p_y / sum_k log p_k; the denominator is < 0 for C >= 2 and finite for finite logits.
    return log_py / log_sum


def nce(logits: Tensor, target: Tensor, *, reduction: str = "mean") -> Tensor:
    r"""Normalized cross entropy :math:`\log p_y / \sum_k \log p_k` (Ma et al., 2020).

    Values in [0, 1]; symmetric: :math:`\sum_k L(f(x), k) = 1`.
    """
    x, target, native = _validated_native(logits, target, reduction)
    if native:
        return _fused(x, target, _native.NCE_RCE, (1.0, 0.0, -1.0), reduction, _native.SUM)
    stats = _row_stats(x, target, log_sum=True)
    return _reduce(_nce(stats[:, 0], stats[:, 1]), reduction)


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
    return _active_plus_rce("nce", logits, target, alpha, beta, A, reduction)


def focal(logits: Tensor, target: Tensor, *, gamma: float = 2.0, reduction: str = "mean") -> Tensor:
    r"""Focal loss :math:`-(1 - p_y)^\gamma \log p_y` (Lin et al., 2017); ``gamma = 0`` is CE.

    ``1 - p_y`` is computed as ``-expm1(log p_y)``.  For ``0 < gamma < 1`` the base is kept above the
    smallest normal float so that the gradient stays finite when :math:`p_y` rounds to 1.
    """
    gamma = check_param("gamma", gamma, low=0.0)
    x, target, native = _validated_native(logits, target, reduction)
    if native:
        return _fused(x, target, _native.FOCAL, (gamma, torch.finfo(x.dtype).tiny), reduction)
    log_py = _row_stats(x, target).squeeze(1)
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
    x, target, _ = _validated_native(logits, target, reduction)  # the kernels check the targets
    # hard: log p at the predicted class (the first of tied maxima); soft: sum_k p_k log p_k = -H(p).
    if hard:
        return _row_stats(x, target, argmax=True, weights=(-beta, beta - 1.0), reduction=reduction)
    return _row_stats(x, target, entropy=True, weights=(-beta, beta - 1.0), reduction=reduction)


def _permutation(n: int, device: torch.device, generator: Optional[torch.Generator]) -> Tensor:
    if generator is None or generator.device == device:
        return torch.randperm(n, generator=generator, device=device)
    return torch.randperm(n, generator=generator, device=generator.device).to(device)


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
    if isinstance(base, str):
        x, target, native = _validated_native(logits, target, reduction)
    else:
        (x, target), native = _validated(logits, target, reduction), False
    n, c = x.shape
    j = _permutation(n, logits.device, generator)
    k = _permutation(n, logits.device, generator)
    if isinstance(base, str):
        # One pass for both terms: row m's second column holds log p[m, y_k(i)] for the i with j_i = m.
        if native:  # index_copy_ and stack below cost 3x the loss's kernels at C=10
            index, target = torch.empty(n, 2, dtype=torch.long), target.contiguous()
            bad = _native.library().nl_peer_index(target.data_ptr(), j.data_ptr(), k.data_ptr(), n, c,
                                                  index.data_ptr())
            _check_kernel(bad, target, c)
        else:
            index = torch.stack((target, torch.empty_like(target).index_copy_(0, j, target[k])), dim=1)
        # A reduced loss sums the peer terms, so they need not be put back in the order of i.
        if base == "ce" and reduction != "none":  # linear in log p: -log p_y + alpha log p_peer
            return _row_stats(x, index, weights=(-1.0, alpha), reduction=reduction)
        both = _row_stats(x, index)
        fn = _PEER_BASES[base]
        pair = fn(both[:, 1])
        loss = fn(both[:, 0]) - alpha * (pair[j] if reduction == "none" else pair)
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

    The native kernels compute :math:`\log(1 - p_{\bar y}) = \log\sum_{k \ne \bar y} e^{z_k} -
    \mathrm{logsumexp}_k z_k` exactly in every row.  The torch path computes ``-log(-expm1(log
    p_ybar))``; where :math:`p_{\bar y} > 0.999` the rounding inside ``log_softmax`` would dominate
    (and give ``log 0`` once :math:`p_{\bar y}` rounds to 1), so those rows use the exact form
    :math:`\mathrm{logsumexp}_k z_k - \mathrm{logsumexp}_{k \ne \bar y} z_k`.
    """
    x, target, native = _validated_native(logits, target, reduction)
    n, c = x.shape
    gen_device = generator.device if generator is not None else x.device
    shift = torch.randint(1, c, (n,), generator=generator, device=gen_device)
    if gen_device != x.device:
        shift = shift.to(x.device)
    if native:  # the kernel computes log(1 - p_ybar) exactly in every row
        comp, target = torch.empty_like(target), target.contiguous()
        bad = _native.library().nl_comp_index(target.data_ptr(), shift.data_ptr(), n, c, comp.data_ptr())
        _check_kernel(bad, target, c)
        return _fused(x, comp, _native.NEG, (), reduction, _native.COMP)
    comp = (target + shift) % c
    log_pbar = _row_stats(x, comp).squeeze(1)
    risky = log_pbar > math.log(0.999)
    loss = -torch.log(-torch.expm1(torch.where(risky, torch.full_like(log_pbar, -1.0), log_pbar)))
    if bool(risky.any()):
        rows = risky.nonzero().squeeze(1)
        xr = x[rows]
        others = xr.scatter(1, comp[rows].unsqueeze(1), float("-inf"))
        loss = loss.index_put((rows,), torch.logsumexp(xr, dim=1) - torch.logsumexp(others, dim=1))
    return _reduce(loss, reduction)
