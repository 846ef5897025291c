"""Run configs, runs and sweeps, the shared records store in use (locks, resume after SIGKILL, invalid
lines), divergence.  The CLI, the store's validation and the tables have their own files (test_cli.py,
test_store.py, test_tables.py)."""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

import noisyloss
from noisyloss import book
from noisyloss import experiments as E
from noisyloss.data import ImageData, load_dataset
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
    assert "label_set" not in rec["config"] and rec["config"]["loss"] == "ce"
    assert E.RunConfig(**rec["config"]).key() == rec["key"] == E.record_key(rec)
    assert json.loads(E.RunConfig(label_set="a").key())["label_set"] == "a"


def test_equal_losses_are_one_run_whatever_the_spelling():
    key = lambda loss: E.RunConfig(loss=loss).resolved("cpu").key()  # noqa: E731
    assert key("ce") == key("ce:label_smoothing=0") == key("cross_entropy:eps=0.0")
    assert key("ls") == key("ce:label_smoothing=0.1") != key("ce")
    assert key("gce:q=0.7") == key("gce") != key("gce:q=0.5")
    assert key("sce:alpha=0.1,beta=1") == key("sce:beta=1.0,alpha=0.10")
    noise = lambda spec: E.RunConfig(noise=spec).resolved("cpu").key()  # noqa: E731
    assert noise("sym:0.4") == noise(" SYM : 0.40 ") != noise("sym:0.2")
    assert noise("asym:0.4:1>7,7>1") == noise("asym:.4:7>1,1>7") != noise("asym:0.4:1>7")
    # a record is known by the key it was stored under (test_store.py), whatever today's spelling
    rec = next(r for r in book.results("digits_gpu.jsonl") if r["config"]["loss"] == "gce:q=0.7")
    assert E.record_key(rec) == rec["key"]


@pytest.mark.parametrize("noise, ok", [("asym:0.4", False), ("ASYM:0.4", False), ("asym:0.4:1>7,7>1", True),
                                        ("pair:0.3", True)])
def test_asym_noise_needs_class_pairs_of_the_dataset(noise, ok):
    if ok:
        E.RunConfig(dataset="digits", noise=noise)
    else:
        with pytest.raises(E.ConfigError, match="dataset 'digits' defines no class pairs.*'asym:0.4:1>7,7>1'"):
            E.RunConfig(dataset="digits", noise=noise)
    E.RunConfig(dataset="cifar10", noise="asym:0.4")  # CIFAR-10 has its pairs


def test_asym_labels_on_digits_flip_exactly_the_given_pairs():
    d = load_dataset("digits", device="cpu")
    out = E.make_labels(d, "asym:0.5:1>7,7>1", seed=0)
    changed = d.y_train_clean[out.corrupted]
    assert set(changed.tolist()) == {1, 7}
    assert torch.equal(out.labels[out.corrupted], 8 - changed)  # 1 -> 7, 7 -> 1


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
    human = ImageData(d.name, d.x_train, (d.y_train + 1) % 10, d.x_test, d.y_test, 10, d.classes, d.y_train,
                      has_label_noise=True)
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
    for key in ("device", "torch", "noisyloss", "commit", "date", "wall_seconds", "key", "host", "pid"):
        assert key in rec
    assert rec["torch"] == torch.__version__ and rec["pid"] == os.getpid()


def test_sweep_after_a_truncated_line_appends_cleanly(tmp_path):
    path = tmp_path / "records.jsonl"
    first, second = E.grid(["ce", "mae"], ["sym:0.2"], [0], **FAST)
    done = E.sweep([first], path, device="cpu", progress=False)
    path.write_text(path.read_text() + '{"key": "half a rec')  # killed mid-write
    with pytest.warns(RuntimeWarning, match="not JSON"):
        out = E.sweep([first, second, first], path, device="cpu", progress=False)
    assert out[0] == done[0] == out[2] and out[1]["config"]["loss"] == "mae"
    lines = path.read_text().splitlines()
    assert len(lines) == 2 and json.loads(lines[0]) == done[0]
    assert (tmp_path / "records.jsonl.rejected").read_text() == '{"key": "half a rec\n'


def test_sweep_trains_one_run_per_loss_whatever_the_spelling(tmp_path):
    seen = []
    configs = E.grid(["ce", "ce:label_smoothing=0", "cross_entropy"], ["clean"], [0], **FAST)
    out = E.sweep(configs, tmp_path / "r.jsonl", device="cpu", progress=False,
                  callback=lambda cfg, entry: seen.append(cfg.loss))
    assert seen == ["ce", "ce"] and out[0] == out[1] == out[2]  # two epochs of one run
    assert len(E.load_records(tmp_path / "r.jsonl")) == 1


def test_a_claim_is_exclusive_and_taken_over_when_its_process_dies(tmp_path):
    store = E.RecordsStore(tmp_path / "records.jsonl")
    key = E.RunConfig(**FAST).resolved("cpu").key()
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from noisyloss.experiments import RecordsStore\n"
        f"with RecordsStore({str(store.path)!r}).claim({key!r}, wait=False) as ok:\n"
        "    print(ok, flush=True); time.sleep(600)")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "True"
        with store.claim(key, wait=False) as claimed:
            assert not claimed  # held by the other process
    finally:
        holder.kill()  # SIGKILL: no cleanup runs in the holder
        holder.wait()
    with store.claim(key, wait=False) as claimed:
        assert claimed  # the dead process's claim is taken over


