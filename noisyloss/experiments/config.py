"""What defines a run: :class:`RunConfig` (checked field by field) and :func:`grid` of configs."""
from __future__ import annotations

import dataclasses
import inspect
import json
import numbers
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

import torch
from torch import nn

from .._checks import check_bool, check_choice, check_int, check_param, check_seed, check_text
from ..data import ASYM_PAIRS, dataset_info
from ..models import available_models
from ..noise import make_transition, parse_noise
from ..registry import LOSSES, canonical_spec, make_loss, parse_spec
from ..runtime import default_device, quick_mode

__all__ = ["ConfigError", "ConfigTypeError", "RunConfig", "DEFAULT_LR", "RUNNER_SETS", "grid"]

#: peak learning rate of the triangular schedule when ``RunConfig.lr`` is None
DEFAULT_LR: Dict[str, float] = {"cnn": 0.2, "mlp": 0.1}
#: loss constructor arguments the runner sets from the data (never in a spec)
RUNNER_SETS = ("num_classes", "num_examples")


class ConfigError(ValueError):
    """A run that cannot be made as asked (a bad field, a training subset larger than the data,
    labels that do not fit the dataset); raised before anything is trained."""


class ConfigTypeError(ConfigError, TypeError):
    """A :class:`ConfigError` for a field of the wrong type (also a ``TypeError``)."""


