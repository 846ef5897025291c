"""Running: one configuration (:func:`run`) and many of them into a shared records file
(:func:`sweep`), each record with its provenance (device, versions, git commit, date).

A sweep trains in its own process, one run after another.  Parallel work is several processes
sweeping into one records file (one per GPU, or per group of CPU cores): the file's claims give
each run to one of them.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import functools
import hashlib
import os
import platform
import subprocess
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Tuple, Union

import torch
from torch import Tensor, nn

from .. import __version__
from .._checks import check_device, check_instance, check_labels, check_loss_value, check_model_output
from ..data import ASYM_PAIRS, ImageData, dataset_info, is_registered, load_dataset
from ..metrics import ece
from ..models import make_model
from ..noise import corrupt, make_transition
from ..runtime import default_device
from ..train import NoisyLabels, fit
from .config import ConfigError, RunConfig
from .store import RecordsStore

__all__ = ["RunResult", "make_labels", "labels_digest", "data_digest", "provenance", "run", "sweep"]

#: held by every run and sweep of this process: runs seed torch's global random state, so calls
#: from several threads run one after another
_TRAINING = threading.RLock()


def _one_at_a_time(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` holding :data:`_TRAINING`."""
    @functools.wraps(fn)
    def locked(*args: Any, **kwargs: Any) -> Any:
        with _TRAINING:
            return fn(*args, **kwargs)
    return locked


@dataclass
class RunResult:
    """A finished run: per-epoch ``history``, final ``per_class_acc``, test-set softmax ``test_probs``
    (CPU), ``test_labels`` (CPU), the trained ``model``, the ``data`` and noisy ``labels`` it was
    trained on, the JSON-able ``record`` that :func:`sweep` writes, and the trained ``loss_fn`` (stateful
    losses such as online label smoothing keep what they learned, e.g. ``loss_fn.soft_labels``).
    A run that diverged (``record["final"]["diverged"]``: the epoch) has no ``test_probs`` (``None``)."""

    config: RunConfig
    history: List[Dict[str, Any]]
    per_class_acc: List[float]
    test_probs: Optional[Tensor]
    test_labels: Tensor
    model: nn.Module
    data: ImageData
    labels: NoisyLabels
    record: Dict[str, Any]
    loss_fn: nn.Module


@functools.lru_cache(maxsize=2)
def _cached_dataset(name: str, device: torch.device, quick: bool) -> ImageData:
    return load_dataset(name, device=device, quick=quick)


def make_labels(data: ImageData, noise: str, seed: int = 0) -> NoisyLabels:
    """Training labels under ``noise`` (drawn with a CPU generator seeded by ``seed``) and their
    corrupted mask; for datasets with human label noise, the human labels (``noise`` must be clean)."""
    if data.has_label_noise:
        if noise != "clean":
            raise ValueError(f"noise must be 'clean' for {data.name}: its labels are already noisy")
        return NoisyLabels(data.y_train, data.y_train != data.y_train_clean)
    T = make_transition(noise, data.num_classes, pairs=ASYM_PAIRS.get(data.name))
    out = corrupt(data.y_train_clean.cpu(), T, generator=torch.Generator().manual_seed(seed))
    device = data.y_train.device
    return NoisyLabels(out.labels.to(device), out.corrupted.to(device))


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


@functools.lru_cache(maxsize=1)
def _git_commit() -> Optional[str]:
    """HEAD of the checkout holding this package; ``NOISYLOSS_COMMIT`` wins (a copy without .git)."""
    if os.environ.get("NOISYLOSS_COMMIT"):
        return os.environ["NOISYLOSS_COMMIT"]
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                             text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return (out.stdout.strip() or None) if out.returncode == 0 else None


