"""noisyloss: loss functions that stay robust when training labels are wrong.

>>> import torch, noisyloss
>>> loss = noisyloss.make_loss("gce:q=0.7")
>>> float(loss(torch.zeros(4, 10), torch.arange(4))) > 0
True
"""
from . import functional
from .losses import (
    BootstrapLoss,
    CrossEntropyLoss,
    EpochEnd,
    FocalLoss,
    FunctionalLoss,
    GCELoss,
    MAELoss,
    NCELoss,
    NCERCELoss,
    NegativeLearningLoss,
    OnlineLabelSmoothing,
    PeerLoss,
    RCELoss,
    SCELoss,
)
from .losses import (AELLoss, AGCELoss, ActivePassiveLoss, AULLoss, NFLLoss, NGCELoss, NMAELoss, NNCELoss,
                     NNFLLoss, NRCELoss, active_passive_loss, l1_penalty)
from .registry import (available_losses, canonical_spec, functional_loss, make_loss, parse_spec, presets,
                       register_loss, register_preset)

__version__ = "0.1.0"

__all__ = [
    "functional",
    "make_loss",
    "functional_loss",
    "parse_spec",
    "available_losses",
    "canonical_spec",
    "register_loss",
    "register_preset",
    "presets",
    "EpochEnd",
    "FunctionalLoss",
    "CrossEntropyLoss",
    "MAELoss",
    "GCELoss",
    "RCELoss",
    "SCELoss",
    "NCELoss",
    "NCERCELoss",
    "FocalLoss",
    "BootstrapLoss",
    "PeerLoss",
    "NegativeLearningLoss",
    "OnlineLabelSmoothing",
    "NFLLoss",
    "NGCELoss",
    "NMAELoss",
    "NRCELoss",
    "AGCELoss",
    "AULLoss",
    "AELLoss",
    "NNCELoss",
    "NNFLLoss",
    "ActivePassiveLoss",
    "active_passive_loss",
    "l1_penalty",
]
