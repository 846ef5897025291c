"""noisyloss.cifar_n on the book's copy of the released CIFAR-N files (book/data) and on small
hand-made inputs; the book's files are checked against their published checksums."""
import doctest
import hashlib
import re
import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch

from noisyloss import cifar_n, noise
from noisyloss.data import DataError

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "book" / "data"


@pytest.fixture(scope="module")
def c10():
    return cifar_n.read_labels(DATA / "CIFAR-10_human.pt")


@pytest.fixture(scope="module")
def c100():
    return cifar_n.read_labels(DATA / "CIFAR-100_human.pt")


# --------------------------------------------------------------------------------------------
# the book's copy
# --------------------------------------------------------------------------------------------
def test_files_match_the_checksums_of_their_readme():
    readme = (DATA / "README.md").read_text()
    listed = dict(re.findall(r"^\| `([^`]+)` \|.*\| `([0-9a-f]{64})` \|$", readme, flags=re.M))
    assert sorted(listed) == sorted(p.name for p in DATA.iterdir() if p.name != "README.md")
    for name, digest in listed.items():
        assert hashlib.sha256((DATA / name).read_bytes()).hexdigest() == digest, name
    assert "CC BY-NC 4.0" in readme and "UCSC-REAL/cifar-10-100n" in readme


def test_the_wheel_ships_no_book_data():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert config["packages"]["find"]["include"] == ["noisyloss*"]
    assert all("book" not in pattern and ".pt" not in pattern and ".csv" not in pattern
               for patterns in config["package-data"].values() for pattern in patterns)


def test_cifar10n_noise_rates(c10):
    assert sorted(c10) == sorted(("clean_label", *cifar_n.CIFAR10N_SETS))
    clean = c10["clean_label"]
    assert clean.dtype == torch.int64 and clean.shape == (50_000,)
    assert torch.equal(torch.bincount(clean), torch.full((10,), 5000))
    # the rates computed from the file (the paper rounds aggre to 9.03 %)
    expected = {"aggre_label": 4505, "random_label1": 8617, "random_label2": 9061, "random_label3": 8820,
                "worse_label": 20104}
    for key, wrong in expected.items():
        assert int((c10[key] != clean).sum()) == wrong
        assert cifar_n.noise_rate(clean, c10[key]) == pytest.approx(wrong / 50_000, abs=1e-15)


def test_cifar10n_aggre_is_the_majority_where_there_is_one(c10):
    votes = torch.stack([c10[f"random_label{k}"] for k in (1, 2, 3)])
    majority = votes.mode(dim=0).values
    has_majority = (votes == majority).sum(dim=0) >= 2
    assert torch.equal(c10["aggre_label"][has_majority], majority[has_majority])
    # worse is wrong whenever one of the three is
    any_wrong = (votes != c10["clean_label"]).any(dim=0)
    assert torch.equal(c10["worse_label"] != c10["clean_label"], any_wrong)


def test_cifar100n_labels_and_class_names(c100):
    clean, noisy = c100["clean_label"], c100["noisy_label"]
    assert cifar_n.noise_rate(clean, noisy) == pytest.approx(0.402, abs=1e-12)
    assert torch.equal(c100["clean_coarse_label"], noise.CIFAR100_COARSE[clean])
    assert len(cifar_n.CIFAR100_CLASSES) == 100 and list(cifar_n.CIFAR100_CLASSES) == sorted(cifar_n.CIFAR100_CLASSES)
    groups = {frozenset(n for n, c in zip(cifar_n.CIFAR100_CLASSES, noise.CIFAR100_COARSE.tolist()) if c == g)
              for g in range(20)}
    assert frozenset({"baby", "boy", "girl", "man", "woman"}) in groups
    assert frozenset({"aquarium_fish", "flatfish", "ray", "shark", "trout"}) in groups
    assert frozenset({"maple_tree", "oak_tree", "palm_tree", "pine_tree", "willow_tree"}) in groups


