r"""The training loop: one epoch (:func:`train_epoch`), one evaluation (:func:`evaluate`), and
:func:`fit` composing them, with on-device augmentation and per-epoch measurements of memorisation.

One code path for CPU and CUDA: on CUDA the forward pass runs under bf16 autocast with
``channels_last`` tensors; on CPU everything is float32 and, given the seed and the number of CPU
threads, deterministic.  No step waits for the host, and no global torch setting is changed.
The optimiser and the learning-rate schedule are factories; the defaults (:func:`sgd`,
:func:`triangular`) are those of fast CIFAR-10 training recipes.  Losses that keep a state per
training sample are trained through the protocol of :mod:`noisyloss.losses` (see :func:`fit`).

After every epoch the model predicts the (un-augmented) training set, which splits by the noise mask
into clean samples and corrupted ones (whose given label is wrong):

* ``fit_clean``  = fraction of clean samples predicted as their label,
* ``memorised``  = fraction of corrupted samples predicted as their *wrong given* label,
* ``corrected``  = fraction of corrupted samples predicted as their *true* label.

A robust loss keeps ``memorised`` low and ``corrected`` high late in training, where cross entropy
first fits the clean samples and then memorises the noise (Arpit et al., 2017; Zhang et al., 2017).
"""
from __future__ import annotations

import math
import time
from functools import partial
from typing import Callable, Dict, Iterable, List, NamedTuple, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR, LRScheduler
from tqdm.auto import tqdm

from ._checks import (check_bool, check_callable, check_instance, check_int, check_labels, check_loss_value,
                      check_model_output, check_param, check_seed)
from .data import ImageData
from .losses import EpochEnd
from .metrics import accuracy, per_class_accuracy
from .noise import Corrupted

__all__ = ["NoisyLabels", "FitResult", "LossFunction", "OptimizerFactory", "SchedulerFactory", "flip", "translate",
           "augment", "memorisation", "predict", "evaluate", "sgd", "triangular", "triangular_lr", "train_epoch", "fit"]

#: ``optimizer(params)`` builds the optimiser of the model's parameters
OptimizerFactory = Callable[[Iterable[nn.Parameter]], Optimizer]
#: ``loss_fn(logits, target)`` (``loss_fn(logits, target, index)`` when it ``needs_index``): one number
#: per batch; an ``nn.Module`` (moved to the training device) or a plain function
LossFunction = Callable[..., Tensor]
#: ``scheduler(optimizer, total_steps)`` builds a learning-rate scheduler stepped after every
#: optimiser step (``total_steps`` of them in the fit), or returns ``None`` for a constant rate
SchedulerFactory = Callable[[Optimizer, int], Optional[LRScheduler]]


#: labels to train on and the mask of those that differ from the truth
NoisyLabels = Corrupted


class FitResult(NamedTuple):
    """``history``: per-epoch dicts; ``per_class_acc``: final test accuracy per class;
    ``test_logits``: final float32 test logits on the training device.  ``diverged``: the epoch whose
    mean training loss or test logits were not finite, where training stopped (``history`` then holds
    the epochs before it, ``per_class_acc`` is empty and ``test_logits`` is ``None``); else ``None``."""

    history: List[Dict[str, object]]
    per_class_acc: List[float]
    test_logits: Optional[Tensor]
    diverged: Optional[int] = None


# ---- augmentation (batched tensor ops on the data's device) ----
def flip(x: Tensor, mask: Tensor) -> Tensor:
    """Mirror the images ``x[mask]`` left-right (along the width); ``mask`` is ``(N,)`` bool."""
    return torch.where(mask.view(-1, 1, 1, 1), x.flip(3), x)


def translate(x: Tensor, shifts: Tensor, pad: int) -> Tensor:
    """Shift each image by its own integer offset, filling the border by reflection.

    ``shifts`` is ``(N, 2)`` int64 with ``(dy, dx)`` in ``[-pad, pad]``; output pixel ``(i, j)`` of
    image ``n`` is the reflect-padded input at ``(i + dy, j + dx)``.  One gather for the whole batch.
    """
    n, c, h, w = x.shape
    if shifts.shape != (n, 2):
        raise ValueError(f"shifts must have shape ({n}, 2), got {tuple(shifts.shape)}")
    if pad < 1 or pad >= min(h, w):
        raise ValueError(f"pad must be in [1, {min(h, w) - 1}] for {h}x{w} images, got {pad}")
    padded = F.pad(x, (pad, pad, pad, pad), mode="reflect").permute(0, 2, 3, 1)  # (N, H+2p, W+2p, C)
    rows = (shifts[:, :1] + pad + torch.arange(h, device=x.device)).unsqueeze(2)  # (N, H, 1)
    cols = (shifts[:, 1:] + pad + torch.arange(w, device=x.device)).unsqueeze(1)  # (N, 1, W)
    batch = torch.arange(n, device=x.device).view(n, 1, 1)
    return padded[batch, rows, cols].permute(0, 3, 1, 2)  # (N, C, H, W), channels_last strides


