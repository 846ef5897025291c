"""The leaderboard: its grid (every registered loss at its paper's setting), the summary of its
records, the reruns every build chooses and checks, the records file the book ships, and the book's
bibliography and API page that the pages link to."""
from __future__ import annotations

import json
import random
import re
import statistics
import warnings
from pathlib import Path

import pytest

from noisyloss.experiments import RunConfig, leaderboard, load_records, run
from noisyloss.registry import LOSSES, PRESETS, parse_spec

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "book" / "results" / "leaderboard.jsonl"
PAGE = ROOT / "book" / "leaderboard.ipynb"


# ------------------------------------------------------------------------------------------------
# the grid
# ------------------------------------------------------------------------------------------------
def test_the_grid_covers_every_registered_loss_on_both_sets_with_3_seeds_and_5_noises():
    assert len(LOSSES) >= 25
    cells = [(c.dataset, c.loss.partition(":")[0], c.noise, c.seed) for c in leaderboard.configs()]
    want = {(d, loss, n, s) for d in ("synth10", "synth100") for loss in LOSSES
            for n in ("sym:0.2", "sym:0.4", "sym:0.6", "sym:0.8", "pair:0.4") for s in (0, 1, 2)}
    assert len(cells) == len(set(cells)) and set(cells) == want
    assert all(c.epochs == 20 and c.quick for c in leaderboard.configs())


@pytest.mark.parametrize("dataset, suffix, other", [("synth10", "cifar10", "cifar100"),
                                                     ("synth100", "cifar100", "cifar10")])
def test_paper_setting_is_the_preset_of_the_dataset_then_the_other_then_the_defaults(dataset, suffix, other):
    for loss in LOSSES:
        spec, source = leaderboard.paper_setting(loss, dataset)
        if loss == "gce_prune":
            continue
        if f"{loss}_{suffix}" in PRESETS:
            assert (spec, source) == (PRESETS[f"{loss}_{suffix}"].spec, PRESETS[f"{loss}_{suffix}"].source)
        elif f"{loss}_{other}" in PRESETS:
            assert spec == PRESETS[f"{loss}_{other}"].spec
            assert source.startswith(PRESETS[f"{loss}_{other}"].source) and "none is given" in source
        else:
            assert (spec, source) == (loss, "the registry's defaults (no preset)")


@pytest.mark.parametrize("dataset, preset", [("synth10", "gce_prune_cifar10"), ("synth100", "gce_prune_cifar100")])
def test_paper_setting_scales_the_pruning_epochs_of_gce_prune_to_the_run(dataset, preset):
    paper = parse_spec(PRESETS[preset].spec)[1]
    spec, source = leaderboard.paper_setting("gce_prune", dataset)
    ours = parse_spec(spec)[1]
    for name in ("start_prune", "prune_every"):  # the paper's 120 epochs -> our 20
        assert ours[name] == max(1, round(paper[name] * 20 / 120))
    assert ours["start_prune"] < paper["start_prune"]
    assert (ours["q"], ours["k"]) == (paper["q"], paper["k"])
    assert "scaled by 20/120" in source
    assert leaderboard.paper_setting("gce_prune", dataset, epochs=120)[0].endswith(
        f"start_prune={paper['start_prune']},prune_every={paper['prune_every']}")


def test_every_registered_loss_but_ce_names_one_paper():
    named = [loss for losses in leaderboard.PAPERS.values() for loss in losses]
    assert len(named) == len(set(named))
    assert set(named) == set(LOSSES) - {"ce"}


# ------------------------------------------------------------------------------------------------
# the reruns
# ------------------------------------------------------------------------------------------------
def _fake(i: int, device: str) -> dict:
    return {"key": f"run-{i:03d}", "device": device}


POOL = [_fake(i, f"cpu (x86_64, {1 + i % 2} threads)") for i in range(60)] + \
       [_fake(100 + i, "NVIDIA H200") for i in range(20)]


