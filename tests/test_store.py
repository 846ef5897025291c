"""The records store: records kept by their stored key and JSON shape whatever their names, reading that
never rewrites, repairs that keep the file's mode and link, a UTF-8 BOM, nesting depth, and appends that
are whole lines or nothing (a full disk)."""
from __future__ import annotations

import dataclasses
import errno
import json
import os
import stat
from pathlib import Path

import pytest

from noisyloss import experiments as E

FAST = dict(dataset="digits", epochs=2, train_subset=300, quick=True)
FINAL = {"test_acc": 0.5, "fit_clean": 0.9, "memorised": None, "corrected": None, "diverged": None}


def _valid(loss: str = "ce", seed: int = 0) -> dict:
    """A record as run() writes it (no training: the store checks shape and types, not numbers)."""
    cfg = E.RunConfig(loss=loss, seed=seed, **FAST).resolved("cpu")
    return {"key": cfg.key(), "config": dataclasses.asdict(cfg), "final": dict(FINAL), "history": [{"epoch": 1}]}


def _foreign(seed: int = 0) -> dict:
    """A record of a dataset, model and loss that this process has never registered."""
    config = {"dataset": "mytoy", "model": "mine", "loss": "myloss:tau=2", "noise": "sym:0.3", "seed": seed,
              "epochs": 3}
    return {"key": json.dumps(config, sort_keys=True), "config": config, "final": dict(FINAL), "history": [],
            "wall_seconds": 1.0}


def _line(record: dict) -> bytes:
    return json.dumps(record).encode() + b"\n"


def _state(path: Path) -> tuple:
    """What reading must not change: the bytes, the mode, and whether the path is a link."""
    return path.read_bytes(), stat.S_IMODE(path.stat().st_mode), path.is_symlink()


def test_records_of_names_this_process_does_not_know_are_kept_and_returned(tmp_path):
    path = tmp_path / "records.jsonl"
    records = [_foreign(0), _foreign(1)]
    path.write_bytes(b"".join(map(_line, records)))
    path.chmod(0o644)
    before = _state(path)
    assert E.load_records(path) == records
    assert E.RecordsStore(path).records() == {r["key"]: r for r in records}
    assert _state(path) == before and not (tmp_path / "records.jsonl.rejected").exists()
    assert E.RecordsStore(path).add(_foreign(2)) and len(E.load_records(path)) == 3


def test_a_record_is_known_by_its_stored_key_not_by_its_config_rebuilt(tmp_path):
    record = _valid("gce")
    record["key"] = json.dumps({**json.loads(record["key"]), "loss": "gce:q=0.70"}, sort_keys=True)  # an old spelling
    assert E.record_key(record) == record["key"] != E.RunConfig(**record["config"]).key()
    store = E.RecordsStore(tmp_path / "records.jsonl")
    assert store.add(record) and list(store.records()) == [record["key"]]
    assert not store.add(dict(record, history=[]))  # the same stored key: the same run


@pytest.mark.parametrize("change, why", [
    (lambda r: r.update(final={}), r"final lacks the metrics \['test_acc', 'fit_clean', 'memorised', 'corrected'\]"),
    (lambda r: r["final"].pop("corrected"), r"final lacks the metrics \['corrected'\]"),
    (lambda r: r["final"].update(test_acc="0.5"), r"final metrics must be numbers or null, got \['test_acc'\]"),
    (lambda r: r["final"].update(memorised=True), r"numbers or null, got \['memorised'\]"),
    (lambda r: r["final"].update(diverged=2.5), "diverged must be an epoch"),
    (lambda r: r.update(final=[0.5]), "final must be a JSON object"),
    (lambda r: r.update(config="digits"), "config must be a JSON object"),
    (lambda r: r.update(history={"epoch": 1}), "history must be a list of JSON objects"),
    (lambda r: r.update(history=[1, 2]), "history must be a list of JSON objects"),
    (lambda r: r.update(key=""), "key must be a run config as a JSON object"),
    (lambda r: r.update(key=7), "key must be a run config as a JSON object"),
    (lambda r: r.update(key="ce|sym:0.4"), "key must be a run config as a JSON object"),
    (lambda r: r.pop("history"), r"record lacks \['history'\]"),
])
def test_record_key_checks_shape_and_types(change, why):
    record = _valid()
    change(record)
    with pytest.raises(ValueError, match=why):
        E.record_key(record)


@pytest.mark.parametrize("bad, why", [
    (b'{"key": "half a rec', "not JSON"),
    (b"{}", "record lacks"),
    (b"[1, 2]", "a record is a JSON object"),
    (b"\xff\xfe{not utf-8}", "not UTF-8"),
    (json.dumps({**_valid(), "final": {}}).encode(), "final lacks the metrics"),  # would never be retrained
    (b"[" * 100_000 + b"]" * 100_000, "nested deeper than 64 levels"),
    (b'{"key": "{}", "config": {}, "final": {}, "history": ' + b"[" * 100_000, "nested deeper than 64 levels"),
    (None, "a second record of the same run"),
], ids=["cut short", "empty object", "array", "not utf-8", "empty final", "100k nested brackets",
        "100k open brackets in history", "duplicate"])