def test_side_info_tiles_the_images(c10):
    side = cifar_n.read_side_info(DATA / "side_info_cifar10N.csv")
    assert side.workers.shape == side.seconds.shape == (5000, 3)
    assert torch.equal(side.first, torch.arange(0, 50_000, 10)) and torch.equal(side.last, side.first + 9)
    assert (side.workers[:, 0] != side.workers[:, 1]).all() and (side.seconds > 0).all()
    annotations = [c10[f"random_label{k}"] for k in (1, 2, 3)]
    ids, labelled, wrong = cifar_n.worker_errors(side, annotations, c10["clean_label"])
    assert int(labelled.sum()) == 150_000 and (labelled % 10 == 0).all()
    assert int(wrong.sum()) == 8617 + 9061 + 8820
    side100 = cifar_n.read_side_info(DATA / "side_info_cifar100N.csv")
    assert side100.workers.shape == (10_000, 1) and int(side100.last[-1]) == 49_999


# --------------------------------------------------------------------------------------------
# the measurements on hand-made inputs
# --------------------------------------------------------------------------------------------
def test_agreement_counts_distinct_labels():
    a = torch.tensor([0, 1, 2, 3])
    b = torch.tensor([0, 1, 1, 0])
    c = torch.tensor([0, 2, 1, 1])
    # image 0: one label; 1: {1, 2}; 2: {2, 1}; 3: {3, 0, 1}
    assert cifar_n.agreement([a, b, c]).tolist() == [0.25, 0.5, 0.25]
    assert cifar_n.agreement([a, a]).tolist() == [1.0, 0.0]


def test_worker_errors_by_hand():
    side = cifar_n.SideInfo(first=torch.tensor([0, 2]), last=torch.tensor([1, 4]),
                            workers=torch.tensor([[7, 3], [3, 9]]), seconds=torch.ones(2, 2, dtype=torch.long))
    clean = torch.tensor([0, 1, 2, 3, 4])
    first = torch.tensor([0, 0, 2, 0, 0])  # worker 7 on images 0-1 (1 wrong), worker 3 on 2-4 (2 wrong)
    second = torch.tensor([1, 1, 2, 3, 4])  # worker 3 on images 0-1 (1 wrong), worker 9 on 2-4 (0 wrong)
    ids, labelled, wrong = cifar_n.worker_errors(side, [first, second], clean)
    assert ids.tolist() == [3, 7, 9] and labelled.tolist() == [5, 2, 3] and wrong.tolist() == [3, 1, 0]


def test_most_confused_against_a_count_by_hand():
    g = torch.Generator().manual_seed(0)
    clean, noisy = torch.randint(0, 5, (400,), generator=g), torch.randint(0, 5, (400,), generator=g)
    pairs = cifar_n.most_confused(clean, noisy, 5, k=20)
    by_hand = sorted(((int(((clean == i) & (noisy == j)).sum()), i, j) for i in range(5) for j in range(5) if i != j),
                     reverse=True)
    assert len(pairs) == 20 and all(i != j for i, j, _ in pairs)
    assert [n for _, _, n in pairs] == [n for n, _, _ in by_hand]
    assert all(int(((clean == i) & (noisy == j)).sum()) == n for i, j, n in pairs)


class NotArrays:
    """An object a weights-only load must refuse to rebuild."""


def test_refuses_what_is_not_a_label_file(tmp_path):
    torch.save({"clean_label": NotArrays()}, tmp_path / "object.pt")
    with pytest.raises(DataError, match="not a CIFAR-N label file"):
        cifar_n.read_labels(tmp_path / "object.pt")
    torch.save({"clean_label": np.zeros(3)}, tmp_path / "float.pt")
    with pytest.raises(DataError, match="integer"):
        cifar_n.read_labels(tmp_path / "float.pt")
    torch.save([np.zeros(3, dtype=np.int64)], tmp_path / "list.pt")
    with pytest.raises(DataError, match="dict"):
        cifar_n.read_labels(tmp_path / "list.pt")
    (tmp_path / "gap.csv").write_text("Image-batch,Worker-id,Work-time-in-seconds\n0--4,1,10\n6--9,2,10\n")
    with pytest.raises(DataError, match="tile"):
        cifar_n.read_side_info(tmp_path / "gap.csv")


def test_argument_errors():
    labels = torch.tensor([0, 1])
    with pytest.raises(TypeError, match="annotations"):
        cifar_n.agreement(torch.stack([labels, labels]))
    with pytest.raises(ValueError, match="at least 2"):
        cifar_n.agreement([labels])
    with pytest.raises(ValueError, match="same shape"):
        cifar_n.noise_rate(labels, torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="noisy"):
        cifar_n.most_confused(labels, torch.tensor([0, 5]), 3)


def test_docstring_examples():
    result = doctest.testmod(cifar_n)
    assert result.failed == 0 and result.attempted > 0
