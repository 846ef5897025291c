"""The losses as the papers write them, in float64 from naive softmax probabilities.

Independent of :mod:`noisyloss.functional`: no log_softmax, no expm1 or logsumexp, one-hot vectors
instead of gathers, so that an error in the library cannot also be in its reference.  Each takes
float64 logits ``z`` ``(N, C)`` and targets ``y`` ``(N,)`` and returns the per-sample losses ``(N,)``,
differentiable by autograd.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor


def probs(z: Tensor) -> Tensor:
    """softmax, written out: exp(z - max) / sum."""
    e = torch.exp(z - z.max(dim=1, keepdim=True).values.detach())
    return e / e.sum(dim=1, keepdim=True)


def onehot(y: Tensor, c: int) -> Tensor:
    return torch.eye(c, dtype=torch.float64)[y]


def p_at(z: Tensor, y: Tensor) -> Tensor:
    """p_y for every row."""
    return (probs(z) * onehot(y, z.shape[1])).sum(1)


def cross_entropy(z: Tensor, y: Tensor, label_smoothing: float = 0.0) -> Tensor:
    """-sum_k t_k log p_k with t = (1 - eps) e_y + eps / C (Szegedy et al., 2016)."""
    c = z.shape[1]
    t = (1 - label_smoothing) * onehot(y, c) + label_smoothing / c
    return -(t * torch.log(probs(z))).sum(1)


def mae(z: Tensor, y: Tensor) -> Tensor:
    """1 - p_y, half the L1 distance between e_y and p (Ghosh et al., 2017)."""
    return 1 - p_at(z, y)


def gce(z: Tensor, y: Tensor, q: float, k: Optional[float] = None) -> Tensor:
    """(1 - p_y^q) / q, the constant (1 - k^q) / q where p_y <= k (Zhang & Sabuncu, 2018)."""
    py = p_at(z, y)
    loss = (1 - py**q) / q
    if k is not None:
        loss = torch.where(py <= k, torch.full_like(loss, (1 - k**q) / q), loss)
    return loss


def rce(z: Tensor, y: Tensor, A: float) -> Tensor:
    """-sum_k p_k log q_k with q the one-hot label and log 0 := A (Wang et al., 2019)."""
    log_q = A * (1 - onehot(y, z.shape[1]))  # log 1 = 0 at the label, A elsewhere
    return -(probs(z) * log_q).sum(1)


def sce(z: Tensor, y: Tensor, alpha: float, beta: float, A: float) -> Tensor:
    return alpha * cross_entropy(z, y) + beta * rce(z, y, A)


def nce(z: Tensor, y: Tensor) -> Tensor:
    """-log p_y / -sum_k log p_k (Ma et al., 2020)."""
    log_p = torch.log(probs(z))
    return (log_p * onehot(y, z.shape[1])).sum(1) / log_p.sum(1)


def nce_rce(z: Tensor, y: Tensor, alpha: float, beta: float, A: float) -> Tensor:
    return alpha * nce(z, y) + beta * rce(z, y, A)


def focal(z: Tensor, y: Tensor, gamma: float) -> Tensor:
    """-(1 - p_y)^gamma log p_y (Lin et al., 2017)."""
    py = p_at(z, y)
    return -((1 - py) ** gamma) * torch.log(py)


def bootstrap(z: Tensor, y: Tensor, beta: float, hard: bool = False) -> Tensor:
    """-sum_k (beta e_y + (1 - beta) t)_k log p_k, t = p (soft) or the one-hot argmax (Reed et al., 2015)."""
    p, c = probs(z), z.shape[1]
    t = onehot(p.detach().argmax(1), c) if hard else p
    return -((beta * onehot(y, c) + (1 - beta) * t) * torch.log(p)).sum(1)


def peer(z: Tensor, y: Tensor, alpha: float, base: str, j: Tensor, k: Tensor) -> Tensor:
    """base(z_i, y_i) - alpha base(z_{j_i}, y_{k_i}) for given permutations j, k (Liu & Guo, 2020)."""
    ell = cross_entropy if base == "ce" else mae
    return ell(z, y) - alpha * ell(z[j], y[k])


def negative_learning(z: Tensor, ybar: Tensor) -> Tensor:
    """-log(1 - p_ybar) for given complementary labels (Kim et al., 2019)."""
    return -torch.log(1 - p_at(z, ybar))


def rce_reference_code(z: Tensor, y: Tensor) -> Tensor:
    """RCE as the SCE and APL authors' code computes it: the predicted probabilities kept in
    [1e-7, 1], the one-hot label kept in [1e-4, 1], then -sum_k p_k log label_k."""
    p = probs(z).clamp(1e-7, 1.0)
    label = onehot(y, z.shape[1]).clamp(1e-4, 1.0)
    return -(p * torch.log(label)).sum(1)
