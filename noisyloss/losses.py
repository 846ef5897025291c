"""``nn.Module`` forms of the losses of :mod:`noisyloss.functional`, and the stateful losses.

As in :mod:`torch.nn`, a loss Module keeps its hyperparameters as named attributes
(``GCELoss(q=0.7).q``) and its ``forward`` is one call of the functional form.  A Module of a
functional loss states nothing but that function and its parameter check
(:class:`FunctionalLoss`): the function's signature gives the Module's arguments and defaults, and
the check the function runs on every call runs once more when the Module is built, so a bad value
fails where the loss is made, not in the middle of training.

**The training-loop protocol** (the one place it is written down; :func:`noisyloss.train.fit`
follows it, and so should any other loop):

* A loss is called as ``loss_fn(logits, target)``.
* A loss whose class attribute ``needs_index`` is ``True`` keeps per-sample state and is called as
  ``loss_fn(logits, target, index)``, where ``index`` is the ``(B,)`` int64 tensor of the batch
  samples' positions in the training set, on the training device.
* After each training epoch the loop calls ``loss_fn.next_epoch(end)`` on a loss that has a
  ``next_epoch`` method, with ``end`` an :class:`EpochEnd`.
* A loss that needs the number of classes or of training samples takes them as the constructor
  arguments ``num_classes`` and ``num_examples``; the experiment runner sets those itself.
"""
from __future__ import annotations

import functools
import inspect
import math
from typing import Any, Callable, Dict, NamedTuple, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import functional as NF
from ._checks import (check_callable, check_epoch_logits, check_index, check_int, check_invertible, check_same_device,
                      check_labels, check_logits_target, check_param, check_reduction)
from .noise import check_transition, make_transition, parse_noise

__all__ = [
    "EpochEnd",
    "FunctionalLoss",
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
    "ELRLoss",
    "TruncatedGCELoss",
    "ForwardCorrectionLoss",
    "BackwardCorrectionLoss",
    "NLSLoss",
    "Poly1Loss",
    "TaylorLoss",
    "NFLLoss",
    "NGCELoss",
    "NMAELoss",
    "NRCELoss",
    "AGCELoss",
    "AULLoss",
    "AELLoss",
    "NNCELoss",
    "NNFLLoss",
    "ActivePassiveLoss",
    "active_passive_loss",
    "l1_penalty",
]


class EpochEnd(NamedTuple):
    """What the training loop tells a loss's ``next_epoch`` when an epoch ends."""

    epoch: int  #: 1-based: the epoch just finished
    epochs: int  #: the number of epochs of the whole fit
    #: ``(N, C)`` float32 eval-mode logits of the un-augmented training set, in training-set order,
    #: on the training device
    train_logits: Tensor


class _SignatureOfFn:
    """A :class:`FunctionalLoss` class's constructor signature: its ``fn``'s keyword parameters, so
    that ``inspect.signature(GCELoss)`` (and ``help``) shows ``(q=0.7, k=None, reduction='mean')``."""

    def __get__(self, instance: Optional[nn.Module], owner: type) -> Optional[inspect.Signature]:
        if instance is not None:
            return None  # an instance's signature is its __call__'s, as for any Module
        keywords = inspect.signature(owner.fn).parameters.values()
        return inspect.Signature([p.replace(kind=p.POSITIONAL_OR_KEYWORD) for p in keywords
                                  if p.kind is p.KEYWORD_ONLY])


