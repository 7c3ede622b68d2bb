"""Studies: the files load and check in both forms, and the published figures are judged
against the measured replicates by the rule the report states."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats

from pipeline.config.study import load_study, with_overrides
from pipeline.errors import ConfigError
from pipeline.report import published
from pipeline.report.frame import SweepRuns
from tests.helpers import ROOT

STUDIES = sorted((ROOT / "conf" / "study").glob("*.yaml"))


def test_the_studies_cover_the_published_claims():
    names = {p.stem for p in STUDIES}
    assert {"glorot_bengio_2010", "seed_repro", "depth", "losses"} <= names


@pytest.mark.parametrize("path", STUDIES, ids=lambda p: p.stem)
def test_every_study_loads_and_its_quick_form_is_smaller(path):
    full, quick = load_study(path), load_study(path, quick=True)
    assert full.config.quick, "a study without a quick form cannot be tried in minutes"
    # Epochs x replicates x configurations x hidden units: what the training time scales with.
    cost = [s.sweep.base.training.epochs * s.sweep.repeats * _points(s)
            * sum(s.sweep.base.model.hidden_layers or (1,)) for s in (full, quick)]
    assert cost[1] < cost[0]
    for cell in full.config.published:  # every published figure is a configuration it trains
        assert 0 < full.config.expected(cell) <= 1


def _points(study) -> int:
    from pipeline.config import expand_grid

    return len(expand_grid(study.sweep))


def test_overrides_reach_nested_keys_and_whole_grid_axes():
    data = {"repeats": 1, "base": {"training": {"epochs": 5}},
            "grid": {"model.hidden_layers": [[8], [8, 8]]}}
    out = with_overrides(data, {"repeats": 2, "base.training.epochs": 1,
                                "grid.model.hidden_layers": [[8]]}, "s")
    assert out == {"repeats": 2, "base": {"training": {"epochs": 1}},
                   "grid": {"model.hidden_layers": [[8]]}}
    assert data["base"]["training"]["epochs"] == 5  # the sweep as read is left alone


def _study_files(tmp_path, where: str) -> str:
    (tmp_path / "s.yaml").write_text(
        "name: s\ndataset: tiny\nbase: {model: {hidden_layers: [4]}}\n"
        "grid: {model.hidden_activation: [relu, tanh]}\n")
    (tmp_path / "study.yaml").write_text(
        f"name: st\ntitle: t\nsweep: s.yaml\npublished_as: error_percent\n"
        f"published:\n  - {{value: 2.0, where: {where}}}\nquick: {{repeats: 1}}\n")
    return str(tmp_path / "study.yaml")


def test_a_published_cell_the_sweep_does_not_train_is_refused_with_its_place(tmp_path):
    with pytest.raises(ConfigError, match=r"study.yaml: published\[0\]\.where .* matches no "):
        load_study(_study_files(tmp_path, "{model.hidden_activation: sigmoid}"))
    assert load_study(_study_files(tmp_path, "{model.hidden_activation: tanh}"))


def _runs(cells: dict[str, list[float]], status: dict[str, list[str]] | None = None):
    rows = []
    for act, values in cells.items():
        for r, v in enumerate(values):
            st = (status or {}).get(act, ["finished"] * len(values))[r]
            rows.append({"run_id": f"{act}{r}", "cell": act, "replicate": r, "status": st,
                         "hidden_activation": act, "test_accuracy": v})
    frame = pd.DataFrame(rows)
    return SweepRuns("e", "0", "p", frame, ["hidden_activation"],
                     {"hidden_activation": "model.hidden_activation"}, [])


def test_published_values_are_judged_by_the_cells_t_interval(tmp_path):
    study = load_study(_study_files(tmp_path, "{model.hidden_activation: tanh}"))
    # 2% error = 0.98 accuracy; these three replicates' t-interval holds it.
    inside = [0.975, 0.981, 0.986]
    got = published.compare(study, _runs({"tanh": inside, "relu": [0.9, 0.91]}))
    [row] = got.table.to_dict("records")
    low, high = stats.t.interval(0.95, 2, loc=np.mean(inside), scale=stats.sem(inside))
    assert row["95% interval"] == f"[{low:.4f}, {high:.4f}]"
    assert row["verdict"].startswith("agrees") and row["published"] == "2% error"
    assert got.lines[0].endswith("1 of 1 published values lie inside the measured 95% intervals.")
    far = published.compare(study, _runs({"tanh": [0.990, 0.991, 0.992]}))
    assert far.table["verdict"][0] == "differs: measured 0.0110 above the published value"


def test_one_replicate_or_a_diverged_one_is_never_called_agreement(tmp_path):
    study = load_study(_study_files(tmp_path, "{model.hidden_activation: tanh}"))
    got = published.compare(study, _runs({"tanh": [0.98, np.nan]},
                                         {"tanh": ["finished", "diverged"]}))
    row = got.table.iloc[0]
    assert row["replicates"] == 1 and row["diverged"] == 1
    assert row["verdict"] == "one replicate: no interval to judge by"
    assert "(1 cells had fewer than 2 finished replicates)" in got.lines[0]


def test_the_order_line_is_kendalls_tau_over_the_cells():
    table = pd.DataFrame({"configuration": list("abcd"),
                          "published test_accuracy": [0.99, 0.98, 0.97, 0.96],
                          "measured test_accuracy": [0.95, 0.96, 0.94, 0.93]})
    tau, p = stats.kendalltau(table.iloc[:, 1], table.iloc[:, 2])
    line = published.ranking_line(table, "test_accuracy")
    assert f"Kendall's tau {tau:+.2f} (p = {p:.2g})" in line
    assert "published best a, measured best b" in line


def _layer_diag(norms: dict[str, list[list[float]]]) -> pd.DataFrame:
    """Long diagnostics rows: per configuration, per replicate, grad norms of layers 1..n at
    initialization (step 0) and after epoch 2."""
    rows = []
    for label, replicates in norms.items():
        for r, values in enumerate(replicates):
            for step, scale in ((0, 1.0), (2, 3.0)):
                rows += [{"run_id": f"{label}{r}", "configuration": label, "status": "finished",
                          "diagnostic": f"diag.h{k}.grad_norm", "step": step, "value": v * scale}
                         for k, v in enumerate(values, 1)]
    return pd.DataFrame(rows)


def test_the_gradient_ratio_is_first_over_last_layer_per_configuration():
    from pipeline.report import layers

    diag = _layer_diag({"sigmoid": [[0.01, 0.1, 1.0], [0.04, 0.2, 1.0]],
                        "relu": [[1.0, 1.0], [2.0, 1.0]]})
    table = layers.gradient_ratios(diag, "configuration").set_index("configuration")
    # geometric mean of 0.01 and 0.04 is 0.02; the same at both steps (both scaled by 3)
    assert table.loc["sigmoid", "first / last layer, at initialization"] == pytest.approx(0.02)
    assert table.loc["sigmoid", "first / last layer, after the last epoch"] == pytest.approx(0.02)
    assert table.loc["relu", "first / last layer, at initialization"] == pytest.approx(2 ** 0.5)
    assert table.loc["sigmoid", "layers"] == 3 and table.loc["relu", "layers"] == 2
    rows = layers.by_layer(diag, "grad_norm")
    assert set(rows["when"]) == {"at initialization", "after the last epoch"}
    assert sorted(rows["step"].unique()) == [1, 2, 3]  # the layer, drawn on the x axis


def test_only_networks_deeper_than_one_layer_read_per_layer_keys():
    from pipeline.report import layers

    frame = pd.DataFrame({"run_id": ["a", "b"], "cell": ["a", "b"],
                          "hidden_layers": ["[8]", "[8, 8, 8]"]})
    sweep = SweepRuns("e", "0", "p", frame, ["hidden_layers"],
                      {"hidden_layers": "model.hidden_layers"}, [])
    assert layers.depth(sweep) == 3
    assert layers.keys(3)[:3] == ["diag.h1.grad_norm", "diag.h1.dead", "diag.h1.sat"]
    assert layers.keys(1) == [] and len(layers.keys(3)) == 9


def test_a_bad_study_is_one_line_and_exit_2_before_anything_is_written(tmp_path, capsys):
    from pipeline.cli import run_job
    from tests.helpers import load_job

    study = load_job("study")
    out = tmp_path / "sweep.yaml"
    bad = _study_files(tmp_path, "{model.hidden_activation: sigmoid}")
    assert run_job(study.main, ["--study", bad, "--write-sweep", str(out)], prog="study") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("study: error: ") and "matches no" in err[0]
    assert not out.exists()
    good = _study_files(tmp_path, "{model.hidden_activation: tanh}")
    assert run_job(study.main, ["--study", good, "--quick", "--write-sweep", str(out)]) == 0
    assert load_study(good, quick=True).sweep_data == yaml.safe_load(out.read_text())


def test_a_study_metric_the_runs_lack_is_one_clear_error(tmp_path):
    from pipeline.errors import PipelineError

    study = load_study(_study_files(tmp_path, "{model.hidden_activation: tanh}"))
    runs = _runs({"tanh": [0.9, 0.91]})
    runs.runs = runs.runs.drop(columns="test_accuracy")
    with pytest.raises(PipelineError, match="metric 'test_accuracy' is not among the runs'"):
        published.compare(study, runs)
