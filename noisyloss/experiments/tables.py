"""Tables of records: one row per record, mean ± std over seeds per run or per (loss, noise), a pandas
DataFrame, and :func:`html_table`, the one HTML writer of the tables here and of the book's.

Seeds are grouped by the canonical run key: a record's stored key (its resolved config as canonical
JSON, with the loss and noise specs in their canonical spellings) without its seed, so that every
spelling of one run (``gce`` and ``gce:q=0.7``) is one group.  Tables only read records: no name in
them is checked against what this process has registered.
"""
from __future__ import annotations

import csv
import html
import io
import json
import statistics
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from .._checks import check_choice
from .store import record_key

__all__ = ["FORMATS", "SEED_FORMATS", "html_table", "record_noise", "record_loss", "summary_table", "seed_stats",
           "seed_table", "group_table", "to_dataframe"]

#: output formats of :func:`group_table`
FORMATS = ("text", "markdown", "latex", "csv", "html")
#: output formats of :func:`seed_table`
SEED_FORMATS = ("text", "html")
#: config fields every :func:`group_table` shows (``label_set`` where a record has one: the labels trained
#: on, beside noise ``clean``; other fields only where they differ between its rows)
COLUMNS = ("dataset", "model", "noise", "loss", "epochs")

Record = Dict[str, Any]
#: what every table takes: a list of records (:func:`~noisyloss.experiments.store.load_records`) or a
#: mapping of them by key (:meth:`~noisyloss.experiments.store.RecordsStore.records`)
Records = Union[Sequence[Record], Mapping[str, Record]]
Stats = Tuple[float, float, int]


def _listed(records: Records) -> List[Record]:
    """``records`` as a list (the values of a mapping by key); ``TypeError`` for anything else."""
    if isinstance(records, Mapping) and "final" in records:
        raise TypeError("records must be a list of records or a dict of them by key, got one record; pass [record]")
    if isinstance(records, (str, bytes)) or not isinstance(records, Iterable):
        raise TypeError(f"records must be a list of records (load_records) or a dict of them by key "
                        f"(RecordsStore.records), got {type(records).__name__}")
    return list(records.values()) if isinstance(records, Mapping) else list(records)


def _names(names: Union[str, Sequence[str]]) -> List[str]:
    """One name or several as a list (``"test_acc"`` is one metric, not eight letters)."""
    return [names] if isinstance(names, str) else list(names)


def _fields(record: Record) -> Dict[str, Any]:
    """The fields of a record's stored key (the record is checked by :func:`record_key` first)."""
    return json.loads(record_key(record))


def _groups(records: Sequence[Record]) -> List[List[Record]]:
    """The records grouped by canonical run key (the stored key without its seed), in file order."""
    groups: Dict[str, List[Record]] = {}
    for r in records:
        fields = _fields(r)
        fields.pop("seed", None)
        groups.setdefault(json.dumps(fields, sort_keys=True), []).append(r)
    return list(groups.values())


def _stats(group: Sequence[Record], metric: str) -> Optional[Stats]:
    """``(mean, std, n)`` of the final ``metric`` over the records of ``group`` where it is defined
    (sample standard deviation, ddof=1, and 0 for one value), or ``None`` where it is nowhere."""
    values = [float(r["final"][metric]) for r in group if r["final"].get(metric) is not None]
    if not values:
        return None
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0, len(values)


def _diverged(record: Record) -> bool:
    """Whether the run diverged (``final["diverged"]`` is its epoch; records written before it was
    kept did not diverge)."""
    return bool(record["final"].get("diverged"))


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


