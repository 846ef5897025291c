r"""Label-noise models: class-conditional transition matrices and sampling noisy labels from them.

A transition matrix :math:`T` has entries :math:`T_{ij} = P(\tilde y = j \mid y = i)`: row ``i`` is
the distribution of the observed (noisy) label of a sample whose true class is ``i``.  Every matrix
here is ``(C, C)`` float64, nonnegative, with rows summing to 1; :func:`make_transition` names each
noise model by one spec string (``"sym:0.4"``), as the CLI and sweeps do.
"""
from __future__ import annotations

import math
import numbers
from typing import Dict, Mapping, NamedTuple, Optional, Tuple, Union

import torch
from torch import Tensor

from ._checks import check_bool, check_generator, check_int, check_labels, check_param, check_probabilities

__all__ = [
    "CIFAR10_CLASSES", "CIFAR100_COARSE", "symmetric", "pair_flip", "cifar10_asymmetric", "cifar100_asymmetric",
    "CLASS_PAIRS", "class_pairs", "NoiseSpec", "parse_noise", "make_transition", "check_transition", "Corrupted",
    "corrupt", "estimate_transition", "nearest_example_labels", "estimate_transition_anchor",
]

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")

#: CIFAR-100 fine label -> coarse (super-class) label, in torchvision's fine-label order
#: (``coarse_labels`` of the original ``train`` pickle); each of the 20 super-classes has 5 classes.
CIFAR100_COARSE = torch.tensor([
    4, 1, 14, 8, 0, 6, 7, 7, 18, 3, 3, 14, 9, 18, 7, 11, 3, 9, 7, 11,
    6, 11, 5, 10, 7, 6, 13, 15, 3, 15, 0, 11, 1, 10, 12, 14, 16, 9, 11, 5,
    5, 19, 8, 8, 15, 13, 14, 17, 18, 10, 16, 4, 17, 4, 2, 0, 17, 4, 18, 17,
    10, 3, 2, 12, 12, 16, 12, 1, 9, 19, 2, 10, 0, 1, 16, 12, 9, 13, 15, 13,
    16, 19, 2, 4, 6, 19, 5, 5, 8, 19, 18, 1, 2, 15, 6, 0, 17, 8, 14, 13,
])

def _superclass_cycles() -> Dict[int, int]:
    """Each CIFAR-100 class -> the next class (cyclically, by fine index) of its super-class."""
    dest: Dict[int, int] = {}
    for coarse in range(20):
        members = (CIFAR100_COARSE == coarse).nonzero().squeeze(1).tolist()
        dest.update({a: b for a, b in zip(members, members[1:] + members[:1])})
    return dest


#: named class pairs of asymmetric noise: name -> (number of classes, {source class: the class it
#: flips to}); see :func:`cifar10_asymmetric` and :func:`cifar100_asymmetric`
CLASS_PAIRS: Dict[str, Tuple[int, Dict[int, int]]] = {
    "cifar10": (10, {9: 1, 2: 0, 4: 7, 3: 5, 5: 3}),
    "cifar100": (100, _superclass_cycles()),
}

#: tolerance on the row sums of a transition matrix
_ROW_SUM_TOL = 1e-6


def check_transition(T: object, num_classes: Optional[int] = None) -> Tensor:
    """Validate a transition matrix and return it as a float64 tensor (on its device).

    ``T`` must be a square ``(C, C)`` real matrix (tensor or array-like) with finite nonnegative
    entries and rows summing to 1; ``C`` must equal ``num_classes`` when given.
    """
    if isinstance(T, str):
        raise TypeError(f"T must be a (C, C) matrix, got the str {T!r}: a noise spec's matrix is "
                        f"make_transition({T!r}, num_classes)")
    if not isinstance(T, Tensor):
        try:
            T = torch.as_tensor(T, dtype=torch.float64)
        except (TypeError, ValueError, RuntimeError) as err:
            raise TypeError(f"T must be a (C, C) matrix, got {type(T).__name__}") from err
    if T.is_complex() or T.dtype == torch.bool:
        raise TypeError(f"T must be a real matrix, got dtype {T.dtype}")
    if T.dim() != 2 or T.shape[0] != T.shape[1] or T.shape[0] < 2:
        raise ValueError(f"T must be a square (C, C) matrix with C >= 2, got shape {tuple(T.shape)}")
    if num_classes is not None and T.shape[0] != check_int("num_classes", num_classes, 2):
        raise ValueError(f"T is {T.shape[0]}x{T.shape[0]} but num_classes={num_classes}")
    T = T.to(torch.float64)
    if not bool(torch.isfinite(T).all()) or bool((T < 0).any()):
        raise ValueError("T must have finite, nonnegative entries")
    err = float((T.sum(dim=1) - 1).abs().max())
    if err > _ROW_SUM_TOL:
        raise ValueError(f"rows of T must sum to 1 (row-stochastic), largest deviation {err:.3g}")
    return T


