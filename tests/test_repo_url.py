"""The repository's address is written in one place, pyproject's [project.urls] Repository; README,
_config.yml, the book's pages and every chapter's install cell must agree with it."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parents[1]
URL = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]["Repository"]
CHAPTERS = sorted((ROOT / "book").glob("*.ipynb"))
# Addresses a reader installs or clones from: `pip install git+URL` (also %pip) and `git clone URL`.
INSTALL_FROM = re.compile(r"(?:git\+|git clone )(https?://[^\s`'\"\\]+)")


def _texts():
    for path in [ROOT / "README.md", *sorted((ROOT / "book").glob("*.md")), *CHAPTERS]:
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".ipynb":
            text = "\n".join("".join(cell["source"]) for cell in json.loads(text)["cells"])
        yield path.relative_to(ROOT).as_posix(), text


def test_the_address_is_a_github_repository():
    assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", URL), URL


def test_config_names_the_repository():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["repository"]["url"] == URL


def test_readme_clones_and_installs_from_the_repository():
    readme = (ROOT / "README.md").read_text()
    assert f"git clone {URL}" in readme
    assert f"pip install git+{URL}" in readme


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.name)
def test_first_code_cell_installs_from_the_repository(chapter):
    cells = json.loads(chapter.read_text(encoding="utf-8"))["cells"]
    first = "".join(next(c for c in cells if c["cell_type"] == "code")["source"])
    assert f'%pip install -q "noisyloss[book] @ git+{URL}"' in first


def test_every_install_or_clone_address_is_the_repository():
    found = {(where, address) for where, text in _texts() for address in INSTALL_FROM.findall(text)}
    assert found, "no install address found: the pattern no longer matches the pages"
    assert {(where, address) for where, address in found if address != URL} == set()
