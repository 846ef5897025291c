"""Datasets held as tensors on the training device: CIFAR-10, its CIFAR-10N human labels, and
scikit-learn's 8×8 digits (offline, for CPU and CI).

* CIFAR-10 (Krizhevsky, 2009) is read from the standard ``cifar-10-batches-py`` pickles
  (``data_batch_1..5``, ``test_batch``; each a dict with ``b"data"``: ``uint8 (N, 3072)`` rows laid
  out as 1024 red, 1024 green, 1024 blue values of a 32×32 image, and ``b"labels"``).
* CIFAR-10N (Wei et al., 2022, "Learning with noisy labels revisited") gives every CIFAR-10 training
  image labels from human annotators: ``CIFAR-10_human.pt`` is a ``torch.save``'d dict of numpy arrays
  ``aggre_label`` (majority vote, ≈9 % wrong), ``random_label1..3`` (one annotator each, ≈17 %),
  ``worse_label`` (a wrong one when any annotator was wrong, ≈40 %) and ``clean_label``.
  The dataset ``"cifar10n-worse"`` trains on those labels and keeps the true ones in ``y_train_clean``.

Images are normalised per channel with the training-set mean and standard deviation; on CUDA they are
stored in ``channels_last`` memory format.  Files live under :func:`data_root` and are downloaded when
missing.  Your own data: :func:`register_dataset`.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import pickle
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import Tensor

from ._checks import (check_bool, check_choice, check_int, check_labels, check_name, check_param, check_takes,
                      check_text)
from .noise import CIFAR10_CLASSES

__all__ = [
    "ImageData", "DownloadError", "DataError", "LoaderError", "register_dataset", "available_datasets",
    "is_registered", "ASYM_PAIRS",
    "CIFAR10N_LABELS", "load_human_file", "dataset_info", "data_root", "load_dataset", "load_cifar10_arrays",
    "load_cifar10n_labels", "download_file", "make_synthetic", "SYNTH_SIZES", "SYNTH_QUICK_SIZES", "toy_blobs",
]

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR10_DIR = "cifar-10-batches-py"
#: MD5 of each file of the official ``cifar-10-python`` archive (as listed by torchvision's CIFAR10)
CIFAR10_BATCH_MD5: Dict[str, str] = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
}
CIFAR10N_URL = "https://github.com/UCSC-REAL/cifar-10-100n/raw/main/data/CIFAR-10_human.pt"
CIFAR10N_FILE = "CIFAR-10_human.pt"
#: dataset suffix -> key in ``CIFAR-10_human.pt``
CIFAR10N_LABELS: Dict[str, str] = {"aggre": "aggre_label", "random1": "random_label1", "random2": "random_label2",
                                   "random3": "random_label3", "worse": "worse_label"}
#: built-in dataset name -> (num_classes, in_channels, image_size), known without loading
_BUILTIN: Dict[str, Tuple[int, int, int]] = {
    "digits": (10, 1, 8),
    "synth10": (10, 1, 8),
    "synth100": (100, 1, 8),
    "cifar10": (10, 3, 32),
    **{f"cifar10n-{k}": (10, 3, 32) for k in CIFAR10N_LABELS},
}
#: dataset -> the class pairs of its asymmetric noise (a name in :data:`noisyloss.noise.CLASS_PAIRS`);
#: "asym" noise on a dataset not listed here needs its pairs in the spec
ASYM_PAIRS: Dict[str, str] = {"cifar10": "cifar10"}
#: (train, test) sizes used for CIFAR in quick mode
QUICK_SIZES = (5000, 1000)
_DIGITS_SPLIT_SEED = 0


class DownloadError(RuntimeError):
    """A data file could not be downloaded (offline) or failed its checksum."""


class DataError(ValueError):
    """A data file is not what it must be (checksum, format, labels); the message names the file."""


class LoaderError(RuntimeError):
    """The loader of a registered dataset (:func:`register_dataset`) raised: the message names the
    dataset and the loader's error, which is chained (``__cause__``)."""


