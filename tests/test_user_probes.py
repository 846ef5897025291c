"""What a new user met trying the losses, noise models, analysis and metrics: each test is one
misuse or edge case that gave a wrong result or an error from deep inside torch."""
import functools

import numpy as np
import pytest
import torch

import noisyloss
from noisyloss import analysis, metrics, noise, regression
from noisyloss import functional as NF
from noisyloss.losses import ELRLoss, EpochEnd, OnlineLabelSmoothing, TruncatedGCELoss, l1_penalty


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ---- metrics: labels must be classes of the scores ----
def test_accuracy_and_calibration_refuse_labels_outside_the_classes_of_the_scores():
    probs = torch.randn(6, 3, generator=_gen()).softmax(dim=1)
    labels = torch.tensor([0, 1, 2, 3, 4, 5])  # classes 3..5 do not exist: was a silent accuracy or ECE
    for metric in (metrics.accuracy, metrics.ece, metrics.reliability):
        with pytest.raises(ValueError, match=r"labels must be in \[0, 2\]"):
            metric(probs, labels)
    assert metrics.accuracy(probs.argmax(dim=1), labels) == pytest.approx(
        float((probs.argmax(dim=1) == labels).double().mean()))  # predictions as indices: no C to check


def test_per_class_accuracy_refuses_scores_for_another_number_of_classes():
    logits, labels = torch.randn(8, 5, generator=_gen()), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    with pytest.raises(ValueError, match="num_classes = 3"):
        metrics.per_class_accuracy(logits, labels, 3)


# ---- analysis ----
def test_label_probs_checks_its_labels():
    logits = torch.randn(4, 3, generator=_gen())
    with pytest.raises(TypeError, match="labels must be an integer tensor"):
        analysis.label_probs(logits, torch.tensor([0.0, 1.0, 2.0, 0.5]))  # was truncated to classes silently
    with pytest.raises(ValueError, match=r"labels must be in \[0, 2\]"):
        analysis.label_probs(logits, torch.tensor([0, 1, 5, 0]))
    with pytest.raises(TypeError, match="logits must be a floating torch.Tensor"):
        analysis.label_probs(logits.numpy(), torch.tensor([0, 1, 2, 0]))
    expected = logits.softmax(dim=1)[torch.arange(4), torch.tensor([0, 1, 2, 0])]
    torch.testing.assert_close(analysis.label_probs(logits, torch.tensor([0, 1, 2, 0], dtype=torch.int32)), expected)


def test_analysis_takes_a_loss_module_as_its_spec():
    p_y = np.array([0.1, 0.5, 0.9])
    module = analysis.loss_vs_py(noisyloss.GCELoss(q=0.5), p_y)
    spec = analysis.loss_vs_py("gce:q=0.5", p_y)
    np.testing.assert_allclose(module.loss, spec.loss)
    np.testing.assert_allclose(module.grad_y, spec.grad_y)
    assert analysis.symmetry_check(noisyloss.GCELoss(q=1.0), n=50, generator=_gen()).is_symmetric()
    with pytest.raises(TypeError, match="loss must be a spec string"):
        analysis.symmetry_check(3)


def test_curves_take_points_that_require_grad():
    p_y = torch.tensor([0.2, 0.7], requires_grad=True)
    np.testing.assert_allclose(analysis.loss_vs_py("mae", p_y).loss, [0.8, 0.3])
    values, slopes = regression.loss_curve("mse", torch.tensor([1.0, -2.0], requires_grad=True))
    np.testing.assert_allclose(values, [1.0, 4.0])
    np.testing.assert_allclose(slopes, [2.0, -4.0])


@pytest.mark.parametrize("call", [
    lambda g: noise.corrupt(torch.tensor([0, 1, 1]), noise.symmetric(2, 0.5), generator=g),
    lambda g: noise.nearest_example_labels(torch.randn(6, 2), torch.tensor([0, 1, 0, 1, 0, 1]), 2, generator=g),
    lambda g: analysis.symmetry_check("mae", n=4, generator=g),
    lambda g: analysis.noisy_risk_decomposition("mae", 0.2, n=4, generator=g),
    lambda g: regression.sinc_data(10, generator=g),
], ids=["corrupt", "nearest_example_labels", "symmetry_check", "noisy_risk_decomposition", "sinc_data"])
def test_a_seed_given_as_the_generator_is_refused_by_name(call):
    with pytest.raises(TypeError, match="generator must be a torch.Generator or None, got int"):
        call(0)


def test_nearest_example_labels_needs_a_number_of_classes():
    with pytest.raises(TypeError, match="num_classes must be an int"):
        noise.nearest_example_labels(torch.randn(6, 2), torch.tensor([0, 1, 0, 1, 0, 1]), None)


