r"""Training loop with on-device augmentation and per-epoch measurements of memorisation.

One code path for CPU and CUDA: on CUDA the forward pass runs under bf16 autocast with
``channels_last`` tensors; on CPU everything is float32 and, given the seed and the number of CPU
threads, deterministic (threads that follow the load, see :func:`noisyloss.runtime.configure_threads`,
can change the last bits of a result).
The optimiser is SGD with Nesterov momentum and a triangular learning-rate schedule (linear warm-up
over the first 20 % of the steps, then linear decay to zero), as in fast CIFAR-10 training recipes.

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
from typing import Callable, Dict, List, NamedTuple, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from .data import ImageData
from .metrics import accuracy, per_class_accuracy
from .runtime import balance_threads

__all__ = [
    "NoisyLabels",
    "FitResult",
    "flip",
    "translate",
    "augment",
    "memorisation",
    "predict",
    "triangular_lr",
    "fit",
]


class NoisyLabels(NamedTuple):
    """Labels to train on and the mask of those that differ from the truth
    (the same fields as :class:`noisyloss.noise.Corrupted`)."""

    labels: Tensor
    corrupted: Tensor


class FitResult(NamedTuple):
    """``history``: per-epoch dicts; ``per_class_acc``: final test accuracy per class;
    ``test_logits``: final float32 test logits on the training device.  ``diverged``: the epoch whose
    mean training loss or test logits were not finite, where training stopped (``history`` then holds
    the epochs before it, ``per_class_acc`` is empty and ``test_logits`` is ``None``); else ``None``."""

    history: List[Dict[str, object]]
    per_class_acc: List[float]
    test_logits: Optional[Tensor]
    diverged: Optional[int] = None


# ----------------------------------------------------------------------------------------------
# augmentation (batched tensor ops on the data's device)
# ----------------------------------------------------------------------------------------------
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


# ----------------------------------------------------------------------------------------------
# evaluation
# ----------------------------------------------------------------------------------------------
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


def triangular_lr(step: int, total: int, warmup: float = 0.2) -> float:
    """Learning-rate factor: linear from ~0 to 1 over ``warmup·total`` steps, then linear to 0."""
    t = (step + 1) / total
    return t / warmup if t < warmup else max(0.0, (1.0 - t) / (1.0 - warmup))


# ----------------------------------------------------------------------------------------------
# training
# ----------------------------------------------------------------------------------------------
def fit(
    model: nn.Module,
    data: ImageData,
    loss_fn: nn.Module,
    labels: NoisyLabels,
    *,
    epochs: int,
    batch_size: int = 256,
    lr: float = 0.1,
    momentum: float = 0.9,
    weight_decay: float = 5e-4,
    augmentation: bool = True,
    seed: int = 0,
    progress: bool = True,
    callback: Optional[Callable[[Dict[str, object]], None]] = None,
    desc: str = "train",
) -> FitResult:
    """Train ``model`` on ``(data.x_train, labels.labels)`` with ``loss_fn``; evaluate after each epoch.

    Each history entry has ``epoch``, ``test_acc``, ``train_loss`` (mean loss of the epoch's steps),
    ``fit_clean``, ``memorised``, ``corrected`` and ``seconds`` (cumulative training time, evaluation
    excluded).  ``callback(entry)`` is called after each epoch.  Stateful losses with a
    ``next_epoch()`` method (online label smoothing) are advanced once per epoch.  A non-finite mean
    loss or non-finite test logits stop training after that epoch (``FitResult.diverged``); the check
    reads one number per epoch, so the steps themselves never wait for the host.
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be an int >= 1, got {epochs!r}")
    device = data.x_train.device
    y, corrupted = labels.labels.to(device), labels.corrupted.to(device)
    n = len(y)
    if n != len(data.x_train):
        raise ValueError(f"labels must have {len(data.x_train)} entries (one per training image), got {n}")
    model.to(device)
    loss_fn.to(device)
    if device.type == "cuda":
        model.to(memory_format=torch.channels_last)
        torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick the fastest kernels
    batch_size = min(batch_size, n)
    steps = n // batch_size  # drop the ragged last batch (BatchNorm needs > 1 sample)
    pad = max(1, data.image_size // 16)
    gen = torch.Generator(device=device).manual_seed(seed)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, nesterov=True, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: triangular_lr(s, epochs * steps))
    history: List[Dict[str, object]] = []
    seconds = 0.0
    bar = tqdm(range(1, epochs + 1), desc=desc, disable=not progress, leave=False)
    for epoch in bar:
        model.train()
        start = time.perf_counter()
        order = torch.randperm(n, device=device, generator=gen)
        total = torch.zeros((), device=device)
        for step in range(steps):
            idx = order[step * batch_size : (step + 1) * batch_size]
            x = data.x_train[idx]
            if augmentation:
                x = augment(x, pad=pad, hflip=data.hflip, generator=gen)
            with _autocast(device):
                out = model(x)
            loss = loss_fn(out, y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.detach().float()
            balance_threads()  # CPU threads follow the machine's load (runtime.configure_threads)
        if hasattr(loss_fn, "next_epoch"):
            loss_fn.next_epoch()
        train_loss = float(total) / steps  # synchronises with the device
        seconds += time.perf_counter() - start
        test_logits = predict(model, data.x_test)
        if not (math.isfinite(train_loss) and bool(torch.isfinite(test_logits).all())):
            bar.close()
            return FitResult(history, [], None, diverged=epoch)
        train_pred = predict(model, data.x_train).argmax(dim=1)
        entry: Dict[str, object] = {
            "epoch": epoch,
            "test_acc": accuracy(test_logits, data.y_test),
            "train_loss": train_loss,
            **memorisation(train_pred, y, data.y_train_clean, corrupted),
            "seconds": seconds,
        }
        history.append(entry)
        bar.set_postfix(test_acc=f"{entry['test_acc']:.3f}", loss=f"{train_loss:.3f}")
        if callback is not None:
            callback(entry)
    per_class = per_class_accuracy(test_logits, data.y_test, data.num_classes)
    return FitResult(history, [float(a) for a in per_class], test_logits)