# ---- transition matrices ----
def symmetric(num_classes: int, rate: float, include_true: bool = False) -> Tensor:
    r"""Symmetric (uniform) label noise of strength ``rate``.

    * ``include_true=False`` (default; "sym" in Zhang & Sabuncu 2018, Wang et al. 2019): a flipped
      label always changes, :math:`T = (1-r) I + \frac{r}{C-1}(\mathbf{1}\mathbf{1}^\top - I)`,
      so ``rate`` is the fraction of wrong labels.
    * ``include_true=True`` ("uniform" in Patrini et al. 2017, Ma et al. 2020): with probability
      ``rate`` the label is redrawn uniformly from *all* ``C`` classes, including the true one,
      :math:`T = (1-r) I + \frac{r}{C}\mathbf{1}\mathbf{1}^\top`; the realised fraction of wrong
      labels is :math:`r (C-1)/C`.
    """
    C = check_int("num_classes", num_classes, 2)
    rate = check_param("rate", rate, low=0.0, high=1.0)
    eye = torch.eye(C, dtype=torch.float64)
    if check_bool("include_true", include_true):
        return (1.0 - rate) * eye + rate / C
    return (1.0 - rate) * eye + rate / (C - 1) * (1.0 - eye)


def _flips(num_classes: int, rate: float, dest: Dict[int, int]) -> Tensor:
    """Identity, except that each source class ``i`` in ``dest`` moves to ``dest[i]`` with prob. ``rate``."""
    rate = check_param("rate", rate, low=0.0, high=1.0)
    T = torch.eye(num_classes, dtype=torch.float64)
    for i, j in dest.items():
        T[i, i] = 1.0 - rate
        T[i, j] = rate
    return T


def pair_flip(num_classes: int, rate: float) -> Tensor:
    r"""Pair flipping: class ``i`` becomes ``(i + 1) mod C`` with probability ``rate`` (Han et al., 2018)."""
    C = check_int("num_classes", num_classes, 2)
    return _flips(C, rate, {i: (i + 1) % C for i in range(C)})


def cifar10_asymmetric(rate: float) -> Tensor:
    r"""CIFAR-10 asymmetric noise (Patrini et al., 2017): with probability ``rate``
    truck(9) → automobile(1), bird(2) → airplane(0), deer(4) → horse(7), cat(3) ↔ dog(5);
    the other classes stay clean, so the overall fraction of wrong labels is ``rate / 2``."""
    return _flips(10, rate, CLASS_PAIRS["cifar10"][1])


def cifar100_asymmetric(rate: float) -> Tensor:
    r"""CIFAR-100 asymmetric noise: with probability ``rate`` each class flips to the next class,
    cyclically, among the 5 classes of its super-class (:data:`CIFAR100_COARSE`, fine indices in
    increasing order), e.g. aquatic mammals beaver(4) → dolphin(30) → otter(55) → seal(72) →
    whale(95) → beaver(4).

    The code released with Patrini et al. (2017), copied by many later papers, instead flips within
    consecutive blocks of 5 fine indices (0–4, 5–9, …), which are *not* the super-classes of the
    alphabetical fine labels; here the real super-classes are used.
    """
    return _flips(100, rate, CLASS_PAIRS["cifar100"][1])