class FunctionalLoss(nn.Module):
    """A loss Module made of a functional loss ``fn`` and the function ``check`` that ``fn`` checks
    its parameters with.

    The keyword parameters of ``fn`` (names, defaults, ending with ``reduction``) are the Module's
    constructor arguments and its attributes; ``check`` takes them in that order (``reduction``
    aside) and returns them checked.  ``forward(logits, target)`` is
    ``fn(logits, target, **params, reduction=reduction)``.  A subclass states just these two::

        class GCELoss(FunctionalLoss):
            fn, check = staticmethod(NF.gce), staticmethod(NF.gce_params)
    """

    fn: Callable[..., Tensor]
    #: ``None`` for a loss without parameters
    check: Optional[Callable[..., Tuple[Any, ...]]] = None
    __signature__ = _SignatureOfFn()

    @classmethod
    def checked_arguments(cls, *args: Any, **kwargs: Any) -> Dict[str, Any]:
        """The constructor's arguments by name, defaults filled in, checked (``reduction`` last)."""
        signature = inspect.signature(cls)
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError as err:
            raise TypeError(f"{cls.__name__}: {err}; it takes {', '.join(signature.parameters)}") from None
        bound.apply_defaults()
        params = dict(bound.arguments)
        reduction = check_reduction(params.pop("reduction"))
        if cls.check is not None:
            params = dict(zip(params, cls.check(**params)))
        return {**params, "reduction": reduction}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()
        params = self.checked_arguments(*args, **kwargs)
        self.reduction = params.pop("reduction")
        self._names = tuple(params)
        for name, value in params.items():
            setattr(self, name, value)

    @property
    def params(self) -> Dict[str, Any]:
        """The hyperparameters, ``{name: value}``, as ``fn`` takes them."""
        return {name: getattr(self, name) for name in self._names}

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return type(self).fn(logits, target, **self.params, reduction=self.reduction)

    def extra_repr(self) -> str:
        shown = [f"{k}={v!r}" for k, v in self.params.items() if k != "generator"]
        return ", ".join(shown + [f"reduction={self.reduction!r}"])


class CrossEntropyLoss(FunctionalLoss):
    """Cross entropy with label smoothing (:func:`noisyloss.functional.cross_entropy`)."""

    fn, check = staticmethod(NF.cross_entropy), staticmethod(NF.cross_entropy_params)


class MAELoss(FunctionalLoss):
    """``1 - p_y`` (:func:`noisyloss.functional.mae`)."""

    fn = staticmethod(NF.mae)


class GCELoss(FunctionalLoss):
    """``(1 - p_y^q)/q``, truncated below ``p_y = k`` (:func:`noisyloss.functional.gce`)."""

    fn, check = staticmethod(NF.gce), staticmethod(NF.gce_params)


class RCELoss(FunctionalLoss):
    """``-A (1 - p_y)`` (:func:`noisyloss.functional.rce`)."""

    fn, check = staticmethod(NF.rce), staticmethod(NF.rce_params)


class SCELoss(FunctionalLoss):
    """``alpha CE + beta RCE`` (:func:`noisyloss.functional.sce`)."""

    fn, check = staticmethod(NF.sce), staticmethod(NF.sce_params)


class NCELoss(FunctionalLoss):
    """``log p_y / sum_k log p_k`` (:func:`noisyloss.functional.nce`)."""

    fn = staticmethod(NF.nce)


class NCERCELoss(FunctionalLoss):
    """``alpha NCE + beta RCE`` (:func:`noisyloss.functional.nce_rce`)."""

    fn, check = staticmethod(NF.nce_rce), staticmethod(NF.sce_params)


class FocalLoss(FunctionalLoss):
    """``-(1 - p_y)^gamma log p_y`` (:func:`noisyloss.functional.focal`)."""

    fn, check = staticmethod(NF.focal), staticmethod(NF.focal_params)


class BootstrapLoss(FunctionalLoss):
    """Soft or hard bootstrapping (:func:`noisyloss.functional.bootstrap`)."""

    fn, check = staticmethod(NF.bootstrap), staticmethod(NF.bootstrap_params)


class PeerLoss(FunctionalLoss):
    """Peer loss ``base(x_i, y_i) - alpha base(x_j, y_k)`` (:func:`noisyloss.functional.peer`)."""

    fn, check = staticmethod(NF.peer), staticmethod(NF.peer_params)


class NegativeLearningLoss(FunctionalLoss):
    """``-log(1 - p_ybar)`` with random complementary labels (:func:`noisyloss.functional.negative_learning`)."""

    fn, check = staticmethod(NF.negative_learning), staticmethod(NF.negative_learning_params)


