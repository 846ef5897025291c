"""runtime.configure_threads: the environment override, its checks, one thread on small machines."""
import pytest
import torch

from noisyloss import runtime


@pytest.fixture(autouse=True)
def restore_threads(monkeypatch):
    monkeypatch.delenv("NOISYLOSS_THREADS", raising=False)
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_environment_sets_the_threads(monkeypatch):
    monkeypatch.setenv("NOISYLOSS_THREADS", "3")
    assert runtime.configure_threads() == 3 and torch.get_num_threads() == 3


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5"])
def test_a_bad_environment_value_is_named(monkeypatch, value):
    monkeypatch.setenv("NOISYLOSS_THREADS", value)
    with pytest.raises(ValueError, match=rf"NOISYLOSS_THREADS must be an integer >= 1, got '{value}'"):
        runtime.configure_threads()


@pytest.mark.parametrize("cpus", [1, 2])
def test_one_thread_on_machines_with_at_most_two_cpus(monkeypatch, cpus):
    monkeypatch.setattr(runtime, "usable_cpus", lambda: cpus)
    torch.set_num_threads(2)
    assert runtime.configure_threads() == 1 and torch.get_num_threads() == 1


def test_torch_default_kept_on_larger_machines(monkeypatch):
    monkeypatch.setattr(runtime, "usable_cpus", lambda: 8)
    torch.set_num_threads(2)
    assert runtime.configure_threads() == 2 and torch.get_num_threads() == 2


def test_setup_configures_threads(monkeypatch):
    monkeypatch.setenv("NOISYLOSS_THREADS", "2")
    torch.set_num_threads(1)
    device, quick = runtime.setup(verbose=False)
    assert torch.get_num_threads() == 2 and isinstance(device, torch.device) and isinstance(quick, bool)
