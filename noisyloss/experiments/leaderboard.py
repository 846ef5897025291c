"""The leaderboard grid: every registered loss at its paper's setting on the CPU sets.

Each loss runs on ``synth10`` with its CIFAR-10 preset and on ``synth100`` with its CIFAR-100 preset
(:func:`noisyloss.presets`; the other dataset's preset, then the registry's defaults, where a paper
gives none), at symmetric noise 0.2, 0.4, 0.6, 0.8 and pair flips at 0.4, over seeds 0, 1, 2, in
quick mode.  Truncated GCE's pruning epochs are scaled from the paper's 120 epochs to the run's.

Regenerate the grid (a rerun skips what ``OUT/records.jsonl`` already holds)::

    python -m noisyloss.experiments.leaderboard --out runs/leaderboard            # CPU
    python -m noisyloss.experiments.leaderboard --out runs/leaderboard --device cuda

The book's leaderboard page reads the records of that command, shipped as
``book/results/leaderboard.jsonl``: :func:`summary` puts them into one row per loss, dataset and noise,
:data:`PAPERS` names the paper of each loss, and every build reruns a few of them,
:func:`select_reruns` choosing which (differently per commit) and :func:`rerun` comparing each with
its record within :data:`RERUN_TOLERANCE`.
"""
from __future__ import annotations

import argparse
import hashlib
import random
import re
import sys
import warnings
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import torch

from ..registry import LOSSES, PRESETS, parse_spec
from ..runtime import configure_threads
from .config import RunConfig
from .runner import run, sweep
from .tables import record_loss, record_noise, seed_stats

__all__ = ["DATASETS", "NOISES", "SEEDS", "EPOCHS", "PAPERS", "RERUN_TOLERANCE", "paper_setting", "configs",
           "summary", "select_reruns", "rerun", "main"]

Record = Dict[str, Any]

#: CPU set -> the CIFAR preset suffix whose setting it runs
DATASETS = {"synth10": "cifar10", "synth100": "cifar100"}
NOISES = ("sym:0.2", "sym:0.4", "sym:0.6", "sym:0.8", "pair:0.4")
SEEDS = (0, 1, 2)
EPOCHS = 20
PAPER_EPOCHS = 120  # Truncated-Loss trains 120 epochs; its pruning epochs are scaled to EPOCHS

#: the paper (and where to read it) of each registered loss; CE is every paper's baseline
PAPERS: Dict[str, Tuple[str, ...]] = {
    "Ghosh et al., AAAI 2017": ("mae",),
    "Zhang & Sabuncu, NeurIPS 2018 (arXiv:1805.07836)": ("gce", "gce_prune"),
    "Wang et al., ICCV 2019": ("rce", "sce"),
    "Ma et al., ICML 2020 (arXiv:2006.13554)": ("nce", "nce_rce", "nfl", "ngce", "nmae", "nrce", "apl", "nce_mae",
                                                "nfl_rce", "nfl_mae", "ngce_mae", "ngce_rce"),
    "Zhou et al., ICML 2021 (arXiv:2106.03110)": ("agce", "aul", "ael", "nce_agce", "nce_aul", "nce_ael", "nfl_agce",
                                                  "nfl_aul", "nfl_ael"),
    "Ye et al., NeurIPS 2023 (proceedings.neurips.cc)": ("nnce", "nnfl", "anl_ce", "anl_fl"),
    "Szegedy et al., CVPR 2016": ("ls",),
    "Lin et al., ICCV 2017": ("focal",),
    "Reed et al., ICLR 2015 workshop": ("bootstrap",),
    "Liu & Guo, ICML 2020": ("peer",),
    "Kim et al., ICCV 2019": ("nl",),
    "Zhang et al., IEEE TIP 2021": ("ols",),
    "Liu et al., NeurIPS 2020": ("elr",),
    "Patrini et al., CVPR 2017": ("forward", "backward"),
    "Wei et al., ICML 2022": ("nls",),
    "Leng et al., ICLR 2022": ("poly1",),
    "Feng et al., IJCAI 2020 (doi:10.24963/ijcai.2020/305)": ("taylor",),
}

#: the largest absolute difference between a rerun's final metric and its record's that :func:`rerun`
#: accepts (fractions of the test set, of the corrupted training samples)
RERUN_TOLERANCE = {"test_acc": 0.02, "memorised": 0.03}


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

        def scale(epoch: int) -> int:
            return max(1, round(epoch * epochs / PAPER_EPOCHS))

        spec = (f"gce_prune:q={params.get('q', 0.7)},k={params.get('k', 0.5)},"
                f"start_prune={scale(params['start_prune'])},prune_every={scale(params['prune_every'])}")
        source += f"; pruning epochs scaled by {epochs}/{PAPER_EPOCHS}"
    return spec, source