class OnlineLabelSmoothing(nn.Module):
    r"""Online label smoothing (Zhang et al., 2021, "Delving deep into label smoothing").

    The loss is :math:`\alpha\,\mathrm{CE}(p, y) + (1-\alpha)\,\mathrm{CE}(p, S_y)
    = -\sum_k (\alpha [k = y] + (1 - \alpha) S_{yk}) \log p_k`, where row :math:`S_y` of the
    ``(C, C)`` soft-label matrix ``S`` is, for each class, the average predicted distribution of the
    *correctly classified* training samples of that class during the previous epoch.  During the
    first epoch ``S`` is ordinary label smoothing with ``smoothing`` spread over the other classes.
    Statistics are collected only in training mode; :meth:`next_epoch` is called once per epoch
    (the training-loop protocol of this module).  A class
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
        target = check_logits_target(logits, target, self.num_classes)
        check_same_device("logits", logits, "OnlineLabelSmoothing", self.soft_labels)
        log_p = F.log_softmax(NF.clamp_logits(logits), dim=1)
        hard = -log_p.gather(1, target.unsqueeze(1)).squeeze(1)
        soft = -(self.soft_labels[target].to(log_p.dtype) * log_p).sum(dim=1)
        if self.training:  # sums over the correctly classified samples, without a host sync
            with torch.no_grad():
                correct = (log_p.argmax(dim=1) == target).to(self._sum.dtype)
                self._sum.index_add_(0, target, log_p.exp().to(self._sum.dtype) * correct.unsqueeze(1))
                self._count.index_add_(0, target, correct)
        return NF.reduce_loss(self.alpha * hard + (1.0 - self.alpha) * soft, self.reduction)

    @torch.no_grad()
    def next_epoch(self, end: Optional[EpochEnd] = None) -> None:
        """Replace ``S`` by the statistics of the epoch that ended and start collecting anew
        (``end`` is not needed: the statistics were collected during the epoch)."""
        seen = self._count > 0
        self.soft_labels[seen] = self._sum[seen] / self._count[seen].unsqueeze(1)
        self._sum.zero_()
        self._count.zero_()

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, alpha={self.alpha}, reduction={self.reduction!r}"


class ELRLoss(nn.Module):
    r"""Early-learning regularisation (Liu et al., 2020, "Early-learning regularization prevents
    memorization of noisy labels"):

    .. math:: \ell_i = -\log p_{i y_i} + \lambda \log\bigl(1 - \langle p_i, t_i \rangle\bigr),
       \qquad t_i \leftarrow \beta\, t_i + (1 - \beta)\, \hat p_i,

    where :math:`t_i`, one row per training sample, starting at 0, is a running average of the
    model's predictions for sample :math:`i` over the epochs, updated from the batch's predictions
    *before* it is used.  :math:`\hat p_i` is the prediction detached from the graph, clamped to
    :math:`[10^{-4}, 1 - 10^{-4}]` and renormalised, as in the authors' code
    (shengliu66/ELR, ``ELR/model/loss.py``).  While the model learns the clean patterns early on,
    the regulariser pulls :math:`p_i` towards :math:`t_i`, its own earlier predictions, and away
    from a noisy label it would later memorise.

    The regulariser is computed exactly, without cancellation, as
    :math:`\log \sum_k p_k (1 - t_k) = \operatorname{logsumexp}_k(\log p_k + \log(1 - t_k))`
    (since :math:`\sum_k p_k = 1`).  Its gradient with respect to the logits is
    :math:`r - p` with :math:`r_k \propto p_k (1 - t_k)`, bounded without any clamp, and the clamp on
    :math:`\hat p` keeps every :math:`t_k \le 1 - \delta`, :math:`\delta = \frac{(C-1)10^{-4}}{1 + (C-2)10^{-4}}`,
    so the regulariser is bounded below by :math:`\log \delta`.  The logits pass through
    :func:`noisyloss.functional.clamp_logits`, as every loss's do.

    Where the authors' code differs: it also clamps the prediction inside the regulariser,
    :math:`\log(1 - \langle \mathrm{clamp}(p), t\rangle)`, so a probability above
    :math:`1 - 10^{-4}` or below :math:`10^{-4}` gets no gradient from the regulariser; here every
    probability keeps its exact gradient.  On predictions inside the clamp both are equal.  Their
    ``forward`` takes ``(index, output, label)``, and ``lambda`` and ``beta`` come from the config
    files (``ELR/config_cifar10.json``: ``lam=3``, ``beta=0.7``, our defaults;
    ``ELR/config_cifar100.json``: ``lam=7``, ``beta=0.9``).

    Called as ``forward(logits, target, index)`` (``needs_index``: the training-loop protocol of this
    module); every call updates the rows ``index`` of :attr:`targets`.

    Args:
        num_examples: the number of training samples (rows of :attr:`targets`).
        num_classes: the number of classes.
        lam: :math:`\lambda \ge 0`, the weight of the regulariser.
        beta: :math:`\beta \in [0, 1)`, the momentum of the running average.

    Example:
        >>> loss = ELRLoss(num_examples=4, num_classes=3, lam=3.0, beta=0.7)
        >>> z, y = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]]), torch.tensor([0, 1])
        >>> loss(z, y, torch.tensor([0, 2]))  # CE 0.3955 plus 3 times the mean of log(1 - 0.3 |p|^2)
        tensor(-0.1283)
        >>> loss.targets[[0, 2]].sum(1)  # t = 0.3 * the prediction (no probability is clamped here)
        tensor([0.3000, 0.3000])
    """

    needs_index = True
    #: the clamp of the authors' code on the predictions averaged into the targets
    CLAMP = 1e-4

    def __init__(
        self, num_examples: int, num_classes: int, lam: float = 3.0, beta: float = 0.7, reduction: str = "mean"
    ) -> None:
        super().__init__()
        self.num_examples = check_int("num_examples", num_examples, 1)
        self.num_classes = check_int("num_classes", num_classes, 2)
        self.lam = check_param("lam", lam, low=0.0)
        self.beta = check_param("beta", beta, low=0.0, high=1.0, high_open=True)
        self.reduction = check_reduction(reduction)
        #: ``(num_examples, num_classes)``: the running average :math:`t_i` of each sample's predictions
        self.register_buffer("targets", torch.zeros(num_examples, num_classes))

    def forward(self, logits: Tensor, target: Tensor, index: Tensor) -> Tensor:
        target = check_logits_target(logits, target, self.num_classes)
        index = check_index(index, target, self.num_examples)
        check_same_device("logits", logits, "ELRLoss", self.targets)
        log_p = F.log_softmax(NF.clamp_logits(logits), dim=1)
        with torch.no_grad():
            p = log_p.exp().clamp(self.CLAMP, 1.0 - self.CLAMP)
            p = p / p.sum(dim=1, keepdim=True)
            self.targets[index] = self.beta * self.targets[index] + (1.0 - self.beta) * p.to(self.targets.dtype)
        t = self.targets[index].to(log_p.dtype)
        regulariser = torch.logsumexp(log_p + torch.log1p(-t), dim=1)
        ce = -log_p.gather(1, target.unsqueeze(1)).squeeze(1)
        return NF.reduce_loss(ce + self.lam * regulariser, self.reduction)

    def extra_repr(self) -> str:
        return (f"num_examples={self.num_examples}, num_classes={self.num_classes}, lam={self.lam}, "
                f"beta={self.beta}, reduction={self.reduction!r}")


class TruncatedGCELoss(nn.Module):
    r"""Truncated generalized cross entropy as the paper trains it (Zhang & Sabuncu, 2018,
    "Generalized cross entropy loss for training deep neural networks with noisy labels"): each
    training sample has a weight :math:`w_i \in \{0, 1\}`, starting at 1, and

    .. math:: \ell_i = w_i \Bigl(\frac{1 - p_{i y_i}^q}{q} - \frac{1 - k^q}{q}\Bigr),

    as the authors' code computes it (AlanChou/Truncated-Loss, ``TruncatedLoss.py``).  The paper's
    :math:`L_\mathrm{trunc}` is this plus the constant :math:`(1 - k^q)/q`: a pruned sample
    (:math:`w_i = 0`) contributes that constant and no gradient.  The weights are pruned in rounds:
    before epoch :math:`e` (1-based) for :math:`e` = ``start_prune``, ``start_prune + prune_every``,
    …, i.e. in :meth:`next_epoch` after epoch :math:`e - 1`, every sample gets
    :math:`w_i = [p_{i y_i} > k]` from the model's predictions of the whole training set
    (``EpochEnd.train_logits``), with :math:`y_i` the label the loss last saw for sample :math:`i`
    (a sample the loss has not seen yet keeps its weight).  Between rounds the weights stay fixed.

    :func:`noisyloss.functional.gce` with ``k`` (the ``"gce:k=..."`` spec) is another thing: it
    truncates every sample at every step, from the current batch's predictions.

    How the authors' ``main.py`` schedules it (CIFAR, 120 epochs, ``start_prune=40``): before the
    training pass of each epoch :math:`e \ge 40` with :math:`e` divisible by 10, it reloads the
    checkpoint with the best *test* accuracy so far, runs it in eval mode over the training loader
    *with the training augmentation* (random crops and flips), sets the weights of those samples
    from its outputs, and continues training the current model.  Here the weights come from the
    current model's eval-mode predictions of the un-augmented training set, with no checkpoint chosen
    on test data, and rounds are counted from ``start_prune`` (the authors test :math:`e \bmod 10`,
    the same epochs for their settings).  Their weight test compares the losses,
    :math:`(1 - p^q)/q < (1 - k^q)/q`, which is :math:`p > k`; here it is made on
    :math:`\log p_{y}` against :math:`\log k`.

    Called as ``forward(logits, target, index)`` (``needs_index``, and :meth:`next_epoch`: the
    training-loop protocol of this module).

    Args:
        num_examples: the number of training samples.
        q: :math:`q \in (0, 1]` of GCE.
        k: the threshold :math:`k \in (0, 1)` on :math:`p_y`.
        start_prune: the first epoch (1-based) trained with pruned weights, ``>= 2``.
        prune_every: the number of epochs between rounds, ``>= 1``.

    Example:
        >>> loss = TruncatedGCELoss(num_examples=2, q=0.5, k=0.4, start_prune=2)
        >>> z, y = torch.tensor([[0.5, 0.25, 0.25], [0.2, 0.4, 0.4]]).log(), torch.tensor([0, 0])
        >>> loss(z, y, torch.tensor([0, 1]))  # w = 1: the mean of 2(1 - sqrt(p_y)) - 2(1 - sqrt(0.4))
        tensor(0.1106)
        >>> loss.next_epoch(EpochEnd(epoch=1, epochs=10, train_logits=z))  # before epoch 2: a round
        >>> loss.weights  # p_y = 0.5 > k is kept, p_y = 0.2 pruned
        tensor([1., 0.])
    """

    needs_index = True

    def __init__(
        self,
        num_examples: int,
        q: float = 0.7,
        k: float = 0.5,
        start_prune: int = 40,
        prune_every: int = 10,
        reduction: str = "mean",
    ) -> None:
        super().__init__()
        self.num_examples = check_int("num_examples", num_examples, 1)
        self.q = NF.gce_params(q, None)[0]
        self.k = check_param("k", k, low=0.0, high=1.0, low_open=True, high_open=True)
        self.start_prune = check_int("start_prune", start_prune, 2)
        self.prune_every = check_int("prune_every", prune_every, 1)
        self.reduction = check_reduction(reduction)
        #: ``(num_examples,)``: each sample's weight :math:`w_i`, 1 or 0
        self.register_buffer("weights", torch.ones(num_examples))
        #: ``(num_examples,)``: the label the loss last saw for each sample, -1 before it saw one
        self.register_buffer("labels", torch.full((num_examples,), -1, dtype=torch.long))

    def forward(self, logits: Tensor, target: Tensor, index: Tensor) -> Tensor:
        target = check_logits_target(logits, target)
        index = check_index(index, target, self.num_examples)
        check_same_device("logits", logits, "TruncatedGCELoss", self.weights)
        self.labels[index] = target
        truncated = -math.expm1(self.q * math.log(self.k)) / self.q  # (1 - k^q) / q
        loss = NF.gce(logits, target, q=self.q, reduction="none") - truncated
        return NF.reduce_loss(self.weights[index].to(loss.dtype) * loss, self.reduction)

    def prunes_after(self, epoch: int) -> bool:
        """Whether the weights are pruned at the end of ``epoch`` (1-based), before epoch ``epoch + 1``."""
        upcoming = epoch + 1
        return upcoming >= self.start_prune and (upcoming - self.start_prune) % self.prune_every == 0

    @torch.no_grad()
    def next_epoch(self, end: EpochEnd) -> None:
        """A pruning round when :meth:`prunes_after` ``end.epoch``: :math:`w_i = [p_{i y_i} > k]`."""
        if not self.prunes_after(end.epoch):
            return
        logits = check_epoch_logits(end.train_logits, self.num_examples)
        check_same_device("train_logits", logits, "TruncatedGCELoss", self.weights)
        seen = self.labels >= 0
        check_labels("the labels the loss saw", self.labels[seen], logits.shape[1])
        log_p = F.log_softmax(NF.clamp_logits(logits), dim=1)
        log_py = log_p.gather(1, self.labels.clamp(min=0).unsqueeze(1)).squeeze(1)
        self.weights.copy_(torch.where(seen, (log_py > math.log(self.k)).to(self.weights.dtype), self.weights))

    def extra_repr(self) -> str:
        return (f"num_examples={self.num_examples}, q={self.q}, k={self.k}, start_prune={self.start_prune}, "
                f"prune_every={self.prune_every}, reduction={self.reduction!r}")
class ForwardCorrectionLoss(FunctionalLoss):
    """Forward loss correction ``-log (p^T T)_y`` (:func:`noisyloss.functional.forward_correction`).

    ``T`` is a ``(C, C)`` row-stochastic matrix, or a noise spec of
    :func:`noisyloss.noise.make_transition` (``"sym:0.4"``, ``"asym:0.4:1>7,7>1"``).  With
    ``num_classes`` (the experiment runner passes it) a spec is built once, and the matrix is the
    buffer ``T``, which moves with the Module (``.to(device)``); without it, a spec is kept and built
    on every call for the logits' ``C`` classes.
    """

    fn = staticmethod(NF.forward_correction)
    __signature__ = None  # the constructor's own: (T, num_classes=None, reduction='mean')
    #: whether ``T`` must be invertible
    invertible = False

    @classmethod
    def checked_arguments(cls, T: Union[Tensor, str], num_classes: Optional[int] = None,
                          reduction: str = "mean") -> Dict[str, Any]:
        """``{"T": the checked matrix (or noise spec, without num_classes), "reduction": ...}``."""
        reduction = check_reduction(reduction)
        if num_classes is not None:
            num_classes = check_int("num_classes", num_classes, 2)
        if isinstance(T, str):
            parse_noise(T)
            if num_classes is None:
                return {"T": T, "reduction": reduction}
            T = make_transition(T, num_classes)
        T = check_transition(T, num_classes)
        if cls.invertible:
            check_invertible("T", T)
        return {"T": T, "reduction": reduction}

    def __init__(self, T: Union[Tensor, str], num_classes: Optional[int] = None, reduction: str = "mean") -> None:
        nn.Module.__init__(self)
        params = self.checked_arguments(T, num_classes, reduction)
        self.reduction, self._names = params["reduction"], ("T",)
        if isinstance(params["T"], Tensor):
            self.register_buffer("T", params["T"])
        else:
            self.T = params["T"]

    def extra_repr(self) -> str:
        T = f"{self.T.shape[0]}x{self.T.shape[1]} matrix" if isinstance(self.T, Tensor) else repr(self.T)
        return f"T={T}, reduction={self.reduction!r}"


class BackwardCorrectionLoss(ForwardCorrectionLoss):
    """Backward loss correction ``(T^-1 l)_y``, ``l_k = -log p_k``
    (:func:`noisyloss.functional.backward_correction`); ``T`` as in :class:`ForwardCorrectionLoss`,
    invertible."""

    fn = staticmethod(NF.backward_correction)
    invertible = True


class NLSLoss(FunctionalLoss):
    """Negative label smoothing: label smoothing with ``smooth_rate <= 1``, negative allowed
    (:func:`noisyloss.functional.nls`)."""

    fn, check = staticmethod(NF.nls), staticmethod(NF.nls_params)


class Poly1Loss(FunctionalLoss):
    """Poly-1: ``-log p_y + epsilon (1 - p_y)`` (:func:`noisyloss.functional.poly1`)."""

    fn, check = staticmethod(NF.poly1), staticmethod(NF.poly1_params)


class TaylorLoss(FunctionalLoss):
    """Taylor cross entropy ``sum_{k<=order} (1 - p_y)^k / k`` (:func:`noisyloss.functional.taylor`)."""

    fn, check = staticmethod(NF.taylor), staticmethod(NF.taylor_params)
# ----------------------------------------------------------------------------------------------
# normalised, asymmetric and active negative losses (Ma et al. 2020; Zhou et al. 2021; Ye et al. 2023)
# ----------------------------------------------------------------------------------------------
class NFLLoss(FunctionalLoss):
    """Normalised focal loss (:func:`noisyloss.functional.nfl`)."""

    fn, check = staticmethod(NF.nfl), staticmethod(NF.focal_params)


class NGCELoss(FunctionalLoss):
    """Normalised GCE (:func:`noisyloss.functional.ngce`)."""

    fn, check = staticmethod(NF.ngce), staticmethod(NF.ngce_params)


class NMAELoss(FunctionalLoss):
    """``(1 - p_y) / (C - 1)`` (:func:`noisyloss.functional.nmae`)."""

    fn = staticmethod(NF.nmae)


class NRCELoss(FunctionalLoss):
    """Normalised RCE, equal to NMAE (:func:`noisyloss.functional.nrce`)."""

    fn = staticmethod(NF.nrce)


class AGCELoss(FunctionalLoss):
    """``((a + 1)^q - (a + p_y)^q) / q`` (:func:`noisyloss.functional.agce`)."""

    fn, check = staticmethod(NF.agce), staticmethod(NF.agce_params)


class AULLoss(FunctionalLoss):
    """``((a - p_y)^q - (a - 1)^q) / q`` (:func:`noisyloss.functional.aul`)."""

    fn, check = staticmethod(NF.aul), staticmethod(NF.aul_params)


class AELLoss(FunctionalLoss):
    """``exp(-p_y / a)`` (:func:`noisyloss.functional.ael`)."""

    fn, check = staticmethod(NF.ael), staticmethod(NF.ael_params)


class NNCELoss(FunctionalLoss):
    """Normalised negative cross entropy (:func:`noisyloss.functional.nnce`)."""

    fn, check = staticmethod(NF.nnce), staticmethod(NF.nnce_params)


class NNFLLoss(FunctionalLoss):
    """Normalised negative focal loss (:func:`noisyloss.functional.nnfl`)."""

    fn, check = staticmethod(NF.nnfl), staticmethod(NF.nnfl_params)


def _bound(loss: FunctionalLoss) -> Callable[..., Tensor]:
    """A functional loss Module's function with its parameters bound."""
    return functools.partial(type(loss).fn, **loss.params)