def _aligned(rows: List[Sequence[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows)


def record_noise(record: Record) -> Optional[str]:
    """What a record trained on: its ``label_set`` name when it has one, else its noise spec, as its
    stored key spells them (the column of :func:`seed_table`)."""
    fields = _fields(record)
    return fields.get("label_set") or fields.get("noise")


def record_loss(record: Record) -> Optional[str]:
    """The loss spec of a record as its stored key spells it (canonical: ``gce:q=0.7`` is ``gce``)."""
    return _fields(record).get("loss")


def summary_table(records: Records) -> str:
    """Plain-text table: one row per record with the final metrics; a diverged run says so, with
    its epoch, in the ``test_acc`` column."""
    records = _listed(records)
    head = ("dataset", "noise", "loss", "seed", "epochs", "test_acc", "fit_clean", "memorised", "corrected", "s")
    rows = [head]
    for r in records:
        fields, final = _fields(r), r["final"]
        acc = f"diverged (epoch {final['diverged']})" if _diverged(r) else _fmt(final["test_acc"])
        seconds = r.get("wall_seconds")
        rows.append((_fmt(fields.get("dataset")), _fmt(record_noise(r)), _fmt(record_loss(r)), _fmt(fields.get("seed")),
                     _fmt(fields.get("epochs")), acc, _fmt(final["fit_clean"]), _fmt(final["memorised"]),
                     _fmt(final["corrected"]), "-" if seconds is None else f"{seconds:.1f}"))
    return _aligned(rows)


def _by_cell(records: Sequence[Record]) -> Dict[Tuple[str, str], List[Record]]:
    """The groups of :func:`_groups` by ``(noise, loss)``; ``ValueError`` when two runs that differ in
    other fields (dataset, epochs, ...) share one."""
    cells: Dict[Tuple[str, str], List[Record]] = {}
    for group in _groups(records):
        cell = record_noise(group[0]), record_loss(group[0])
        if cell in cells:
            a, b = _fields(cells[cell][0]), _fields(group[0])
            differ = sorted(k for k in a.keys() | b.keys() if k != "seed" and a.get(k) != b.get(k))
            raise ValueError(f"records of different runs share noise {cell[0]!r} and loss {cell[1]!r} (they differ "
                             f"in {differ}): give the records of one recipe, or use group_table")
        cells[cell] = group
    return cells


def seed_stats(records: Records, metric: str = "test_acc") -> Dict[Tuple[str, str], Stats]:
    """``{(noise, loss): (mean, std, n)}`` of the final ``metric`` over seeds, the numbers behind
    :func:`seed_table` (``std`` is the sample standard deviation, ddof=1, and 0 for a single seed).
    ``noise`` is :func:`record_noise` and ``loss`` :func:`record_loss`: the spellings of the stored
    keys, under which every spelling of one run is one group.  Records without the metric (``None``:
    e.g. ``memorised`` without corrupted labels, or any metric of a diverged run) are skipped.  Records
    of several recipes (e.g. two datasets) under one ``(noise, loss)`` raise ``ValueError``."""
    stats = {cell: _stats(group, metric) for cell, group in _by_cell(_listed(records)).items()}
    return {cell: s for cell, s in stats.items() if s is not None}


def seed_table(
    records: Records,
    losses: Union[str, Sequence[str]],
    noises: Union[str, Sequence[str]],
    metrics: Union[str, Sequence[str]] = ("test_acc", "memorised"),
    fmt: str = "text",
) -> str:
    """Pivot table over seeds: a row per (loss, metric), a column per noise, cells ``mean ± std``
    of the final metric over the records with that loss and noise (``-`` where there are none, or the
    metric is undefined, e.g. ``memorised`` without corrupted labels), and a last column ``n``: the
    number of seeds in the row's cells (``2-3`` where they differ); see :func:`seed_stats`.  A loss or
    noise may be named in any spelling its records' configs use.  Diverged runs are left out of the
    mean and counted in the cell, e.g. ``0.512 ± 0.010 (1/3 diverged)``.

    ``fmt``: ``text`` (aligned columns) or ``html`` (:func:`html_table`, the numbers right-aligned)."""
    check_choice("fmt", fmt, SEED_FORMATS)
    records, losses, noises, metrics = _listed(records), _names(losses), _names(noises), _names(metrics)
    cells = _by_cell(records)
    loss_of = {r["config"].get("loss"): record_loss(r) for r in records}  # a config's spelling -> the key's
    noise_of = {r["config"].get("label_set") or r["config"].get("noise"): record_noise(r) for r in records}
    rows = [["loss", "metric", *noises, "n"]]
    for loss in losses:
        groups = [cells.get((noise_of.get(noise, noise), loss_of.get(loss, loss)), []) for noise in noises]
        sizes = sorted({len(g) for g in groups if g})
        n = "-" if not sizes else f"{sizes[0]}" if len(sizes) == 1 else f"{sizes[0]}-{sizes[-1]}"
        for metric in metrics:
            row = [loss, metric]
            for group in groups:
                s, diverged = _stats(group, metric), sum(map(_diverged, group))
                cell = "-" if s is None else f"{s[0]:.3f} ± {s[1]:.3f}"
                if diverged:
                    cell = ("" if s is None else cell + " ") + f"({diverged}/{len(group)} diverged)"
                row.append(cell)
            rows.append(row + [n])
    return html_table(rows, left=2) if fmt == "html" else _aligned(rows)


_LATEX_SPECIAL = {**{c: "\\" + c for c in "&%$#_{}"}, "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                  "\\": r"\textbackslash{}", "<": r"\textless{}", ">": r"\textgreater{}"}


def _latex_text(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(c, c) for c in text)


def _csv(table: List[List[Any]]) -> str:
    """CSV of the values as they are (numbers in full precision, ``None`` empty)."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(table)
    return out.getvalue().rstrip("\n")


def _markdown(table: List[List[str]]) -> str:
    """A GitHub table: the head, a rule, the rows."""
    lines = ["| " + " | ".join(c.replace("|", r"\|") for c in row) + " |" for row in table]
    return "\n".join([lines[0], "|" + "---|" * len(table[0]), *lines[1:]])


def _latex(table: List[List[str]], left: int) -> str:
    """A LaTeX ``tabular`` of cells already escaped: the first ``left`` columns left-aligned, the
    numbers right-aligned, a rule under the head."""
    head, *rows = [" & ".join(row) + r" \\" for row in table]
    columns = "l" * left + "r" * (len(table[0]) - left)
    return "\n".join([rf"\begin{{tabular}}{{{columns}}}", head, r"\hline", *rows, r"\end{tabular}"])


def html_table(table: Sequence[Sequence[str]], left: int = 1) -> str:
    """An HTML ``<table>`` of cells already formatted as text (escaped here): the first row is the
    head, the first ``left`` columns are left-aligned and the others, the numbers, right-aligned in
    figures of one width (class ``noisyloss-table``; the style is inline, so the table reads the same
    in Jupyter, Colab and the book)."""
    def row(cells: Sequence[str], tag: str) -> str:
        return "<tr>" + "".join(
            f'<{tag} style="text-align:{"left" if i < left else "right"}">{html.escape(str(c))}</{tag}>'
            for i, c in enumerate(cells)) + "</tr>"

    head, *body = table
    return ('<table class="noisyloss-table" style="font-variant-numeric:tabular-nums">'
            f"<thead>{row(head, 'th')}</thead><tbody>{''.join(row(r, 'td') for r in body)}</tbody></table>")


def group_table(records: Records, metrics: Union[str, Sequence[str]] = ("test_acc",), fmt: str = "text") -> str:
    r"""Mean ± std over seeds, one row per run (records grouped by canonical run key): its config
    fields (``dataset``, ``model``, ``noise``, ``loss``, ``epochs``, ``label_set`` where a record has
    one, and any other field that differs between the rows), ``n`` (its seeds), ``diverged`` (how
    many of them diverged) and, per metric, the mean ± sample std over the seeds where the metric is
    defined (``-`` where it is nowhere).

    ``fmt``: ``text`` (aligned columns), ``markdown`` (a GitHub table), ``latex`` (a ``tabular``, ± as
    ``$\pm$``), ``csv`` (columns ``METRIC_mean``, ``METRIC_std`` and ``METRIC_n`` per metric, in
    full precision) or ``html`` (:func:`html_table`).  What :command:`python -m noisyloss table` prints.
    """
    check_choice("fmt", fmt, FORMATS)
    records, metrics = _listed(records), _names(metrics)
    groups = _groups(records)
    recorded = {k for r in records for k in r["final"]}
    unknown = [m for m in metrics if m not in recorded]
    if records and unknown:
        raise ValueError(f"no record has the metric(s) {unknown}; they have {sorted(recorded)}")
    fields = [_fields(g[0]) for g in groups]
    others = sorted({k for f in fields for k in f} - {*COLUMNS, "seed"})
    varying = {k for k in others if len({json.dumps(f.get(k)) for f in fields}) > 1}
    shown = [*COLUMNS, *(k for k in others if k == "label_set" or k in varying)]
    rows = [([f.get(k) for k in shown], len(g), sum(map(_diverged, g)), [_stats(g, m) for m in metrics])
            for f, g in zip(fields, groups)]
    if fmt == "csv":
        head = [*shown, "n", "diverged", *(f"{m}_{s}" for m in metrics for s in ("mean", "std", "n"))]
        return _csv([head] + [[*values, n, diverged, *(v for s in stats for v in (s or ("", "", 0)))]
                              for values, n, diverged, stats in rows])
    escape, pm = (_latex_text, r" $\pm$ ") if fmt == "latex" else (str, " ± ")
    table = [[escape(c) for c in (*shown, "n", "diverged", *metrics)]]
    for values, n, diverged, stats in rows:
        table.append([escape("-" if v is None else str(v)) for v in values] + [str(n), str(diverged)]
                     + ["-" if s is None else f"{s[0]:.3f}{pm}{s[1]:.3f}" for s in stats])
    if fmt == "latex":
        return _latex(table, len(shown))
    if fmt == "html":
        return html_table(table, left=len(shown))
    return _markdown(table) if fmt == "markdown" else _aligned(table)


def to_dataframe(records: Records):
    """A pandas DataFrame with one row per record: the fields of its stored key (``dataset``,
    ``model``, ``noise``, ``loss``, ``seed``, ``epochs``, ... in their canonical spellings, so that
    grouping by them all but ``seed`` gives the groups of :func:`group_table`), its final metrics
    (``test_acc``, ``fit_clean``, ``memorised``, ``corrected``, ``diverged``, ...), and ``seconds``,
    ``device`` and ``date`` of its training.  Needs pandas, an optional extra:
    ``pip install noisyloss[tables]``."""
    try:
        import pandas as pd
    except ImportError:
        raise ImportError("experiments.to_dataframe needs pandas: pip install noisyloss[tables]") from None
    rows = []
    for r in _listed(records):
        fields = _fields(r)
        rows.append({**{k: fields.get(k) for k in (*COLUMNS, "seed")}, **fields, **r["final"],
                     "seconds": r.get("wall_seconds"), "device": r.get("device"), "date": r.get("date")})
    return pd.DataFrame(rows)