@dataclass
class ImageData:
    """A classification dataset on one device.

    ``x_*``: ``(N, C, H, W)`` float32 images, normalised per channel, or ``(N, D)`` feature vectors,
    which models see as ``D`` channels of one pixel (``in_channels`` D, ``image_size`` 1);
    ``y_*``: ``(N,)`` int64.
    ``y_train`` are the labels to train on (human labels for CIFAR-10N); ``y_train_clean`` the true
    ones.  ``hflip``: whether a horizontal flip keeps the class (True for photos, False for digits).
    ``has_label_noise``: whether ``y_train`` are noisy labels of their own (CIFAR-10N's human labels,
    a custom label set), which a run trains on as they are; without it, ``y_train`` must equal
    ``y_train_clean`` (``ValueError`` otherwise) and a run draws its noise from the clean labels.
    """

    name: str
    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor
    num_classes: int
    classes: Tuple[str, ...]
    y_train_clean: Tensor
    hflip: bool = True
    has_label_noise: bool = False

    def __post_init__(self) -> None:
        check_text("name", self.name)
        check_int("num_classes", self.num_classes, 2)
        check_bool("hflip", self.hflip)
        check_bool("has_label_noise", self.has_label_noise)
        for field in ("y_train", "y_test", "y_train_clean"):
            check_labels(field, getattr(self, field), self.num_classes)
        self._check_inputs()
        n_train, n_test = len(self.y_train), len(self.y_test)
        if (len(self.x_train), len(self.y_train_clean), len(self.x_test)) != (n_train, n_train, n_test):
            raise ValueError(f"ImageData {self.name!r}: x_train and y_train_clean must have the {n_train} samples of "
                             f"y_train and x_test the {n_test} of y_test, got {len(self.x_train)}, "
                             f"{len(self.y_train_clean)} and {len(self.x_test)}")
        if not self.has_label_noise and not torch.equal(self.y_train, self.y_train_clean):
            raise ValueError(f"ImageData {self.name!r}: y_train differs from y_train_clean; set has_label_noise=True "
                             "if the training labels are noisy labels of their own")
        if len(self.classes) != self.num_classes:
            raise ValueError(f"ImageData {self.name!r}: classes must name the {self.num_classes} classes "
                             f"(num_classes), got {len(self.classes)} names")

    def _check_inputs(self) -> None:
        """``x_train`` and ``x_test``: float32 tensors of square images ``(N, C, S, S)`` or feature
        vectors ``(N, D)``, one shape per sample, at least one sample each; every tensor on one device."""
        for field in ("x_train", "x_test"):
            x = getattr(self, field)
            if not isinstance(x, Tensor) or x.dtype != torch.float32:
                got = f"dtype {x.dtype}" if isinstance(x, Tensor) else type(x).__name__
                raise TypeError(f"ImageData {self.name!r}: {field} must be a float32 tensor (normalised inputs), "
                                f"got {got}")
            if x.dim() not in (2, 4) or (x.dim() == 4 and x.shape[2] != x.shape[3]) or len(x) == 0:
                raise ValueError(f"ImageData {self.name!r}: {field} must have shape (N, C, S, S) (square images) or "
                                 f"(N, D) (feature vectors) with N >= 1, got {tuple(x.shape)}")
        if self.x_test.shape[1:] != self.x_train.shape[1:]:
            raise ValueError(f"ImageData {self.name!r}: x_test must have the sample shape of x_train, "
                             f"{tuple(self.x_train.shape[1:])}, got {tuple(self.x_test.shape[1:])}")
        devices = {f: getattr(self, f).device for f in ("x_train", "y_train", "x_test", "y_test", "y_train_clean")}
        if len(set(devices.values())) > 1:
            raise ValueError(f"ImageData {self.name!r}: every tensor must be on one device, got "
                             + ", ".join(f"{f} on {d}" for f, d in devices.items()))

    @property
    def in_channels(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def image_size(self) -> int:
        return 1 if self.x_train.dim() == 2 else int(self.x_train.shape[-1])

    def subset(self, n: int, generator: Optional[torch.Generator] = None) -> "ImageData":
        """The same dataset with ``n`` training samples drawn without replacement (test set kept)."""
        total = len(self.y_train)
        if check_int("n", n, 1) > total:
            raise ValueError(f"n must be at most the {total} training samples, got {n}")
        idx = torch.randperm(total, generator=generator)[:n].sort().values.to(self.y_train.device)
        return dataclasses.replace(self, x_train=self.x_train[idx], y_train=self.y_train[idx],
                                   y_train_clean=self.y_train_clean[idx])


Loader = Callable[[torch.device, bool], ImageData]
_REGISTERED: Dict[str, Loader] = {}
_REGISTERED_INFO: Dict[str, Tuple[int, int, int]] = {}


def register_dataset(name: str, loader: Loader) -> None:
    """Make ``name`` a dataset: ``loader(device, quick)`` returns its :class:`ImageData` (named
    ``name``) on ``device``, smaller when ``quick`` if it likes, with the same classes and image size
    either way: the first ``RunConfig(dataset=name)`` of a process loads it once on the CPU
    (``quick``) to learn them (:func:`dataset_info`).  A name already taken, or starting with
    ``cifar10n-`` (CIFAR-10N's label sets), raises ``ValueError``, unless it is registered again
    with the same loader.

    >>> import torch
    >>> def two_points(device, quick):
    ...     x, y = torch.zeros(2, 1, 1, 1, device=device), torch.tensor([0, 1], device=device)
    ...     return ImageData("two_points", x, y, x, y, 2, ("a", "b"), y, hflip=False)
    >>> register_dataset("two_points", two_points)
    >>> load_dataset("two_points").num_classes
    2
    """
    check_name("name", name)
    check_takes("loader", loader, ("device", "quick"))
    if name in _BUILTIN or _REGISTERED.get(name, loader) is not loader:
        raise ValueError(f"dataset name {name!r} is taken; choose another name")
    if name.startswith("cifar10n-"):  # the runner treats these as CIFAR-10N's human label sets
        raise ValueError(f"dataset name {name!r}: names starting with 'cifar10n-' are CIFAR-10N's label sets "
                         f"({', '.join(f'cifar10n-{k}' for k in CIFAR10N_LABELS)}); choose another name")
    _REGISTERED[name] = loader


def available_datasets() -> List[str]:
    """The names of every dataset, built-in and registered."""
    return sorted([*_BUILTIN, *_REGISTERED])


def is_registered(name: str) -> bool:
    """Whether ``name`` is a dataset of :func:`register_dataset` (its data comes from the user's code)."""
    return name in _REGISTERED


def dataset_info(name: str) -> Tuple[int, int, int]:
    """``(num_classes, in_channels, image_size)`` of a dataset: a built-in one's without loading it, a
    registered one's by loading it once (on the CPU, ``quick``)."""
    check_choice("dataset", name, available_datasets())
    if name in _BUILTIN:
        return _BUILTIN[name]
    if name not in _REGISTERED_INFO:
        data = load_dataset(name, quick=True)
        _REGISTERED_INFO[name] = (data.num_classes, data.in_channels, data.image_size)
    return _REGISTERED_INFO[name]


def data_root(root: Union[str, os.PathLike, None] = None) -> Path:
    """``root``, else ``$NOISYLOSS_DATA``, else ``~/.cache/noisyloss``."""
    if root is None:
        root = os.environ.get("NOISYLOSS_DATA") or Path.home() / ".cache" / "noisyloss"
    return Path(root).expanduser()


# ---- downloading ----
def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _fetch(url: str, dest: Path) -> None:
    """Stream ``url`` into ``dest`` (the single place that touches the network)."""
    with urllib.request.urlopen(url, timeout=60) as response, open(dest, "wb") as out:
        shutil.copyfileobj(response, out)


def download_file(url: str, dest: Path, md5: Optional[str] = None) -> Path:
    """Download ``url`` to ``dest`` (via a temporary file, so no partial file is left behind).

    Raises :class:`DownloadError` when offline or when the MD5 checksum differs from ``md5``.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=dest.name, suffix=".part")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        try:
            _fetch(url, tmp)
        except (urllib.error.URLError, OSError, TimeoutError) as err:
            raise DownloadError(
                f"could not download {url} ({err}). Without network access, place the file at {dest} "
                f"yourself (or point $NOISYLOSS_DATA / root= at a folder that has it)."
            ) from err
        if md5 is not None and (got := _md5(tmp)) != md5:
            raise DownloadError(f"MD5 checksum mismatch for {url}: expected {md5}, got {got}; file discarded")
        tmp.replace(dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def _ensure_cifar10(root: Path, download_ok: bool) -> Path:
    """The extracted batches folder; extracts a present archive (MD5-checked) or downloads one."""
    folder = root / CIFAR10_DIR
    if (folder / "test_batch").exists():
        return folder
    archive = root / "cifar-10-python.tar.gz"
    fetched = not archive.exists()
    if fetched:
        if not download_ok:
            raise FileNotFoundError(f"CIFAR-10 not found at {folder} (nor {archive}) and download=False")
        download_file(CIFAR10_URL, archive, md5=CIFAR10_MD5)
    elif (got := _md5(archive)) != CIFAR10_MD5:
        raise DownloadError(f"MD5 checksum mismatch for {archive}: expected {CIFAR10_MD5}, got {got}")
    with tarfile.open(archive, "r:gz") as tar:
        safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        tar.extractall(root, **safe)
    if fetched:
        archive.unlink()
    if not (folder / "test_batch").exists():
        raise DataError(f"{archive} did not contain {CIFAR10_DIR}/test_batch")
    return folder


# ---- readers of the real file formats ----
class _BatchUnpickler(pickle.Unpickler):
    """Unpickles what a CIFAR-10 batch contains and nothing else: dicts, lists, bytes, str, ints and
    numpy arrays.  Any other global a pickle names (``os.system``, ``builtins.eval``, ...) is refused
    before it is looked up, so a crafted file cannot run code."""

    def find_class(self, module: str, name: str):
        allowed = _numpy_array_globals()
        if (module, name) not in allowed:
            raise pickle.UnpicklingError(f"refused global {module}.{name} (a CIFAR-10 batch holds only "
                                         "dicts, lists, bytes, ints and numpy uint8 arrays)")
        return allowed[module, name]


def _numpy_array_globals() -> Dict[Tuple[str, str], object]:
    """What pickles of plain numpy arrays name: the array type, dtype and the reconstruct function
    (``numpy.core`` in files written by numpy 1.x, ``numpy._core`` by numpy 2)."""
    core = getattr(np, "_core", None) or np.core
    rebuild = core.multiarray._reconstruct
    return {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype,
            ("numpy.core.multiarray", "_reconstruct"): rebuild, ("numpy._core.multiarray", "_reconstruct"): rebuild}


def _read_batch(path: Path, num_classes: int = 10) -> Tuple[np.ndarray, np.ndarray]:
    """Images ``uint8 (N, 3, 32, 32)`` and labels ``int64 (N,)`` of one batch file, checked: its MD5
    against the official file's, the pickle restricted to plain data, the labels integers in range.
    Every problem raises :class:`DataError` naming the file."""
    want = CIFAR10_BATCH_MD5.get(path.name)
    if want is not None and (got := _md5(path)) != want:
        raise DataError(f"{path}: MD5 {got} is not that of the official CIFAR-10 file ({want}); delete "
                        f"{path.parent} to extract the archive again")
    try:
        with open(path, "rb") as f:
            batch = _BatchUnpickler(f, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError,
            KeyError, MemoryError) as err:
        raise DataError(f"{path}: not a CIFAR-10 batch ({type(err).__name__}: {err})") from None
    if not isinstance(batch, dict):
        raise DataError(f"{path}: a CIFAR-10 batch is a dict, got {type(batch).__name__}")
    fields = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in batch.items()}
    missing = {"data", "labels"} - set(fields)
    if missing:
        raise DataError(f"{path}: lacks {sorted(missing)}")
    data, labels = fields["data"], fields["labels"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise DataError(f"{path}: data must be a uint8 array of shape (N, 3072), got "
                        f"{getattr(data, 'dtype', type(data).__name__)} {getattr(data, 'shape', '')}")
    integral = (isinstance(labels, list) and all(type(v) is int for v in labels)) or (
        isinstance(labels, np.ndarray) and labels.dtype.kind in "iu")
    if not integral:
        raise DataError(f"{path}: labels must be integers (a list of ints), got "
                        f"{type(labels).__name__} {getattr(labels, 'dtype', '')}".rstrip())
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    if len(labels) != len(data):
        raise DataError(f"{path}: {len(data)} images but {len(labels)} labels")
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise DataError(f"{path}: labels must be in [0, {num_classes - 1}], found "
                        f"{labels[(labels < 0) | (labels >= num_classes)][0]}")
    return data.reshape(-1, 3, 32, 32), labels


def load_cifar10_arrays(
    root: Union[str, os.PathLike, None] = None, download: bool = True
) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(x_train, y_train, x_test, y_test)`` as numpy: uint8 ``(N, 3, 32, 32)`` images, int64 labels."""
    folder = _ensure_cifar10(data_root(root), download)
    parts = [_read_batch(folder / f"data_batch_{i}") for i in range(1, 6)]
    x_test, y_test = _read_batch(folder / "test_batch")
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]), x_test, y_test


