"""What `pip install noisyloss` brings and what its extras add: the package itself needs no plotting
library, no notebook widget and no pandas; the book's and the tables' dependencies are extras, and
requirements.txt (the full development environment) holds them all."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
EXTRAS_ONLY = {"plotly", "matplotlib", "ipywidgets", "pandas"}


def _name(requirement: str) -> str:
    return re.match(r"[A-Za-z0-9_.-]+", requirement).group(0).lower()


@pytest.mark.parametrize("module", ["noisyloss", "noisyloss.experiments", "noisyloss.__main__"])
def test_the_package_imports_no_extra(module):
    code = (f"import sys, {module}\n"
            f"print(sorted(m for m in sys.modules if m.split('.')[0] in {sorted(EXTRAS_ONLY)!r}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_dependencies_leave_the_book_and_the_tables_to_extras():
    assert {_name(r) for r in PROJECT["dependencies"]} == {"torch", "numpy", "tqdm", "scikit-learn", "filelock"}
    extras = {name: {_name(r) for r in reqs} for name, reqs in PROJECT["optional-dependencies"].items()}
    assert {"plotly", "matplotlib", "ipywidgets"} <= extras["book"]
    assert extras["tables"] == {"pandas"}


def test_requirements_hold_the_package_and_every_extra():
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    pinned = {_name(line) for line in lines if line.strip() and not line.startswith("#")}
    wanted = {_name(r) for r in PROJECT["dependencies"]}
    wanted |= {_name(r) for reqs in PROJECT["optional-dependencies"].values() for r in reqs}
    assert wanted - pinned == set()


def test_the_book_extra_holds_what_the_chapters_import():
    """Every module a chapter imports is the standard library's, the kernel's own (IPython), or comes
    with `pip install noisyloss[book]` (the install in each chapter's first cell)."""
    imported = set()
    for chapter in sorted((ROOT / "book").glob("*.ipynb")):
        for cell in json.loads(chapter.read_text(encoding="utf-8"))["cells"]:
            if cell["cell_type"] == "code":
                source = "".join(cell["source"])
                imported |= set(re.findall(r"^\s*(?:from|import)\s+([A-Za-z_]\w*)", source, re.MULTILINE))
    assert {"torch", "plotly", "noisyloss"} <= imported, "the pattern no longer finds the chapters' imports"
    distribution = {"sklearn": "scikit-learn"}
    installed = {_name(r) for r in PROJECT["dependencies"] + PROJECT["optional-dependencies"]["book"]}
    third_party = imported - set(sys.stdlib_module_names) - {"noisyloss", "IPython"}
    assert {distribution.get(m, m) for m in third_party} - installed == set()
