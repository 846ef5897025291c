"""Build losses from short text specs such as ``"gce:q=0.7"`` or ``"sce:alpha=0.1,beta=1"``.

Used by the CLI, the experiment sweeps and the book's plots, so that one string names one loss
everywhere.  A spec is a registered name, then optionally ``:`` and ``key=value`` pairs separated
by commas; the keys are the constructor arguments of the name's Module (its ``__init__``
signature gives the names and defaults).  :func:`register_loss` adds a loss of your own (timm's
``register_model`` is the model), :func:`available_losses` lists them all.  A *preset*
(:func:`register_preset`, :func:`presets`) names a paper's setting and where it comes from: a
preset's name is a spec too (``make_loss("sce_cifar10")``), and parameters after it override it.
"""
from __future__ import annotations

import inspect
import re
from typing import Any, Callable, Dict, List, NamedTuple, Tuple

from torch import Tensor, nn

from . import losses as L
from ._checks import check_name, check_str, check_subclass

__all__ = [
    "LOSSES", "PRESETS", "LossEntry", "Preset", "register_loss", "register_preset", "presets",
    "available_losses", "parse_spec", "canonical_spec", "make_loss", "functional_loss",
]


class LossEntry(NamedTuple):
    cls: type  #: the loss Module
    description: str  #: one line: the formula or what the loss does


class Preset(NamedTuple):
    spec: str  #: the loss spec of the setting
    source: str  #: where the setting is stated: a paper's section or table, or a config file
    note: str  #: what else the recipe needs (gradient clipping, schedule, ...)


#: name -> the loss registered under it (:func:`register_loss`)
LOSSES: Dict[str, LossEntry] = {}
#: name -> a paper's setting (:func:`register_preset`)
PRESETS: Dict[str, Preset] = {}
#: names whose spec starts from other defaults than their Module's
_DEFAULTS: Dict[str, Dict[str, Any]] = {"ls": {"label_smoothing": 0.1}}
_ALIASES = {"cross_entropy": "ce", "negative_learning": "nl"}
_PARAM_ALIASES = {"ce": {"eps": "label_smoothing"}, "ls": {"eps": "label_smoothing"}}
#: a class pair of an asym noise spec (``7>1``): after a comma it continues the value before it
_CLASS_PAIR = re.compile(r"\d+\s*>\s*\d+")
#: arguments that are objects, not numbers or words: given to make_loss, never in a spec
_NOT_IN_SPECS = ("generator",)


def _check_free(name: str) -> None:
    if name in _ALIASES or name in PRESETS or name in LOSSES:
        kind = "an alias of a loss" if name in _ALIASES else "a preset" if name in PRESETS else "a loss"
        raise ValueError(f"name {name!r} is taken by {kind}")


def register_loss(name: str, module_cls: type, description: str = "") -> type:
    """Register the loss Module ``module_cls`` under ``name``; return the class.

    ``module_cls`` is an ``nn.Module`` subclass; its ``__init__`` arguments and their defaults are
    the spec's parameters.  A name already registered raises ``ValueError`` unless it names the
    same class (registering again, e.g. when a module is re-imported, updates the description).

    >>> import noisyloss
    >>> class Half(nn.Module):
    ...     def __init__(self, reduction: str = "mean"):
    ...         super().__init__()
    ...         self.reduction = reduction
    ...     def forward(self, logits, target):
    ...         return 0.5 * noisyloss.functional.cross_entropy(logits, target, reduction=self.reduction)
    >>> register_loss("half_ce", Half, "ce / 2")
    <class 'noisyloss.registry.Half'>
    >>> make_loss("half_ce:reduction=sum")
    Half()
    >>> del LOSSES["half_ce"]
    """
    check_name("name", name)
    check_subclass("module_cls", module_cls, nn.Module)
    check_str("description", description)
    if not (name in LOSSES and LOSSES[name].cls is module_cls):
        _check_free(name)
    LOSSES[name] = LossEntry(module_cls, description)
    return module_cls


def register_preset(name: str, spec: str, source: str, note: str = "") -> None:
    """Register a paper's setting of a loss under ``name``: its ``spec``, the ``source`` that states
    it (a paper's section or table, or a config file), and a ``note`` on the rest of the recipe."""
    check_name("name", name)
    canonical_spec(check_str("spec", spec))  # a loss spec with parameters its loss takes
    if not check_str("source", source).strip():
        raise ValueError("source must name where the setting is stated, got an empty string")
    preset = Preset(spec, source, check_str("note", note))
    if PRESETS.get(name) != preset:
        _check_free(name)
    PRESETS[name] = preset


