"""Experiments: one run = (dataset, label noise, loss, seed, ...) -> history and a JSON record.

* :mod:`~noisyloss.experiments.config` — :class:`~noisyloss.experiments.config.RunConfig` (what defines a
  run) and :func:`~noisyloss.experiments.config.grid`;
* :mod:`~noisyloss.experiments.runner` — :func:`~noisyloss.experiments.runner.run` one config,
  :func:`~noisyloss.experiments.runner.sweep` many into a records file, each record with its provenance;
* :mod:`~noisyloss.experiments.store` — the records file (JSONL) that several processes share safely:
  records validated by their JSON shape (never their names), runs claimed under file locks, invalid
  lines moved aside, resume after a kill;
* :mod:`~noisyloss.experiments.tables` — tables of records, one row per run or mean ± std over seeds
  grouped by canonical run key (text, markdown, LaTeX, CSV), and a pandas DataFrame.

Every public name is importable from ``noisyloss.experiments`` itself.

>>> cfg = RunConfig(dataset="digits", loss="gce:q=0.7", noise="sym:0.4", epochs=5)
>>> cfg.key() == RunConfig(dataset="digits", loss="gce", noise="sym:0.4", epochs=5).key()
True
"""
from .config import DEFAULT_LR, RUNNER_SETS, ConfigError, ConfigTypeError, RunConfig, grid
from .runner import RunResult, labels_digest, make_labels, provenance, run, sweep
from .store import FINAL_METRICS, MAX_DEPTH, RecordsStore, load_records, record_key, save_record
from .tables import FORMATS, group_table, record_loss, record_noise, seed_stats, seed_table, summary_table, to_dataframe

__all__ = [
    "RunConfig",
    "ConfigError",
    "ConfigTypeError",
    "RunResult",
    "DEFAULT_LR",
    "RUNNER_SETS",
    "make_labels",
    "labels_digest",
    "run",
    "sweep",
    "grid",
    "RecordsStore",
    "record_key",
    "load_records",
    "save_record",
    "FINAL_METRICS",
    "MAX_DEPTH",
    "record_noise",
    "record_loss",
    "summary_table",
    "seed_stats",
    "seed_table",
    "group_table",
    "FORMATS",
    "to_dataframe",
    "provenance",
]
