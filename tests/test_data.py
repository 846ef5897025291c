"""Dataset loaders on tiny files written in the real CIFAR-10 / CIFAR-10N formats (offline)."""
from __future__ import annotations

import hashlib
import io
import os
import pickle
import struct
import tarfile
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch

from noisyloss import data as D

N_BATCH, N_TEST = 4, 6  # images per training batch (5 batches) and in the test batch


def _batch(labels: np.ndarray, offset: int) -> dict:
    """A batch whose image k has pixel value 20·label + 3·channel (+ a position ramp in channel 2)."""
    n = len(labels)
    img = np.zeros((n, 3, 32, 32), np.uint8)
    img += (20 * labels).astype(np.uint8)[:, None, None, None]
    img += np.array([0, 3, 6], np.uint8)[None, :, None, None]
    img[:, 2] += (np.arange(32 * 32) % 7).reshape(32, 32).astype(np.uint8)
    return {b"batch_label": f"batch {offset}".encode(), b"labels": labels.tolist(),
            b"data": img.reshape(n, 3072), b"filenames": [b"x.png"] * n}


class _Py2Pickler(pickle._Pickler):
    """Pickles as Python 2's cPickle wrote the real CIFAR-10 batches: protocol 2, every str and bytes as a
    Python 2 ``str`` (SHORT_BINSTRING/BINSTRING), numpy's reconstruct function under ``numpy.core``."""

    dispatch = pickle._Pickler.dispatch.copy()

    def _save_py2_str(self, obj):
        raw = obj.encode("latin1") if isinstance(obj, str) else obj
        n = len(raw)
        self.write(pickle.SHORT_BINSTRING + bytes([n]) + raw if n < 256 else pickle.BINSTRING + struct.pack("<i", n) + raw)
        self.memoize(obj)

    dispatch[bytes] = dispatch[str] = _save_py2_str

    def save_global(self, obj, name=None):
        module = obj.__module__.replace("numpy._core", "numpy.core")
        self.write(pickle.GLOBAL + f"{module}\n{name or obj.__qualname__}\n".encode())
        self.memoize(obj)


def _dump(obj, path: Path) -> None:
    with open(path, "wb") as f:
        _Py2Pickler(f, protocol=2).dump(obj)


def _write_cifar(root: Path) -> np.ndarray:
    folder = root / D.CIFAR10_DIR
    folder.mkdir(parents=True)
    train = np.arange(5 * N_BATCH) % 10
    for i in range(5):
        _dump(_batch(train[i * N_BATCH:(i + 1) * N_BATCH], i), folder / f"data_batch_{i + 1}")
    _dump(_batch(np.arange(N_TEST) % 10, 9), folder / "test_batch")
    return train


def _md5s(folder: Path) -> dict:
    return {name: hashlib.md5((folder / name).read_bytes()).hexdigest() for name in D.CIFAR10_BATCH_MD5}


def _human(train: np.ndarray) -> dict:
    worse = (train + 1) % 10
    worse[::3] = train[::3]
    return {"clean_label": train.copy(), "aggre_label": train.copy(), "random_label1": worse.copy(),
            "random_label2": train.copy(), "random_label3": train.copy(), "worse_label": worse}


@pytest.fixture
def cifar_root(tmp_path: Path, monkeypatch):
    """Tiny batches in the real format; the MD5 table names their checksums (not the official ones)."""
    train = _write_cifar(tmp_path)
    monkeypatch.setattr(D, "CIFAR10_BATCH_MD5", _md5s(tmp_path / D.CIFAR10_DIR))
    return tmp_path, train


