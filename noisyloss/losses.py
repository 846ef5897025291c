"""``nn.Module`` wrappers of :mod:`noisyloss.functional` and the stateful online label smoothing.

As in :mod:`torch.nn`, a loss Module keeps its hyperparameters as named attributes
(``GCELoss(q=0.7).q``) and its ``forward`` is one call of the functional form.  Every argument is
validated when the Module is built, so a bad value fails where the loss is made, not in the middle
of training.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import functional as NF
from ._checks import check_generator, check_int, check_logits_target, check_param, check_reduction

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


class _Loss(nn.Module):
    """A loss Module: ``reduction`` and the hyperparameters of its functional form ``fn``, each a
    named attribute, checked at construction by ``fn``'s own checks on a one-sample batch (the
    generator by :func:`check_generator`, so that building a loss does not advance its stream)."""

    fn: Callable[..., Tensor]

    def __init__(self, reduction: str, **params: Any) -> None:
        super().__init__()
        self.reduction = check_reduction(reduction)
        check_generator(params.get("generator"))
        type(self).fn(torch.zeros(1, 2), torch.zeros(1, dtype=torch.long),
                      **{k: v for k, v in params.items() if k != "generator"})
        self._names = tuple(params)
        for name, value in params.items():
            setattr(self, name, value)

    @property
    def params(self) -> Dict[str, Any]:
        """The hyperparameters, ``{name: value}``, as ``fn`` takes them."""
        return {name: getattr(self, name) for name in self._names}

    def extra_repr(self) -> str:
        shown = [f"{k}={v!r}" for k, v in self.params.items() if k != "generator"]
        return ", ".join(shown + [f"reduction={self.reduction!r}"])


class CrossEntropyLoss(_Loss):
    """Cross entropy with label smoothing ``label_smoothing`` (:func:`noisyloss.functional.cross_entropy`)."""

    fn = staticmethod(NF.cross_entropy)

    def __init__(self, label_smoothing: float = 0.0, reduction: str = "mean") -> None:
        super().__init__(reduction, label_smoothing=label_smoothing)

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return NF.cross_entropy(logits, target, label_smoothing=self.label_smoothing, reduction=self.reduction)


class MAELoss(_Loss):
    """``1 - p_y`` (:func:`noisyloss.functional.mae`)."""

    fn = staticmethod(NF.mae)

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__(reduction)

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return NF.mae(logits, target, reduction=self.reduction)


class GCELoss(_Loss):
    """``(1 - p_y^q)/q``, truncated below ``p_y = k`` (:func:`noisyloss.functional.gce`)."""

    fn = staticmethod(NF.gce)

    def __init__(self, q: float = 0.7, k: Optional[float] = None, reduction: str = "mean") -> None:
        super().__init__(reduction, q=q, k=k)

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return NF.gce(logits, target, q=self.q, k=self.k, reduction=self.reduction)


class RCELoss(_Loss):
    """``-A (1 - p_y)`` (:func:`noisyloss.functional.rce`)."""

    fn = staticmethod(NF.rce)

    def __init__(self, A: float = -4.0, reduction: str = "mean") -> None:
        super().__init__(reduction, A=A)

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return NF.rce(logits, target, A=self.A, reduction=self.reduction)


class SCELoss(_Loss):
    """``alpha CE + beta RCE`` (:func:`noisyloss.functional.sce`)."""

    fn = staticmethod(NF.sce)

    def __init__(self, alpha: float = 0.1, beta: float = 1.0, A: float = -4.0, reduction: str = "mean") -> None:
        super().__init__(reduction, alpha=alpha, beta=beta, A=A)

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return NF.sce(logits, target, alpha=self.alpha, beta=self.beta, A=self.A, reduction=self.reduction)


class NCELoss(_Loss):
    """``log p_y / sum_k log p_k`` (:func:`noisyloss.functional.nce`)."""

    fn = staticmethod(NF.nce)

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__(reduction)

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return NF.nce(logits, target, reduction=self.reduction)


class NCERCELoss(_Loss):
    """``alpha NCE + beta RCE`` (:func:`noisyloss.functional.nce_rce`)."""

    fn = staticmethod(NF.nce_rce)

    def __init__(self, alpha: float = 1.0, beta: float = 1.0, A: float = -4.0, reduction: str = "mean") -> None:
        super().__init__(reduction, alpha=alpha, beta=beta, A=A)

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return NF.nce_rce(logits, target, alpha=self.alpha, beta=self.beta, A=self.A, reduction=self.reduction)


class FocalLoss(_Loss):
    """``-(1 - p_y)^gamma log p_y`` (:func:`noisyloss.functional.focal`)."""

    fn = staticmethod(NF.focal)

    def __init__(self, gamma: float = 2.0, reduction: str = "mean") -> None:
        super().__init__(reduction, gamma=gamma)

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return NF.focal(logits, target, gamma=self.gamma, reduction=self.reduction)


class BootstrapLoss(_Loss):
    """Soft or hard bootstrapping (:func:`noisyloss.functional.bootstrap`)."""

    fn = staticmethod(NF.bootstrap)

    def __init__(self, beta: float = 0.95, hard: bool = False, reduction: str = "mean") -> None:
        super().__init__(reduction, beta=beta, hard=hard)

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return NF.bootstrap(logits, target, beta=self.beta, hard=self.hard, reduction=self.reduction)


class PeerLoss(_Loss):
    """Peer loss ``base(x_i, y_i) - alpha base(x_j, y_k)`` (:func:`noisyloss.functional.peer`)."""

    fn = staticmethod(NF.peer)

    def __init__(
        self,
        alpha: float = 0.5,
        base: str = "ce",
        generator: Optional[torch.Generator] = None,
        reduction: str = "mean",
    ) -> None:
        super().__init__(reduction, alpha=alpha, base=base, generator=generator)

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return NF.peer(logits, target, alpha=self.alpha, base=self.base, generator=self.generator,
                       reduction=self.reduction)


class NegativeLearningLoss(_Loss):
    """``-log(1 - p_ybar)`` with random complementary labels (:func:`noisyloss.functional.negative_learning`)."""

    fn = staticmethod(NF.negative_learning)

    def __init__(self, generator: Optional[torch.Generator] = None, reduction: str = "mean") -> None:
        super().__init__(reduction, generator=generator)

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return NF.negative_learning(logits, target, generator=self.generator, reduction=self.reduction)


class OnlineLabelSmoothing(nn.Module):
    r"""Online label smoothing (Zhang et al., 2021, "Delving deep into label smoothing").

    The loss is :math:`\alpha\,\mathrm{CE}(p, y) + (1-\alpha)\,\mathrm{CE}(p, S_y)
    = -\sum_k (\alpha [k = y] + (1 - \alpha) S_{yk}) \log p_k`, where row :math:`S_y` of the
    ``(C, C)`` soft-label matrix ``S`` is, for each class, the average predicted distribution of the
    *correctly classified* training samples of that class during the previous epoch.  During the
    first epoch ``S`` is ordinary label smoothing with ``smoothing`` spread over the other classes.
    Statistics are collected only in training mode; call :meth:`next_epoch` once per epoch.  A class
    with no correct prediction in an epoch keeps its previous row.
    """

    def __init__(
        self, num_classes: int, alpha: float = 0.5, smoothing: float = 0.1, reduction: str = "mean"
    ) -> None:
        super().__init__()
        self.num_classes = check_int("num_classes", num_classes, 2)
        self.alpha = check_param("alpha", alpha, low=0.0, high=1.0)
        smoothing = check_param("smoothing", smoothing, low=0.0, high=1.0, high_open=True)
        self.reduction = check_reduction(reduction)
        soft = torch.full((num_classes, num_classes), smoothing / (num_classes - 1))
        soft.fill_diagonal_(1.0 - smoothing)
        self.register_buffer("soft_labels", soft)
        self.register_buffer("_sum", torch.zeros(num_classes, num_classes))
        self.register_buffer("_count", torch.zeros(num_classes))

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        target = check_logits_target(logits, target)
        if logits.shape[1] != self.num_classes:
            raise ValueError(f"logits have C={logits.shape[1]} classes but num_classes={self.num_classes}")
        log_p = F.log_softmax(logits, dim=1, dtype=torch.promote_types(logits.dtype, torch.float32))
        hard = -log_p.gather(1, target.unsqueeze(1)).squeeze(1)
        soft = -(self.soft_labels[target].to(log_p.dtype) * log_p).sum(dim=1)
        if self.training:  # sums over the correctly classified samples, without a host sync
            with torch.no_grad():
                correct = (log_p.argmax(dim=1) == target).to(self._sum.dtype)
                self._sum.index_add_(0, target, log_p.exp().to(self._sum.dtype) * correct.unsqueeze(1))
                self._count.index_add_(0, target, correct)
        return NF.reduce_loss(self.alpha * hard + (1.0 - self.alpha) * soft, self.reduction)

    @torch.no_grad()
    def next_epoch(self) -> None:
        """Replace ``S`` by the statistics of the epoch that ended and start collecting anew."""
        seen = self._count > 0
        self.soft_labels[seen] = self._sum[seen] / self._count[seen].unsqueeze(1)
        self._sum.zero_()
        self._count.zero_()

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, alpha={self.alpha}, reduction={self.reduction!r}"
