"""The records store: one JSONL file of finished runs that several processes share safely.

A record is one JSON line (a run's key, config, final metrics, history and provenance), identified
by its stored ``"key"``: the canonical JSON of the run's resolved config that
:meth:`~noisyloss.experiments.config.RunConfig.key` wrote when the run was trained.  Processes that
point at the same file (one per GPU, or one per machine on shared storage) cooperate through file
locks from the ``filelock`` package:

* ``records.jsonl.lock`` is held for every repair and every append, so lines never interleave; an
  append writes one whole line or nothing (a full disk: an ``OSError``, the file as it was);
* ``records.jsonl.claims/<key hash>.lock`` is held by the process that trains a run, for as long as
  it trains; a second process skips that run and waits for its record later.  The operating system
  releases the lock of a process that dies, so its claim is taken over and nothing is lost; a run is
  trained only by the holder of its claim and only if no record of it exists, so nothing is trained
  twice.

**What is validated** (:func:`record_key`): the JSON shape and types of a record, nothing else.  A
record is an object with ``"key"`` (a non-empty string holding a JSON object), ``"config"`` (an
object), ``"final"`` (an object of numbers or nulls that holds at least the metrics ``test_acc``,
``fit_clean``, ``memorised`` and ``corrected``; ``diverged``, when there, an integer or null) and
``"history"`` (a list of objects), nested at most :data:`MAX_DEPTH` levels deep.  A UTF-8 byte order
mark before a line is ignored.  **What is not validated**: the names in a record (datasets, models,
losses, noise specs) and whether today's :class:`~noisyloss.experiments.config.RunConfig` accepts its
config, so the records of names this process has not registered are kept and returned like any other.

**Reading never rewrites**: :func:`load_records` only reads, and so does
:meth:`RecordsStore.records` on a file of valid records (its bytes, mode and links stay as they
are).  Only where lines are not valid records (cut short by a kill, not JSON, not UTF-8, ``{}``,
missing or mistyped fields, nested too deeply, a second record of a run already in the file) does
:meth:`RecordsStore.records` repair the file: those lines are appended to ``records.jsonl.rejected``
with a warning and the file is rewritten with the other lines exactly as they were, keeping its mode;
a symlinked ``records.jsonl`` stays a link and its target is rewritten.  The shared folder must
support file locks (local disks, NFSv4, Lustre/GPFS with locking enabled).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import tempfile
import warnings
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple, Union

from filelock import FileLock, Timeout

__all__ = ["RecordsStore", "record_key", "load_records", "save_record", "MAX_DEPTH", "FINAL_METRICS"]

#: fields every record has (what ``run`` writes)
REQUIRED = ("key", "config", "final", "history")
#: final metrics every record has, each a number or null
FINAL_METRICS = ("test_acc", "fit_clean", "memorised", "corrected")
#: how deep lists and objects may nest in a record (the record itself is level 1)
MAX_DEPTH = 64


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _depth(value: Any) -> int:
    """How deep lists and objects nest in ``value`` (0 for a scalar), counted without recursion and
    only up to ``MAX_DEPTH + 1``."""
    deepest, todo = 0, [(value, 1)]
    while todo and deepest <= MAX_DEPTH:
        item, level = todo.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, level)
            todo.extend((child, level + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def _loads(text: str) -> Any:
    """``json.loads``; JSON nested too deeply for the parser itself (it raises ``RecursionError``
    near a thousand levels, far beyond ``MAX_DEPTH``) is a ``ValueError`` like any other too deep."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError(f"nested deeper than {MAX_DEPTH} levels") from None


def _is_json_object(text: str) -> bool:
    try:
        return isinstance(_loads(text), dict)
    except ValueError:
        return False