def _numpy_safe_globals() -> list:
    """What ``torch.load(weights_only=True)`` needs to rebuild plain numpy arrays (integer and float:
    a float label array is then refused with a clear message, not an unpickling error)."""
    rebuild = _numpy_array_globals()["numpy._core.multiarray", "_reconstruct"]
    dtypes = [type(np.dtype(t)) for t in (np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16,
                                           np.uint32, np.uint64, np.float16, np.float32, np.float64)]
    # files written with numpy 1.x name the function numpy.core.multiarray._reconstruct
    return [np.ndarray, np.dtype, rebuild, (rebuild, "numpy.core.multiarray._reconstruct"), *dtypes]


def load_human_file(path: Union[str, os.PathLike]) -> dict:
    """The dict a released CIFAR-N label file holds (``torch.save``'d numpy arrays), loaded with
    ``weights_only=True`` and only numpy's array reconstruction allowed, so that a file cannot run
    pickled code (torch >= 2.5; older torch cannot allowlist numpy types and loads it plainly)."""
    serialization = torch.serialization
    if not hasattr(serialization, "safe_globals"):  # torch < 2.5 cannot allowlist numpy types
        return torch.load(path, weights_only=False)
    with serialization.safe_globals(_numpy_safe_globals()):
        return torch.load(path, weights_only=True)