class ActivePassiveLoss(nn.Module):
    r"""``alpha * active + beta * passive`` of two functional loss Modules
    (:func:`noisyloss.functional.apl`; Ma et al., 2020), e.g.
    ``ActivePassiveLoss(NFLLoss(gamma=0.5), RCELoss(A="code"), alpha=10, beta=0.1)``.

    The sub-losses are the children ``active`` and ``passive`` (their own ``reduction`` is unused);
    the spec ``apl:active=...,passive=...`` builds one.  A pair with a name and its parameters as
    attributes is :func:`active_passive_loss`'s class.  The active negative losses of Ye et al. (2023)
    have this shape with a normalised negative loss as ``passive``; their weight penalty is
    :func:`l1_penalty`.
    """

    def __init__(
        self, active: FunctionalLoss, passive: FunctionalLoss, alpha: float = 1.0, beta: float = 1.0,
        reduction: str = "mean",
    ) -> None:
        super().__init__()
        for name, loss in (("active", active), ("passive", passive)):
            if not isinstance(loss, FunctionalLoss):
                raise TypeError(f"{name} must be a FunctionalLoss Module (a loss with a functional form), "
                                f"got {type(loss).__name__}")
        self.active, self.passive = active, passive
        self.alpha, self.beta = NF.apl_params(alpha, beta)
        self.reduction = check_reduction(reduction)

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return NF.apl(logits, target, active=_bound(self.active), passive=_bound(self.passive),
                      alpha=self.alpha, beta=self.beta, reduction=self.reduction)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha!r}, beta={self.beta!r}, reduction={self.reduction!r}"


