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


# --------------------------------------------------------------------------------------------
# forward_correction, backward_correction, nls, poly1, taylor
# --------------------------------------------------------------------------------------------
def forward_correction(z: Tensor, y: Tensor, T: Tensor) -> Tensor:
    """-log (p^T T)_y: the posterior of the noisy label, p^T T, at the given label (Patrini et al., 2017)."""
    noisy_posterior = probs(z) @ T.to(torch.float64)
    return -torch.log((noisy_posterior * onehot(y, z.shape[1])).sum(1))


def backward_correction(z: Tensor, y: Tensor, T: Tensor) -> Tensor:
    """(T^-1 l)_y with l_k = -log p_k, the CE of every label (Patrini et al., 2017)."""
    corrected = -torch.log(probs(z)) @ torch.linalg.inv(T.to(torch.float64)).t()  # row n: T^-1 l(x_n)
    return (corrected * onehot(y, z.shape[1])).sum(1)


def nls(z: Tensor, y: Tensor, smooth_rate: float) -> Tensor:
    """-sum_k t_k log p_k with t = (1 - r) e_y + r / C, r < 0 allowed (Wei et al., 2022)."""
    return cross_entropy(z, y, smooth_rate)


def poly1(z: Tensor, y: Tensor, epsilon: float) -> Tensor:
    """-log p_y + epsilon (1 - p_y) (Leng et al., 2022)."""
    py = p_at(z, y)
    return -torch.log(py) + epsilon * (1 - py)


def taylor(z: Tensor, y: Tensor, order: int) -> Tensor:
    """sum_{k=1}^t (1 - p_y)^k / k, the order-t Taylor series of -log p_y around p_y = 1 (Feng et al., 2020)."""
    u = 1 - p_at(z, y)
    return sum(u**k / k for k in range(1, order + 1))


def anchor_transition_as_released(probs_: "numpy.ndarray", filter_outlier: bool) -> "numpy.ndarray":
    """The anchor-point estimator as the code released with Patrini et al.'s method computes it (in
    the Dual-T authors' copy, a5507203/dual-t-..., ``yuyao/noise/est_t_matrix.py``), in our words.

    For each class i in turn: the anchor is the sample with the largest p_i; with the outlier filter,
    every p_i at or above the 97th percentile of column i (numpy's 'higher' interpolation) is first
    set to 0 *in the array itself* (a view of it), so the largest remaining p_i, just below the
    percentile, wins, and the zeros stay in the array for the classes that follow.  Row i of T is
    the anchor's row of the (by then modified) array.
    """
    import numpy as np

    eta = probs_.copy()  # the caller's array is left alone; the in-place zeros stay inside eta
    c = eta.shape[1]
    T = np.empty((c, c))
    for i in range(c):
        column = eta[:, i]  # a view: zeroing it zeroes eta
        if filter_outlier:
            column[column >= np.percentile(column, 97, method="higher")] = 0.0
        T[i] = eta[int(np.argmax(column))]
    return T
