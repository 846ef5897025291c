"""What every test shares: the losses a test registers leave the registry with it."""
import pytest

from noisyloss.registry import LOSSES


@pytest.fixture(autouse=True)
def _registered_losses_restored():
    """Tests register losses of their own (``register_loss``); other tests count every registered
    loss (the leaderboard's grid, the API page's table) and may run after them in the same process."""
    before = dict(LOSSES)
    yield
    LOSSES.clear()
    LOSSES.update(before)
