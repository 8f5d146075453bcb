"""False-positive rate and power of the A1 and A2 tests on the calibration's families
(staircase.claims.calibration, staircase.claims.families): the classes the calibration must cover,
and rates checked on small ensembles of a few families (the workflow's calibration measures all)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from staircase.claims import calibration, families, synthetic
from staircase.core import steptest

REPO_CONFIG = "config.yaml"
ALPHA, MIN_RATIO = 0.05, 2.0


@pytest.fixture(scope="module")
def plan():
    config = yaml.safe_load((Path(__file__).resolve().parents[1] / REPO_CONFIG).read_text())
    return calibration.schedules(config)


def family(name: str) -> families.Family:
    return next(f for f in families.FAMILIES if f.name == name)


def test_the_schedules_are_those_of_the_experiments_the_tests_judge(plan):
    assert "6000:10/1000/50" in plan and "3000:10/1000/50" in plan  # fit1d; the PDE experiments
    assert not any(key.startswith("1500:") for key in plan)  # methods experiments are not tagged A1/A2/A4


def test_the_families_cover_the_classes_of_issue_23():
    nulls = [f.name for f in families.FAMILIES if f.null]
    power = [f.name for f in families.FAMILIES if not f.null]
    assert len(nulls) >= 12 and len(power) >= 8 and len(set(nulls + power)) == len(families.FAMILIES)
    for needed in ("outlier episodes", "trained spectra re-timed in one growth phase", "share one narrow growth phase"):
        assert any(needed in name for name in nulls), needed
    assert any("regular one-eigenvalue stairs, holds 3x" in name for name in power)
    assert {f"loss drops {lag} measurements after each rise" for lag in range(4)} <= set(power)


@pytest.mark.parametrize(
    "fam", [f for f in families.FAMILIES if f.draw not in families.NEEDS_POOL], ids=lambda fam: fam.name
)
def test_every_family_draws_a_finite_case_on_every_schedule(fam, plan):
    rng = np.random.default_rng(0)
    for steps in plan.values():
        case = fam.draw(steps.astype(float), rng, None)
        arrays = case[:2] if fam.test == "A2" else case[:1]
        assert all(np.isfinite(a).all() and len(a) == len(steps) for a in arrays)


def test_retiming_a_spectrum_follows_the_new_timing(plan):
    """A spectrum that moved in three bursts, re-timed along a straight line, moves steadily."""
    steps = plan["3000:10/1000/50"].astype(float)
    shift = synthetic.bursts(steps, [0.2, 0.5, 0.8], [2.0, 2.0, 2.0])
    real = (steps, synthetic.moving_spectra(shift, -np.arange(40) * 0.5), 1e-3)
    spectra, eps, _ = families.retime(steps, real, steps / steps[-1])
    x = steptest.spectral_progress(spectra, eps)
    assert np.corrcoef(x, steps)[0, 1] > 0.99
    assert steptest.spectral_progress(real[1], eps)[-1] == pytest.approx(x[-1], rel=0.1)


def test_retiming_puts_no_burst_into_a_noisy_spectrum(plan):
    """A null must not burst where the test looks: a spectrum that rises steadily while its deep
    eigenvalues carry decades of numerical noise (as trained Gram spectra do), re-timed along a
    straight line, gets no interval with more than a few times the line's own share of the progress.
    Adding the seed's noise at other times (as the family once did) failed this: 15-29 % in one
    interval on trained spectra."""
    steps = plan["3000:10/1000/50"].astype(float)
    rng = np.random.default_rng(3)
    logs = -np.arange(40)[None, :] * 0.5 + 6.0 * (steps / steps[-1])[:, None] - 2.0
    logs = np.where(logs < -12, -12 + rng.normal(0, 1.5, logs.shape), logs + rng.normal(0, 0.01, logs.shape))
    real = (steps, 10.0 ** -np.sort(-logs, axis=1), 1e-3)
    spectra, eps, _ = families.retime(steps, real, steps / steps[-1])
    x = steptest.spectral_progress(spectra, eps)
    assert np.diff(x).max() / (x[-1] - x[0]) < 3 * np.diff(steps).max() / steps[-1]


def test_a1_on_one_phase_rises_and_regular_stairs(plan):
    """The audit's decision (p <= alpha and effect >= MIN_RATIO): at most alpha on one growth phase,
    at least half of the regular one-eigenvalue stairs with holds 3x the motion (issue 23)."""
    null = pd_rows(family("one growth phase, six shapes"), plan, 100)
    stairs = pd_rows(family("regular one-eigenvalue stairs, holds 3x the motion"), plan, 30)
    assert calibration.rate(calibration.unit_decisions(null, ALPHA, MIN_RATIO), ALPHA)["rate"] <= ALPHA
    assert calibration.rate(calibration.unit_decisions(stairs, ALPHA, MIN_RATIO), ALPHA)["rate"] >= 0.5


def test_a2_false_positive_rate_and_power(plan):
    null = pd_rows(family("uncoupled loss"), plan, 150)
    coupled = pd_rows(family("coupled loss"), plan, 100)
    assert calibration.rate(null["p_value"], ALPHA)["rate"] <= ALPHA
    # The lag-tolerant A2 (issue 23) has ~0.24 power on these families, published in docs/claims.md: rises at
    # the start and end of growth get narrow windows. Its must-pass fixture is in test_steptest; here the
    # power must stay well above the false-positive rate, so a test that lost all power still fails.
    assert calibration.rate(coupled["p_value"], ALPHA)["rate"] >= 3 * ALPHA


def pd_rows(fam, plan, size):
    import pandas as pd

    return pd.DataFrame(calibration.family_rows(fam, plan, size, 1, None, n_null=100, window=20))


def test_rates_come_with_their_interval():
    r = calibration.rate(np.array([0.01] * 5 + [0.5] * 95), 0.05)
    assert r["draws"] == 100 and r["rate"] == 0.05 and r["ci_low"] < 0.05 < r["ci_high"]


def test_a_cell_of_seeds_is_judged_as_the_audit_judges_it():
    """A cell's decision is steptest.staircase_verdict over its seeds (Fisher p, median effect)."""
    import pandas as pd

    frame = pd.DataFrame(
        {"unit": [0, 0, 1, 1], "cell_seed": [0, 1, 0, 1]}
        | {"p_value": [0.01, 0.02, 0.01, 0.9], "effect": [3.0, 4.0, 3.0, 1.0]}
    )
    decided = calibration.unit_decisions(frame, ALPHA, MIN_RATIO)
    assert decided[0] == pytest.approx(steptest.fisher([0.01, 0.02])) and decided[1] == 1.0


def test_the_maps_binomial_test_errs_as_often_as_its_cells_allow():
    # cells calibrated at or below alpha: the map's test errs at most alpha; none passing by chance: never
    assert calibration.map_false_positive_rate(0.0, 57, 0.05) == 0.0
    assert calibration.map_false_positive_rate(0.05, 57, 0.05) <= 0.05
    rates = [calibration.map_false_positive_rate(q, 57, 0.05) for q in (0.01, 0.03, 0.05, 0.1)]
    assert rates == sorted(rates)
    # must fail: cells that pass twice as often as alpha make the map's test err most of the time
    assert calibration.map_false_positive_rate(0.1, 57, 0.05) > 0.3
