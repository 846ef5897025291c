#!/usr/bin/env bash
# The Colab path: build noisyloss's wheel, install it alone into a fresh virtual environment (no
# requirements.txt: the package's own dependencies only, plus the kernel and notebook runner Colab
# has), then execute chapters from a temporary folder holding nothing but the notebooks, first cell
# included, as Colab runs them. Nothing of the repository is on the kernel's path; a last cell added
# to each copy asserts that noisyloss was imported from the virtual environment.
#
#   tests/colab/run_colab.sh [book/NN_chapter.ipynb ...]   (default: a theory and an experimental chapter)
#
# torch is held at requirements.txt's pin (a constraint, not an install request): Colab comes with
# torch installed, and CI has that version at hand.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
chapters=("$@")
[ ${#chapters[@]} -gt 0 ] || chapters=(book/04_gce.ipynb book/09_noisy_cifar.ipynb)
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

echo "--- wheel (sdist, then the wheel built from it)"
python -m build --outdir "$work/dist" "$repo" >"$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
wheel="$(ls "$work"/dist/noisyloss-*.whl)"
echo "$(basename "$wheel")"

echo "--- fresh virtual environment: the wheel alone, ipykernel and nbclient"
python -m venv "$work/venv"
grep -E '^torch==' "$repo/requirements.txt" >"$work/constraints.txt"
# --no-compile: no bytecode for all of torch up front; the kernel compiles what it imports. (pip's
# "Location ... is ignored" lines name index folders of this machine's pip config that do not exist.)
"$work/venv/bin/python" -m pip install -q --no-compile -c "$work/constraints.txt" "$wheel" "ipykernel<7" nbclient \
  2> >(grep -v '^WARNING: Location .* is ignored' >&2)
"$work/venv/bin/python" -m ipykernel install --prefix "$work/venv" --name colab >/dev/null

mkdir "$work/notebooks"
for nb in "${chapters[@]}"; do cp "$repo/$nb" "$work/notebooks/"; done
cd "$work/notebooks"
env -u PYTHONPATH NOISYLOSS_QUICK=1 MPLBACKEND=Agg "$work/venv/bin/python" - "$work/venv" *.ipynb <<'PY'
"""Execute each notebook with the venv's kernel, as Colab would; fail on the first error or hang."""
import sys
import time

import nbclient
import nbformat

venv, notebooks = sys.argv[1], sys.argv[2:]
CHECK = f"""import sys, noisyloss
assert sys.prefix == {venv!r} and noisyloss.__file__.startswith(sys.prefix), (sys.prefix, noisyloss.__file__)"""
for path in notebooks:
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(CHECK))
    start = time.perf_counter()
    nbclient.NotebookClient(nb, kernel_name="colab", timeout=300, startup_timeout=60,
                            resources={"metadata": {"path": "."}}).execute()
    print(f"{path}: executed in the fresh environment ({time.perf_counter() - start:.0f} s)", flush=True)
PY
