"""Forward+backward time of every noisyloss loss, relative to ``F.cross_entropy``, side by side.

Also times the "one-hot / clip" style that circulating implementations use (softmax, clamp the
probabilities, multiply by a one-hot matrix) for the losses that have such a form, so the table shows
what the log-space, gather-based implementations save.

    python benchmarks/bench_losses.py                 # CPU, N=4096, C=10 and C=100, 1 and all threads
    python benchmarks/bench_losses.py --device cuda   # on a GPU

Target: every loss <= 1.5x F.cross_entropy.  Every column is timed in the same process, interleaved
(``--rounds`` rounds, the best kept), so a busy machine slows every column alike.

The C allocator: glibc returns freed blocks of an ``N x C`` buffer's size to the kernel, and a new
one then pays a page fault per 4 KiB, which on a VM can cost more than the loss's arithmetic
(``F.cross_entropy`` allocates three such buffers per call and often takes ~100 faults).  By default
the script re-runs itself with glibc's trimming and mmap thresholds raised (``--malloc steady``), so
the table compares arithmetic; ``--malloc default`` times the allocator as it comes.  The
``faults`` column gives the page faults per call either way.
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
from typing import Callable, Dict, List, Tuple

import torch
import torch.nn.functional as F
from torch.utils import benchmark

import noisyloss
from noisyloss.registry import functional_loss

SPECS = ["mae", "gce", "gce:q=0.7,k=0.5", "rce", "sce", "nce", "nce_rce", "focal", "bootstrap",
         "bootstrap:hard=true", "peer", "nl", "ls:eps=0.1"]


# --- the style of the source articles: softmax, clip, one-hot products (for comparison only) ---------
def _onehot_probs(logits: torch.Tensor, target: torch.Tensor):
    p = F.softmax(logits, dim=1).clamp(min=1e-7, max=1.0)
    return p, F.one_hot(target, logits.shape[1]).float()


def naive_mae(logits, target):
    p, y = _onehot_probs(logits, target)
    return (1.0 - (p * y).sum(1)).mean()


def naive_gce(logits, target, q=0.7):
    p, y = _onehot_probs(logits, target)
    return ((1.0 - (p * y).sum(1) ** q) / q).mean()


def naive_rce(logits, target, A=-4.0):
    p, y = _onehot_probs(logits, target)
    y = y.clamp(min=torch.exp(torch.tensor(A)).item(), max=1.0)
    return (-(p * torch.log(y)).sum(1)).mean()


def naive_sce(logits, target, alpha=0.1, beta=1.0):
    return alpha * F.cross_entropy(logits, target) + beta * naive_rce(logits, target)


def naive_nce(logits, target):
    logp = torch.log(F.softmax(logits, dim=1))
    y = F.one_hot(target, logits.shape[1]).float()
    return (-(y * logp).sum(1) / (-logp.sum(1))).mean()


def naive_focal(logits, target, gamma=2.0):
    p, y = _onehot_probs(logits, target)
    return (-(y * (1 - p) ** gamma * torch.log(p)).sum(1)).mean()


NAIVE: Dict[str, Callable] = {"mae": naive_mae, "gce": naive_gce, "rce": naive_rce, "sce": naive_sce,
                              "nce": naive_nce, "focal": naive_focal}


def time_fwd_bwd(fns: Dict[str, Callable], logits: torch.Tensor, target: torch.Tensor, min_run_time: float,
                 rounds: int, threads: int = 1) -> Dict[str, Tuple[float, float]]:
    """``(seconds, page faults)`` of one forward+backward for each fn: the fns are timed interleaved,
    ``rounds`` times each, and the best round's median is kept, so a busy machine slows every column
    alike."""
    steps = {}
    for name, fn in fns.items():
        x = logits.detach().clone().requires_grad_(True)

        def step(fn=fn, x=x):
            x.grad = None
            fn(x, target).backward()

        step()
        steps[name] = step
    best = {name: float("inf") for name in fns}
    faults = {}
    for _ in range(rounds):
        for name, step in steps.items():
            t = benchmark.Timer(stmt="step()", globals={"step": step}, num_threads=threads).blocked_autorange(
                min_run_time=min_run_time)
            best[name] = min(best[name], t.median)
    for name, step in steps.items():
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(20):
            step()
        faults[name] = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 20
    return {name: (best[name], faults[name]) for name in fns}


_STEADY = {"MALLOC_TRIM_THRESHOLD_": str(2**30), "MALLOC_MMAP_THRESHOLD_": str(2**30)}


def main(argv: List[str] = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--n", type=int, default=4096)
    ap.add_argument("--classes", type=int, nargs="+", default=[10, 100])
    ap.add_argument("--min-run-time", type=float, default=0.05, help="seconds per measurement")
    ap.add_argument("--rounds", type=int, default=8, help="interleaved rounds; the best is kept")
    ap.add_argument("--threads", type=int, nargs="+", default=None,
                    help="torch thread counts to time (default: 1 and all of this machine's)")
    ap.add_argument("--malloc", choices=["steady", "default"], default="steady",
                    help="steady: re-run with glibc's trimming off (see above); default: as it comes")
    args = ap.parse_args(argv)
    steady = all(os.environ.get(k) == v for k, v in _STEADY.items())
    if args.malloc == "steady" and sys.platform.startswith("linux") and argv is None and not steady:
        os.execve(sys.executable, [sys.executable] + sys.argv, {**os.environ, **_STEADY})
    device = torch.device(args.device)
    threads = args.threads or sorted({1, torch.get_num_threads()})
    torch.manual_seed(0)
    from noisyloss import _native
    print(f"losses' CPU backend: {_native.status()}")
    print(f"noisyloss {noisyloss.__version__}, torch {torch.__version__}, device {device}"
          f"{' (' + torch.cuda.get_device_name(device) + ')' if device.type == 'cuda' else ''}, N={args.n}, "
          f"malloc {'steady (glibc trimming off)' if steady else 'as it comes'}")
    worst: Dict[int, float] = {}
    for nthreads in threads:
        for c in args.classes:
            logits = 3 * torch.randn(args.n, c, device=device)
            target = torch.randint(0, c, (args.n,), device=device)
            fns: Dict[str, Callable] = {"F.cross_entropy": lambda z, t: F.cross_entropy(z, t)}
            fns.update({spec: functional_loss(spec) for spec in SPECS})
            fns.update({"naive " + spec: fn for spec, fn in NAIVE.items()})
            t = time_fwd_bwd(fns, logits, target, args.min_run_time, args.rounds, nthreads)
            base, base_faults = t["F.cross_entropy"]
            print(f"\nthreads {nthreads}, C={c}: F.cross_entropy fwd+bwd = {base * 1e6:.1f} us, "
                  f"{base_faults:.0f} page faults per call")
            print(f"{'loss':22s} {'us':>9s} {'x CE':>7s} {'faults':>7s} {'one-hot/clip us':>16s} {'x CE':>7s} "
                  f"{'ours/naive':>10s}")
            for spec in SPECS:
                ours, faults = t[spec]
                worst[nthreads] = max(worst.get(nthreads, 0.0), ours / base)
                line = f"{spec:22s} {ours * 1e6:9.1f} {ours / base:7.2f} {faults:7.0f}"
                if spec in NAIVE:
                    tn = t["naive " + spec][0]
                    line += f" {tn * 1e6:16.1f} {tn / base:7.2f} {ours / tn:10.2f}"
                print(line)
    print()
    for nthreads, w in worst.items():
        print(f"threads {nthreads}: worst ratio to F.cross_entropy {w:.2f}x (target <= 1.5x): "
              f"{'OK' if w <= 1.5 else 'MISSED'}")


if __name__ == "__main__":
    main()
