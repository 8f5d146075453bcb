"""False-positive rate and power of the A1 and A2 tests on synthetic ensembles (staircase.claims.calibration):
the rates docs/claims.md reports, checked on ensembles of 200 draws each."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from staircase.claims import calibration

REPO_CONFIG = "config.yaml"


@pytest.fixture(scope="module")
def plan():
    from pathlib import Path

    config = yaml.safe_load((Path(__file__).resolve().parents[1] / REPO_CONFIG).read_text())
    return calibration.schedules(config)


def test_the_schedules_are_those_of_the_experiments_the_tests_judge(plan):
    assert "6000:10/1000/50" in plan and "3000:10/1000/50" in plan  # fit1d; the PDE experiments
    assert not any(key.startswith("1500:") for key in plan)  # methods experiments are not tagged A1/A2/A4


@pytest.fixture(scope="module")
def a1(plan):
    return calibration.a1_ensemble(plan, 200, seed=1, rank_only=False, n_null=100)


@pytest.fixture(scope="module")
def a2(plan):
    return calibration.a2_ensemble(plan, 200, seed=1, n_null=200)


def test_a1_false_positive_rate_and_power(a1, a2):
    table = calibration.summary(a1, a2, alpha=0.05, min_ratio=2.0).set_index(["test", "measures"])
    assert table.loc[("A1", "false-positive rate"), "draws"] == 200
    # the decision rule of the audit (p <= alpha and a stall twice as long as the motion around it)
    assert table.loc[("A1", "false-positive rate"), "rate"] <= 0.05
    assert table.loc[("A1", "power"), "rate"] >= 0.3


def test_a2_false_positive_rate_and_power(a1, a2):
    table = calibration.summary(a1, a2, alpha=0.05, min_ratio=2.0).set_index(["test", "measures"])
    assert table.loc[("A2", "false-positive rate"), "rate"] <= 0.05
    assert table.loc[("A2", "power"), "rate"] >= 0.5


def test_rates_come_with_their_interval():
    r = calibration.rate(np.array([0.01] * 5 + [0.5] * 95), 0.05)
    assert r["draws"] == 100 and r["rate"] == 0.05 and r["ci_low"] < 0.05 < r["ci_high"]


def test_a_cell_of_seeds_is_judged_as_the_audit_judges_it(a1, a2):
    """A regime-map or sweep cell combines its seeds (Fisher p, median stall ratio) as
    steptest.staircase_verdict does; its false-positive rate stays below alpha, its power well
    above it."""
    table = calibration.summary(a1, a2, alpha=0.05, min_ratio=2.0, cell_seeds=2, map_cells=57)
    cell = table[table["test"].str.startswith("A1 per cell of 2 seeds")].set_index("measures")
    assert cell.loc["false-positive rate", "draws"] == 100 and cell.loc["false-positive rate", "rate"] <= 0.05
    assert cell.loc["power", "rate"] >= 0.2
    smooth = a1[a1["kind"] == "smooth"].head(4)
    from staircase.core.steptest import fisher

    first = calibration.cell_p_values(smooth, 2, 0.05, 2.0)[0]
    pair = smooth.head(2)
    p = fisher(pair["p_value"])
    expected = p if pair["hold_ratio"].median() >= 2.0 and p <= 0.05 else 1.0
    assert first == expected


def test_the_maps_binomial_test_errs_as_often_as_its_cells_allow():
    # cells calibrated at or below alpha: the map's test errs at most alpha; none passing by chance: never
    assert calibration.map_false_positive_rate(0.0, 57, 0.05) == 0.0
    assert calibration.map_false_positive_rate(0.05, 57, 0.05) <= 0.05
    rates = [calibration.map_false_positive_rate(q, 57, 0.05) for q in (0.01, 0.03, 0.05, 0.1)]
    assert rates == sorted(rates)
    # must fail: cells that pass twice as often as alpha make the map's test err most of the time
    assert calibration.map_false_positive_rate(0.1, 57, 0.05) > 0.3