def record_key(record: Any) -> str:
    """The identity of a record: its stored ``"key"``, returned once the record's JSON shape and
    types are valid (see the module docstring); its names are never checked.  Raises ``ValueError``
    naming what is wrong otherwise.

    >>> record_key({"key": '{"loss": "mine", "seed": 0}', "config": {"loss": "mine"}, "history": [],
    ...             "final": {"test_acc": 0.5, "fit_clean": 0.9, "memorised": None, "corrected": None}})
    '{"loss": "mine", "seed": 0}'
    """
    if not isinstance(record, dict):
        raise ValueError(f"a record is a JSON object, got {type(record).__name__}")
    missing = [k for k in REQUIRED if k not in record]
    if missing:
        raise ValueError(f"record lacks {missing}")
    key, config, final, history = (record[k] for k in REQUIRED)
    if _depth(record) > MAX_DEPTH:
        raise ValueError(f"nested deeper than {MAX_DEPTH} levels")
    if not isinstance(key, str) or not _is_json_object(key):
        raise ValueError(f"key must be a run config as a JSON object in a string, got {str(key)[:60]!r}")
    if not isinstance(config, dict):
        raise ValueError(f"config must be a JSON object, got {type(config).__name__}")
    if not isinstance(final, dict):
        raise ValueError(f"final must be a JSON object, got {type(final).__name__}")
    lacking = [m for m in FINAL_METRICS if m not in final]
    if lacking:
        raise ValueError(f"final lacks the metrics {lacking}")
    not_numbers = [k for k, v in final.items() if v is not None and not _is_number(v)]
    if not_numbers:
        raise ValueError(f"final metrics must be numbers or null, got {not_numbers} otherwise")
    diverged = final.get("diverged")
    if diverged is not None and not isinstance(diverged, int):
        raise ValueError(f"final diverged must be an epoch (an integer) or null, got {diverged!r}")
    if not isinstance(history, list) or not all(isinstance(entry, dict) for entry in history):
        raise ValueError("history must be a list of JSON objects")
    return key


def _parse(line: bytes) -> Tuple[Any, str]:
    """``(record, key)`` of one line, or ``(None, why)`` when it is not a valid record."""
    try:
        record = _loads(line.decode("utf-8").removeprefix("\ufeff"))
        return record, record_key(record)
    except UnicodeDecodeError:
        return None, "not UTF-8"
    except json.JSONDecodeError as err:
        return None, f"not JSON ({err.msg})"
    except ValueError as err:
        return None, str(err)


def _read(path: Path) -> Tuple[Dict[str, Dict[str, Any]], List[bytes], List[Tuple[int, bytes, str]]]:
    """The valid records by key (the first of each key), their lines as they are in the file, and the
    rejected ``(line number, line, why)``."""
    data = path.read_bytes() if path.exists() else b""
    records: Dict[str, Dict[str, Any]] = {}
    kept, rejected = [], []
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
            kept.append(line)
    return records, kept, rejected


def _reasons(path: Path, rejected: List[Tuple[int, bytes, str]]) -> str:
    shown = "; ".join(f"line {n}: {why}" for n, _, why in rejected[:5])
    more = f"; and {len(rejected) - 5} more" if len(rejected) > 5 else ""
    return f"{path}: {len(rejected)} invalid line(s) ({shown}{more})"


def _append(path: Path, data: bytes) -> None:
    """Append ``data`` to the file ``path`` whole or not at all: after an ``OSError`` (a full disk) the
    file is cut back to its length before and the error propagates.  A last line without its newline
    gets one first."""
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        size = os.fstat(fd).st_size
        if size:
            os.lseek(fd, size - 1, os.SEEK_SET)
            if os.read(fd, 1) != b"\n":
                data = b"\n" + data
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        except OSError:
            os.ftruncate(fd, size)
            raise
    finally:
        os.close(fd)


def load_records(path: Union[str, os.PathLike]) -> List[Dict[str, Any]]:
    """The valid records of a JSONL file, in file order (``[]`` if it does not exist).  Invalid lines
    are skipped with a ``RuntimeWarning`` naming them; the file is only read, never changed (a
    :class:`RecordsStore` moves invalid lines aside).  Needs no registered names."""
    path = Path(path)
    records, _, rejected = _read(path)
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
        """All valid records by their stored key.  A file of valid records is only read; invalid lines
        are moved aside (under the lock; see the module docstring)."""
        with self._lock:
            records, kept, rejected = _read(self.path)
            if rejected:
                _append(self.rejected_path, b"".join(line + b"\n" for _, line, _ in rejected))
                self._rewrite(kept)
                warnings.warn(_reasons(self.path, rejected) + f" moved to {self.rejected_path}",
                              RuntimeWarning, stacklevel=2)
            return records

    def _rewrite(self, lines: List[bytes]) -> None:
        """Replace the file's contents by ``lines`` at once, keeping its mode; a symlinked records file
        stays a link and its target is replaced."""
        target = Path(os.path.realpath(self.path))
        mode = stat.S_IMODE(target.stat().st_mode)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=target.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(b"".join(line + b"\n" for line in lines))
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, mode)
            os.replace(tmp, target)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def add(self, record: Dict[str, Any]) -> bool:
        """Append ``record`` as one line unless a record of the same run is there; returns whether it
        was added.  The line is written whole or not at all (an ``OSError`` propagates)."""
        key = record_key(record)
        line = json.dumps(record).encode("utf-8") + b"\n"
        with self._lock:
            if key in self.records():
                return False
            _append(self.path, line)
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
