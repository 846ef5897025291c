"""CI executes each notebook once: the tests keep the notebooks nbmake executed (--overwrite), and
the build that follows reads _config.yml with execution off (the line .ci/run rewrites must exist),
while README's build of the committed, output-free notebooks executes every chapter."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parents[1]
CI = (ROOT / ".ci" / "run").read_text()
CONFIG = (ROOT / "_config.yml").read_text()


def _sed(script: str, text: str) -> str:
    """Apply one ``s/^PATTERN$/REPLACEMENT/`` of sed to every line of ``text``."""
    pattern, replacement = re.fullmatch(r"s/\^(.*)\$/(.*)/", script).groups()
    return "\n".join(replacement if line == pattern else line for line in text.splitlines()) + "\n"


def test_readme_build_executes_every_chapter():
    assert yaml.safe_load(CONFIG)["execute"]["execute_notebooks"] == "force"


def test_ci_builds_from_the_executed_notebooks_without_executing_again():
    tests = re.search(r"^pytest -n 2 --nbmake --overwrite (--durations=0 )?book( .*)?$", CI, re.MULTILINE)
    script = re.search(r"^sed '([^']*)' _config\.yml > _config\.executed\.yml$", CI, re.MULTILINE)
    build = re.search(r"^jupyter-book build \. -W --keep-going --config _config\.executed\.yml$", CI, re.MULTILINE)
    assert tests and script and build and tests.start() < script.start() < build.start()
    executed = yaml.safe_load(_sed(script.group(1), CONFIG))
    assert executed["execute"]["execute_notebooks"] == "off"
    assert {k: v for k, v in executed.items() if k != "execute"} == \
        {k: v for k, v in yaml.safe_load(CONFIG).items() if k != "execute"}


def test_the_build_loads_only_extensions_that_exist():
    extensions = yaml.safe_load(CONFIG)["sphinx"]["local_extensions"]
    assert {name: (ROOT / folder / f"{name}.py").is_file() for name, folder in extensions.items()} == \
        {name: True for name in extensions}
