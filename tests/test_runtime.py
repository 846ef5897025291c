"""runtime: the threads set once (NOISYLOSS_THREADS, else torch's default), the quick-mode flag, and
setup()'s seed, device and mode line."""
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


def test_torch_default_kept_without_the_environment():
    torch.set_num_threads(2)
    assert runtime.configure_threads() == 2 and torch.get_num_threads() == 2


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5"])
def test_a_bad_environment_value_is_named(monkeypatch, value):
    monkeypatch.setenv("NOISYLOSS_THREADS", value)
    with pytest.raises(ValueError, match=rf"NOISYLOSS_THREADS must be an integer >= 1, got '{value}'"):
        runtime.configure_threads()


def test_no_load_following_left():
    for name in ("balance_threads", "adapting_threads", "fixed_threads", "usable_cpus"):
        assert not hasattr(runtime, name), name


@pytest.mark.parametrize("flag, quick", [("1", True), ("true", True), ("0", False), ("off", False)])
def test_quick_mode_flag(monkeypatch, flag, quick):
    monkeypatch.setenv("NOISYLOSS_QUICK", flag)
    assert runtime.quick_mode(torch.device("cpu")) is quick


def test_quick_mode_by_device_and_bad_flag(monkeypatch):
    monkeypatch.delenv("NOISYLOSS_QUICK", raising=False)
    assert runtime.quick_mode(torch.device("cpu")) is True
    monkeypatch.setenv("NOISYLOSS_QUICK", "maybe")
    with pytest.raises(ValueError, match="NOISYLOSS_QUICK must be 1/0"):
        runtime.quick_mode(torch.device("cpu"))


def test_setup_seeds_sets_threads_and_prints_the_mode(monkeypatch, capsys):
    monkeypatch.setenv("NOISYLOSS_THREADS", "1")
    monkeypatch.setenv("NOISYLOSS_QUICK", "1")
    device, quick = runtime.setup(seed=5)
    first = torch.rand(3)
    torch.manual_seed(5)
    assert torch.equal(first, torch.rand(3))
    assert torch.get_num_threads() == 1 and quick is True and device == runtime.default_device()
    assert capsys.readouterr().out.strip() == runtime.mode_line(device, True)
