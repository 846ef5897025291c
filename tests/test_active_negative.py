"""Active negative losses (Ye et al., 2023): NNCE, NNFL, ANL-CE and ANL-FL (the active-passive
combinator with a normalised negative loss), and their L1 weight penalty ``losses.l1_penalty``."""
import functools

import pytest
import references as R
import torch
from test_functional import LossTests, batch
from test_normalised import assert_finite_at_extremes

import noisyloss
from noisyloss import functional as NF
from noisyloss import losses as L
from noisyloss.registry import LOSSES


class TestNNCE(LossTests):
    fn, module = staticmethod(NF.nnce), L.NNCELoss
    cases = [{"min_prob": 1e-7}, {"min_prob": 1e-2}]

    def reference(self, z, y, min_prob):
        return R.nnce(z, y, min_prob)

    def test_the_labels_sum_to_c_minus_one_and_the_clamp_zeroes_unlikely_classes(self):
        z, y = batch(c=5, scale=6.0)
        sums = sum(NF.nnce(z, torch.full_like(y, k), min_prob=1e-3, reduction="none") for k in range(5))
        torch.testing.assert_close(sums, torch.full((64,), 4.0, dtype=torch.float64))
        # a label the model gives less than min_prob: A - CE_y = 0, the largest value 1, no gradient
        z = torch.tensor([[0.0, 0.0, -30.0]], dtype=torch.float64, requires_grad=True)
        out = NF.nnce(z, torch.tensor([2]), min_prob=1e-7)
        out.backward()
        assert out == 1.0 and torch.equal(z.grad, torch.zeros(1, 3, dtype=torch.float64))


class TestNNFL(LossTests):
    fn, module = staticmethod(NF.nnfl), L.NNFLLoss
    cases = [{"gamma": 0.5, "min_prob": 1e-7}, {"gamma": 2.0, "min_prob": 1e-3}, {"gamma": 0.0, "min_prob": 1e-7}]

    def reference(self, z, y, gamma, min_prob):
        return R.nnfl(z, y, gamma, min_prob)

    def test_gamma_zero_is_nnce(self):
        z, y = batch()
        torch.testing.assert_close(NF.nnfl(z, y, gamma=0.0, min_prob=1e-5), NF.nnce(z, y, min_prob=1e-5),
                                   rtol=1e-14, atol=1e-15)


ANL_CE, ANL_FL = LOSSES["anl_ce"].cls, LOSSES["anl_fl"].cls


class TestANLCE(LossTests):
    fn, module = staticmethod(ANL_CE.fn), ANL_CE
    cases = [{"alpha": 5.0, "beta": 5.0, "min_prob": 1e-7}, {"alpha": 10.0, "beta": 1.0, "min_prob": 1e-3}]

    def reference(self, z, y, alpha, beta, min_prob):
        return alpha * R.nce(z, y) + beta * R.nnce(z, y, min_prob)


class TestANLFL(LossTests):
    fn, module = staticmethod(ANL_FL.fn), ANL_FL
    cases = [{"alpha": 5.0, "beta": 5.0, "gamma": 0.5, "min_prob": 1e-7}]

    def reference(self, z, y, alpha, beta, gamma, min_prob):
        return alpha * R.nfl(z, y, gamma) + beta * R.nnfl(z, y, gamma, min_prob)


def test_authors_code_gives_our_values_and_nnfl_detaches_its_focal_weights():
    """ANL's NormalizedNegativeCrossEntropy and NormalizedNegativeFocalLoss clamp p at min_prob as we
    do, so the values agree, also where some p_k < min_prob. NNFL's code detaches the weights
    (1 - p_k)^gamma: its gradient is not the formula's; ours is (autograd through the formula)."""
    z, y = batch(c=10, scale=8.0)  # scale 8: many p_k below 1e-7
    assert (R.probs(z) < 1e-7).any()
    torch.testing.assert_close(NF.nnce(z, y, min_prob=1e-7, reduction="none"), R.anl_code_nnce(z, y, 1e-7))
    a, b = z.clone().requires_grad_(True), z.clone().requires_grad_(True)
    ours, theirs = NF.nnfl(a, y, gamma=0.5, min_prob=1e-7, reduction="sum"), R.anl_code_nnfl(b, y, 0.5, 1e-7).sum()
    torch.testing.assert_close(ours, theirs)
    ours.backward()
    theirs.backward()
    assert (a.grad - b.grad).abs().max() > 1e-3


