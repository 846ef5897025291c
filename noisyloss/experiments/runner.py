"""Running: one configuration (:func:`run`) and many of them into a shared records file
(:func:`sweep`), each record with its provenance (device, versions, git commit, date)."""
from __future__ import annotations

import dataclasses
import datetime as _dt
import functools
import hashlib
import multiprocessing
import os
import platform
import select
import subprocess
import sys
import threading
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Tuple, Type, Union

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from .. import __version__
from .._checks import check_int, check_labels
from ..data import ASYM_PAIRS, ImageData, load_dataset
from ..metrics import ece
from ..models import make_model
from ..noise import corrupt, make_transition
from ..runtime import adapting_threads, configure_threads, default_device, usable_cpus
from ..train import NoisyLabels, fit
from .config import ConfigError, RunConfig
from .store import RecordsStore

__all__ = ["RunResult", "make_labels", "labels_digest", "provenance", "run", "sweep", "prepare_workers"]


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
    threads = "1-2 threads by load" if adapting_threads() else f"{torch.get_num_threads()} threads"
    return f"cpu ({platform.processor() or platform.machine()}, {threads})"


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
    """Where and when: device name, torch and noisyloss versions, git commit, UTC date, and the
    machine and process that trained the run (several may share one records file; for a run trained
    by a worker of :func:`sweep`, the sweeping process)."""
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


def _prepared(cfg: RunConfig, data: ImageData, train_labels: Optional[Tensor]) -> ImageData:
    """``data`` with ``train_labels`` (checked against it) and cut to ``cfg.train_subset``; a
    ``ConfigError`` when they do not fit."""
    if train_labels is not None:
        try:
            labels = check_labels("train_labels", train_labels, data.num_classes)
        except (TypeError, ValueError) as err:
            raise type(err)(f"label set {cfg.label_set!r}: {err}") from None
        n = len(data.y_train_clean)
        if labels.shape != (n,):
            raise ConfigError(f"train_labels for label set {cfg.label_set!r} must have shape ({n},) like "
                              f"{data.name}'s training set, got {tuple(labels.shape)}")
        data = dataclasses.replace(data, y_train=labels.to(data.y_train.device))
    if cfg.train_subset is not None:
        n = len(data.y_train)
        if cfg.train_subset > n:
            raise ConfigError(f"train_subset must be at most the {n} training images of {data.name}"
                              f"{' in quick mode' if cfg.quick else ''}, got {cfg.train_subset}")
        data = data.subset(cfg.train_subset, generator=torch.Generator().manual_seed(0))
    return data


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
    and must be given exactly when it is set.

    A run whose mean training loss (or test output) is not finite stops after that epoch, with a
    warning; its record says ``final["diverged"]`` (the epoch) and its other final metrics are
    ``None``."""
    device = default_device() if device is None else torch.device(device)
    cfg = cfg.resolved(device)
    if (cfg.label_set is None) != (train_labels is None):
        raise ConfigError("train_labels and RunConfig.label_set go together: name the custom labels in "
                          "label_set so that the record says what the run trained on")
    start = time.perf_counter()
    if data is None:
        data = _cached_dataset(cfg.dataset, device, cfg.quick)
    data = _prepared(cfg, data, train_labels)
    torch.manual_seed(cfg.seed)  # model init and the random draws of peer / NL losses
    labels = make_labels(data, cfg.noise, cfg.seed)
    model = make_model(cfg.model, data.num_classes, data.in_channels, data.image_size)
    loss_fn = cfg.make_loss(data.num_classes)
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
    return RunResult(cfg, result.history, result.per_class_acc, probs, test_labels, model, data, labels, record,
                     loss_fn)


def _check_digest(record: Dict[str, Any], labels: Optional[Tensor], cfg: RunConfig, path: Path) -> None:
    if labels is not None and record.get("labels_digest") != labels_digest(labels):
        raise ConfigError(f"{path} has a run of label_set {cfg.label_set!r} trained on other labels "
                          f"(digest {record.get('labels_digest')}, now {labels_digest(labels)}): "
                          "rename the label set or use another records file")


def _train_claimed(path: Path, cfg: RunConfig, device: torch.device, train_labels: Optional[Tensor], *,
                   wait: bool, progress: bool, callback: Optional[Callable[[RunConfig, Dict[str, Any]], None]],
                   pid: int) -> Tuple[bool, Optional[Dict[str, Any]]]:
    """Train ``cfg`` into the records file ``path`` if its claim is obtained and it is not recorded
    yet, what :func:`sweep` does for every run; returns whether the claim was obtained and the record
    if trained here.  ``pid`` is the sweeping process, recorded as the one that trained the run."""
    store = RecordsStore(path)
    with store.claim(cfg.key(), wait=wait) as claimed:
        if not claimed or cfg.key() in store.records():
            return claimed, None
        on_epoch = None if callback is None else functools.partial(callback, cfg)
        record = run(cfg, device=device, progress=progress, callback=on_epoch, train_labels=train_labels).record
        record["pid"] = pid
        store.add(record)
    return True, record


def _sweep_worker(path: Path, cfg: RunConfig, device: torch.device, train_labels: Optional[Tensor], wait: bool,
                  pid: int) -> Tuple[bool, Optional[Dict[str, Any]], List[Tuple[str, Type[Warning]]]]:
    """:func:`_train_claimed` in a worker process, which also returns the warnings of the run (message,
    category) for the sweeping process to raise."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        claimed, record = _train_claimed(path, cfg, device, train_labels, wait=wait, progress=False, callback=None,
                                         pid=pid)
    return claimed, record, [(str(w.message), w.category) for w in caught]