def test_batch_checksums_are_the_official_ones():
    # the MD5s of the files in cifar-10-python.tar.gz, as torchvision's CIFAR10 lists them
    assert D.CIFAR10_BATCH_MD5["data_batch_1"] == "c99cafc152244af753f735de768cd75f"
    assert D.CIFAR10_BATCH_MD5["test_batch"] == "40351d587109b95175f43aff81a1287e"
    assert sorted(D.CIFAR10_BATCH_MD5) == [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


def test_an_extracted_batch_with_another_checksum_is_refused(cifar_root):
    root, _ = cifar_root
    path = root / D.CIFAR10_DIR / "data_batch_3"
    path.write_bytes(path.read_bytes()[:-1] + b"x")
    with pytest.raises(D.DataError, match=f"{path}: MD5"):
        D.load_cifar10_arrays(root, download=False)


class _Payload:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("name", ["data_batch_1", "test_batch"])
def test_a_crafted_batch_runs_no_code(cifar_root, monkeypatch, name, tmp_path_factory):
    root, _ = cifar_root
    marker = tmp_path_factory.mktemp("m") / "pwned"
    path = root / D.CIFAR10_DIR / name
    batch = _batch(np.arange(N_BATCH) % 10, 0)
    batch[b"labels"] = _Payload(marker)
    _dump(batch, path)
    pickle.loads(pickle.dumps(_Payload(marker)))  # the payload works when unpickled freely ...
    assert marker.exists()
    marker.unlink()
    with pytest.raises(D.DataError, match=f"{path}: MD5"):  # ... its checksum stops it first
        D.load_cifar10_arrays(root, download=False)
    # and with a matching checksum the restricted unpickler refuses it, naming the file
    monkeypatch.setitem(D.CIFAR10_BATCH_MD5, name, hashlib.md5(path.read_bytes()).hexdigest())
    with pytest.raises(D.DataError, match=f"{path}: not a CIFAR-10 batch.*refused global posix.system"):
        D.load_cifar10_arrays(root, download=False)
    assert not marker.exists()


@pytest.mark.parametrize("name, labels, match", [
    ("data_batch_2", [0.0, 1.0, 2.0, 3.0], "labels must be integers"),
    ("data_batch_2", [0, 1, True, 3], "labels must be integers"),
    ("data_batch_5", [0, 1, 10, 3], r"labels must be in \[0, 9\], found 10"),
    ("test_batch", [0, 1, 2, 3, 4, -1], r"labels must be in \[0, 9\], found -1"),
    ("test_batch", np.array([0.5] * N_TEST), "labels must be integers"),
    ("test_batch", [0, 1, 2], "6 images but 3 labels"),
])
def test_batch_labels_are_checked_train_and_test(cifar_root, monkeypatch, name, labels, match):
    root, _ = cifar_root
    path = root / D.CIFAR10_DIR / name
    batch = _batch(np.arange(N_TEST if name == "test_batch" else N_BATCH) % 10, 0)
    batch[b"labels"] = labels
    _dump(batch, path)
    monkeypatch.setitem(D.CIFAR10_BATCH_MD5, name, hashlib.md5(path.read_bytes()).hexdigest())
    with pytest.raises(D.DataError, match=f"{path}: {match}"):
        D.load_cifar10_arrays(root, download=False)


@pytest.mark.parametrize("content", [b"", b"\x80\x02}q\x00(U\x04data", b"not a pickle", pickle.dumps([1, 2])])
def test_a_damaged_batch_is_an_error_naming_it(cifar_root, monkeypatch, content):
    root, _ = cifar_root
    path = root / D.CIFAR10_DIR / "data_batch_4"
    path.write_bytes(content)
    monkeypatch.setitem(D.CIFAR10_BATCH_MD5, "data_batch_4", hashlib.md5(content).hexdigest())
    with pytest.raises(D.DataError, match=f"{path}: "):
        D.load_cifar10_arrays(root, download=False)


def test_cifar_arrays_keep_the_row_layout(cifar_root):
    root, train = cifar_root
    x_tr, y_tr, x_te, y_te = D.load_cifar10_arrays(root, download=False)
    assert x_tr.shape == (5 * N_BATCH, 3, 32, 32) and x_te.shape == (N_TEST, 3, 32, 32)
    assert x_tr.dtype == np.uint8 and y_tr.dtype == np.int64
    np.testing.assert_array_equal(y_tr, train)
    np.testing.assert_array_equal(y_te, np.arange(N_TEST) % 10)
    row = _batch(train[N_BATCH:2 * N_BATCH], 1)[b"data"][1]
    # row = 1024 red, 1024 green, 1024 blue values, each row-major 32x32
    for c, i, j in [(0, 0, 0), (1, 5, 7), (2, 31, 2), (2, 3, 30)]:
        assert x_tr[N_BATCH + 1, c, i, j] == row[1024 * c + 32 * i + j]


def test_load_cifar10_normalises_per_channel(cifar_root):
    root, train = cifar_root
    d = D.load_dataset("cifar10", device="cpu", root=root, download=False)
    assert d.x_train.shape == (5 * N_BATCH, 3, 32, 32) and d.x_train.dtype == torch.float32
    assert d.y_train.dtype == torch.int64 and torch.equal(d.y_train, torch.from_numpy(train))
    assert not d.has_label_noise and d.y_train_clean is d.y_train
    assert d.num_classes == 10 and len(d.classes) == 10 and d.hflip
    x = d.x_train.double()
    torch.testing.assert_close(x.mean(dim=(0, 2, 3)), torch.zeros(3, dtype=torch.float64), atol=1e-5, rtol=0)
    torch.testing.assert_close(x.std(dim=(0, 2, 3)), torch.ones(3, dtype=torch.float64), atol=1e-5, rtol=0)
    # the test set uses the training statistics: same raw value -> same normalised value
    raw_tr, _, raw_te, _ = D.load_cifar10_arrays(root, download=False)
    a = np.argwhere(raw_te[0, 1] == raw_tr[0, 1, 0, 0])[0]
    assert float(d.x_test[0, 1, a[0], a[1]]) == pytest.approx(float(d.x_train[0, 1, 0, 0]))


def test_quick_mode_subsamples_images_with_their_labels(cifar_root, monkeypatch):
    root, _ = cifar_root
    monkeypatch.setattr(D, "QUICK_SIZES", (7, 3))
    d = D.load_dataset("cifar10", device="cpu", quick=True, root=root, download=False)
    assert len(d.x_train) == len(d.y_train) == 7 and len(d.x_test) == len(d.y_test) == 3
    # red pixel = 20·label, so after the affine normalisation it is strictly increasing in the label
    red = d.x_train[:, 0, 0, 0]
    for a in range(7):
        for b in range(7):
            assert (d.y_train[a] < d.y_train[b]) == bool(red[a] < red[b] - 1e-6)
    again = D.load_dataset("cifar10", device="cpu", quick=True, root=root, download=False)
    assert torch.equal(again.y_train, d.y_train)


def _save_human(path: Path, table: dict, old_numpy_names: bool = False) -> None:
    if not old_numpy_names:
        torch.save(table, path)
        return
    # legacy (non-zip) format with the numpy 1.x module name, as in files written years ago
    buf = io.BytesIO()
    torch.save(table, buf, _use_new_zipfile_serialization=False)
    path.write_bytes(buf.getvalue().replace(b"numpy._core.multiarray", b"numpy.core.multiarray"))


@pytest.mark.parametrize("old", [False, True])
def test_cifar10n_human_labels(cifar_root, old):
    root, train = cifar_root
    table = _human(train)
    _save_human(root / D.CIFAR10N_FILE, table, old_numpy_names=old)
    d = D.load_dataset("cifar10n-worse", device="cpu", root=root, download=False)
    assert d.has_label_noise
    np.testing.assert_array_equal(d.y_train.numpy(), table["worse_label"])
    np.testing.assert_array_equal(d.y_train_clean.numpy(), train)
    assert bool((d.y_train != d.y_train_clean).any())
    clean = D.load_dataset("cifar10n-aggre", device="cpu", root=root, download=False)
    assert torch.equal(clean.y_train, clean.y_train_clean)


def test_cifar10n_rejects_misaligned_or_incomplete_files(cifar_root):
    root, train = cifar_root
    table = _human(train)
    table["clean_label"] = np.roll(train, 1)
    torch.save(table, root / D.CIFAR10N_FILE)
    with pytest.raises(ValueError, match="clean_label does not match"):
        D.load_dataset("cifar10n-worse", device="cpu", root=root, download=False)
    table = _human(train)
    del table["worse_label"]
    torch.save(table, root / D.CIFAR10N_FILE)
    with pytest.raises(ValueError, match="lacks"):
        D.load_dataset("cifar10n-worse", device="cpu", root=root, download=False)
    table = _human(train)
    table["worse_label"] = table["worse_label"] + 0.4  # floats are not truncated to labels
    torch.save(table, root / D.CIFAR10N_FILE)
    with pytest.raises(D.DataError, match=f"{root / D.CIFAR10N_FILE}: worse_label must hold integer labels"):
        D.load_dataset("cifar10n-worse", device="cpu", root=root, download=False)
    (root / D.CIFAR10N_FILE).write_bytes(b"garbage")
    with pytest.raises(D.DataError, match=f"{root / D.CIFAR10N_FILE}: not a CIFAR-10N label file"):
        D.load_dataset("cifar10n-worse", device="cpu", root=root, download=False)


def _tarball(src: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(src / D.CIFAR10_DIR, arcname=D.CIFAR10_DIR)
    return buf.getvalue()


def test_download_extracts_and_checks_md5(cifar_root, tmp_path_factory, monkeypatch):
    src, train = cifar_root
    blob = _tarball(src)
    urls = []

    def fake_fetch(url, dest):
        urls.append(url)
        Path(dest).write_bytes(blob)

    monkeypatch.setattr(D, "_fetch", fake_fetch)
    root = tmp_path_factory.mktemp("fresh")
    monkeypatch.setattr(D, "CIFAR10_MD5", hashlib.md5(blob).hexdigest())
    x_tr, y_tr, _, _ = D.load_cifar10_arrays(root)
    assert urls == [D.CIFAR10_URL]
    np.testing.assert_array_equal(y_tr, train)
    assert sorted(p.name for p in root.iterdir()) == [D.CIFAR10_DIR]  # archive removed
    D.load_cifar10_arrays(root)  # present now: no second download
    assert len(urls) == 1
    # an archive placed by hand is checked and extracted without the network, and kept
    manual = tmp_path_factory.mktemp("manual")
    (manual / "cifar-10-python.tar.gz").write_bytes(blob)
    np.testing.assert_array_equal(D.load_cifar10_arrays(manual, download=False)[1], train)
    assert len(urls) == 1 and (manual / "cifar-10-python.tar.gz").exists()


def test_checksum_mismatch_discards_the_file(cifar_root, tmp_path_factory, monkeypatch):
    src, _ = cifar_root
    blob = _tarball(src)
    monkeypatch.setattr(D, "_fetch", lambda url, dest: Path(dest).write_bytes(blob))
    assert D.CIFAR10_MD5 == "c58f30108f718f92721af3b95e74349a"
    root = tmp_path_factory.mktemp("bad")
    with pytest.raises(D.DownloadError, match="MD5 checksum mismatch"):
        D.load_dataset("cifar10", device="cpu", root=root)
    assert list(root.iterdir()) == []  # no archive, no partial file
    (root / "cifar-10-python.tar.gz").write_bytes(blob)  # placed by hand, wrong checksum
    with pytest.raises(D.DownloadError, match="MD5 checksum mismatch"):
        D.load_dataset("cifar10", device="cpu", root=root, download=False)


def test_offline_gives_a_clear_error(tmp_path, monkeypatch):
    def offline(url, dest):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(D, "_fetch", offline)
    with pytest.raises(D.DownloadError, match="could not download .*place the file"):
        D.load_dataset("cifar10", device="cpu", root=tmp_path)
    with pytest.raises(FileNotFoundError, match="download=False"):
        D.load_dataset("cifar10", device="cpu", root=tmp_path, download=False)
    assert list(tmp_path.iterdir()) == []


def test_data_root_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("NOISYLOSS_DATA", str(tmp_path))
    assert D.data_root() == tmp_path
    assert D.data_root(tmp_path / "x") == tmp_path / "x"
    monkeypatch.delenv("NOISYLOSS_DATA")
    assert D.data_root() == Path.home() / ".cache" / "noisyloss"


def test_digits_split_is_stratified_and_fixed():
    d = D.load_dataset("digits", device="cpu")
    assert d.x_train.shape == (1347, 1, 8, 8) and d.x_test.shape == (450, 1, 8, 8)
    assert not d.hflip and d.in_channels == 1 and d.image_size == 8
    tr = torch.bincount(d.y_train, minlength=10).double()
    te = torch.bincount(d.y_test, minlength=10).double()
    assert torch.all((te - (tr + te) * 0.25).abs() <= 1.0)  # stratified: 25 % of every class
    x = d.x_train.double()
    assert float(x.mean()) == pytest.approx(0.0, abs=1e-5) and float(x.std()) == pytest.approx(1.0, abs=1e-5)
    assert torch.equal(D.load_dataset("digits", device="cpu").y_test, d.y_test)


def test_subset_and_name_validation():
    d = D.load_dataset("digits", device="cpu")
    s = d.subset(100, generator=torch.Generator().manual_seed(1))
    assert len(s.x_train) == len(s.y_train) == 100 and s.x_test is d.x_test
    # images stay paired with their labels: each subset image occurs in the full set with that label
    flat = d.x_train.flatten(1)
    for k in range(0, 100, 17):
        hits = (flat == s.x_train[k].flatten()).all(dim=1).nonzero().flatten()
        assert len(hits) >= 1 and bool((d.y_train[hits] == s.y_train[k]).any())
    for bad in (0, 1348):
        with pytest.raises(ValueError, match="n must be"):
            d.subset(bad)
    with pytest.raises(TypeError, match="n must be an int, got float"):
        d.subset(2.5)
    with pytest.raises(TypeError, match=r"dataset must be one of \(.*'digits'.*\), got int"):
        D.load_dataset(3)
    with pytest.raises(ValueError, match="dataset must be one of"):
        D.load_dataset("mnist")
    assert D.dataset_info("cifar10n-random2") == (10, 3, 32)
