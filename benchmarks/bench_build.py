"""How long executing the book's chapters takes, one at a time and two at a time.

This is the execution step of ``jupyter-book build`` (book/_ext/parallel_execution.py), without Sphinx:
every chapter in a fresh kernel, in quick mode, through the same function the build uses. The two
ways alternate, ``--rounds`` times each, so that a machine that speeds up or slows down during the
benchmark affects both alike. The table gives the wall time of each way, the CPU time the whole
machine spent meanwhile (from ``/proc/stat``; nothing else should run) and the mean number of busy CPUs.

    python benchmarks/bench_build.py              # all chapters, 2 rounds
    python benchmarks/bench_build.py --rounds 1 book/02_margin.ipynb book/04_gce.ipynb
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("parallel_execution", ROOT / "book" / "_ext" / "parallel_execution.py")
parallel_execution = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(parallel_execution)


def busy_seconds() -> float:
    """CPU seconds all CPUs have been busy since boot (``/proc/stat``)."""
    with open("/proc/stat") as f:
        ticks = [int(t) for t in f.readline().split()[1:9]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def execute_all(paths, jobs: int, timeout: int = 300):
    """Execute ``paths`` ``jobs`` at a time, in the build's order; return (wall s, CPU s, {name: s})."""
    order = sorted(paths, reverse=True)
    # a fresh temporary folder for the kernels: no sweep records of an earlier pass (every run trains,
    # as in a fresh build), and none of another process's records touched
    tmp, saved = tempfile.mkdtemp(prefix="bench_build_"), os.environ.get("TMPDIR")
    os.environ["TMPDIR"] = tmp
    cpu0, start = busy_seconds(), time.perf_counter()

    def one(path):
        _, seconds, error = parallel_execution._execute_in_subprocess(str(path), str(path.parent), timeout, False)
        if error is not None:
            raise RuntimeError(f"{path} failed:\n{error}")
        return path.stem, seconds

    try:
        with ThreadPoolExecutor(jobs) as pool:
            each = dict(pool.map(one, order))
        return time.perf_counter() - start, busy_seconds() - cpu0, each
    finally:
        if saved is None:
            del os.environ["TMPDIR"]
        else:
            os.environ["TMPDIR"] = saved
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every chapter in book/")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error(f"--rounds must be >= 1, got {args.rounds}")
    if any(j < 1 for j in args.jobs):
        parser.error(f"--jobs must be >= 1, got {args.jobs}")
    paths = [p.resolve() for p in args.notebooks] or sorted((ROOT / "book").glob("*.ipynb"))
    os.environ.setdefault("NOISYLOSS_QUICK", "1")
    os.environ.setdefault("MPLBACKEND", "Agg")
    results = {jobs: [] for jobs in args.jobs}
    for r in range(args.rounds):
        for jobs in args.jobs:
            wall, cpu, each = execute_all(paths, jobs)
            results[jobs].append((wall, cpu, each))
            print(f"round {r + 1}, {jobs} at a time: {wall:6.1f} s wall, {cpu:6.1f} CPU s "
                  f"({', '.join(f'{k} {v:.1f}' for k, v in sorted(each.items()))})", flush=True)
    print(f"\n{len(paths)} notebooks, {len(os.sched_getaffinity(0))} usable CPUs, medians of {args.rounds} round(s)")
    print(f"{'at a time':>9s} {'wall s':>7s} {'CPU s':>7s} {'busy CPUs':>9s} {'wall / one at a time':>21s}")
    base = statistics.median(w for w, _, _ in results[args.jobs[0]])
    for jobs, rows in results.items():
        wall, cpu = statistics.median(w for w, _, _ in rows), statistics.median(c for _, c, _ in rows)
        print(f"{jobs:9d} {wall:7.1f} {cpu:7.1f} {cpu / wall:9.2f} {wall / base:21.2f}")


if __name__ == "__main__":
    main()
