"""Command line: ``python -m noisyloss run ...`` (a sweep into DIR/records.jsonl),
``python -m noisyloss table DIR`` (mean ± std over seeds) and ``python -m noisyloss losses``.

Examples::

    python -m noisyloss run --dataset cifar10 --noise sym:0.4 --loss ce gce:q=0.7 --epochs 40 --out runs/c10
    python -m noisyloss run --dataset digits --noise sym:0.2 sym:0.4 --loss ce --loss mae --seeds 0 1 --quick
    python -m noisyloss table runs/c10 --format markdown --metric test_acc memorised
    python -m noisyloss losses

``--loss``, ``--noise`` and ``--seeds`` take several values and may be repeated; specs are never
split on commas (``sce:alpha=0.1,beta=1`` is one loss); ``run --help`` says how runs resume and share
``--out``.  Every misuse is reported as ``error: ...`` on one line with exit status 2, before anything is
trained; so is a folder that cannot be written (a full disk, a read-only data folder), when it is
met.  Data that cannot be had (offline, a damaged file) exits with status 1.  Ctrl-C stops at once
with one line; the runs recorded so far stay, and the same command resumes.  The command then ends
as an interrupted program does (by SIGINT, status 130 in the shell), so that a shell loop around it
stops too; :func:`main`, called from Python, returns 130.
"""
from __future__ import annotations

import argparse
import importlib
import os
import platform
import signal
import sys
import warnings
from pathlib import Path
from typing import List, Optional

import torch

from . import experiments
from ._checks import check_device
from .data import DataError, DownloadError, LoaderError, available_datasets
from .models import available_models
from .registry import available_losses
from .runtime import configure_threads, default_device, quick_mode

RECORDS = "records.jsonl"
PROG = "noisyloss"
RUN_EPILOG = """\
example:
  python -m noisyloss run --dataset cifar10 --noise sym:0.4 asym:0.4 --loss ce gce:q=0.7 nce_rce \\
      --seeds 0 1 2 --epochs 40 --out runs/c10

resume and sharing: every finished run is appended at once to OUT/records.jsonl; a rerun with the
same --out trains only the runs not recorded there, so an interrupted sweep loses at most the run it
was training.  Several processes (one per GPU, or per machine on shared storage) may run the same
command with one --out: each run is trained once, by whichever process claims it first.
Spellings of one loss are one run (ce = ce:label_smoothing=0).
"""


class _Parser(argparse.ArgumentParser):
    """Errors on one line: ``noisyloss run: error: ...`` and exit status 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


def _add_import(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--import", dest="imports", metavar="MODULE", action="append", default=[],
                        help="import MODULE first (a module name, found in the current folder or the installed "
                             "packages): it registers its own datasets, models, losses (repeatable)")


def _import(modules: List[str]) -> Optional[str]:
    """Import the user's ``modules``; the one-line reason when one cannot be imported, else ``None``."""
    if modules and os.getcwd() not in map(os.path.abspath, sys.path):
        sys.path.insert(0, os.getcwd())  # as `python -m noisyloss` has it: the `noisyloss` command imports from here
    for module in modules:
        if module.endswith(".py"):
            return (f"--import {module}: give the module's name, not its file: --import {Path(module).stem} "
                    f"(from the folder that holds {Path(module).name})")
        try:
            importlib.import_module(module)
        except Exception as err:  # the user's module: whatever it raises is reported in one line
            return f"--import {module}: {type(err).__name__}: {err}"
    return None


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Noise-robust losses: experiments and listings.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    runp = sub.add_parser("run", help="train every (noise, loss, seed) combination; records to OUT/records.jsonl",
                          description="Train every (noise, loss, seed) combination and record each finished run.",
                          epilog=RUN_EPILOG, formatter_class=lambda prog: argparse.RawDescriptionHelpFormatter(
                              prog, max_help_position=32))
    _add_import(runp)
    runp.add_argument("--dataset", default="digits",
                      help=f"built in: {', '.join(available_datasets())}, or one MODULE registers "
                           "(default: %(default)s)")
    runp.add_argument("--noise", nargs="+", action="extend",
                      help="noise specs, e.g. clean sym:0.4 asym:0.4 (asym: the dataset's class pairs, or "
                           "given as asym:0.4:3>5,5>3) (default: clean)")
    runp.add_argument("--loss", nargs="+", action="extend",
                      help="loss specs, e.g. ce gce:q=0.7 (see `noisyloss losses`) (default: ce)")
    runp.add_argument("--seeds", nargs="+", action="extend", type=int, help="seeds (default: 0)")
    runp.add_argument("--epochs", type=int, default=20, help="(default: %(default)s)")
    runp.add_argument("--batch-size", type=int, default=256, help="(default: %(default)s)")
    runp.add_argument("--lr", type=float, default=None,
                      help="peak learning rate (default by model: %s)" % ", ".join(
                          f"{m} {lr}" for m, lr in experiments.DEFAULT_LR.items()))
    runp.add_argument("--model", default=None,
                      help=f"built in: {', '.join(available_models())}, or one MODULE registers "
                           "(default: mlp on 8x8 images and feature vectors: digits, synth10/synth100; cnn otherwise)")
    runp.add_argument("--train-subset", type=int, default=None, help="train on this many images (default: all)")
    runp.add_argument("--no-augment", action="store_true",
                      help="no random translate / flip (default: on for images, off for feature vectors)")
    mode = runp.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="small data (CIFAR 5k/1k), like NOISYLOSS_QUICK=1")
    mode.add_argument("--full", action="store_true", help="full data even on CPU")
    runp.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda when present)")
    runp.add_argument("--out", type=Path, default=Path("runs"),
                      help="folder of records.jsonl, created if missing (default: runs)")
    runp.add_argument("--no-progress", action="store_true", help="no progress bars")
    _add_import(sub.add_parser("losses", help="list the available losses and their default parameters"))
    tablep = sub.add_parser("table", help="mean ± std over seeds of the runs recorded in OUT",
                            description="Mean ± std over seeds with n, one row per run (its seeds grouped by "
                                        "canonical run key).  Only reads the records: no name in them is checked.")
    tablep.add_argument("out", type=Path, metavar="OUT", help=f"a folder holding {RECORDS}, or a records file")
    tablep.add_argument("--format", choices=experiments.FORMATS, default="text", help="(default: %(default)s)")
    tablep.add_argument("--metric", nargs="+", action="extend",
                        help="final metrics, e.g. test_acc memorised ece (default: test_acc)")
    return parser


