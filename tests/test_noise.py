"""Transition matrices against hand-written entries, sampling statistics, reproducibility, errors."""
import math

import numpy as np
import pytest
import torch

from noisyloss import noise as N


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --------------------------------------------------------------------------------------------
# matrices
# --------------------------------------------------------------------------------------------
def test_symmetric_excluding_true_class():
    T = N.symmetric(4, 0.3)
    expected = np.full((4, 4), 0.1)
    np.fill_diagonal(expected, 0.7)
    assert T.dtype == torch.float64 and T.shape == (4, 4)
    np.testing.assert_allclose(T.numpy(), expected, rtol=0, atol=1e-15)


def test_symmetric_including_true_class():
    T = N.symmetric(4, 0.4, include_true=True)
    expected = np.full((4, 4), 0.1)
    np.fill_diagonal(expected, 0.7)  # 0.6 + 0.4/4
    np.testing.assert_allclose(T.numpy(), expected, rtol=0, atol=1e-15)
    # realised flip rate rate * (C - 1) / C
    assert 1 - float(T.diagonal().mean()) == pytest.approx(0.4 * 3 / 4)


def test_numpy_integer_num_classes():
    assert torch.equal(N.symmetric(np.int64(4), 0.3), N.symmetric(4, 0.3))


def test_pair_flip():
    T = N.pair_flip(3, 0.45)
    expected = np.array([[0.55, 0.45, 0.0], [0.0, 0.55, 0.45], [0.45, 0.0, 0.55]])
    np.testing.assert_allclose(T.numpy(), expected, rtol=0, atol=1e-15)


def test_cifar10_asymmetric_entries():
    T = N.cifar10_asymmetric(0.4)
    expected = np.eye(10)
    for src, dst in [(9, 1), (2, 0), (4, 7), (3, 5), (5, 3)]:
        expected[src, src], expected[src, dst] = 0.6, 0.4
    np.testing.assert_allclose(T.numpy(), expected, rtol=0, atol=1e-15)
    names = N.CIFAR10_CLASSES
    assert (names[9], names[1], names[2], names[0], names[4], names[7], names[3], names[5]) == (
        "truck", "automobile", "bird", "airplane", "deer", "horse", "cat", "dog")


def test_cifar100_coarse_mapping():
    coarse = N.CIFAR100_COARSE
    assert coarse.shape == (100,) and torch.equal(torch.bincount(coarse), torch.full((20,), 5))
    # spot checks by name (torchvision fine-label order): super-class 0 = aquatic mammals
    # (beaver 4, dolphin 30, otter 55, seal 72, whale 95); 14 = people (baby 2, boy 11, girl 35,
    # man 46, woman 98); 4 = fruit and vegetables (apple 0, mushroom 51, orange 53, pear 57, sweet_pepper 83)
    assert (coarse == 0).nonzero().squeeze(1).tolist() == [4, 30, 55, 72, 95]
    assert (coarse == 14).nonzero().squeeze(1).tolist() == [2, 11, 35, 46, 98]
    assert (coarse == 4).nonzero().squeeze(1).tolist() == [0, 51, 53, 57, 83]


def test_cifar100_asymmetric_cycles_within_superclass():
    T = N.cifar100_asymmetric(0.2)
    for a, b in [(4, 30), (30, 55), (55, 72), (72, 95), (95, 4), (2, 11), (98, 2), (0, 51), (83, 0)]:
        assert T[a, a] == pytest.approx(0.8) and T[a, b] == pytest.approx(0.2)
    off = T - torch.diag(T.diagonal())
    src, dst = off.nonzero().unbind(1)
    assert len(src) == 100 and torch.equal(N.CIFAR100_COARSE[src], N.CIFAR100_COARSE[dst])
    # not the "consecutive blocks of five" convention: 0 (apple) never flips to 1 (aquarium fish)
    assert T[0, 1] == 0


@pytest.mark.parametrize("T", [
    N.symmetric(7, 0.9), N.symmetric(7, 1.0), N.symmetric(5, 0.5, include_true=True), N.pair_flip(6, 1.0),
    N.cifar10_asymmetric(1.0), N.cifar100_asymmetric(0.3), N.symmetric(2, 0.0),
])
def test_rows_are_distributions(T):
    assert (T >= 0).all()
    np.testing.assert_allclose(T.sum(dim=1).numpy(), 1.0, rtol=0, atol=1e-12)


@pytest.mark.parametrize("spec,C,expected", [
    ("clean", 5, lambda: torch.eye(5, dtype=torch.float64)),
    ("sym:0.4", 10, lambda: N.symmetric(10, 0.4)),
    (" SYM : 0.4 ", 10, lambda: N.symmetric(10, 0.4)),
    ("uniform:0.4", 10, lambda: N.symmetric(10, 0.4, include_true=True)),
    ("pair:0.45", 8, lambda: N.pair_flip(8, 0.45)),
])
def test_make_transition(spec, C, expected):
    assert torch.equal(N.make_transition(spec, C), expected())


