"""Training loop pieces: augmentation (exact), memorisation metrics, schedule, a real fit on digits."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import noisyloss
from noisyloss.data import load_dataset
from noisyloss.models import make_model
from noisyloss.train import NoisyLabels, augment, fit, flip, memorisation, predict, translate, triangular_lr


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", device="cpu")


def test_flip_mirrors_only_the_selected_images():
    x = torch.arange(2 * 1 * 2 * 3, dtype=torch.float32).view(2, 1, 2, 3)
    out = flip(x, torch.tensor([True, False]))
    assert out[0].tolist() == [[[2.0, 1.0, 0.0], [5.0, 4.0, 3.0]]]
    assert torch.equal(out[1], x[1])


def test_translate_exact_on_a_tiny_image():
    x = torch.arange(9, dtype=torch.float32).view(1, 1, 3, 3)  # [[0,1,2],[3,4,5],[6,7,8]]
    shift = lambda dy, dx: translate(x, torch.tensor([[dy, dx]]), pad=1)[0, 0].tolist()  # noqa: E731
    assert shift(0, 0) == x[0, 0].tolist()
    assert shift(0, 1) == [[1, 2, 1], [4, 5, 4], [7, 8, 7]]  # reflect: column 3 -> column 1
    assert shift(-1, 0) == [[3, 4, 5], [0, 1, 2], [3, 4, 5]]
    assert shift(1, -1) == [[4, 3, 4], [7, 6, 7], [4, 3, 4]]


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 4), c=st.integers(1, 3), h=st.integers(3, 7), w=st.integers(3, 7),
       pad=st.integers(1, 2), seed=st.integers(0, 2**31 - 1))
def test_translate_matches_numpy_reflect_reference(n, c, h, w, pad, seed):
    pad = min(pad, h - 1, w - 1)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, h, w, generator=g, dtype=torch.float64)
    shifts = torch.randint(-pad, pad + 1, (n, 2), generator=g)
    out = translate(x, shifts, pad)
    padded = np.pad(x.numpy(), ((0, 0), (0, 0), (pad, pad), (pad, pad)), mode="reflect")
    for k, (dy, dx) in enumerate(shifts.tolist()):
        ref = padded[k, :, pad + dy: pad + dy + h, pad + dx: pad + dx + w]
        np.testing.assert_array_equal(out[k].numpy(), ref)


def test_augment_keeps_shape_and_is_reproducible():
    x = torch.randn(16, 3, 8, 8)
    a = augment(x, pad=2, hflip=True, generator=torch.Generator().manual_seed(0))
    b = augment(x, pad=2, hflip=True, generator=torch.Generator().manual_seed(0))
    assert a.shape == x.shape and a.dtype == x.dtype and torch.equal(a, b)
    assert not torch.equal(a, x)
    # a translation moves pixels, so every output pixel value comes from its own input image
    for k in range(16):
        assert torch.isin(a[k], x[k]).all()
    with pytest.raises(ValueError, match="pad"):
        translate(x, torch.zeros(16, 2, dtype=torch.long), pad=8)


def test_memorisation_on_a_hand_made_case():
    clean = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])
    given_ = torch.tensor([0, 1, 2, 3, 1, 2, 3, 0])  # last four are corrupted
    corrupted = given_ != clean
    pred = torch.tensor([0, 1, 0, 3, 1, 1, 3, 2])
    # clean: 3 of 4 fitted; corrupted: pred==given at 4, 6 (2/4); pred==clean at 5 (1/4)
    assert memorisation(pred, given_, clean, corrupted) == {"fit_clean": 0.75, "memorised": 0.5, "corrected": 0.25}
    assert memorisation(pred[:4], given_[:4], clean[:4], corrupted[:4])["memorised"] is None


def test_triangular_schedule():
    total = 100
    f = [triangular_lr(s, total) for s in range(total)]
    peak = int(np.argmax(f))
    assert f[peak] == pytest.approx(1.0) and peak == 19
    assert all(a < b for a, b in zip(f[:peak], f[1:peak + 1]))
    assert all(a > b for a, b in zip(f[peak:-1], f[peak + 1:]))
    assert f[-1] == 0.0 and 0 < f[0] <= 0.05 + 1e-12


def _fit(digits, loss="ce", labels=None, epochs=6, seed=0, **kw):
    torch.manual_seed(seed)
    model = make_model("mlp", 10, 1, 8)
    labels = labels or NoisyLabels(digits.y_train, torch.zeros_like(digits.y_train, dtype=torch.bool))
    return model, fit(model, digits, noisyloss.make_loss(loss, **kw), labels, epochs=epochs, progress=False,
                      seed=seed)


def test_fit_learns_clean_digits_and_is_deterministic(digits):
    model, res = _fit(digits, epochs=6)
    h = res.history
    assert [e["epoch"] for e in h] == list(range(1, 7))
    assert h[-1]["train_loss"] < 0.5 * h[0]["train_loss"]
    assert h[-1]["test_acc"] >= 0.9
    assert all(0 < a["seconds"] < b["seconds"] for a, b in zip(h, h[1:]))
    assert h[-1]["memorised"] is None and h[-1]["corrected"] is None
    # the last entry agrees with an independent evaluation of the returned model
    pred = predict(model, digits.x_test).argmax(1)
    assert h[-1]["test_acc"] == pytest.approx(float((pred == digits.y_test).double().mean()))
    per_class = [float((pred[digits.y_test == c] == c).double().mean()) for c in range(10)]
    np.testing.assert_allclose(res.per_class_acc, per_class, atol=1e-6)
    _, again = _fit(digits, epochs=6)
    strip = lambda hist: [{k: v for k, v in e.items() if k != "seconds"} for e in hist]  # noqa: E731
    assert strip(again.history) == strip(h)


def test_fit_measures_memorisation_against_the_model(digits):
    g = torch.Generator().manual_seed(3)
    flipped = torch.rand(len(digits.y_train), generator=g) < 0.3
    noisy = torch.where(flipped, (digits.y_train + 1 + torch.randint(0, 9, digits.y_train.shape, generator=g)) % 10,
                        digits.y_train)
    labels = NoisyLabels(noisy, noisy != digits.y_train)
    model, res = _fit(digits, labels=labels, epochs=4)
    pred = predict(model, digits.x_train).argmax(1)
    c = labels.corrupted
    last = res.history[-1]
    assert last["fit_clean"] == pytest.approx(float((pred[~c] == noisy[~c]).double().mean()))
    assert last["memorised"] == pytest.approx(float((pred[c] == noisy[c]).double().mean()))
    assert last["corrected"] == pytest.approx(float((pred[c] == digits.y_train[c]).double().mean()))
    assert last["corrected"] > last["memorised"]  # 4 epochs: clean patterns first (Arpit et al., 2017)


def test_fit_advances_online_label_smoothing(digits):
    torch.manual_seed(0)
    loss = noisyloss.make_loss("ols", num_classes=10)
    before = loss.soft_labels.clone()
    labels = NoisyLabels(digits.y_train, torch.zeros_like(digits.y_train, dtype=torch.bool))
    fit(make_model("mlp", 10, 1, 8), digits, loss, labels, epochs=2, progress=False)
    assert not torch.equal(loss.soft_labels, before)
    torch.testing.assert_close(loss.soft_labels.sum(1), torch.ones(10))


def test_fit_validates_its_inputs(digits):
    labels = NoisyLabels(digits.y_train[:10], torch.zeros(10, dtype=torch.bool))
    model, loss = make_model("mlp", 10, 1, 8), noisyloss.make_loss("ce")
    with pytest.raises(ValueError, match="labels must have 1347"):
        fit(model, digits, loss, labels, epochs=1, progress=False)
    with pytest.raises(ValueError, match="epochs"):
        fit(model, digits, loss, labels, epochs=0, progress=False)
