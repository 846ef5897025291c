"""Loss specs: one spelling per loss (canonical_spec), clear errors that quote the bad spec; losses and
presets of one's own (register_loss, register_preset); the argument checks they share."""
from __future__ import annotations

import doctest
import inspect
import math

import pytest
import references
import torch

import noisyloss
from noisyloss import _checks
from noisyloss import functional as NF
from noisyloss import losses as L
from noisyloss import registry as R


@pytest.mark.parametrize("specs, canonical", [
    (["ce", "ce:label_smoothing=0", "cross_entropy:eps=0.0", " CE : label_smoothing = 0 "], "ce"),
    (["ls", "ls:eps=0.1", "ce:label_smoothing=0.1", "ce:eps=.1"], "ce:label_smoothing=0.1"),
    (["ls:eps=0"], "ce"),
    (["gce", "gce:q=0.7", "gce:q=0.70", "gce:k=none"], "gce"),
    (["gce:k=0.5,q=0.5", "gce:q=.5,k=0.50"], "gce:q=0.5,k=0.5"),  # the Module's order
    (["sce", "sce:alpha=0.1,beta=1", "sce:beta=1.0,alpha=0.10"], "sce"),
    (["sce:beta=2.0", "sce:beta=2"], "sce:beta=2"),
    (["bootstrap:beta=0.8,hard=true", "bootstrap:hard=TRUE,beta=0.80"], "bootstrap:beta=0.8,hard=true"),
    (["negative_learning", "nl"], "nl"),
    (["rce:A=-9.21034"], "rce:A=-9.21034"),
])
def test_equal_losses_have_one_canonical_spec(specs, canonical):
    assert {R.canonical_spec(s) for s in specs} == {canonical}
    # the canonical spec builds the same loss: same values on the same input
    logits, target = torch.randn(6, 10, generator=torch.Generator().manual_seed(0)), torch.arange(6)
    def value(spec):
        torch.manual_seed(1)  # negative learning draws its complementary labels
        return R.make_loss(spec)(logits, target)

    for spec in specs:
        torch.testing.assert_close(value(spec), value(canonical))


def test_different_losses_keep_different_specs():
    specs = ["ce", "ls", "gce", "gce:q=0.5", "mae", "sce:beta=2", "bootstrap:hard=true", "peer:alpha=0.2"]
    assert len({R.canonical_spec(s) for s in specs}) == len(specs)


@pytest.mark.parametrize("spec, exc, match", [
    ("gce:q=", ValueError, r"'q=' in 'gce:q=' must look like key=value"),
    ("gce:=0.5", ValueError, r"'=0.5' in 'gce:=0.5'"),
    ("gce:q", ValueError, r"'q' in 'gce:q'"),
    ("gce:q=0.5,q=0.7", ValueError, r"'gce:q=0.5,q=0.7' sets 'q' twice"),
    ("ce:eps=0.1,label_smoothing=0.2", ValueError, "sets 'label_smoothing' twice"),
    ("gce:q=abc", TypeError, r"'gce:q=abc': q must be a real number"),
    ("gce:q=2", ValueError, r"'gce:q=2': q must be in"),
    ("gce:p=1", ValueError, r"does not take \['p'\]"),
    ("peer:generator=1", ValueError, r"'generator' cannot be set in a loss spec \('peer:generator=1'\)"),
    ("nl:generator=none", ValueError, "cannot be set in a loss spec"),
    ("xyz", ValueError, "unknown loss 'xyz'"),
])
def test_bad_specs_are_clear_errors_quoting_the_spec(spec, exc, match):
    with pytest.raises(exc, match=match):
        R.make_loss(spec)


# --------------------------------------------------------------------------------------------
# register_loss, presets, functional_loss
# --------------------------------------------------------------------------------------------
@pytest.fixture
def registry(monkeypatch):
    """The registry's tables as copies, so that what a test registers is gone after it."""
    monkeypatch.setattr(R, "LOSSES", dict(R.LOSSES))
    monkeypatch.setattr(R, "PRESETS", dict(R.PRESETS))
    return R


def half_ce(logits, target, *, weight: float = 0.5, reduction: str = "mean"):
    return weight * NF.cross_entropy(logits, target, reduction=reduction)


class HalfCE(L.FunctionalLoss):
    fn = staticmethod(half_ce)


class Scaled(torch.nn.Module):
    """A user's own Module: no FunctionalLoss, a required argument."""

    def __init__(self, scale: float, reduction: str = "mean") -> None:
        super().__init__()
        self.scale, self.reduction = scale, reduction

    def forward(self, logits, target):
        return self.scale * NF.mae(logits, target, reduction=self.reduction)


