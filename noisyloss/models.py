"""Small, fast classifiers: an airbench-style CNN and an MLP.

The CNN follows the layout of Keller Jordan's *airbench* CIFAR-10 speed-runs (Jordan, 2024,
"94% on CIFAR-10 in 3.29 seconds on a single GPU"): a stem convolution, then three blocks of
``conv3x3 → max-pool 2 → BN → GELU → conv3x3 → BN → GELU`` with widths 64/256/256, a global max-pool
and a bias-free linear head.  It has no whitening layer, no test-time augmentation and no look-ahead,
so it needs more epochs than airbench, but keeps its speed: ~2M parameters, all in a few wide convs.

Your own model: :func:`register_model`.
"""
from __future__ import annotations

from typing import Callable, Dict, List, Sequence

import torch
from torch import Tensor, nn

from ._checks import check_choice, check_int, check_name, check_takes

__all__ = ["CNN", "MLP", "register_model", "available_models", "make_model"]


def _conv_bn(cin: int, cout: int) -> list:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.GELU()]


class _BodyHead(nn.Module):
    """A ``body`` giving the penultimate embedding ``features(x)`` (for t-SNE pictures of memorisation),
    then a linear ``head``: ``forward(x) = head(features(x))``."""

    def features(self, x: Tensor) -> Tensor:
        return self.body(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


class CNN(_BodyHead):
    """airbench-style CNN; each block halves the resolution, so ``image_size >= 2**len(widths)``."""

    def __init__(
        self, num_classes: int, in_channels: int = 3, image_size: int = 32, widths: Sequence[int] = (64, 256, 256)
    ) -> None:
        super().__init__()
        check_int("image_size", image_size, 2 ** len(widths))  # each block halves the resolution
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


class MLP(_BodyHead):
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


Factory = Callable[..., nn.Module]
_MODELS: Dict[str, Factory] = {"cnn": CNN, "mlp": MLP}


def register_model(name: str, factory: Factory) -> None:
    """Make ``name`` a model: ``factory(num_classes, in_channels, image_size)`` returns a fresh
    ``nn.Module`` mapping ``(N, in_channels, image_size, image_size)`` inputs to ``(N, num_classes)``
    logits (feature vectors ``(N, D)`` come as ``in_channels`` D and ``image_size`` 1).  A name already
    taken raises ``ValueError``, unless it is registered again with the same factory.

    >>> register_model("linear", lambda c, ch, s: nn.Sequential(nn.Flatten(), nn.Linear(ch * s * s, c)))
    >>> make_model("linear", 3, 1, 8)(torch.zeros(2, 1, 8, 8)).shape
    torch.Size([2, 3])
    """
    check_name("name", name)
    check_takes("factory", factory, ("num_classes", "in_channels", "image_size"))
    if _MODELS.get(name, factory) is not factory:
        raise ValueError(f"model name {name!r} is taken; choose another name")
    _MODELS[name] = factory


def available_models() -> List[str]:
    """The names of every model, built-in and registered."""
    return sorted(_MODELS)


def make_model(name: str, num_classes: int, in_channels: int, image_size: int, **kwargs) -> nn.Module:
    """Build model ``name`` (``"cnn"``, ``"mlp"`` or a name of :func:`register_model`); ``kwargs`` go
    to its factory (the built-in classes take ``widths=`` / ``hidden=``)."""
    check_choice("model", name, available_models())
    check_int("num_classes", num_classes, 2)
    check_int("in_channels", in_channels, 1)
    check_int("image_size", image_size, 1)
    model = _MODELS[name](num_classes, in_channels, image_size, **kwargs)
    if not isinstance(model, nn.Module):
        raise TypeError(f"the factory of model {name!r} must return an nn.Module, got {type(model).__name__}")
    return model
