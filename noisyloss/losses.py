"""``nn.Module`` wrappers of :mod:`noisyloss.functional` and the stateful online label smoothing.

Each wrapper validates its hyper-parameters once in ``__init__`` (so a bad value fails where the
loss is built, not in the middle of training) and calls the functional form in ``forward``.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Union

import torch
from torch import Tensor, nn

from . import functional as NF

__all__ = [
    "CrossEntropyLoss",
    "MAELoss",
    "GCELoss",
    "RCELoss",
    "SCELoss",
    "NCELoss",
    "NCERCELoss",
    "FocalLoss",
    "BootstrapLoss",
    "PeerLoss",
    "NegativeLearningLoss",
    "OnlineLabelSmoothing",
]


class _FunctionalLoss(nn.Module):
    """Calls ``fn(logits, target, **params, reduction=...)``; params are validated at construction."""

    fn: Callable[..., Tensor]

    def __init__(self, reduction: str = "mean", **params: Any) -> None:
        super().__init__()
        NF._check_reduction(reduction)
        self.reduction = reduction
        self.params: Dict[str, Any] = params
        # Validate once, on a tiny CPU batch, through the very same code path as forward()
        # (without the generator, so that building a loss does not advance its random stream).
        checked = {k: v for k, v in params.items() if k != "generator"}
        type(self).fn(torch.zeros(1, 2), torch.zeros(1, dtype=torch.long), **checked)

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return type(self).fn(logits, target, reduction=self.reduction, **self.params)

    def extra_repr(self) -> str:
        items = [f"{k}={v!r}" for k, v in self.params.items() if k != "generator"]
        return ", ".join(items + [f"reduction={self.reduction!r}"])


class CrossEntropyLoss(_FunctionalLoss):
    """Cross entropy with optional label smoothing ε (:func:`noisyloss.functional.cross_entropy`)."""

    fn = staticmethod(NF.cross_entropy)

    def __init__(self, label_smoothing: float = 0.0, reduction: str = "mean") -> None:
        super().__init__(reduction, label_smoothing=label_smoothing)


class MAELoss(_FunctionalLoss):
    """``1 - p_y`` (:func:`noisyloss.functional.mae`)."""

    fn = staticmethod(NF.mae)

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__(reduction)


class GCELoss(_FunctionalLoss):
    """``(1 - p_y^q)/q``, optionally truncated at ``k`` (:func:`noisyloss.functional.gce`)."""

    fn = staticmethod(NF.gce)

    def __init__(self, q: float = 0.7, k: Optional[float] = None, reduction: str = "mean") -> None:
        super().__init__(reduction, q=q, k=k)


class RCELoss(_FunctionalLoss):
    """``-A (1 - p_y)`` (:func:`noisyloss.functional.rce`)."""

    fn = staticmethod(NF.rce)

    def __init__(self, A: float = -4.0, reduction: str = "mean") -> None:
        super().__init__(reduction, A=A)


class SCELoss(_FunctionalLoss):
    """``alpha CE + beta RCE`` (:func:`noisyloss.functional.sce`)."""

    fn = staticmethod(NF.sce)

    def __init__(self, alpha: float = 0.1, beta: float = 1.0, A: float = -4.0, reduction: str = "mean") -> None:
        super().__init__(reduction, alpha=alpha, beta=beta, A=A)


class NCELoss(_FunctionalLoss):
    """``log p_y / sum_k log p_k`` (:func:`noisyloss.functional.nce`)."""

    fn = staticmethod(NF.nce)

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__(reduction)


class NCERCELoss(_FunctionalLoss):
    """``alpha NCE + beta RCE`` (:func:`noisyloss.functional.nce_rce`)."""

    fn = staticmethod(NF.nce_rce)

    def __init__(self, alpha: float = 1.0, beta: float = 1.0, A: float = -4.0, reduction: str = "mean") -> None:
        super().__init__(reduction, alpha=alpha, beta=beta, A=A)


class FocalLoss(_FunctionalLoss):
    """``-(1 - p_y)^gamma log p_y`` (:func:`noisyloss.functional.focal`)."""

    fn = staticmethod(NF.focal)

    def __init__(self, gamma: float = 2.0, reduction: str = "mean") -> None:
        super().__init__(reduction, gamma=gamma)


class BootstrapLoss(_FunctionalLoss):
    """Soft or hard bootstrapping (:func:`noisyloss.functional.bootstrap`)."""

    fn = staticmethod(NF.bootstrap)

    def __init__(self, beta: float = 0.95, hard: bool = False, reduction: str = "mean") -> None:
        super().__init__(reduction, beta=beta, hard=hard)


class PeerLoss(_FunctionalLoss):
    """Peer loss (:func:`noisyloss.functional.peer`)."""

    fn = staticmethod(NF.peer)

    def __init__(
        self,
        alpha: float = 0.5,
        base: Union[str, Callable[..., Tensor]] = "ce",
        generator: Optional[torch.Generator] = None,
        reduction: str = "mean",
    ) -> None:
        super().__init__(reduction, alpha=alpha, base=base, generator=generator)


class NegativeLearningLoss(_FunctionalLoss):
    """``-log(1 - p_ybar)`` with random complementary labels (:func:`noisyloss.functional.negative_learning`)."""

    fn = staticmethod(NF.negative_learning)

    def __init__(self, generator: Optional[torch.Generator] = None, reduction: str = "mean") -> None:
        super().__init__(reduction, generator=generator)


class OnlineLabelSmoothing(nn.Module):
    r"""Online label smoothing (Zhang et al., 2021, "Delving deep into label smoothing").

    The loss is :math:`\alpha\,\mathrm{CE}(p, y) + (1-\alpha)\,\mathrm{CE}(p, S_y)` where row
    :math:`S_y` of the ``(C, C)`` soft-label matrix ``S`` is, for each class, the average predicted
    distribution of the *correctly classified* training samples of that class during the previous
    epoch.  During the first epoch ``S`` is ordinary label smoothing with ``smoothing`` spread over the
    other classes.  Statistics are collected only in training mode; call :meth:`next_epoch` once per
    epoch.  A class with no correct prediction in an epoch keeps its previous row.
    """

    def __init__(
        self, num_classes: int, alpha: float = 0.5, smoothing: float = 0.1, reduction: str = "mean"
    ) -> None:
        super().__init__()
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"num_classes must be an int >= 2, got {num_classes!r}")
        self.alpha = NF.check_param("alpha", alpha, low=0.0, high=1.0)
        smoothing = NF.check_param("smoothing", smoothing, low=0.0, high=1.0, high_open=True)
        NF._check_reduction(reduction)
        self.num_classes = num_classes
        self.reduction = reduction
        soft = torch.full((num_classes, num_classes), smoothing / (num_classes - 1))
        soft.fill_diagonal_(1.0 - smoothing)
        self.register_buffer("soft_labels", soft)
        self.register_buffer("_sum", torch.zeros(num_classes, num_classes))
        self.register_buffer("_count", torch.zeros(num_classes))

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        log_p, target = NF._prepare(logits, target, self.reduction)
        if log_p.shape[1] != self.num_classes:
            raise ValueError(f"logits have C={log_p.shape[1]} classes but num_classes={self.num_classes}")
        hard = -NF._gather(log_p, target)
        soft = -(self.soft_labels[target].to(log_p.dtype) * log_p).sum(dim=1)
        if self.training:
            with torch.no_grad():
                correct = log_p.argmax(dim=1) == target
                y = target[correct]
                self._sum.index_add_(0, y, log_p[correct].exp().to(self._sum.dtype))
                self._count.index_add_(0, y, torch.ones_like(y, dtype=self._count.dtype))
        return NF._reduce(self.alpha * hard + (1.0 - self.alpha) * soft, self.reduction)

    @torch.no_grad()
    def next_epoch(self) -> None:
        """Replace ``S`` by the statistics of the epoch that ended and start collecting anew."""
        seen = self._count > 0
        self.soft_labels[seen] = self._sum[seen] / self._count[seen].unsqueeze(1)
        self._sum.zero_()
        self._count.zero_()

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, alpha={self.alpha}, reduction={self.reduction!r}"
