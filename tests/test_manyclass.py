"""The many-class CPU benchmark (data.make_synthetic, synth10/synth100), the toy blobs, and the
analysis and figures of the chapter "Robustness versus underfitting"."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from noisyloss import analysis, data, experiments, viz


class TestSynthetic:
    def test_shapes_balance_and_determinism(self):
        x_tr, y_tr, x_te, y_te = data.make_synthetic(100, 3000, 500, seed=3)
        assert x_tr.shape == (3000, 1, 8, 8) and x_te.shape == (500, 1, 8, 8)
        assert x_tr.dtype == np.float32 and y_tr.dtype == np.int64
        assert np.array_equal(np.bincount(y_tr), np.full(100, 30))
        again = data.make_synthetic(100, 3000, 500, seed=3)
        assert all(np.array_equal(a, b) for a, b in zip((x_tr, y_tr, x_te, y_te), again))
        other = data.make_synthetic(100, 3000, 500, seed=4)
        assert not np.array_equal(x_tr, other[0])

    def test_smaller_sets_are_prefixes(self):
        full = data.make_synthetic(10, 500, 200)
        small = data.make_synthetic(10, 120, 50)
        assert np.array_equal(full[0][:120], small[0]) and np.array_equal(full[2][:50], small[2])

    def test_classes_carry_signal_and_overlap(self):
        # nearest class mean in feature space (estimated on train) beats chance by far on test, but is not perfect
        x_tr, y_tr, x_te, y_te = data.make_synthetic(10, 2000, 1000)
        means = np.stack([x_tr[y_tr == c].reshape(-1, 64).mean(0) for c in range(10)])
        pred = ((x_te.reshape(-1, 1, 64) - means[None]) ** 2).sum(-1).argmin(1)
        acc = (pred == y_te).mean()
        assert 0.3 < acc < 0.99

    def test_load_dataset_quick_is_prefix_of_full(self):
        quick = data.load_dataset("synth100", quick=True)
        full = data.load_dataset("synth100")
        assert (len(quick.y_train), len(quick.y_test)) == data.SYNTH_QUICK_SIZES
        assert (len(full.y_train), len(full.y_test)) == data.SYNTH_SIZES
        assert quick.num_classes == 100 and data.dataset_info("synth100") == (100, 1, 8)
        assert torch.equal(quick.y_train, full.y_train[: len(quick.y_train)])
        assert not quick.has_label_noise and not quick.hflip
        # normalised with the training statistics, like the other datasets
        assert abs(float(full.x_train.mean())) < 1e-4 and abs(float(full.x_train.std()) - 1) < 1e-3

    def test_runner_trains_on_it(self):
        cfg = experiments.RunConfig(dataset="synth10", model="mlp", loss="ce", noise="sym:0.4", epochs=2, augment=False,
                                    quick=True, train_subset=400)
        result = experiments.run(cfg, device="cpu", progress=False)
        assert len(result.history) == 2 and 0.0 <= result.history[-1]["test_acc"] <= 1.0

    @pytest.mark.parametrize("kwargs, exc, name", [
        (dict(num_classes=1, n_train=10, n_test=5), ValueError, "num_classes"),
        (dict(num_classes=10, n_train=5, n_test=5), ValueError, "n_train"),
        (dict(num_classes=10, n_train=10, n_test=0), ValueError, "n_test"),
        (dict(num_classes=10, n_train=10, n_test=5, spread=0.0), ValueError, "spread"),
        (dict(num_classes=10, n_train=10, n_test=5, gain=float("nan")), ValueError, "gain"),
        (dict(num_classes=10, n_train=10.0, n_test=5), TypeError, "n_train must be an int, got float"),
        (dict(num_classes=10, n_train=10, n_test=5, spread="1"), TypeError, "spread must be a real number"),
    ])
    def test_bad_arguments_are_named(self, kwargs, exc, name):
        with pytest.raises(exc, match=name):
            data.make_synthetic(**kwargs)


class TestToyBlobs:
    def test_layout(self):
        toy = data.toy_blobs(20, seed=1)
        assert toy.x_train.shape == (60, 2, 1, 1) and toy.x_test.shape == (60, 2, 1, 1)
        assert torch.equal(torch.bincount(toy.y_train), torch.tensor([20, 20, 20]))
        # class means near the three unit-circle centres at 90, 210, 330 degrees
        x = toy.x_train.view(-1, 2)
        for c, deg in enumerate((90, 210, 330)):
            centre = torch.tensor([np.cos(np.deg2rad(deg)), np.sin(np.deg2rad(deg))], dtype=torch.float32)
            assert torch.linalg.norm(x[toy.y_train == c].mean(0) - centre) < 0.3
        assert experiments.make_labels(toy, "sym:0.4", 0).corrupted.any()

    def test_bad_arguments(self):
        with pytest.raises(ValueError, match="n_per_class"):
            data.toy_blobs(0)
        with pytest.raises(ValueError, match="spread"):
            data.toy_blobs(5, spread=-1.0)
        with pytest.raises(TypeError, match="n_per_class must be an int, got float"):
            data.toy_blobs(5.0)


class TestGradientWeight:
    P = np.array([0.003, 0.01, 0.2, 0.5, 0.9])

    @pytest.mark.parametrize("spec, formula", [
        ("ce", lambda p: np.ones_like(p)),
        ("mae", lambda p: p),
        ("gce:q=0.7", lambda p: p ** 0.7),
        ("gce:q=0.3", lambda p: p ** 0.3),
        ("sce:alpha=0.1,beta=1", lambda p: 0.1 + 4.0 * p),
        ("sce:alpha=6,beta=0.1,A=-9.2103", lambda p: 6 + 0.1 * 9.2103 * p),
        ("rce:A=-4", lambda p: 4.0 * p),
    ])
    def test_against_formula(self, spec, formula):
        for C in (3, 10, 100):
            np.testing.assert_allclose(analysis.gradient_weight(spec, self.P, num_classes=C), formula(self.P), rtol=1e-9,
                                       atol=1e-12)

    def test_truncation_is_zero_below_k(self):
        w = analysis.gradient_weight("gce:q=0.7,k=0.5", self.P, num_classes=10)
        np.testing.assert_allclose(w, np.where(self.P <= 0.5, 0.0, self.P ** 0.7), atol=1e-12)

    def test_nce_weight_shrinks_with_classes(self):
        # NCE = log p_y / sum_k log p_k: at the uniform prediction its weight is 1 / (C log C)
        for C in (10, 100):
            w = analysis.gradient_weight("nce", np.array([1.0 / C]), num_classes=C)[0]
            np.testing.assert_allclose(w, 1.0 / (C * np.log(C)), rtol=1e-9)


def test_label_probs():
    logits = torch.tensor([[0.0, 0.0], [np.log(3.0), 0.0]])
    np.testing.assert_allclose(analysis.label_probs(logits, torch.tensor([1, 0])).numpy(), [0.5, 0.75], rtol=1e-6)
    with pytest.raises(ValueError, match="labels"):
        analysis.label_probs(logits, torch.tensor([0]))


class TestSimplexFlow:
    def test_points(self):
        p = analysis.simplex_points(6)
        assert p.shape == (10, 3) and np.allclose(p.sum(1), 1) and (p > 0).all()
        with pytest.raises(ValueError, match="steps"):
            analysis.simplex_points(2)

    def test_ce_flow_is_the_softmax_jacobian_times_e_y_minus_p(self):
        f = analysis.simplex_flow("ce", label=1, steps=8)
        e = np.array([0.0, 1.0, 0.0])
        expected = np.stack([(np.diag(p) - np.outer(p, p)) @ (e - p) for p in f.p])
        np.testing.assert_allclose(f.dp, expected, atol=1e-12)
        np.testing.assert_allclose(f.dp.sum(1), 0.0, atol=1e-12)  # stays on the simplex

    def test_losses_of_p_y_differ_only_by_the_weight(self):
        ce, mae = analysis.simplex_flow("ce", steps=9), analysis.simplex_flow("mae", steps=9)
        np.testing.assert_allclose(mae.grad_z, ce.grad_z * ce.p[:, :1], atol=1e-12)

    def test_label_checked(self):
        with pytest.raises(ValueError, match="label"):
            analysis.simplex_flow("ce", label=3)


class TestFigures:
    def _steps(self, fig):
        return fig.layout.sliders[0].steps

    def test_simplex_flow_figure(self):
        fig = viz.simplex_flow_figure({"CE": "ce", "MAE": "mae"}, steps=6, title="s")
        steps = self._steps(fig)
        assert [s.label for s in steps] == ["CE", "MAE"]
        assert steps[1].args[0]["visible"] == [True, True, False, False, True, True]  # outline, starts; route, ends
        assert len(fig.to_json()) < 100_000

    def test_decision_regions_figure(self):
        xs = ys = np.linspace(-1, 1, 5)
        regions = {1: [np.zeros((5, 5)), np.ones((5, 5))], 2: [np.full((5, 5), 2), np.ones((5, 5))]}
        pts = [(np.zeros((4, 2)), np.array([0, 1, 2, 0]), np.array([0, 1, 0, 0], dtype=bool))] * 2
        fig = viz.decision_regions_figure(xs, ys, regions, ["a", "b"], pts, cols=2, title="r")
        assert [s.label for s in self._steps(fig)] == ["1", "2"]
        assert len(fig.data) == 4 + 4  # two point traces per panel, one heatmap per panel and step
        with pytest.raises(ValueError, match="points"):
            viz.decision_regions_figure(xs, ys, regions, ["a", "b"], pts[:1], cols=2, title="r")

    def test_py_histogram_figure_fractions(self):
        p = np.array([0.05, 0.05, 0.95, 0.55])
        corrupted = np.array([False, True, False, True])
        fig = viz.py_histogram_figure({1: p}, corrupted, (np.array([0.0, 1.0]), np.array([0.0, 2.0])), bins=10,
                                      title="p")
        clean, bad = fig.data[1], fig.data[2]
        assert sum(clean.y) == pytest.approx(1.0) and sum(bad.y) == pytest.approx(1.0)
        assert clean.y[0] == pytest.approx(0.5) and bad.y[5] == pytest.approx(0.5)
        assert max(fig.data[0].y) == pytest.approx(1.0)  # the weight divided by its maximum
        json.loads(fig.to_json())