def augment(x: Tensor, *, pad: int, hflip: bool, generator: Optional[torch.Generator] = None) -> Tensor:
    """Random translation by up to ``pad`` pixels and (if ``hflip``) a random left-right flip."""
    n = x.shape[0]
    shifts = torch.randint(-pad, pad + 1, (n, 2), device=x.device, generator=generator)
    out = translate(x, shifts, pad)
    if hflip:
        out = flip(out, torch.rand(n, device=x.device, generator=generator) < 0.5)
    return out


# ---- evaluation ----
def _fraction(hits: Tensor) -> Optional[float]:
    return float(hits.float().mean()) if hits.numel() else None


def memorisation(pred: Tensor, given: Tensor, clean: Tensor, corrupted: Tensor) -> Dict[str, Optional[float]]:
    """``fit_clean``, ``memorised`` and ``corrected`` (see the module docstring) from predicted classes.

    A fraction over an empty group (no corrupted sample, say) is ``None``.
    """
    corrupted = corrupted.bool()
    return {
        "fit_clean": _fraction(pred[~corrupted] == given[~corrupted]),
        "memorised": _fraction(pred[corrupted] == given[corrupted]),
        "corrected": _fraction(pred[corrupted] == clean[corrupted]),
    }


def _autocast(device: torch.device):
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")


@torch.no_grad()
def predict(model: nn.Module, x: Tensor, batch_size: int = 2048) -> Tensor:
    """Float32 logits of ``model`` (in eval mode) for ``x``, batched."""
    was_training = model.training
    model.eval()
    with _autocast(x.device):
        out = torch.cat([model(x[i : i + batch_size]).float() for i in range(0, len(x), batch_size)])
    model.train(was_training)
    return out


def evaluate(
    model: nn.Module, data: ImageData, labels: NoisyLabels
) -> Tuple[Dict[str, Optional[float]], Tensor, Tensor]:
    """``(metrics, test_logits, train_logits)``: ``test_acc`` with the :func:`memorisation` fractions
    of the model's predictions of the un-augmented training set, and the float32 logits they came from."""
    test_logits, train_logits = predict(model, data.x_test), predict(model, data.x_train)
    metrics = {"test_acc": accuracy(test_logits, data.y_test),
               **memorisation(train_logits.argmax(dim=1), labels.labels, data.y_train_clean, labels.corrupted)}
    return metrics, test_logits, train_logits


# ---- optimiser and schedule ----
def sgd(lr: float = 0.1, momentum: float = 0.9, weight_decay: float = 5e-4) -> OptimizerFactory:
    """SGD with Nesterov momentum (plain SGD when ``momentum`` is 0) and L2 ``weight_decay``;
    ``lr`` is the peak learning rate under a schedule."""
    lr = check_param("lr", lr, low=0.0, low_open=True)
    momentum = check_param("momentum", momentum, low=0.0, high=1.0, high_open=True)
    weight_decay = check_param("weight_decay", weight_decay, low=0.0)
    return partial(torch.optim.SGD, lr=lr, momentum=momentum, nesterov=momentum > 0, weight_decay=weight_decay)


def triangular_lr(step: int, total: int, warmup: float = 0.2) -> float:
    """Learning-rate factor: linear from ~0 to 1 over ``warmup·total`` steps, then linear to 0."""
    t = (step + 1) / total
    return t / warmup if t < warmup else max(0.0, (1.0 - t) / (1.0 - warmup))


def triangular(warmup: float = 0.2) -> SchedulerFactory:
    """The triangular schedule :func:`triangular_lr` over the fit's steps; ``warmup`` in (0, 1)."""
    warmup = check_param("warmup", warmup, low=0.0, high=1.0, low_open=True, high_open=True)

    def scheduler(optimizer: Optimizer, total_steps: int) -> LRScheduler:
        return LambdaLR(optimizer, lambda step: triangular_lr(step, total_steps, warmup))

    return scheduler


