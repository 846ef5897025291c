"""Loss specs: one spelling per loss (canonical_spec), and clear errors that quote the bad spec."""
from __future__ import annotations

import pytest
import torch

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
