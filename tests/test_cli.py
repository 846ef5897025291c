"""The command line as a user meets it: one-line errors (exit 2) before any training, help with
defaults, resume after SIGKILL, and two processes sweeping into one --out."""
from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from noisyloss import experiments as E
from noisyloss import register_dataset
from noisyloss.__main__ import main
from noisyloss.data import load_dataset
from noisyloss.experiments import runner

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}  # tiny models: one thread is fastest on a busy machine
TINY = ["--dataset", "digits", "--train-subset", "300", "--batch-size", "64", "--quick", "--device", "cpu",
        "--no-progress"]


def _cli(out: Path, *extra: str) -> list:
    return [sys.executable, "-m", "noisyloss", "run", *TINY, "--out", str(out), *extra]


@pytest.fixture
def no_training(monkeypatch):
    """Fail the test if anything is trained."""
    def fit(*args, **kwargs):
        raise AssertionError("trained although the command was wrong")

    monkeypatch.setattr(runner, "fit", fit)


MISUSE = [
    (["--device", "bogus"], "unknown device 'bogus'"),
    (["--device", "mps"], "'mps' is not supported"),
    (["--train-subset", "100000"], "train_subset must be at most the 1347 training images"),
    (["--seeds", str(2 ** 70)], r"seed must be an int in \[0, 2\*\*64 - 1\]"),
    (["--seeds", "-1"], "seed must be an int >= 0"),
    (["--noise", "asym:0.4"], "dataset 'digits' defines no class pairs"),
    (["--noise", "sym:1.5"], "rate"),
    (["--loss", "gce:q="], "'gce:q='"),
    (["--loss", "gce:q=0.5,q=0.6"], "sets 'q' twice"),
    (["--loss", "peer:generator=1"], "'generator' cannot be set in a loss spec"),
    (["--loss", "gce:q=abc"], "'gce:q=abc'"),
    (["--epochs", "0"], "epochs must be an int >= 1"),
    (["--batch-size", "1"], "batch_size must be an int >= 2"),
    (["--lr", "nan"], r"lr must be in \(0, inf\), got nan"),
    (["--lr", "-1"], r"lr must be in \(0, inf\), got -1"),
    (["--dataset", "mnist"], r"dataset must be one of \(.*'digits'.*\), got 'mnist'"),
    (["--model", "resnet"], r"model must be one of \(.*'cnn', .*'mlp'.*\), got 'resnet'"),
    (["--loss", "ols:num_classes=3"], "'ols:num_classes=3' sets num_classes, which the runner sets from the data"),
    (["--import", "no_such_module_here"], "--import no_such_module_here: ModuleNotFoundError"),
]


