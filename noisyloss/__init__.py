"""noisyloss: loss functions that stay robust when training labels are wrong.

>>> import torch, noisyloss
>>> loss = noisyloss.make_loss("gce:q=0.7")
>>> float(loss(torch.zeros(4, 10), torch.arange(4))) > 0
True
"""
from . import functional, losses
from .data import register_dataset
from .losses import *  # noqa: F401,F403  every loss Module and helper of losses.__all__
from .models import register_model
from .registry import (available_losses, canonical_spec, functional_loss, make_loss, parse_spec, presets,
                       register_loss, register_preset)

__version__ = "0.1.0"

__all__ = [
    "functional", "make_loss", "functional_loss", "parse_spec", "available_losses", "canonical_spec",
    "register_loss", "register_preset", "presets", "register_dataset", "register_model", *losses.__all__,
]
