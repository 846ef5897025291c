"""runtime.configure_threads: the environment override, its checks, threads that follow the load on
2-CPU machines (decisions from scripted /proc readings, and one real busy process)."""
import subprocess
import sys
import time
import types

import pytest
import torch

from noisyloss import runtime


@pytest.fixture(autouse=True)
def no_thread_override(monkeypatch):  # the threads themselves are restored by conftest.py
    monkeypatch.delenv("NOISYLOSS_THREADS", raising=False)


def test_environment_sets_the_threads(monkeypatch):
    monkeypatch.setenv("NOISYLOSS_THREADS", "3")
    assert runtime.configure_threads() == 3 and torch.get_num_threads() == 3


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5"])
def test_a_bad_environment_value_is_named(monkeypatch, value):
    monkeypatch.setenv("NOISYLOSS_THREADS", value)
    with pytest.raises(ValueError, match=rf"NOISYLOSS_THREADS must be an integer >= 1, got '{value}'"):
        runtime.configure_threads()


def test_one_thread_on_one_cpu(monkeypatch):
    monkeypatch.setattr(runtime, "usable_cpus", lambda: 1)
    torch.set_num_threads(2)
    assert runtime.configure_threads() == 1 and torch.get_num_threads() == 1 and not runtime.adapting_threads()


def test_one_thread_on_two_cpus_where_proc_cannot_tell_the_load(monkeypatch):
    monkeypatch.setattr(runtime, "usable_cpus", lambda: 2)
    monkeypatch.setattr(runtime, "_cpu_ticks", lambda: None)
    torch.set_num_threads(2)
    assert runtime.configure_threads() == 1 and not runtime.adapting_threads()
    runtime.balance_threads()  # nothing to adapt
    assert torch.get_num_threads() == 1


class Machine:
    """A scripted clock and /proc: ``run(seconds, others, own)`` advances both as if other processes
    used ``others`` CPUs and this one ``own`` CPUs for that long."""

    def __init__(self):
        self.now, self.busy, self.own = 100.0, 0, 0

    def run(self, seconds, others, own=1.0):
        tick = runtime._TICKS_PER_SECOND * seconds
        self.now += seconds
        self.own += round(own * tick)
        self.busy += round((own + others) * tick)

    def ticks(self):
        return self.busy, self.own


@pytest.fixture
def machine(monkeypatch):
    m = Machine()
    monkeypatch.setattr(runtime, "_cpu_ticks", m.ticks)
    monkeypatch.setattr(runtime, "time", types.SimpleNamespace(monotonic=lambda: m.now, sleep=lambda s: m.run(s, 0, 0)))
    monkeypatch.setattr(runtime, "usable_cpus", lambda: 2)
    return m


def test_two_cpus_two_threads_alone_one_beside_a_busy_process_and_back(machine):
    assert runtime.configure_threads() == 2 and runtime.adapting_threads()
    machine.run(0.5, others=0.05, own=2.0)  # a notebook server's trickle: still alone
    runtime.balance_threads()
    assert torch.get_num_threads() == 2
    machine.run(0.25, others=0.67, own=1.33)  # a busy neighbour: its fair share beside two threads
    runtime.balance_threads()
    assert torch.get_num_threads() == 1
    machine.run(0.25, others=1.0, own=1.0)  # it stays: one thread
    runtime.balance_threads()
    assert torch.get_num_threads() == 1
    machine.run(0.25, others=0.0, own=1.0)  # it ended
    runtime.balance_threads()
    assert torch.get_num_threads() == 2


def test_the_load_is_read_at_most_every_interval_and_a_stale_reading_decides_nothing(machine):
    runtime.configure_threads()
    machine.run(0.1, others=1.0)  # busy, but within the interval of the last reading: no decision yet
    runtime.balance_threads()
    assert torch.get_num_threads() == 2
    machine.run(0.15, others=1.0)  # now due, over the 0.25 s since: busy
    runtime.balance_threads()
    assert torch.get_num_threads() == 1
    machine.run(5.0, others=0.0, own=0.0)  # idle for seconds (a reader between cells)
    runtime.balance_threads()  # too old to describe the load now: only a new interval starts
    assert torch.get_num_threads() == 1
    machine.run(0.2, others=0.0)
    runtime.balance_threads()
    assert torch.get_num_threads() == 2


def test_configure_threads_decides_at_once_from_what_it_watches(machine, monkeypatch):
    monkeypatch.setattr(runtime, "time", types.SimpleNamespace(monotonic=lambda: machine.now,
                                                               sleep=lambda s: machine.run(s, others=1.0, own=0.0)))
    assert runtime.configure_threads() == 1 and runtime.adapting_threads()


def test_fixed_threads_suspends_adapting_and_restores_it(machine):
    runtime.configure_threads()
    with runtime.fixed_threads(1):
        machine.run(0.5, others=0.0, own=1.0)
        runtime.balance_threads()
        assert torch.get_num_threads() == 1 and not runtime.adapting_threads()
    assert torch.get_num_threads() == 2 and runtime.adapting_threads()


@pytest.mark.skipif(runtime._cpu_ticks() is None or runtime.usable_cpus() != 2,
                    reason="needs Linux's /proc and two usable CPUs")
def test_a_real_busy_process_gets_one_thread():
    start = runtime._cpu_ticks()
    t = time.process_time()
    while time.process_time() - t < 0.3:  # this process burns 0.3 s of CPU
        pass
    busy, own = runtime._cpu_ticks()
    assert own - start[1] >= 0.2 * runtime._TICKS_PER_SECOND and busy - start[0] >= own - start[1] - 2
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        assert runtime.configure_threads() == 1 and runtime.adapting_threads()
    finally:
        spinner.kill()
        spinner.wait()


def test_torch_default_kept_on_larger_machines(monkeypatch):
    monkeypatch.setattr(runtime, "usable_cpus", lambda: 8)
    torch.set_num_threads(2)
    assert runtime.configure_threads() == 2 and torch.get_num_threads() == 2


def test_setup_configures_threads(monkeypatch):
    monkeypatch.setenv("NOISYLOSS_THREADS", "2")
    torch.set_num_threads(1)
    device, quick = runtime.setup(verbose=False)
    assert torch.get_num_threads() == 2 and isinstance(device, torch.device) and isinstance(quick, bool)