def load_cifar10n_labels(
    key: str, train_labels: np.ndarray, root: Union[str, os.PathLike, None] = None, download: bool = True
) -> np.ndarray:
    """CIFAR-10N label set ``key`` (one of the values of ``CIFAR10N_LABELS``) as int64 numpy.

    Checks that the file's ``clean_label`` equals the CIFAR-10 training labels ``train_labels``, so
    that the human labels are aligned with the images.
    """
    check_choice("key", key, sorted(CIFAR10N_LABELS.values()))
    path = data_root(root) / CIFAR10N_FILE
    if not path.exists():
        if not download:
            raise FileNotFoundError(f"CIFAR-10N labels not found at {path} and download=False")
        download_file(CIFAR10N_URL, path)
    try:
        table = load_human_file(path)
    except Exception as err:  # torch.load raises many kinds (UnpicklingError, RuntimeError, ...)
        reason = " ".join(str(err).split())[:300]
        raise DataError(f"{path}: not a CIFAR-10N label file ({type(err).__name__}: {reason})") from None
    if not isinstance(table, dict):
        raise DataError(f"{path}: a CIFAR-10N label file holds a dict, got {type(table).__name__}")
    missing = {key, "clean_label"} - set(table)
    if missing:
        raise DataError(f"{path} lacks {sorted(missing)}; it has {sorted(map(str, table))}")
    for name in ("clean_label", key):
        if np.asarray(table[name]).dtype.kind not in "iu":
            raise DataError(f"{path}: {name} must hold integer labels, got dtype {np.asarray(table[name]).dtype}")
    clean = np.asarray(table["clean_label"], dtype=np.int64)
    labels = np.asarray(table[key], dtype=np.int64)
    if clean.shape != train_labels.shape or labels.shape != train_labels.shape:
        raise DataError(f"{path}: label arrays must have shape {train_labels.shape}, got {labels.shape}")
    if not np.array_equal(clean, train_labels):
        raise DataError(f"{path}: clean_label does not match the CIFAR-10 training labels (misaligned file)")
    if labels.min() < 0 or labels.max() > 9:
        raise DataError(f"{path}: {key} has labels outside [0, 9]")
    return labels


