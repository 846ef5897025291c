"""A researcher's own datasets, models and losses: registered by public functions, named in
RunConfig and on the command line, and their records read back by a process that knows none of them."""
from __future__ import annotations

import dataclasses
import doctest
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import noisyloss
from noisyloss import data as D
from noisyloss import experiments as E
from noisyloss import models as M

ROOT = Path(__file__).resolve().parent.parent


def _blobs(name: str, device: torch.device, n: int = 240) -> D.ImageData:
    """Three classes of 8x8 one-channel images whose mean brightness is the class."""
    gen = torch.Generator().manual_seed(0)
    y = torch.arange(2 * n) % 3
    x = torch.randn(2 * n, 1, 8, 8, generator=gen) + y.view(-1, 1, 1, 1).float()
    x, y = x.to(device), y.to(device)
    return D.ImageData(name, x[:n], y[:n], x[n:], y[n:], 3, ("a", "b", "c"), y[:n], hflip=False)


def _linear(num_classes: int, in_channels: int, image_size: int) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(in_channels * image_size * image_size, num_classes))


class CountingCE(nn.Module):
    """Cross entropy that keeps what the runner told it: the classes and the training samples."""

    def __init__(self, num_classes: int, num_examples: int, reduction: str = "mean") -> None:
        super().__init__()
        self.num_classes, self.num_examples, self.reduction = num_classes, num_examples, reduction

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, target, reduction=self.reduction)


@pytest.mark.parametrize("register", [noisyloss.register_dataset, noisyloss.register_model])
def test_registration_checks_its_arguments(register):
    def make(*args):
        raise AssertionError("not called")

    with pytest.raises(TypeError, match="name must be a str, got int"):
        register(3, make)
    with pytest.raises(ValueError, match="name must be lowercase letters"):
        register("", make)
    with pytest.raises(TypeError, match="must be callable, got int"):
        register("reg_check", 3)
    builtin = "digits" if register is noisyloss.register_dataset else "cnn"
    with pytest.raises(ValueError, match=f"name {builtin!r} is taken"):
        register(builtin, make)
    register("reg_check", make)
    register("reg_check", make)  # the same object again: nothing changes
    with pytest.raises(ValueError, match="name 'reg_check' is taken"):
        register("reg_check", lambda *args: None)


def test_a_registered_dataset_and_model_are_names_like_the_built_in_ones():
    noisyloss.register_dataset("blobs3", lambda device, quick: _blobs("blobs3", device))
    noisyloss.register_model("linear3", _linear)
    assert "blobs3" in D.available_datasets() and "linear3" in M.available_models()
    assert D.dataset_info("blobs3") == (3, 1, 8)
    assert isinstance(M.make_model("linear3", 3, 1, 8), nn.Sequential)
    cfg = E.RunConfig(dataset="blobs3", model="linear3", lr=0.05, epochs=3, batch_size=32, quick=True)
    res = E.run(cfg, device="cpu", progress=False)
    assert res.record["config"]["dataset"] == "blobs3" and res.record["config"]["model"] == "linear3"
    assert res.test_probs.shape == (240, 3) and res.record["final"]["test_acc"] > 0.5
    assert E.RunConfig(dataset="blobs3").resolved("cpu").model == "mlp"  # 8x8 images: the built-in default
    with pytest.raises(E.ConfigError, match="lr: model 'linear3' has no default learning rate"):
        E.RunConfig(dataset="blobs3", model="linear3")


