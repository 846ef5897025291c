"""The book's page furniture: the admonition of an experimental page (book.page_note), results as
HTML tables (book.table, experiments.html_table, group_table/seed_table with fmt="html"), and the
collapsed checks and provenance boxes (book.checks, book.provenance)."""
from __future__ import annotations

import dataclasses
import html
import math
import re
from html.parser import HTMLParser

import pytest
import torch

from noisyloss import book, runtime
from noisyloss import experiments as E
from noisyloss.experiments.tables import html_table


class _Cells(HTMLParser):
    """The cells of an HTML table: rows of (tag, alignment, text)."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list = []
        self._cell = None

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            style = dict(attrs).get("style", "")
            self._cell = [tag, re.search(r"text-align:(\w+)", style).group(1), ""]

    def handle_data(self, data):
        if self._cell is not None:
            self._cell[2] += data

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.rows[-1].append(tuple(self._cell))
            self._cell = None


def _cells(markup: str) -> list:
    parser = _Cells()
    parser.feed(markup)
    return parser.rows


def _record(loss: str, seed: int, acc: float) -> dict:
    cfg = E.RunConfig(loss=loss, seed=seed, noise="sym:0.4", dataset="digits", epochs=2, train_subset=300,
                      quick=True).resolved("cpu")
    final = {"test_acc": acc, "fit_clean": 0.9, "memorised": 0.5, "corrected": None, "diverged": None}
    return {"key": cfg.key(), "config": dataclasses.asdict(cfg), "final": final, "history": [], "wall_seconds": 2.0,
            "device": "cpu", "torch": "2.x", "commit": "a13325c69d0123", "date": "2026-12-03T08:00:00+00:00"}


def test_html_table_escapes_and_aligns_labels_left_numbers_right():
    rows = _cells(html_table([["loss", "a<b", "n"], ["<script>", "0.500", "3"]], left=1))
    assert rows == [[("th", "left", "loss"), ("th", "right", "a<b"), ("th", "right", "n")],
                    [("td", "left", "<script>"), ("td", "right", "0.500"), ("td", "right", "3")]]
    assert "<script>" not in html_table([["x"], ["<script>"]])


def test_book_table_formats_floats_keeps_ints_and_reads_dataframes():
    rows = [{"loss": "MSE", "L(3)": 4.5, "tiny": 2e-16, "n": 3}, {"loss": "MAE", "L(3)": 3, "tiny": None, "n": 3}]
    head, first, second = _cells(book.table(rows).data)
    assert [c[2] for c in head] == ["loss", "L(3)", "tiny", "n"]
    assert [c[1] for c in first] == ["left", "right", "right", "right"]
    assert [c[2] for c in first] == ["MSE", "4.500", "2.0e-16", "3"]
    assert [c[2] for c in second] == ["MAE", "3", "–", "3"]
    assert [c[2] for c in _cells(book.table(rows, digits=1).data)[1]][1] == "4.5"
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(rows)  # pandas makes the column L(3) float and None NaN
    assert [c[2] for c in _cells(book.table(frame).data)[2]] == ["MAE", "3.000", "–", "3"]
    assert _cells(book.table(frame).data)[:2] == [head, first]
    with pytest.raises(ValueError, match="at least one row"):
        book.table([])


def test_group_and_seed_tables_in_html_carry_the_text_tables_numbers_and_n():
    recs = [_record("gce", 0, 0.5), _record("gce", 1, 0.6), _record("gce", 2, 0.8), _record("ce", 0, 0.4)]
    m = (0.5 + 0.6 + 0.8) / 3
    s = math.sqrt(((0.5 - m) ** 2 + (0.6 - m) ** 2 + (0.8 - m) ** 2) / 2)
    head, *body = _cells(E.group_table(recs, fmt="html"))
    names = [c[2] for c in head]
    assert names[-3:] == ["n", "diverged", "test_acc"]
    gce = next(r for r in body if r[names.index("loss")][2] == "gce")
    assert gce[-3:] == [("td", "right", "3"), ("td", "right", "0"), ("td", "right", f"{m:.3f} ± {s:.3f}")]
    assert gce[0][1] == "left"
    head, *body = _cells(E.seed_table(recs, ["gce", "ce"], ["sym:0.4"], ("test_acc",), fmt="html"))
    assert [c[2] for c in head] == ["loss", "metric", "sym:0.4", "n"]
    assert [c[2] for c in body[0]] == ["gce", "test_acc", f"{m:.3f} ± {s:.3f}", "3"]
    assert [c[2] for c in body[1]] == ["ce", "test_acc", "0.400 ± 0.000", "1"]
    with pytest.raises(ValueError, match="fmt"):
        E.seed_table(recs, ["ce"], ["sym:0.4"], fmt="latex")


def test_page_note_states_the_facts_and_the_mode_line():
    note = book.page_note(torch.device("cpu"), True, data="digits, 40 % symmetric noise", model="MLP").data
    assert 'class="admonition note"' in note
    assert "<b>Data:</b> digits, 40 % symmetric noise" in note and "<b>Model:</b> MLP" in note
    assert runtime.mode_line(torch.device("cpu"), True) in note and "QUICK" in note
    assert "FULL mode" in book.page_note(torch.device("cpu"), False, data="x").data
    assert "&lt;i&gt;" in book.page_note(torch.device("cpu"), True, data="<i>").data


def test_checks_and_provenance_are_collapsed_boxes():
    box = book.checks({"max |Huber(δ=4) − MSE/2|": 2.2e-16, "argmin": 0.25}).data
    assert box.startswith('<details class="noisyloss-details">') and box.endswith("</details>")
    assert "<summary>Checks (2)</summary>" in box and " open" not in box
    assert [c[2] for c in _cells(box)[1]] == ["max |Huber(δ=4) − MSE/2|", "2.2e-16"]
    assert [c[2] for c in _cells(box)[2]] == ["argmin", "0.250"]
    recs = [_record("ce", 0, 0.4)]
    prov = book.provenance("16 runs (68 s) -> /tmp/noisyloss-runs/x.jsonl", recs).data
    assert prov.startswith("<details") and prov.count("<summary>") == 1
    assert "/tmp/noisyloss-runs/x.jsonl" in prov and html.escape(book.provenance_line(recs)) in prov
    assert "a13325c69d" in prov
    for empty in (lambda: book.checks({}), lambda: book.provenance()):
        with pytest.raises(ValueError):
            empty()