# ---- stateful losses ----
@pytest.mark.parametrize("make, needs_index", [
    (lambda: ELRLoss(num_examples=4, num_classes=3), True),
    (lambda: OnlineLabelSmoothing(num_classes=3), False),
    (lambda: TruncatedGCELoss(num_examples=4), True),
], ids=["elr", "ols", "gce_prune"])
def test_a_stateful_loss_left_on_another_device_than_the_logits_says_so(make, needs_index):
    logits = torch.empty(4, 3, device="meta")  # a device other than the loss's state (cpu), as cuda would be
    target = torch.empty(4, dtype=torch.long, device="meta")
    args = (logits, target, torch.empty(4, dtype=torch.long, device="meta")) if needs_index else (logits, target)
    with pytest.raises(ValueError, match=r"logits is on meta but the state of \w+ is on cpu.*loss.to\('meta'\)"):
        make()(*args)


def test_pruning_refuses_train_logits_that_are_not_one_row_per_training_sample():
    loss = TruncatedGCELoss(num_examples=4, q=0.5, k=0.4, start_prune=2)
    loss(torch.randn(4, 3, generator=_gen()), torch.tensor([0, 1, 2, 2]), torch.arange(4))
    with pytest.raises(ValueError, match=r"train_logits must have shape \(num_examples, C\) = \(4, C\)"):
        loss.next_epoch(EpochEnd(epoch=1, epochs=3, train_logits=torch.randn(5, 3)))  # was pruned from rows 0-3
    with pytest.raises(ValueError, match=r"the labels the loss saw must be in \[0, 1\]"):
        loss.next_epoch(EpochEnd(epoch=1, epochs=3, train_logits=torch.randn(4, 2)))
    loss.next_epoch(EpochEnd(epoch=1, epochs=3, train_logits=torch.randn(4, 3)))


# ---- arguments that must be callables ----
def test_callables_are_checked_where_they_are_given():
    z, y = torch.randn(2, 3, generator=_gen()), torch.tensor([0, 2])
    with pytest.raises(TypeError, match="active must be callable, got str"):
        NF.apl(z, y, active="nce", passive=NF.rce)
    with pytest.raises(TypeError, match="optimizer must be callable, got NoneType"):
        l1_penalty(None, 1e-3)
    x, target, _ = regression.sinc_data(8, generator=_gen())
    with pytest.raises(TypeError, match="loss must be callable, got int"):
        regression.fit_regression(x, target, 3, epochs=1)
    assert NF.apl(z, y, active=NF.nce, passive=functools.partial(NF.rce, A=-2.0)).isfinite()


# ---- margin losses ----
def test_focal_margin_gradient_is_finite_at_the_largest_float32_margins():
    m = torch.tensor([-3e38, -1e4, 0.0, 1e4, 3e38], requires_grad=True)
    loss = regression.focal_margin(m, gamma=2.0)
    loss.sum().backward()
    assert torch.isfinite(loss).all() and torch.isfinite(m.grad).all()
    assert m.grad[1] == pytest.approx(-1.0)


# ---- figures (the book extra) ----
def test_viz_without_plotly_names_the_extra_to_install(monkeypatch):
    import importlib
    import sys
    monkeypatch.delitem(sys.modules, "noisyloss.viz", raising=False)
    for name in ("plotly", "plotly.graph_objects", "plotly.subplots"):
        monkeypatch.setitem(sys.modules, name, None)  # as in the core install
    with pytest.raises(ModuleNotFoundError, match=r"pip install 'noisyloss\[book\]'"):
        importlib.import_module("noisyloss.viz")


def test_figures_refuse_data_that_does_not_match_its_labels():
    viz = pytest.importorskip("noisyloss.viz")
    T = noise.make_transition("sym:0.4", 4)
    with pytest.raises(ValueError, match="labels must name the 4 columns of matrix, got 2 labels"):
        viz.heatmap_figure(T, labels=["a", "b"], title="T")  # was a figure with two named columns
    assert viz.heatmap_figure(T.clone().requires_grad_(True), title="T").data[0].z[0][0] == pytest.approx(0.6)
    with pytest.raises(ValueError, match=r"one value per category \(2\).*\['ce'\]"):
        viz.bar_figure({"ce": [0.1, 0.2, 0.3], "mae": [0.1, 0.2]}, ["a", "b"], title="x")
    with pytest.raises(ValueError, match="snapshots must hold p_y of the 50 samples of corrupted"):
        viz.py_histogram_figure({1: np.full(100, 0.5)}, np.zeros(50, dtype=bool), title="x")
    with pytest.raises(ValueError, match="include must name at least one of"):
        viz.loss_curves_figure("gce:q={}", [0.5], param_name="q", title="x", include=())


def test_reduce_loss_and_a_stateful_loss_reduction_are_checked_at_the_call():
    with pytest.raises(ValueError, match=r"reduction must be one of \('mean', 'sum', 'none'\), got 'avg'"):
        NF.reduce_loss(torch.ones(3), "avg")  # was the unreduced losses
    loss = ELRLoss(num_examples=4, num_classes=3)
    loss.reduction = "avg"  # set after construction
    with pytest.raises(ValueError, match="reduction must be one of"):
        loss(torch.randn(2, 3), torch.tensor([0, 1]), torch.tensor([0, 1]))