# ---- training ----
def train_epoch(
    model: nn.Module,
    loss_fn: LossFunction,
    x: Tensor,
    y: Tensor,
    batches: Tensor,
    optimizer: Optimizer,
    scheduler: Optional[LRScheduler] = None,
    *,
    grad_clip: Optional[float] = None,
    transform: Optional[Callable[[Tensor], Tensor]] = None,
    num_classes: Optional[int] = None,
) -> Tensor:
    """One pass over ``batches`` (rows of sample indices into ``x`` and ``y``): per batch, the
    inputs through ``transform`` (augmentation), a forward pass, ``loss_fn`` (with the indices when
    it ``needs_index``), a backward pass, the gradient norm clipped at ``grad_clip``, an optimiser
    step and a scheduler step.  Returns the mean loss of the steps as a 0-dim tensor on the device,
    so that no step waits for the host.  The loss must be one number per batch, and the model's
    output ``(B, num_classes)`` logits when ``num_classes`` is given (shapes only: no host sync)."""
    model.train()
    needs_index = getattr(loss_fn, "needs_index", False)
    total = torch.zeros((), device=x.device)
    for idx in batches:
        inputs = x[idx] if transform is None else transform(x[idx])
        with _autocast(x.device):
            out = model(inputs)
        if num_classes is not None:
            check_model_output(out, len(idx), num_classes)
        loss = check_loss_value(loss_fn(out, y[idx], idx) if needs_index else loss_fn(out, y[idx]))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip is not None:
            nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        total += loss.detach().float()
    return total / len(batches)


