"""Where the time of a training step goes.

    python benchmarks/bench_train.py            # on this machine's device (CUDA when present)
    python benchmarks/bench_train.py --cnn      # the small CNN too (default on CUDA)
    python benchmarks/bench_train.py --quick    # a fast smoke run (tests/test_benchmarks.py)

A training step is the one of :func:`noisyloss.train.fit` without augmentation: a batch drawn on the
device, forward, loss, backward, SGD step, on the threads ``setup()`` sets.  Two tables:

1. **Loss share.** The digits MLP (and, with ``--cnn``, the small CNN on CIFAR-shaped random images),
   per loss: the step's time, and the loss's own forward+backward on logits of the step's shape, as
   a share of the step.
2. **CUDA.** Host syncs per step (``torch.cuda.set_sync_debug_mode``; target 0), and the step with
   forward and loss compiled by ``torch.compile`` against eager.

Timings are medians of ``torch.utils.benchmark`` runs; they describe the machine they ran on, which
the header names.
"""
from __future__ import annotations

import argparse
import os
import platform
import warnings
from typing import Callable, List, Optional

import torch
from torch import Tensor, nn
from torch.utils import benchmark

import noisyloss
from noisyloss import runtime
from noisyloss.data import load_dataset
from noisyloss.models import make_model
from noisyloss.registry import functional_loss, make_loss

SPECS = ["ce", "ls", "mae", "gce", "sce", "nce_rce", "focal", "bootstrap", "bootstrap:hard=true", "peer", "nl"]


def make_step(model: nn.Module, forward: Callable[[Tensor, Tensor], Tensor], x: Tensor, y: Tensor,
              batch: int) -> Callable[[], None]:
    """One training step of ``model`` on a random batch of ``(x, y)``, as a closure; ``forward(x, y)``
    returns the loss (``eager(model, loss)``, or that compiled)."""
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    gen = torch.Generator(device=x.device).manual_seed(0)

    def step() -> None:
        idx = torch.randint(0, len(y), (batch,), device=x.device, generator=gen)
        value = forward(x[idx], y[idx])
        opt.zero_grad(set_to_none=True)
        value.backward()
        opt.step()

    return step


def eager(model: nn.Module, loss: nn.Module) -> Callable[[Tensor, Tensor], Tensor]:
    return lambda x, y: loss(model(x), y)


def seconds(fn: Callable[[], None], min_run_time: float) -> float:
    """Median seconds of one call of ``fn`` (CUDA synchronised by the timer)."""
    fn()  # warm-up
    timer = benchmark.Timer(stmt="fn()", globals={"fn": fn}, num_threads=torch.get_num_threads())
    return timer.blocked_autorange(min_run_time=min_run_time).median


def loss_only(spec: str, n: int, c: int, device: torch.device) -> Callable[[], None]:
    """The loss's forward and backward on ``(n, c)`` logits."""
    fn = functional_loss(spec)
    logits = torch.randn(n, c, device=device, requires_grad=True)
    target = torch.randint(0, c, (n,), device=device)

    def run() -> None:
        logits.grad = None
        fn(logits, target).backward()

    return run


def setups(device: torch.device, cnn: bool, quick: bool):
    """``(name, model builder, x, y, batch)`` of the models to time."""
    digits = load_dataset("digits", device=device)
    yield ("digits MLP", lambda: make_model("mlp", 10, 1, 8), digits.x_train, digits.y_train, 256)
    if cnn:
        n = 512 if quick else 4096
        g = torch.Generator(device=device).manual_seed(0)
        x = torch.randn(n, 3, 32, 32, device=device, generator=g)
        if device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        y = torch.randint(0, 10, (n,), device=device, generator=g)
        width = (16, 32, 32) if quick else (64, 256, 256)
        yield ("CNN, random CIFAR-shaped images", lambda: make_model("cnn", 10, 3, 32, widths=width), x, y,
               64 if quick else 512)


def fresh_model(build, device: torch.device, x: Tensor) -> nn.Module:
    """The model ``build`` makes from seed 0, on ``device``; channels-last for images on CUDA."""
    torch.manual_seed(0)
    model = build().to(device)
    if device.type == "cuda" and x.dim() == 4:
        model = model.to(memory_format=torch.channels_last)
    return model


def loss_share_table(device: torch.device, specs: List[str], cnn: bool, quick: bool, min_run_time: float) -> None:
    for name, build, x, y, batch in setups(device, cnn, quick):
        print(f"\n[1] loss share of a training step: {name}, batch {batch}, {torch.get_num_threads()} threads")
        print(f"{'loss':22s} {'step ms':>9s} {'loss fwd+bwd ms':>16s} {'share':>7s}")
        for spec in specs:
            model = fresh_model(build, device, x)
            step = seconds(make_step(model, eager(model, make_loss(spec)), x, y, batch), min_run_time)
            own = seconds(loss_only(spec, batch, 10, device), min_run_time)
            print(f"{spec:22s} {step * 1e3:9.3f} {own * 1e3:16.3f} {own / step:7.1%}")


def syncs_per_step(step: Callable[[], None], steps: int) -> float:
    """Host synchronisations per call of ``step``, counted by CUDA's sync debug mode."""
    step()
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for _ in range(steps):
                step()
    finally:
        torch.cuda.set_sync_debug_mode(0)
    return sum("synchroniz" in str(w.message) for w in caught) / steps


def cuda_table(device: torch.device, specs: List[str], compile_specs: List[str], quick: bool,
               min_run_time: float) -> None:
    for name, build, x, y, batch in setups(device, True, quick):
        print(f"\n[2] CUDA: {name}, batch {batch}")
        print(f"{'loss':22s} {'syncs/step':>10s} {'eager ms':>9s} {'compiled ms':>12s} {'speed-up':>9s}")
        for spec in specs:
            model = fresh_model(build, device, x)
            forward = eager(model, make_loss(spec))
            syncs = syncs_per_step(make_step(model, forward, x, y, batch), 3 if quick else 20)
            line = f"{spec:22s} {syncs:10.2f}"
            if spec in compile_specs:
                t_eager = seconds(make_step(model, forward, x, y, batch), min_run_time)
                step = make_step(model, torch.compile(forward), x, y, batch)
                for _ in range(3):  # compilation happens in the first calls
                    step()
                t_compiled = seconds(step, min_run_time)
                line += f" {t_eager * 1e3:9.3f} {t_compiled * 1e3:12.3f} {t_eager / t_compiled:9.2f}"
            print(line)


def main(argv: Optional[List[str]] = None) -> None:
    device = runtime.default_device()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default=str(device))
    ap.add_argument("--cnn", action="store_true", help="time the small CNN too (always on CUDA)")
    ap.add_argument("--quick", action="store_true", help="a fast smoke run: few losses, short timings")
    ap.add_argument("--min-run-time", type=float, default=None, help="seconds per measurement")
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    runtime.configure_threads()  # the threads every notebook and the CLI get (setup())
    specs = ["ce", "gce"] if args.quick else SPECS
    min_run_time = args.min_run_time or (0.01 if args.quick else 0.5)
    print(f"noisyloss {noisyloss.__version__}, torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, {torch.get_num_threads()} torch threads, device {device}"
          f"{' (' + torch.cuda.get_device_name(device) + ')' if device.type == 'cuda' else ''}")
    loss_share_table(device, specs, args.cnn or device.type == "cuda", args.quick, min_run_time)
    if device.type == "cuda":
        cuda_table(device, specs, ["ce", "gce", "nl"], args.quick, min_run_time)


if __name__ == "__main__":
    main()
