"""The records store: one JSONL file of finished runs that several processes share safely.

A record is one JSON line (a run's config, final metrics, history and provenance).  Processes that
point at the same file (one per GPU, or one per machine on shared storage) cooperate through file
locks from the ``filelock`` package:

* ``records.jsonl.lock`` is held for every read-repair and every append, so lines never interleave
  and each append is one ``write`` + ``fsync``;
* ``records.jsonl.claims/<key hash>.lock`` is held by the process that trains a run, for as long as
  it trains; a second process skips that run and waits for its record later.  The operating system
  releases the lock of a process that dies, so its claim is taken over and nothing is lost; a run is
  trained only by the holder of its claim and only if no record of it exists, so nothing is trained
  twice.

A line that is not a valid record (cut short by a kill, not JSON, not UTF-8, ``{}``, missing keys,
a config this version rejects, a second record of the same run) is moved aside to
``records.jsonl.rejected`` with a warning, so the records file stays valid JSONL whatever was
appended to it.  The shared folder must support file locks (local disks, NFSv4, Lustre/GPFS with
locking enabled).
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple, Union

from filelock import FileLock, Timeout

from .config import RunConfig

__all__ = ["RecordsStore", "record_key", "load_records", "save_record"]

#: keys every record has (what ``run`` writes)
REQUIRED = ("key", "config", "final", "history")


def record_key(record: Dict[str, Any]) -> str:
    """The identity of a record: the key of its config under this version's rules (so records written
    before a spec spelling was normalised still match).  Raises ``ValueError`` for an invalid record."""
    if not isinstance(record, dict):
        raise ValueError(f"a record is a JSON object, got {type(record).__name__}")
    missing = [k for k in REQUIRED if k not in record]
    if missing:
        raise ValueError(f"record lacks {missing}")
    config, final = record["config"], record["final"]
    if not isinstance(config, dict) or not isinstance(final, dict) or not isinstance(record["history"], list):
        raise ValueError("config and final must be JSON objects and history a list")
    return _config_key(json.dumps(config, sort_keys=True))


@functools.lru_cache(maxsize=4096)
def _config_key(config: str) -> str:
    """``RunConfig(**config).key()``, cached: a store reads every record each time it claims a run."""
    try:
        return RunConfig(**json.loads(config)).key()
    except TypeError as err:  # unknown or missing fields
        raise ValueError(f"config: {err}") from None


def _parse(line: bytes) -> Tuple[Optional[Dict[str, Any]], str]:
    """``(record, key)`` of one line, or ``(None, why)`` when it is not a valid record."""
    try:
        record = json.loads(line.decode("utf-8"))
        return record, record_key(record)
    except UnicodeDecodeError:
        return None, "not UTF-8"
    except json.JSONDecodeError as err:
        return None, f"not JSON ({err.msg})"
    except ValueError as err:
        return None, str(err)


def _read(path: Path) -> Tuple[Dict[str, Dict[str, Any]], List[Tuple[int, bytes, str]], bool]:
    """Valid records by key (first of each key), the rejected ``(line number, line, why)``, and
    whether the file needs rewriting (rejected lines, or no newline after the last record)."""
    data = path.read_bytes() if path.exists() else b""
    records: Dict[str, Dict[str, Any]] = {}
    rejected = []
    for number, line in enumerate(data.split(b"\n"), 1):
        if not line.strip():
            continue
        record, key = _parse(line)
        if record is None:
            rejected.append((number, line, key))
        elif key in records:
            rejected.append((number, line, "a second record of the same run"))
        else:
            records[key] = record
    return records, rejected, bool(rejected) or (bool(data) and not data.endswith(b"\n"))


def _reasons(path: Path, rejected: List[Tuple[int, bytes, str]]) -> str:
    shown = "; ".join(f"line {n}: {why}" for n, _, why in rejected[:5])
    more = f"; and {len(rejected) - 5} more" if len(rejected) > 5 else ""
    return f"{path}: {len(rejected)} invalid line(s) ({shown}{more})"


def load_records(path: Union[str, os.PathLike]) -> List[Dict[str, Any]]:
    """The valid records of a JSONL file, in file order (``[]`` if it does not exist).  Invalid lines
    are skipped with a ``RuntimeWarning`` naming them; the file is not changed (a
    :class:`RecordsStore` moves them aside)."""
    path = Path(path)
    records, rejected, _ = _read(path)
    if rejected:
        warnings.warn(_reasons(path, rejected) + " skipped", RuntimeWarning, stacklevel=2)
    return list(records.values())


class RecordsStore:
    """A records file shared by processes (see the module docstring).

    Creating the store creates the folder and probes that the file can be written (``OSError`` if
    not), so that a run is never trained into a file it cannot be saved to.
    """

    def __init__(self, path: Union[str, os.PathLike]) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            raise IsADirectoryError(f"{self.path} is a folder, not a records file")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.rejected_path = self.path.with_name(self.path.name + ".rejected")
        self.claims = self.path.with_name(self.path.name + ".claims")
        self._lock = FileLock(self.path.with_name(self.path.name + ".lock"))
        with self._lock:
            with open(self.path, "ab"):
                pass
            self.claims.mkdir(exist_ok=True)
            fd, probe = tempfile.mkstemp(dir=self.claims, prefix="probe-")
            os.close(fd)
            os.unlink(probe)

    def records(self) -> Dict[str, Dict[str, Any]]:
        """All valid records by key, after moving invalid lines aside (under the lock)."""
        with self._lock:
            records, rejected, rewrite = _read(self.path)
            if rejected:
                with open(self.rejected_path, "ab") as f:
                    f.write(b"".join(line + b"\n" for _, line, _ in rejected))
                    f.flush()
                    os.fsync(f.fileno())
                warnings.warn(_reasons(self.path, rejected) + f" moved to {self.rejected_path}",
                              RuntimeWarning, stacklevel=2)
            if rewrite:
                self._rewrite(records.values())
            return records

    def _rewrite(self, records) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=self.path.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(b"".join(json.dumps(r).encode("utf-8") + b"\n" for r in records))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def add(self, record: Dict[str, Any]) -> bool:
        """Append ``record`` unless a record of the same run is there; returns whether it was added."""
        key = record_key(record)
        line = json.dumps(record).encode("utf-8") + b"\n"
        with self._lock:
            if key in self.records():
                return False
            with open(self.path, "ab") as f:
                f.write(line)
                f.flush()
                os.fsync(f.fileno())
        return True

    @contextlib.contextmanager
    def claim(self, key: str, wait: bool) -> Iterator[bool]:
        """Hold the claim of run ``key`` for the ``with`` block; yields whether it was obtained
        (without ``wait``, ``False`` when another process holds it)."""
        name = hashlib.sha1(key.encode("utf-8")).hexdigest()[:24]
        lock = FileLock(self.claims / f"{name}.lock")
        try:
            lock.acquire(timeout=-1 if wait else 0)
        except Timeout:
            yield False
            return
        try:
            yield True
        finally:
            lock.release()


def save_record(out_path: Union[str, os.PathLike], record: Dict[str, Any]) -> bool:
    """Append ``record`` (e.g. ``run(cfg).record``) to a records file unless a record of the same run
    is already there, so that :func:`~noisyloss.experiments.runner.sweep` skips that run; returns whether it
    was appended."""
    return RecordsStore(out_path).add(record)