def test_what_a_registered_loader_or_factory_returns_is_checked():
    noisyloss.register_dataset("misnamed", lambda device, quick: _blobs("other", device))
    with pytest.raises(ValueError, match="loader of dataset 'misnamed' must return an ImageData named 'misnamed', "
                                         "got 'other'"):
        D.load_dataset("misnamed")
    noisyloss.register_dataset("not_data", lambda device, quick: (1, 2))
    with pytest.raises(TypeError, match="loader of dataset 'not_data' must return an ImageData, got tuple"):
        D.load_dataset("not_data")
    noisyloss.register_model("not_a_module", lambda *args: "model")
    with pytest.raises(TypeError, match="factory of model 'not_a_module' must return an nn.Module, got str"):
        M.make_model("not_a_module", 3, 1, 8)
    with pytest.raises(ValueError, match="num_classes must be an int >= 2"):
        M.make_model("mlp", 1, 1, 8)
    with pytest.raises(TypeError, match="in_channels must be an int, got float"):
        M.make_model("mlp", 3, 1.0, 8)
    with pytest.raises(ValueError, match="image_size must be an int >= 8, got 4"):
        M.make_model("cnn", 10, 3, 4)


def test_a_registered_dataset_of_feature_vectors_trains_without_augmentation_and_refuses_it_before_training():
    def vectors(device, quick):
        """Two classes of 2-D points, held as (N, 2) feature vectors, not images."""
        gen = torch.Generator().manual_seed(0)
        y = torch.arange(400) % 2
        x = torch.randn(400, 2, generator=gen) + 3.0 * y.view(-1, 1).float()
        return D.ImageData("points2", x[:200].to(device), y[:200].to(device), x[200:].to(device),
                           y[200:].to(device), 2, ("a", "b"), y[:200].to(device), hflip=False)

    noisyloss.register_dataset("points2", vectors)
    noisyloss.register_model("linear_points", lambda num_classes, in_channels, image_size: nn.Linear(2, num_classes))
    cfg = E.RunConfig(dataset="points2", model="linear_points", lr=0.1, epochs=5, batch_size=20, quick=True)
    assert cfg.augment is None and cfg.resolved("cpu").augment is False  # the default: off for vectors
    assert E.RunConfig(dataset="digits").resolved("cpu").augment is True  # and on for images
    with pytest.raises(E.ConfigError, match=r"augment: points2 holds feature vectors of shape \(200, 2\).*"
                                            r"leave augment at None \(its default\) or set it False"):
        E.run(dataclasses.replace(cfg, augment=True), device="cpu", progress=False)
    res = E.run(cfg, device="cpu", progress=False)
    assert res.record["config"]["augment"] is False
    assert res.record["final"]["test_acc"] > 0.9  # the classes are 3 standard deviations apart
    # a vector is D channels of one pixel, so the default model, the MLP, takes (N, D) as it is
    assert D.dataset_info("points2") == (2, 2, 1)
    default = E.run(E.RunConfig(dataset="points2", epochs=5, batch_size=20, quick=True), device="cpu", progress=False)
    assert default.record["config"]["model"] == "mlp" and isinstance(default.model, M.MLP)
    assert default.model.body[1].in_features == 2 and default.record["final"]["test_acc"] > 0.9


def test_the_runner_gives_a_registered_loss_the_classes_and_the_training_samples():
    noisyloss.register_loss("counting_ce", CountingCE, "ce that keeps num_classes and num_examples")
    noisyloss.register_dataset("blobs_count", lambda device, quick: _blobs("blobs_count", device))
    cfg = E.RunConfig(dataset="blobs_count", loss="counting_ce", train_subset=100, epochs=1, quick=True)
    res = E.run(cfg, device="cpu", progress=False)
    assert (res.loss_fn.num_classes, res.loss_fn.num_examples) == (3, 100)
    assert json.loads(res.record["key"])["loss"] == "counting_ce"
    with pytest.raises(E.ConfigError, match="'counting_ce:num_examples=5' sets num_examples"):
        E.RunConfig(dataset="blobs_count", loss="counting_ce:num_examples=5")


def test_the_registries_are_public_functions_and_count_parameters_is_gone():
    for module, names in ((D, ("register_dataset", "available_datasets")), (M, ("register_model", "available_models"))):
        assert set(names) <= set(module.__all__)
        assert not {"DATASETS", "MODELS"} & set(module.__all__)
    assert noisyloss.register_dataset is D.register_dataset and noisyloss.register_model is M.register_model
    assert not hasattr(M, "count_parameters")


