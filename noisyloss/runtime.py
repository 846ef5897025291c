"""Where and how big to run: the device, the quick (CPU/CI) mode and the CPU threads every notebook
and the CLI use.

Quick mode is on when ``NOISYLOSS_QUICK=1`` is set (CI does) or when no CUDA device is present:
the same code runs on smaller data and fewer epochs.  ``NOISYLOSS_QUICK=0`` forces full size.
Threads: see :func:`configure_threads`.
"""
from __future__ import annotations

import os
import time
from contextlib import contextmanager
from typing import Iterator, Optional, Tuple

import torch

__all__ = ["default_device", "quick_mode", "usable_cpus", "configure_threads", "balance_threads",
           "adapting_threads", "fixed_threads", "setup", "mode_line"]


def default_device() -> torch.device:
    """CUDA when available, else CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def quick_mode(device: Optional[torch.device] = None) -> bool:
    """True when ``NOISYLOSS_QUICK`` says so, or (unset) when the device is not CUDA."""
    flag = os.environ.get("NOISYLOSS_QUICK", "").strip().lower()
    if flag in ("1", "true", "yes", "on"):
        return True
    if flag in ("0", "false", "no", "off"):
        return False
    if flag:
        raise ValueError(f"NOISYLOSS_QUICK must be 1/0 (or true/false), got {flag!r}")
    device = default_device() if device is None else torch.device(device)
    return device.type != "cuda"


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask, e.g. a container's share)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _cpu_ticks() -> Optional[Tuple[int, int]]:
    """``(busy, own)``: clock ticks the usable CPUs spent busy, and this process's own ticks (all its
    threads), both since boot; ``None`` where ``/proc`` cannot tell (not Linux)."""
    try:
        cpus = {f"cpu{i}" for i in os.sched_getaffinity(0)}
        busy = 0
        with open("/proc/stat") as f:
            for line in f:
                name, *ticks = line.split()
                if name in cpus:  # user nice system idle iowait irq softirq steal
                    busy += sum(int(t) for t in ticks[:8]) - int(ticks[3]) - int(ticks[4])
        with open("/proc/self/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()  # after the command name, from field 3 on
        return busy, int(fields[11]) + int(fields[12])  # + utime + stime
    except (OSError, AttributeError, ValueError, IndexError):
        return None


class _Balance:
    """Two threads while this process has the two CPUs to itself, one while others keep a CPU busy.

    Every ``interval`` seconds (at most) it reads from ``/proc`` how many CPUs other processes used
    since the last reading, and sets one thread when that is more than ``busy`` CPUs.  A reading
    older than a second (the process was idle) only starts a new interval.
    """

    def __init__(self, interval: float = 0.2, busy: float = 0.3):
        self.interval, self.busy = interval, busy
        self.last = (time.monotonic(), _cpu_ticks())

    def __call__(self, force: bool = False) -> None:
        now = time.monotonic()
        then, old = self.last
        if now - then < self.interval and not force:
            return
        ticks = _cpu_ticks()
        self.last = (now, ticks)
        if ticks is None or old is None or now - then > 1.0:
            return
        others = ((ticks[0] - old[0]) - (ticks[1] - old[1])) / _TICKS_PER_SECOND / (now - then)
        threads = 1 if others > self.busy else 2
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)


_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_balance: Optional[_Balance] = None  # set by configure_threads() when threads adapt to the load


def configure_threads() -> int:
    """Set torch's intra-op threads for this machine and return their number.

    ``NOISYLOSS_THREADS=n`` (an integer >= 1) fixes ``n``.  Otherwise, on a machine with two usable
    CPUs (Colab's CPU runtime, CI runners), the threads follow the load: two while this process has
    the CPUs to itself, one while another process keeps a CPU busy (a second kernel, a build, a
    neighbour).  Two threads make every parallel region wait for the slower thread, so one busy
    neighbour slows a two-thread training step several times; one thread is immune to that but
    slower alone (``benchmarks/bench_train.py`` times all three settings, alone and beside a busy
    process).  :func:`balance_threads`, called by :func:`noisyloss.train.fit` at every step, reads
    the load five times a second at most; this function decides once, after watching the load for 0.1 s.
    Where ``/proc`` cannot tell the load, one thread.  With one CPU, one thread; with more than two,
    torch's default.  ``OMP_WAIT_POLICY`` is no alternative here: OpenMP reads it once, when torch is
    imported, before any of this package runs.
    """
    global _balance
    _balance = None
    env = os.environ.get("NOISYLOSS_THREADS", "").strip()
    if env:
        if not env.isdigit() or int(env) < 1:
            raise ValueError(f"NOISYLOSS_THREADS must be an integer >= 1, got {env!r}")
        threads = int(env)
    elif usable_cpus() == 2 and _cpu_ticks() is not None:
        _balance = _Balance()
        time.sleep(0.1)  # watch the load for a moment
        torch.set_num_threads(2)
        _balance(force=True)
        return torch.get_num_threads()
    elif usable_cpus() <= 2:
        threads = 1
    else:
        threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    return threads


def balance_threads() -> None:
    """Adapt the threads to the load (see :func:`configure_threads`); does nothing unless
    ``configure_threads()`` chose adapting threads, and reads the load five times a second at most."""
    if _balance is not None:
        _balance()


def adapting_threads() -> bool:
    """Whether this process's threads follow the load (:func:`configure_threads`)."""
    return _balance is not None


@contextmanager
def fixed_threads(threads: int) -> Iterator[None]:
    """Run the block on ``threads`` intra-op threads that do not follow the load; the previous
    threads, and their following the load, come back after it."""
    global _balance
    saved, before = _balance, torch.get_num_threads()
    _balance = None
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        _balance = saved
        torch.set_num_threads(before)


def mode_line(device: torch.device, quick: bool) -> str:
    """One sentence for the page: which mode produced the numbers below it."""
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    size = "QUICK mode (small data, few epochs; same code as the full run)" if quick else "FULL mode"
    return f"Running on {name} ({device}), {size}, torch {torch.__version__}."


def setup(seed: int = 0, verbose: bool = True) -> Tuple[torch.device, bool]:
    """Seed torch, pick the device, the mode and the CPU threads (:func:`configure_threads`); print the
    mode line.  Returns ``(device, quick)``."""
    configure_threads()
    torch.manual_seed(seed)
    device = default_device()
    quick = quick_mode(device)
    if verbose:
        print(mode_line(device, quick))
    return device, quick
