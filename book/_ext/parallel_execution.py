"""Sphinx extension: execute the notebooks a build reads two at a time, before Sphinx reads them.

myst-nb executes notebooks one after another while Sphinx reads them, and Jupyter Book 1 runs one Sphinx
process (its CLI has no ``-j``). A chapter keeps both CPUs of a 2-CPU machine busy only while it
trains; starting its kernel, importing, plotting and writing figures use one. Two chapters at a time
fill those gaps: the build is shorter, and each chapter's own run time longer
(``benchmarks/bench_build.py`` times both ways).

How: the book executes in myst-nb's *cache* mode (``execute_notebooks: cache``). On
``env-before-read-docs`` this extension executes the notebooks Sphinx is about to read, ``jobs`` at a
time, each in its own kernel and exactly as myst-nb would (jupyter-cache's ``single_nb_execution``:
the same working directory, timeout and ``allow_errors``), and stores each executed notebook in
myst-nb's jupyter-cache. Reading a notebook, myst-nb then takes its outputs from there. A notebook whose
execution fails is not stored: myst-nb executes it again while reading it and reports the error as it
always does, so ``-W`` fails the build.

Every notebook Sphinx reads executes in this build, as with ``execute_notebooks: force``: an entry
an earlier build left in the cache is removed first. The cache keys a notebook by its code cells
alone, so an old entry could show what an older package computed. ``noisyloss_reuse_executed: True``
keeps the entries instead and executes only notebooks without one (the Pages workflow, whose cache key
covers the package and the requirements).

``noisyloss_execution_jobs`` (Sphinx config): how many notebooks execute at once; ``0`` (the default)
means two on a machine with two usable CPUs, whose chapters' CPU threads follow the load
(:func:`noisyloss.runtime.configure_threads`), and one elsewhere. With one job, myst-nb executes the
notebooks itself, one by one, as they are read. Notebooks start in reverse order of their names: the
book's experiment chapters, the longest, come last.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import nullcontext
from pathlib import Path, PurePosixPath
from typing import List, Optional, Tuple

import nbformat
from sphinx.util import logging

LOGGER = logging.getLogger(__name__)


def default_jobs() -> int:
    """Two notebooks at a time on exactly two usable CPUs (where the chapters' threads follow the load), else one."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return 2 if cpus == 2 else 1


def execute(path: str, cwd: Optional[str], timeout: Optional[int], allow_errors: bool) -> Tuple[dict, float, Optional[str]]:
    """Execute the notebook at ``path`` in ``cwd`` (a temporary folder when ``None``) as myst-nb's cache mode
    does; return the executed notebook (as a dict), the seconds it took and the traceback of a failure."""
    from jupyter_cache.executors.utils import single_nb_execution

    nb = nbformat.read(path, as_version=4)
    with (tempfile.TemporaryDirectory() if cwd is None else nullcontext(cwd)) as folder:
        result = single_nb_execution(nb, cwd=os.path.abspath(folder), timeout=timeout, allow_errors=allow_errors,
                                     meta_override=True)
    return result.nb, result.time, result.exc_string if result.err is not None else None


def _execute_in_subprocess(path: str, cwd: Optional[str], timeout: Optional[int], allow_errors: bool):
    """:func:`execute` in a fresh Python process (one kernel client per process); returns as it does."""
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        proc = subprocess.run([sys.executable, __file__, path, json.dumps([cwd, timeout, allow_errors]), str(out)],
                              capture_output=True, text=True)
        if proc.returncode != 0 or not out.exists():
            return (None, time.perf_counter() - start,
                    f"the executing process exited with status {proc.returncode}:\n{proc.stderr[-4000:]}")
        result = json.loads(out.read_text(encoding="utf8"))
    return nbformat.from_dict(result["nb"]), result["seconds"], result["error"]


def _to_execute(app, docnames: List[str]) -> List[Tuple[str, Path, nbformat.NotebookNode]]:
    """The notebooks among ``docnames`` that myst-nb would execute, as ``(docname, path, notebook)``, in
    the order they should start."""
    config = app.env.mystnb_config
    found = []
    for docname in docnames:
        path = Path(app.env.doc2path(docname))
        if path.suffix != ".ipynb":
            continue
        if any(PurePosixPath(path.as_posix()).match(pattern) for pattern in config.execution_excludepatterns):
            continue  # excluded from execution, as myst-nb decides it
        nb = nbformat.read(path, as_version=4)
        if nb.metadata.get("mystnb", {}).get("execution_mode", config.execution_mode) != "cache":
            continue
        found.append((docname, path, nb))
    return sorted(found, key=lambda item: item[0], reverse=True)


def pre_execute(app, env, docnames: List[str]) -> None:
    config = env.mystnb_config
    if config.execution_mode != "cache":
        return
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    cache = get_cache(config.execution_cache_path)
    todo = []
    for docname, path, nb in _to_execute(app, docnames):
        try:
            record = cache.match_cache_notebook(nb)
        except KeyError:
            record = None
        if record is not None and app.config.noisyloss_reuse_executed:
            continue
        if record is not None:  # executed by an earlier build, maybe of another package: execute it again
            cache.remove_cache(record.pk)
        todo.append((docname, path))
    jobs = app.config.noisyloss_execution_jobs or default_jobs()
    if jobs < 2 or len(todo) < 2:
        return  # myst-nb executes them while reading
    LOGGER.info(f"executing {len(todo)} notebooks, {jobs} at a time [parallel_execution]")
    cwd_of = {path: None if config.execution_in_temp else str(path.parent) for _, path in todo}
    start = time.perf_counter()
    with ThreadPoolExecutor(jobs) as pool:
        futures = {pool.submit(_execute_in_subprocess, str(path), cwd_of[path], config.execution_timeout,
                               config.execution_allow_errors): (docname, path) for docname, path in todo}
        for future in as_completed(futures):
            docname, path = futures[future]
            nb, seconds, error = future.result()
            if error is not None:
                LOGGER.info(f"{docname}: execution failed after {seconds:.1f} s; myst-nb executes it again while "
                            f"reading it and reports the error [parallel_execution]")
                continue
            cache.cache_notebook_bundle(CacheBundleIn(nb, str(path), data={"execution_seconds": seconds}),
                                        check_validity=False, overwrite=True)
            LOGGER.info(f"{docname}: executed in {seconds:.2f} s ({jobs} at a time) [parallel_execution]")
    LOGGER.info(f"executed {len(todo)} notebooks in {time.perf_counter() - start:.1f} s [parallel_execution]")


def check_config(app, config) -> None:
    jobs = config.noisyloss_execution_jobs
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 0:
        raise ValueError(f"noisyloss_execution_jobs must be an int >= 0 (0: two on two usable CPUs, else one), got {jobs!r}")
    if not isinstance(config.noisyloss_reuse_executed, bool):
        raise ValueError(f"noisyloss_reuse_executed must be true or false, got {config.noisyloss_reuse_executed!r}")


def setup(app):
    app.add_config_value("noisyloss_execution_jobs", 0, "env", [int])
    app.add_config_value("noisyloss_reuse_executed", False, "env", [bool])
    app.connect("config-inited", check_config)
    app.connect("env-before-read-docs", pre_execute)
    return {"parallel_read_safe": True, "parallel_write_safe": True}


if __name__ == "__main__":  # _execute_in_subprocess: python parallel_execution.py NOTEBOOK '[cwd, timeout, allow_errors]' OUT
    nb_path, options, out_path = sys.argv[1:]
    executed, took, failure = execute(nb_path, *json.loads(options))
    Path(out_path).write_text(json.dumps({"nb": executed, "seconds": took, "error": failure}), encoding="utf8")
