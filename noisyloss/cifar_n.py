r"""The released CIFAR-N human labels (Wei et al., ICLR 2022, repository UCSC-REAL/cifar-10-100n), read
and measured without the images: the label files (:func:`read_labels`), the annotators' side information
(:func:`read_side_info`), and what the book's chapter on human noise computes from them (the transition
matrix is ``noise.estimate_transition``).  The labels are in the order of CIFAR's python batches
(``data_batch_1`` … ``data_batch_5``).
"""
from __future__ import annotations

import csv
import os
from typing import Dict, List, NamedTuple, Sequence, Tuple, Union

import numpy as np
import torch
from torch import Tensor

from ._checks import check_int, check_labels
from .data import CIFAR10N_LABELS, DataError, load_human_file

__all__ = ["CIFAR10N_SETS", "CIFAR100_CLASSES", "read_labels", "SideInfo", "read_side_info", "noise_rate", "agreement",
           "worker_errors", "most_confused"]

#: the noisy label sets of ``CIFAR-10_human.pt`` (the keys of the file), beside its ``clean_label``
CIFAR10N_SETS = tuple(CIFAR10N_LABELS.values())

#: CIFAR-100's fine class names in label order (alphabetical, as in the dataset's ``meta`` file)
CIFAR100_CLASSES = tuple("""
    apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus butterfly
    camel can castle caterpillar cattle chair chimpanzee clock cloud cockroach couch crab crocodile cup
    dinosaur dolphin elephant flatfish forest fox girl hamster house kangaroo keyboard lamp lawn_mower
    leopard lion lizard lobster man maple_tree motorcycle mountain mouse mushroom oak_tree orange orchid
    otter palm_tree pear pickup_truck pine_tree plain plate poppy porcupine possum rabbit raccoon ray
    road rocket rose sea seal shark shrew skunk skyscraper snail snake spider squirrel streetcar
    sunflower sweet_pepper table tank telephone television tiger tractor train trout tulip turtle
    wardrobe whale willow_tree wolf woman worm
""".split())

PathLike = Union[str, os.PathLike]


def read_labels(path: PathLike) -> Dict[str, Tensor]:
    """Every label array of a released CIFAR-N ``.pt`` file, as a 1-D int64 tensor per key.

    The files are ``torch.save``'d dicts of numpy arrays (and, in CIFAR-100N, lists of ints), read by
    :func:`noisyloss.data.load_human_file`, which allows numpy's array reconstruction only.
    """
    try:
        table = load_human_file(path)
    except Exception as err:  # torch.load raises many kinds (UnpicklingError, RuntimeError, ...)
        reason = " ".join(str(err).split())[:300]
        raise DataError(f"{path}: not a CIFAR-N label file of integer numpy arrays "
                        f"({type(err).__name__}: {reason})") from None
    if not isinstance(table, dict):
        raise DataError(f"{path}: a CIFAR-N label file holds a dict, got {type(table).__name__}")
    labels = {str(key): np.asarray(value) for key, value in table.items()}
    for key, value in labels.items():
        if value.dtype.kind not in "iu" or value.ndim != 1:
            raise DataError(f"{path}: {key} must be a 1-D integer array, got dtype {value.dtype}, shape {value.shape}")
    if len({len(value) for value in labels.values()}) > 1:
        raise DataError(f"{path}: label arrays of different lengths {({k: len(v) for k, v in labels.items()})}")
    return {key: torch.from_numpy(value.astype(np.int64)) for key, value in labels.items()}


class SideInfo(NamedTuple):
    """One row per batch of consecutive images labelled together: ``first`` and ``last`` (B,), the
    indices of the batch's first and last image (inclusive); ``workers`` (B, K), the worker id of each
    of its K annotators; ``seconds`` (B, K), the seconds each of them spent on the batch."""

    first: Tensor
    last: Tensor
    workers: Tensor
    seconds: Tensor


def read_side_info(path: PathLike) -> SideInfo:
    """Read ``side_info_cifar10N.csv`` (K = 3 annotators per batch) or ``side_info_cifar100N.csv`` (K = 1).

    Columns: ``Image-batch`` (``"first--last"``), then a worker id and a work time in seconds per
    annotator. The batches must tile the images ``0 … N-1`` in order.
    """
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    if not body or len(header) < 3 or len(header) % 2 == 0 or header[0] != "Image-batch":
        raise DataError(f"{path}: expected 'Image-batch' and (worker id, seconds) column pairs, got {header}")
    bounds = torch.tensor([[int(i) for i in row[0].split("--")] for row in body])
    values = torch.tensor([[int(v) for v in row[1:]] for row in body])
    first, last = bounds[:, 0], bounds[:, 1]
    if first[0] != 0 or (last < first).any() or (first[1:] != last[:-1] + 1).any():
        raise DataError(f"{path}: the image batches do not tile 0 … N-1 in order")
    return SideInfo(first, last, values[:, 0::2], values[:, 1::2])


