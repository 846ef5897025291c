"""What chapter 13 (early learning) needs from the package: p_y histograms without a weight curve,
for a loss whose pull is not a function of p_y alone (ELR)."""
import json

import numpy as np
import pytest

from noisyloss import viz


def test_py_histogram_figure_without_weight_curve():
    p = {1: np.array([0.05, 0.05, 0.95, 0.55]), 2: np.array([0.95, 0.05, 0.95, 0.95])}
    corrupted = np.array([False, True, False, True])
    fig = viz.py_histogram_figure(p, corrupted, bins=10, active=1, title="p")
    assert len(fig.data) == 4  # clean and corrupted bars per epoch, no fixed curve
    assert all(t.type == "bar" for t in fig.data)
    assert [t.visible for t in fig.data] == [False, False, True, True]
    clean, bad = fig.data[2], fig.data[3]  # epoch 2: every clean sample at 0.95, corrupted split 0.05/0.95
    assert clean.y[9] == pytest.approx(1.0) and bad.y[0] == pytest.approx(0.5) and bad.y[9] == pytest.approx(0.5)
    assert [s.label for s in fig.layout.sliders[0].steps] == ["1", "2"]
    json.loads(fig.to_json())
