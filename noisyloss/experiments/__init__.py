"""Experiments: one run = (dataset, label noise, loss, seed, ...) -> history and a JSON record.

:mod:`~noisyloss.experiments.config` defines a run (:class:`RunConfig`, :func:`grid`),
:mod:`~noisyloss.experiments.runner` trains runs (:func:`run`, :func:`sweep`),
:mod:`~noisyloss.experiments.store` keeps their records in a JSONL file that several processes share,
and :mod:`~noisyloss.experiments.tables` turns records into tables.  Every public name of these four
modules is importable from ``noisyloss.experiments`` itself.

>>> cfg = RunConfig(dataset="digits", loss="gce:q=0.7", noise="sym:0.4", epochs=5)
>>> cfg.key() == RunConfig(dataset="digits", loss="gce", noise="sym:0.4", epochs=5).key()
True
"""
from . import config, runner, store, tables
from .config import *  # noqa: F401,F403
from .runner import *  # noqa: F401,F403
from .store import *  # noqa: F401,F403
from .tables import *  # noqa: F401,F403

__all__ = [*config.__all__, *runner.__all__, *store.__all__, *tables.__all__]
