"""train.fit: optimizer and scheduler factories, gradient clipping, the index protocol of stateful
losses (needs_index, next_epoch(EpochEnd)), feature vectors, and no global torch setting touched."""
from __future__ import annotations

from typing import List

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

import noisyloss
from noisyloss import EpochEnd, train
from noisyloss.data import ImageData, load_dataset
from noisyloss.models import make_model
from noisyloss.train import NoisyLabels, fit, predict


@pytest.fixture(scope="module")
def digits() -> ImageData:
    return load_dataset("digits", device="cpu")


def _clean(data: ImageData) -> NoisyLabels:
    return NoisyLabels(data.y_train, torch.zeros_like(data.y_train, dtype=torch.bool))


def _linear(data: ImageData) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(data.x_train[0].numel(), data.num_classes))


def _features(data: ImageData) -> ImageData:
    """The digits as 64-dimensional feature vectors (N, D)."""
    return ImageData("digits-features", data.x_train.flatten(1), data.y_train, data.x_test.flatten(1), data.y_test,
                     data.num_classes, data.classes, data.y_train_clean, hflip=False)


class _Spy:
    """An optimizer factory that keeps what it built."""

    def __init__(self, factory: train.OptimizerFactory) -> None:
        self.factory, self.built = factory, []

    def __call__(self, params):
        self.built.append(self.factory(params))
        return self.built[-1]


class _LrRecorder(nn.Module):
    """Cross entropy that records the optimizer's learning rate at every step."""

    def __init__(self, spy: _Spy) -> None:
        super().__init__()
        self.spy, self.lrs = spy, []

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        self.lrs.append(self.spy.built[0].param_groups[0]["lr"])
        return F.cross_entropy(logits, target)


# ----------------------------------------------------------------------------------------------
# optimizer and scheduler factories
# ----------------------------------------------------------------------------------------------
def test_a_custom_optimizer_is_the_one_that_trains(digits):
    spy = _Spy(lambda params: torch.optim.Adam(params, lr=1e-3))
    model = _linear(digits)
    fit(model, digits, noisyloss.make_loss("ce"), _clean(digits), epochs=2, batch_size=256, optimizer=spy,
        scheduler=None, progress=False)
    (opt,) = spy.built
    assert isinstance(opt, torch.optim.Adam)
    steps = 2 * (len(digits.y_train) // 256)
    for p in model.parameters():
        assert float(opt.state[p]["step"]) == steps and opt.state[p]["exp_avg_sq"].abs().sum() > 0
    assert opt.param_groups[0]["lr"] == 1e-3  # scheduler=None: a constant learning rate


def test_the_learning_rate_follows_a_custom_schedule(digits):
    seen_total: List[int] = []

    def halving(optimizer, total_steps):
        seen_total.append(total_steps)
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 0.5 ** step)

    spy = _Spy(train.sgd(lr=0.2, momentum=0.0, weight_decay=0.0))
    loss = _LrRecorder(spy)
    fit(_linear(digits), digits, loss, _clean(digits), epochs=3, batch_size=449, optimizer=spy, scheduler=halving,
        progress=False)
    assert seen_total == [9]  # 3 epochs of 1347 // 449 = 3 steps
    assert loss.lrs == pytest.approx([0.2 * 0.5 ** s for s in range(9)])


