"""Small, fast classifiers: an airbench-style CNN and an MLP.

The CNN follows the layout of Keller Jordan's *airbench* CIFAR-10 speed-runs (Jordan, 2024,
"94% on CIFAR-10 in 3.29 seconds on a single GPU"): a stem convolution, then three blocks of
``conv3x3 → max-pool 2 → BN → GELU → conv3x3 → BN → GELU`` with widths 64/256/256, a global max-pool
and a bias-free linear head.  It has no whitening layer, no test-time augmentation and no look-ahead,
so it needs more epochs than airbench, but keeps its speed: ~2M parameters, all in a few wide convs.

Both models expose ``features(x)``, the penultimate embedding (for t-SNE pictures of memorisation),
with ``forward(x) = head(features(x))``.
"""
from __future__ import annotations

from typing import Dict, Sequence

import torch
from torch import Tensor, nn

__all__ = ["CNN", "MLP", "MODELS", "make_model", "count_parameters"]


def _conv_bn(cin: int, cout: int) -> list:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.GELU()]


class CNN(nn.Module):
    """airbench-style CNN; each block halves the resolution, so ``image_size >= 2**len(widths)``."""

    def __init__(
        self, num_classes: int, in_channels: int = 3, image_size: int = 32, widths: Sequence[int] = (64, 256, 256)
    ) -> None:
        super().__init__()
        if image_size < 2 ** len(widths):
            raise ValueError(f"image_size must be >= {2 ** len(widths)} for {len(widths)} blocks, got {image_size}")
        stem = widths[0] // 2
        layers = _conv_bn(in_channels, stem)
        cin = stem
        for width in widths:
            conv, bn, act = _conv_bn(cin, width)
            layers += [conv, nn.MaxPool2d(2), bn, act, *_conv_bn(width, width)]
            cin = width
        layers += [nn.AdaptiveMaxPool2d(1), nn.Flatten()]
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(cin, num_classes, bias=False)

    def features(self, x: Tensor) -> Tensor:
        """Penultimate embedding ``(N, widths[-1])``."""
        return self.body(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


class MLP(nn.Module):
    """Flatten → ``[Linear → BN → GELU] × len(hidden)`` → Linear."""

    def __init__(
        self, num_classes: int, in_channels: int = 1, image_size: int = 8, hidden: Sequence[int] = (512, 512)
    ) -> None:
        super().__init__()
        layers: list = [nn.Flatten()]
        cin = in_channels * image_size * image_size
        for width in hidden:
            layers += [nn.Linear(cin, width, bias=False), nn.BatchNorm1d(width), nn.GELU()]
            cin = width
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(cin, num_classes)

    def features(self, x: Tensor) -> Tensor:
        """Penultimate embedding ``(N, hidden[-1])``."""
        return self.body(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


MODELS: Dict[str, type] = {"cnn": CNN, "mlp": MLP}


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def make_model(name: str, num_classes: int, in_channels: int, image_size: int, **kwargs) -> nn.Module:
    """Build ``"cnn"`` or ``"mlp"``; ``kwargs`` go to the class (``widths=`` / ``hidden=``)."""
    if name not in MODELS:
        raise ValueError(f"model must be one of {sorted(MODELS)}, got {name!r}")
    if _positive_int("num_classes", num_classes) < 2:
        raise ValueError(f"num_classes must be >= 2, got {num_classes}")
    _positive_int("in_channels", in_channels)
    _positive_int("image_size", image_size)
    return MODELS[name](num_classes, in_channels, image_size, **kwargs)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)

