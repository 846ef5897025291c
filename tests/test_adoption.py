"""A new user's afternoon with the package: their own data, model, losses and training loop, and the
mistakes a careless user makes, each met by an error that names the argument, says what is allowed
and what was given, or by the right result."""
from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import noisyloss
from noisyloss import experiments as E
from noisyloss import noise, train
from noisyloss.__main__ import main
from noisyloss.data import ImageData, LoaderError, load_dataset
from noisyloss.experiments import runner


def _points(name: str = "adopt_points", n: int = 60, shape: tuple = (1, 4, 4), device: str = "cpu") -> ImageData:
    """Three classes of small images (or feature vectors) whose mean is the class."""
    gen = torch.Generator().manual_seed(0)
    y = torch.arange(2 * n) % 3
    x = torch.randn(2 * n, *shape, generator=gen) + y.view(-1, *[1] * len(shape)).float()
    x, y = x.to(device), y.to(device)
    return ImageData(name, x[:n], y[:n], x[n:], y[n:], 3, ("a", "b", "c"), y[:n], hflip=False)


def _linear(num_classes: int, in_channels: int, image_size: int) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(in_channels * image_size * image_size, num_classes))


def _labels(data: ImageData) -> train.NoisyLabels:
    return noise.corrupt(data.y_train_clean, noise.make_transition("sym:0.2", data.num_classes),
                         generator=torch.Generator().manual_seed(0))


def _fit(**changes):
    data = _points()
    args = {"model": _linear(3, 1, 4), "data": data, "loss_fn": noisyloss.make_loss("ce"), "labels": _labels(data),
            "epochs": 1, "batch_size": 20, "progress": False, **changes}
    return train.fit(args.pop("model"), args.pop("data"), args.pop("loss_fn"), args.pop("labels"), **args)


class PerSampleCE(nn.Module):
    """Cross entropy per sample (``reduction="none"``): not one number per batch."""

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, target, reduction="none")


FIT_MISUSE = [
    ({"labels": _points().y_train}, TypeError, r"labels must be NoisyLabels.*noise.corrupt.*got Tensor"),
    ({"data": (_points().x_train, _points().y_train)}, TypeError, "data must be an ImageData.*got tuple"),
    ({"model": _linear}, TypeError, "model must be an nn.Module, got function"),
    ({"loss_fn": "ce"}, TypeError, "loss_fn must be callable, got str"),
    ({"seed": 1.5}, TypeError, "seed must be an int, got float"),
    ({"seed": -1}, ValueError, "seed must be an int >= 0, got -1"),
    ({"progress": "no"}, TypeError, "progress must be a bool, got str"),
    ({"callback": "print"}, TypeError, "callback must be callable, got str"),
    ({"augmentation": "yes"}, TypeError, "augmentation must be a bool, got str"),
    ({"optimizer": torch.optim.SGD(nn.Linear(1, 1).parameters(), lr=0.1)}, TypeError,
     "optimizer must be callable, got SGD"),
    ({"optimizer": lambda params: "adam"}, TypeError, r"optimizer\(params\) must be a torch.optim.Optimizer, got str"),
    ({"scheduler": lambda opt, total: 3}, TypeError,
     r"scheduler\(optimizer, total_steps\) must be a torch.optim.lr_scheduler.LRScheduler, got int"),
    ({"labels": train.NoisyLabels(_points().y_train + 3, torch.zeros(60, dtype=torch.bool))}, ValueError,
     r"labels.labels must be in \[0, 2\] \(C=3\), found 3"),
    ({"labels": train.NoisyLabels(_points().y_train[:10], torch.zeros(10, dtype=torch.bool))}, ValueError,
     r"labels must have 60 entries.*shape \(10,\)"),
]


@pytest.mark.parametrize("changes, error, match", FIT_MISUSE, ids=[next(iter(c)) for c, _, _ in FIT_MISUSE])
def test_fit_names_each_wrong_argument(changes, error, match):
    with pytest.raises(error, match=match):
        _fit(**changes)


@pytest.mark.parametrize("loss_fn", [F.cross_entropy, noisyloss.functional_loss("gce:q=0.7")],
                         ids=["F.cross_entropy", "functional_loss"])
def test_fit_trains_with_a_plain_loss_function(loss_fn):
    result = _fit(loss_fn=loss_fn, epochs=2)
    assert result.diverged is None and len(result.history) == 2


