"""Where the time of a training step goes, and how the step holds up on a shared machine.

    python benchmarks/bench_train.py            # on this machine's device (CUDA when present)
    python benchmarks/bench_train.py --cnn      # the small CNN too (default on CUDA)
    python benchmarks/bench_train.py --quick    # a fast smoke run (tests/test_benchmarks.py)

A training step is the one of :func:`noisyloss.train.fit` without augmentation: a batch drawn on the
device, forward, loss, backward, SGD step.  Three tables:

1. **Loss share.** The digits MLP (and, with ``--cnn``, the small CNN on CIFAR-shaped random images),
   per loss: the step's time, and the loss's own forward+backward on logits of the step's shape, as
   a share of the step.
2. **Contention** (CPU). The digits-MLP step alone and beside one busy process (a Python loop
   spinning on a core, started just before the measurement), with torch's default threads, one
   thread, and the threads :func:`noisyloss.runtime.configure_threads` (called by ``setup()``)
   picks, which on a 2-CPU machine follow the load.  Mean step time over a window, so a switch of
   threads is paid for in the number.  Target: beside the busy process at most 1.6x the time alone,
   and alone at most 20 % slower than the default.
3. **CUDA.** Host syncs per step (``torch.cuda.set_sync_debug_mode``; target 0), and the step with
   forward and loss compiled by ``torch.compile`` against eager.

Timings are medians of ``torch.utils.benchmark`` runs; they describe the machine they ran on, which
the header names.
"""
from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
import warnings
from typing import Callable, Dict, List, Optional

import torch
from torch import Tensor, nn
from torch.utils import benchmark

import noisyloss
from noisyloss import runtime
from noisyloss.data import load_dataset
from noisyloss.models import make_model
from noisyloss.registry import functional_loss, make_loss

SPECS = ["ce", "ls", "mae", "gce", "sce", "nce_rce", "focal", "bootstrap", "bootstrap:hard=true", "peer", "nl"]
#: torch's own choice, read before anything here changes it
DEFAULT_THREADS = torch.get_num_threads()


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


def mean_step_seconds(step: Callable[[], None], window: float) -> float:
    """Mean seconds per call of ``step`` over ``window`` seconds of calls, everything included (a
    thread switch in the middle too: no median hides it)."""
    start, calls = time.perf_counter(), 0
    while time.perf_counter() - start < window:
        step()
        calls += 1
    return (time.perf_counter() - start) / calls


def contention_table(window: float, rounds: int) -> None:
    """The digits-MLP step with fixed threads and with ``setup()``'s threads, which follow the load
    (the step calls ``runtime.balance_threads()``, as ``train.fit`` does), alone and beside a busy
    process started just before the measurement."""
    runtime.configure_threads()
    digits = load_dataset("digits")
    torch.manual_seed(0)
    model = make_model("mlp", 10, 1, 8)
    step = make_step(model, eager(model, make_loss("ce")), digits.x_train, digits.y_train, 256)

    def fixed(threads: int) -> Callable[[], float]:
        def measure() -> float:
            with runtime.fixed_threads(threads):
                return mean_step_seconds(step, window)
        return measure

    def by_load() -> float:
        return mean_step_seconds(lambda: (step(), runtime.balance_threads()), window)

    settings = {f"torch default ({DEFAULT_THREADS})": fixed(DEFAULT_THREADS), "one thread": fixed(1)}
    if runtime.adapting_threads():
        settings["setup(): by load"] = by_load
    else:
        settings[f"setup() ({torch.get_num_threads()})"] = fixed(torch.get_num_threads())
    step()
    alone = {k: float("inf") for k in settings}
    busy = dict(alone)
    for _ in range(rounds):  # interleaved, best of the rounds: a drifting machine hits both alike
        for k, measure in settings.items():
            time.sleep(0.6)  # setup()'s threads see the machine quiet again
            alone[k] = min(alone[k], measure())
        for k, measure in reversed(settings.items()):  # setup()'s first, right after the process starts
            spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
            try:
                busy[k] = min(busy[k], measure())
            finally:
                spinner.kill()
                spinner.wait()
    print(f"\n[2] contention: digits-MLP step (batch 256, CE), {runtime.usable_cpus()} usable CPUs, "
          f"one busy competing process; mean step over {window:g} s, best of {rounds}")
    print(f"{'threads':22s} {'alone ms':>9s} {'busy ms':>9s} {'busy/alone':>11s} {'alone vs default':>17s}")
    base = alone[next(iter(settings))]
    for k in settings:
        print(f"{k:22s} {alone[k] * 1e3:9.3f} {busy[k] * 1e3:9.3f} {busy[k] / alone[k]:11.2f} "
              f"{alone[k] / base - 1:+17.1%}")
    k = list(settings)[-1]
    ok = busy[k] / alone[k] <= 1.6 and alone[k] / base - 1 <= 0.2
    print(f"setup(): busy/alone {busy[k] / alone[k]:.2f} (target <= 1.6), alone {alone[k] / base - 1:+.1%} vs default "
          f"(target <= +20%): {'MET' if ok else 'MISSED'}")
    runtime.configure_threads()


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
        print(f"\n[3] CUDA: {name}, batch {batch}")
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
    ap.add_argument("--rounds", type=int, default=None, help="interleaved rounds of the contention table")
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    runtime.configure_threads()  # the threads every notebook and the CLI get (setup())
    specs = ["ce", "gce"] if args.quick else SPECS
    min_run_time = args.min_run_time or (0.01 if args.quick else 0.5)
    print(f"noisyloss {noisyloss.__version__}, torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"{runtime.usable_cpus()} usable CPUs ({os.cpu_count()} in the machine), torch default threads "
          f"{DEFAULT_THREADS}, device {device}"
          f"{' (' + torch.cuda.get_device_name(device) + ')' if device.type == 'cuda' else ''}")
    loss_share_table(device, specs, args.cnn or device.type == "cuda", args.quick, min_run_time)
    if device.type == "cpu":
        contention_table(0.2 if args.quick else 3.0, args.rounds or (1 if args.quick else 5))
    else:
        cuda_table(device, specs, ["ce", "gce", "nl"], args.quick, min_run_time)


if __name__ == "__main__":
    main()