def noise_rate(clean: Tensor, noisy: Tensor) -> float:
    """The fraction of samples whose label differs from the clean one."""
    clean, noisy = check_labels("clean", clean), check_labels("noisy", noisy)
    if clean.shape != noisy.shape:
        raise ValueError(f"clean and noisy must have the same shape, got {tuple(clean.shape)} and {tuple(noisy.shape)}")
    return float((clean != noisy).double().mean())


def _stack_annotations(annotations: Sequence[Tensor], at_least: int) -> Tensor:
    """K >= ``at_least`` annotators' label tensors of the same N images -> (K, N) int64."""
    if isinstance(annotations, Tensor) or not isinstance(annotations, Sequence):
        raise TypeError("annotations must be a sequence of label tensors (one per annotator), "
                        f"got {type(annotations).__name__}")
    if len(annotations) < at_least:
        raise ValueError(f"annotations must hold at least {at_least} label tensors, got {len(annotations)}")
    rows = [check_labels(f"annotations[{k}]", labels) for k, labels in enumerate(annotations)]
    if len({row.shape for row in rows}) > 1:
        raise ValueError(f"annotations must all have the same shape, got {[tuple(r.shape) for r in rows]}")
    return torch.stack(rows)


def agreement(annotations: Sequence[Tensor]) -> Tensor:
    """K annotators' labels of the same N images -> the (K,) float64 fractions of images that got 1,
    2, …, K distinct labels (entry 0: all annotators agree).

    >>> agreement([torch.tensor([0, 1, 2]), torch.tensor([0, 1, 0])]).tolist()  # image 2: two labels
    [0.6666666666666666, 0.3333333333333333]
    """
    labels = _stack_annotations(annotations, 2)
    ordered = labels.sort(dim=0).values
    distinct = 1 + (ordered[1:] != ordered[:-1]).sum(dim=0)
    return torch.bincount(distinct - 1, minlength=labels.shape[0]).double() / labels.shape[1]


def worker_errors(side: SideInfo, annotations: Sequence[Tensor], clean: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    """Per worker: ``(ids, labelled, wrong)``, each (W,) int64 in increasing id order, counting the
    images each worker labelled and how many of those labels differ from ``clean``.

    ``annotations`` holds the K annotators' label tensors; the k-th is taken to be the labels of the
    k-th worker column of ``side`` (``random_label{k}`` for column ``Worker{k}-id`` in CIFAR-10N).
    """
    labels = _stack_annotations(annotations, 1)
    clean = check_labels("clean", clean)
    K, N = side.workers.shape[1], clean.shape[0]
    if labels.shape != (K, N) or int(side.last[-1]) != N - 1:
        raise ValueError(f"annotations must be {K} label tensors of {N} images for side info of {K} workers over "
                         f"{int(side.last[-1]) + 1} images, got shape {tuple(labels.shape)}")
    worker = side.workers.repeat_interleave(side.last - side.first + 1, dim=0).T  # (K, N): who labelled what
    ids, which = worker.reshape(-1).unique(return_inverse=True)
    wrong = (labels != clean).reshape(-1)
    errors = torch.bincount(which, weights=wrong.double(), minlength=len(ids)).long()
    return ids, torch.bincount(which, minlength=len(ids)), errors


def most_confused(clean: Tensor, noisy: Tensor, num_classes: int, k: int = 10) -> List[Tuple[int, int, int]]:
    """The ``k`` most frequent (true class, given label, count) with given ≠ true, most frequent first."""
    C, k = check_int("num_classes", num_classes, 2), check_int("k", k, 1)
    clean, noisy = check_labels("clean", clean, C), check_labels("noisy", noisy, C)
    counts = torch.bincount(clean * C + noisy, minlength=C * C).reshape(C, C)
    counts.fill_diagonal_(-1)
    top = counts.flatten().topk(min(k, C * (C - 1)))
    return [(int(i) // C, int(i) % C, int(n)) for n, i in zip(top.values, top.indices)]
