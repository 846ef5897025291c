"""The native CPU backend of the losses' row statistics: ``_native.c``, built on first use.

``_native.c`` is plain C99 with OpenMP (no Python or torch headers), so the system C compiler builds
it in about a second.  The library is cached under ``$NOISYLOSS_CACHE`` (default
``$XDG_CACHE_HOME/noisyloss`` or ``~/.cache/noisyloss``), named by a hash of the source, the
compiler and its flags, and loaded with :mod:`ctypes`.  Where no compiler works (or with
``NOISYLOSS_NATIVE=0``) :func:`library` returns ``None`` and the losses use their pure-torch path,
which gives the same numbers; :func:`status` says which backend is active and why.

OpenMP: the library links ``libgomp.so.1``, which resolves to the copy torch has already loaded,
so its threads are torch's (``torch.get_num_threads()`` is passed on every call).
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import threading
import warnings
from pathlib import Path
from typing import List, Optional

import torch

__all__ = ["library", "usable", "status", "cache_dir"]

# as in _native.c
ARGMAX, SUM, ENT, COMP = 1, 2, 4, 8  # statistics
STATS, LINEAR, CE_RCE, NCE_RCE, GCE, FOCAL, NEG = -1, 0, 1, 2, 3, 4, 5  # fused row losses
MAX_COLS = 16
REDUCTION = {"none": 0, "mean": 1, "sum": 2}
_ABI = 6

#: ``False`` sends every loss down its pure-torch path (the tests compare the two)
enabled = True
_SOURCE = Path(__file__).with_name("_native.c")

_lock = threading.Lock()
_lib: Optional[ctypes.CDLL] = None
_tried = False
_why = "not built yet"


def cache_dir() -> Path:
    """Where built libraries are kept."""
    if os.environ.get("NOISYLOSS_CACHE"):
        return Path(os.environ["NOISYLOSS_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "noisyloss"


def _compiler() -> Optional[List[str]]:
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    cmd = cc.split()
    return cmd if cmd and shutil.which(cmd[0]) else None


def _isa_flags() -> List[str]:
    """Instruction-set flags for this CPU, from torch's own detection (x86 only; others: none)."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return []
    cap = torch.backends.cpu.get_cpu_capability()
    if cap.startswith("AVX512"):
        return ["-mavx2", "-mfma", "-mavx512f", "-mavx512dq", "-mavx512vl", "-mavx512bw"]
    if cap.startswith("AVX2"):
        return ["-mavx2", "-mfma"]
    return []


def _build(cc: List[str]) -> Path:
    source = _SOURCE.read_bytes()
    base = ["-O3", "-std=c99", "-fPIC", "-shared", "-fno-math-errno", "-fno-trapping-math"] + _isa_flags()
    try:
        version = subprocess.run(cc + ["--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        version = ""
    errors = []
    for openmp in (["-fopenmp"], []):  # without OpenMP (e.g. Apple clang) the kernels run on one thread
        flags = base + openmp
        key = hashlib.sha256(source + "\0".join(cc + flags + [version, platform.machine()]).encode()).hexdigest()[:16]
        out = cache_dir() / f"_native-{key}{'.dll' if sys.platform == 'win32' else '.so'}"
        if out.exists():
            return out
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=out.parent, suffix=out.suffix)
        os.close(fd)
        try:
            proc = subprocess.run(cc + flags + [str(_SOURCE), "-o", tmp, "-lm"], capture_output=True, text=True,
                                  timeout=120)
            if proc.returncode == 0:
                os.replace(tmp, out)  # atomic: a concurrent build of the same key writes the same file
                return out
            errors.append(proc.stderr.strip()[-2000:])
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    raise RuntimeError("\n".join(errors))


def _declare(lib: ctypes.CDLL) -> None:
    P, I, INT = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int
    for suffix, real in (("f32", ctypes.c_float), ("f64", ctypes.c_double)):
        # x, n, c, idx, g, flags, out, k, formula, prm, reduction, res, G, grad, scale, nthreads
        getattr(lib, f"nl_rows_{suffix}").argtypes = [P, I, I, P, I, INT, P, I, INT, P, INT, P, P, P, real, INT]
        getattr(lib, f"nl_rows_{suffix}").restype = I  # -1, or the position of an index not in [0, c)
    lib.nl_peer_index.argtypes = [P, P, P, I, I, P]  # target, j, k, n, c, out
    lib.nl_peer_index.restype = I
    lib.nl_comp_index.argtypes = [P, P, I, I, P]  # target, shift, n, c, out
    lib.nl_comp_index.restype = I


def library() -> Optional[ctypes.CDLL]:
    """The loaded kernels, built on the first call; ``None`` where they cannot be had."""
    global _lib, _tried, _why
    if _tried:
        return _lib
    with _lock:
        if _tried:
            return _lib
        try:
            if os.environ.get("NOISYLOSS_NATIVE", "1").strip().lower() in ("0", "false", "no", "off"):
                _why = "disabled by NOISYLOSS_NATIVE=0"
            elif (cc := _compiler()) is None:
                _why = "no C compiler found (set CC)"
            else:
                lib = ctypes.CDLL(str(_build(cc)))
                if lib.nl_abi_version() != _ABI:
                    raise RuntimeError(f"library ABI {lib.nl_abi_version()} != {_ABI}")
                _declare(lib)
                _lib, _why = lib, "native kernels loaded"
        except Exception as err:  # any failure leaves the (equivalent) torch path in place
            _why = f"native build failed, using the torch path: {err}"
            warnings.warn(f"noisyloss: {_why}", RuntimeWarning, stacklevel=3)
        _tried = True
    return _lib


def usable(x: torch.Tensor) -> bool:
    """Whether the kernels take ``x``: a float32/float64 CPU tensor, kernels built and enabled."""
    return enabled and x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64) and library() is not None


def status() -> str:
    """Which backend the CPU losses use, and why."""
    library()
    return _why