# ---- to tensors ----
def _image_data(name: str, arrays: Tuple[np.ndarray, ...], scale: float, device: torch.device, classes: Sequence[str],
                hflip: bool = False, given: Optional[np.ndarray] = None) -> ImageData:
    """The :class:`ImageData` of numpy ``(x_train, y_train, x_test, y_test)`` on ``device``: the images
    divided by ``scale`` and normalised per channel with the training mean and std.  ``given``: noisy
    labels of their own to train on (human labels), the arrays' ``y_train`` then being the true ones."""
    x_tr, y_tr, x_te, y_te = arrays
    train = torch.from_numpy(x_tr).to(device).float().div_(scale)
    test = torch.from_numpy(x_te).to(device).float().div_(scale)
    mean = train.mean(dim=(0, 2, 3), keepdim=True)
    std = train.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-6)
    train, test = (train - mean) / std, (test - mean) / std
    if device.type == "cuda":
        train = train.contiguous(memory_format=torch.channels_last)
        test = test.contiguous(memory_format=torch.channels_last)
    y_clean = torch.from_numpy(y_tr).to(device)
    y_train = y_clean if given is None else torch.from_numpy(given).to(device)
    return ImageData(name, train, y_train, test, torch.from_numpy(y_te).to(device), len(classes), tuple(classes),
                     y_clean, hflip=hflip, has_label_noise=given is not None)