def test_the_reruns_of_one_commit_are_always_the_same_whatever_the_file_order():
    chosen = leaderboard.select_reruns(POOL, "a9c21adf", "cpu (x86_64, 2 threads)")
    shuffled = random.Random(0).sample(POOL, len(POOL))
    assert len(chosen) == 3
    assert leaderboard.select_reruns(shuffled, "a9c21adf", "cpu (x86_64, 2 threads)") == chosen


def test_other_commits_rerun_other_records():
    keys = {tuple(r["key"] for r in leaderboard.select_reruns(POOL, f"commit {i}", "cpu (x86_64, 2 threads)"))
            for i in range(10)}
    assert len(keys) == 10


def test_the_reruns_are_records_of_this_kind_of_device_whatever_the_thread_count():
    for commit in ("a", "b", "c", "d"):
        cpu = leaderboard.select_reruns(POOL, commit, "cpu (x86_64, 8 threads)")
        assert all(r["device"].startswith("cpu (x86_64") for r in cpu) and len(cpu) == 3
        assert all(r["device"] == "NVIDIA H200" for r in leaderboard.select_reruns(POOL, commit, "NVIDIA H200"))
    assert leaderboard.select_reruns(POOL, "a", "NVIDIA A100") == []
    assert len(leaderboard.select_reruns(POOL[:2], "a", "cpu (x86_64, 1 threads)")) == 2


@pytest.fixture(scope="module")
def records():
    """Three seeds of one small run, as the runner records them."""
    return [run(RunConfig(dataset="digits", loss="gce:q=0.7", noise="sym:0.4", epochs=2, seed=seed,
                          train_subset=300, quick=True), device="cpu", progress=False).record for seed in (0, 1, 2)]


def test_a_rerun_of_a_record_agrees_with_it(records):
    row = leaderboard.rerun(records[0], "cpu")
    assert row["agrees"] is True
    assert row["test_acc: record"] == records[0]["final"]["test_acc"]
    assert abs(row["test_acc: rerun"] - row["test_acc: record"]) <= leaderboard.RERUN_TOLERANCE["test_acc"]


@pytest.mark.parametrize("metric", ["test_acc", "memorised"])
def test_a_rerun_of_a_record_that_the_code_no_longer_reproduces_disagrees(records, metric):
    drifted = {**records[1], "final": {**records[1]["final"]}}
    drifted["final"][metric] += 2 * leaderboard.RERUN_TOLERANCE[metric]
    assert leaderboard.rerun(drifted, "cpu")["agrees"] is False


def test_a_rerun_of_a_diverged_record_agrees_when_it_diverges_again_and_warns_of_nothing():
    cfg = RunConfig(dataset="digits", loss="ce", noise="sym:0.4", lr=1e12, epochs=2, train_subset=200, quick=True)
    with pytest.warns(RuntimeWarning, match="diverged"):
        record = run(cfg, device="cpu", progress=False).record
    assert record["final"]["diverged"] == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning would be stderr on the page, which fails the book's build
        row = leaderboard.rerun(record, "cpu")
    assert row["agrees"] is True and row["test_acc: rerun"] is None


def test_the_summary_averages_the_seeds_of_each_setting(records):
    (row,) = leaderboard.summary(records)
    assert (row["dataset"], row["noise"], row["loss"], row["spec"], row["n"], row["diverged"]) == \
        ("digits", "sym:0.4", "gce", "gce:q=0.7", 3, 0)
    for metric in ("test_acc", "memorised"):
        values = [r["final"][metric] for r in records]
        mean, std, n = row[metric]
        assert mean == pytest.approx(statistics.fmean(values)) and std == pytest.approx(statistics.stdev(values))
        assert n == 3


# ------------------------------------------------------------------------------------------------
# the shipped records file and the page
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def shipped():
    return load_records(SHIPPED)