@pytest.mark.parametrize("module", [D, M])
def test_docstring_examples(module):
    result = doctest.testmod(module, extraglobs={"torch": torch})
    assert result.failed == 0 and result.attempted > 0


USER_MODULE = '''
    """A researcher's own data, model and loss, registered on import."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    import noisyloss
    from noisyloss.data import ImageData


    def toy(device, quick):
        gen = torch.Generator().manual_seed(0)
        y = torch.arange(400) % 4
        x = (torch.randn(400, 1, 8, 8, generator=gen) + y.view(-1, 1, 1, 1).float()).to(device)
        y = y.to(device)
        return ImageData("mytoy", x[:300], y[:300], x[300:], y[300:], 4, ("a", "b", "c", "d"), y[:300], hflip=False)


    def tiny(num_classes, in_channels, image_size):
        return nn.Sequential(nn.Flatten(), nn.Linear(in_channels * image_size * image_size, num_classes))


    class ScaledCE(nn.Module):
        def __init__(self, num_classes: int, scale: float = 0.5, reduction: str = "mean"):
            super().__init__()
            self.num_classes, self.scale, self.reduction = num_classes, scale, reduction

        def forward(self, logits, target):
            return self.scale * F.cross_entropy(logits, target, reduction=self.reduction)


    noisyloss.register_dataset("mytoy", toy)
    noisyloss.register_model("tiny", tiny)
    noisyloss.register_loss("scaled_ce", ScaledCE, "scale * cross entropy")
'''

READ_BACK = '''
import json, sys
from noisyloss.experiments import RecordsStore, load_records
records = load_records(sys.argv[1])
stored = RecordsStore(sys.argv[1]).records()
print(json.dumps({"load_records": records, "store": list(stored.values())}))
'''


@pytest.fixture(scope="module")
def custom_sweep(tmp_path_factory):
    """The records file of ``python -m noisyloss run --import mymod ...``: a dataset, model and loss of
    the user module ``mymod``, 2 seeds; and the CLI's output."""
    folder = tmp_path_factory.mktemp("user")
    (folder / "mymod.py").write_text(textwrap.dedent(USER_MODULE))
    out = folder / "out"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(folder), str(ROOT)]), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "noisyloss", "run", "--import", "mymod", "--dataset", "mytoy", "--model", "tiny",
               "--loss", "scaled_ce:scale=0.8", "--seeds", "0", "1", "--epochs", "2", "--lr", "0.05", "--device", "cpu",
               "--no-progress", "--out", str(out)]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300), out / "records.jsonl"


def test_the_cli_sweeps_the_names_a_user_module_registers(custom_sweep):
    done, path = custom_sweep
    assert done.returncode == 0, done.stderr
    assert "trained here: 2;" in done.stdout
    written = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(r["config"]["dataset"], r["config"]["model"], r["config"]["loss"], r["config"]["seed"]) for r in written] \
        == [("mytoy", "tiny", "scaled_ce:scale=0.8", 0), ("mytoy", "tiny", "scaled_ce:scale=0.8", 1)]
    assert all(r["final"]["test_acc"] is not None for r in written)


def test_records_of_custom_names_are_read_back_by_a_process_that_registers_nothing(custom_sweep):
    _, path = custom_sweep
    path.chmod(0o640)
    before, mode = path.read_bytes(), path.stat().st_mode
    written = [json.loads(line) for line in before.decode().splitlines()]
    fresh = {**os.environ, "PYTHONPATH": str(ROOT)}  # mymod cannot even be imported
    read = subprocess.run([sys.executable, "-c", READ_BACK, str(path)], env=fresh, capture_output=True, text=True,
                          timeout=300, cwd=ROOT)
    assert read.returncode == 0, read.stderr
    got = json.loads(read.stdout)
    assert len(written) == 2 and got["load_records"] == written and got["store"] == written and read.stderr == ""
    assert path.read_bytes() == before and path.stat().st_mode == mode
    assert not path.with_name("records.jsonl.rejected").exists()