def _field(name: str, check: Callable[..., Any], *args: Any) -> Any:
    """``check(name, *args)`` with its error as a :class:`ConfigError` (:class:`ConfigTypeError` for
    a ``TypeError``) prefixed by the field's name, unless the message starts with it."""
    try:
        return check(name, *args)
    except (TypeError, ValueError) as err:
        message = str(err) if str(err).startswith(name) else f"{name}: {err}"
        raise (ConfigTypeError if isinstance(err, TypeError) else ConfigError)(message) from None


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines a run; an invalid field raises :class:`ConfigError` (a ``ValueError``)
    naming the field.

    ``loss``: a :func:`noisyloss.registry.make_loss` spec; equal losses are one run whatever the
    spelling (the key uses :func:`noisyloss.registry.canonical_spec`).
    ``noise``: a :func:`noisyloss.noise.make_transition` spec applied to the clean training labels
    (``"clean"`` for ``cifar10n-*``, whose human labels are the noise); ``"asym:R"`` uses the class
    pairs of the dataset (:data:`noisyloss.data.ASYM_PAIRS`) or those named in the spec.
    ``dataset``/``model``: a built-in name or one of :func:`noisyloss.register_dataset` /
    :func:`noisyloss.register_model`.  The loss's ``num_classes`` and ``num_examples``, where its
    ``__init__`` takes them, are set by the runner from the data (:data:`RUNNER_SETS`), never in the spec.
    ``lr``/``model`` ``None``: defaults for the dataset (``mlp`` on images of at most 8x8 pixels
    and on feature vectors: digits, synth10, synth100; ``cnn`` otherwise; ``DEFAULT_LR``; a registered
    model needs its ``lr``).  ``train_subset``: train on this many images (a fixed random subset, the
    same for every seed).  ``augment``: random translations and flips of the training images; ``None``
    turns them on for images and off for feature vectors (and inputs of one pixel).  ``quick``: ``None``
    follows :func:`noisyloss.runtime.quick_mode`.
    ``label_set``: the name of a custom set of training labels (an annotator's, a simulated noise
    process's) that replaces the dataset's; the labels themselves go to ``run(train_labels=...)`` or
    ``sweep(label_sets={name: labels})``, and the record keeps the name and a digest of them.
    ``noise`` must then be ``"clean"``: the custom labels are the noise.

    >>> cfg = RunConfig(dataset="digits", loss="gce:q=0.7", noise="sym:0.4", epochs=5)
    >>> cfg.resolved("cpu").model
    'mlp'
    """

    dataset: str = "digits"
    loss: str = "ce"
    noise: str = "clean"
    epochs: int = 20
    batch_size: int = 256
    lr: Optional[float] = None
    model: Optional[str] = None
    seed: int = 0
    train_subset: Optional[int] = None
    augment: Optional[bool] = None
    quick: Optional[bool] = None
    label_set: Optional[str] = None

    def __post_init__(self) -> None:
        num_classes = _field("dataset", lambda name, value: dataset_info(value)[0], self.dataset)
        _field("loss", self._check_loss, num_classes)
        if self.dataset.startswith("cifar10n-") and self.noise != "clean":
            raise ConfigError(f"noise must be 'clean' for {self.dataset}: its human labels are the noise")
        pairs = ASYM_PAIRS.get(self.dataset)
        noise = _field("noise", lambda name, spec: parse_noise(spec), self.noise)
        if noise.kind == "asym" and noise.pairs is None and pairs is None:
            raise ConfigError(f"noise {self.noise!r}: dataset {self.dataset!r} defines no class pairs for 'asym' "
                              f"noise (datasets that do: {sorted(ASYM_PAIRS)}); name them in the spec as "
                              "source>destination, e.g. 'asym:0.4:1>7,7>1'")
        _field("noise", lambda name, spec: make_transition(spec, num_classes, pairs=pairs), self.noise)
        if self.label_set is not None:
            _field("label_set", check_text, self.label_set)
            if self.noise != "clean":
                raise ConfigError(f"noise must be 'clean' with label_set={self.label_set!r}: its labels are the noise")
            if self.dataset.startswith("cifar10n-"):
                raise ConfigError(f"label_set cannot replace the human labels of {self.dataset}; use dataset='cifar10'")
        checked = {"epochs": _field("epochs", check_int, self.epochs, 1),
                   "batch_size": _field("batch_size", check_int, self.batch_size, 2),
                   "seed": _field("seed", check_seed, self.seed)}
        if self.train_subset is not None:
            checked["train_subset"] = _field("train_subset", check_int, self.train_subset, 2)
        if self.lr is not None:
            checked["lr"] = _field("lr", lambda name, lr: check_param(name, lr, low=0, low_open=True), self.lr)
        for name, value in checked.items():  # plain Python numbers: a numpy or tensor number has no JSON for the key
            object.__setattr__(self, name, value)
        if self.model is not None:
            _field("model", check_choice, self.model, available_models())
            if self.lr is None and self.model not in DEFAULT_LR:
                raise ConfigError(f"lr: model {self.model!r} has no default learning rate (DEFAULT_LR has "
                                  f"{sorted(DEFAULT_LR)}); give lr (--lr on the command line)")
        if self.augment is not None:
            _field("augment", check_bool, self.augment)
        if self.quick is not None:
            _field("quick", check_bool, self.quick)

    def _check_loss(self, name: str, num_classes: int) -> None:
        """The loss spec names no argument the runner sets, and its loss can be built (for any number
        of training samples: the run builds it for its data)."""
        named = sorted(set(parse_spec(self.loss)[1]) & set(RUNNER_SETS))
        if named:
            raise ValueError(f"{self.loss!r} sets {named[0]}, which the runner sets from the data; leave it "
                             "out of the spec")
        self.make_loss(num_classes, num_examples=1)

    def make_loss(self, num_classes: int, num_examples: int) -> nn.Module:
        """The loss module of this run: ``num_classes`` and ``num_examples`` (training samples) go to a
        loss whose ``__init__`` takes them (online label smoothing: the number of classes).  A loss
        correction whose spec names no ``T`` (``"forward"``, ``"backward"``) gets the run's own noise
        model, the transition matrix its labels are drawn from: the "T known" case of Patrini et al."""
        name, params = parse_spec(self.loss)
        accepted = inspect.signature(LOSSES[name].cls).parameters
        given = {"num_classes": num_classes, "num_examples": num_examples}
        if "T" in accepted and "T" not in params:
            if self.noise == "clean" and (self.label_set is not None or self.dataset.startswith("cifar10n-")):
                raise ValueError(f"{self.loss!r} needs T: the labels of this run come with no noise model; "
                                 "name one in the spec, e.g. 'forward:T=sym:0.2'")
            given["T"] = make_transition(self.noise, num_classes, pairs=ASYM_PAIRS.get(self.dataset))
        return make_loss(self.loss, **{k: v for k, v in given.items() if k in accepted})

    def resolved(self, device: Union[str, torch.device, None] = None) -> "RunConfig":
        """A copy with ``model``, ``lr``, ``augment`` and ``quick`` filled in (what a record stores)."""
        device = default_device() if device is None else torch.device(device)
        image_size = dataset_info(self.dataset)[2]  # 1 for feature vectors
        model = self.model or ("mlp" if image_size <= 8 else "cnn")  # 8x8 images, vectors: MLP
        return dataclasses.replace(
            self,
            model=model,
            lr=float(self.lr if self.lr is not None else DEFAULT_LR[model]),
            augment=image_size > 1 if self.augment is None else self.augment,
            quick=quick_mode(device) if self.quick is None else self.quick,
        )

    def key(self) -> str:
        """Identity of a run in a records file: the config as canonical JSON, with the loss and noise
        specs in their canonical spellings (so ``ce`` and ``ce:label_smoothing=0`` are one run, and
        ``sym:0.40`` and ``sym:0.4``) and ``label_set`` only when set.  Resolve the config first
        (:meth:`resolved`) to key what a record stores."""
        fields = dataclasses.asdict(self)
        fields["loss"] = canonical_spec(self.loss)
        fields["noise"] = parse_noise(self.noise).canonical()
        if fields["label_set"] is None:
            del fields["label_set"]
        return json.dumps(fields, sort_keys=True)


def grid(losses: Sequence[str], noises: Sequence[str], seeds: Sequence[int] = (0,), **common: Any) -> List[RunConfig]:
    """All combinations ``noise × loss × seed`` as configs sharing the ``common`` fields."""
    as_list = lambda v: [v] if isinstance(v, (str, numbers.Integral)) else list(v)  # noqa: E731
    return [RunConfig(loss=loss, noise=noise, seed=seed, **common)
            for noise in as_list(noises) for loss in as_list(losses) for seed in as_list(seeds)]
