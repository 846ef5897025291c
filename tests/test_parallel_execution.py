"""The book's execution extension (book/_ext/parallel_execution.py), through real ``jupyter-book build``s
of a two-page book: both notebooks execute at once and their outputs reach the pages; a rebuild
executes again instead of showing an earlier build's outputs (unless the config asks to reuse them);
a failing notebook still fails a ``-W`` build, with its error; the build's choice of how many at a time."""
from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
EXT = ROOT / "book" / "_ext"
_spec = importlib.util.spec_from_file_location("parallel_execution", EXT / "parallel_execution.py")
parallel_execution = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(parallel_execution)

pytestmark = pytest.mark.skipif(shutil.which("jupyter-book") is None, reason="jupyter-book is not installed")


def make_book(folder: Path, pages: dict, *, jobs: int = 2, reuse: bool = False) -> Path:
    """A book whose pages ``{name: [code cell, ...]}`` are notebooks, built with the book's extension."""
    folder.mkdir(exist_ok=True)
    (folder / "_config.yml").write_text(f"""title: test
only_build_toc_files: true
execute:
  execute_notebooks: cache
  timeout: 60
sphinx:
  local_extensions:
    parallel_execution: {EXT}
  config:
    noisyloss_execution_jobs: {jobs}
    noisyloss_reuse_executed: {str(reuse).lower()}
""")
    (folder / "intro.md").write_text("# Intro\n")
    (folder / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n" + "".join(f"  - file: {n}\n" for n in pages))
    for name, cells in pages.items():
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(f"# Page {name}")] +
                                      [nbformat.v4.new_code_cell(c) for c in cells])
        nb.metadata.kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(nb, folder / f"{name}.ipynb")
    return folder


def build(book: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(["jupyter-book", "build", str(book), "-W", "--keep-going", *extra],
                          capture_output=True, text=True, timeout=300)


def page(book: Path, name: str) -> str:
    return (book / "_build" / "html" / f"{name}.html").read_text()


def timed_cell(name: str) -> str:
    """A cell that takes two seconds and writes when it ran to ``name.json`` in the notebook's folder."""
    return (f"import json, time\nstart = time.time()\ntime.sleep(2)\n"
            f"json.dump([start, time.time()], open('{name}.json', 'w'))\nprint('output of {name}')")


def test_the_notebooks_execute_at_once_and_their_outputs_reach_the_pages(tmp_path):
    book = make_book(tmp_path / "book", {"a": [timed_cell("a")], "b": [timed_cell("b")]})
    done = build(book)
    assert done.returncode == 0, done.stdout + done.stderr
    (a0, a1), (b0, b1) = (json.loads((book / f"{n}.json").read_text()) for n in "ab")
    assert max(a0, b0) < min(a1, b1), "the two notebooks did not run at the same time"
    assert "executing 2 notebooks, 2 at a time" in done.stdout
    assert "output of a" in page(book, "a") and "output of b" in page(book, "b")
    assert done.stdout.count("Using cached notebook") == 2  # myst-nb read both from what the extension stored


def test_a_rebuild_executes_again_unless_asked_to_reuse(tmp_path):
    cell = "print('the file says', open('data.txt').read())"  # the code stays; what it reads changes
    book = make_book(tmp_path / "book", {"a": [cell], "b": [cell]})
    (book / "data.txt").write_text("first")
    assert build(book).returncode == 0
    assert "the file says first" in page(book, "a")
    (book / "data.txt").write_text("second")
    again = build(book, "--all")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "the file says second" in page(book, "a") and "the file says second" in page(book, "b")
    make_book(book, {"a": [cell], "b": [cell]}, reuse=True)  # the Pages workflow's setting
    (book / "data.txt").write_text("third")
    reused = build(book, "--all")
    assert reused.returncode == 0, reused.stdout + reused.stderr
    assert "the file says second" in page(book, "a")  # the cached outputs, as asked
    assert "executing" not in reused.stdout


def test_a_failing_notebook_fails_the_build_with_its_error(tmp_path):
    book = make_book(tmp_path / "book", {"a": ["print('fine')"], "b": ["raise KeyError('no such column')"]})
    done = build(book)
    log = done.stdout + done.stderr
    assert done.returncode != 0
    assert "b: execution failed" in log and "myst-nb executes it again" in log
    assert "Executing notebook failed: CellExecutionError" in log  # myst-nb's own report, with the traceback:
    report = (book / "_build" / "html" / "reports" / "b.err.log").read_text()
    assert "KeyError" in report and "no such column" in report


@pytest.mark.parametrize("cpus, jobs", [(1, 1), (2, 2), (4, 1), (16, 1)])
def test_two_at_a_time_on_two_cpus_only(monkeypatch, cpus, jobs):
    monkeypatch.setattr(parallel_execution.os, "sched_getaffinity", lambda pid: set(range(cpus)), raising=False)
    assert parallel_execution.default_jobs() == jobs


def test_the_experiment_chapters_start_first():
    docnames = sorted(f"book/{p.stem}" for p in (ROOT / "book").glob("*.ipynb")) + ["book/intro", "book/api"]
    app = SimpleNamespace(env=SimpleNamespace(
        doc2path=lambda d: ROOT / (d + (".ipynb" if (ROOT / (d + ".ipynb")).exists() else ".md")),
        mystnb_config=SimpleNamespace(execution_excludepatterns=[], execution_mode="cache")))
    order = [d for d, _, _ in parallel_execution._to_execute(app, docnames)]
    assert order[:3] == ["book/10_cifar10n", "book/09_underfitting", "book/09_noisy_cifar"]  # the longest first
    assert len(order) == len(docnames) - 2  # the notebooks only


@pytest.mark.parametrize("jobs, reuse, message", [
    (-1, False, "noisyloss_execution_jobs must be an int >= 0"), (1.5, False, "noisyloss_execution_jobs"),
    (True, False, "noisyloss_execution_jobs"), (2, "yes", "noisyloss_reuse_executed must be true or false")])
def test_a_bad_setting_stops_the_build_and_names_itself(jobs, reuse, message):
    with pytest.raises(ValueError, match=message):
        parallel_execution.check_config(None, SimpleNamespace(noisyloss_execution_jobs=jobs, noisyloss_reuse_executed=reuse))
    parallel_execution.check_config(None, SimpleNamespace(noisyloss_execution_jobs=0, noisyloss_reuse_executed=False))


def test_the_book_builds_through_the_extension_and_pages_can_switch_to_reuse():
    import re

    import yaml

    text = (ROOT / "_config.yml").read_text()
    config = yaml.safe_load(text)
    assert config["execute"]["execute_notebooks"] == "cache"
    assert config["sphinx"]["local_extensions"]["parallel_execution"] == "book/_ext"
    assert config["sphinx"]["config"]["noisyloss_reuse_executed"] is False  # README's build executes everything
    workflow = (ROOT / ".github" / "workflows" / "pages.yml").read_text()
    pattern = re.search(r"sed 's/(\^[^/]+\$)/", workflow).group(1)  # the line the Pages workflow rewrites
    assert len(re.findall(pattern, text, flags=re.M)) == 1
