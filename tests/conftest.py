"""Every test leaves torch's threads, and whether they follow the load, as it found them: code under
test (the CLI, a benchmark's main, setup()) calls runtime.configure_threads(), which would otherwise
change how later tests in the same process train."""
import pytest
import torch

from noisyloss import runtime


@pytest.fixture(autouse=True)
def _restore_threads():
    before, balance = torch.get_num_threads(), runtime._balance
    yield
    torch.set_num_threads(before)
    runtime._balance = balance
