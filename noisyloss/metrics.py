r"""Evaluation metrics: accuracy, per-class accuracy and calibration (ECE, reliability bins).

Calibration follows Guo et al. (2017): with confidence :math:`c_n = \max_k p_{nk}` and prediction
:math:`\hat y_n = \arg\max_k p_{nk}`, samples are grouped into ``n_bins`` equal-width bins
:math:`B_b = (\frac{b-1}{M}, \frac{b}{M}]` (the first bin also holds 0) and

.. math:: \mathrm{ECE} = \sum_b \frac{|B_b|}{N}\,\bigl|\mathrm{acc}(B_b) - \mathrm{conf}(B_b)\bigr|.
"""
from __future__ import annotations

from typing import Dict, Tuple

import numpy as np
import torch
from torch import Tensor

from ._checks import check_int, check_labels

__all__ = ["accuracy", "per_class_accuracy", "ece", "reliability"]

#: tolerance on the row sums of a probability matrix (loose enough for bf16 softmax outputs)
_PROB_SUM_TOL = 1e-2


def _check_labels(labels: object) -> Tensor:
    labels = check_labels("labels", labels)
    if labels.numel() == 0:
        raise ValueError("labels must have at least one sample")
    return labels


def _predictions(logits_or_pred: object, labels: object) -> Tuple[Tensor, Tensor]:
    """``(pred, labels)`` on the labels' device: argmax of ``(N, C)`` scores (labels checked in
    ``[0, C)``), or ``(N,)`` class indices."""
    labels = _check_labels(labels)
    if not isinstance(logits_or_pred, Tensor):
        raise TypeError(f"logits_or_pred must be a torch.Tensor, got {type(logits_or_pred).__name__}")
    if logits_or_pred.is_floating_point() and logits_or_pred.dim() == 2:
        check_labels("labels", labels, logits_or_pred.shape[1])
        pred = logits_or_pred.argmax(dim=1)
    elif not logits_or_pred.is_floating_point() and logits_or_pred.dtype != torch.bool and logits_or_pred.dim() == 1:
        pred = logits_or_pred
    else:
        raise ValueError("logits_or_pred must be (N, C) floating scores or (N,) integer predictions, "
                         f"got shape {tuple(logits_or_pred.shape)} and dtype {logits_or_pred.dtype}")
    if pred.shape[0] != labels.shape[0]:
        raise ValueError(f"logits_or_pred has {pred.shape[0]} samples but labels has {labels.shape[0]}")
    return pred.to(labels.device), labels


def accuracy(logits_or_pred: Tensor, labels: Tensor) -> float:
    """Fraction of samples whose prediction (argmax of the scores, or the given class) equals the label."""
    pred, labels = _predictions(logits_or_pred, labels)
    return float((pred == labels).double().mean())


def per_class_accuracy(logits_or_pred: Tensor, labels: Tensor, num_classes: int) -> Tensor:
    """Accuracy on the samples of each class, ``(C,)`` float64 on CPU; NaN for a class with no sample.
    Scores ``(N, C)`` must have ``C = num_classes`` columns."""
    num_classes = check_int("num_classes", num_classes, 1)
    if isinstance(logits_or_pred, Tensor) and logits_or_pred.dim() == 2 and logits_or_pred.shape[1] != num_classes:
        raise ValueError(f"logits_or_pred must have num_classes = {num_classes} columns, "
                         f"got shape {tuple(logits_or_pred.shape)}")
    pred, labels = _predictions(logits_or_pred, labels)
    check_labels("labels", labels, num_classes)
    total = torch.bincount(labels, minlength=num_classes).double()
    hits = torch.bincount(labels, weights=(pred == labels).double(), minlength=num_classes)
    return (hits / total).cpu()


def reliability(probs: Tensor, labels: Tensor, n_bins: int = 15) -> Dict[str, np.ndarray]:
    """Reliability-diagram bins: ``edges`` (``n_bins + 1``), and per bin the mean ``confidence``, the
    ``accuracy`` (both NaN for an empty bin) and the sample ``count``.  ``labels`` lie in ``[0, C)``."""
    labels = _check_labels(labels)
    n_bins = check_int("n_bins", n_bins, 1)
    if not isinstance(probs, Tensor):
        raise TypeError(f"probs must be a torch.Tensor, got {type(probs).__name__}")
    if not probs.is_floating_point() or probs.dim() != 2:
        raise ValueError(f"probs must be an (N, C) floating tensor, got shape {tuple(probs.shape)} and "
                         f"dtype {probs.dtype}")
    if probs.shape[0] != labels.shape[0]:
        raise ValueError(f"probs has {probs.shape[0]} samples but labels has {labels.shape[0]}")
    check_labels("labels", labels, probs.shape[1])
    p = probs.detach().to(device="cpu", dtype=torch.float64)
    if not bool(torch.isfinite(p).all()) or bool((p < 0).any()) or float((p.sum(1) - 1).abs().max()) > _PROB_SUM_TOL:
        raise ValueError("probs must be probabilities: finite, nonnegative, rows summing to 1 (softmax the logits)")
    conf, pred = p.max(dim=1)
    correct = (pred == labels.cpu()).double()
    edges = torch.linspace(0.0, 1.0, n_bins + 1, dtype=torch.float64)
    bins = torch.bucketize(conf, edges[1:-1])  # bin b holds (edges[b], edges[b+1]]
    count = torch.bincount(bins, minlength=n_bins)
    n = count.double()
    return {
        "edges": edges.numpy(),
        "confidence": (torch.bincount(bins, weights=conf, minlength=n_bins) / n).numpy(),
        "accuracy": (torch.bincount(bins, weights=correct, minlength=n_bins) / n).numpy(),
        "count": count.numpy(),
    }


def ece(probs: Tensor, labels: Tensor, n_bins: int = 15) -> float:
    """Expected calibration error over ``n_bins`` equal-width confidence bins (Guo et al., 2017)."""
    rel = reliability(probs, labels, n_bins)
    filled = rel["count"] > 0
    weights = rel["count"][filled] / rel["count"].sum()
    return float(np.sum(weights * np.abs(rel["accuracy"][filled] - rel["confidence"][filled])))