def test_fit_takes_a_scheduler_factory_that_returns_none_for_a_constant_rate():
    """SchedulerFactory's contract: a factory may return None, and the rate then stays as the optimizer has it."""
    rates = []
    optimizer = train.sgd(lr=0.05)
    _fit(optimizer=optimizer, scheduler=lambda opt, total: rates.append(opt) or None, epochs=2)
    assert [group["lr"] for group in rates[0].param_groups] == [0.05]


@pytest.mark.parametrize("outputs", [2, 4])
def test_fit_refuses_a_model_whose_logits_are_not_one_per_class(outputs):
    with pytest.raises(ValueError, match=rf"the model must return logits of shape \(N, num_classes\) = \(20, 3\) "
                                         rf"for 20 samples of data with 3 classes, got \(20, {outputs}\)"):
        _fit(model=_linear(outputs, 1, 4))


def test_fit_refuses_a_loss_that_is_not_one_number_per_batch():
    with pytest.raises(ValueError, match=r"loss_fn must return one number for the batch.*got shape \(20,\)"):
        _fit(loss_fn=PerSampleCE())
    with pytest.raises(TypeError, match="loss_fn must return a floating tensor, got int"):
        _fit(loss_fn=lambda logits, target: 3)


X, Y = torch.randn(6, 1, 4, 4), torch.arange(6) % 2
IMAGE_DATA_MISUSE = [
    ({"x_train": X.numpy()}, TypeError, "x_train must be a float32 tensor.*got ndarray"),
    ({"x_train": X.to(torch.uint8)}, TypeError, "x_train must be a float32 tensor.*got dtype torch.uint8"),
    ({"x_test": X.double()}, TypeError, "x_test must be a float32 tensor.*got dtype torch.float64"),
    ({"x_train": X[:, 0]}, ValueError, r"x_train must have shape \(N, C, S, S\).*got \(6, 4, 4\)"),
    ({"x_train": torch.randn(6, 1, 4, 6)}, ValueError, r"\(square images\).*got \(6, 1, 4, 6\)"),
    ({"x_test": torch.randn(6, 3, 4, 4)}, ValueError, r"x_test must have the sample shape of x_train, \(1, 4, 4\), "
                                                      r"got \(3, 4, 4\)"),
    ({"x_train": X[:0], "y_train": Y[:0], "y_train_clean": Y[:0]}, ValueError, r"with N >= 1, got \(0, 1, 4, 4\)"),
    ({"x_test": X.to("meta")}, ValueError, "every tensor must be on one device.*x_test on meta"),
    ({"classes": ("a", "b", "c")}, ValueError, r"classes must name the 2 classes \(num_classes\), got 3 names"),
]


@pytest.mark.parametrize("changes, error, match", IMAGE_DATA_MISUSE,
                         ids=[next(iter(c)) for c, _, _ in IMAGE_DATA_MISUSE])
def test_image_data_checks_its_inputs(changes, error, match):
    fields = {"name": "mine", "x_train": X, "y_train": Y, "x_test": X, "y_test": Y, "num_classes": 2,
              "classes": ("a", "b"), "y_train_clean": Y, **changes}
    with pytest.raises(error, match=match):
        ImageData(**fields)


def _one_argument(device):
    return _points()


def test_registration_checks_how_a_loader_or_factory_is_called():
    with pytest.raises(TypeError, match=r"loader must be a function or class called as loader\(device, quick\), "
                                        r"got _one_argument\(device\)"):
        noisyloss.register_dataset("adopt_one_argument", _one_argument)
    with pytest.raises(TypeError, match=r"factory must be .* factory\(num_classes, in_channels, image_size\), got a "
                                        r"Linear instance"):
        noisyloss.register_model("adopt_built", nn.Linear(16, 3))
    with pytest.raises(TypeError, match=r"factory must be .*got <lambda>\(num_classes, in_channels\)"):
        noisyloss.register_model("adopt_two_arguments", lambda num_classes, in_channels: nn.Linear(16, num_classes))
    assert "adopt_one_argument" not in noisyloss.data.available_datasets()


def _missing(device, quick):
    raise FileNotFoundError(2, "No such file or directory", "/nowhere/mine.npz")


