"""False-positive rate and power of the A1 and A2 tests on synthetic ensembles (staircase.calibration):
the rates docs/claims.md reports, checked on ensembles of 200 draws each."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from staircase import calibration

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