def provenance(device: torch.device) -> Dict[str, Any]:
    """Where and when: device name, torch and noisyloss versions, git commit, UTC date, and the
    machine and process that trained the run (several may share one records file)."""
    return {
        "device": _device_name(device),
        "host": platform.node(),
        "pid": os.getpid(),
        "torch": torch.__version__,
        "noisyloss": __version__,
        "commit": _git_commit(),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def labels_digest(labels: Tensor) -> str:
    """A short fingerprint of a label tensor (SHA-1 of its int64 values), stored in records."""
    return hashlib.sha1(labels.detach().cpu().long().contiguous().numpy().tobytes()).hexdigest()[:16]


def data_digest(data: ImageData) -> str:
    """A short fingerprint of a dataset (SHA-1 of its tensors' values), stored in the records of a
    registered dataset: its loader is the user's code, which may return other data by the next sweep."""
    sha = hashlib.sha1()
    for tensor in (data.x_train, data.y_train, data.y_train_clean, data.x_test, data.y_test):
        sha.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return sha.hexdigest()[:16]


@functools.lru_cache(maxsize=2)
def _cached_digest(name: str, device: torch.device, quick: bool) -> str:
    return data_digest(_cached_dataset(name, device, quick))


def _warn_changed_data(done: Dict[str, Dict[str, Any]], configs: List[RunConfig], device: torch.device,
                       path: Path) -> None:
    """Warn, once per dataset, when recorded runs of a registered dataset were trained on other data
    than its loader gives now (their records are reused all the same: nothing recorded is discarded)."""
    changed: Dict[str, List[Tuple[str, str]]] = {}  # dataset -> (digest recorded, digest now) per changed run
    for cfg in configs:
        record = done.get(cfg.key())
        if record is not None and is_registered(cfg.dataset) and record.get("data_digest") is not None:
            now = _cached_digest(cfg.dataset, device, cfg.quick)
            if record["data_digest"] != now:
                changed.setdefault(cfg.dataset, []).append((record["data_digest"], now))
    for name, runs in changed.items():
        warnings.warn(f"{len(runs)} recorded run(s) of dataset {name!r} in {path} were trained on other data than "
                      f"its loader gives now (digest {runs[0][0]}, now {runs[0][1]}); they are reused as "
                      "recorded: to train on the new data, use another records file (--out)",
                      RuntimeWarning, stacklevel=3)


def _prepared(cfg: RunConfig, data: ImageData, train_labels: Optional[Tensor]) -> ImageData:
    """``data`` (which must be ``cfg.dataset``'s) with ``train_labels`` (checked against it) and cut
    to ``cfg.train_subset``; a ``ConfigError`` when they do not fit."""
    shape, info = (data.num_classes, data.in_channels, data.image_size), dataset_info(cfg.dataset)
    if data.name != cfg.dataset or shape != info:
        hint = ("register your data (noisyloss.register_dataset) and name it in RunConfig(dataset=...)"
                if data.name != cfg.dataset else "the loader of a registered dataset must return the same classes "
                f"and image size with quick={cfg.quick} as with quick=True (which RunConfig learns them from)")
        raise ConfigError(f"data is {data.name!r} with (num_classes, in_channels, image_size) = {shape}, but the "
                          f"run records dataset {cfg.dataset!r} {info}: {hint}")
    if data.has_label_noise and cfg.noise != "clean":
        raise ConfigError(f"noise must be 'clean' for {data.name}: its labels are already noisy")
    if cfg.augment and data.x_train.dim() != 4:
        raise ConfigError(f"augment: {data.name} holds feature vectors of shape {tuple(data.x_train.shape)}, and "
                          "augmentation (random translations and flips) is for images (N, C, H, W): leave "
                          "augment at None (its default) or set it False")
    if train_labels is not None:
        try:
            labels = check_labels("train_labels", train_labels, data.num_classes)
        except (TypeError, ValueError) as err:
            raise type(err)(f"label set {cfg.label_set!r}: {err}") from None
        n = len(data.y_train_clean)
        if labels.shape != (n,):
            raise ConfigError(f"train_labels for label set {cfg.label_set!r} must have shape ({n},) like "
                              f"{data.name}'s training set, got {tuple(labels.shape)}")
        data = dataclasses.replace(data, y_train=labels.to(data.y_train.device), has_label_noise=True)
    if cfg.train_subset is not None:
        n = len(data.y_train)
        if cfg.train_subset > n:
            raise ConfigError(f"train_subset must be at most the {n} training images of {data.name}"
                              f"{' in quick mode' if cfg.quick else ''}, got {cfg.train_subset}")
        data = data.subset(cfg.train_subset, generator=torch.Generator().manual_seed(0))
    return data


@torch.no_grad()
def _tried_model(cfg: RunConfig, data: ImageData) -> Tensor:
    """The logits a fresh ``cfg.model`` (in eval mode) gives two training samples of ``data``, checked:
    ``(2, num_classes)``; a :class:`ConfigError` naming the model otherwise."""
    model = make_model(cfg.model, data.num_classes, data.in_channels, data.image_size).to(data.x_train.device)
    x = data.x_train[:2]
    try:
        return check_model_output(model.eval()(x), len(x), data.num_classes).float()
    except (TypeError, ValueError) as err:
        raise ConfigError(f"model {cfg.model!r} on {cfg.dataset}: {err}") from None


@torch.no_grad()
def _try_loss(cfg: RunConfig, data: ImageData, logits: Tensor) -> None:
    """Call a fresh loss of ``cfg`` on ``logits`` of the first training samples (with their indices
    when it ``needs_index``); a :class:`ConfigError` naming the loss unless it gives one number."""
    loss_fn = cfg.make_loss(data.num_classes, len(data.y_train)).to(logits.device)
    target, index = data.y_train[: len(logits)], torch.arange(len(logits), device=logits.device)
    try:
        check_loss_value(loss_fn(logits, target, index) if getattr(loss_fn, "needs_index", False)
                         else loss_fn(logits, target))
    except (TypeError, ValueError) as err:
        raise ConfigError(f"loss {cfg.loss!r}: {err}") from None


@_one_at_a_time
def run(
    cfg: RunConfig,
    *,
    device: Union[str, torch.device, None] = None,
    progress: bool = True,
    callback: Optional[Callable[[Dict[str, Any]], None]] = None,
    data: Optional[ImageData] = None,
    train_labels: Optional[Tensor] = None,
) -> RunResult:
    """Train one configuration.  ``data`` is ``cfg.dataset`` preloaded (its name and shape must be
    those of ``cfg.dataset``, which the record names: ``ConfigError`` otherwise; to train on data of
    your own, :func:`noisyloss.register_dataset` it); ``train_labels`` (one per training image of the
    full dataset) are the labels of ``cfg.label_set`` and must be given exactly when it is set; the
    loss is :meth:`RunConfig.make_loss`'s.  Calls from several threads run one after another.

    A run whose mean training loss (or test output) is not finite stops after that epoch, with a
    warning; its record says ``final["diverged"]`` (the epoch) and its other final metrics are
    ``None``."""
    device = default_device() if device is None else check_device("device", device)
    cfg = check_instance("cfg", cfg, RunConfig, "a RunConfig").resolved(device)
    if (cfg.label_set is None) != (train_labels is None):
        raise ConfigError("train_labels and RunConfig.label_set go together: name the custom labels in "
                          "label_set so that the record says what the run trained on")
    start = time.perf_counter()
    digest = None
    if is_registered(cfg.dataset):
        digest = data_digest(data) if data is not None else _cached_digest(cfg.dataset, device, cfg.quick)
    if data is None:
        data = _cached_dataset(cfg.dataset, device, cfg.quick)
    data = _prepared(cfg, data, train_labels)
    torch.manual_seed(cfg.seed)  # model init and the random draws of peer / NL losses
    labels = make_labels(data, cfg.noise, cfg.seed)
    model = make_model(cfg.model, data.num_classes, data.in_channels, data.image_size)
    loss_fn = cfg.make_loss(data.num_classes, len(data.y_train))
    result = fit(model, data, loss_fn, labels, epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr,
                 augmentation=cfg.augment, seed=cfg.seed, progress=progress, callback=callback,
                 desc=f"{cfg.loss} | {cfg.noise}")
    test_labels = data.y_test.cpu()
    keys = ("test_acc", "train_loss", "fit_clean", "memorised", "corrected")
    if result.diverged is None:
        probs = result.test_logits.softmax(dim=1).cpu()
        final = {k: result.history[-1][k] for k in keys}
        final["ece"] = ece(probs, test_labels)
    else:
        warnings.warn(f"run {cfg.loss} | {cfg.noise} | seed {cfg.seed} (lr {cfg.lr:g}) diverged: its loss was not "
                      f"finite in epoch {result.diverged}; stopped there and recorded as diverged", RuntimeWarning,
                      stacklevel=2)
        probs = None
        final = {**{k: None for k in keys}, "ece": None}
    final["noise_rate"] = float(labels.corrupted.float().mean())
    final["diverged"] = result.diverged
    record = {
        "key": cfg.key(),
        "config": dataclasses.asdict(cfg),
        "final": final,
        "history": result.history,
        "per_class_acc": result.per_class_acc,
        "wall_seconds": time.perf_counter() - start,
        **provenance(device),
    }
    if train_labels is not None:
        record["labels_digest"] = labels_digest(train_labels)
    if digest is not None:
        record["data_digest"] = digest
    return RunResult(cfg, result.history, result.per_class_acc, probs, test_labels, model, data, labels, record,
                     loss_fn)


def _check_digest(record: Dict[str, Any], labels: Optional[Tensor], cfg: RunConfig, path: Path) -> None:
    if labels is not None and record.get("labels_digest") != labels_digest(labels):
        raise ConfigError(f"{path} has a run of label_set {cfg.label_set!r} trained on other labels "
                          f"(digest {record.get('labels_digest')}, now {labels_digest(labels)}): "
                          "rename the label set or use another records file")


def _train_claimed(store: RecordsStore, cfg: RunConfig, device: torch.device, train_labels: Optional[Tensor], *,
                   wait: bool, progress: bool,
                   callback: Optional[Callable[[RunConfig, Dict[str, Any]], None]]) -> bool:
    """Train ``cfg`` into ``store`` if its claim is obtained and it is not recorded yet, what
    :func:`sweep` does for every run; returns whether the claim was obtained."""
    with store.claim(cfg.key(), wait=wait) as claimed:
        if claimed and cfg.key() not in store.records():
            on_epoch = None if callback is None else functools.partial(callback, cfg)
            store.add(run(cfg, device=device, progress=progress, callback=on_epoch, train_labels=train_labels).record)
    return claimed


@_one_at_a_time
def sweep(
    configs: Iterable[RunConfig],
    out_path: Union[str, os.PathLike],
    *,
    device: Union[str, torch.device, None] = None,
    progress: bool = True,
    callback: Optional[Callable[[RunConfig, Dict[str, Any]], None]] = None,
    label_sets: Optional[Mapping[str, Tensor]] = None,
) -> List[Dict[str, Any]]:
    """Run every config not yet recorded in the records file ``out_path`` and add its record there.

    Several processes may sweep into one file at once (one per GPU, or per machine on shared
    storage): each run is trained once, by the process that claims it
    (:class:`~noisyloss.experiments.store.RecordsStore`); the others go on with the next run and, at
    the end, wait for the runs still being trained elsewhere (or train them, if their process died).
    A rerun skips the recorded runs, so an interrupted sweep resumes where it stopped.

    ``sweep`` may be called from several threads of one process: the calls (and those of :func:`run`)
    hold one process-wide lock and so run one after another, each giving the records it would give
    alone (training seeds torch's global random state, which threads share).

    Before anything is trained, the file is probed for writing (``OSError``), and the data is loaded
    and the configs checked against it (:class:`~noisyloss.experiments.config.ConfigError`, e.g. a
    ``train_subset`` larger than the data), a fresh model and loss of each tried on two training
    samples (``ConfigError`` when the logits are not ``(N, num_classes)`` or the loss not one number).
    ``callback(cfg, entry)`` is called after every epoch of the runs trained here.  ``progress`` shows
    each run's epochs.  ``label_sets`` maps each ``cfg.label_set`` to its training labels; a recorded
    run whose labels differ from them (by digest) raises ``ConfigError`` rather than being reused.  A
    recorded run of a registered dataset whose data has changed since (by :func:`data_digest`) is
    reused with a warning.  Returns the records of all ``configs`` in order."""
    device = default_device() if device is None else check_device("device", device)
    if isinstance(configs, RunConfig):
        raise TypeError("configs must be an iterable of RunConfig (e.g. experiments.grid(...) or [cfg]), got a "
                        "RunConfig")
    configs = [check_instance(f"configs[{i}]", cfg, RunConfig, "a RunConfig").resolved(device)
               for i, cfg in enumerate(configs)]
    label_sets = dict(label_sets or {})
    missing = sorted({c.label_set for c in configs if c.label_set is not None} - set(label_sets))
    if missing:
        raise ConfigError(f"label_sets lacks the labels of label_set {missing}")
    store = RecordsStore(out_path)
    labels_of = lambda cfg: None if cfg.label_set is None else label_sets[cfg.label_set]  # noqa: E731
    done = store.records()
    _warn_changed_data(done, configs, device, store.path)
    todo: Dict[str, RunConfig] = {}  # the first spelling of each run not recorded yet
    for cfg in configs:
        if cfg.key() in done:
            _check_digest(done[cfg.key()], labels_of(cfg), cfg, store.path)
        else:
            todo.setdefault(cfg.key(), cfg)
    logits: Dict[tuple, Tensor] = {}  # a fresh model's logits of two training samples, per (data, model)
    for cfg in todo.values():  # everything checked before the first run trains
        data = _prepared(cfg, _cached_dataset(cfg.dataset, device, cfg.quick), labels_of(cfg))
        key = (cfg.dataset, cfg.quick, cfg.model)
        if key not in logits:
            logits[key] = _tried_model(cfg, data)
        _try_loss(cfg, data, logits[key])
    train = functools.partial(_train_claimed, store, device=device, progress=progress, callback=callback)
    busy = [cfg for cfg in todo.values() if not train(cfg, train_labels=labels_of(cfg), wait=False)]
    for cfg in busy:  # claimed by other processes: wait for them, or train what they left
        train(cfg, train_labels=labels_of(cfg), wait=True)
    done = store.records()
    for cfg in configs:
        _check_digest(done[cfg.key()], labels_of(cfg), cfg, store.path)
    return [done[cfg.key()] for cfg in configs]