def presets() -> Dict[str, Preset]:
    """Mapping ``name -> Preset(spec, source, note)`` of every registered preset."""
    return dict(PRESETS)


def _parse_value(text: str) -> Any:
    """A spec value: true/false, none, an int, a float, else the text itself."""
    low = text.strip().lower()
    if low in ("true", "false", "none"):
        return None if low == "none" else low == "true"
    for number in (int, float):
        try:
            return number(text)
        except ValueError:
            pass
    return text.strip()


def parse_spec(spec: str) -> Tuple[str, Dict[str, Any]]:
    """``"gce:q=0.7,k=0.5"`` -> ``("gce", {"q": 0.7, "k": 0.5})``; a preset's name gives its loss and
    parameters (``"sce_cifar10:beta=2"`` -> ``("sce", {"alpha": 0.1, "beta": 2, "A": "code"})``)."""
    if not isinstance(spec, str) or not spec.strip():
        raise TypeError(f"loss spec must be a non-empty string like 'gce:q=0.7', got {spec!r}")
    name, _, rest = spec.strip().partition(":")
    name = _ALIASES.get(name.strip().lower(), name.strip().lower())
    if name in PRESETS:
        name, defaults = parse_spec(PRESETS[name].spec)
    elif name in LOSSES:
        defaults = _DEFAULTS.get(name, {})
    else:
        raise ValueError(f"unknown loss {name!r}; available: {', '.join(LOSSES)}; presets: {', '.join(PRESETS)}")
    items: List[str] = []
    for item in filter(None, (s.strip() for s in rest.split(","))):
        if _CLASS_PAIR.fullmatch(item) and items:  # "T=asym:0.4:1>7,7>1": a comma inside a noise spec
            items[-1] += "," + item
        else:
            items.append(item)
    params: Dict[str, Any] = {}
    for item in items:
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
    return name, {**defaults, **params}


def _format_value(value: Any) -> str:
    """A parameter value as a spec writes it: true/false, none, shortest numbers (1.0 -> 1)."""
    if isinstance(value, bool):
        return str(value).lower()
    if value is None:
        return "none"
    if isinstance(value, (int, float)):
        return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else repr(float(value))
    return str(value)


def _accepted(cls: type) -> Dict[str, inspect.Parameter]:
    """The spec parameters of a loss Module: its constructor's named arguments."""
    return {k: p for k, p in inspect.signature(cls).parameters.items()
            if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}


def _resolve(spec: str, overrides: Dict[str, Any]) -> Tuple[str, type, Dict[str, Any]]:
    """A spec's name, Module class and parameters (``overrides`` win), unknown parameters refused."""
    name, params = parse_spec(spec)
    params.update(overrides)
    cls = LOSSES[name].cls
    unknown = sorted(set(params) - set(_accepted(cls)))
    if unknown:
        raise ValueError(f"loss {name!r} does not take {unknown}; it takes {sorted(_accepted(cls))}")
    return name, cls, params


def canonical_spec(spec: str) -> str:
    """The one spelling of a loss spec: the name of its Module's first registry entry, the parameters
    that differ from the Module's defaults in the Module's order, numbers written shortest.  Equal
    losses get equal specs: ``"ce"``, ``"ce:label_smoothing=0"`` and ``"cross_entropy:eps=0.0"``
    give ``"ce"``; ``"ls"`` gives ``"ce:label_smoothing=0.1"``; ``"gce:q=0.70"`` gives ``"gce"``."""
    _, cls, params = _resolve(spec, {})
    name = next(n for n, entry in LOSSES.items() if entry.cls is cls)
    kept = [f"{key}={_format_value(params[key])}" for key, p in _accepted(cls).items()
            if key in params and (p.default is inspect.Parameter.empty or params[key] != p.default)]
    return f"{name}:{','.join(kept)}" if kept else name


def make_loss(spec: str, **overrides: Any) -> nn.Module:
    """Build a loss module from a spec; keyword ``overrides`` win (e.g. ``num_classes=10`` for OLS)."""
    _, cls, params = _resolve(spec, overrides)
    try:
        return cls(**params)
    except (TypeError, ValueError) as err:
        raise type(err)(f"loss spec {spec!r}: {err}") from None