def test_asym_noise_flips_the_named_or_given_class_pairs():
    assert torch.equal(N.make_transition("asym:0.4", 10, pairs="cifar10"), N.cifar10_asymmetric(0.4))
    assert torch.equal(N.make_transition("asym:0.3", 100, pairs="cifar100"), N.cifar100_asymmetric(0.3))
    T = N.make_transition("asym:0.25:1>7,7>1", 10)  # pairs in the spec win over pairs=
    assert torch.equal(T, N.make_transition("ASYM : 0.25 : 1>7, 7>1", 10, pairs="cifar10"))
    expected = torch.eye(10, dtype=torch.float64)
    expected[1, 1] = expected[7, 7] = 0.75
    expected[1, 7] = expected[7, 1] = 0.25
    assert torch.equal(T, expected)
    assert torch.equal(N.make_transition("asym:0.5", 4, pairs={0: 3}), N.make_transition("asym:0.5:0>3", 4))


@pytest.mark.parametrize("spec, C, pairs, match", [
    ("asym:0.4", 10, None, "needs class pairs"),  # ten classes do not make a dataset CIFAR-10
    ("asym:0.4", 7, "cifar10", "defined for 10 classes"),
    ("asym:0.4", 10, "cifar1000", "pairs must be one of"),
    ("asym:0.4", 10, {1: 1}, "another class"),
    ("asym:0.4", 10, {1: 10}, r"\[0, 9\]"),
    ("asym:0.4:1>10", 10, None, r"\[0, 9\]"),
    ("asym:0.4:1-7", 10, None, "'1-7'"),
    ("asym:0.4:1>7,1>2", 10, None, "twice"),
    ("sym:0.4:1>7", 10, None, "only 'asym'"),
    ("asym:1.5:1>7", 10, None, "rate"),
])
def test_asym_noise_without_valid_pairs_is_an_error(spec, C, pairs, match):
    with pytest.raises(ValueError, match=match):
        N.make_transition(spec, C, pairs=pairs)


# --------------------------------------------------------------------------------------------
# sampling
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("spec,C,flip_rate", [
    ("sym:0.4", 10, 0.4),
    ("uniform:0.6", 10, 0.6 * 9 / 10),
    ("asym:0.4", 10, 0.4 * 5 / 10),  # 5 of 10 classes flip
    ("pair:0.45", 5, 0.45),
    ("clean", 10, 0.0),
])
def test_corrupt_realised_rate(spec, C, flip_rate):
    n = 200_000
    labels = torch.arange(n) % C  # balanced classes, so the expected rate is exact
    out = N.corrupt(labels, N.make_transition(spec, C, pairs="cifar10"), generator=gen(3))
    assert isinstance(out, N.Corrupted) and out.labels.dtype == torch.long and out.corrupted.dtype == torch.bool
    assert torch.equal(out.corrupted, out.labels != labels)
    std = math.sqrt(flip_rate * (1 - flip_rate) / n)
    assert abs(out.rate - flip_rate) <= 4 * std + 1e-12
    assert out.rate == pytest.approx(float(out.corrupted.double().mean()))


def test_corrupt_empirical_transition_matches_T():
    C, per_class = 6, 20_000
    T = N.pair_flip(C, 0.3) * 0.5 + N.symmetric(C, 0.6, include_true=True) * 0.5
    labels = torch.arange(C).repeat_interleave(per_class)
    noisy = N.corrupt(labels, T, generator=gen(0)).labels
    est = N.estimate_transition(labels, noisy, C)
    std = torch.sqrt(T * (1 - T) / per_class)
    assert ((est - T).abs() <= 4 * std + 1e-12).all()
    np.testing.assert_allclose(est.sum(dim=1).numpy(), 1.0, atol=1e-12)


def test_corrupt_is_reproducible_with_a_generator():
    labels = torch.randint(0, 10, (5000,), generator=gen(0))
    T = N.symmetric(10, 0.5)
    a, b = N.corrupt(labels, T, generator=gen(7)), N.corrupt(labels, T, generator=gen(7))
    c = N.corrupt(labels, T, generator=gen(8))
    assert torch.equal(a.labels, b.labels) and not torch.equal(a.labels, c.labels)


def test_corrupt_accepts_array_like_T_and_empty_labels():
    labels = torch.tensor([0, 1, 1], dtype=torch.int32)
    out = N.corrupt(labels, [[0.0, 1.0], [1.0, 0.0]])
    assert out.labels.tolist() == [1, 0, 0] and out.corrupted.all() and out.rate == 1.0
    empty = N.corrupt(torch.empty(0, dtype=torch.long), N.symmetric(3, 0.5))
    assert empty.labels.shape == (0,) and empty.rate == 0.0


def test_estimate_transition_counts_by_hand():
    clean = torch.tensor([0, 0, 0, 0, 1, 1])
    noisy = torch.tensor([0, 0, 0, 2, 1, 0])
    est = N.estimate_transition(clean, noisy, 3)
    expected = np.array([[0.75, 0.0, 0.25], [0.5, 0.5, 0.0], [0.0, 0.0, 0.0]])  # class 2 absent: zero row
    np.testing.assert_allclose(est.numpy(), expected, rtol=0, atol=0)


