"""Plain-text tables of records: one row per run, or mean ± std over seeds."""
from __future__ import annotations

from typing import Any, Dict, List, Sequence, Tuple

import torch

__all__ = ["record_noise", "summary_table", "seed_stats", "seed_table"]


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


def _diverged(record: Dict[str, Any]) -> Any:
    """The epoch where the run diverged, or ``None`` (also for records written before this was kept)."""
    return record["final"].get("diverged")


def _aligned(rows: List[Sequence[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows)


def record_noise(record: Dict[str, Any]) -> str:
    """What a record trained on: its ``label_set`` name when it has one, else its ``noise`` spec (the
    column or group that :func:`summary_table`, :func:`seed_stats` and :func:`seed_table` use)."""
    return record["config"].get("label_set") or record["config"]["noise"]


def summary_table(records: Sequence[Dict[str, Any]]) -> str:
    """Plain-text table: one row per record with the final metrics; a diverged run says so, with
    its epoch, in the ``test_acc`` column."""
    head = ("dataset", "noise", "loss", "seed", "epochs", "test_acc", "fit_clean", "memorised", "corrected", "s")
    rows = [head]
    for r in records:
        cfg, final = r["config"], r["final"]
        acc = f"diverged (epoch {_diverged(r)})" if _diverged(r) else _fmt(final["test_acc"])
        seconds = r.get("wall_seconds")
        rows.append((cfg["dataset"], record_noise(r), cfg["loss"], _fmt(cfg["seed"]), _fmt(cfg["epochs"]), acc,
                     _fmt(final["fit_clean"]), _fmt(final["memorised"]), _fmt(final["corrected"]),
                     "-" if seconds is None else f"{seconds:.1f}"))
    return _aligned(rows)


def seed_stats(records: Sequence[Dict[str, Any]], metric: str = "test_acc") -> Dict[Tuple[str, str], Tuple[float, float, int]]:
    """``{(noise, loss): (mean, std, n)}`` of the final ``metric`` over seeds, the numbers behind
    :func:`seed_table` (``std`` is the sample standard deviation, ddof=1, and 0 for a single seed).
    ``noise`` is :func:`record_noise` (a label set's name for runs on one).  Records without the
    metric (``None``: e.g. ``memorised`` without corrupted labels, or any metric of a diverged run)
    are skipped."""
    groups: Dict[Tuple[str, str], List[float]] = {}
    for r in records:
        value = r["final"].get(metric)
        if value is not None:
            groups.setdefault((record_noise(r), r["config"]["loss"]), []).append(float(value))
    out = {}
    for key, vals in groups.items():
        t = torch.tensor(vals, dtype=torch.float64)
        out[key] = (float(t.mean()), float(t.std()) if len(vals) > 1 else 0.0, len(vals))
    return out


def seed_table(
    records: Sequence[Dict[str, Any]],
    losses: Sequence[str],
    noises: Sequence[str],
    metrics: Sequence[str] = ("test_acc", "memorised"),
) -> str:
    """Pivot table over seeds: a row per (loss, metric), a column per noise, cells ``mean ± std``
    of the final metric over the records with that loss and noise (``-`` where there are none, or the
    metric is undefined, e.g. ``memorised`` without corrupted labels); see :func:`seed_stats`.
    Diverged runs are left out of the mean and counted in the cell, e.g. ``0.512 ± 0.010 (1/3
    diverged)``."""
    diverged: Dict[Tuple[str, str], List[bool]] = {}
    for r in records:
        diverged.setdefault((record_noise(r), r["config"]["loss"]), []).append(bool(_diverged(r)))
    stats = {key: seed_stats(records, key) for key in metrics}
    rows = [["loss", "metric"] + list(noises)]
    for loss in losses:
        for key in metrics:
            cells = []
            for noise in noises:
                c, flags = stats[key].get((noise, loss)), diverged.get((noise, loss), [])
                cell = "-" if c is None else f"{c[0]:.3f} ± {c[1]:.3f}"
                if any(flags):
                    cell = ("" if c is None else cell + " ") + f"({sum(flags)}/{len(flags)} diverged)"
                cells.append(cell)
            rows.append([loss, key] + cells)
    return _aligned(rows)