def functional_loss(spec: str, **overrides: Any) -> Callable[..., Tensor]:
    """The functional form of a spec: ``f(logits, target, reduction="mean")`` with the parameters
    bound and checked (the loss's :class:`~noisyloss.losses.FunctionalLoss` function)."""
    name, cls, params = _resolve(spec, overrides)
    if not issubclass(cls, L.FunctionalLoss):
        raise ValueError(f"{spec!r} has no functional form: its Module is not a losses.FunctionalLoss (a stateful "
                         "loss, a combination of Modules such as apl, or a Module of your own); use make_loss()")
    try:
        params = cls.checked_arguments(**params)
    except (TypeError, ValueError) as err:
        raise type(err)(f"loss spec {spec!r}: {err}") from None
    params.pop("reduction")
    loss = cls.fn

    def fn(logits: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
        return loss(logits, target, reduction=reduction, **params)

    fn.__name__ = spec
    return fn


def available_losses() -> Dict[str, str]:
    """Mapping ``name -> "description (defaults)"`` of every registered loss."""
    out = {}
    for name, (cls, desc) in LOSSES.items():
        defaults = {**{k: p.default for k, p in _accepted(cls).items() if p.default is not inspect.Parameter.empty
                       and k not in ("reduction", *_NOT_IN_SPECS)}, **_DEFAULTS.get(name, {})}
        args = ", ".join(f"{k}={v!r}" for k, v in defaults.items())
        out[name] = " ".join(filter(None, [desc, f"({args})" if args else ""]))
    return out


for _name, _cls, _description in [
    ("ce", L.CrossEntropyLoss, "cross entropy (label_smoothing=eps optional)"),
    ("ls", L.CrossEntropyLoss, "label smoothing: ce with label_smoothing"),
    ("mae", L.MAELoss, "1 - p_y"),
    ("gce", L.GCELoss, "(1 - p_y^q)/q, truncated below p_y = k"),
    ("rce", L.RCELoss, "-A (1 - p_y); A=code is the authors' code's ln 1e-4"),
    ("sce", L.SCELoss, "alpha CE + beta RCE"),
    ("nce", L.NCELoss, "log p_y / sum_k log p_k"),
    ("nce_rce", L.NCERCELoss, "alpha NCE + beta RCE"),
    ("focal", L.FocalLoss, "-(1 - p_y)^gamma log p_y"),
    ("bootstrap", L.BootstrapLoss, "soft/hard bootstrapping"),
    ("peer", L.PeerLoss, "base(x_i, y_i) - alpha base(x_j, y_k)"),
    ("nl", L.NegativeLearningLoss, "negative learning -log(1 - p_ybar)"),
    ("ols", L.OnlineLabelSmoothing, "online label smoothing (needs num_classes)"),
    ("elr", L.ELRLoss, "early-learning regularisation CE + lam log(1 - <p, t>), t a running average of "
     "each sample's predictions (Liu et al., 2020)"),
    ("gce_prune", L.TruncatedGCELoss, "truncated GCE with per-sample weights pruned in rounds, as the "
     "paper's code trains it (Zhang & Sabuncu, 2018); gce:k= truncates at every step instead"),
    ("forward", L.ForwardCorrectionLoss, "forward correction -log (p^T T)_y; T a noise spec (sym:0.4) or matrix, "
     "in a run the run's own noise model when omitted"),
    ("backward", L.BackwardCorrectionLoss, "backward correction (T^-1 l)_y, l_k = -log p_k; T as for forward"),
    ("nls", L.NLSLoss, "negative label smoothing: label smoothing with smooth_rate <= 1, negative allowed"),
    ("poly1", L.Poly1Loss, "poly-1: -log p_y + epsilon (1 - p_y), epsilon >= -1"),
    ("taylor", L.TaylorLoss, "Taylor cross entropy sum_{k<=order} (1 - p_y)^k / k"),
]:
    register_loss(_name, _cls, _description)

_APL = "HanxunH/Active-Passive-Losses configs/{}/sym/{}.yaml (Ma et al., 2020)"
_APL_CIFAR10 = ("grad_bound 5.0 (gradient-norm clipping at 5) is part of the recipe; SGD lr 0.01, "
                "momentum 0.9, weight decay 1e-4, cosine schedule over 120 epochs, batch 128")
_APL_CIFAR100 = ("grad_bound 5.0 (gradient-norm clipping at 5) is part of the recipe; SGD lr 0.1, "
                 "momentum 0.9, weight decay 1e-5, cosine schedule over 200 epochs, batch 128, ResNet50")
_CLAMP = "; A=code: loss.py clamps the one-hot label at 1e-4 inside RCE"
for _name, _spec, _source, _note in [
    ("sce_cifar10", "sce:alpha=0.1,beta=1,A=code", _APL.format("cifar10", "sce"), _APL_CIFAR10 + _CLAMP),
    ("sce_cifar100", "sce:alpha=6,beta=0.1,A=code", _APL.format("cifar100", "sce"), _APL_CIFAR100 + _CLAMP),
    ("nce_rce_cifar10", "nce_rce:alpha=1,beta=1,A=code", _APL.format("cifar10", "nce+rce"), _APL_CIFAR10 + _CLAMP),
    ("nce_rce_cifar100", "nce_rce:alpha=10,beta=0.1,A=code", _APL.format("cifar100", "nce+rce"),
     _APL_CIFAR100 + _CLAMP),
    ("gce_cifar10", "gce:q=0.7", _APL.format("cifar10", "gce"), _APL_CIFAR10),
    ("focal_cifar10", "focal:gamma=0.5", _APL.format("cifar10", "focal"), _APL_CIFAR10),
]:
    register_preset(_name, _spec, _source, _note)

# ----------------------------------------------------------------------------------------------
# normalised, asymmetric and active negative losses (Ma et al. 2020; Zhou et al. 2021; Ye et al. 2023)
# ----------------------------------------------------------------------------------------------
class APLLoss(L.ActivePassiveLoss):
    """``apl:active=SPEC,passive=SPEC,alpha=1,beta=1``: any two registered functional losses, each
    named by a spec whose parameters are separated by ``;`` (a ``,`` ends the sub-spec), e.g.
    ``apl:active=nfl:gamma=0.5,passive=rce:A=code,alpha=10,beta=0.1``; in Python ``active`` and
    ``passive`` may also be loss Modules.  The published pairs have names of their own
    (``nfl_rce:gamma=0.5,alpha=10,beta=0.1,A=code``)."""

    def __init__(self, active: Any = "nce", passive: Any = "rce", alpha: float = 1.0, beta: float = 1.0,
                 reduction: str = "mean") -> None:
        active, passive = (make_loss(check_str(name, spec).replace(";", ",")) if isinstance(spec, str) else spec
                           for name, spec in (("active", active), ("passive", passive)))
        super().__init__(active, passive, alpha, beta, reduction)


_PAIRS = {
    "nce_mae": (L.NCELoss, L.MAELoss), "nfl_rce": (L.NFLLoss, L.RCELoss), "nfl_mae": (L.NFLLoss, L.MAELoss),
    "ngce_mae": (L.NGCELoss, L.MAELoss), "ngce_rce": (L.NGCELoss, L.RCELoss),
    "nce_agce": (L.NCELoss, L.AGCELoss), "nce_aul": (L.NCELoss, L.AULLoss), "nce_ael": (L.NCELoss, L.AELLoss),
    "nfl_agce": (L.NFLLoss, L.AGCELoss), "nfl_aul": (L.NFLLoss, L.AULLoss), "nfl_ael": (L.NFLLoss, L.AELLoss),
    "anl_ce": (L.NCELoss, L.NNCELoss), "anl_fl": (L.NFLLoss, L.NNFLLoss),
}
for _name, _cls, _description in [
    ("nfl", L.NFLLoss, "normalised focal loss FL_y / sum_k FL_k"),
    ("ngce", L.NGCELoss, "normalised GCE (1 - p_y^q) / sum_k (1 - p_k^q)"),
    ("nmae", L.NMAELoss, "normalised MAE (1 - p_y) / (C - 1)"),
    ("nrce", L.NRCELoss, "normalised RCE, equal to nmae"),
    ("agce", L.AGCELoss, "asymmetric GCE ((a + 1)^q - (a + p_y)^q) / q"),
    ("aul", L.AULLoss, "asymmetric unhinged ((a - p_y)^q - (a - 1)^q) / q"),
    ("ael", L.AELLoss, "asymmetric exponential exp(-p_y / a)"),
    ("nnce", L.NNCELoss, "normalised negative CE, p clamped at min_prob"),
    ("nnfl", L.NNFLLoss, "normalised negative focal loss, p clamped at min_prob"),
    ("apl", APLLoss, "alpha active + beta passive of two registered losses"),
    *((_name, L.active_passive_loss(*_pair), f"alpha {_pair[0].__name__[:-4]} + beta {_pair[1].__name__[:-4]}"
       + (" (active negative loss; weight penalty delta: losses.l1_penalty)" if _name.startswith("anl") else ""))
      for _name, _pair in _PAIRS.items()),
]:
    register_loss(_name, _cls, _description)

_ALFS = "hitcszx/ALFs config.py {}_CONFIG['{}'] (Zhou et al., 2021)"
_ALFS_CIFAR10 = ("main.py: grad_bound 5.0 (gradient-norm clipping at 5) is part of the recipe; SGD lr 0.01, "
                 "momentum 0.9, weight decay 1e-4, cosine schedule over 120 epochs, batch 128, 8-layer CNN")
_ALFS_CIFAR100 = ("main.py: grad_bound 5.0 (gradient-norm clipping at 5) is part of the recipe; SGD lr 0.1, "
                  "momentum 0.9, weight decay 1e-5, cosine schedule over 200 epochs, batch 128, ResNet34")
_ANL = "Virusdoll/Active-Negative-Loss config/{}_{}.json (Ye et al., 2023)"
_ANL_NOTE = ("delta {} is an L1 weight penalty, applied through the optimizer: "
             "optimizer=losses.l1_penalty(train.sgd(lr={}, weight_decay=0), {}); grad_bound 5.0 (gradient-norm "
             "clipping at 5) is part of the recipe; momentum 0.9, weight decay 0, cosine schedule over {} epochs, "
             "batch 128, {}")
_ANL_CIFAR10, _ANL_CIFAR100 = _ANL_NOTE.format(5e-5, 0.01, 5e-5, 120, "toymodel8l"), \
    _ANL_NOTE.format(5e-7, 0.1, 5e-7, 200, "ResNet34")
for _name, _spec, _source, _note in [
    ("nce_mae_cifar10", "nce_mae:alpha=1,beta=1", _APL.format("cifar10", "nce+mae"), _APL_CIFAR10),
    ("nce_mae_cifar100", "nce_mae:alpha=10,beta=1", _APL.format("cifar100", "nce+mae"), _APL_CIFAR100),
    ("nfl_mae_cifar10", "nfl_mae:alpha=1,beta=1,gamma=0.5", _APL.format("cifar10", "nfl+mae"), _APL_CIFAR10),
    ("nfl_mae_cifar100", "nfl_mae:alpha=10,beta=1,gamma=0.5", _APL.format("cifar100", "nfl+mae"), _APL_CIFAR100),
    ("nfl_rce_cifar10", "nfl_rce:alpha=1,beta=1,gamma=0.5,A=code", _APL.format("cifar10", "nfl+rce"),
     _APL_CIFAR10 + _CLAMP),
    ("nfl_rce_cifar100", "nfl_rce:alpha=10,beta=0.1,gamma=0.5,A=code", _APL.format("cifar100", "nfl+rce"),
     _APL_CIFAR100 + _CLAMP),
    ("ngce_mae_cifar10", "ngce_mae:alpha=1,beta=1,q=0.1", _APL.format("cifar10", "ngce+mae"), _APL_CIFAR10),
    ("ngce_mae_cifar100", "ngce_mae:alpha=10,beta=1,q=0.7", _APL.format("cifar100", "ngce+mae"), _APL_CIFAR100),
    ("ngce_rce_cifar10", "ngce_rce:alpha=1,beta=1,q=0.1,A=code", _APL.format("cifar10", "ngce+rce"),
     _APL_CIFAR10 + _CLAMP + "; the CIFAR-100 ngce+rce.yaml trains NGCEandMAE (q 0.7, alpha 10, beta 0.1)"),
    ("ngce_cifar10", "ngce:q=0.1", _APL.format("cifar10", "ngce"), _APL_CIFAR10),
    ("ngce_cifar100", "ngce:q=0.7", _APL.format("cifar100", "ngce"), _APL_CIFAR100),
    ("nfl_cifar100", "nfl:gamma=0.5", _APL.format("cifar100", "nfl"), _APL_CIFAR100),
    ("agce_cifar10", "agce:a=0.6,q=0.6", _ALFS.format("CIFAR10", "AGCE"), _ALFS_CIFAR10),
    ("agce_cifar100", "agce:a=0.6,q=0.6", _ALFS.format("CIFAR100", "AGCE"), _ALFS_CIFAR100),
    ("aul_cifar10", "aul:a=5.5,q=3", _ALFS.format("CIFAR10", "AUL"), _ALFS_CIFAR10),
    ("aul_cifar100", "aul:a=5.5,q=3", _ALFS.format("CIFAR100", "AUL"), _ALFS_CIFAR100),
    ("ael_cifar10", "ael:a=2.5", _ALFS.format("CIFAR10", "AEL"), _ALFS_CIFAR10),
    ("ael_cifar100", "ael:a=2.5", _ALFS.format("CIFAR100", "AEL"), _ALFS_CIFAR100),
    ("nce_agce_cifar10", "nce_agce:alpha=1,beta=4,a=6,q=1.5", _ALFS.format("CIFAR10", "NCEandAGCE"), _ALFS_CIFAR10),
    ("nce_agce_cifar100", "nce_agce:alpha=10,beta=0.1,a=1.8,q=3", _ALFS.format("CIFAR100", "NCEandAGCE"),
     _ALFS_CIFAR100),
    ("nce_aul_cifar10", "nce_aul:alpha=1,beta=4,a=6.3,q=1.5", _ALFS.format("CIFAR10", "NCEandAUL"), _ALFS_CIFAR10),
    ("nce_aul_cifar100", "nce_aul:alpha=10,beta=0.015,a=6,q=3", _ALFS.format("CIFAR100", "NCEandAUL"),
     _ALFS_CIFAR100),
    ("nce_ael_cifar10", "nce_ael:alpha=1,beta=4,a=5", _ALFS.format("CIFAR10", "NCEandAEL"), _ALFS_CIFAR10),
    ("nce_ael_cifar100", "nce_ael:alpha=10,beta=0.1,a=1.5", _ALFS.format("CIFAR100", "NCEandAEL"), _ALFS_CIFAR100),
    ("anl_ce_cifar10", "anl_ce:alpha=5,beta=5,min_prob=1e-7", _ANL.format("cifar10", "anl_ce"), _ANL_CIFAR10),
    ("anl_ce_cifar100", "anl_ce:alpha=10,beta=1,min_prob=1e-7", _ANL.format("cifar100", "anl_ce"), _ANL_CIFAR100),
    ("anl_fl_cifar10", "anl_fl:alpha=5,beta=5,gamma=0.5,min_prob=1e-7", _ANL.format("cifar10", "anl_fl"),
     _ANL_CIFAR10),
    ("anl_fl_cifar100", "anl_fl:alpha=10,beta=1,gamma=0.5,min_prob=1e-7", _ANL.format("cifar100", "anl_fl"),
     _ANL_CIFAR100),
]:
    register_preset(_name, _spec, _source, _note)

_ELR = "shengliu66/ELR ELR/config_{}.json (Liu et al., 2020)"
_TRUNC = ("AlanChou/Truncated-Loss README.md ({} command) and main.py defaults (Zhang & Sabuncu, 2018; an "
          "unofficial implementation, which prunes with the best-test-accuracy checkpoint)")
for _name, _spec, _source, _note in [
    ("elr_cifar10", "elr:lam=3,beta=0.7", _ELR.format("cifar10"), "ResNet34, SGD lr 0.02, momentum 0.9"),
    ("elr_cifar100", "elr:lam=7,beta=0.9", _ELR.format("cifar100"),
     "ResNet34, SGD lr 0.02, momentum 0.9, weight decay 1e-3, steps at epochs 80 and 120 (x0.01), 150 epochs"),
    ("gce_prune_cifar10", "gce_prune:q=0.7,k=0.5,start_prune=40,prune_every=10", _TRUNC.format("CIFAR-10"),
     "120 epochs, learning-rate steps at 40 and 80"),
    ("gce_prune_cifar100", "gce_prune:q=0.7,k=0.5,start_prune=80,prune_every=10", _TRUNC.format("CIFAR-100"),
     "150 epochs, learning-rate steps at 80 and 120"),
]:
    register_preset(_name, _spec, _source, _note)
