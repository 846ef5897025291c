"""Experiments: one run = (dataset, label noise, loss, seed, ...) -> history and a JSON record.

``sweep`` appends one JSON line per finished run to a ``records.jsonl`` file, flushed and fsync'ed
record by record, and skips the runs already in it, so a killed sweep resumes where it stopped
(a line cut short by the kill is dropped).  Each record carries its provenance: device, torch and
noisyloss versions, git commit and date.

>>> cfg = RunConfig(dataset="digits", loss="gce:q=0.7", noise="sym:0.4", epochs=5)
>>> cfg.resolved("cpu").model
'mlp'
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import functools
import hashlib
import json
import os
import platform
import subprocess
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn

from . import __version__
from .data import ASYM_PAIRS, ImageData, dataset_info, load_dataset
from .metrics import ece
from .models import MODELS, make_model
from .noise import check_labels, corrupt, make_transition
from .registry import make_loss, parse_spec
from .runtime import default_device, quick_mode
from .train import NoisyLabels, fit

__all__ = [
    "RunConfig",
    "RunResult",
    "DEFAULT_LR",
    "make_labels",
    "labels_digest",
    "run",
    "sweep",
    "grid",
    "load_records",
    "save_record",
    "record_noise",
    "summary_table",
    "seed_stats",
    "seed_table",
    "provenance",
]

#: peak learning rate of the triangular schedule when ``RunConfig.lr`` is None
DEFAULT_LR: Dict[str, float] = {"cnn": 0.2, "mlp": 0.1}


def _loss_overrides(spec: str, num_classes: int) -> Dict[str, Any]:
    """Online label smoothing needs the number of classes; no other loss takes it."""
    return {"num_classes": num_classes} if parse_spec(spec)[0] == "ols" else {}


def _check_int(name: str, value: object, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}")


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines a run; invalid fields raise ``ValueError`` naming the field.

    ``noise``: a :func:`noisyloss.noise.make_transition` spec applied to the clean training labels
    (must be ``"clean"`` for ``cifar10n-*``, whose human labels are the noise).  ``lr``/``model``
    ``None``: defaults for the dataset (``mlp`` on digits, ``cnn`` on CIFAR; ``DEFAULT_LR``).
    ``train_subset``: train on this many images (a fixed random subset, the same for every seed).
    ``quick``: ``None`` follows :func:`noisyloss.runtime.quick_mode`.
    ``label_set``: the name of a custom set of training labels (an annotator's, a simulated noise
    process's) that replaces the dataset's; the labels themselves go to ``run(train_labels=...)`` or
    ``sweep(label_sets={name: labels})``, and the record keeps the name and a digest of them.
    ``noise`` must then be ``"clean"``: the custom labels are the noise.
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
    augment: bool = True
    quick: Optional[bool] = None
    label_set: Optional[str] = None

    def __post_init__(self) -> None:
        try:
            num_classes = dataset_info(self.dataset)[0]
        except ValueError as err:
            raise ValueError(f"dataset: {err}") from None
        try:
            make_loss(self.loss, **_loss_overrides(self.loss, num_classes))
        except (TypeError, ValueError) as err:
            raise ValueError(f"loss: {err}") from None
        if not isinstance(self.noise, str):
            raise ValueError(f"noise must be a spec string like 'sym:0.4', got {self.noise!r}")
        if self.dataset.startswith("cifar10n-") and self.noise != "clean":
            raise ValueError(f"noise must be 'clean' for {self.dataset}: its human labels are the noise")
        try:
            make_transition(self.noise, num_classes, pairs=ASYM_PAIRS.get(self.dataset))
        except (TypeError, ValueError) as err:
            raise ValueError(f"noise: {err} (dataset {self.dataset!r})") from None
        if self.label_set is not None:
            if not isinstance(self.label_set, str) or not self.label_set:
                raise ValueError(f"label_set must be a non-empty name or None, got {self.label_set!r}")
            if self.noise != "clean":
                raise ValueError(f"noise must be 'clean' with label_set={self.label_set!r}: its labels are the noise")
            if self.dataset.startswith("cifar10n-"):
                raise ValueError(f"label_set cannot replace the human labels of {self.dataset}; use dataset='cifar10'")
        _check_int("epochs", self.epochs, 1)
        _check_int("batch_size", self.batch_size, 2)
        _check_int("seed", self.seed, 0)
        if self.train_subset is not None:
            _check_int("train_subset", self.train_subset, 2)
        if self.lr is not None and (isinstance(self.lr, bool) or not isinstance(self.lr, (int, float))
                                    or not 0 < self.lr < float("inf")):
            raise ValueError(f"lr must be a positive number or None, got {self.lr!r}")
        if self.model is not None and self.model not in MODELS:
            raise ValueError(f"model must be one of {sorted(MODELS)} or None, got {self.model!r}")
        for name in ("augment",) + (("quick",) if self.quick is not None else ()):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be a bool, got {getattr(self, name)!r}")

    def resolved(self, device: Union[str, torch.device, None] = None) -> "RunConfig":
        """A copy with ``model``, ``lr`` and ``quick`` filled in (what a record stores)."""
        device = default_device() if device is None else torch.device(device)
        model = self.model or ("mlp" if self.dataset == "digits" else "cnn")
        return dataclasses.replace(
            self,
            model=model,
            lr=float(self.lr if self.lr is not None else DEFAULT_LR[model]),
            quick=quick_mode(device) if self.quick is None else self.quick,
        )

    def key(self) -> str:
        """Identity of a run in a records file: the resolved config as canonical JSON (``label_set``
        only when set, so that records written before it existed keep their keys)."""
        fields = dataclasses.asdict(self)
        if fields["label_set"] is None:
            del fields["label_set"]
        return json.dumps(fields, sort_keys=True)


@dataclass
class RunResult:
    """A finished run: per-epoch ``history``, final ``per_class_acc``, test-set softmax ``test_probs``
    (CPU), ``test_labels`` (CPU), the trained ``model``, the ``data`` and noisy ``labels`` it was
    trained on, the JSON-able ``record`` that :func:`sweep` writes, and the trained ``loss_fn`` (stateful
    losses such as online label smoothing keep what they learned, e.g. ``loss_fn.soft_labels``)."""

    config: RunConfig
    history: List[Dict[str, Any]]
    per_class_acc: List[float]
    test_probs: Tensor
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
    if out.returncode != 0:
        return None
    return out.stdout.strip() or None


def provenance(device: torch.device) -> Dict[str, Any]:
    """Where and when: device name, torch and noisyloss versions, git commit, UTC date."""
    return {
        "device": _device_name(device),
        "torch": torch.__version__,
        "noisyloss": __version__,
        "commit": _git_commit(),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }



def labels_digest(labels: Tensor) -> str:
    """A short fingerprint of a label tensor (SHA-1 of its int64 values), stored in records."""
    return hashlib.sha1(labels.detach().cpu().long().contiguous().numpy().tobytes()).hexdigest()[:16]


def _with_train_labels(data: ImageData, labels: Tensor, name: str) -> ImageData:
    """``data`` training on ``labels`` (checked against it) instead of its own training labels."""
    labels = check_labels("train_labels", labels, data.num_classes)
    n = len(data.y_train_clean)
    if labels.shape != (n,):
        raise ValueError(f"train_labels for label set {name!r} must have shape ({n},) like {data.name}'s "
                         f"training set, got {tuple(labels.shape)}")
    return dataclasses.replace(data, y_train=labels.to(data.y_train.device))


def run(
    cfg: RunConfig,
    *,
    device: Union[str, torch.device, None] = None,
    progress: bool = True,
    callback: Optional[Callable[[Dict[str, Any]], None]] = None,
    data: Optional[ImageData] = None,
    train_labels: Optional[Tensor] = None,
) -> RunResult:
    """Train one configuration.  ``data`` overrides loading ``cfg.dataset`` (e.g. preloaded data);
    ``train_labels`` (one per training image of the full dataset) are the labels of ``cfg.label_set``
    and must be given exactly when it is set."""
    device = default_device() if device is None else torch.device(device)
    cfg = cfg.resolved(device)
    if (cfg.label_set is None) != (train_labels is None):
        raise ValueError("train_labels and RunConfig.label_set go together: name the custom labels in "
                         "label_set so that the record says what the run trained on")
    start = time.perf_counter()
    if data is None:
        data = _cached_dataset(cfg.dataset, device, cfg.quick)
    if train_labels is not None:
        data = _with_train_labels(data, train_labels, cfg.label_set)
    if cfg.train_subset is not None:
        data = data.subset(cfg.train_subset, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(cfg.seed)  # model init and the random draws of peer / NL losses
    labels = make_labels(data, cfg.noise, cfg.seed)
    model = make_model(cfg.model, data.num_classes, data.in_channels, data.image_size)
    loss_fn = make_loss(cfg.loss, **_loss_overrides(cfg.loss, data.num_classes))
    result = fit(model, data, loss_fn, labels, epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr,
                 augmentation=cfg.augment, seed=cfg.seed, progress=progress, callback=callback,
                 desc=f"{cfg.loss} | {cfg.noise}")
    probs = result.test_logits.softmax(dim=1).cpu()
    test_labels = data.y_test.cpu()
    last = result.history[-1]
    final = {k: last[k] for k in ("test_acc", "train_loss", "fit_clean", "memorised", "corrected")}
    final["ece"] = ece(probs, test_labels)
    final["noise_rate"] = float(labels.corrupted.float().mean())
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
    return RunResult(cfg, result.history, result.per_class_acc, probs, test_labels, model, data, labels, record,
                     loss_fn)


# ----------------------------------------------------------------------------------------------
# records files
# ----------------------------------------------------------------------------------------------
def load_records(path: Union[str, os.PathLike]) -> List[Dict[str, Any]]:
    """Records of a JSONL file (``[]`` if it does not exist).  An unparsable *last* line (a write
    cut short by a kill) is ignored with a warning; an unparsable earlier line raises ``ValueError``."""
    path = Path(path)
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as err:
            if number == len(lines):
                warnings.warn(f"{path}: ignoring truncated last line {number}", RuntimeWarning, stacklevel=2)
            else:
                raise ValueError(f"{path}: line {number} is not valid JSON ({err})") from None
    return records


def _repair_tail(path: Path) -> None:
    """Make the file end with a newline: drop a cut-short last line, or end a complete one."""
    if not path.exists():
        return
    data = path.read_bytes()
    if not data or data.endswith(b"\n"):
        return
    cut = data.rfind(b"\n") + 1
    try:
        json.loads(data[cut:])
    except ValueError:
        with open(path, "r+b") as f:
            f.truncate(cut)
        return
    with open(path, "ab") as f:
        f.write(b"\n")


def _append(path: Path, record: Dict[str, Any]) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()
        os.fsync(f.fileno())


def save_record(out_path: Union[str, os.PathLike], record: Dict[str, Any]) -> bool:
    """Append ``record`` (e.g. ``run(cfg).record``) to a records file unless a record with its key is
    already there, so that :func:`sweep` skips that run; returns whether it was appended."""
    path = Path(out_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if any(rec.get("key") == record["key"] for rec in load_records(path)):
        return False
    _repair_tail(path)
    _append(path, record)
    return True


def sweep(
    configs: Iterable[RunConfig],
    out_path: Union[str, os.PathLike],
    *,
    device: Union[str, torch.device, None] = None,
    progress: bool = True,
    callback: Optional[Callable[[RunConfig, Dict[str, Any]], None]] = None,
    label_sets: Optional[Mapping[str, Tensor]] = None,
) -> List[Dict[str, Any]]:
    """Run every config not yet recorded in ``out_path``, appending one JSON line per finished run.

    ``callback(cfg, entry)`` is called after every epoch of the runs trained now (not of those read
    back), e.g. to draw live curves.  ``label_sets`` maps each ``cfg.label_set`` to its training
    labels; a recorded run whose labels differ from them (by digest) raises ``ValueError`` rather
    than being reused.  Returns the records of all ``configs`` in order (read back for those already
    done).
    """
    configs, label_sets = list(configs), dict(label_sets or {})
    missing = sorted({c.label_set for c in configs if c.label_set is not None} - set(label_sets))
    if missing:
        raise ValueError(f"label_sets lacks the labels of label_set {missing}")
    device = default_device() if device is None else torch.device(device)
    path = Path(out_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    done = {rec["key"]: rec for rec in load_records(path)}
    _repair_tail(path)
    out = []
    for cfg in configs:
        cfg = cfg.resolved(device)
        key = cfg.key()
        labels = None if cfg.label_set is None else label_sets[cfg.label_set]
        if key not in done:
            on_epoch = None if callback is None else functools.partial(callback, cfg)
            done[key] = run(cfg, device=device, progress=progress, callback=on_epoch, train_labels=labels).record
            _append(path, done[key])
        elif labels is not None and done[key].get("labels_digest") != labels_digest(labels):
            raise ValueError(f"{path} has a run of label_set {cfg.label_set!r} trained on other labels "
                             f"(digest {done[key].get('labels_digest')}, now {labels_digest(labels)}): "
                             "rename the label set or use another records file")
        out.append(done[key])
    return out


def grid(losses: Sequence[str], noises: Sequence[str], seeds: Sequence[int] = (0,), **common: Any) -> List[RunConfig]:
    """All combinations ``noise × loss × seed`` as configs sharing the ``common`` fields."""
    as_list = lambda v: [v] if isinstance(v, (str, int)) else list(v)  # noqa: E731
    return [RunConfig(loss=loss, noise=noise, seed=seed, **common)
            for noise in as_list(noises) for loss in as_list(losses) for seed in as_list(seeds)]


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


def record_noise(record: Dict[str, Any]) -> str:
    """What a record trained on: its ``label_set`` name when it has one, else its ``noise`` spec (the
    column or group that :func:`summary_table`, :func:`seed_stats` and :func:`seed_table` use)."""
    return record["config"].get("label_set") or record["config"]["noise"]


def summary_table(records: Sequence[Dict[str, Any]]) -> str:
    """Plain-text table: one row per record with the final metrics."""
    head = ("dataset", "noise", "loss", "seed", "epochs", "test_acc", "fit_clean", "memorised", "corrected", "s")
    rows = [head] + [
        (r["config"]["dataset"], record_noise(r), r["config"]["loss"], r["config"]["seed"],
         r["config"]["epochs"], r["final"]["test_acc"], r["final"]["fit_clean"], r["final"]["memorised"],
         r["final"]["corrected"], f"{r['wall_seconds']:.1f}")
        for r in records
    ]
    cells = [[_fmt(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells)


def seed_stats(records: Sequence[Dict[str, Any]], metric: str = "test_acc") -> Dict[Tuple[str, str], Tuple[float, float, int]]:
    """``{(noise, loss): (mean, std, n)}`` of the final ``metric`` over seeds, the numbers behind
    :func:`seed_table` (``std`` is the sample standard deviation, ddof=1, and 0 for a single seed).
    ``noise`` is :func:`record_noise` (a label set's name for runs on one).  Records without the
    metric (``None``, e.g. ``memorised`` without corrupted labels) are skipped."""
    groups: Dict[Tuple[str, str], List[float]] = {}
    for r in records:
        value = r["final"].get(metric)
        if value is not None:
            groups.setdefault((record_noise(r), r["config"]["loss"]), []).append(float(value))
    out = {}
    for key, vals in groups.items():
        t = torch.tensor(vals, dtype=torch.float64)
        out[key] = (float(t.mean()), float(t.std()) if len(vals) > 1 else 0.0, len(vals))
    return out


def seed_table(
    records: Sequence[Dict[str, Any]],
    losses: Sequence[str],
    noises: Sequence[str],
    metrics: Sequence[str] = ("test_acc", "memorised"),
) -> str:
    """Pivot table over seeds: a row per (loss, metric), a column per noise, cells ``mean ± std``
    of the final metric over the records with that loss and noise (``-`` where there are none, or the
    metric is undefined, e.g. ``memorised`` without corrupted labels); see :func:`seed_stats`."""
    head = ["loss", "metric"] + list(noises)
    rows = [head]
    stats = {key: seed_stats(records, key) for key in metrics}
    for loss in losses:
        for key in metrics:
            cells = [stats[key].get((noise, loss)) for noise in noises]
            rows.append([loss, key] + ["-" if c is None else f"{c[0]:.3f} ± {c[1]:.3f}" for c in cells])
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows)