def fit(
    model: nn.Module,
    data: ImageData,
    loss_fn: LossFunction,
    labels: NoisyLabels,
    *,
    epochs: int,
    batch_size: int = 256,
    optimizer: Optional[OptimizerFactory] = None,
    scheduler: Optional[SchedulerFactory] = triangular(),
    lr: Optional[float] = None,
    weight_decay: Optional[float] = None,
    grad_clip: Optional[float] = None,
    augmentation: Optional[bool] = None,
    seed: int = 0,
    progress: bool = True,
    callback: Optional[Callable[[Dict[str, object]], None]] = None,
    desc: str = "train",
) -> FitResult:
    """Train ``model`` on ``(data.x_train, labels.labels)`` with ``loss_fn``; evaluate after each epoch.

    Args:
        model: an ``nn.Module`` mapping a batch of ``data.x_train`` to ``(N, data.num_classes)`` logits.
        loss_fn: a loss Module (``noisyloss.make_loss``) or function (``noisyloss.functional_loss``,
            ``F.cross_entropy``) returning one number per batch.
        labels: :class:`NoisyLabels` (:func:`noisyloss.noise.corrupt`'s result): the labels to train on
            and the mask of those that differ from ``data.y_train_clean``.
        optimizer: builds the optimiser from the model's parameters; default :func:`sgd`.
        scheduler: builds the schedule from the optimiser and the fit's number of steps (stepped
            after each step); default :func:`triangular`; ``None``: a constant learning rate.
        lr, weight_decay: shorthands for ``optimizer=sgd(lr=lr, weight_decay=weight_decay)`` (the
            others at their defaults); not together with ``optimizer``.
        grad_clip: ``None``, or the largest norm of the gradient of all parameters at each step
            (:func:`torch.nn.utils.clip_grad_norm_`).
        augmentation: random translations and flips (:func:`augment`) of image batches
            ``(N, C, H, W)``; ``None`` means on for images, off for feature vectors ``(N, D)``.

    Each epoch draws a random order of the training set (from ``seed``) and trains on its
    ``len(labels) // batch_size`` full batches (BatchNorm needs more than one sample per batch).
    Each history entry has ``epoch``, ``test_acc``, ``train_loss`` (mean loss of the epoch's steps),
    ``fit_clean``, ``memorised``, ``corrected`` and ``seconds`` (cumulative training time, evaluation
    excluded).  The protocol of :mod:`noisyloss.losses`: a loss whose ``needs_index`` is true is called
    as ``loss_fn(logits, target, index)`` with the batch's positions in the training set, and after each
    epoch ``loss_fn.next_epoch(EpochEnd(epoch, epochs, train_logits))`` is called when the loss has that
    method (``train_logits``: eval-mode logits of the un-augmented training set); then ``callback(entry)``.
    A non-finite mean loss or non-finite test logits stop training after that epoch
    (``FitResult.diverged``); the check reads one number per epoch.
    """
    check_instance("model", model, nn.Module, "an nn.Module")
    check_instance("data", data, ImageData, "an ImageData (e.g. noisyloss.data.load_dataset('digits'))")
    check_callable("loss_fn", loss_fn)
    check_instance("labels", labels, NoisyLabels, "NoisyLabels, the labels to train on and their corrupted mask "
                   "(noise.corrupt(data.y_train_clean, T), or NoisyLabels(data.y_train, data.y_train != "
                   "data.y_train_clean))")
    epochs = check_int("epochs", epochs, 1)
    seed = check_seed("seed", seed)
    check_bool("progress", progress)
    for name, factory in (("optimizer", optimizer), ("scheduler", scheduler), ("callback", callback)):
        if factory is not None:
            check_callable(name, factory)
    device = data.x_train.device
    n = len(data.x_train)
    given = check_labels("labels.labels", labels.labels, data.num_classes)
    if given.shape != (n,) or labels.corrupted.shape != (n,):
        raise ValueError(f"labels must have {n} entries (one per training sample), got labels.labels of shape "
                         f"{tuple(given.shape)} and labels.corrupted of shape {tuple(labels.corrupted.shape)}")
    labels = NoisyLabels(given.to(device), labels.corrupted.to(device).bool())
    images = data.x_train.dim() == 4
    if augmentation is None:
        augmentation = images
    elif check_bool("augmentation", augmentation) and not images:
        raise ValueError(f"augmentation=True needs images (N, C, H, W), but data.x_train has shape "
                         f"{tuple(data.x_train.shape)}; pass augmentation=None or False")
    shorthands = {k: v for k, v in {"lr": lr, "weight_decay": weight_decay}.items() if v is not None}
    if optimizer is None:
        optimizer = sgd(**shorthands)
    elif shorthands:
        raise ValueError(f"{' and '.join(shorthands)} are shorthands for the default optimizer sgd(...); "
                         f"with optimizer given, set them in its factory")
    if grad_clip is not None:
        grad_clip = check_param("grad_clip", grad_clip, low=0.0, low_open=True)
    model.to(device)
    if isinstance(loss_fn, nn.Module):
        loss_fn.to(device)
    if device.type == "cuda":
        model.to(memory_format=torch.channels_last)
    batch_size = min(check_int("batch_size", batch_size, 1), n)
    steps = n // batch_size
    gen = torch.Generator(device=device).manual_seed(seed)
    transform = (partial(augment, pad=max(1, data.image_size // 16), hflip=data.hflip, generator=gen)
                 if augmentation else None)
    opt = check_instance("optimizer(params)", optimizer(model.parameters()), Optimizer, "a torch.optim.Optimizer")
    sched = None if scheduler is None else scheduler(opt, epochs * steps)
    if sched is not None:  # a factory may return None for a constant rate (SchedulerFactory)
        check_instance("scheduler(optimizer, total_steps)", sched, LRScheduler,
                       "a torch.optim.lr_scheduler.LRScheduler")
    history: List[Dict[str, object]] = []
    seconds = 0.0
    bar = tqdm(range(1, epochs + 1), desc=desc, disable=not progress, leave=False)
    for epoch in bar:
        start = time.perf_counter()
        batches = torch.randperm(n, device=device, generator=gen)[: steps * batch_size].view(steps, batch_size)
        train_loss = float(train_epoch(model, loss_fn, data.x_train, labels.labels, batches, opt, sched,
                                       grad_clip=grad_clip, transform=transform,
                                       num_classes=data.num_classes))  # synchronises with the device
        seconds += time.perf_counter() - start
        metrics, test_logits, train_logits = evaluate(model, data, labels)
        if not (math.isfinite(train_loss) and bool(torch.isfinite(test_logits).all())):
            bar.close()
            return FitResult(history, [], None, diverged=epoch)
        if hasattr(loss_fn, "next_epoch"):
            loss_fn.next_epoch(EpochEnd(epoch, epochs, train_logits))
        entry: Dict[str, object] = {"epoch": epoch, "train_loss": train_loss, **metrics, "seconds": seconds}
        history.append(entry)
        bar.set_postfix(test_acc=f"{entry['test_acc']:.3f}", loss=f"{train_loss:.3f}")
        if callback is not None:
            callback(entry)
    per_class = per_class_accuracy(test_logits, data.y_test, data.num_classes)
    return FitResult(history, [float(a) for a in per_class], test_logits)