def test_the_default_is_nesterov_sgd_under_the_triangular_schedule(digits):
    spy = _Spy(train.sgd())
    loss = _LrRecorder(spy)
    fit(_linear(digits), digits, loss, _clean(digits), epochs=2, batch_size=256, optimizer=spy, progress=False)
    group = spy.built[0].param_groups[0]
    assert isinstance(spy.built[0], torch.optim.SGD)
    assert (group["momentum"], group["nesterov"], group["weight_decay"]) == (0.9, True, 5e-4)
    total = 2 * (1347 // 256)
    assert loss.lrs == pytest.approx([0.1 * train.triangular_lr(s, total) for s in range(total)])


def test_lr_and_weight_decay_are_shorthands_for_the_default_optimizer(digits):
    def history(**kw):
        res = fit(make_model("mlp", 10, 1, 8), digits, noisyloss.make_loss("ce"), _clean(digits), epochs=2,
                  progress=False, **kw)
        return [{k: v for k, v in e.items() if k != "seconds"} for e in res.history]

    torch.manual_seed(0)
    default = history()
    torch.manual_seed(0)
    assert history(optimizer=train.sgd(), scheduler=train.triangular()) == default
    torch.manual_seed(0)
    short = history(lr=0.03, weight_decay=0.0)
    torch.manual_seed(0)
    assert history(optimizer=train.sgd(lr=0.03, weight_decay=0.0)) == short != default
    with pytest.raises(ValueError, match="lr"):
        history(optimizer=train.sgd(), lr=0.1)


def test_factories_check_their_arguments():
    with pytest.raises(ValueError, match="lr"):
        train.sgd(lr=0.0)
    with pytest.raises(ValueError, match="momentum"):
        train.sgd(momentum=1.0)
    with pytest.raises(TypeError, match="weight_decay"):
        train.sgd(weight_decay="none")
    with pytest.raises(ValueError, match="warmup"):
        train.triangular(warmup=1.0)


# ----------------------------------------------------------------------------------------------
# gradient clipping
# ----------------------------------------------------------------------------------------------
class _Scaled(nn.Module):
    """A thousand times cross entropy: gradients far above any clipping threshold."""

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return 1000.0 * F.cross_entropy(logits, target)


@pytest.mark.parametrize("grad_clip", [None, 0.5])
def test_grad_clip_bounds_the_update(digits, grad_clip):
    model = _linear(digits)
    before = nn.utils.parameters_to_vector(model.parameters()).detach().clone()
    # one step of plain SGD at lr 1: the update is minus the (clipped) gradient
    fit(model, digits, _Scaled(), _clean(digits), epochs=1, batch_size=len(digits.y_train),
        optimizer=train.sgd(lr=1.0, momentum=0.0, weight_decay=0.0), scheduler=None, grad_clip=grad_clip,
        progress=False)
    step = float((nn.utils.parameters_to_vector(model.parameters()).detach() - before).norm())
    if grad_clip is None:
        assert step > 100.0
    else:
        assert step == pytest.approx(grad_clip, rel=1e-4)


def test_grad_clip_must_be_positive(digits):
    with pytest.raises(ValueError, match="grad_clip"):
        fit(_linear(digits), digits, _Scaled(), _clean(digits), epochs=1, grad_clip=0.0, progress=False)


# ----------------------------------------------------------------------------------------------
# the index protocol
# ----------------------------------------------------------------------------------------------
class _IndexRecorder(nn.Module):
    """A loss that asks for the sample indices and checks that they are those of the batch (the
    logits too, when the batches are not augmented)."""

    needs_index = True

    def __init__(self, model: nn.Module, data: ImageData, labels: Tensor, augmented: bool = False) -> None:
        super().__init__()
        self.model, self.data, self.labels = [model], data, labels  # a list: not a submodule
        self.augmented = augmented
        self.batches: List[Tensor] = []
        self.ends: List[tuple] = []

    def forward(self, logits: Tensor, target: Tensor, index: Tensor) -> Tensor:
        assert index.dtype == torch.int64 and index.shape == target.shape and index.device == logits.device
        assert torch.equal(target, self.labels[index])
        if not self.augmented:
            with torch.no_grad():  # the logits are the model's outputs for the training samples at index
                torch.testing.assert_close(logits, self.model[0](self.data.x_train[index]))
        self.batches.append(index.clone())
        return F.cross_entropy(logits, target)

    def next_epoch(self, end: EpochEnd) -> None:
        self.ends.append((end, predict(self.model[0], self.data.x_train)))


def test_a_loss_that_needs_the_index_gets_the_batch_positions(digits):
    g = torch.Generator().manual_seed(1)
    noisy = torch.randint(0, 10, digits.y_train.shape, generator=g)
    labels = NoisyLabels(noisy, noisy != digits.y_train)
    model = _linear(digits)
    loss = _IndexRecorder(model, digits, noisy)
    fit(model, digits, loss, labels, epochs=2, batch_size=449, augmentation=False, progress=False)
    assert len(loss.batches) == 2 * 3
    for epoch in range(2):  # 1347 = 3 * 449: each epoch visits every sample once
        visited = torch.cat(loss.batches[3 * epoch: 3 * epoch + 3])
        assert torch.equal(visited.sort().values, torch.arange(1347))
    assert not torch.equal(loss.batches[0], loss.batches[3])  # a new order each epoch


def test_the_kept_samples_of_an_epoch_are_distinct(digits):
    model = _linear(digits)
    loss = _IndexRecorder(model, digits, digits.y_train)
    fit(model, digits, loss, _clean(digits), epochs=1, batch_size=256, augmentation=False, progress=False)
    visited = torch.cat(loss.batches)
    assert len(visited) == 5 * 256 and len(visited.unique()) == 5 * 256  # the ragged last 67 dropped
    assert int(visited.min()) >= 0 and int(visited.max()) < 1347


def test_next_epoch_gets_the_epoch_end(digits):
    model = _linear(digits)
    loss = _IndexRecorder(model, digits, digits.y_train, augmented=True)
    fit(model, digits, loss, _clean(digits), epochs=3, progress=False)  # augmented batches, un-augmented end
    assert [(end.epoch, end.epochs) for end, _ in loss.ends] == [(1, 3), (2, 3), (3, 3)]
    for end, logits in loss.ends:
        assert isinstance(end, EpochEnd) and end.train_logits.dtype == torch.float32
        assert torch.equal(end.train_logits, logits)  # eval-mode logits of the un-augmented training set
    assert not torch.equal(loss.ends[0][0].train_logits, loss.ends[-1][0].train_logits)


def test_a_loss_without_the_attribute_gets_two_arguments(digits):
    calls = []

    class TwoArgs(nn.Module):
        def forward(self, logits, target):
            calls.append(1)
            return F.cross_entropy(logits, target)

    fit(_linear(digits), digits, TwoArgs(), _clean(digits), epochs=1, batch_size=449, progress=False)
    assert len(calls) == 3


# ----------------------------------------------------------------------------------------------
# feature vectors
# ----------------------------------------------------------------------------------------------
def test_fit_trains_on_feature_vectors(digits):
    feats = _features(digits)
    torch.manual_seed(0)
    model = make_model("mlp", 10, 64, 1)
    res = fit(model, feats, noisyloss.make_loss("ce"), _clean(feats), epochs=6, progress=False)
    assert res.history[-1]["test_acc"] >= 0.9
    pred = predict(model, feats.x_test).argmax(1)
    assert res.history[-1]["test_acc"] == pytest.approx(float((pred == feats.y_test).double().mean()))


def test_augmentation_needs_images(digits):
    feats = _features(digits)
    with pytest.raises(ValueError, match="augmentation"):
        fit(make_model("mlp", 10, 64, 1), feats, noisyloss.make_loss("ce"), _clean(feats), epochs=1,
            augmentation=True, progress=False)


def test_augmentation_defaults_to_on_for_images(digits):
    def history(**kw):
        torch.manual_seed(0)
        res = fit(make_model("mlp", 10, 1, 8), digits, noisyloss.make_loss("ce"), _clean(digits), epochs=2,
                  progress=False, **kw)
        return [e["train_loss"] for e in res.history]

    default = history()
    assert default == history(augmentation=True) != history(augmentation=False)


# ----------------------------------------------------------------------------------------------
# global settings
# ----------------------------------------------------------------------------------------------
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_fit_leaves_cudnn_benchmark_alone(digits):
    saved = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = False
    try:
        data = load_dataset("digits", device="cuda")
        fit(make_model("cnn", 10, 1, 8), data, noisyloss.make_loss("ce"), _clean(data), epochs=1, progress=False)
        assert torch.backends.cudnn.benchmark is False
    finally:
        torch.backends.cudnn.benchmark = saved


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_a_cuda_training_epoch_never_waits_for_the_host():
    data = load_dataset("digits", device="cuda")
    torch.manual_seed(0)
    model = make_model("cnn", 10, 1, 8).cuda().to(memory_format=torch.channels_last)
    loss = noisyloss.ELRLoss(num_examples=len(data.y_train), num_classes=10).cuda()  # needs_index
    opt = train.sgd()(model.parameters())
    sched = train.triangular()(opt, 10)
    gen = torch.Generator(device="cuda").manual_seed(0)
    batches = torch.randperm(len(data.y_train), device="cuda", generator=gen)[:5 * 256].view(5, 256)

    def epoch():
        return train.train_epoch(model, loss, data.x_train, data.y_train, batches, opt, sched, grad_clip=5.0,
                                 transform=lambda x: train.augment(x, pad=1, hflip=False, generator=gen))

    epoch()  # first calls: lazy initialisation
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        mean_loss = epoch()
    finally:
        torch.cuda.set_sync_debug_mode(0)
    assert torch.isfinite(mean_loss)
