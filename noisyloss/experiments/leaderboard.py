"""The leaderboard grid: every registered loss at its paper's setting on the CPU sets.

Each loss runs on ``synth10`` with its CIFAR-10 preset and on ``synth100`` with its CIFAR-100 preset
(:func:`noisyloss.presets`; the other dataset's preset, then the registry's defaults, where a paper
gives none), at symmetric noise 0.2, 0.4, 0.6, 0.8 and pair flips at 0.4, over seeds 0, 1, 2, in
quick mode.  Truncated GCE's pruning epochs are scaled from the paper's 120 epochs to the run's.

Regenerate the grid (a rerun skips what ``OUT/records.jsonl`` already holds)::

    python -m noisyloss.experiments.leaderboard --out runs/leaderboard            # CPU
    python -m noisyloss.experiments.leaderboard --out runs/leaderboard --device cuda
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

from ..registry import LOSSES, PRESETS, parse_spec
from ..runtime import configure_threads
from .config import RunConfig
from .runner import sweep

__all__ = ["DATASETS", "NOISES", "SEEDS", "EPOCHS", "paper_setting", "configs", "main"]

#: CPU set -> the CIFAR preset suffix whose setting it runs
DATASETS = {"synth10": "cifar10", "synth100": "cifar100"}
NOISES = ("sym:0.2", "sym:0.4", "sym:0.6", "sym:0.8", "pair:0.4")
SEEDS = (0, 1, 2)
EPOCHS = 20
PAPER_EPOCHS = 120  # Truncated-Loss trains 120 epochs; its pruning epochs are scaled to EPOCHS


def paper_setting(loss: str, dataset: str, epochs: int = EPOCHS) -> Tuple[str, str]:
    """``(spec, source)`` of ``loss`` on ``dataset`` (a key of :data:`DATASETS`)."""
    suffix = DATASETS[dataset]
    other = "cifar100" if suffix == "cifar10" else "cifar10"
    for name in (f"{loss}_{suffix}", f"{loss}_{other}"):
        if name in PRESETS:
            spec, source = PRESETS[name].spec, PRESETS[name].source
            if name.endswith(other):
                source += f" (the {other.upper()} setting: none is given for {suffix.upper()})"
            break
    else:
        spec, source = loss, "the registry's defaults (no preset)"
    if loss == "gce_prune":
        _, params = parse_spec(spec)
        scale = lambda e: max(1, round(e * epochs / PAPER_EPOCHS))  # noqa: E731
        spec = (f"gce_prune:q={params.get('q', 0.7)},k={params.get('k', 0.5)},"
                f"start_prune={scale(params['start_prune'])},prune_every={scale(params['prune_every'])}")
        source += f"; pruning epochs scaled by {epochs}/{PAPER_EPOCHS}"
    return spec, source


def configs(datasets: Sequence[str] = tuple(DATASETS), seeds: Sequence[int] = SEEDS,
            epochs: int = EPOCHS) -> List[RunConfig]:
    """The grid's runs: every loss of :data:`noisyloss.registry.LOSSES` × noise × seed per dataset."""
    return [RunConfig(dataset=d, loss=paper_setting(loss, d, epochs)[0], noise=n, seed=s, epochs=epochs, quick=True)
            for d in datasets for n in NOISES for loss in LOSSES for s in seeds]


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m noisyloss.experiments.leaderboard",
                                     description="Train the leaderboard grid into OUT/records.jsonl.")
    parser.add_argument("--out", default="runs/leaderboard", help="folder of records.jsonl (default: %(default)s)")
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda when present)")
    parser.add_argument("--datasets", nargs="+", choices=list(DATASETS), default=list(DATASETS))
    parser.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS))
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    configure_threads()  # NOISYLOSS_THREADS, as the CLI
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    records = sweep(configs(args.datasets, args.seeds), out / "records.jsonl", device=args.device,
                    progress=not args.no_progress)
    print(f"{len(records)} records in {out / 'records.jsonl'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
