"""Build losses from short text specs such as ``"gce:q=0.7"`` or ``"sce:alpha=0.1,beta=1"``.

Used by the CLI, the experiment sweeps and the book's plots, so that one string names one loss
everywhere.  ``available_losses()`` lists the names with their default parameters.
"""
from __future__ import annotations

import inspect
from typing import Any, Callable, Dict, Tuple

from torch import nn

from . import functional as NF
from . import losses as L

__all__ = ["LOSSES", "available_losses", "parse_spec", "canonical_spec", "make_loss", "functional_loss"]

#: name -> (module class, functional form or None for stateful losses, one-line description)
LOSSES: Dict[str, Tuple[type, Any, str]] = {
    "ce": (L.CrossEntropyLoss, NF.cross_entropy, "cross entropy (label_smoothing=eps optional)"),
    "ls": (L.CrossEntropyLoss, NF.cross_entropy, "label smoothing: ce with label_smoothing"),
    "mae": (L.MAELoss, NF.mae, "1 - p_y"),
    "gce": (L.GCELoss, NF.gce, "(1 - p_y^q)/q, truncated below p_y = k"),
    "rce": (L.RCELoss, NF.rce, "-A (1 - p_y)"),
    "sce": (L.SCELoss, NF.sce, "alpha CE + beta RCE"),
    "nce": (L.NCELoss, NF.nce, "log p_y / sum_k log p_k"),
    "nce_rce": (L.NCERCELoss, NF.nce_rce, "alpha NCE + beta RCE"),
    "focal": (L.FocalLoss, NF.focal, "-(1 - p_y)^gamma log p_y"),
    "bootstrap": (L.BootstrapLoss, NF.bootstrap, "soft/hard bootstrapping"),
    "peer": (L.PeerLoss, NF.peer, "base(x_i, y_i) - alpha base(x_j, y_k)"),
    "nl": (L.NegativeLearningLoss, NF.negative_learning, "negative learning -log(1 - p_ybar)"),
    "ols": (L.OnlineLabelSmoothing, None, "online label smoothing (needs num_classes)"),
}
_DEFAULTS: Dict[str, Dict[str, Any]] = {"ls": {"label_smoothing": 0.1}}
_ALIASES = {"cross_entropy": "ce", "negative_learning": "nl"}
_PARAM_ALIASES = {"ce": {"eps": "label_smoothing"}, "ls": {"eps": "label_smoothing"}}
#: arguments that are objects, not numbers or words: given to make_loss, never in a spec
_NOT_IN_SPECS = ("generator",)


def _parse_value(text: str) -> Any:
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    if low == "none":
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text.strip()


def parse_spec(spec: str) -> Tuple[str, Dict[str, Any]]:
    """``"gce:q=0.7,k=0.5"`` -> ``("gce", {"q": 0.7, "k": 0.5})``."""
    if not isinstance(spec, str) or not spec.strip():
        raise TypeError(f"loss spec must be a non-empty string like 'gce:q=0.7', got {spec!r}")
    name, _, rest = spec.strip().partition(":")
    name = _ALIASES.get(name.strip().lower(), name.strip().lower())
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; available: {', '.join(LOSSES)}")
    params: Dict[str, Any] = {}
    for item in filter(None, (s.strip() for s in rest.split(","))):
        key, eq, value = (part.strip() for part in item.partition("="))
        if not eq or not key or not value:
            raise ValueError(f"loss spec parameter {item!r} in {spec!r} must look like key=value")
        key = _PARAM_ALIASES.get(name, {}).get(key, key)
        if key in params:
            raise ValueError(f"loss spec {spec!r} sets {key!r} twice")
        if key in _NOT_IN_SPECS:
            raise ValueError(f"{key!r} cannot be set in a loss spec ({spec!r}): pass it to make_loss, "
                             f"e.g. make_loss({name!r}, {key}=torch.Generator().manual_seed(0))")
        params[key] = _parse_value(value)
    return name, {**_DEFAULTS.get(name, {}), **params}


def _format_value(value: Any) -> str:
    """A parameter value as a spec writes it: true/false, none, shortest numbers (1.0 -> 1)."""
    if isinstance(value, bool):
        return str(value).lower()
    if value is None:
        return "none"
    if isinstance(value, (int, float)):
        return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else repr(float(value))
    return str(value)


def canonical_spec(spec: str) -> str:
    """The one spelling of a loss spec: the name of its Module's first registry entry, the parameters
    that differ from the Module's defaults in the Module's order, numbers written shortest.  Equal
    losses get equal specs: ``"ce"``, ``"ce:label_smoothing=0"`` and ``"cross_entropy:eps=0.0"``
    give ``"ce"``; ``"ls"`` gives ``"ce:label_smoothing=0.1"``; ``"gce:q=0.70"`` gives ``"gce"``."""
    name, params = parse_spec(spec)
    cls = LOSSES[name][0]
    name = next(n for n, entry in LOSSES.items() if entry[0] is cls)
    accepted = _accepted(cls)
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise ValueError(f"loss {name!r} does not take {unknown}; it takes {sorted(accepted)}")
    kept = [f"{key}={_format_value(params[key])}" for key, p in accepted.items()
            if key in params and (p.default is inspect.Parameter.empty or params[key] != p.default)]
    return f"{name}:{','.join(kept)}" if kept else name


def _accepted(cls: type) -> Dict[str, inspect.Parameter]:
    return {k: v for k, v in inspect.signature(cls.__init__).parameters.items() if k != "self"}


def make_loss(spec: str, **overrides: Any) -> nn.Module:
    """Build a loss module from a spec; keyword ``overrides`` win (e.g. ``num_classes=10`` for OLS)."""
    name, params = parse_spec(spec)
    params.update(overrides)
    cls = LOSSES[name][0]
    accepted = _accepted(cls)
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise ValueError(f"loss {name!r} does not take {unknown}; it takes {sorted(accepted)}")
    try:
        return cls(**params)
    except (TypeError, ValueError) as err:
        raise type(err)(f"loss spec {spec!r}: {err}") from None


def functional_loss(spec: str, **overrides: Any) -> Callable[..., Any]:
    """The functional form of a spec: ``f(logits, target, reduction="mean")`` with params bound."""
    module = make_loss(spec, **overrides)
    if LOSSES[parse_spec(spec)[0]][1] is None:
        raise ValueError(f"{spec!r} is stateful and has no functional form; use make_loss()")

    def fn(logits, target, reduction: str = "mean"):
        return module.fn(logits, target, reduction=reduction, **module.params)

    fn.__name__ = spec
    return fn


def available_losses() -> Dict[str, str]:
    """Mapping ``name -> "description (defaults)"`` of every registered loss."""
    out = {}
    for name, (cls, _, desc) in LOSSES.items():
        defaults = {**{k: p.default for k, p in _accepted(cls).items() if p.default is not inspect.Parameter.empty
                       and k not in ("reduction", "generator")}, **_DEFAULTS.get(name, {})}
        args = ", ".join(f"{k}={v!r}" for k, v in defaults.items())
        out[name] = f"{desc} ({args})" if args else desc
    return out
