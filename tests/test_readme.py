"""Every Python example in README.md runs: each ```python block executes in a fresh namespace (the
bash blocks are commands for a shell, not run here)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
BLOCKS = re.findall(r"^```python\n(.*?)^```$", README, re.MULTILINE | re.DOTALL)


def test_readme_has_python_examples():
    assert BLOCKS, "no ```python block found in README.md: the pattern no longer matches"


@pytest.mark.parametrize("number", range(len(BLOCKS)))
def test_readme_example_runs(number):
    exec(compile(BLOCKS[number], f"README.md python block {number + 1}", "exec"), {"__name__": "readme"})