def class_pairs(pairs: Union[str, Mapping[int, int]], num_classes: int) -> Dict[int, int]:
    """The class pairs of asymmetric noise, checked: a name in :data:`CLASS_PAIRS` (for its number of
    classes) or a mapping ``{source class: destination class}`` of distinct classes in ``[0, C)``."""
    C = check_int("num_classes", num_classes, 2)
    if isinstance(pairs, str):
        if pairs not in CLASS_PAIRS:
            raise ValueError(f"pairs must be one of {sorted(CLASS_PAIRS)} or a mapping source -> destination, "
                             f"got {pairs!r}")
        size, dest = CLASS_PAIRS[pairs]
        if size != C:
            raise ValueError(f"pairs {pairs!r} are defined for {size} classes, not num_classes={C}")
        return dict(dest)
    if not isinstance(pairs, Mapping) or not pairs:
        raise TypeError(f"pairs must be a name in {sorted(CLASS_PAIRS)} or a non-empty mapping source -> "
                        f"destination, got {pairs!r}")
    for src, dst in pairs.items():
        for value in (src, dst):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not 0 <= value < C:
                raise ValueError(f"pairs must map classes in [0, {C - 1}] to classes in [0, {C - 1}], "
                                 f"got {src!r} -> {dst!r}")
        if src == dst:
            raise ValueError(f"pairs must map a class to another class, got {src!r} -> {dst!r}")
    return {int(src): int(dst) for src, dst in pairs.items()}


def _parse_pairs(text: str, spec: str) -> Dict[int, int]:
    """``"9>1,2>0"`` -> ``{9: 1, 2: 0}``."""
    out: Dict[int, int] = {}
    for item in text.split(","):
        src, sep, dst = item.partition(">")
        try:
            if not sep:
                raise ValueError
            src_i, dst_i = int(src), int(dst)
        except ValueError:
            raise ValueError(f"class pair {item.strip()!r} in noise spec {spec!r} must look like "
                             "'SOURCE>DESTINATION', e.g. 'asym:0.4:9>1,3>5'") from None
        if src_i in out:
            raise ValueError(f"class {src_i} appears twice as a source in noise spec {spec!r}")
        out[src_i] = dst_i
    return out


class NoiseSpec(NamedTuple):
    """A parsed noise spec: ``kind`` (clean, sym, uniform, asym, pair), ``rate`` (``None`` for clean)
    and the class ``pairs`` named in an asym spec (``None`` when it names none)."""

    kind: str
    rate: Optional[float]
    pairs: Optional[Dict[int, int]]

    def canonical(self) -> str:
        """One spelling per noise: ``" SYM : 0.40 "`` and ``"sym:0.4"`` give ``"sym:0.4"``."""
        if self.rate is None:
            return self.kind
        pairs = "" if self.pairs is None else ":" + ",".join(f"{a}>{b}" for a, b in sorted(self.pairs.items()))
        return f"{self.kind}:{self.rate!r}{pairs}"


def parse_noise(spec: str) -> NoiseSpec:
    """``"asym:0.4:9>1,3>5"`` -> ``NoiseSpec("asym", 0.4, {9: 1, 3: 5})`` (the syntax of
    :func:`make_transition`; the rate and the classes are checked there)."""
    if not isinstance(spec, str):
        raise TypeError(f"spec must be a str like 'sym:0.4', got {type(spec).__name__}")
    name, sep, value = (s.strip() for s in spec.strip().lower().partition(":"))
    kinds = ("clean", "sym", "uniform", "asym", "pair")
    if name not in kinds:
        raise ValueError(f"unknown noise spec {spec!r}; expected 'clean' or one of {kinds[1:]} as 'name:rate'")
    if name == "clean":
        if sep:
            raise ValueError(f"spec 'clean' takes no rate, got {spec!r}")
        return NoiseSpec(name, None, None)
    value, has_pairs, pair_text = (s.strip() for s in value.partition(":"))
    if has_pairs and name != "asym":
        raise ValueError(f"only 'asym' noise takes class pairs, got {spec!r}")
    try:
        rate = float(value)
    except ValueError:
        raise ValueError(f"noise spec {spec!r} must look like '{name}:0.4' (rate in [0, 1])") from None
    return NoiseSpec(name, rate, _parse_pairs(pair_text, spec) if has_pairs else None)