def test_a_registered_loss_is_a_spec_everywhere(registry):
    assert noisyloss.register_loss("half_ce", HalfCE, "CE / 2") is HalfCE
    assert noisyloss.register_loss("scaled", Scaled) is Scaled
    assert "half_ce" in noisyloss.available_losses() and "scaled" in noisyloss.available_losses()
    assert noisyloss.available_losses()["half_ce"] == "CE / 2 (weight=0.5)"
    assert R.canonical_spec("half_ce:weight=0.50") == "half_ce"
    assert R.canonical_spec("scaled:scale=2.0") == "scaled:scale=2"
    z, y = torch.randn(6, 4, generator=torch.Generator().manual_seed(0)), torch.arange(6) % 4
    torch.testing.assert_close(R.make_loss("half_ce:weight=0.25")(z, y), 0.25 * NF.cross_entropy(z, y))
    torch.testing.assert_close(R.make_loss("scaled:scale=3", reduction="sum")(z, y),
                               3 * NF.mae(z, y, reduction="sum"))
    torch.testing.assert_close(R.functional_loss("half_ce")(z, y, reduction="none"),
                               0.5 * NF.cross_entropy(z, y, reduction="none"))
    with pytest.raises(ValueError, match="has no functional form: its Module is not a losses.FunctionalLoss"):
        R.functional_loss("scaled:scale=1")
    with pytest.raises(ValueError, match=r"does not take \['q'\]"):
        R.make_loss("scaled:scale=1,q=2")
    assert noisyloss.register_loss("half_ce", HalfCE, "half of CE") is HalfCE  # the same class again
    assert R.LOSSES["half_ce"].description == "half of CE"


@pytest.mark.parametrize("args, exc, match", [
    ((1, HalfCE), TypeError, "name must be a str, got int"),
    (("Half CE", HalfCE), ValueError, "name must be lowercase letters"),
    (("half:ce", HalfCE), ValueError, "name must be lowercase letters"),
    (("half_ce", half_ce), TypeError, r"module_cls must be a subclass of torch.nn.modules.module.Module"),
    (("half_ce", HalfCE, None), TypeError, "description must be a str, got NoneType"),
    (("gce", HalfCE), ValueError, "name 'gce' is taken by a loss"),
    (("cross_entropy", HalfCE), ValueError, "taken by an alias"),
    (("sce_cifar10", HalfCE), ValueError, "taken by a preset"),
])
def test_register_loss_checks_its_arguments(registry, args, exc, match):
    with pytest.raises(exc, match=match):
        noisyloss.register_loss(*args)


def test_presets_name_their_source_and_build():
    presets = noisyloss.presets()
    assert {"sce_cifar10", "sce_cifar100", "nce_rce_cifar10", "nce_rce_cifar100"} <= set(presets)
    for name, preset in presets.items():
        assert preset.source.strip() and R.canonical_spec(name) == R.canonical_spec(preset.spec)
        accepted = inspect.signature(R.LOSSES[R.parse_spec(name)[0]].cls).parameters
        runner_sets = {k: v for k, v in {"num_classes": 10, "num_examples": 4}.items() if k in accepted}
        assert isinstance(R.make_loss(name, **runner_sets), torch.nn.Module)
    for name in ("sce_cifar10", "nce_rce_cifar10", "sce_cifar100", "nce_rce_cifar100"):  # the APL recipe
        assert "A=code" in presets[name].spec and "clipping at 5" in presets[name].note
    sce = R.make_loss("sce_cifar10")
    assert isinstance(sce, L.SCELoss) and sce.params == {"alpha": 0.1, "beta": 1.0, "A": math.log(1e-4)}
    assert R.make_loss("nce_rce_cifar100").params == {"alpha": 10.0, "beta": 0.1, "A": math.log(1e-4)}
    assert R.parse_spec("sce_cifar10:beta=2") == ("sce", {"alpha": 0.1, "beta": 2, "A": "code"})
    assert R.canonical_spec("sce_cifar100") == "sce:alpha=6,beta=0.1,A=code"
    elr = R.make_loss("elr_cifar100", num_examples=4, num_classes=100)  # ELR/config_cifar100.json
    assert (elr.lam, elr.beta) == (7.0, 0.9)
    assert R.make_loss("gce_prune_cifar100", num_examples=4).start_prune == 80  # the CIFAR-100 command


