"""The runner as a user meets it: a sweep in its own process, what run(data=...) records, the loss
arguments the runner sets itself, sweeps from several threads, and the CLI's one-line ends (a full
disk, an unwritable data folder, Ctrl-C)."""
from __future__ import annotations

import dataclasses
import inspect
import json
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from noisyloss import experiments as E
from noisyloss.__main__ import main
from noisyloss.data import ImageData, load_dataset

FAST = dict(dataset="digits", epochs=2, train_subset=300, quick=True)
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
TINY = ["run", "--dataset", "digits", "--train-subset", "300", "--batch-size", "64", "--quick", "--device", "cpu",
        "--no-progress"]


@pytest.fixture
def no_training(monkeypatch):
    """Fail the test if anything is trained."""
    from noisyloss.experiments import runner

    monkeypatch.setattr(runner, "fit", lambda *a, **k: pytest.fail("trained although the command could not work"))


def _untimed(record: dict) -> dict:
    """What a run computed: its key, final metrics, per-epoch history (without seconds), per-class accuracy."""
    history = [{k: v for k, v in entry.items() if k != "seconds"} for entry in record["history"]]
    return {"key": record["key"], "final": record["final"], "history": history, "per_class_acc": record["per_class_acc"]}


def test_a_sweep_trains_in_its_own_process_without_a_worker_pool():
    assert "workers" not in inspect.signature(E.sweep).parameters
    assert not hasattr(E, "prepare_workers")
    device = E.provenance(torch.device("cpu"))["device"]
    assert device.startswith("cpu (") and device.endswith(f", {torch.get_num_threads()} threads)"), device


def test_run_records_only_the_data_of_its_config():
    digits = load_dataset("digits", device="cpu")
    with pytest.raises(E.ConfigError, match="data is 'digits'.*records dataset 'synth10'.*register_dataset"):
        E.run(E.RunConfig(**{**FAST, "dataset": "synth10"}), device="cpu", progress=False, data=digits)
    renamed = dataclasses.replace(digits, name="synth100")  # the name of a dataset of another shape
    with pytest.raises(E.ConfigError, match=r"\(10, 1, 8\).*'synth100' \(100, 1, 8\)"):
        E.run(E.RunConfig(**{**FAST, "dataset": "synth100"}), device="cpu", progress=False, data=renamed)
    res = E.run(E.RunConfig(**FAST), device="cpu", progress=False, data=digits)  # preloaded, the same data
    assert res.record["config"]["dataset"] == "digits" and json.loads(res.record["key"])["dataset"] == "digits"


def test_label_noise_of_a_dataset_is_a_field_not_the_identity_of_its_labels():
    d = load_dataset("digits", device="cpu")
    copied = ImageData(d.name, d.x_train, d.y_train.clone(), d.x_test, d.y_test, 10, d.classes, d.y_train)
    assert not copied.has_label_noise  # equal labels held in two tensors are clean labels
    assert E.make_labels(copied, "sym:0.4", seed=0).corrupted.any()  # so noise can be drawn on them
    wrong = (d.y_train + 1) % 10
    with pytest.raises(ValueError, match="y_train differs from y_train_clean; set has_label_noise=True"):
        ImageData(d.name, d.x_train, wrong, d.x_test, d.y_test, 10, d.classes, d.y_train)
    human = ImageData(d.name, d.x_train, wrong, d.x_test, d.y_test, 10, d.classes, d.y_train, has_label_noise=True)
    assert human.subset(50).has_label_noise and bool(E.make_labels(human, "clean").corrupted.all())
    with pytest.raises(TypeError, match="has_label_noise must be a bool, got int"):
        ImageData(d.name, d.x_train, wrong, d.x_test, d.y_test, 10, d.classes, d.y_train, has_label_noise=1)
    with pytest.raises(ValueError, match=r"y_train must be in \[0, 8\] \(C=9\), found 9"):
        ImageData(d.name, d.x_train, d.y_train, d.x_test, d.y_test, 9, d.classes, d.y_train)
    with pytest.raises(ValueError, match="x_train and y_train_clean must have the 1347 samples of y_train"):
        ImageData(d.name, d.x_train[:5], d.y_train, d.x_test, d.y_test, 10, d.classes, d.y_train)


def test_the_runner_sets_the_number_of_classes_and_a_spec_cannot():
    for spec, name in (("ols:num_classes=3", "num_classes"), ("ols:num_examples=5", "num_examples")):
        with pytest.raises(E.ConfigError, match=f"{spec!r} sets {name}, which the runner sets from the data"):
            E.RunConfig(loss=spec)
    res = E.run(E.RunConfig(**{**FAST, "dataset": "synth100", "loss": "ols", "epochs": 1}), device="cpu", progress=False)
    assert res.loss_fn.num_classes == 100 and res.loss_fn.soft_labels.shape == (100, 100)
    assert json.loads(res.record["key"])["loss"] == "ols"  # the key does not carry it