def make_transition(spec: str, num_classes: int, *, pairs: Union[str, Mapping[int, int], None] = None) -> Tensor:
    """The transition matrix named by ``spec``.

    ``"clean"`` (identity), ``"sym:R"`` (:func:`symmetric`), ``"uniform:R"`` (:func:`symmetric`
    with ``include_true=True``), ``"pair:R"`` (:func:`pair_flip`) and ``"asym:R"``, ``R`` in [0, 1].
    Asymmetric noise flips each source class to its destination with probability ``R``; the class
    pairs are named in the spec (``"asym:0.4:9>1,3>5,5>3"``) or given by ``pairs`` (a name in
    :data:`CLASS_PAIRS`, e.g. ``"cifar10"`` for :func:`cifar10_asymmetric`, or a mapping; pairs named
    in the spec win over ``pairs``, as when the runner passes a dataset's pairs); without either,
    ``"asym"`` raises ``ValueError`` rather than guessing the classes' meaning.
    """
    C = check_int("num_classes", num_classes, 2)
    kind, rate, given = parse_noise(spec)
    if kind == "clean":
        return torch.eye(C, dtype=torch.float64)
    if kind == "sym":
        return symmetric(C, rate)
    if kind == "uniform":
        return symmetric(C, rate, include_true=True)
    if kind == "pair":
        return pair_flip(C, rate)
    if given is None and pairs is None:
        raise ValueError(f"'asym' noise needs class pairs and none are defined here: name them in the spec, "
                         f"e.g. 'asym:{rate:g}:1>7,7>1', or pass pairs= (one of {sorted(CLASS_PAIRS)})")
    return _flips(C, rate, class_pairs(pairs if given is None else given, C))


# ---- sampling and estimation ----
class Corrupted(NamedTuple):
    """Noisy labels and the mask of samples whose label differs from the clean one."""

    labels: Tensor
    corrupted: Tensor

    @property
    def rate(self) -> float:
        """Realised fraction of corrupted labels (0 for no samples)."""
        return float(self.corrupted.double().mean()) if self.corrupted.numel() else 0.0


def corrupt(labels: Tensor, T: Union[Tensor, object], generator: Optional[torch.Generator] = None) -> Corrupted:
    r"""Draw noisy labels :math:`\tilde y_n \sim T_{y_n, \cdot}` independently for each sample.

    Sampling uses :func:`torch.multinomial`, one call per class, on ``generator``'s device (the
    device of ``labels`` when no generator is given); the result is on the device of ``labels``.
    ``corrupted`` is ``noisy != labels`` (a label redrawn to its own class is not corrupted).
    """
    T = check_transition(T)
    labels = check_labels("labels", labels, T.shape[0])
    generator = check_generator(generator)
    device = generator.device if generator is not None else labels.device
    T = T.to(device)
    clean = labels.to(device)
    noisy = clean.clone()
    for c in range(T.shape[0]):
        idx = (clean == c).nonzero().squeeze(1)
        if idx.numel() and float(T[c, c]) < 1.0:
            noisy[idx] = torch.multinomial(T[c], idx.numel(), replacement=True, generator=generator)
    noisy = noisy.to(labels.device)
    return Corrupted(noisy, noisy != labels)


def estimate_transition(clean: Tensor, noisy: Tensor, num_classes: int) -> Tensor:
    r"""Empirical transition matrix :math:`\hat T_{ij} = \#\{y=i, \tilde y=j\} / \#\{y=i\}`, float64.

    Rows of classes that do not occur in ``clean`` are all zero.
    """
    C = check_int("num_classes", num_classes, 2)
    clean = check_labels("clean", clean, C)
    noisy = check_labels("noisy", noisy, C)
    if clean.shape != noisy.shape or clean.device != noisy.device:
        raise ValueError(f"clean and noisy must have the same shape and device, got {tuple(clean.shape)} "
                         f"on {clean.device} and {tuple(noisy.shape)} on {noisy.device}")
    counts = torch.bincount(clean * C + noisy, minlength=C * C).reshape(C, C).double()
    return counts / counts.sum(dim=1, keepdim=True).clamp_min(1.0)