def test_anl_pairs_are_the_weighted_sums_the_anl_code_builds():
    """ANL's anl_ce = alpha NCE + beta NNCE, anl_fl = alpha NFL + beta NNFL with one gamma for both."""
    z, y = batch(n=32, c=10)
    anl_ce = noisyloss.make_loss("anl_ce:alpha=5,beta=5,min_prob=1e-7", reduction="none")
    torch.testing.assert_close(anl_ce(z, y), 5 * R.nce(z, y) + 5 * R.nnce(z, y, 1e-7))
    anl_fl = noisyloss.make_loss("anl_fl_cifar100", reduction="none")
    assert anl_fl.gamma == 0.5  # one gamma for both
    torch.testing.assert_close(anl_fl(z, y), 10 * R.code_nfl(z, y, 0.5) + 1 * R.anl_code_nnfl(z, y, 0.5, 1e-7))


@pytest.mark.parametrize("f", [functools.partial(NF.nnce, min_prob=1e-7), functools.partial(NF.nnce, min_prob=1e-300),
                               functools.partial(NF.nnfl, gamma=0.5, min_prob=1e-7),
                               functools.partial(NF.nnfl, gamma=0.1, min_prob=1e-7),
                               functools.partial(NF.apl, active=NF.nce, passive=functools.partial(NF.nnce))])
def test_finite_values_and_gradients_at_extreme_logits(f):
    assert_finite_at_extremes(f)


# --------------------------------------------------------------------------------------------
# the weight penalty delta
# --------------------------------------------------------------------------------------------
def test_l1_penalty_steps_as_the_anl_code_without_clipping():
    """Without clipping, one step equals ANL's: SGD on loss + delta sum |theta|."""
    torch.manual_seed(0)
    model = torch.nn.Linear(6, 4)
    x, y = torch.randn(16, 6), torch.randint(0, 4, (16,))
    twin = torch.nn.Linear(6, 4)
    twin.load_state_dict(model.state_dict())
    loss_fn, delta = noisyloss.make_loss("anl_ce_cifar10"), 0.05
    sgd = functools.partial(torch.optim.SGD, lr=0.1, momentum=0.9, nesterov=True)
    opt = L.l1_penalty(sgd, delta)(model.parameters())
    reference = torch.optim.SGD(twin.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    for _ in range(3):
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()
        reference.zero_grad()
        (loss_fn(twin(x), y) + delta * sum(p.abs().sum() for p in twin.parameters())).backward()
        reference.step()
    for p, q in zip(model.parameters(), twin.parameters()):
        torch.testing.assert_close(p, q)


def test_l1_penalty_with_delta_zero_is_the_optimizer_and_checks_delta():
    p = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    opt = L.l1_penalty(functools.partial(torch.optim.SGD, lr=1.0), 0.0)([p])
    p.grad = torch.tensor([0.5, 0.5])
    opt.step()
    assert torch.equal(p.detach(), torch.tensor([0.5, -2.5]))
    with pytest.raises(ValueError, match=r"delta must be in \[0, inf\)"):
        L.l1_penalty(torch.optim.SGD, -1.0)


Z, Y = batch(n=4, c=3, dtype=torch.float32)


@pytest.mark.parametrize("call_,exc,match", [
    (lambda: NF.nnce(Z, Y, min_prob=0.0), ValueError, r"min_prob must be in \(0, 1\), got 0$"),
    (lambda: NF.nnce(Z, Y, min_prob=0.4), ValueError,
     r"min_prob must be below 1/C = 0.333333 for C=3 classes, got 0.4"),
    (lambda: NF.nnfl(Z, Y, min_prob="1e-7"), TypeError, "min_prob must be a real number, got str"),
    (lambda: NF.nnfl(Z, Y, gamma=-0.5), ValueError, r"gamma must be in \[0, inf\)"),
    (lambda: L.NNCELoss(min_prob=1.0), ValueError, "min_prob"),
    (lambda: L.NNFLLoss(gamma=None), TypeError, "gamma"),
])
def test_errors_name_the_argument(call_, exc, match):
    with pytest.raises(exc, match=match):
        call_()