@pytest.mark.parametrize("args, match", MISUSE, ids=[" ".join(a) for a, _ in MISUSE])
def test_misuse_is_one_error_line_with_status_2_before_any_training(args, match, tmp_path, capsys, no_training):
    assert main(["run", *TINY, "--out", str(tmp_path), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("noisyloss run: error: ") and err.count("\n") == 1, err
    assert re.search(match, err), err
    assert not (tmp_path / "records.jsonl").exists() or E.load_records(tmp_path / "records.jsonl") == []


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda_is_a_clear_error(tmp_path, capsys, no_training):
    assert main(["run", *TINY[:-3], "--device", "cuda", "--out", str(tmp_path)]) == 2
    assert "CUDA is not available on this machine" in capsys.readouterr().err


def test_quick_flag_that_cannot_be_read_is_an_error(tmp_path, capsys, monkeypatch, no_training):
    monkeypatch.setenv("NOISYLOSS_QUICK", "maybe")
    assert main(["run", "--dataset", "digits", "--device", "cpu", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "NOISYLOSS_QUICK must be 1/0" in err and "'maybe'" in err


def test_run_sets_the_threads_setup_picks(tmp_path, capsys, monkeypatch, no_training):
    import torch
    before = torch.get_num_threads()
    monkeypatch.setenv("NOISYLOSS_THREADS", "0")
    assert main(["run", "--dataset", "digits", "--device", "cpu", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "NOISYLOSS_THREADS must be an integer >= 1" in err and "'0'" in err
    monkeypatch.setenv("NOISYLOSS_THREADS", "1")
    try:  # the threads are set first, before the bad device stops the run
        assert main(["run", "--dataset", "digits", "--device", "bogus", "--out", str(tmp_path)]) == 2
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("argv", [["--seeds", "x"], ["--import"], ["--bogus"]])
def test_argparse_errors_are_one_line_with_status_2(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["run", *argv])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and re.match(r"noisyloss( run)?: error: ", err) and err.count("\n") == 1, err


def test_out_is_checked_before_data_is_loaded(tmp_path, capsys, no_training):
    digits = load_dataset("digits", device="cpu")
    loads = []

    def loader(device, quick):  # RunConfig loads it once (CPU, quick) for its shape; a sweep loads it again
        loads.append(device)
        return dataclasses.replace(digits, name="cli_probe")

    register_dataset("cli_probe", loader)
    (tmp_path / "file").write_text("x")
    cases = [(tmp_path / "file", "is a file; give a folder"),
             (tmp_path / "file" / "sub", "cannot write records there (Not a directory"),
             (Path("/proc/noisyloss"), "cannot write records there")]
    if os.geteuid() != 0:  # root writes into read-only folders
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        cases.append((ro, "cannot write records there (Permission denied"))
    for out, match in cases:
        assert main(["run", *TINY, "--dataset", "cli_probe", "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"--out {out}" in err and match in err, err
    assert len(loads) == 1


def test_help_shows_defaults_an_example_and_resume(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for part in ("--epochs EPOCHS (default: 20)", "--batch-size BATCH_SIZE (default: 256)", "(default: runs)",
                 "(default: ce)", "(default: clean)", "mlp 0.1", "example: python -m noisyloss run",
                 "a rerun with the same --out trains only the runs not recorded there",
                 "Several processes", "ce = ce:label_smoothing=0"):
        assert part in text, part


def test_lists_losses_and_rejects_bad_specs(capsys, tmp_path):
    assert main(["losses"]) == 0
    listed = capsys.readouterr().out
    for name in ("ce", "gce", "sce", "nce_rce", "ols"):
        assert f"\n{name} " in "\n" + listed
    assert main(["run", "--loss", "gce:q=5", "--out", str(tmp_path)]) == 2
    assert "loss" in capsys.readouterr().err
    assert not (tmp_path / "records.jsonl").exists()


def test_reports_unavailable_data(capsys, tmp_path, monkeypatch):
    import urllib.error

    from noisyloss import data

    def offline(url, dest):
        raise urllib.error.URLError("offline")

    monkeypatch.setattr(data, "_fetch", offline)
    monkeypatch.setenv("NOISYLOSS_DATA", str(tmp_path / "data"))
    assert main(["run", "--dataset", "cifar10", "--epochs", "1", "--out", str(tmp_path), "--device", "cpu"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("noisyloss run: error: data unavailable: could not download") and err.count("\n") == 1


def test_sweep_resumes_after_sigkill(tmp_path):
    records = tmp_path / "records.jsonl"
    command = _cli(tmp_path, "--noise", "sym:0.3", "--loss", "ce", "mae", "--loss", "gce:q=0.5", "--epochs", "10")
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENV)
    deadline = time.monotonic() + 120
    while not (records.exists() and records.read_text().count("\n") >= 1):
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = records.read_text().splitlines(keepends=True)
    complete = [line for line in before if line.endswith("\n")]
    assert 1 <= len(complete) < 3, "the sweep finished before it could be killed"
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=ENV)
    assert done.returncode == 0, done.stderr
    after = records.read_text().splitlines(keepends=True)
    assert after[: len(complete)] == complete  # finished runs neither recomputed nor rewritten
    losses = [json.loads(line)["config"]["loss"] for line in after]
    assert sorted(losses) == ["ce", "gce:q=0.5", "mae"]
    assert "gce:q=0.5" in done.stdout and "memorised" in done.stdout
    assert f"trained here: {3 - len(complete)};" in done.stdout


def test_two_concurrent_sweeps_into_one_out_train_each_run_once(tmp_path):
    losses = ["ce", "mae", "gce", "nce_rce"]
    command = _cli(tmp_path, "--noise", "sym:0.3", "--loss", *losses, "--epochs", "2")
    procs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
             for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in outs]
    trained = [int(out.split("trained here: ")[1].split(";")[0]) for out, _ in outs]
    assert sum(trained) == len(losses)  # each run trained by exactly one of the two processes
    lines = (tmp_path / "records.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["config"]["loss"] for line in lines) == sorted(losses)
    assert not (tmp_path / "records.jsonl.rejected").exists()
    for out, _ in outs:  # both print the whole table
        assert all(f"  {loss} " in out for loss in losses)