def nearest_example_labels(
    x: Tensor,
    labels: Tensor,
    num_classes: int,
    *,
    per_class: int = 3,
    generator: Optional[torch.Generator] = None,
) -> Tensor:
    """Image-dependent label noise from a simulated annotator who has seen ``per_class`` example
    images of each class and labels every image like the most similar example (nearest neighbour of
    the flattened inputs).  Its mistakes fall on images that look like another class, unlike the
    class-conditional noise of a transition matrix.  Returns the annotator's labels (int64, on ``x``'s
    device)."""
    num_classes = check_int("num_classes", num_classes, 2)
    labels = check_labels("labels", labels, num_classes)
    if not isinstance(x, Tensor) or not x.is_floating_point() or x.shape[0] != labels.shape[0]:
        raise ValueError("x must be a floating tensor with one row (image) per label")
    per_class = check_int("per_class", per_class, 1)
    generator = check_generator(generator)
    flat, y = x.flatten(1).cpu(), labels.cpu()
    examples = []
    for c in range(num_classes):
        members = torch.nonzero(y == c).squeeze(1)
        if len(members) < per_class:
            raise ValueError(f"class {c} has {len(members)} samples, fewer than per_class={per_class}")
        examples.append(members[torch.randperm(len(members), generator=generator)[:per_class]])
    refs = torch.cat(examples)
    return y[refs][torch.cdist(flat, flat[refs]).argmin(1)].to(x.device)


def estimate_transition_anchor(probs: Tensor, *, percentile: Optional[float] = None) -> Tensor:
    r"""Transition matrix estimated from anchor points (Patrini et al., 2017).

    ``probs`` are a model's predicted distributions of the *noisy* label, :math:`\hat p(\tilde y \mid x)`,
    for ``N`` samples (the softmax of a network trained on the noisy labels with plain CE).  An anchor
    of class :math:`i` is a sample that surely belongs to :math:`i`, where therefore
    :math:`p(\tilde y \mid x) = T_{i\cdot}`; the paper takes the sample with the largest
    :math:`\hat p(\tilde y = i \mid x)` and sets row :math:`i` of :math:`\hat T` to its predicted
    distribution.  Because the largest value may be an outlier, the paper's variant takes the
    :math:`\alpha`-percentile of the column instead of its maximum, with :math:`\alpha = 97\,\%`: with
    ``percentile=97`` the anchor is the sample whose :math:`\hat p(\tilde y = i \mid x)` is the
    97th percentile of its column (numpy's ``"higher"`` rule: the value at ascending rank
    :math:`\lceil \alpha (N - 1) / 100 \rceil`, counting from 0).  Among equal values the earlier
    sample wins.

    The code released with the method (as copied in, e.g., the Dual-T authors'
    ``yuyao/noise/est_t_matrix.py``) differs with the filter on: it zeroes every value *at or above*
    the percentile, so its anchor is the largest value strictly below it (one rank lower, or a
    non-anchor when anchors tie at the percentile), and it zeroes them in the array itself, so the
    rows of later classes read those zeros.  ``tests/test_correction.py`` reproduces both.

    Args:
        probs: ``(N, C)`` predicted probabilities of the noisy label (rows summing to 1).
        percentile: ``None`` (the argmax) or :math:`\alpha \in [0, 100]`; the paper uses 97.

    Returns:
        :math:`\hat T`, ``(C, C)`` float64 on ``probs``' device: row ``i`` is the anchor's ``probs`` row.

    Example:
        >>> probs = torch.tensor([[0.9, 0.1], [0.5, 0.5], [0.3, 0.7]])
        >>> estimate_transition_anchor(probs)  # anchors: sample 0 for class 0, sample 2 for class 1
        tensor([[0.9000, 0.1000],
                [0.3000, 0.7000]], dtype=torch.float64)
    """
    probs = check_probabilities("probs", probs).double()
    n = probs.shape[0]
    if percentile is None:
        rank = n - 1  # the largest value
    else:
        rank = math.ceil(check_param("percentile", percentile, low=0.0, high=100.0) / 100 * (n - 1))
    by_decreasing_p = probs.argsort(dim=0, descending=True, stable=True)  # (N, C): column i sorts p_i
    anchors = by_decreasing_p[n - 1 - rank]  # (C,): the anchor of each class
    return probs[anchors]