# --------------------------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("call,exc,match", [
    (lambda: N.symmetric(10, -0.1), ValueError, "rate"),
    (lambda: N.symmetric(10, 1.5), ValueError, "rate"),
    (lambda: N.symmetric(10, float("nan")), ValueError, "rate"),
    (lambda: N.symmetric(10, "0.4"), TypeError, "rate"),
    (lambda: N.symmetric(1, 0.4), ValueError, "num_classes"),
    (lambda: N.symmetric(10.0, 0.4), TypeError, "num_classes"),
    (lambda: N.symmetric(10, 0.4, include_true=1), TypeError, "include_true"),
    (lambda: N.pair_flip(5, 2.0), ValueError, "rate"),
    (lambda: N.cifar10_asymmetric(-1), ValueError, "rate"),
    (lambda: N.cifar100_asymmetric(1.01), ValueError, "rate"),
    (lambda: N.make_transition("gauss:0.1", 10), ValueError, "spec"),
    (lambda: N.make_transition("sym", 10), ValueError, "sym:0.4"),
    (lambda: N.make_transition("sym:abc", 10), ValueError, "sym:0.4"),
    (lambda: N.make_transition("sym:1.2", 10), ValueError, "rate"),
    (lambda: N.make_transition("clean:0.2", 10), ValueError, "clean"),
    (lambda: N.make_transition(0.4, 10), TypeError, "spec"),
    (lambda: N.check_transition(torch.ones(3, 4) / 4), ValueError, "square"),
    (lambda: N.check_transition(torch.ones(3, 3)), ValueError, "sum to 1"),
    (lambda: N.check_transition(torch.tensor([[1.5, -0.5], [0.0, 1.0]])), ValueError, "nonnegative"),
    (lambda: N.check_transition(torch.eye(3), num_classes=4), ValueError, "num_classes"),
    (lambda: N.check_transition("eye"), TypeError, "T"),
    (lambda: N.corrupt(torch.tensor([0, 3]), torch.eye(3)), ValueError, "labels"),
    (lambda: N.corrupt(torch.tensor([-1, 0]), torch.eye(3)), ValueError, "labels"),
    (lambda: N.corrupt(torch.tensor([0.0, 1.0]), torch.eye(3)), TypeError, "labels"),
    (lambda: N.corrupt(torch.zeros(2, 2, dtype=torch.long), torch.eye(3)), ValueError, "labels"),
    (lambda: N.corrupt([0, 1], torch.eye(3)), TypeError, "labels"),
    (lambda: N.corrupt(torch.tensor([0, 1]), torch.ones(3, 3)), ValueError, "sum to 1"),
    (lambda: N.estimate_transition(torch.tensor([0, 1]), torch.tensor([0]), 2), ValueError, "same shape"),
    (lambda: N.estimate_transition(torch.tensor([0, 1]), torch.tensor([0, 2]), 2), ValueError, "noisy"),
])
def test_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_nearest_example_labels_follow_the_nearest_example():
    # class 0 sits near 0, class 1 near 10; image 6 is a class-1 image that looks like class 0
    x = torch.tensor([[0.0], [0.1], [0.2], [10.0], [10.1], [10.2], [0.05]])
    y = torch.tensor([0, 0, 0, 1, 1, 1, 1])
    for seed in range(20):
        out = N.nearest_example_labels(x, y, 2, per_class=2, generator=torch.Generator().manual_seed(seed))
        assert out[3:6].tolist() == [1, 1, 1]
        if out[6].item() == 0:  # look-alike not drawn as an example: mislabelled, the rest labelled right
            assert out[:3].tolist() == [0, 0, 0]
        else:  # drawn as a class-1 example: it keeps its label and pulls its neighbourhood to class 1
            assert out[6].item() == 1
        again = N.nearest_example_labels(x, y, 2, per_class=2, generator=torch.Generator().manual_seed(seed))
        assert torch.equal(out, again)
    flips = [N.nearest_example_labels(x, y, 2, per_class=2, generator=torch.Generator().manual_seed(s))[6].item()
             for s in range(200)]
    assert 0.35 < flips.count(0) / 200 < 0.65  # P(look-alike not drawn among 2 of 4) = 1/2
    with pytest.raises(ValueError, match="per_class"):
        N.nearest_example_labels(x, y, 2, per_class=5)


@pytest.mark.parametrize("specs, canonical", [
    (["clean", " CLEAN "], "clean"),
    (["sym:0.4", " SYM : 0.40 ", "sym:.4"], "sym:0.4"),
    (["pair:1", "pair:1.0"], "pair:1.0"),
    (["asym:0.4:7>1,1>7", "asym:0.40: 1>7 , 7>1"], "asym:0.4:1>7,7>1"),
])
def test_noise_specs_have_one_canonical_spelling_for_one_matrix(specs, canonical):
    assert {N.parse_noise(s).canonical() for s in specs} == {canonical}
    for s in specs:
        assert torch.equal(N.make_transition(s, 10, pairs="cifar10"), N.make_transition(canonical, 10, pairs="cifar10"))
