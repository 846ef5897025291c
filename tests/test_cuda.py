"""On CUDA every loss equals its CPU values, stays finite in half precision, never syncs the host and
compiles with fullgraph=True.

Skipped where no CUDA device is present (CI); run on a GPU machine with ``pytest tests/test_cuda.py``.
"""
import pytest
import torch

import noisyloss
from noisyloss.registry import LOSSES, make_loss
from test_functional import assert_compiled_equals_eager

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

#: losses called as loss(logits, target); those that need the sample indices are tested in their own files
PER_BATCH = [n for n in LOSSES if not getattr(LOSSES[n].cls, "needs_index", False)]
DETERMINISTIC = [n for n in PER_BATCH if n not in ("peer", "nl", "ols")]


@pytest.mark.parametrize("name", DETERMINISTIC)
@pytest.mark.parametrize("num_classes", [10, 100])
def test_cuda_matches_cpu(name, num_classes):
    torch.manual_seed(0)
    logits = 5 * torch.randn(512, num_classes, dtype=torch.float64)
    target = torch.randint(0, num_classes, (512,))
    loss = make_loss(name, reduction="none")
    values, grads = [], []
    for device in ("cpu", "cuda"):
        x = logits.to(device).detach().requires_grad_(True)
        out = loss(x, target.to(device))
        out.sum().backward()
        values.append(out.detach().cpu())
        grads.append(x.grad.cpu())
    torch.testing.assert_close(values[1], values[0], rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("name", PER_BATCH)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_cuda_extreme_logits_finite(name, dtype):
    torch.manual_seed(1)
    c = 10
    logits = (torch.randint(-1, 2, (256, c)) * 6e4 if dtype == torch.float16 else
              torch.randint(-1, 2, (256, c)) * 1e4).to("cuda", dtype).requires_grad_(True)
    target = torch.randint(0, c, (256,), device="cuda")
    loss = (make_loss(name, num_classes=c) if name == "ols" else make_loss(name)).to("cuda")
    out = loss(logits, target)
    out.backward()
    assert torch.isfinite(out), (name, dtype, out)
    assert torch.isfinite(logits.grad).all(), (name, dtype)


def test_generator_on_cuda_reproducible():
    logits = torch.randn(64, 10, device="cuda")
    target = torch.randint(0, 10, (64,), device="cuda")
    runs = [noisyloss.functional.peer(logits, target, generator=torch.Generator("cuda").manual_seed(3))
            for _ in range(2)]
    assert torch.equal(runs[0], runs[1])


@pytest.mark.parametrize("name", PER_BATCH)
def test_no_host_sync_inside_a_loss(name):
    # a training step that never waits for the host: out-of-range targets are left to gather's
    # device-side assert, as in F.cross_entropy
    logits = torch.randn(64, 10, device="cuda", requires_grad=True)
    target = torch.randint(0, 10, (64,), device="cuda")
    loss = (make_loss(name, num_classes=10) if name == "ols" else make_loss(name)).to("cuda")  # training mode
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        loss(logits, target).backward()
    finally:
        torch.cuda.set_sync_debug_mode(0)


@pytest.mark.parametrize("name", [n for n in PER_BATCH if n != "ols"])
def test_compiled_on_cuda_equals_eager(name, monkeypatch):
    monkeypatch.setattr(torch._inductor.config, "fallback_random", True)  # the eager random stream
    torch._dynamo.reset()
    logits = torch.randn(64, 10, device="cuda", dtype=torch.float64)
    target = torch.randint(0, 10, (64,), device="cuda")
    assert_compiled_equals_eager(make_loss(name, reduction="none"), logits, target, seed=5, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", DETERMINISTIC)
def test_cuda_autocast_keeps_float32(name):
    torch.manual_seed(2)
    logits = (8 * torch.randn(512, 100, device="cuda")).requires_grad_(True)
    target = torch.randint(0, 100, (512,), device="cuda")
    loss = make_loss(name)
    ref = loss(logits, target)
    with torch.autocast("cuda", dtype=torch.float16):
        out = loss(logits, target)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, ref, rtol=1e-6, atol=1e-6)