def configs(datasets: Sequence[str] = tuple(DATASETS), seeds: Sequence[int] = SEEDS,
            epochs: int = EPOCHS) -> List[RunConfig]:
    """The grid's runs: every loss of :data:`noisyloss.registry.LOSSES` × noise × seed per dataset."""
    return [RunConfig(dataset=d, loss=paper_setting(loss, d, epochs)[0], noise=n, seed=s, epochs=epochs, quick=True)
            for d in datasets for n in NOISES for loss in LOSSES for s in seeds]


def summary(records: Sequence[Record]) -> List[Record]:
    """One row per dataset, noise and loss of ``records`` (a leaderboard records file): ``dataset``,
    ``noise``, ``loss`` (the registered name), ``spec`` (as the run's config spells it), ``n`` (records),
    ``diverged`` (of them), and ``test_acc`` and ``memorised`` as ``(mean, std, n)`` over the seeds
    that did not diverge (:func:`~noisyloss.experiments.tables.seed_stats`; ``None`` where all did)."""
    rows = []
    for dataset in dict.fromkeys(r["config"]["dataset"] for r in records):
        mine = [r for r in records if r["config"]["dataset"] == dataset]
        stats = {metric: seed_stats(mine, metric) for metric in ("test_acc", "memorised")}
        cells: Dict[Tuple[str, str], List[Record]] = {}
        for r in mine:
            cells.setdefault((record_noise(r), record_loss(r)), []).append(r)
        for (noise, loss), group in cells.items():
            spec = group[0]["config"]["loss"]
            rows.append({"dataset": dataset, "noise": noise, "loss": spec.partition(":")[0], "spec": spec,
                         "n": len(group),
                         "diverged": sum(r["final"].get("diverged") is not None for r in group),
                         **{metric: s.get((noise, loss)) for metric, s in stats.items()}})
    return rows


def _machine(device_name: str) -> str:
    """A record's device without its thread count: ``"cpu (x86_64, 2 threads)"`` -> ``"cpu (x86_64)"``."""
    return re.sub(r", \d+ threads\)$", ")", device_name)


def select_reruns(records: Sequence[Record], commit: str, device_name: str, k: int = 3) -> List[Record]:
    """``k`` records to train again, chosen by ``commit``: the records whose device is ``device_name``
    (:func:`~noisyloss.experiments.runner.provenance`'s, up to the thread count), sorted by key, sampled
    by a ``random.Random`` seeded with the SHA-256 of ``commit``.  One commit always chooses the same
    records; another commit, others.  Fewer than ``k`` where fewer records match."""
    pool = sorted((r for r in records if _machine(r["device"]) == _machine(device_name)), key=lambda r: r["key"])
    rng = random.Random(int.from_bytes(hashlib.sha256(commit.encode()).digest(), "big"))
    return rng.sample(pool, min(k, len(pool)))


def rerun(record: Record, device: Union[str, torch.device, None] = None) -> Record:
    """Train ``record``'s config again on ``device`` and compare its final metrics with the record's:
    ``{"run": ..., "recorded on": ..., "rerun on": ... (the devices), "<metric>: record": ...,
    "<metric>: rerun": ..., "agrees": bool}``; it agrees when every metric of :data:`RERUN_TOLERANCE`
    is within its tolerance of the record's, or is ``None`` (a diverged run) in both.  The rerun of a
    record that diverged warns of nothing: the row says whether it diverged again."""
    cfg = RunConfig(**record["config"])
    with warnings.catch_warnings():
        if record["final"].get("diverged") is not None:
            warnings.simplefilter("ignore", RuntimeWarning)  # run()'s divergence warning, expected here
        again = run(cfg, device=device, progress=False).record
    final = again["final"]
    row: Record = {"run": f"{cfg.dataset} | {cfg.noise} | {cfg.loss} | seed {cfg.seed}",
                   "recorded on": record["device"], "rerun on": again["device"]}
    agrees = True
    for metric, tolerance in RERUN_TOLERANCE.items():
        was, now = record["final"][metric], final[metric]
        row[f"{metric}: record"], row[f"{metric}: rerun"] = was, now
        agrees &= (was is None and now is None) or (
            was is not None and now is not None and abs(now - was) <= tolerance)
    row["agrees"] = agrees
    return row


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
