"""The sweep's report settings: min_effect, typed and checked like the rest of the config."""

from __future__ import annotations

import pytest

from pipeline.config import SweepConfig, load_sweep_config, parse
from pipeline.config.schema import ReportConfig
from pipeline.errors import ConfigError
from pipeline.report import statistics


def test_min_effect_defaults_to_a_tenth_of_a_point_and_is_the_reports_default():
    sweep = parse(SweepConfig, {"name": "s", "dataset": "d"})
    assert sweep.report.min_effect == 0.001
    assert ReportConfig().min_effect == statistics.DEFAULT_MIN_EFFECT


def test_min_effect_is_read_from_a_sweep_file(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("name: s\ndataset: d\nreport: {min_effect: 0.005}\n")
    assert load_sweep_config(path).report.min_effect == 0.005


@pytest.mark.parametrize("value, message", [
    (-0.001, r"report\.min_effect: must be >= 0"),
    ("big", r"report\.min_effect"),
    (float("nan"), r"report\.min_effect: must be >= 0"),
])
def test_a_bad_min_effect_is_refused_with_its_key(value, message):
    with pytest.raises(ConfigError, match=message):
        parse(SweepConfig, {"name": "s", "dataset": "d", "report": {"min_effect": value}})


def test_an_unknown_report_key_is_refused():
    with pytest.raises(ConfigError, match=r"unknown key .report\.margin"):
        parse(SweepConfig, {"name": "s", "dataset": "d", "report": {"margin": 0.1}})