def test_a_failing_loader_is_one_error_naming_the_dataset(tmp_path, capsys):
    noisyloss.register_dataset("adopt_missing", _missing)
    with pytest.raises(LoaderError, match="the loader of dataset 'adopt_missing' raised FileNotFoundError") as info:
        load_dataset("adopt_missing")
    assert isinstance(info.value.__cause__, FileNotFoundError)  # the user's own traceback is kept
    assert main(["run", "--dataset", "adopt_missing", "--model", "mlp", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("noisyloss run: error: data unavailable: the loader of dataset "
                                                   "'adopt_missing' raised FileNotFoundError"), err


def _smaller_when_quick(device, quick):
    return _points("adopt_resized", shape=(1, 4, 4) if quick else (1, 8, 8), device=device)


def test_a_loader_whose_images_change_size_with_quick_is_told_so(tmp_path):
    noisyloss.register_dataset("adopt_resized", _smaller_when_quick)
    cfg = E.RunConfig(dataset="adopt_resized", model="mlp", epochs=1, augment=False, quick=False)
    with pytest.raises(E.ConfigError, match=r"\(3, 1, 8\), but the run records dataset 'adopt_resized' \(3, 1, 4\): "
                                            "the loader of a registered dataset must return the same classes and "
                                            "image size with quick=False as with quick=True"):
        E.sweep([cfg], tmp_path / "records.jsonl", device="cpu", progress=False)


@pytest.fixture
def no_training(monkeypatch):
    def fit(*args, **kwargs):
        raise AssertionError("trained although the run cannot be trained")

    monkeypatch.setattr(runner, "fit", fit)


def _points_loader(device, quick):
    return _points(device=device)


def _wide(num_classes: int, in_channels: int, image_size: int) -> nn.Module:
    return _linear(num_classes + 1, in_channels, image_size)


def test_a_sweep_tries_each_model_and_loss_before_training(tmp_path, no_training, capsys):
    noisyloss.register_dataset("adopt_points", _points_loader)
    noisyloss.register_model("adopt_wide", _wide)
    noisyloss.register_loss("adopt_per_sample", PerSampleCE)
    common = {"dataset": "adopt_points", "epochs": 1, "augment": False, "lr": 0.1}
    with pytest.raises(E.ConfigError, match=r"model 'adopt_wide' on adopt_points: the model must return logits of "
                                            r"shape \(N, num_classes\) = \(2, 3\).*got \(2, 4\)"):
        E.sweep([E.RunConfig(model="adopt_wide", **common)], tmp_path / "records.jsonl", progress=False)
    with pytest.raises(E.ConfigError, match=r"loss 'adopt_per_sample': loss_fn must return one number for the batch"):
        E.sweep([E.RunConfig(model="mlp", loss="adopt_per_sample", **common)], tmp_path / "records.jsonl",
                progress=False)
    argv = ["run", "--dataset", "adopt_points", "--model", "adopt_wide", "--lr", "0.1", "--no-augment",
            "--no-progress", "--out", str(tmp_path)]
    assert main(argv) == 2
    assert capsys.readouterr().err.startswith("noisyloss run: error: model 'adopt_wide' on adopt_points")


def test_run_and_sweep_name_a_config_of_the_wrong_kind(tmp_path):
    cfg = E.RunConfig(epochs=1)
    with pytest.raises(TypeError, match="cfg must be a RunConfig, got dict"):
        E.run({"dataset": "digits"})
    with pytest.raises(TypeError, match=r"configs must be an iterable of RunConfig \(e.g. experiments.grid"):
        E.sweep(cfg, tmp_path / "records.jsonl")
    with pytest.raises(TypeError, match=r"configs\[1\] must be a RunConfig, got str"):
        E.sweep([cfg, "ce"], tmp_path / "records.jsonl")


def test_the_noisyloss_command_imports_a_module_of_the_current_folder(tmp_path, monkeypatch, capsys):
    (tmp_path / "adopt_usermod.py").write_text("IMPORTED = True\n")
    monkeypatch.chdir(tmp_path)
    # the `noisyloss` console script: its folder on sys.path, not the current one (as `python -m` has it)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    assert main(["run", "--import", "adopt_usermod", "--epochs", "0", "--out", str(tmp_path)]) == 2
    assert "adopt_usermod" in sys.modules
    assert capsys.readouterr().err == "noisyloss run: error: epochs must be an int >= 1, got 0\n"
    assert main(["run", "--import", "adopt_usermod.py", "--out", str(tmp_path)]) == 2
    assert "give the module's name, not its file: --import adopt_usermod " in capsys.readouterr().err


def _record(loss: str, seed: int, acc: float) -> dict:
    config = {"dataset": "mine", "model": "tiny", "noise": "sym:0.4", "loss": loss, "epochs": 2, "seed": seed}
    return {"key": json.dumps(config, sort_keys=True), "config": config, "history": [],
            "final": {"test_acc": acc, "fit_clean": 0.9, "memorised": 0.1, "corrected": 0.5}}


def test_tables_take_the_store_s_dict_and_one_name_as_a_str(tmp_path):
    path = tmp_path / "records.jsonl"
    for record in (_record("mine", 0, 0.5), _record("mine", 1, 0.7)):
        E.save_record(path, record)
    by_key = E.RecordsStore(path).records()
    table = E.group_table(by_key, metrics="test_acc", fmt="csv")
    *fields, mean, std, n = table.splitlines()[1].split(",")
    assert fields == ["mine", "tiny", "sym:0.4", "mine", "2", "2", "0"] and n == "2"
    assert float(mean) == pytest.approx(0.6) and float(std) == pytest.approx(0.2 / 2 ** 0.5)
    assert E.seed_table(by_key, "mine", "sym:0.4", "test_acc").splitlines()[1].split() == \
        ["mine", "test_acc", "0.600", "±", "0.141", "2"]
    assert E.summary_table(by_key) == E.summary_table(E.load_records(path))
    with pytest.raises(TypeError, match=r"records must be a list of records \(load_records\) or a dict of them by key "
                                        r"\(RecordsStore.records\), got str"):
        E.group_table(str(path))
    with pytest.raises(TypeError, match=r"got one record; pass \[record\]"):
        E.group_table(_record("mine", 0, 0.5))


def test_the_table_command_stops_quietly_when_its_reader_leaves(tmp_path):
    path = tmp_path / "records.jsonl"
    path.write_text("".join(json.dumps(_record(f"loss{i}", 0, 0.5)) + "\n" for i in range(3000)))
    done = subprocess.run(f"{sys.executable} -m noisyloss table {path} | head -1", shell=True, capture_output=True,
                          text=True, timeout=120, cwd=Path(__file__).resolve().parent.parent)
    assert done.stdout.split() == ["dataset", "model", "noise", "loss", "epochs", "n", "diverged", "test_acc"]
    assert done.stderr == ""


def test_the_losses_command_lists_the_losses_of_an_imported_module(tmp_path, monkeypatch, capsys):
    (tmp_path / "adopt_losses.py").write_text(textwrap.dedent('''
        import noisyloss
        from torch import nn

        class Doubled(nn.Module):
            def __init__(self, factor: float = 2.0):
                super().__init__()
                self.factor = factor

        noisyloss.register_loss("adopt_doubled", Doubled, "twice cross entropy")
    '''))
    monkeypatch.chdir(tmp_path)
    assert main(["losses", "--import", "adopt_losses"]) == 0
    assert re.search(r"^adopt_doubled +twice cross entropy \(factor=2.0\)$", capsys.readouterr().out, re.M)
    assert main(["losses", "--import", "adopt_no_such_module"]) == 2
    assert capsys.readouterr().err.startswith("noisyloss losses: error: --import adopt_no_such_module: "
                                              "ModuleNotFoundError")


def _always_on_the_cpu(device, quick):
    return _points("adopt_cpu_only")


def test_a_loader_must_hold_its_data_on_the_device_it_is_given():
    noisyloss.register_dataset("adopt_cpu_only", _always_on_the_cpu)
    assert load_dataset("adopt_cpu_only", device="cpu").x_train.device.type == "cpu"
    with pytest.raises(ValueError, match="the loader of dataset 'adopt_cpu_only' must return its ImageData on the "
                                         "device it is given, meta, got one on cpu"):
        load_dataset("adopt_cpu_only", device="meta")  # where a run would record one device and train on another


def test_a_dataset_cannot_take_the_name_of_a_cifar10n_label_set():
    # RunConfig would hold it to CIFAR-10N's rules: noise 'clean' only, no label_set
    with pytest.raises(ValueError, match="dataset name 'cifar10n-mine': names starting with 'cifar10n-' are "
                                         "CIFAR-10N's label sets"):
        noisyloss.register_dataset("cifar10n-mine", _points_loader)


def test_group_table_names_the_label_set_a_run_trained_on():
    record = _record("mine", 0, 0.5)
    config = {**json.loads(record["key"]), "noise": "clean", "label_set": "annotator1"}
    record = {**record, "key": json.dumps(config, sort_keys=True), "config": config}
    head, row = E.group_table([record]).splitlines()
    assert head.split()[:6] == ["dataset", "model", "noise", "loss", "epochs", "label_set"]
    assert row.split()[:6] == ["mine", "tiny", "clean", "mine", "2", "annotator1"]  # not clean labels


def test_run_and_sweep_check_their_device(tmp_path):
    cfg = E.RunConfig(epochs=1)
    with pytest.raises(ValueError, match=r"device cuda:99: (CUDA is not available|this machine has \d+ CUDA)"):
        E.run(cfg, device="cuda:99")
    with pytest.raises(ValueError, match="device: 'mps' is not supported; use cpu, cuda or cuda:N"):
        E.sweep([cfg], tmp_path / "records.jsonl", device="mps")
    with pytest.raises(TypeError, match="device must be a str or torch.device such as 'cpu' or 'cuda:0', got int"):
        E.run(cfg, device=0)
    assert not (tmp_path / "records.jsonl").exists()  # nothing made before the device is checked


def test_a_config_of_numpy_or_tensor_numbers_is_the_config_of_python_numbers():
    np = pytest.importorskip("numpy")
    cfgs = E.grid("ce", "clean", seeds=np.arange(2), epochs=np.int64(3), lr=torch.tensor(0.5),
                  train_subset=np.int32(50))
    assert [c.key() for c in cfgs] == [E.RunConfig(seed=s, epochs=3, lr=0.5, train_subset=50).key() for s in (0, 1)]
    assert type(cfgs[0].seed) is int and type(cfgs[0].lr) is float
    assert len(E.grid("ce", "clean", seeds=np.int64(1))) == 1


def test_records_of_a_registered_dataset_whose_data_changed_are_reused_with_a_warning(tmp_path):
    """A researcher edits their loader and sweeps into the same file: the records say which data they
    were trained on, and the sweep says that the data has changed since (and reuses them, as recorded)."""
    shift = {"value": 0.0}

    def blobs(device, quick):
        gen = torch.Generator().manual_seed(0)
        y = torch.arange(200) % 2
        x = torch.randn(200, 3, generator=gen) + 2.0 * y.view(-1, 1).float() + shift["value"]
        return ImageData("edited_blobs", x[:100].to(device), y[:100].to(device), x[100:].to(device),
                         y[100:].to(device), 2, ("a", "b"), y[:100].to(device), hflip=False)

    noisyloss.register_dataset("edited_blobs", blobs)
    configs = E.grid(["ce"], ["clean"], [0, 1], dataset="edited_blobs", augment=False, epochs=2, batch_size=20,
                     quick=True)
    out = tmp_path / "records.jsonl"
    first = E.sweep(configs, out, device="cpu", progress=False)
    digest = E.data_digest(load_dataset("edited_blobs", quick=True))
    assert [r["data_digest"] for r in first] == [digest, digest]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the same data: no warning
        assert E.sweep(configs, out, device="cpu", progress=False) == first
    shift["value"] = 1.0  # the loader now gives other inputs (the process's data cache is cleared as a new one's)
    runner._cached_dataset.cache_clear()
    runner._cached_digest.cache_clear()
    changed = E.data_digest(load_dataset("edited_blobs", quick=True))
    assert changed != digest
    with pytest.warns(RuntimeWarning, match=rf"2 recorded run\(s\) of dataset 'edited_blobs' .* other data than its "
                                            rf"loader gives now \(digest {digest}, now {changed}\); they are reused"):
        again = E.sweep(configs, out, device="cpu", progress=False)
    assert again == first  # nothing recorded is discarded or rewritten
    assert "data_digest" not in E.run(E.RunConfig(dataset="digits", epochs=1, quick=True), device="cpu",
                                      progress=False).record  # built-in data is the package's, not the user's
