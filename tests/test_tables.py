"""Tables of records: seeds grouped by canonical run key with n, the text, markdown, LaTeX and CSV
formats of group_table, to_dataframe (pandas an optional extra), and `python -m noisyloss table`."""
from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import re
import sys
from pathlib import Path

import pytest

from noisyloss import experiments as E
from noisyloss.__main__ import main

FAST = dict(dataset="digits", epochs=2, train_subset=300, quick=True)


def _record(loss: str = "ce", seed: int = 0, acc=0.5, noise: str = "sym:0.4", memorised=None, diverged=None,
            **fields) -> dict:
    """A record as run() writes it, with the given final test accuracy (no training)."""
    cfg = E.RunConfig(loss=loss, seed=seed, noise=noise, **{**FAST, **fields}).resolved("cpu")
    final = {"test_acc": acc, "fit_clean": 0.9, "memorised": memorised, "corrected": None, "diverged": diverged}
    return {"key": cfg.key(), "config": dataclasses.asdict(cfg), "final": final, "history": [], "wall_seconds": 2.0,
            "device": "cpu", "date": "2026-12-03T08:00:00+00:00"}


def _foreign(seed: int, acc: float) -> dict:
    """A record of names no process here has registered."""
    config = {"dataset": "mytoy", "model": "mine", "loss": "myloss", "noise": "sym:0.3", "seed": seed, "epochs": 3}
    final = {"test_acc": acc, "fit_clean": 1.0, "memorised": 0.25, "corrected": 0.5}
    return {"key": json.dumps(config, sort_keys=True), "config": config, "final": final, "history": []}


def _mean_std(values) -> tuple:
    """Mean and sample standard deviation (ddof=1) by their formulas, in float64."""
    m = math.fsum(values) / len(values)
    return m, math.sqrt(math.fsum((v - m) ** 2 for v in values) / (len(values) - 1))


def test_spellings_of_one_run_are_one_group_with_n():
    recs = [_record("gce", 0, 0.5), _record("gce", 1, 0.6), _record("gce:q=0.7", 2, 0.8), _record("ce", 0, 0.4)]
    mean, std = _mean_std([0.5, 0.6, 0.8])
    stats = E.seed_stats(recs)
    assert set(stats) == {("sym:0.4", "gce"), ("sym:0.4", "ce")}
    assert stats["sym:0.4", "gce"] == pytest.approx((mean, std, 3))
    assert [E.record_loss(r) for r in recs] == ["gce", "gce", "gce", "ce"]
    for spelling in ("gce", "gce:q=0.7"):  # a page may name the loss as its configs spell it
        head, row = E.seed_table(recs, [spelling], ["sym:0.4"], ("test_acc",)).splitlines()
        assert head.split() == ["loss", "metric", "sym:0.4", "n"]
        assert row.split() == [spelling, "test_acc", f"{mean:.3f}", "±", f"{std:.3f}", "3"]
    text = E.group_table(recs).splitlines()
    assert len(text) == 3 and text[1].split()[4:] == ["2", "3", "0", f"{mean:.3f}", "±", f"{std:.3f}"]


def test_seed_stats_skip_undefined_metrics_and_refuse_mixed_recipes():
    recs = [_record(seed=s, acc=a, memorised=m) for s, (a, m) in enumerate(((0.5, 1.0), (0.7, None), (0.9, 0.6)))]
    assert E.seed_stats(recs)["sym:0.4", "ce"] == pytest.approx((*_mean_std([0.5, 0.7, 0.9]), 3))
    assert E.seed_stats(recs, "memorised")["sym:0.4", "ce"] == pytest.approx((*_mean_std([1.0, 0.6]), 2))
    assert E.seed_stats(recs[:1])["sym:0.4", "ce"] == (0.5, 0.0, 1)
    with pytest.raises(ValueError, match=r"records of different runs share noise 'sym:0.4' and loss 'ce' .*\['epochs'\]"):
        E.seed_stats(recs + [_record(seed=0, epochs=3)])
    assert len(E.group_table(recs + [_record(seed=0, epochs=3)]).splitlines()) == 3  # one row per run


def test_seed_table_cells_missing_cells_n_and_diverged_seeds():
    recs = [_record(acc=0.5, memorised=1.0), _record(seed=1, acc=0.7, memorised=0.8),
            _record(noise="clean", acc=0.9), _record(seed=2, acc=None, diverged=3)]
    lines = E.seed_table(recs, ["ce", "mae"], ["clean", "sym:0.4"]).splitlines()
    assert lines[0].split() == ["loss", "metric", "clean", "sym:0.4", "n"]
    assert lines[1].split()[:5] == ["ce", "test_acc", "0.900", "±", "0.000"]
    assert "0.600 ± 0.141 (1/3 diverged)" in lines[1] and lines[1].endswith("1-3")  # 1 seed clean, 3 at sym:0.4
    assert lines[2].split()[2] == "-" and "0.900 ± 0.141 (1/3 diverged)" in lines[2]
    assert lines[3].split() == ["mae", "test_acc", "-", "-", "-"]


