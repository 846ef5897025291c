"""The loss benchmark runs and prints its table (speed itself is judged from its output, not here)."""
import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _load(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_losses_prints_a_row_per_loss_and_a_verdict_per_thread_count(capsys):
    bench = _load("bench_losses")
    bench.main(["--n", "32", "--classes", "3", "--rounds", "1", "--min-run-time", "0.001", "--threads", "1"])
    out = capsys.readouterr().out
    rows = [line.split()[0] for line in out.splitlines() if line.split() and line.split()[0] in bench.SPECS]
    assert rows == bench.SPECS
    assert "threads 1, C=3: F.cross_entropy fwd+bwd" in out
    assert "threads 1: worst ratio to F.cross_entropy" in out