def _exit_with(sweeper: int) -> None:
    """Exit this process as soon as the process ``sweeper`` is gone (Linux: woken by a pidfd at once;
    elsewhere within 0.1 s)."""
    try:
        select.select([os.pidfd_open(sweeper)], [], [])
    except (AttributeError, OSError):  # no pidfd here, or the process is gone already
        while _alive(sweeper):
            time.sleep(0.1)
    os._exit(1)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def _start_worker(threads: Optional[int], sweeper: int) -> None:
    """Set up a sweep worker process: its CPU threads (``None``: following the load, as
    :func:`~noisyloss.runtime.configure_threads` sets them), and death with the sweeping process, so
    that no orphan trains on when it is killed and its claim is released with it."""
    if threads is None:
        configure_threads()
    else:
        torch.set_num_threads(threads)
    threading.Thread(target=_exit_with, args=(sweeper,), daemon=True).start()


def _worker_context() -> multiprocessing.context.BaseContext:
    """How workers start: forked by a fork server that imported torch and what training imports on its
    first step (``torch._dynamo``, through ``torch.optim``) once, so that every sweep after the first
    starts its workers in a fraction of a second, not seconds of imports; where there is no fork
    server (Windows), spawned.  Never forked from this process: torch's thread pools do not survive
    a fork."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["torch", "torch._dynamo", __name__])
    return context


def prepare_workers(device: Union[str, torch.device, None] = None) -> bool:
    """Start, in the background, the fork server that :func:`sweep`'s workers start from, where a sweep
    on ``device`` would use workers (a CPU with CPUs to spare, a fork server on this system).  It
    imports torch for seconds; started early (``book.setup(sweeps=True)``), that overlaps the first
    cells of a page instead of delaying its first sweep.  Returns whether it started (or found) one."""
    device = default_device() if device is None else torch.device(device)
    if _sweep_workers(None, device, 2) < 2 or _worker_context().get_start_method() != "forkserver":
        return False
    from multiprocessing import forkserver

    forkserver.ensure_running()
    return True


def _main_runs_again() -> bool:
    """Whether a spawned process runs ``__main__`` again, as multiprocessing does for a script or a
    module run as the program (``python train.py``, ``python -m train``), not for a package's
    ``__main__`` (``python -m noisyloss``), a notebook or a REPL."""
    main = sys.modules.get("__main__")
    name = getattr(getattr(main, "__spec__", None), "name", None)
    if name is not None:
        return not (name == "__main__" or name.endswith(".__main__"))
    return getattr(main, "__file__", None) is not None


def _worker_threads() -> int:
    """A sweep worker's CPU threads, to count the workers: this process's, or one where they follow
    the load (two workers on two CPUs are each other's busy neighbour; the last one left takes two)."""
    return 1 if adapting_threads() else torch.get_num_threads()


def _sweep_workers(workers: Optional[int], device: torch.device, pending: int) -> int:
    """How many processes train the ``pending`` runs: ``workers``, or (``None``) on a CPU the usable
    CPUs over a worker's threads, on CUDA or where workers would run ``__main__`` again one; never
    more than the runs."""
    if workers is None:
        parallel = device.type == "cpu" and not _main_runs_again()
        workers = max(1, usable_cpus() // _worker_threads()) if parallel else 1
    return min(workers, pending)


def _sweep_parallel(todo: List[RunConfig], path: Path, device: torch.device,
                    labels_of: Callable[[RunConfig], Optional[Tensor]], workers: int, progress: bool,
                    callback: Optional[Callable[[RunConfig, Dict[str, Any]], None]]) -> None:
    """Train ``todo`` as :func:`sweep` does, in ``workers`` processes (:func:`_worker_context`)."""
    threads = None if adapting_threads() else torch.get_num_threads()
    pool = ProcessPoolExecutor(workers, mp_context=_worker_context(), initializer=_start_worker,
                               initargs=(threads, os.getpid()))
    bar = tqdm(total=len(todo), desc=f"runs ({workers} processes)", disable=not progress)
    try:
        for wait in (False, True):  # then wait for the runs claimed elsewhere, or train what they left
            futures = []
            for cfg in todo:
                labels = labels_of(cfg)
                futures.append(pool.submit(_sweep_worker, path, cfg, device, None if labels is None else labels.cpu(),
                                           wait, os.getpid()))
            busy = set()
            for cfg, future in zip(todo, futures):  # in config order, as the runs finish
                try:
                    claimed, record, caught = future.result()
                except Exception as err:
                    raise RuntimeError(f"a sweep worker failed on run {cfg.loss} | {cfg.noise} | seed {cfg.seed}: "
                                       f"{type(err).__name__}: {err}") from err
                for message, category in caught:
                    warnings.warn(message, category, stacklevel=3)
                if not claimed:
                    busy.add(cfg.key())
                    continue
                bar.update()
                if record is not None and callback is not None:
                    for entry in record["history"]:
                        callback(cfg, entry)
            todo = [cfg for cfg in todo if cfg.key() in busy]
    except BaseException as err:  # the runs in progress finish and are recorded; an interrupt does not wait
        pool.shutdown(wait=not isinstance(err, KeyboardInterrupt), cancel_futures=True)
        raise
    finally:
        bar.close()
    pool.shutdown()


def sweep(
    configs: Iterable[RunConfig],
    out_path: Union[str, os.PathLike],
    *,
    device: Union[str, torch.device, None] = None,
    progress: bool = True,
    callback: Optional[Callable[[RunConfig, Dict[str, Any]], None]] = None,
    label_sets: Optional[Mapping[str, Tensor]] = None,
    workers: Optional[int] = None,
) -> List[Dict[str, Any]]:
    """Run every config not yet recorded in the records file ``out_path`` and add its record there.

    Several processes may sweep into one file at once (one per GPU, or per machine on shared
    storage): each run is trained once, by the process that claims it
    (:class:`~noisyloss.experiments.store.RecordsStore`); the others go on with the next run and, at
    the end, wait for the runs still being trained elsewhere (or train them, if their process died).
    A rerun skips the recorded runs, so an interrupted sweep resumes where it stopped.

    ``workers`` processes train the runs at once, each with this process's torch threads (or, where
    they follow the load, threads that follow it too: see :func:`~noisyloss.runtime.configure_threads`)
    and through the same claims (``1``: all in this process).  ``None`` picks, on a CPU, the usable
    CPUs over a worker's threads (two on a 2-CPU machine), on CUDA one; no more than the runs to
    train, and none for a single run.  Workers start from a fork server that imports torch once (the
    first sweep of a process waits seconds for it, later ones do not), or are spawned where there is
    none (Windows); either runs the program's script again (``python train.py``, ``python -m
    train``, not a notebook or ``python -m noisyloss``): there ``None`` means one, and more need the
    script's code behind ``if __name__ == "__main__":``.  A worker's records equal this process's
    (same seed and threads); its warnings are raised here, and its exception as a ``RuntimeError``
    naming the run (its claim released, the runs already trained recorded).

    Before anything is trained, the file is probed for writing (``OSError``), and the data is loaded
    and the configs checked against it (:class:`~noisyloss.experiments.config.ConfigError`, e.g. a
    ``train_subset`` larger than the data).  ``callback(cfg, entry)`` is called after every epoch of
    the runs trained here; with workers, in this process after each run has finished (in config
    order), for each of its epochs in order.  ``progress`` shows each run's epochs, or with workers
    one bar of finished runs.  ``label_sets`` maps each ``cfg.label_set`` to its training labels; a
    recorded run whose labels differ from them (by digest) raises ``ConfigError`` rather than being
    reused.  Returns the records of all ``configs`` in order.
    """
    device = default_device() if device is None else torch.device(device)
    if workers is not None:
        workers = check_int("workers", workers, 1)
    configs = [cfg.resolved(device) for cfg in configs]
    label_sets = dict(label_sets or {})
    missing = sorted({c.label_set for c in configs if c.label_set is not None} - set(label_sets))
    if missing:
        raise ConfigError(f"label_sets lacks the labels of label_set {missing}")
    store = RecordsStore(out_path)
    labels_of = lambda cfg: None if cfg.label_set is None else label_sets[cfg.label_set]  # noqa: E731
    done = store.records()
    todo: Dict[str, RunConfig] = {}  # the first spelling of each run not recorded yet
    for cfg in configs:
        if cfg.key() in done:
            _check_digest(done[cfg.key()], labels_of(cfg), cfg, store.path)
        else:
            todo.setdefault(cfg.key(), cfg)
    for cfg in todo.values():  # everything checked before the first run trains
        _prepared(cfg, _cached_dataset(cfg.dataset, device, cfg.quick), labels_of(cfg))
    workers = _sweep_workers(workers, device, len(todo))
    if workers > 1:
        _sweep_parallel(list(todo.values()), store.path, device, labels_of, workers, progress, callback)
    else:
        train = functools.partial(_train_claimed, store.path, device=device, progress=progress, callback=callback,
                                  pid=os.getpid())
        busy = [cfg for cfg in todo.values() if not train(cfg, train_labels=labels_of(cfg), wait=False)[0]]
        for cfg in busy:  # claimed by other processes: wait for them, or train what they left
            train(cfg, train_labels=labels_of(cfg), wait=True)
    done = store.records()
    for cfg in configs:
        _check_digest(done[cfg.key()], labels_of(cfg), cfg, store.path)
    return [done[cfg.key()] for cfg in configs]