def active_passive_loss(active: type, passive: type) -> type:
    """The :class:`FunctionalLoss` class of ``alpha * active + beta * passive`` for two
    :class:`FunctionalLoss` classes (:func:`noisyloss.functional.apl`): its parameters are ``alpha``,
    ``beta``, then those of both losses; a parameter both take (``gamma`` of ANL-FL's NFL and NNFL,
    shared as the ANL code shares it) is one value given to both, with the active loss's default.
    The published pairs are registered so (``nfl_rce``, ``nce_agce``, ``anl_ce``, ...); name one of
    your own with ``register_loss("ngce_agce", active_passive_loss(NGCELoss, AGCELoss))``."""
    for name, cls in (("active", active), ("passive", passive)):
        if not (isinstance(cls, type) and issubclass(cls, FunctionalLoss)):
            raise TypeError(f"{name} must be a FunctionalLoss subclass, got {cls!r}")
    keyword = inspect.Parameter.KEYWORD_ONLY
    weights = [inspect.Parameter("alpha", keyword, default=1.0), inspect.Parameter("beta", keyword, default=1.0)]
    own = {cls: [p for p in inspect.signature(cls).parameters.values() if p.name != "reduction"]
           for cls in (active, passive)}
    params: Dict[str, inspect.Parameter] = {}
    for p in (*weights, *own[active], *own[passive]):  # the first of a shared name
        params.setdefault(p.name, p.replace(kind=keyword))
    names = {cls: [p.name for p in own[cls]] for cls in own}
    defaults = {name: p.default for name, p in params.items()}

    def fn(logits: Tensor, target: Tensor, *, reduction: str = "mean", **given: Any) -> Tensor:
        unknown = sorted(set(given) - set(params))
        if unknown:
            raise TypeError(f"unexpected keyword arguments {unknown}; this loss takes {list(params)}")
        given = {**defaults, **given}
        bound = {cls: functools.partial(cls.fn, **{n: given[n] for n in names[cls]}) for cls in (active, passive)}
        return NF.apl(logits, target, active=bound[active], passive=bound[passive], alpha=given["alpha"],
                      beta=given["beta"], reduction=reduction)

    def check(**given: Any) -> Tuple[Any, ...]:
        checked = dict(zip(("alpha", "beta"), NF.apl_params(given["alpha"], given["beta"])))
        for cls in (active, passive):
            if cls.check is not None:
                checked.update(zip(names[cls], cls.check(**{n: given[n] for n in names[cls]})))
        return tuple(checked.get(n, value) for n, value in given.items())

    positional = inspect.Parameter.POSITIONAL_OR_KEYWORD
    fn.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter("logits", positional), inspect.Parameter("target", positional), *params.values(),
         inspect.Parameter("reduction", keyword, default="mean")])
    check.__signature__ = inspect.Signature([inspect.Parameter(n, keyword) for n in params])  # type: ignore
    doc = f"``alpha {active.__name__} + beta {passive.__name__}`` (:func:`noisyloss.functional.apl`)."
    return type(f"{active.__name__[:-4]}{passive.__name__[:-4]}Loss", (FunctionalLoss,),
                {"fn": staticmethod(fn), "check": staticmethod(check), "__doc__": doc, "__module__": __name__})