def test_regression_and_margin_losses_name_a_numpy_array_as_such():
    with pytest.raises(TypeError, match="pred must be a floating torch.Tensor, got ndarray"):
        regression.huber(np.zeros(3, dtype=np.float32), torch.zeros(3))  # said "got float32"
    with pytest.raises(TypeError, match=r"m \(the margin y\*f\(x\)\) must be a floating torch.Tensor, got ndarray"):
        regression.hinge(np.zeros(3, dtype=np.float32))
    with pytest.raises(ValueError, match="loss must be element-wise.*got float"):
        regression.loss_curve(lambda x: 1.0, [0.0, 1.0])


def test_figure_names_and_a_mapping_of_matrices_are_checked():
    viz = pytest.importorskip("noisyloss.viz")
    with pytest.raises(TypeError, match="spec must be a str, got int"):
        viz.loss_label(3)
    with pytest.raises(ValueError, match=r"matrices of one shape\), got shapes \[\(3, 3\), \(4, 4\)\]"):
        viz.heatmap_figure({0: torch.eye(3), 1: torch.eye(4)}, title="T", param_name="step")


def test_analysis_takes_the_module_of_an_apl_spec_which_has_no_functional_form():
    spec = "apl:active=nce,passive=rce:A=-2,alpha=2,beta=0.5"  # functional_loss(spec) says: use make_loss()
    result = analysis.symmetry_check(noisyloss.make_loss(spec), num_classes=4, n=20, generator=_gen())
    assert result.is_symmetric() and result.mean == pytest.approx(2 * 1 + 0.5 * 2 * 3)  # 2 NCE + 0.5 RCE sums


def test_corrupt_given_a_noise_spec_points_to_make_transition():
    with pytest.raises(TypeError, match=r"got the str 'sym:0.4': a noise spec's matrix is make_transition\('sym:0.4'"):
        noise.corrupt(torch.tensor([0, 1, 2]), "sym:0.4")


@pytest.mark.parametrize("loss", [ELRLoss(num_examples=4, num_classes=10), OnlineLabelSmoothing(num_classes=10)],
                         ids=["elr", "ols"])
def test_analysis_of_a_stateful_loss_module_says_why_not(loss):
    with pytest.raises(TypeError, match=rf"{type(loss).__name__} keeps per-sample or per-epoch state"):
        analysis.loss_vs_py(loss, [0.5])  # was "forward() got an unexpected keyword argument 'reduction'"


def test_curve_figures_and_reliability_figures_check_what_they_draw():
    viz = pytest.importorskip("noisyloss.viz")
    pytest.importorskip("ipywidgets")
    with pytest.raises(ValueError, match=r"include entries must be in \('loss', 'grad_y', 'grad_norm'\), got 'los'"):
        viz.live_loss_curves("gce:q={}", [0.1, 0.5], param_name="q", include=("los",))  # failed at the first draw
    with pytest.raises(ValueError, match="values must be a non-empty sequence"):
        viz.live_loss_curves("gce:q={}", [], param_name="q")
    with pytest.raises(TypeError, match="bins of metrics.reliability.*got Tensor for 'ce'"):
        viz.reliability_figure({"ce": torch.full((4, 2), 0.5)})


def test_a_correction_loss_called_on_logits_of_other_classes_names_the_logits():
    loss = noisyloss.losses.ForwardCorrectionLoss(T=torch.eye(4))  # no num_classes given
    with pytest.raises(ValueError, match=r"T must be a \(3, 3\) transition matrix for logits with C=3, got shape"):
        loss(torch.randn(2, 3), torch.tensor([0, 1]))  # said "T is 4x4 but num_classes=3"


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_anchor_estimate_takes_half_precision_softmax_outputs(dtype):
    """A model trained in mixed precision gives bf16/fp16 probabilities: their rows sum to 1 only within
    the dtype's rounding, which the check allows (and no more)."""
    logits = torch.randn(500, 10, generator=torch.Generator().manual_seed(0)) * 3
    probs = logits.to(dtype).softmax(dim=1)
    assert float((probs.double().sum(dim=1) - 1).abs().max()) > 1e-4  # beyond float32's tolerance
    T = noise.estimate_transition_anchor(probs)
    anchors = probs.double().argmax(dim=0)  # the paper's anchor of class i: the sample with the largest p_i
    torch.testing.assert_close(T.double(), probs.double()[anchors])
    off = probs.clone()
    off[0] = off[0] * 1.02  # a row summing to 1.02: not rounding
    with pytest.raises(ValueError, match="rows of probs must sum to 1"):
        noise.estimate_transition_anchor(off)
