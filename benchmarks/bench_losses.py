"""Forward+backward time of every noisyloss loss, relative to ``F.cross_entropy``, side by side.

Also times the "one-hot / clip" style that circulating implementations use (softmax, clamp the
probabilities, multiply by a one-hot matrix) for the losses that have such a form, so the table shows
what the log-space, gather-based implementations save.

    python benchmarks/bench_losses.py                 # CPU, N=4096, C=10 and C=100
    python benchmarks/bench_losses.py --device cuda   # on a GPU

Target: every loss <= 1.5x F.cross_entropy.  Timing uses one torch thread unless ``--threads`` says
otherwise (torch.utils.benchmark's default); every column is timed in the same process, interleaved,
so the ratios are side by side.  Absolute times on CPU also depend on the C allocator: a process in
which glibc returns freed buffers to the kernel pays page faults on every new N x C buffer, which
penalises losses that need two such buffers (soft bootstrap) more than those with one.
"""
from __future__ import annotations

import argparse
from typing import Callable, Dict, List

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
                 rounds: int, threads: int = 1) -> Dict[str, float]:
    """Seconds of one forward+backward for each fn: the fns are timed interleaved, ``rounds`` times
    each, and the best round's median is kept, so a busy machine slows every column alike."""
    steps = {}
    for name, fn in fns.items():
        x = logits.detach().clone().requires_grad_(True)

        def step(fn=fn, x=x):
            x.grad = None
            fn(x, target).backward()

        step()
        steps[name] = step
    best = {name: float("inf") for name in fns}
    for _ in range(rounds):
        for name, step in steps.items():
            t = benchmark.Timer(stmt="step()", globals={"step": step}, num_threads=threads).blocked_autorange(
                min_run_time=min_run_time)
            best[name] = min(best[name], t.median)
    return best


def main(argv: List[str] = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--n", type=int, default=4096)
    ap.add_argument("--classes", type=int, nargs="+", default=[10, 100])
    ap.add_argument("--min-run-time", type=float, default=0.2, help="seconds per measurement")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the best is kept")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads while timing (default 1, torch.utils.benchmark's default)")
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    torch.manual_seed(0)
    print(f"noisyloss {noisyloss.__version__}, torch {torch.__version__}, device {device}"
          f"{' (' + torch.cuda.get_device_name(device) + ')' if device.type == 'cuda' else ''}, "
          f"timing threads {args.threads}, N={args.n}")
    worst = 0.0
    for c in args.classes:
        logits = 3 * torch.randn(args.n, c, device=device)
        target = torch.randint(0, c, (args.n,), device=device)
        fns: Dict[str, Callable] = {"F.cross_entropy": lambda z, t: F.cross_entropy(z, t)}
        fns.update({spec: functional_loss(spec) for spec in SPECS})
        fns.update({"naive " + spec: fn for spec, fn in NAIVE.items()})
        t = time_fwd_bwd(fns, logits, target, args.min_run_time, args.rounds, args.threads)
        base = t["F.cross_entropy"]
        print(f"\nC={c}: F.cross_entropy fwd+bwd = {base * 1e6:.1f} us")
        print(f"{'loss':22s} {'us':>9s} {'x CE':>7s} {'one-hot/clip us':>16s} {'x CE':>7s} {'ours/naive':>10s}")
        for spec in SPECS:
            ours = t[spec]
            worst = max(worst, ours / base)
            line = f"{spec:22s} {ours * 1e6:9.1f} {ours / base:7.2f}"
            if spec in NAIVE:
                tn = t["naive " + spec]
                line += f" {tn * 1e6:16.1f} {tn / base:7.2f} {ours / tn:10.2f}"
            print(line)
    print(f"\nworst ratio to F.cross_entropy: {worst:.2f}x (target <= 1.5x): {'OK' if worst <= 1.5 else 'MISSED'}")


if __name__ == "__main__":
    main()