def test_group_table_formats_agree_with_the_formulas():
    recs = [_record("nce_rce", s, a, memorised=m) for s, (a, m) in enumerate(((0.5, 0.2), (0.6, 0.3), (0.8, None)))]
    recs += [_record("ce", 0, 0.4, noise="asym:0.4:1>7,7>1")]
    acc, mem = _mean_std([0.5, 0.6, 0.8]), _mean_std([0.2, 0.3])
    metrics = ("test_acc", "memorised")
    rows = list(csv.DictReader(io.StringIO(E.group_table(recs, metrics, "csv"))))
    assert [(r["loss"], r["noise"], r["n"], r["diverged"]) for r in rows] == [
        ("nce_rce", "sym:0.4", "3", "0"), ("ce", "asym:0.4:1>7,7>1", "1", "0")]
    assert float(rows[0]["test_acc_mean"]) == pytest.approx(acc[0]) and float(rows[0]["test_acc_std"]) == pytest.approx(acc[1])
    assert float(rows[0]["memorised_std"]) == pytest.approx(mem[1]) and rows[0]["memorised_n"] == "2"
    assert (rows[1]["memorised_mean"], rows[1]["memorised_n"]) == ("", "0")

    md = E.group_table(recs, metrics, "markdown").splitlines()
    assert md[0] == "| dataset | model | noise | loss | epochs | n | diverged | test_acc | memorised |"
    assert md[1] == "|" + "---|" * 9 and len(md) == 4
    assert md[2] == f"| digits | mlp | sym:0.4 | nce_rce | 2 | 3 | 0 | {acc[0]:.3f} ± {acc[1]:.3f} | {mem[0]:.3f} ± {mem[1]:.3f} |"

    tex = E.group_table(recs, metrics, "latex").splitlines()
    assert tex[0] == r"\begin{tabular}{lllllrrrr}" and tex[2] == r"\hline" and tex[-1] == r"\end{tabular}"
    assert tex[1] == r"dataset & model & noise & loss & epochs & n & diverged & test\_acc & memorised \\"
    assert tex[3] == (rf"digits & mlp & sym:0.4 & nce\_rce & 2 & 3 & 0 & {acc[0]:.3f} $\pm$ {acc[1]:.3f} & "
                      rf"{mem[0]:.3f} $\pm$ {mem[1]:.3f} \\")
    assert r"asym:0.4:1\textgreater{}7,7\textgreater{}1 & ce & 2 & 1 & 0 & 0.400 $\pm$ 0.000 & - \\" in tex[4]

    text = E.group_table(recs, metrics).splitlines()
    assert text[0].split() == ["dataset", "model", "noise", "loss", "epochs", "n", "diverged", *metrics]
    assert text[2].split()[-4:] == ["0.400", "±", "0.000", "-"]
    with pytest.raises(ValueError, match="fmt must be one of"):
        E.group_table(recs, fmt="rst")
    with pytest.raises(ValueError, match=r"no record has the metric\(s\) \['acc'\]"):
        E.group_table(recs, ["acc"])


def test_group_table_shows_the_other_fields_that_differ():
    recs = [_record(lr=0.1), _record(seed=1, lr=0.1), _record(lr=0.05)]
    head, *rows = E.group_table(recs).splitlines()
    assert head.split()[:6] == ["dataset", "model", "noise", "loss", "epochs", "lr"]
    assert [r.split()[5:7] for r in rows] == [["0.1", "2"], ["0.05", "1"]]


def test_to_dataframe_has_one_row_per_record():
    pd = pytest.importorskip("pandas")
    recs = [_record("gce", 0, 0.5), _record("gce:q=0.7", 1, 0.7), _foreign(0, 0.25)]
    df = E.to_dataframe(recs)
    assert isinstance(df, pd.DataFrame) and len(df) == 3
    assert list(df.columns[:6]) == ["dataset", "model", "noise", "loss", "epochs", "seed"]
    assert list(df["loss"]) == ["gce", "gce", "myloss"] and list(df["seed"]) == [0, 1, 0]
    assert df["test_acc"].tolist() == [0.5, 0.7, 0.25] and df["seconds"].tolist()[:2] == [2.0, 2.0]
    assert {"fit_clean", "memorised", "corrected", "diverged", "device", "date"} <= set(df.columns)
    grouped = df.groupby(["dataset", "model", "noise", "loss", "epochs"])["test_acc"].agg(["mean", "std", "count"])
    assert grouped.loc[("digits", "mlp", "sym:0.4", "gce", 2)].tolist() == pytest.approx([0.6, _mean_std([0.5, 0.7])[1], 2])


def test_to_dataframe_without_pandas_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)  # `import pandas` raises ImportError
    with pytest.raises(ImportError, match=r"pip install noisyloss\[tables\]"):
        E.to_dataframe([_record()])


def test_cli_table_reads_records_of_unknown_names_and_leaves_the_file(tmp_path, capsys):
    path = tmp_path / "records.jsonl"
    path.write_bytes(b"".join(json.dumps(r).encode() + b"\n" for r in (_foreign(0, 0.5), _foreign(1, 0.7),
                                                                        _foreign(2, 0.9))))
    path.chmod(0o644)
    before = path.read_bytes(), path.stat().st_mode
    assert main(["table", str(tmp_path), "--format", "markdown", "--metric", "test_acc", "memorised"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "| dataset | model | noise | loss | epochs | n | diverged | test_acc | memorised |"
    assert out[2] == "| mytoy | mine | sym:0.3 | myloss | 3 | 3 | 0 | 0.700 ± 0.200 | 0.250 ± 0.000 |"
    assert main(["table", str(path), "--format", "csv"]) == 0  # the file itself
    assert capsys.readouterr().out.splitlines()[1].startswith("mytoy,mine,sym:0.3,myloss,3,3,0,0.7")
    assert (path.read_bytes(), path.stat().st_mode) == before


@pytest.mark.parametrize("args, why", [
    (["missing"], "no records file at .*missing"),
    (["records.jsonl", "--metric", "acc"], r"no record has the metric\(s\) \['acc'\]"),
])
def test_cli_table_errors_are_one_line_with_status_2(tmp_path, capsys, monkeypatch, args, why):
    monkeypatch.chdir(tmp_path)
    Path("records.jsonl").write_text(json.dumps(_foreign(0, 0.5)) + "\n")
    assert main(["table", *args]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("noisyloss table: error: ")
    assert re.search(why, err[0])
