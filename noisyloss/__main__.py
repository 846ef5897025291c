"""Command line: ``python -m noisyloss run ...`` (a sweep into DIR/records.jsonl) and
``python -m noisyloss losses``.

Examples::

    python -m noisyloss run --dataset cifar10 --noise sym:0.4 --loss ce gce:q=0.7 --epochs 40 --out runs/c10
    python -m noisyloss run --dataset digits --noise sym:0.2 sym:0.4 --loss ce --loss mae --seeds 0 1 --quick
    python -m noisyloss losses

``--loss``, ``--noise`` and ``--seeds`` take several values and may be repeated; specs are never
split on commas (``sce:alpha=0.1,beta=1`` is one loss).  A rerun with the same ``--out`` skips the
runs already recorded there.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List, Optional

from . import experiments
from .data import DATASETS, DownloadError
from .models import MODELS
from .registry import available_losses

RECORDS = "records.jsonl"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="noisyloss", description="Noise-robust losses: experiments and listings.")
    sub = parser.add_subparsers(dest="command", required=True)
    runp = sub.add_parser("run", help="train every (noise, loss, seed) combination; records to OUT/records.jsonl")
    runp.add_argument("--dataset", default="digits", choices=sorted(DATASETS))
    runp.add_argument("--noise", nargs="+", action="extend", help="noise specs, e.g. clean sym:0.4 asym:0.4")
    runp.add_argument("--loss", nargs="+", action="extend", help="loss specs, e.g. ce gce:q=0.7 (see `losses`)")
    runp.add_argument("--seeds", nargs="+", action="extend", type=int, help="seeds (default 0)")
    runp.add_argument("--epochs", type=int, default=20)
    runp.add_argument("--batch-size", type=int, default=256)
    runp.add_argument("--lr", type=float, default=None, help="peak learning rate (default per model)")
    runp.add_argument("--model", choices=sorted(MODELS), default=None)
    runp.add_argument("--train-subset", type=int, default=None, help="train on this many images")
    runp.add_argument("--no-augment", action="store_true", help="no random translate / flip")
    mode = runp.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="small data (CIFAR 5k/1k), like NOISYLOSS_QUICK=1")
    mode.add_argument("--full", action="store_true", help="full data even on CPU")
    runp.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda when present)")
    runp.add_argument("--out", type=Path, default=Path("runs"), help="folder for records.jsonl (default runs/)")
    runp.add_argument("--no-progress", action="store_true", help="no progress bars")
    sub.add_parser("losses", help="list the available losses and their default parameters")
    return parser


def _run(args: argparse.Namespace) -> int:
    quick = True if args.quick else False if args.full else None
    try:
        configs = experiments.grid(
            args.loss or ["ce"], args.noise or ["clean"], args.seeds or [0], dataset=args.dataset,
            epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, model=args.model,
            train_subset=args.train_subset, augment=not args.no_augment, quick=quick,
        )
    except ValueError as err:
        print(f"noisyloss run: error: {err}", file=sys.stderr)
        return 2
    out = args.out / RECORDS
    print(f"{len(configs)} run(s) -> {out}")
    try:
        records = experiments.sweep(configs, out, device=args.device, progress=not args.no_progress)
    except (FileNotFoundError, DownloadError) as err:
        print(f"noisyloss run: data unavailable: {err}", file=sys.stderr)
        return 1
    print(experiments.summary_table(records))
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "losses":
        losses = available_losses()
        width = max(map(len, losses))
        for name, description in losses.items():
            print(f"{name.ljust(width)}  {description}")
        return 0
    return _run(args)


if __name__ == "__main__":
    sys.exit(main())