def _quick_indices(n: int, k: int, generator: torch.Generator) -> np.ndarray:
    return torch.randperm(n, generator=generator)[:k].sort().values.numpy()


def _load_digits(device: torch.device) -> ImageData:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = digits.images.astype(np.float32)[:, None]  # (1797, 1, 8, 8), values 0..16
    y = digits.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.25, stratify=y, random_state=_DIGITS_SPLIT_SEED)
    return _image_data("digits", (x_tr, y_tr, x_te, y_te), 16.0, device, [str(d) for d in range(10)])


# ---- synthetic data with many classes, generated offline in milliseconds: "synth10", "synth100" ----
#: (train, test) images of "synth10" / "synth100"; quick mode takes the first SYNTH_QUICK_SIZES of them
SYNTH_SIZES = (5000, 2000)
SYNTH_QUICK_SIZES = (2000, 1000)


def make_synthetic(
    num_classes: int, n_train: int, n_test: int, *, seed: int = 0, latent_dim: int = 16, spread: float = 1.0,
    width: int = 128, gain: float = 1.5,
) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    r"""A seeded synthetic classification task with ``num_classes`` classes: ``(x_train, y_train,
    x_test, y_test)`` as numpy, float32 "images" ``(N, 1, 8, 8)`` and int64 labels.

    Class :math:`c` has a prototype :math:`\mu_c \sim \mathcal N(0, I_d)` in a latent space of
    :math:`d` = ``latent_dim`` dimensions.  A sample of class :math:`y` is :math:`z = \mu_y + \sigma
    \varepsilon` with :math:`\varepsilon \sim \mathcal N(0, I_d)` and :math:`\sigma` = ``spread`` (so
    neighbouring classes overlap and no classifier is perfect), mapped to 64 features by one fixed
    random network :math:`x = W_2 \tanh(W_1 z)` (:math:`W_1` is ``d × width`` with entries
    :math:`\mathcal N(0, \text{gain}^2/d)`, :math:`W_2` is ``width × 64`` with entries
    :math:`\mathcal N(0, 1/\text{width})`) and laid out as an 8×8 image.  Sample :math:`n` has label
    :math:`n \bmod C`, so every class is equally frequent in any prefix of ``C·k`` samples.

    The map, the prototypes, the training and the test samples come from four independent streams of
    ``seed``: a larger ``n_train`` or ``n_test`` extends the same sets (their first samples are
    equal), and ``num_classes`` changes only the prototypes.
    """
    for name, value, low in (("num_classes", num_classes, 2), ("n_test", n_test, 1), ("latent_dim", latent_dim, 1),
                             ("width", width, 1), ("seed", seed, 0)):
        check_int(name, value, low)
    check_int("n_train", n_train, num_classes)
    check_param("spread", spread, low=0, low_open=True)
    check_param("gain", gain, low=0, low_open=True)
    map_rng, proto_rng, train_rng, test_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(4))
    w1 = map_rng.standard_normal((latent_dim, width)) * (gain / np.sqrt(latent_dim))
    w2 = map_rng.standard_normal((width, 64)) / np.sqrt(width)
    prototypes = proto_rng.standard_normal((num_classes, latent_dim))

    def draw(n: int, rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
        y = np.arange(n, dtype=np.int64) % num_classes
        z = prototypes[y] + spread * rng.standard_normal((n, latent_dim))
        return (np.tanh(z @ w1) @ w2).astype(np.float32).reshape(n, 1, 8, 8), y

    return (*draw(n_train, train_rng), *draw(n_test, test_rng))


def toy_blobs(n_per_class: int = 50, *, spread: float = 0.45, seed: int = 0) -> ImageData:
    r"""Three Gaussian blobs in the plane for pictures of decision boundaries: class :math:`c` is centred
    at :math:`(\cos\theta_c, \sin\theta_c)`, :math:`\theta_c = 90° + 120°c`, with standard deviation
    ``spread`` per coordinate; ``n_per_class`` training and as many test points per class.  The points
    are held as ``(N, 2, 1, 1)`` "images" (2 channels of one pixel), so that :func:`noisyloss.train.fit`
    trains the MLP on them like on any other dataset."""
    check_int("n_per_class", n_per_class, 1)
    check_param("spread", spread, low=0, low_open=True)
    rng = np.random.default_rng(seed)
    angles = np.deg2rad(90.0 + 120.0 * np.arange(3))
    centres = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    y = np.arange(6 * n_per_class, dtype=np.int64) % 3
    x = (centres[y] + spread * rng.standard_normal((len(y), 2))).astype(np.float32)
    x_t, y_t = torch.from_numpy(x).view(-1, 2, 1, 1), torch.from_numpy(y)
    n = 3 * n_per_class
    y_train = y_t[:n]
    return ImageData("toy_blobs", x_t[:n], y_train, x_t[n:], y_t[n:], 3, ("0", "1", "2"), y_train, hflip=False)


def load_dataset(
    name: str,
    *,
    device: Union[str, torch.device, None] = None,
    quick: bool = False,
    root: Union[str, os.PathLike, None] = None,
    generator: Optional[torch.Generator] = None,
    download: bool = True,
) -> ImageData:
    """Load ``name`` (``"digits"``, ``"synth10"``, ``"synth100"``, ``"cifar10"``,
    ``"cifar10n-<aggre|random1|random2|random3|worse>"``, or a name of :func:`register_dataset`,
    whose loader is called with ``device`` and ``quick`` alone; what it raises comes as a
    :class:`LoaderError` naming the dataset).

    In ``quick`` mode CIFAR is subsampled to ``QUICK_SIZES`` (5k train / 1k test) with ``generator``
    (default: seed 0, so every quick run sees the same images); digits is small and always whole;
    the synthetic sets (:func:`make_synthetic`) take their first ``SYNTH_QUICK_SIZES`` images.
    """
    check_choice("dataset", name, available_datasets())
    check_bool("quick", quick)
    device = torch.device("cpu" if device is None else device)
    if name in _REGISTERED:
        try:
            data = _REGISTERED[name](device, quick)
        except Exception as err:  # the user's code: whatever it raises, named once, its traceback chained
            raise LoaderError(f"the loader of dataset {name!r} raised {type(err).__name__}: {err}") from err
        if not isinstance(data, ImageData):
            raise TypeError(f"the loader of dataset {name!r} must return an ImageData, got {type(data).__name__}")
        if data.name != name:
            raise ValueError(f"the loader of dataset {name!r} must return an ImageData named {name!r}, got "
                             f"{data.name!r}")
        held = data.x_train.device
        if held.type != device.type or device.index not in (None, held.index):
            raise ValueError(f"the loader of dataset {name!r} must return its ImageData on the device it is given, "
                             f"{device}, got one on {held}")
        return data
    if name == "digits":
        return _load_digits(device)
    if name.startswith("synth"):
        num_classes = _BUILTIN[name][0]
        arrays = make_synthetic(num_classes, *(SYNTH_QUICK_SIZES if quick else SYNTH_SIZES))
        return _image_data(name, arrays, 1.0, device, [str(c) for c in range(num_classes)])
    x_tr, y_tr, x_te, y_te = load_cifar10_arrays(root, download)
    human = name.startswith("cifar10n-")
    given = load_cifar10n_labels(CIFAR10N_LABELS[name.split("-", 1)[1]], y_tr, root, download) if human else y_tr
    if quick:
        gen = generator if generator is not None else torch.Generator().manual_seed(0)
        tr, te = _quick_indices(len(y_tr), QUICK_SIZES[0], gen), _quick_indices(len(y_te), QUICK_SIZES[1], gen)
        x_tr, y_tr, given, x_te, y_te = x_tr[tr], y_tr[tr], given[tr], x_te[te], y_te[te]
    return _image_data(name, (x_tr, y_tr, x_te, y_te), 255.0, device, CIFAR10_CLASSES, hflip=True,
                       given=given if human else None)
