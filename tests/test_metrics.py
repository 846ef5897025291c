"""Metrics against hand counts and an independent numpy ECE."""
import numpy as np
import pytest
import torch

from noisyloss import metrics as M


def test_accuracy_from_logits_and_predictions():
    logits = torch.tensor([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [0.0, 0.0, 5.0], [1.0, 0.0, 0.0]])
    labels = torch.tensor([0, 2, 2, 1])
    assert M.accuracy(logits, labels) == 0.5
    assert M.accuracy(torch.tensor([0, 2, 2, 1]), labels) == 1.0
    assert M.accuracy(torch.tensor([1, 1, 1, 1], dtype=torch.int32), labels) == 0.25


def test_per_class_accuracy_by_hand():
    pred = torch.tensor([0, 0, 1, 2, 2, 1])
    labels = torch.tensor([0, 1, 1, 2, 2, 2])
    acc = M.per_class_accuracy(pred, labels, 4)
    assert acc.shape == (4,) and acc.dtype == torch.float64
    np.testing.assert_allclose(acc[:3].numpy(), [1.0, 0.5, 2 / 3])
    assert torch.isnan(acc[3])  # no sample of class 3
    # the class accuracies weighted by class frequency give the overall accuracy
    logits = torch.randn(500, 5, generator=torch.Generator().manual_seed(0))
    y = torch.randint(0, 5, (500,), generator=torch.Generator().manual_seed(1))
    freq = torch.bincount(y, minlength=5).double() / 500
    assert float((M.per_class_accuracy(logits, y, 5) * freq).sum()) == pytest.approx(M.accuracy(logits, y))


def _numpy_ece(probs: np.ndarray, labels: np.ndarray, n_bins: int) -> float:
    conf, pred = probs.max(axis=1), probs.argmax(axis=1)
    total = 0.0
    for b in range(n_bins):
        lo, hi = b / n_bins, (b + 1) / n_bins
        mask = (conf > lo) & (conf <= hi) if b else (conf <= hi)
        if mask.any():
            total += mask.mean() * abs((pred[mask] == labels[mask]).mean() - conf[mask].mean())
    return total


@pytest.mark.parametrize("n_bins", [1, 10, 15])
def test_ece_matches_independent_computation(n_bins):
    g = torch.Generator().manual_seed(n_bins)
    probs = (3 * torch.randn(2000, 10, generator=g, dtype=torch.float64)).softmax(dim=1)
    labels = torch.randint(0, 10, (2000,), generator=g)
    expected = _numpy_ece(probs.numpy(), labels.numpy(), n_bins)
    assert M.ece(probs, labels, n_bins) == pytest.approx(expected, rel=1e-12)
    assert M.ece(probs.float(), labels, n_bins) == pytest.approx(expected, abs=1e-5)


def test_ece_of_a_calibrated_and_an_overconfident_predictor():
    # 100 samples at confidence 0.8 of which 80 are right: calibrated, ECE 0
    probs = torch.tensor([[0.8, 0.2]]).repeat(100, 1)
    labels = torch.cat([torch.zeros(80), torch.ones(20)]).long()
    assert M.ece(probs, labels) == pytest.approx(0.0, abs=1e-7)
    # confidence 1.0 with 70 % right: ECE 0.3
    probs = torch.tensor([[1.0, 0.0]]).repeat(100, 1)
    labels = torch.cat([torch.zeros(70), torch.ones(30)]).long()
    assert M.ece(probs, labels) == pytest.approx(0.3)


def test_reliability_bins():
    probs = torch.tensor([[0.55, 0.45], [0.6, 0.4], [0.3, 0.7], [0.05, 0.95], [0.5, 0.5]])
    labels = torch.tensor([0, 1, 1, 0, 1])
    rel = M.reliability(probs, labels, n_bins=4)
    np.testing.assert_allclose(rel["edges"], [0, 0.25, 0.5, 0.75, 1.0])
    # bins (0.25, 0.5] holds conf 0.5 (pred 0, wrong); (0.5, 0.75]: 0.55 right, 0.6 wrong, 0.7 right;
    # (0.75, 1]: 0.95 wrong
    assert rel["count"].tolist() == [0, 1, 3, 1]
    np.testing.assert_allclose(rel["confidence"][1:], [0.5, (0.55 + 0.6 + 0.7) / 3, 0.95])
    np.testing.assert_allclose(rel["accuracy"][1:], [0.0, 2 / 3, 0.0])
    assert np.isnan(rel["confidence"][0]) and np.isnan(rel["accuracy"][0])
    weights = rel["count"][1:] / 5
    assert M.ece(probs, labels, n_bins=4) == pytest.approx(
        float(np.sum(weights * np.abs(rel["accuracy"][1:] - rel["confidence"][1:]))))


@pytest.mark.parametrize("call,exc,match", [
    (lambda: M.accuracy(torch.zeros(3, 2), torch.zeros(4, dtype=torch.long)), ValueError, "samples"),
    (lambda: M.accuracy(torch.zeros(3, 2), torch.zeros(3)), TypeError, "labels"),
    (lambda: M.accuracy(torch.zeros(3), torch.zeros(3, dtype=torch.long)), ValueError, "logits_or_pred"),
    (lambda: M.accuracy([0, 1], torch.zeros(2, dtype=torch.long)), TypeError, "logits_or_pred"),
    (lambda: M.accuracy(torch.zeros(0, 2), torch.zeros(0, dtype=torch.long)), ValueError, "labels"),
    (lambda: M.per_class_accuracy(torch.zeros(2, 3), torch.tensor([0, 3]), 3), ValueError, "labels"),
    (lambda: M.per_class_accuracy(torch.zeros(2, 3), torch.tensor([0, 1]), 0), ValueError, "num_classes"),
    (lambda: M.ece(torch.randn(4, 3), torch.zeros(4, dtype=torch.long)), ValueError, "probs"),
    (lambda: M.ece(torch.full((4, 3), 1 / 3), torch.zeros(5, dtype=torch.long)), ValueError, "samples"),
    (lambda: M.ece(torch.full((4,), 1.0), torch.zeros(4, dtype=torch.long)), ValueError, "probs"),
    (lambda: M.ece(torch.full((4, 3), 1 / 3), torch.zeros(4, dtype=torch.long), n_bins=0), ValueError, "n_bins"),
    (lambda: M.reliability(np.full((4, 3), 1 / 3), torch.zeros(4, dtype=torch.long)), TypeError, "probs"),
])
def test_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
