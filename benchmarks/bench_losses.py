"""Forward+backward time of every noisyloss loss next to ``F.cross_entropy`` and next to the
"one-hot / clip" code of the source articles.  Informational: it prints a table, it sets no target.

    python benchmarks/bench_losses.py                    # CPU, N=4096, C=10 and C=100
    python benchmarks/bench_losses.py --device cuda      # on a GPU
    python benchmarks/bench_losses.py --compile          # each loss compiled by torch.compile too

The losses are plain torch (log_softmax, gather, the formula, the reduction), so their cost is a few
elementwise passes over the ``N x C`` logits beyond what ``F.cross_entropy`` does.  The one-hot /
clip style (softmax, clamp the probabilities at 1e-7, multiply by a one-hot matrix) is what
circulating implementations of these losses do; it is timed for the losses that have such a form.
Every column is timed in the same process, interleaved (``--rounds`` rounds, the best kept), so a
busy machine slows every column alike.
"""
from __future__ import annotations

import argparse
import math
from typing import Callable, Dict, List, Optional

import torch
import torch.nn.functional as F
from torch.utils import benchmark

import noisyloss
from noisyloss import runtime
from noisyloss.registry import functional_loss

SPECS = ["mae", "gce", "gce:q=0.7,k=0.5", "rce", "sce", "nce", "nce_rce", "focal", "bootstrap",
         "bootstrap:hard=true", "peer", "nl", "ls:eps=0.1"]


# --- the style of the source articles: softmax, clip, one-hot products (for comparison only) ---
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
    y = y.clamp(min=math.exp(A), max=1.0)  # the articles clamp the one-hot at 1e-4, i.e. A = ln 1e-4
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
                 rounds: int) -> Dict[str, float]:
    """Seconds of one forward+backward for each fn: timed interleaved, ``rounds`` times each, the best
    round's median kept."""
    steps = {}
    for name, fn in fns.items():
        x = logits.detach().clone().requires_grad_(True)

        def step(fn=fn, x=x):
            x.grad = None
            fn(x, target).backward()

        for _ in range(3):  # warm-up (and compilation)
            step()
        steps[name] = step
    best = {name: float("inf") for name in fns}
    for _ in range(rounds):
        for name, step in steps.items():
            t = benchmark.Timer(stmt="step()", globals={"step": step}).blocked_autorange(min_run_time=min_run_time)
            best[name] = min(best[name], t.median)
    return best


def main(argv: Optional[List[str]] = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--n", type=int, default=4096)
    ap.add_argument("--classes", type=int, nargs="+", default=[10, 100])
    ap.add_argument("--min-run-time", type=float, default=0.05, help="seconds per measurement")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds; the best is kept")
    ap.add_argument("--compile", action="store_true", help="also time each loss compiled by torch.compile")
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    threads = runtime.configure_threads()  # as setup() in the notebooks
    torch.manual_seed(0)
    print(f"noisyloss {noisyloss.__version__}, torch {torch.__version__}, device {device}"
          f"{' (' + torch.cuda.get_device_name(device) + ')' if device.type == 'cuda' else ''}, N={args.n}, "
          f"{threads} CPU threads")
    for c in args.classes:
        logits = 3 * torch.randn(args.n, c, device=device)
        target = torch.randint(0, c, (args.n,), device=device)
        fns: Dict[str, Callable] = {"F.cross_entropy": lambda z, t: F.cross_entropy(z, t)}
        fns.update({spec: functional_loss(spec) for spec in SPECS})
        fns.update({"one-hot " + spec: fn for spec, fn in NAIVE.items()})
        if args.compile:  # one code object (registry's bound function) for all specs: allow their recompiles
            torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 2 * len(SPECS))
            fns.update({"compiled " + spec: torch.compile(functional_loss(spec)) for spec in SPECS})
        t = time_fwd_bwd(fns, logits, target, args.min_run_time, args.rounds)
        base = t["F.cross_entropy"]
        print(f"\nC={c}: F.cross_entropy fwd+bwd = {base * 1e6:.1f} us")
        header = f"{'loss':22s} {'us':>9s} {'x CE':>7s} {'one-hot/clip us':>16s} {'x CE':>7s}"
        print(header + (f" {'compiled us':>12s} {'x CE':>7s}" if args.compile else ""))
        for spec in SPECS:
            line = f"{spec:22s} {t[spec] * 1e6:9.1f} {t[spec] / base:7.2f}"
            naive = t.get("one-hot " + spec)
            line += f" {naive * 1e6:16.1f} {naive / base:7.2f}" if naive else f" {'-':>16s} {'-':>7s}"
            if args.compile:
                line += f" {t['compiled ' + spec] * 1e6:12.1f} {t['compiled ' + spec] / base:7.2f}"
            print(line)


if __name__ == "__main__":
    main()
