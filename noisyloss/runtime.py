"""Where and how big to run: the device, the quick (CPU/CI) mode and the CPU threads every notebook
and the CLI use, set once by :func:`setup`.

Quick mode is on when ``NOISYLOSS_QUICK=1`` is set (CI does) or when no CUDA device is present:
the same code runs on smaller data and fewer epochs.  ``NOISYLOSS_QUICK=0`` forces full size.
Threads: see :func:`configure_threads`.
"""
from __future__ import annotations

import os
from typing import Optional, Tuple

import torch

__all__ = ["default_device", "quick_mode", "configure_threads", "setup", "mode_line"]


def default_device() -> torch.device:
    """CUDA when available, else CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def quick_mode(device: Optional[torch.device] = None) -> bool:
    """True when ``NOISYLOSS_QUICK`` says so, or (unset) when the device is not CUDA."""
    flag = os.environ.get("NOISYLOSS_QUICK", "").strip().lower()
    if flag in ("1", "true", "yes", "on"):
        return True
    if flag in ("0", "false", "no", "off"):
        return False
    if flag:
        raise ValueError(f"NOISYLOSS_QUICK must be 1/0 (or true/false), got {flag!r}")
    device = default_device() if device is None else torch.device(device)
    return device.type != "cuda"


def configure_threads() -> int:
    """Set torch's intra-op CPU threads to ``NOISYLOSS_THREADS`` (an integer >= 1) when it is set,
    else keep torch's default; return their number.  Called once by :func:`setup` and the CLI."""
    env = os.environ.get("NOISYLOSS_THREADS", "").strip()
    if env:
        if not env.isdigit() or int(env) < 1:
            raise ValueError(f"NOISYLOSS_THREADS must be an integer >= 1, got {env!r}")
        torch.set_num_threads(int(env))
    return torch.get_num_threads()


def mode_line(device: torch.device, quick: bool) -> str:
    """One sentence for the page: which mode produced the numbers below it."""
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    size = "QUICK mode (small data, few epochs; same code as the full run)" if quick else "FULL mode"
    return f"Running on {name} ({device}), {size}, torch {torch.__version__}."


def setup(seed: int = 0, verbose: bool = True) -> Tuple[torch.device, bool]:
    """Seed torch, pick the device, the mode and the CPU threads (:func:`configure_threads`); print the
    mode line.  Returns ``(device, quick)``."""
    configure_threads()
    torch.manual_seed(seed)
    device = default_device()
    quick = quick_mode(device)
    if verbose:
        print(mode_line(device, quick))
    return device, quick