def test_only_invalid_lines_are_moved_aside_and_the_others_stay_as_they_were(tmp_path, bad, why):
    path = tmp_path / "records.jsonl"
    first = b'{"history": [],  "final": %s, "config": {"x": 1}, "key": "{\\"x\\": 1}"}' % json.dumps(FINAL).encode()
    bad = first if bad is None else bad
    last = json.dumps(_foreign()).encode()
    path.write_bytes(first + b"\n" + bad + b"\n" + last)  # no final newline
    before = _state(path)
    with pytest.warns(RuntimeWarning, match=f"line 2: {why}.* skipped"):
        assert len(E.load_records(path)) == 2
    assert _state(path) == before  # load_records only reads
    store = E.RecordsStore(path)
    with pytest.warns(RuntimeWarning, match=f"line 2: {why}.*moved to .*records.jsonl.rejected"):
        assert len(store.records()) == 2
    assert (tmp_path / "records.jsonl.rejected").read_bytes() == bad + b"\n"
    assert path.read_bytes() == first + b"\n" + last + b"\n"  # the valid lines byte for byte
    assert store.add(_valid("gce")) and not store.add(_valid("gce:q=0.7"))  # one run, two spellings
    assert E.load_records(path)[-1]["config"]["loss"] == "gce"


def test_nesting_is_allowed_to_64_levels():
    def nested(levels: int) -> dict:  # the record is level 1, history 2, its entries 3, their lists 4...
        record = _valid()
        value: list = []
        for _ in range(levels - 4):
            value = [value]
        record["history"] = [{"per_class": value}]
        return record

    assert E.record_key(nested(64)) == _valid()["key"]
    with pytest.raises(ValueError, match="nested deeper than 64 levels"):
        E.record_key(nested(65))


def test_reading_a_valid_file_never_changes_its_bytes_mode_or_link(tmp_path):
    target = tmp_path / "data" / "records-v1.jsonl"
    target.parent.mkdir()
    target.write_bytes(_line(_valid("ce")) + b"\n  \n" + json.dumps(_valid("mae")).encode())  # blank lines, no final newline
    target.chmod(0o640)
    path = tmp_path / "records.jsonl"
    path.symlink_to(target)
    before = _state(path)
    assert len(E.load_records(path)) == 2
    assert len(E.RecordsStore(path).records()) == 2
    assert _state(path) == before and path.is_symlink()
    assert E.save_record(path, _valid("gce"))  # an append starts a new line
    assert [r["config"]["loss"] for r in E.load_records(path)] == ["ce", "mae", "gce"]


def test_a_repair_keeps_the_mode_and_rewrites_a_symlinks_target(tmp_path):
    target = tmp_path / "shared" / "records.jsonl"
    target.parent.mkdir()
    target.write_bytes(_line(_valid("ce")) + b'{"key": "cut short' + b"\n" + _line(_valid("mae")))
    target.chmod(0o664)
    path = tmp_path / "records.jsonl"
    path.symlink_to(target)
    with pytest.warns(RuntimeWarning, match="line 2: not JSON"):
        assert len(E.RecordsStore(path).records()) == 2
    assert path.is_symlink() and path.resolve() == target.resolve()
    assert stat.S_IMODE(target.stat().st_mode) == 0o664
    assert target.read_bytes() == _line(_valid("ce")) + _line(_valid("mae"))
    assert sorted(p.name for p in target.parent.iterdir()) == ["records.jsonl"]  # no temporary file left


def test_a_utf8_bom_before_the_file_or_a_line_is_tolerated(tmp_path):
    path = tmp_path / "records.jsonl"
    bom = "\ufeff".encode()
    path.write_bytes(bom + _line(_valid("ce")) + bom + _line(_valid("mae")))
    before = _state(path)
    assert [r["config"]["loss"] for r in E.load_records(path)] == ["ce", "mae"]
    assert len(E.RecordsStore(path).records()) == 2
    assert _state(path) == before and not (tmp_path / "records.jsonl.rejected").exists()


def test_a_full_disk_leaves_no_partial_line_and_the_error_propagates(tmp_path, monkeypatch):
    path = tmp_path / "records.jsonl"
    store = E.RecordsStore(path)
    assert store.add(_valid("ce"))
    before = path.read_bytes()
    write = os.write

    def full_disk(fd: int, data) -> int:  # writes a part of the line into the records file, then fails
        if os.fstat(fd).st_ino == path.stat().st_ino:
            write(fd, bytes(data)[:len(data) // 2])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return write(fd, data)

    monkeypatch.setattr(os, "write", full_disk)
    with pytest.raises(OSError) as caught:
        store.add(_valid("mae"))
    assert caught.value.errno == errno.ENOSPC
    assert path.read_bytes() == before
    monkeypatch.setattr(os, "write", write)
    assert store.add(_valid("mae")) and len(E.load_records(path)) == 2
