"""The spec registry, and online label smoothing against an independent computation of its soft-label
matrix (each loss Module against its function: test_functional.py)."""
import inspect

import numpy as np
import pytest
import torch

import noisyloss
from noisyloss import _checks
from noisyloss import functional as NF
from noisyloss import losses as L
from noisyloss.registry import LOSSES, available_losses, functional_loss, make_loss, parse_spec

ALL_NAMES = {"ce", "ls", "mae", "gce", "rce", "sce", "nce", "nce_rce", "focal", "bootstrap", "peer", "nl", "ols"}


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def batch(n=48, c=5, scale=3.0, seed=0):
    g = gen(seed)
    return scale * torch.randn(n, c, generator=g, dtype=torch.float64), torch.randint(0, c, (n,), generator=g)


# --------------------------------------------------------------------------------------------
# registry
# --------------------------------------------------------------------------------------------
def test_available_losses_lists_everything():
    avail = available_losses()
    assert set(avail) == set(LOSSES) and ALL_NAMES <= set(LOSSES)  # and every loss registered later
    assert "q=0.7" in avail["gce"] and "label_smoothing=0.1" in avail["ls"]
    assert all(isinstance(v, str) and v for v in avail.values())
    assert noisyloss.available_losses is available_losses


@pytest.mark.parametrize("spec,expected", [
    ("gce:q=0.7", ("gce", {"q": 0.7})),
    ("gce:q=0.7,k=0.5", ("gce", {"q": 0.7, "k": 0.5})),
    (" GCE : q = 0.3 , ", ("gce", {"q": 0.3})),
    ("sce:alpha=0.1,beta=1", ("sce", {"alpha": 0.1, "beta": 1})),
    ("ls", ("ls", {"label_smoothing": 0.1})),
    ("ls:eps=0.2", ("ls", {"label_smoothing": 0.2})),
    ("ce:eps=0.05", ("ce", {"label_smoothing": 0.05})),
    ("cross_entropy", ("ce", {})),
    ("negative_learning", ("nl", {})),
    ("bootstrap:hard=true,beta=0.8", ("bootstrap", {"hard": True, "beta": 0.8})),
    ("peer:alpha=0.2,base=mae", ("peer", {"alpha": 0.2, "base": "mae"})),
    ("gce:k=none", ("gce", {"k": None})),
])
def test_parse_spec(spec, expected):
    assert parse_spec(spec) == expected


@pytest.mark.parametrize("spec,cls,params", [
    ("gce:q=0.7", L.GCELoss, {"q": 0.7, "k": None}),
    ("ls", L.CrossEntropyLoss, {"label_smoothing": 0.1}),
    ("bootstrap:hard=true", L.BootstrapLoss, {"beta": 0.95, "hard": True}),
    ("nce_rce:alpha=2", L.NCERCELoss, {"alpha": 2, "beta": 1.0, "A": -4.0}),
    ("rce:A=-6", L.RCELoss, {"A": -6}),
])
def test_make_loss(spec, cls, params):
    loss = make_loss(spec)
    assert type(loss) is cls and loss.params == params and loss.reduction == "mean"


def test_make_loss_overrides_and_ols():
    assert make_loss("gce:q=0.7", q=0.5).params["q"] == 0.5
    assert make_loss("mae", reduction="sum").reduction == "sum"
    ols = make_loss("ols:alpha=0.2", num_classes=10)
    assert isinstance(ols, L.OnlineLabelSmoothing) and ols.num_classes == 10 and ols.alpha == 0.2


