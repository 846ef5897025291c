"""Run configs, records files (resume after SIGKILL, truncated lines) and the CLI."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from noisyloss import book
from noisyloss import experiments as E
from noisyloss.__main__ import main
from noisyloss.data import load_dataset
from noisyloss.train import NoisyLabels

FAST = dict(dataset="digits", epochs=2, train_subset=300, quick=True)


@pytest.mark.parametrize("field, value", [
    ("dataset", "mnist"), ("loss", "xyz"), ("loss", "gce:q=2"), ("loss", "gce:p=1"), ("noise", "bogus:0.1"),
    ("noise", 0.4), ("epochs", 0), ("epochs", 2.0), ("batch_size", 1), ("lr", -0.1), ("lr", True),
    ("model", "resnet"), ("seed", -1), ("train_subset", 0), ("augment", "yes"), ("quick", 1), ("label_set", ""),
    ("label_set", 3),
])
def test_runconfig_rejects_bad_fields_by_name(field, value):
    with pytest.raises(ValueError, match=field):
        E.RunConfig(**{field: value})


def test_runconfig_noise_must_be_clean_for_human_labels():
    E.RunConfig(dataset="cifar10n-worse")
    with pytest.raises(ValueError, match="noise must be 'clean'"):
        E.RunConfig(dataset="cifar10n-worse", noise="sym:0.2")


def test_resolved_defaults_and_key():
    cfg = E.RunConfig(dataset="cifar10", loss="ols").resolved("cpu")
    assert cfg.model == "cnn" and cfg.lr == E.DEFAULT_LR["cnn"] and isinstance(cfg.quick, bool)
    digits = E.RunConfig(quick=False).resolved("cpu")
    assert (digits.model, digits.quick) == ("mlp", False)
    assert json.loads(digits.key())["model"] == "mlp"
    assert digits.key() != E.RunConfig(quick=True).resolved("cpu").key()


def test_label_set_needs_clean_noise_and_a_dataset_without_human_labels():
    with pytest.raises(ValueError, match="noise must be 'clean'"):
        E.RunConfig(label_set="annotator", noise="sym:0.2")
    with pytest.raises(ValueError, match="label_set"):
        E.RunConfig(dataset="cifar10n-worse", label_set="annotator")


def test_keys_of_records_written_before_label_set_existed_are_unchanged():
    rec = book.results("digits_gpu.jsonl")[0]
    assert "label_set" not in rec["config"]
    assert E.RunConfig(**rec["config"]).key() == rec["key"]
    assert json.loads(E.RunConfig(label_set="a").key())["label_set"] == "a"


def test_grid_is_the_full_product():
    configs = E.grid(["ce", "gce:q=0.7"], ["clean", "sym:0.4"], [0, 1, 2], epochs=3)
    assert len(configs) == 12 and len({(c.loss, c.noise, c.seed) for c in configs}) == 12
    assert all(c.epochs == 3 for c in configs)
    assert [c.loss for c in E.grid("mae", "clean", 0)] == ["mae"]


def test_make_labels():
    d = load_dataset("digits", device="cpu")
    clean = E.make_labels(d, "clean")
    assert torch.equal(clean.labels, d.y_train) and not clean.corrupted.any()
    a, b = E.make_labels(d, "sym:0.4", seed=1), E.make_labels(d, "sym:0.4", seed=1)
    assert torch.equal(a.labels, b.labels)
    assert torch.equal(a.corrupted, a.labels != d.y_train)
    rate = float(a.corrupted.double().mean())
    assert abs(rate - 0.4) < 4 * (0.4 * 0.6 / len(d.y_train)) ** 0.5
    human = E.ImageData(d.name, d.x_train, (d.y_train + 1) % 10, d.x_test, d.y_test, 10, d.classes, d.y_train)
    lab = E.make_labels(human, "clean")
    assert lab.corrupted.all() and torch.equal(lab.labels, human.y_train)
    with pytest.raises(ValueError, match="already noisy"):
        E.make_labels(human, "sym:0.2")


def test_run_returns_consistent_result():
    seen = []
    res = E.run(E.RunConfig(loss="gce:q=0.7", noise="sym:0.4", **FAST), device="cpu", progress=False,
                callback=seen.append)
    assert seen == res.history and len(seen) == 2
    assert res.test_probs.shape == (450, 10) and res.test_labels.shape == (450,)
    torch.testing.assert_close(res.test_probs.sum(1), torch.ones(450))
    assert isinstance(res.labels, NoisyLabels) and len(res.labels.labels) == 300
    rec = json.loads(json.dumps(res.record))
    assert rec["config"]["model"] == "mlp" and rec["config"]["lr"] == E.DEFAULT_LR["mlp"]
    assert rec["final"]["test_acc"] == res.history[-1]["test_acc"]
    assert rec["final"]["noise_rate"] == pytest.approx(float(res.labels.corrupted.double().mean()))
    assert 0 <= rec["final"]["ece"] <= 1 and len(rec["per_class_acc"]) == 10
    for key in ("device", "torch", "noisyloss", "commit", "date", "wall_seconds", "key"):
        assert key in rec
    assert rec["torch"] == torch.__version__


def _record(i: int) -> str:
    return json.dumps({"key": f"k{i}", "config": {}, "final": {}})


def test_load_records_tolerates_only_a_truncated_last_line(tmp_path):
    path = tmp_path / "r.jsonl"
    assert E.load_records(path) == []
    path.write_text(_record(0) + "\n" + _record(1) + "\n" + _record(2)[:17])
    with pytest.warns(RuntimeWarning, match="truncated"):
        assert [r["key"] for r in E.load_records(path)] == ["k0", "k1"]
    path.write_text(_record(0) + "\n" + _record(1)[:17] + "\n" + _record(2) + "\n")
    with pytest.raises(ValueError, match="line 2"):
        E.load_records(path)


def test_sweep_after_a_truncated_line_appends_cleanly(tmp_path):
    path = tmp_path / "records.jsonl"
    first, second = E.grid(["ce", "mae"], ["sym:0.2"], [0], **FAST)
    done = E.sweep([first], path, device="cpu", progress=False)
    path.write_text(path.read_text() + '{"key": "half a rec')  # killed mid-write
    with pytest.warns(RuntimeWarning, match="truncated"):
        out = E.sweep([first, second, first], path, device="cpu", progress=False)
    assert out[0] == done[0] == out[2] and out[1]["config"]["loss"] == "mae"
    lines = path.read_text().splitlines()
    assert len(lines) == 2 and json.loads(lines[0]) == done[0]


def test_sweep_calls_back_per_epoch_and_skips_saved_runs(tmp_path):
    path = tmp_path / "records.jsonl"
    ce, mae = E.grid(["ce", "mae"], ["sym:0.2"], [0], **FAST)
    live = E.run(ce, device="cpu", progress=False)
    assert E.save_record(path, live.record) and not E.save_record(path, live.record)  # once per key
    seen = []
    out = E.sweep([ce, mae], path, device="cpu", progress=False,
                  callback=lambda cfg, entry: seen.append((cfg.loss, entry["epoch"])))
    assert seen == [("mae", 1), ("mae", 2)]  # ce was saved, so only mae trains
    assert out[0] == json.loads(json.dumps(live.record)) and out[1]["history"][-1]["epoch"] == 2
    assert len(path.read_text().splitlines()) == 2


def test_seed_stats_are_the_numbers_of_seed_table():
    recs = [{"config": {"loss": "ce", "noise": "sym:0.4"}, "final": {"test_acc": a, "memorised": m}}
            for a, m in ((0.5, 1.0), (0.7, None), (0.9, 0.6))]
    stats = E.seed_stats(recs)
    mean, std, n = stats["sym:0.4", "ce"]
    assert n == 3 and mean == pytest.approx(0.7) and std == pytest.approx(0.2)  # sample std, ddof=1
    assert E.seed_stats(recs, "memorised")["sym:0.4", "ce"] == pytest.approx((0.8, 0.4 / 2 ** 0.5, 2))
    assert f"{mean:.3f} ± {std:.3f}" in E.seed_table(recs, ["ce"], ["sym:0.4"])


def _annotator(flip_every: int = 3) -> torch.Tensor:
    """Digits training labels with every ``flip_every``-th one moved to the next class."""
    clean = load_dataset("digits", device="cpu").y_train_clean.clone()
    clean[::flip_every] = (clean[::flip_every] + 1) % 10
    return clean


def test_run_on_a_named_label_set_records_it_and_trains_on_those_labels():
    labels = _annotator()
    clean = load_dataset("digits", device="cpu").y_train_clean
    cfg = E.RunConfig(label_set="annotator", **FAST)
    res = E.run(cfg, device="cpu", progress=False, train_labels=labels)
    rec = res.record
    assert rec["config"]["label_set"] == "annotator" and rec["labels_digest"] == E.labels_digest(labels)
    assert json.loads(rec["key"])["label_set"] == "annotator"
    # a 300-image subset of labels that are wrong for every third image
    sub_clean = res.data.y_train_clean
    assert torch.equal(res.labels.corrupted, res.labels.labels != sub_clean) and len(sub_clean) == 300
    assert rec["final"]["noise_rate"] == pytest.approx(float((res.labels.labels != sub_clean).double().mean()))
    assert 0.2 < rec["final"]["noise_rate"] < 0.47  # about 1/3 of 300
    assert float((labels != clean).double().mean()) == pytest.approx(1 / 3, abs=0.01)
    assert E.labels_digest(labels) != E.labels_digest(clean)


@pytest.mark.parametrize("label_set, make, exc, match", [
    ("a", None, ValueError, "train_labels and RunConfig.label_set go together"),
    (None, lambda n: torch.zeros(n, dtype=torch.long), ValueError, "go together"),
    ("a", lambda n: torch.zeros(5, dtype=torch.long), ValueError, "shape"),
    ("a", lambda n: torch.zeros(n), TypeError, "integer"),
    ("a", lambda n: torch.full((n,), 10), ValueError, r"\[0, 9\]"),
])
def test_run_rejects_mismatched_train_labels(label_set, make, exc, match):
    n = len(load_dataset("digits", device="cpu").y_train_clean)
    with pytest.raises(exc, match=match):
        E.run(E.RunConfig(label_set=label_set, **FAST), device="cpu", progress=False,
              train_labels=None if make is None else make(n))


def test_sweep_over_label_sets_resumes_and_refuses_changed_labels(tmp_path):
    path = tmp_path / "records.jsonl"
    configs = [E.RunConfig(label_set=name, **FAST) for name in ("every3", "every5")]
    sets = {"every3": _annotator(3), "every5": _annotator(5)}
    trained = []
    first = E.sweep(configs, path, device="cpu", progress=False, label_sets=sets,
                    callback=lambda cfg, entry: trained.append(cfg.label_set))
    assert trained == ["every3"] * 2 + ["every5"] * 2
    assert first[0]["final"]["noise_rate"] > first[1]["final"]["noise_rate"]
    # tables group runs by label set, not by their (clean) noise spec
    stats = E.seed_stats(first)
    assert set(stats) == {("every3", "ce"), ("every5", "ce")} and stats["every3", "ce"][2] == 1
    assert "every5" in E.summary_table(first) and "every3" in E.seed_table(first, ["ce"], ["every3", "every5"])
    again = E.sweep(iter(configs), path, device="cpu", progress=False, label_sets=sets,
                    callback=lambda cfg, entry: trained.append(cfg.label_set))
    assert again == first and len(trained) == 4  # nothing trained again
    with pytest.raises(ValueError, match="other labels"):
        E.sweep(configs, path, device="cpu", progress=False, label_sets={"every3": _annotator(4), "every5": sets["every5"]})
    with pytest.raises(ValueError, match="label_sets lacks"):
        E.sweep(configs, path, device="cpu", progress=False, label_sets={"every3": sets["every3"]})


def _cli(out: Path) -> list:
    return [sys.executable, "-m", "noisyloss", "run", "--dataset", "digits", "--noise", "sym:0.3",
            "--loss", "ce", "mae", "--loss", "gce:q=0.7", "--epochs", "10", "--train-subset", "400", "--quick", "--device", "cpu",
            "--no-progress", "--out", str(out)]


def test_cli_sweep_resumes_after_sigkill(tmp_path):
    records = tmp_path / "records.jsonl"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # tiny model: one thread is fastest on a busy machine
    proc = subprocess.Popen(_cli(tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
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
    done = subprocess.run(_cli(tmp_path), capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    after = records.read_text().splitlines(keepends=True)
    assert after[: len(complete)] == complete  # finished runs neither recomputed nor rewritten
    losses = [json.loads(line)["config"]["loss"] for line in after]
    assert sorted(losses) == ["ce", "gce:q=0.7", "mae"]
    assert "gce:q=0.7" in done.stdout and "memorised" in done.stdout


def test_cli_lists_losses_and_rejects_bad_specs(capsys, tmp_path):
    assert main(["losses"]) == 0
    listed = capsys.readouterr().out
    for name in ("ce", "gce", "sce", "nce_rce", "ols"):
        assert f"\n{name} " in "\n" + listed
    assert main(["run", "--loss", "gce:q=5", "--out", str(tmp_path)]) == 2
    assert "loss" in capsys.readouterr().err
    assert not (tmp_path / "records.jsonl").exists()


def test_cli_reports_unavailable_data(capsys, tmp_path, monkeypatch):
    import urllib.error

    from noisyloss import data

    def offline(url, dest):
        raise urllib.error.URLError("offline")

    monkeypatch.setattr(data, "_fetch", offline)
    monkeypatch.setenv("NOISYLOSS_DATA", str(tmp_path / "data"))
    assert main(["run", "--dataset", "cifar10", "--epochs", "1", "--out", str(tmp_path), "--device", "cpu"]) == 1
    assert "data unavailable: could not download" in capsys.readouterr().err


def test_seed_table_mean_std_and_missing_cells():
    from noisyloss.experiments import seed_table

    recs = [{"config": {"loss": "ce", "noise": "sym:0.4"}, "final": {"test_acc": a, "memorised": m}}
            for a, m in ((0.5, 1.0), (0.7, 0.8))]
    recs.append({"config": {"loss": "ce", "noise": "clean"}, "final": {"test_acc": 0.9, "memorised": None}})
    lines = seed_table(recs, ["ce"], ["clean", "sym:0.4"]).splitlines()
    assert lines[1].split()[:4] == ["ce", "test_acc", "0.900", "±"]
    assert "0.600 ± 0.141" in lines[1]  # mean 0.6, sample std sqrt(0.02)
    assert lines[2].split()[2] == "-" and "0.900 ± 0.141" in lines[2]


def test_book_results_reads_the_committed_gpu_records():
    recs = book.results("digits_gpu.jsonl")
    assert len(recs) == 120 and all(r["device"].startswith("NVIDIA") for r in recs)
    line = book.provenance_line(recs)
    assert "120 records" in line and "H100" in line and recs[0]["commit"][:10] in line
    with pytest.raises(ValueError, match="name"):
        book.results("../x.jsonl")
