#!/usr/bin/env bash
# The Colab path: build noisyloss's wheel and install it with its `book` extra (what each chapter's
# first cell installs on Colab) alone into a fresh virtual environment, with the kernel Colab has; no
# requirements.txt. Then, with the venv's kernel in a temporary folder that holds nothing of the
# repository, execute:
#   - the chapters' first cell (one cell, the same in every chapter: install or import, book.setup()),
#   - a check: noisyloss comes from the venv, every module the chapters import is there (read from
#     the chapters' code), the GPU records the chapters read ship in the wheel, and a plotly figure
#     and a live ipywidgets slider of viz draw.
# The chapters themselves execute once, in the tests (.ci/run); this checks what Colab adds to them:
# the wheel and its extra alone.
#
# torch is held at requirements.txt's pin (a constraint, not an install request): Colab comes with
# torch installed, and CI has that version at hand.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

echo "--- wheel (sdist, then the wheel built from it)"
python -m build --outdir "$work/dist" "$repo" >"$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
wheel="$(ls "$work"/dist/noisyloss-*.whl)"
echo "$(basename "$wheel")"

echo "--- fresh virtual environment: the wheel with its book extra, ipykernel and nbclient"
python -m venv "$work/venv"
grep -E '^torch==' "$repo/requirements.txt" >"$work/constraints.txt"
# --no-compile: no bytecode for all of torch up front; the kernel compiles what it imports. (pip's
# "Location ... is ignored" lines name index folders of this machine's pip config that do not exist.)
"$work/venv/bin/python" -m pip install -q --no-compile -c "$work/constraints.txt" "$wheel[book]" "ipykernel<7" nbclient \
  2> >(grep -v '^WARNING: Location .* is ignored' >&2)
"$work/venv/bin/python" -m ipykernel install --prefix "$work/venv" --name colab >/dev/null

mkdir "$work/notebooks"
cd "$work/notebooks"
env -u PYTHONPATH NOISYLOSS_QUICK=1 MPLBACKEND=Agg "$work/venv/bin/python" - "$work/venv" "$repo"/book/*.ipynb <<'PY'
"""Execute the chapters' shared first cell and the check with the venv's kernel, as Colab would."""
import re
import sys
import time

import nbclient
import nbformat

venv, chapters = sys.argv[1], sys.argv[2:]
firsts, imported, records = set(), set(), set()
for path in chapters:
    code = [cell.source for cell in nbformat.read(path, as_version=4).cells if cell.cell_type == "code"]
    firsts.add(code[0])
    imported |= {m for source in code for m in re.findall(r"^\s*(?:from|import)\s+([A-Za-z_][\w.]*)", source, re.M)}
    records |= {name for source in code for name in re.findall(r"book\.results\(\s*[\"']([^\"']+)", source)}
assert records, "no chapter reads book.results(NAME) any more: the pattern no longer matches"
assert len(firsts) == 1, "the chapters' first cells differ: check each of them here"
CHECK = f"""import importlib, sys
import noisyloss
from noisyloss import book, viz
assert sys.prefix == {venv!r} and noisyloss.__file__.startswith(sys.prefix), (sys.prefix, noisyloss.__file__)
for name in {sorted(imported)!r}:
    importlib.import_module(name)
for name in {sorted(records)!r}:
    assert book.results(name), name
display(viz.loss_curves_figure("gce:q={{}}", [0.3, 0.7], param_name="q", points=20, title="GCE"))
display(viz.live_loss_curves("gce:q={{}}", [0.3, 0.7], param_name="q", points=20))"""
nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(firsts.pop()), nbformat.v4.new_code_cell(CHECK)])
start = time.perf_counter()
nbclient.NotebookClient(nb, kernel_name="colab", timeout=300, startup_timeout=60,
                        resources={"metadata": {"path": "."}}).execute()
print(f"the first cell and the check: executed in the fresh environment ({time.perf_counter() - start:.0f} s)")
print(f"imported there: {', '.join(sorted(imported))}")
PY