def _device(name: Optional[str]) -> torch.device:
    """``--device`` checked: a device torch knows and this machine has."""
    return default_device() if name is None else check_device("--device", name)


def _run(args: argparse.Namespace) -> int:
    def fail(message: str, status: int = 2) -> int:
        print(f"{PROG} run: error: {' '.join(message.split())}", file=sys.stderr)
        return status

    quick = True if args.quick else False if args.full else None
    failed = _import(args.imports)
    if failed:
        return fail(failed)
    try:
        configure_threads()  # the threading runtime.setup() picks for notebooks
        device = _device(args.device)
        if quick is None:
            quick_mode(device)  # NOISYLOSS_QUICK must be readable
        configs = experiments.grid(
            args.loss or ["ce"], args.noise or ["clean"], args.seeds or [0], dataset=args.dataset,
            epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, model=args.model,
            train_subset=args.train_subset, augment=False if args.no_augment else None, quick=quick,
        )
    except LoaderError as err:  # a registered dataset's loader, run to learn its classes and image size
        return fail(f"data unavailable: {err}", status=1)
    except ValueError as err:
        return fail(str(err))
    if args.out.exists() and not args.out.is_dir():
        return fail(f"--out {args.out} is a file; give a folder (records go to FOLDER/{RECORDS})")
    try:
        store = experiments.RecordsStore(args.out / RECORDS)
    except OSError as err:
        where = f": {err.filename}" if err.filename else ""
        return fail(f"--out {args.out}: cannot write records there ({err.strerror or err}{where})")
    print(f"{len(configs)} run(s) -> {store.path}")
    try:
        records = experiments.sweep(configs, store.path, device=device, progress=not args.no_progress)
    except experiments.ConfigError as err:
        return fail(str(err))
    except (DownloadError, LoaderError) as err:
        return fail(f"data unavailable: {err}", status=1)
    except DataError as err:
        return fail(f"data file refused: {err}", status=1)
    except OSError as err:  # a full disk, a folder that cannot be written
        where = f": {err.filename}" if err.filename else ""
        return fail(f"{err.strerror or err}{where} (the runs recorded so far stay in {store.path})")
    except KeyboardInterrupt:
        # the records are read without the store's lock: Ctrl-C may have come while this process took it
        keys = {cfg.resolved(device).key() for cfg in configs}
        recorded = {experiments.record_key(r) for r in experiments.load_records(store.path)}
        print(f"{PROG} run: interrupted: {len(keys & recorded)} of {len(keys)} run(s) recorded in "
              f"{store.path}; rerun the same command to resume", file=sys.stderr)
        return 130
    print(experiments.summary_table(records))
    runs = {experiments.record_key(r): r for r in records}
    here = sum(r.get("pid") == os.getpid() and r.get("host") == platform.node() for r in runs.values())
    print(f"trained here: {here}; already recorded (earlier or by another process): {len(runs) - here}")
    return 0


def _table(args: argparse.Namespace) -> int:
    """``table``: the records of OUT read (never rewritten) and printed as ``experiments.group_table``."""
    path = args.out / RECORDS if args.out.is_dir() else args.out
    try:
        if not path.is_file():
            raise ValueError(f"no records file at {path}")
        table = experiments.group_table(experiments.load_records(path), args.metric or ["test_acc"], args.format)
    except (OSError, ValueError) as err:
        print(f"{PROG} table: error: {err}", file=sys.stderr)
        return 2
    print(table)
    return 0


def _losses(args: argparse.Namespace) -> int:
    """``losses``: every registered loss (those of ``--import`` modules too) with its default parameters."""
    failed = _import(args.imports)
    if failed:
        print(f"{PROG} losses: error: {' '.join(failed.split())}", file=sys.stderr)
        return 2
    losses = available_losses()
    width = max(map(len, losses))
    for name, description in losses.items():
        print(f"{name.ljust(width)}  {description}")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    args = _parser().parse_args(argv)
    command = {"run": _run, "table": _table, "losses": _losses}[args.command]
    with warnings.catch_warnings():  # warnings (a diverged run, invalid record lines) as one line each
        warnings.showwarning = lambda message, *args, **kwargs: print(f"{PROG}: warning: {message}", file=sys.stderr)
        try:
            return command(args)
        except BrokenPipeError:  # the reader of the output left early (`| head`): stop quietly, as Python's docs
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # advise (signal module, SIGPIPE)
            return 1


def console() -> None:
    """The ``noisyloss`` command and ``python -m noisyloss``: :func:`main`'s status as the process's.

    Interrupted (130), the process ends by SIGINT, as Python ends on an unhandled Ctrl-C: a shell
    knows then that the user pressed Ctrl-C and stops a loop it runs the command in (a normal exit
    with status 130 would let it go on with the next command)."""
    status = main()
    if status == 130 and os.name == "posix":
        sys.stdout.flush()
        sys.stderr.flush()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    sys.exit(status)


if __name__ == "__main__":
    console()
