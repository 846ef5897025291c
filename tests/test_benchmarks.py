"""The benchmarks run and print their tables (speed itself is judged from their output, not here)."""
import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _load(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_losses_prints_a_row_per_loss(capsys):
    bench = _load("bench_losses")
    bench.main(["--n", "32", "--classes", "3", "--rounds", "1", "--min-run-time", "0.001"])
    out = capsys.readouterr().out
    rows = [line.split()[0] for line in out.splitlines() if line.split() and line.split()[0] in bench.SPECS]
    assert rows == bench.SPECS
    assert "C=3: F.cross_entropy fwd+bwd" in out


def test_bench_train_prints_the_loss_share_table(capsys):
    bench = _load("bench_train")
    bench.main(["--quick"])
    out = capsys.readouterr().out
    assert "[1] loss share of a training step: digits MLP" in out
    assert [line.split()[0] for line in out.splitlines() if line.split() and line.split()[0] in ("ce", "gce")][:2] == \
        ["ce", "gce"]