def test_sweeps_from_two_threads_record_what_one_thread_records(tmp_path):
    plans = {"a": E.grid(["gce", "mae"], ["sym:0.4"], [0, 1], **FAST), "b": E.grid(["gce", "ce"], ["sym:0.4"], [2], **FAST)}
    alone = {name: E.sweep(configs, tmp_path / f"alone-{name}.jsonl", device="cpu", progress=False)
             for name, configs in plans.items()}
    seen, together, errors = [], {}, []

    def sweep(name: str) -> None:
        try:
            together[name] = E.sweep(plans[name], tmp_path / f"thread-{name}.jsonl", device="cpu", progress=False,
                                     callback=lambda cfg, entry: seen.append(name))
        except BaseException as err:  # noqa: BLE001 (reported by the main thread)
            errors.append(err)

    threads = [threading.Thread(target=sweep, args=(name,)) for name in plans]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    assert not errors and not any(t.is_alive() for t in threads)
    for name in plans:
        assert [_untimed(r) for r in together[name]] == [_untimed(r) for r in alone[name]]
    first = seen[0]
    assert seen == [first] * seen.count(first) + [n for n in seen if n != first]  # one sweep after the other


def test_an_unwritable_data_folder_is_one_error_line(tmp_path, capsys, monkeypatch, no_training):
    (tmp_path / "file").write_text("x")
    folders = [(tmp_path / "file" / "data", "Not a directory"), (Path("/proc/noisyloss-data"), "No such file")]
    if os.geteuid() != 0:  # root writes into read-only folders
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        folders.append((ro, "Permission denied"))
    for folder, match in folders:
        monkeypatch.setenv("NOISYLOSS_DATA", str(folder))
        out = tmp_path / "out"
        assert main([*TINY, "--dataset", "cifar10", "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("noisyloss run: error: ") and err.count("\n") == 1 and match in err, err
        assert str(folder) in err and (out / "records.jsonl").read_bytes() == b""


@pytest.fixture(scope="module")
def full_disk(tmp_path_factory):
    """``(CompletedProcess, out folder)`` of a CLI run whose files may not grow past 300 bytes (a full
    disk, as far as the process can tell): the record's line does not fit."""
    out = tmp_path_factory.mktemp("full") / "out"
    limit = 300
    done = subprocess.run([sys.executable, "-m", "noisyloss", *TINY, "--epochs", "1", "--out", str(out)], env=ENV,
                          capture_output=True, text=True, timeout=300,
                          preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit)))
    return done, out


def test_a_full_disk_while_recording_is_one_error_line(full_disk):
    done, _ = full_disk
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("noisyloss run: error: File too large") and done.stderr.count("\n") == 1, done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_a_full_disk_leaves_no_partial_record(full_disk):
    _, out = full_disk
    assert (out / "records.jsonl").read_bytes() == b""


@pytest.mark.parametrize("pause", [0.0, 0.5])  # Ctrl-C as training starts, and during training
def test_ctrl_c_stops_the_cli_with_one_line_and_ends_it_as_an_interrupted_program(tmp_path, pause):
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "noisyloss", *TINY, "--epochs", "100000", "--out", str(out)],
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not list((out / "records.jsonl.claims").glob("*.lock")):  # claimed: training
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.poll() else ""
            time.sleep(0.05)
        time.sleep(pause)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        proc.kill()
        proc.wait()
    # ended by SIGINT, as an interrupted program (the shell's status 130), whenever Ctrl-C comes: it ended so
    # at random before, when Python's exit met an interrupt that had crossed C code during training
    assert proc.returncode == -signal.SIGINT, stderr
    assert stderr == (f"noisyloss run: interrupted: 0 of 1 run(s) recorded in {out / 'records.jsonl'}; "
                      "rerun the same command to resume\n"), stderr
    assert "Traceback" not in stdout and (out / "records.jsonl").read_bytes() == b""


def test_ctrl_c_in_a_shell_loop_over_seeds_stops_the_loop(tmp_path):
    """Ctrl-C reaches the whole foreground group, the shell included: the shell stops its loop only when
    the command ends by SIGINT (bash's wait-and-cooperative-exit), not when it exits with status 130."""
    command = " ".join([sys.executable, "-m", "noisyloss", *TINY, "--epochs", "100000"])
    script = (f'for s in 0 1; do {command} --seeds $s --out {tmp_path}/$s; echo "after seed $s: $?"; done; '
              'echo "loop ended"')
    proc = subprocess.Popen(["bash", "-c", script], env=ENV, start_new_session=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not list((tmp_path / "0" / "records.jsonl.claims").glob("*.lock")):  # seed 0 is training
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert "interrupted: 0 of 1 run(s)" in stderr
    assert "after seed" not in stdout and "loop ended" not in stdout  # the shell stopped with the command
    assert not (tmp_path / "1").exists()  # seed 1 never started


def test_a_loss_correction_without_T_gets_the_runs_noise_model():
    from noisyloss.experiments import ConfigError, RunConfig
    from noisyloss.noise import make_transition
    T = RunConfig(dataset="digits", loss="forward", noise="sym:0.4").make_loss(10, 5).T
    assert torch.equal(T, make_transition("sym:0.4", 10))
    T = RunConfig(dataset="digits", loss="backward", noise="asym:0.4:1>7,7>1").make_loss(10, 5).T
    assert T[1, 7] == pytest.approx(0.4) and T[7, 1] == pytest.approx(0.4) and T[0, 0] == 1
    given = RunConfig(dataset="digits", loss="forward:T=sym:0.2", noise="sym:0.4").make_loss(10, 5).T
    assert torch.equal(given, make_transition("sym:0.2", 10))  # a T in the spec wins
    with pytest.raises(ConfigError, match="needs T"):
        RunConfig(dataset="digits", loss="forward", label_set="annotator")
