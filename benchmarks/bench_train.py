"""Training throughput and time-to-accuracy of the noisyloss training loop on this machine.

    python benchmarks/bench_train.py                      # CIFAR-10 on CUDA, digits on CPU
    python benchmarks/bench_train.py --dataset digits --epochs 20 --out benchmarks/train.jsonl

Prints epochs/s and images/s (training steps only, evaluation excluded; "steady" leaves out the first
epoch, which pays for warm-up) and the training time until the clean test accuracy first reaches
``--target`` (default 0.93 on CIFAR-10, 0.95 on digits).  When the CIFAR-10 files are absent and cannot
be downloaded, random CIFAR-shaped images with random labels stand in, for throughput only: the table
says so and makes no accuracy claim.  ``--out`` appends one JSON record with its provenance.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any, Dict, Optional

import torch

from noisyloss.data import QUICK_SIZES, DownloadError, ImageData, load_dataset
from noisyloss.experiments import RunConfig, provenance, run
from noisyloss.noise import CIFAR10_CLASSES
from noisyloss.runtime import default_device, quick_mode

TARGETS = {"digits": 0.95, "cifar10": 0.93}


def synthetic_cifar(device: torch.device, quick: bool, seed: int = 0) -> ImageData:
    """Random normalised 3×32×32 images with random labels, CIFAR-10 sized (throughput only)."""
    n_train, n_test = QUICK_SIZES if quick else (50_000, 10_000)
    g = torch.Generator(device=device).manual_seed(seed)
    fmt = torch.channels_last if device.type == "cuda" else torch.contiguous_format

    def images(n: int) -> torch.Tensor:
        return torch.randn(n, 3, 32, 32, device=device, generator=g).contiguous(memory_format=fmt)

    y_train = torch.randint(0, 10, (n_train,), device=device, generator=g)
    return ImageData("cifar10 (SYNTHETIC: throughput only)", images(n_train), y_train, images(n_test),
                     torch.randint(0, 10, (n_test,), device=device, generator=g), 10, CIFAR10_CLASSES, y_train)


def load_or_synthetic(name: str, device: torch.device, quick: bool) -> ImageData:
    try:
        return load_dataset(name, device=device, quick=quick)
    except (FileNotFoundError, DownloadError) as err:
        if name == "digits":
            raise
        print(f"[{name} unavailable: {err}]\n[falling back to synthetic CIFAR-shaped data: throughput only]",
              file=sys.stderr)
        return synthetic_cifar(device, quick)


def measure(cfg: RunConfig, data: ImageData, device: torch.device, target: float, progress: bool) -> Dict[str, Any]:
    res = run(cfg, device=device, progress=progress, data=data)
    h = res.history
    synthetic = "SYNTHETIC" in data.name
    epoch_s = [b["seconds"] - a["seconds"] for a, b in zip([{"seconds": 0.0}] + h, h)]
    steady = epoch_s[1:] or epoch_s
    n = len(data.y_train) if cfg.train_subset is None else cfg.train_subset
    reached = next((e for e in h if e["test_acc"] >= target), None)
    return {
        "data": "synthetic" if synthetic else "real",
        "n_train": n,
        "epochs": len(h),
        "train_seconds": h[-1]["seconds"],
        "wall_seconds": res.record["wall_seconds"],
        "epochs_per_s": len(h) / h[-1]["seconds"],
        "steady_epochs_per_s": len(steady) / sum(steady),
        "steady_images_per_s": n * len(steady) / sum(steady),
        "final_test_acc": None if synthetic else h[-1]["test_acc"],
        "target": target,
        "seconds_to_target": None if synthetic or reached is None else reached["seconds"],
        "epoch_of_target": None if synthetic or reached is None else reached["epoch"],
    }


def table(cfg: RunConfig, data: ImageData, m: Dict[str, Any], device_name: str) -> str:
    synthetic = m["data"] == "synthetic"
    reach = ("n/a (synthetic data: no accuracy claim)" if synthetic else
             f"{m['seconds_to_target']:.2f} s (epoch {m['epoch_of_target']})" if m["seconds_to_target"] is not None
             else f"not reached in {m['epochs']} epochs")
    rows = [
        ("device", device_name),
        ("data", f"{data.name}, {m['n_train']} train images" + (" -- THROUGHPUT ONLY" if synthetic else "")),
        ("model / loss / noise", f"{cfg.model} / {cfg.loss} / {cfg.noise}, batch {cfg.batch_size}, lr {cfg.lr}"),
        ("epochs", f"{m['epochs']} in {m['train_seconds']:.2f} s training ({m['wall_seconds']:.2f} s with eval)"),
        ("epochs/s (all | steady)", f"{m['epochs_per_s']:.2f} | {m['steady_epochs_per_s']:.2f}"),
        ("images/s (steady)", f"{m['steady_images_per_s']:,.0f}"),
        ("final clean test acc", "n/a" if synthetic else f"{m['final_test_acc']:.4f}"),
        (f"time to {m['target']:.0%} test acc", reach),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)


def main(argv: Optional[list] = None) -> int:
    device = default_device()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", choices=("digits", "cifar10"), default="cifar10" if device.type == "cuda" else "digits")
    parser.add_argument("--epochs", type=int, default=None, help="default 40 on CIFAR-10, 30 on digits")
    parser.add_argument("--target", type=float, default=None, help="test accuracy to time (default per dataset)")
    parser.add_argument("--loss", default="ce")
    parser.add_argument("--noise", default="clean")
    parser.add_argument("--model", default=None)
    parser.add_argument("--batch-size", type=int, default=None, help="default 512 on CIFAR-10, 256 on digits")
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--quick", action="store_true", help="quick-mode data sizes even on CUDA")
    parser.add_argument("--synthetic", action="store_true", help="force synthetic CIFAR-shaped data")
    parser.add_argument("--progress", action="store_true")
    parser.add_argument("--out", type=Path, default=None, help="append a JSON record to this file")
    args = parser.parse_args(argv)
    cifar = args.dataset == "cifar10"
    quick = True if args.quick else quick_mode(device)
    cfg = RunConfig(dataset=args.dataset, loss=args.loss, noise=args.noise, model=args.model, lr=args.lr,
                    epochs=args.epochs or (40 if cifar else 30), batch_size=args.batch_size or (512 if cifar else 256),
                    quick=quick).resolved(device)
    data = synthetic_cifar(device, quick) if args.synthetic and cifar else load_or_synthetic(cfg.dataset, device, quick)
    m = measure(cfg, data, device, args.target or TARGETS[args.dataset], args.progress)
    prov = provenance(device)
    print(table(cfg, data, m, prov["device"]))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with open(args.out, "a") as f:
            f.write(json.dumps({"benchmark": "train", "config": dataclasses.asdict(cfg), **m, **prov}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
