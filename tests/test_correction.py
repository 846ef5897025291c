"""Loss correction (Patrini et al., 2017): forward_correction and backward_correction through the
suite every loss runs (``test_functional.LossTests``), their defining properties (the noisy-risk
minimiser, unbiasedness, negative values), the authors' Keras computation, the float32 edge, the
argument checks, the specs; and noise.estimate_transition_anchor against a known T and against the
released estimator's computation."""
import numpy as np
import pytest
import references as R
import torch
from test_functional import assert_compiled_equals_eager, batch, gen, LossTests

import noisyloss
from noisyloss import functional as NF
from noisyloss import losses as L
from noisyloss import noise

INF = float("inf")
#: noise specs valid for any number of classes >= 2 (T is built for the logits' C)
NOISES = [{"T": "sym:0.4"}, {"T": "uniform:0.6"}, {"T": "pair:0.3"}, {"T": "asym:0.4:0>1"}]


class CorrectionTests(LossTests):
    cases = NOISES
    reference_fn = None

    def reference(self, z, y, T):
        return type(self).reference_fn(z, y, noise.make_transition(T, z.shape[1]))

    def test_a_matrix_and_its_noise_spec_give_the_same_loss(self):
        z, y = batch()
        for params in self.cases:
            T = noise.make_transition(params["T"], 7)
            assert torch.equal(type(self).fn(z, y, T=T), type(self).fn(z, y, **params))
            assert torch.equal(type(self).fn(z, y, T=T.numpy()), type(self).fn(z, y, T=T.tolist()))

    def test_the_clean_matrix_gives_ce(self):
        z, y = batch()
        torch.testing.assert_close(type(self).fn(z, y, T="clean", reduction="none"),
                                   NF.cross_entropy(z, y, reduction="none"), rtol=1e-13, atol=1e-13)

    def test_the_module_holds_the_matrix_as_a_buffer(self):
        module = self.module(T="asym:0.4:1>2", num_classes=4)
        assert dict(module.named_buffers())["T"] is module.T
        torch.testing.assert_close(module.T, noise.make_transition("asym:0.4:1>2", 4), rtol=0, atol=0)
        z, y = batch(c=4)
        assert torch.equal(module(z, y), type(self).fn(z, y, T=module.T))
        assert repr(module) == f"{type(module).__name__}(T=4x4 matrix, reduction='mean')"
        module.to(torch.float32)  # moves (and casts) with the Module, like any buffer
        assert module.T.dtype == torch.float32 and torch.equal(module(z, y), type(self).fn(z, y, T=module.T))

    def test_the_authors_keras_computation(self):
        # giorgiop/loss-correction loss.py, robust(name, P), in our words: p renormalised and clipped
        # to [1e-7, 1 - 1e-7]; forward: -sum_j e_y,j log (p P)_j; backward: -sum_j (e_y P^-1)_j log p_j
        def theirs(z, y, T):
            p, onehot = R.probs(z).clamp(1e-7, 1 - 1e-7), R.onehot(y, 5)
            if type(self).fn is NF.forward_correction:
                return -(onehot * torch.log(p @ T)).sum(1)
            return -((onehot @ torch.linalg.inv(T)) * torch.log(p)).sum(1)

        z, y = batch(c=5, scale=2.0)  # no probability below 1e-7: the clip does nothing
        T = noise.symmetric(5, 0.4)
        ours = type(self).fn(z, y, T=T, reduction="none")
        torch.testing.assert_close(ours, theirs(z, y, T), rtol=1e-12, atol=1e-12)
        # p_1 = e^-40 / 4 and class 1 clean: the loss is -log p_1 = 41.4; the clip makes it -log 1e-7 = 16.1
        z, y = torch.tensor([[40.0, 0.0, 40.0, 40.0, 40.0]], dtype=torch.float64), torch.tensor([1])
        T = noise.make_transition("asym:0.4:0>2", 5)
        exact = torch.tensor([40 + np.log(4)], dtype=torch.float64)
        torch.testing.assert_close(type(self).fn(z, y, T=T, reduction="none"), exact, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(theirs(z, y, T), torch.tensor([-np.log(1e-7)], dtype=torch.float64))


class TestForwardCorrection(CorrectionTests):
    fn, module = staticmethod(NF.forward_correction), L.ForwardCorrectionLoss
    reference_fn = staticmethod(R.forward_correction)

    def test_the_true_T_makes_the_clean_posterior_the_noisy_risk_minimiser(self):
        # one input with clean posterior c; its noisy label follows c^T T. Minimise the expected loss
        # over the model's logits: CE learns the noisy posterior c^T T (and its argmax, class 1),
        # forward correction with the true T learns c itself (argmax class 0)
        T = torch.tensor([[0.4, 0.6, 0.0], [0.0, 1.0, 0.0], [0.1, 0.1, 0.8]], dtype=torch.float64)
        c = torch.tensor([0.7, 0.2, 0.1], dtype=torch.float64)
        noisy = c @ T
        labels = torch.arange(3)

        def minimiser(loss):
            z = torch.zeros(1, 3, dtype=torch.float64, requires_grad=True)
            opt = torch.optim.LBFGS([z], lr=1, max_iter=500, tolerance_grad=1e-14, tolerance_change=1e-16,
                                    line_search_fn="strong_wolfe")

            def risk():
                opt.zero_grad()
                value = (noisy * loss(z.expand(3, 3), labels)).sum()  # E over the noisy label
                value.backward()
                return value

            opt.step(risk)
            return torch.softmax(z.detach(), dim=1)[0]

        learned_ce = minimiser(lambda z, t: NF.cross_entropy(z, t, reduction="none"))
        learned_forward = minimiser(lambda z, t: NF.forward_correction(z, t, T=T, reduction="none"))
        torch.testing.assert_close(learned_ce, noisy, rtol=1e-6, atol=1e-7)
        torch.testing.assert_close(learned_forward, c, rtol=1e-6, atol=1e-7)
        assert learned_ce.argmax() == 1 and learned_forward.argmax() == 0

    def test_bounded_for_finite_logits_by_the_smallest_positive_entry_of_the_column(self):
        T = noise.symmetric(4, 0.3)  # off-diagonal 0.1: the loss is at most -log 0.1
        z = torch.tensor([[-1e4, 1e4, 1e4, 1e4], [3e38, -3e38, 0.0, 0.0]])
        out = NF.forward_correction(z, torch.tensor([0, 1]), T=T, reduction="none")
        torch.testing.assert_close(out, torch.full((2,), -float(torch.log(torch.tensor(0.1)))))

    @pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
    def test_at_the_edge_of_the_float_range(self, dtype):
        z = torch.tensor([[3e38, -3e38, 0.0], [-3e38, 3e38, 3e38], [0.0, -INF, -INF], [5.0, -INF, 1.0]],
                         dtype=dtype, requires_grad=True)
        y = torch.tensor([0, 0, 0, 2])
        for T in (noise.symmetric(3, 0.4), noise.make_transition("asym:0.4:1>2", 3)):
            z.grad = None
            out = NF.forward_correction(z, y, T=T, reduction="none")
            out.sum().backward()
            assert torch.isfinite(out).all() and torch.isfinite(z.grad.float()).all()
            # the values at clamp_logits' bound, computed in float64
            at_the_bound = NF.forward_correction(NF.clamp_logits(z.detach()).double(), y, T=T, reduction="none")
            torch.testing.assert_close(out, at_the_bound.float())
        # asym: class 0 turns into nothing but 0, and p_0 = e^-3.6e19 at sample 1: the loss at the bound
        assert out[1] > 1e19


class TestBackwardCorrection(CorrectionTests):
    fn, module = staticmethod(NF.backward_correction), L.BackwardCorrectionLoss
    reference_fn = staticmethod(R.backward_correction)

    def test_unbiased_its_mean_over_the_noisy_label_is_the_clean_ce(self):
        z, y = batch(c=5)
        for spec in ("sym:0.4", "pair:0.45", "asym:0.3:0>1,1>0,2>4"):
            T = noise.make_transition(spec, 5)
            mean = sum(T[y, j] * NF.backward_correction(z, torch.full_like(y, j), T=T, reduction="none")
                       for j in range(5))
            torch.testing.assert_close(mean, NF.cross_entropy(z, y, reduction="none"), rtol=1e-12, atol=1e-12)

    def test_can_be_negative(self):
        # p = (3/4, 1/4), T flips 20 %: (4/3)(-ln 3/4) - (1/3)(-ln 1/4) = -0.0785 < 0, where CE is 0.288
        T = torch.tensor([[0.8, 0.2], [0.2, 0.8]], dtype=torch.float64)
        z, y = torch.tensor([[0.75, 0.25]], dtype=torch.float64).log(), torch.tensor([0])
        out = NF.backward_correction(z, y, T=T)
        assert out < 0 and NF.cross_entropy(z, y) > 0
        assert float(out) == pytest.approx(4 / 3 * -np.log(0.75) - 1 / 3 * -np.log(0.25), rel=1e-12)

    @pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
    def test_at_the_edge_of_the_float_range(self, dtype):
        z = torch.tensor([[3e38, -3e38, 0.0], [0.0, 3e38, -3e38], [5.0, -INF, 1.0]], dtype=dtype)
        z.requires_grad_(True)
        y = torch.tensor([2, 0, 0])
        T = noise.symmetric(3, 0.4)  # T^-1 = 2.5 I - 0.5: diagonal 2, off-diagonal -0.5
        out = NF.backward_correction(z, y, T=T, reduction="none")
        out.sum().backward()
        assert torch.isfinite(out).all() and torch.isfinite(z.grad.float()).all()
        # with b = 1.8e19, clamp_logits' bound, sample 0 has -log p = (0, 2b, b): 2 b - 0.5 (0 + 2b) = b;
        # sample 2 has a -inf logit with a negative coefficient (exact value -inf): -0.5 (b + 5) + ...
        b = NF.clamp_logits(torch.tensor([INF])).item()
        torch.testing.assert_close(out[:2], torch.tensor([b, b]), rtol=1e-6, atol=0)
        assert out[2].item() == pytest.approx(-0.5 * (b + 5), rel=1e-6)
        # the gradient p - (T^-1)_y, zero on the logits clamp_logits bounded: sample 0 has p = e_0
        torch.testing.assert_close(z.grad[0].float(), torch.tensor([0.0, 0.0, 0.0 - 2.0]))


    def test_a_singular_T_is_refused(self):
        z, y = batch(c=3)
        for T in (noise.symmetric(3, 2 / 3), torch.tensor([[0.5, 0.5, 0.0], [0.5, 0.5, 0.0], [0.0, 0.0, 1.0]])):
            with pytest.raises(ValueError, match="T must be invertible, got a singular 3x3 matrix of rank"):
                NF.backward_correction(z, y, T=T)
            with pytest.raises(ValueError, match="T must be invertible"):
                L.BackwardCorrectionLoss(T=T)
        NF.forward_correction(z, y, T=noise.symmetric(3, 2 / 3))  # forward correction does not invert T


def test_both_compile_with_inductor_in_one_graph():
    forward, backward = L.ForwardCorrectionLoss("sym:0.3", num_classes=5), L.BackwardCorrectionLoss("pair:0.2", 5)

    def both(x, t):
        return torch.stack([forward(x, t), backward(x, t)])

    z, y = batch(n=16, c=5, dtype=torch.float32)
    assert_compiled_equals_eager(both, z, y, seed=0, rtol=1e-5, atol=1e-6)


Z, Y = batch(n=4, c=3, dtype=torch.float32)


@pytest.mark.parametrize("fn", [NF.forward_correction, NF.backward_correction])
@pytest.mark.parametrize("T,exc,match", [
    (torch.eye(4), ValueError, r"T must be a \(3, 3\) transition matrix for logits with C=3, got shape \(4, 4\)"),
    (torch.eye(3)[:2], ValueError, r"T must be a square \(C, C\) matrix with C >= 2, got shape \(2, 3\)"),
    (torch.full((3, 3), 0.5), ValueError, r"rows of T must sum to 1 \(row-stochastic\), largest deviation 0.5"),
    (torch.tensor([[1.5, -0.5, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]), ValueError, "nonnegative"),
    ("sym", ValueError, r"noise spec 'sym' must look like 'sym:0.4'"),
    ("asym:0.4", ValueError, "'asym' noise needs class pairs"),
    ("sym:1.5", ValueError, r"rate must be in \[0, 1\], got 1.5"),
    (3.0, ValueError, r"T must be a square \(C, C\) matrix"),
    (object(), TypeError, "T must be a \\(C, C\\) matrix, got object"),
])
def test_bad_transition_matrices_name_T(fn, T, exc, match):
    with pytest.raises(exc, match=match):
        fn(Z, Y, T=T)


def test_a_T_on_the_wrong_device_or_of_the_wrong_shape_inside_a_graph_names_T():
    compiled = torch.compile(lambda x, t, T: NF.forward_correction(x, t, T=T), fullgraph=True, backend="aot_eager")
    with pytest.raises(Exception, match=r"T must be a \(3, 3\) transition matrix for logits with C=3"):
        compiled(Z, Y, torch.eye(4))


@pytest.mark.parametrize("build,exc,match", [
    (lambda: L.ForwardCorrectionLoss(T="sym:0.4", num_classes=1), ValueError, "num_classes must be an int >= 2"),
    (lambda: L.ForwardCorrectionLoss(T="bogus:0.4"), ValueError, "unknown noise spec 'bogus:0.4'"),
    (lambda: L.ForwardCorrectionLoss(T=torch.eye(3), num_classes=4), ValueError, "T is 3x3 but num_classes=4"),
    (lambda: L.ForwardCorrectionLoss(T="asym:0.4", num_classes=4), ValueError, "'asym' noise needs class pairs"),
    (lambda: L.BackwardCorrectionLoss(T="sym:0.75", num_classes=4), ValueError, "T must be invertible"),
    (lambda: L.ForwardCorrectionLoss(T="sym:0.4", reduction="avg"), ValueError, "reduction must be one of"),
    (lambda: L.ForwardCorrectionLoss(), TypeError, "T"),
])
def test_modules_check_every_argument_at_construction(build, exc, match):
    with pytest.raises(exc, match=match):
        build()


def test_specs_name_a_noise_model_and_the_runner_gives_num_classes():
    loss = noisyloss.make_loss("backward:T=asym:0.4:1>7,7>1", num_classes=10)
    assert type(loss) is L.BackwardCorrectionLoss
    torch.testing.assert_close(loss.T, noise.make_transition("asym:0.4:1>7,7>1", 10), rtol=0, atol=0)
    assert noisyloss.canonical_spec("backward:T=asym:0.4:1>7,7>1") == "backward:T=asym:0.4:1>7,7>1"
    assert noisyloss.parse_spec("forward:T=sym:0.4") == ("forward", {"T": "sym:0.4"})
    T = noise.symmetric(5, 0.2)
    z, y = batch(c=5)
    assert torch.equal(noisyloss.make_loss("forward", T=T)(z, y), NF.forward_correction(z, y, T=T))
    assert torch.equal(noisyloss.functional_loss("forward:T=sym:0.2")(z, y), NF.forward_correction(z, y, T=T))
    assert {"forward", "backward"} <= set(noisyloss.available_losses())


# --------------------------------------------------------------------------------------------
# estimate_transition_anchor
# --------------------------------------------------------------------------------------------
def noisy_posteriors(T: torch.Tensor, anchors_per_class: int, mixed: int, seed: int = 0) -> torch.Tensor:
    """Probabilities p(y~ | x) = c(x)^T T of a perfect noisy-label model: for each class, samples
    surely of it (c = e_i: their row is T_i) and ``mixed`` samples with random clean posteriors."""
    c = T.shape[0]
    clean = torch.cat([torch.eye(c, dtype=torch.float64).repeat_interleave(anchors_per_class, 0),
                       torch.distributions.Dirichlet(torch.ones(c, dtype=torch.float64)).sample((mixed,))])
    return clean[torch.randperm(len(clean), generator=gen(seed))] @ T


class TestEstimateTransitionAnchor:
    T = torch.tensor([[0.7, 0.2, 0.1, 0.0], [0.1, 0.6, 0.2, 0.1], [0.0, 0.25, 0.75, 0.0], [0.2, 0.0, 0.1, 0.7]],
                     dtype=torch.float64)  # column i is largest at row i: anchors have the largest p_i

    def test_the_argmax_recovers_T_exactly(self):
        torch.manual_seed(0)
        probs = noisy_posteriors(self.T, anchors_per_class=1, mixed=500)
        torch.testing.assert_close(noise.estimate_transition_anchor(probs), self.T, rtol=0, atol=1e-15)
        assert noise.estimate_transition_anchor(probs.float()).dtype == torch.float64

    def with_outliers(self) -> torch.Tensor:
        """5 % anchors per class, and one over-confident outlier per class (p = e_i, a memorised sample)."""
        torch.manual_seed(1)  # the Dirichlet draws
        outliers = torch.eye(4, dtype=torch.float64)
        return torch.cat([noisy_posteriors(self.T, anchors_per_class=60, mixed=956), outliers])

    def test_the_97th_percentile_ignores_outliers_that_fool_the_argmax(self):
        # the argmax picks the outliers, the 97th percentile lands among the anchors
        probs = self.with_outliers()
        assert torch.equal(noise.estimate_transition_anchor(probs), torch.eye(4, dtype=torch.float64))
        torch.testing.assert_close(noise.estimate_transition_anchor(probs, percentile=97), self.T,
                                   rtol=0, atol=1e-15)

    def test_the_percentile_is_numpys_higher_rule_and_100_is_the_argmax(self):
        probs = torch.softmax(torch.randn(101, 3, generator=gen(2), dtype=torch.float64), dim=1)
        for q in (0.0, 50.0, 97.0, 99.5, 100.0):
            columns = probs.numpy().T
            anchors = [int(np.flatnonzero(col == np.percentile(col, q, method="higher"))[0]) for col in columns]
            assert torch.equal(noise.estimate_transition_anchor(probs, percentile=q), probs[anchors])
        assert torch.equal(noise.estimate_transition_anchor(probs, percentile=100),
                           noise.estimate_transition_anchor(probs))

    def test_the_released_estimator(self):
        # the estimator as released (references.anchor_transition_as_released, our words)
        probs = torch.softmax(3 * torch.randn(400, 5, generator=gen(3), dtype=torch.float64), dim=1)
        ours = noise.estimate_transition_anchor(probs).numpy()
        np.testing.assert_array_equal(R.anchor_transition_as_released(probs.numpy(), False), ours)  # argmax: same
        theirs = R.anchor_transition_as_released(probs.numpy(), True)
        # with the filter, class 0 (before any in-place zero) takes the value one rank below ours:
        # the largest value strictly below the 97th percentile
        rank = int(np.ceil(0.97 * 399))
        column = probs[:, 0].numpy()
        below = np.argsort(column, kind="stable")[rank - 1]
        np.testing.assert_array_equal(theirs[0], probs[below].numpy())
        np.testing.assert_array_equal(noise.estimate_transition_anchor(probs, percentile=97)[0].numpy(),
                                      probs[np.argsort(column, kind="stable")[rank]].numpy())
        # the zeros stay in the array: sample 0 has the largest p_0 (zeroed for class 0) and, after
        # sample 1, the largest p_1, so it is class 1's anchor and its row, as released, has p_0 = 0
        probs = np.array([[0.5, 0.45, 0.05], [0.3, 0.6, 0.1], [0.2, 0.1, 0.7], [0.4, 0.3, 0.3]])
        theirs = R.anchor_transition_as_released(probs, True)
        np.testing.assert_array_equal(theirs[:2], [[0.4, 0.3, 0.3], [0.0, 0.45, 0.05]])
        ours = noise.estimate_transition_anchor(torch.from_numpy(probs), percentile=97)  # N = 4: the argmax
        np.testing.assert_array_equal(ours.numpy(), probs[[0, 1, 2]])

    def test_exact_ties_at_the_percentile_break_the_released_rule(self):
        # anchors tie exactly at T_ii (the synthetic data above): zeroing all values >= the
        # percentile removes every anchor, and the released rule picks a mixed sample instead
        probs = self.with_outliers()
        theirs = R.anchor_transition_as_released(probs.numpy(), True)
        assert not np.allclose(theirs[0], self.T[0].numpy(), atol=1e-3)

    @pytest.mark.parametrize("probs,kw,exc,match", [
        (torch.tensor([[1, 0]]), {}, TypeError, "probs must be a floating torch.Tensor, got torch.int64"),
        ([[0.5, 0.5]], {}, TypeError, "probs must be a floating torch.Tensor, got list"),
        (torch.tensor([0.5, 0.5]), {}, ValueError, r"probs must have shape \(N, C\)"),
        (torch.tensor([[2.0, -1.0]]), {}, ValueError, r"probs must hold probabilities in \[0, 1\]"),
        (torch.tensor([[0.5, 0.4]]), {}, ValueError, "rows of probs must sum to 1, largest deviation 0.1"),
        (torch.tensor([[0.5, 0.5]]), {"percentile": 101}, ValueError, r"percentile must be in \[0, 100\], got 101"),
        (torch.tensor([[0.5, 0.5]]), {"percentile": "97"}, TypeError, "percentile must be a real number"),
    ])
    def test_bad_arguments_name_themselves(self, probs, kw, exc, match):
        with pytest.raises(exc, match=match):
            noise.estimate_transition_anchor(probs, **kw)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_on_cuda_the_losses_run_without_a_host_sync():
    # a Module's T is a buffer on the device: the loss checks its shape only, and inverts it with
    # inv_ex, which reads no error code on the host
    losses = [L.ForwardCorrectionLoss("sym:0.4", num_classes=10), L.BackwardCorrectionLoss("pair:0.3", 10),
              L.NLSLoss(), L.Poly1Loss(), L.TaylorLoss()]
    z = torch.randn(64, 10, device="cuda", requires_grad=True)
    y = torch.randint(0, 10, (64,), device="cuda")
    expected = [loss(z.detach().cpu(), y.cpu()) for loss in losses]
    losses = [loss.cuda() for loss in losses]
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        out = [loss(z, y) for loss in losses]
        torch.stack(out).sum().backward()
    finally:
        torch.cuda.set_sync_debug_mode(0)
    torch.testing.assert_close(torch.stack(out).cpu(), torch.stack(expected), rtol=1e-5, atol=1e-6)