@pytest.mark.parametrize("spec,kwargs,exc,match", [
    ("huber", {}, ValueError, "unknown loss 'huber'"),
    ("gce:q", {}, ValueError, "key=value"),
    ("gce:p=1", {}, ValueError, r"does not take \['p'\]"),
    ("gce:q=0", {}, ValueError, r"q must be in \[1e-19, 1\]"),
    ("rce:A=2", {}, ValueError, "A must be in"),
    ("focal:gamma=abc", {}, TypeError, "gamma"),
    ("", {}, TypeError, "loss spec"),
    (None, {}, TypeError, "loss spec"),
    ("ols", {}, TypeError, "num_classes"),
    ("mae", {"reduction": "avg"}, ValueError, "reduction"),
])
def test_make_loss_errors(spec, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        make_loss(spec, **kwargs)


def test_functional_loss():
    z, y = batch()
    f = functional_loss("gce:q=0.7,k=0.2")
    assert torch.equal(f(z, y), NF.gce(z, y, q=0.7, k=0.2))
    assert torch.equal(f(z, y, reduction="none"), NF.gce(z, y, q=0.7, k=0.2, reduction="none"))
    assert torch.equal(functional_loss("ls")(z, y), NF.cross_entropy(z, y, label_smoothing=0.1))
    assert torch.equal(noisyloss.functional_loss("nce_rce")(z, y), NF.nce_rce(z, y))
    with pytest.raises(ValueError, match="stateful"):
        functional_loss("ols", num_classes=5)


# --------------------------------------------------------------------------------------------
# online label smoothing
# --------------------------------------------------------------------------------------------
def softmax_np(z: torch.Tensor) -> np.ndarray:
    x = z.double().numpy()
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def ols_reference(z: torch.Tensor, y: torch.Tensor, S: np.ndarray, alpha: float) -> np.ndarray:
    log_p = np.log(softmax_np(z))
    n = len(y)
    hard = -log_p[np.arange(n), y.numpy()]
    soft = -(S[y.numpy()] * log_p).sum(axis=1)
    return alpha * hard + (1 - alpha) * soft


def test_ols_first_epoch_is_label_smoothing_over_other_classes():
    C, alpha, s = 4, 0.3, 0.2
    ols = L.OnlineLabelSmoothing(C, alpha=alpha, smoothing=s, reduction="none")
    S = np.full((C, C), s / (C - 1))
    np.fill_diagonal(S, 1 - s)
    np.testing.assert_allclose(ols.soft_labels.numpy(), S, rtol=1e-6)
    z, y = batch(c=C)
    np.testing.assert_allclose(ols(z, y).detach().numpy(), ols_reference(z, y, S, alpha), rtol=1e-6)


def test_ols_next_epoch_uses_mean_prediction_of_correct_samples():
    C, alpha = 4, 0.5
    ols = L.OnlineLabelSmoothing(C, alpha=alpha, smoothing=0.1)
    S0 = ols.soft_labels.clone().numpy()
    z1, y1 = batch(n=40, c=C, seed=1)
    z2, y2 = batch(n=30, c=C, seed=2)
    # class 3: make sure no sample of it is classified correctly
    for z, y in ((z1, y1), (z2, y2)):
        z[y == 3, 3] = -20.0
    ols.train()
    for z, y in ((z1, y1), (z2, y2)):
        ols(z, y)
    ols.eval()
    ols(*batch(n=20, c=C, seed=9))  # evaluation batches are not collected
    ols.next_epoch()

    # independent computation over both training batches
    p = np.concatenate([softmax_np(z1), softmax_np(z2)])
    y = np.concatenate([y1.numpy(), y2.numpy()])
    correct = p.argmax(axis=1) == y
    expected = S0.copy()
    for c in range(C):
        rows = correct & (y == c)
        if rows.any():
            expected[c] = p[rows].mean(axis=0)
    assert not (correct & (y == 3)).any() and all((correct & (y == c)).any() for c in range(3))
    np.testing.assert_allclose(ols.soft_labels.numpy(), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ols.soft_labels[3].numpy(), S0[3])  # kept

    # the new matrix is used by the loss, and its gradient is p - (alpha e_y + (1 - alpha) S_y)
    z, yb = batch(n=16, c=C, seed=3)
    ols.reduction = "sum"
    zg = z.clone().requires_grad_(True)
    out = ols(zg, yb)
    assert out.item() == pytest.approx(ols_reference(z, yb, expected, alpha).sum(), rel=1e-5)
    out.backward()
    target = alpha * np.eye(C)[yb.numpy()] + (1 - alpha) * expected[yb.numpy()]
    np.testing.assert_allclose(zg.grad.numpy(), softmax_np(z) - target, rtol=1e-5, atol=1e-6)

    # an epoch without any training batch keeps the matrix
    before = ols.soft_labels.clone()
    ols.next_epoch()
    assert torch.equal(ols.soft_labels, before)


@pytest.mark.parametrize("build,exc,match", [
    (lambda: L.OnlineLabelSmoothing(1), ValueError, "num_classes must be an int >= 2"),
    (lambda: L.OnlineLabelSmoothing(2.0), TypeError, "num_classes must be an int"),
    (lambda: L.OnlineLabelSmoothing(10, alpha=1.5), ValueError, "alpha"),
    (lambda: L.OnlineLabelSmoothing(10, smoothing=1.0), ValueError, "smoothing"),
    (lambda: L.OnlineLabelSmoothing(10, reduction="avg"), ValueError, "reduction"),
])
def test_ols_checks_its_arguments_at_construction(build, exc, match):
    with pytest.raises(exc, match=match):
        build()


def test_ols_rejects_wrong_number_of_classes():
    ols = L.OnlineLabelSmoothing(4)
    with pytest.raises(ValueError, match="num_classes"):
        ols(*batch(c=5))
    with pytest.raises(ValueError, match="target"):
        ols(torch.zeros(2, 4), torch.tensor([0, 4]))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_ols_extreme_logits_are_finite(dtype):
    g = gen(6)
    z = (torch.randint(-1, 2, (64, 6), generator=g) * 1e4).to(dtype)
    y = torch.randint(0, 6, (64,), generator=g)
    ols = L.OnlineLabelSmoothing(6)
    for _ in range(2):  # the second epoch uses soft labels with exact zeros and ones
        x = z.clone().requires_grad_(True)
        out = ols(x, y)
        out.backward()
        assert torch.isfinite(out) and torch.isfinite(x.grad.float()).all()
        ols.next_epoch()
    assert (ols.soft_labels == 0).any()


# --------------------------------------------------------------------------------------------
# FunctionalLoss: a Module states its parameters once, in its function's signature
# --------------------------------------------------------------------------------------------
FUNCTIONAL = sorted({e.cls for e in LOSSES.values() if issubclass(e.cls, L.FunctionalLoss)},
                    key=lambda c: c.__name__)


@pytest.mark.parametrize("cls", FUNCTIONAL, ids=lambda c: c.__name__)
def test_a_functional_module_takes_its_functions_parameters(cls):
    keywords = [p for p in inspect.signature(cls.fn).parameters.values() if p.kind is p.KEYWORD_ONLY]
    assert [(p.name, p.default) for p in inspect.signature(cls).parameters.values()] == \
        [(p.name, p.default) for p in keywords]
    names = [p.name for p in keywords[:-1]]
    assert keywords[-1].name == "reduction"
    if cls.check is None:
        assert names == []
    else:  # the check takes the parameters in the function's order
        assert list(inspect.signature(cls.check).parameters) == names
    module = cls()
    assert list(module.params) == names and module.reduction == "mean"
    assert "q" not in inspect.signature(module).parameters  # an instance keeps its own signature


def test_construction_checks_the_parameters_without_calling_the_loss():
    calls = []

    def probe(logits, target, *, q: float = 0.7, reduction: str = "mean"):
        calls.append(q)
        return logits.sum()

    class Probe(L.FunctionalLoss):
        fn, check = staticmethod(probe), staticmethod(lambda q: (_checks.check_param("q", q, low=0.0),))

    loss = Probe(1)  # positional, as the signature allows; the check made it a float
    assert loss.q == 1.0 and isinstance(loss.q, float) and calls == []
    assert repr(loss) == "Probe(q=1.0, reduction='mean')"
    loss(torch.zeros(2, 3), torch.zeros(2, dtype=torch.long))
    assert calls == [1.0]
    with pytest.raises(ValueError, match=r"q must be in \[0, inf\), got -1"):
        Probe(q=-1)
    with pytest.raises(TypeError, match="q must be a real number, got str"):
        Probe(q="1")
    with pytest.raises(TypeError, match="reduction must be one of"):
        Probe(reduction=None)
    with pytest.raises(TypeError, match="Probe: got an unexpected keyword argument 'p'; it takes q, reduction"):
        Probe(p=1)
    assert calls == [1.0]


def test_a_functional_module_compiles_whole():
    torch._dynamo.reset()
    z, y = batch(n=8, c=4)
    for module in (L.GCELoss(q=0.5, k=0.2), L.SCELoss(A="code"), L.BootstrapLoss(hard=True)):
        compiled = torch.compile(module, fullgraph=True, backend="aot_eager")
        torch.testing.assert_close(compiled(z, y), module(z, y), rtol=1e-12, atol=1e-12)


def test_ols_next_epoch_takes_the_epoch_end_of_the_protocol():
    assert L.EpochEnd._fields == ("epoch", "epochs", "train_logits")
    z, y = batch(n=40, c=4, seed=4)
    a, b = L.OnlineLabelSmoothing(4), L.OnlineLabelSmoothing(4)
    a(z, y), b(z, y)
    a.next_epoch()
    b.next_epoch(L.EpochEnd(epoch=1, epochs=3, train_logits=z.float()))
    assert torch.equal(a.soft_labels, b.soft_labels)
    assert not torch.equal(a.soft_labels, L.OnlineLabelSmoothing(4).soft_labels)  # it did change