def l1_penalty(
    optimizer: Callable[..., torch.optim.Optimizer], delta: float
) -> Callable[..., torch.optim.Optimizer]:
    r"""An optimizer factory (``optimizer(params) -> Optimizer``, e.g. :func:`noisyloss.train.sgd`)
    whose optimizer also minimises :math:`\delta \sum_\theta |\theta|`, the weight penalty of the
    active negative losses (Ye et al., 2023): before every step it adds
    :math:`\delta\,\mathrm{sign}(\theta)` to each parameter's gradient.

    The ANL code adds ``delta * sum(p.abs().sum() for p in model.parameters())`` to the loss, with
    weight decay 0, and clips the gradient norm at 5 after that; here the penalty's gradient comes
    after :func:`~noisyloss.train.fit`'s ``grad_clip``, so only the loss's gradient is clipped.  Its
    ANL recipe: ``fit(..., optimizer=l1_penalty(sgd(lr, weight_decay=0), delta), grad_clip=5.0)``.
    """
    optimizer = check_callable("optimizer", optimizer)
    delta = check_param("delta", delta, low=0.0)

    def factory(params: Any) -> torch.optim.Optimizer:
        opt = optimizer(params)

        def add_penalty_gradient(opt: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
            with torch.no_grad():
                for group in opt.param_groups:
                    for p in group["params"]:
                        if p.grad is not None:
                            p.grad.add_(p.sign(), alpha=delta)

        opt.register_step_pre_hook(add_penalty_gradient)
        return opt

    return factory