def test_register_preset(registry):
    noisyloss.register_preset("gce_half", "gce:q=0.5", "a test's own setting", "nothing else")
    assert noisyloss.presets()["gce_half"] == R.Preset("gce:q=0.5", "a test's own setting", "nothing else")
    assert R.make_loss("gce_half").q == 0.5
    noisyloss.register_preset("gce_half", "gce:q=0.5", "a test's own setting", "nothing else")  # the same again
    for args, exc, match in [
        (("gce_half", "gce:q=0.6", "elsewhere"), ValueError, "taken by a preset"),
        (("sce", "gce:q=0.6", "elsewhere"), ValueError, "taken by a loss"),
        (("gce_x", "gce:p=1", "elsewhere"), ValueError, r"does not take \['p'\]"),
        (("gce_x", "gce:q=0.6", " "), ValueError, "source must name where"),
        (("gce_x", "gce:q=0.6", None), TypeError, "source must be a str"),
        (("gce_x", 5, "elsewhere"), TypeError, "spec must be a str"),
    ]:
        with pytest.raises(exc, match=match):
            noisyloss.register_preset(*args)


def test_functional_loss_builds_no_module(monkeypatch):
    def refuse(self, *args, **kwargs):
        raise AssertionError("a Module was built")

    monkeypatch.setattr(L.GCELoss, "__init__", refuse)
    z, y = torch.randn(5, 3, dtype=torch.float64), torch.arange(5) % 3
    assert torch.equal(R.functional_loss("gce:q=0.5")(z, y), NF.gce(z, y, q=0.5))
    with pytest.raises(ValueError, match=r"'gce:q=2': q must be in"):
        R.functional_loss("gce:q=2")  # checked when bound, not at the first call


@pytest.mark.parametrize("name", ["rce", "sce", "nce_rce"])
def test_A_code_is_the_reference_codes_clamp(name):
    z = 2 * torch.randn(32, 10, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    y = torch.arange(32) % 10
    code = R.make_loss(f"{name}:A=code", reduction="none")
    number = R.make_loss(f"{name}:A={math.log(1e-4)!r}", reduction="none")
    assert code.A == NF.REFERENCE_CODE_A == math.log(1e-4)
    assert torch.equal(code(z, y), number(z, y))
    if name == "rce":
        torch.testing.assert_close(code(z, y), references.rce_reference_code(z, y), rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match=r"A must be one of \('code',\), got 'paper'"):
        R.make_loss(f"{name}:A=paper")


# --------------------------------------------------------------------------------------------
# the checks the registry and the losses share
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("call_, exc, match", [
    (lambda: _checks.check_bool("hard", 1), TypeError, "hard must be a bool, got int"),
    (lambda: _checks.check_choice("base", 3, ("ce", "mae")), TypeError,
     r"base must be one of \('ce', 'mae'\), got int"),
    (lambda: _checks.check_choice("base", "x", ("ce", "mae")), ValueError, r"got 'x'"),
    (lambda: _checks.check_reduction(None), TypeError, "reduction must be one of"),
    (lambda: _checks.check_reduction("avg"), ValueError, "reduction must be one of"),
    (lambda: _checks.check_str("note", b"x"), TypeError, "note must be a str, got bytes"),
    (lambda: _checks.check_name("name", ""), ValueError, "name must be lowercase"),
    (lambda: _checks.check_callable("loader", 3), TypeError, "loader must be callable, got int"),
    (lambda: _checks.check_subclass("module_cls", 3, torch.nn.Module), TypeError, "module_cls must be a subclass"),
    (lambda: _checks.check_logits_target(torch.zeros(2, 3), torch.zeros(2, dtype=torch.long), 4), ValueError,
     r"logits must have C = num_classes = 4 columns, got \(2, 3\)"),
])
def test_checks_raise_type_and_value_errors_naming_the_argument(call_, exc, match):
    with pytest.raises(exc, match=match):
        call_()


def test_checks_return_what_they_accept():
    assert _checks.check_bool("hard", False) is False
    assert _checks.check_choice("base", "mae", ("ce", "mae")) == "mae"
    assert _checks.check_name("name", "cifar10-n.v2_a") == "cifar10-n.v2_a"
    assert _checks.check_subclass("cls", L.GCELoss, torch.nn.Module) is L.GCELoss
    assert _checks.check_callable("f", len) is len


def test_docstring_examples():
    result = doctest.testmod(R)
    assert result.failed == 0 and result.attempted > 0