def test_sweep_waits_for_a_run_claimed_elsewhere_and_trains_it_if_left(tmp_path):
    path = tmp_path / "records.jsonl"
    ce, mae = E.grid(["ce", "mae"], ["clean"], [0], **FAST)
    seen, result = [], {}
    sweep = lambda: result.setdefault("out", E.sweep(  # noqa: E731
        [ce, mae], path, device="cpu", progress=False, callback=lambda cfg, entry: seen.append(cfg.loss)))
    with E.RecordsStore(path).claim(ce.resolved("cpu").key(), wait=False) as claimed:
        assert claimed  # as if another process were training ce
        worker = threading.Thread(target=sweep)
        worker.start()
        deadline = time.monotonic() + 120
        while seen != ["mae", "mae"] and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        assert seen == ["mae", "mae"] and worker.is_alive()  # mae trained, ce waited for
    worker.join(120)  # the claim was given up without a record: the sweep trains ce itself
    assert seen == ["mae", "mae", "ce", "ce"]
    assert [r["config"]["loss"] for r in result["out"]] == ["ce", "mae"]


def test_sweep_calls_back_per_epoch_and_skips_saved_runs(tmp_path):
    path = tmp_path / "records.jsonl"
    ce, mae = E.grid(["ce", "mae"], ["sym:0.2"], [0], **FAST)
    live = E.run(ce, device="cpu", progress=False)
    assert E.save_record(path, live.record) and not E.save_record(path, live.record)  # once per run
    seen = []
    out = E.sweep([ce, mae], path, device="cpu", progress=False,
                  callback=lambda cfg, entry: seen.append((cfg.loss, entry["epoch"])))
    assert seen == [("mae", 1), ("mae", 2)]  # ce was saved, so only mae trains
    assert out[0] == json.loads(json.dumps(live.record)) and out[1]["history"][-1]["epoch"] == 2
    assert len(path.read_text().splitlines()) == 2


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


def test_diverging_run_is_recorded_with_its_epoch_and_the_sweep_goes_on(tmp_path):
    path = tmp_path / "records.jsonl"
    configs = [E.RunConfig(loss="ce", **{**FAST, "lr": 1e6, "batch_size": 32}), E.RunConfig(loss="mae", **FAST)]
    with pytest.warns(RuntimeWarning, match=r"diverged: its loss was not finite in epoch 1"):
        out = E.sweep(configs, path, device="cpu", progress=False)
    bad, good = out
    assert bad["final"]["diverged"] == 1 and bad["final"]["test_acc"] is None and bad["history"] == []
    assert good["final"]["diverged"] is None and 0 <= good["final"]["test_acc"] <= 1
    assert len(E.load_records(path)) == 2  # recorded: a rerun does not train it again
    assert "diverged (epoch 1)" in E.summary_table(out)
    assert "(1/1 diverged)" in E.seed_table(out, ["ce", "mae"], ["clean"])
    assert ("clean", "ce") not in E.seed_stats(out)


def test_train_subset_larger_than_the_data_fails_before_any_training(tmp_path):
    seen = []
    configs = [E.RunConfig(**FAST), E.RunConfig(**{**FAST, "train_subset": 5000})]
    with pytest.raises(E.ConfigError, match="train_subset must be at most the 1347 training images of digits"):
        E.sweep(configs, tmp_path / "r.jsonl", device="cpu", progress=False,
                callback=lambda cfg, entry: seen.append(cfg))
    assert seen == [] and E.load_records(tmp_path / "r.jsonl") == []


def test_records_file_is_probed_before_data_is_loaded(tmp_path):
    digits = load_dataset("digits", device="cpu")
    loaded = []

    def loader(device, quick):
        loaded.append(device)
        return dataclasses.replace(digits, name="digits_probe")

    noisyloss.register_dataset("digits_probe", loader)
    cfg = E.RunConfig(dataset="digits_probe", epochs=1)  # loads it once, on the CPU, for its shape
    loaded.clear()
    (tmp_path / "file").write_text("x")
    for out in (tmp_path / "file" / "records.jsonl", Path("/proc/noisyloss/records.jsonl")):
        with pytest.raises(OSError):
            E.sweep([cfg], out, device="cpu", progress=False)
    with pytest.raises(IsADirectoryError):
        E.RecordsStore(tmp_path)
    assert loaded == []


def test_book_reads_the_gpu_records_shipped_with_the_package(capsys):
    recs = book.results("digits_gpu.jsonl")
    assert len(recs) == 120 and all(r["device"].startswith("NVIDIA") for r in recs)
    line = book.provenance_line(recs)
    assert "120 records" in line and "H100" in line and recs[0]["commit"][:10] in line
    assert "digits_gpu.jsonl" in book.shipped_results()
    for bad in ("../x.jsonl", "", "a/b.jsonl"):
        with pytest.raises(ValueError, match="name"):
            book.results(bad)
    assert book.results("missing.jsonl") == []  # the page says so, in one line
    said = capsys.readouterr().out
    assert "'missing.jsonl' are missing from this installation" in said and "digits_gpu.jsonl" in said


def test_the_gpu_records_are_package_data_of_the_wheel():
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

    root = Path(__file__).resolve().parent.parent
    patterns = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["noisyloss"]
    shipped = {p.name for pattern in patterns for p in (root / "noisyloss").glob(pattern)}
    assert {"digits_gpu.jsonl", "bench_train_h100.jsonl"} <= shipped
    # one copy of each: the GPU records in the package, the book's own records (the leaderboard) in book/
    book_results = {p.name for p in (root / "book" / "results").glob("*.jsonl")}
    assert not shipped & book_results and "leaderboard.jsonl" not in shipped


@pytest.mark.parametrize("dataset, model", [("digits", "mlp"), ("synth10", "mlp"), ("synth100", "mlp"), ("cifar10", "cnn")])
def test_default_model_follows_the_image_size(dataset, model):
    assert E.RunConfig(loss="ce", dataset=dataset).resolved("cpu").model == model
