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
# ----------------------------------------------------------------------------------------------
# normalised, asymmetric and active negative losses (Ma et al. 2020; Zhou et al. 2021; Ye et al. 2023)
# ----------------------------------------------------------------------------------------------
def normalised(loss, z: Tensor, y: Tensor, **params) -> Tensor:
    """Ma et al.'s normalisation of any loss: L(f(x), y) / sum_k L(f(x), k), the sum over every label."""
    c = z.shape[1]
    total = sum(loss(z, torch.full_like(y, k), **params) for k in range(c))
    return loss(z, y, **params) / total


def nfl(z: Tensor, y: Tensor, gamma: float) -> Tensor:
    """normalised focal loss (Ma et al., 2020)."""
    return normalised(focal, z, y, gamma=gamma)


def ngce(z: Tensor, y: Tensor, q: float) -> Tensor:
    """normalised GCE (Ma et al., 2020)."""
    return normalised(gce, z, y, q=q)


def l1_distance(z: Tensor, y: Tensor) -> Tensor:
    """||e_y - p||_1 = 2 (1 - p_y): MAE as Ghosh et al. write it."""
    return (onehot(y, z.shape[1]) - probs(z)).abs().sum(1)


def nmae(z: Tensor, y: Tensor) -> Tensor:
    """normalised MAE (Ma et al., 2020), from the L1 distance: the scale of the base loss cancels."""
    return normalised(l1_distance, z, y)


def nrce(z: Tensor, y: Tensor, A: float) -> Tensor:
    """normalised RCE (Ma et al., 2020); A cancels."""
    return normalised(rce, z, y, A=A)


def agce(z: Tensor, y: Tensor, a: float, q: float) -> Tensor:
    """((a + 1)^q - (a + p_y)^q) / q (Zhou et al., 2021)."""
    return ((a + 1) ** q - (a + p_at(z, y)) ** q) / q


def aul(z: Tensor, y: Tensor, a: float, q: float) -> Tensor:
    """((a - p_y)^q - (a - 1)^q) / q (Zhou et al., 2021)."""
    return ((a - p_at(z, y)) ** q - (a - 1) ** q) / q


def ael(z: Tensor, y: Tensor, a: float) -> Tensor:
    """exp(-p_y / a) (Zhou et al., 2021)."""
    return torch.exp(-p_at(z, y) / a)


def _clamped_focal(p: Tensor, gamma: float, m: float) -> Tensor:
    """-(1 - p)^gamma log p with p clamped below at m, every entry."""
    p = p.clamp(min=m)
    return -((1 - p) ** gamma) * torch.log(p)


def nnfl(z: Tensor, y: Tensor, gamma: float, min_prob: float) -> Tensor:
    """1 - (A - FL_y) / sum_k (A - FL_k), A = FL at p = min_prob, p clamped at min_prob (Ye et al., 2023)."""
    fl = _clamped_focal(probs(z), gamma, min_prob)
    A = -((1 - min_prob) ** gamma) * torch.log(torch.tensor(min_prob, dtype=torch.float64))
    negative = A - fl
    return 1 - (negative * onehot(y, z.shape[1])).sum(1) / negative.sum(1)


def nnce(z: Tensor, y: Tensor, min_prob: float) -> Tensor:
    """nnfl at gamma = 0: 1 - (A - CE_y) / sum_k (A - CE_k), A = -log min_prob (Ye et al., 2023)."""
    return nnfl(z, y, 0.0, min_prob)


# the same losses as their authors' code computes them (APL: HanxunH/Active-Passive-Losses loss.py;
# ALFs: hitcszx/ALFs lnl/losses.py; ANL: Virusdoll/Active-Negative-Loss loss.py), in our words
def apl_code_nrce(z: Tensor, y: Tensor) -> Tensor:
    """APL's NormalizedReverseCrossEntropy: rce_reference_code times 1 / 4 * (C - 1), which Python
    reads as (C - 1)/4."""
    return 1 / 4 * (z.shape[1] - 1) * rce_reference_code(z, y)


def apl_code_nmae(z: Tensor, y: Tensor) -> Tensor:
    """APL's NormalizedMeanAbsoluteError: (1 - p_y) / (2 (C - 1))."""
    return (1 - p_at(z, y)) / (2 * (z.shape[1] - 1))


def alfs_code_nmae(z: Tensor, y: Tensor) -> Tensor:
    """ALFs' NMAE: (1 - p_y) / (C - 1)."""
    return (1 - p_at(z, y)) / (z.shape[1] - 1)


def apl_code_ngce(z: Tensor, y: Tensor, q: float) -> Tensor:
    """APL's NormalizedGeneralizedCrossEntropy: p clamped to [1e-7, 1], (1 - p_y^q) / (C - sum_k p_k^q)."""
    p = probs(z).clamp(1e-7, 1.0)
    return (1 - (p * onehot(y, z.shape[1])).sum(1) ** q) / (z.shape[1] - (p**q).sum(1))


def code_nfl(z: Tensor, y: Tensor, gamma: float) -> Tensor:
    """NormalizedFocalLoss of APL, ALFs and ANL: the weights (1 - p_k)^gamma computed from detached
    probabilities, in the numerator and in the normaliser sum_k -(1 - p_k)^gamma log p_k."""
    log_p = torch.log(probs(z))
    weights = (1 - log_p.detach().exp()) ** gamma
    return (weights * log_p * onehot(y, z.shape[1])).sum(1) / (weights * log_p).sum(1)


def anl_code_nnce(z: Tensor, y: Tensor, min_prob: float) -> Tensor:
    """ANL's NormalizedNegativeCrossEntropy: p clamped to [min_prob, 1], l_k = -log(min_prob) + log p_k,
    1 - l_y / sum_k l_k."""
    l = -torch.log(torch.tensor(min_prob, dtype=torch.float64)) + torch.log(probs(z).clamp(min=min_prob, max=1))
    return 1 - (l * onehot(y, z.shape[1])).sum(1) / l.sum(1)


def anl_code_nnfl(z: Tensor, y: Tensor, gamma: float, min_prob: float) -> Tensor:
    """ANL's NormalizedNegativeFocalLoss: log p clamped below at log(min_prob); the focal weights
    (1 - p)^gamma from detached probabilities; 1 - (A - FL_y) / (C A - sum_k FL_k)."""
    log_m = torch.log(torch.tensor(min_prob, dtype=torch.float64))
    log_p = torch.log(probs(z)).clamp(min=log_m)
    fl = -((1 - log_p.detach().exp()) ** gamma) * log_p
    A = -((1 - min_prob) ** gamma) * log_m
    return 1 - (A - (fl * onehot(y, z.shape[1])).sum(1)) / (z.shape[1] * A - fl.sum(1))