def test_the_shipped_file_has_a_record_for_every_run_of_the_grid(shipped):
    recorded = {r["key"] for r in shipped}
    missing = [c.key() for c in (cfg.resolved("cpu") for cfg in leaderboard.configs()) if c.key() not in recorded]
    assert not missing, f"{len(missing)} runs of the grid have no record in {SHIPPED}, e.g. {missing[:2]}"
    assert {r["n"] for r in leaderboard.summary(shipped)} == {3}


def test_every_shipped_record_is_keyed_by_its_own_config(shipped):
    assert shipped
    for record in shipped:
        assert record["key"] == RunConfig(**record["config"]).key()


def test_the_shipped_records_stay_out_of_the_wheel():
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["tool"]["setuptools"]["package-data"] == {"noisyloss": ["results/*.jsonl"]}
    assert project["tool"]["setuptools"]["packages"]["find"]["include"] == ["noisyloss*"]
    assert not (ROOT / "book" / "__init__.py").exists()


def test_the_page_fetches_the_shipped_file_from_the_repository_on_colab():
    tomllib = pytest.importorskip("tomllib")
    url = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]["Repository"]
    source = "\n".join("".join(c["source"]) for c in json.loads(PAGE.read_text())["cells"])
    assert f"{url}/raw/main/book/results/leaderboard.jsonl" in source
    assert f'Path("{SHIPPED.relative_to(PAGE.parent).as_posix()}")' in source


def test_the_page_is_in_the_experiments_part_after_the_cifar_n_page():
    yaml = pytest.importorskip("yaml")
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    (part,) = [p for p in toc["parts"] if p["caption"] == "Experiments"]
    files = [c["file"] for c in part["chapters"]]
    assert files.index("book/leaderboard") == files.index("book/10_cifar10n") + 1


# ------------------------------------------------------------------------------------------------
# bibliography and API page
# ------------------------------------------------------------------------------------------------
def _bib_keys() -> set:
    return set(re.findall(r"^@\w+\{([^,\s]+),", (ROOT / "book" / "references.bib").read_text(), re.MULTILINE))


def _cited() -> set:
    texts = [p.read_text(encoding="utf-8") for p in (ROOT / "book").glob("*.md")]
    texts += ["".join("".join(c["source"]) for c in json.loads(p.read_text())["cells"] if c["cell_type"] == "markdown")
              for p in (ROOT / "book").glob("*.ipynb")]
    return {key.strip() for text in texts for group in re.findall(r"\{cite(?::\w+)?\}`([^`]+)`", text)
            for key in group.split(",")}


def test_every_citation_of_the_book_resolves():
    cited = _cited()
    assert {"ma2020normalized", "wei2022cifarn"} <= cited  # the pattern still finds the citations
    assert not cited - _bib_keys(), f"cited but not in references.bib: {sorted(cited - _bib_keys())}"


def test_the_bibliography_has_the_sources_of_the_new_losses_and_chapters():
    assert {"patrini2017", "ma2020normalized", "zhou2021asymmetric", "ye2023anl", "liu2020elr", "zhang2018gce",
            "wei2022smooth", "leng2022polyloss", "feng2020taylor", "han2018coteaching", "arpit2017closer",
            "wei2022cifarn"} <= _bib_keys()
    entry = re.search(r"@inproceedings\{ye2023anl,.*?\n\}", (ROOT / "book" / "references.bib").read_text(), re.DOTALL)
    assert "Li, Xiaoqiang" in entry.group(0)  # as the NeurIPS 2023 proceedings list the authors


def test_the_api_page_lists_every_registered_loss_with_its_function_and_module():
    api = (ROOT / "book" / "api.md").read_text()
    rows = dict(re.findall(r"^\| `([a-z0-9_]+)` \|(.*)\|$", api, re.MULTILINE))
    assert set(rows) == set(LOSSES)
    for name, row in rows.items():
        assert "{py:class}`" in row or "{py:func}`" in row, name
