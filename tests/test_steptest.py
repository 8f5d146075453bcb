"""The A1-A3 tests (staircase.core.steptest) on series with a known answer: what must pass, what must fail."""

from __future__ import annotations

import numpy as np
import pytest

from staircase.claims import synthetic
from staircase.core import steptest
from staircase.core.schedule import log_schedule

STEPS = log_schedule(3000, 10, 1000, 50).astype(float)
REGULAR = -np.arange(40) * 0.5 - 1.0  # log10 eigenvalues half a decade apart
PAIRS = np.sort(np.concatenate([-np.arange(20) * 2.0, -np.arange(20) * 2.0 - 0.3]))[::-1] - 1.0


def spectra(shift, initial=REGULAR, seed=0, noise=0.02):
    return synthetic.moving_spectra(shift, initial, 0.05, noise, 0.5, np.random.default_rng(seed))


MIN_RATIO = 2.0  # the schema's default audit.a1_min_stall_ratio
BURSTS = synthetic.bursts(STEPS, [0.15, 0.45, 0.75], [2.5, 2.5, 2.5])
LINEAR = 7.5 * STEPS / STEPS[-1]


# ---- the integer core ------------------------------------------------------------------------------
def test_rounded_ramp_is_not_a_staircase_and_a_four_level_staircase_is():
    t = np.arange(200) * 10.0
    ramp = steptest.levels_test(t, np.round(np.linspace(5, 25, 200)), n_null=200)
    assert ramp["p_value"] > 0.05
    stair = steptest.levels_test(t, np.repeat([5.0, 10, 15, 20], 50), n_null=200)
    assert stair["p_value"] <= 0.05 and stair["statistic"] > np.log(10)


@pytest.mark.parametrize("shape", synthetic.SHAPES)
def test_smooth_rounded_rises_of_every_shape_do_not_pass(shape):
    rng = np.random.default_rng(3)
    u = STEPS / STEPS[-1]
    levels = np.round(4 + 20 * synthetic._shape(shape, u, rng))
    assert steptest.levels_test(STEPS, levels, n_null=200)["p_value"] > 0.05


def test_hold_times_leave_out_the_cut_first_and_last_levels_and_halve_skipped_ones():
    steps = np.arange(11) * 10.0
    levels = np.array([3, 3, 4, 4, 4, 6, 6, 6, 6, 7, 7], dtype=float)  # 5 skipped in one interval
    holds = steptest.hold_times(steps, levels)
    # levels 4, 5, 6 are entered and left: 4 from step 20 to 50, 5 passed within (40, 50], 6 from 50 to 90
    assert holds.tolist() == [30.0, 5.0, 40.0]


def test_plateau_prominence_of_a_valley_free_sequence_is_zero():
    assert steptest.plateau_prominence([5, 4, 3, 3, 6, 9]) == (0.0, -1)  # U-shaped: one growth phase
    prom, where = steptest.plateau_prominence([1, 1, 20, 1, 1])
    assert where == 2 and prom == pytest.approx(np.log(20))


def test_one_phase_fit_is_monotone_with_a_unimodal_rate():
    rng = np.random.default_rng(0)
    t = np.arange(100.0)
    y = 10 / (1 + np.exp(-(t - 40) / 8)) + rng.normal(0, 0.2, len(t))
    fit = steptest.one_phase_fit(t, y)
    rate = np.diff(fit)
    assert (rate >= -1e-9).all()
    peak = int(np.argmax(rate))
    assert (np.diff(rate[: peak + 1]) >= -1e-9).all() and (np.diff(rate[peak:]) <= 1e-9).all()
    assert np.sqrt(np.mean((fit - y) ** 2)) < 0.3


# ---- A1 on the spectrum ------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_spectrum_moving_in_bursts_passes(seed):
    res = steptest.staircase_test(STEPS, spectra(BURSTS, seed=seed), 1e-3, n_null=200, seed=seed)
    assert res.rank_rise >= 10 and res.p_value <= 0.05 and res.hold_ratio > 10 * MIN_RATIO


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_spectrum_moving_steadily_fails(seed):
    res = steptest.staircase_test(STEPS, spectra(LINEAR, seed=seed), 1e-3, n_null=200, seed=seed)
    assert res.rank_rise >= 10 and res.p_value > 0.05 and res.hold_ratio < MIN_RATIO


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_spectral_gaps_make_the_rank_look_like_a_staircase_but_do_not_pass(seed):
    """Eigenvalues in pairs two decades apart, moving up steadily: the eps-rank holds for long
    between the pairs, and its own plateau test is fooled; A1, which reads the spectrum, is not
    (no stall at least MIN_RATIO times as long as the motion around it that beats the null)."""
    sp = spectra(8 * STEPS / STEPS[-1], PAIRS, seed=seed)
    ranks = (sp > 1e-3).sum(axis=1).astype(float)
    rank_only = steptest.levels_test(STEPS, ranks, 200, seed)
    assert rank_only["p_value"] <= 0.05 and np.exp(rank_only["statistic"]) >= MIN_RATIO
    res = steptest.staircase_test(STEPS, sp, 1e-3, n_null=200, seed=seed)
    assert not (res.p_value <= 0.05 and res.hold_ratio >= MIN_RATIO)


def test_spectral_progress_ignores_the_spacing_of_the_spectrum():
    """The same steady motion of a regular and of a paired spectrum gives the same progress."""
    a = steptest.spectral_progress(synthetic.moving_spectra(LINEAR, REGULAR), 1e-3)
    b = steptest.spectral_progress(synthetic.moving_spectra(LINEAR, PAIRS), 1e-3)
    np.testing.assert_allclose(np.diff(a), np.diff(b), atol=1e-9)
    np.testing.assert_allclose(np.diff(a), np.diff(LINEAR) * np.diff(a).sum() / np.ptp(LINEAR), rtol=0.3)


def test_no_rise_or_a_diverged_tail_is_handled():
    flat = spectra(np.zeros(len(STEPS)))
    res = steptest.staircase_test(STEPS, flat, 1e-3, n_null=50)
    assert res.p_value == 1.0 and res.statistic == 0.0
    sp = spectra(BURSTS)
    sp[100:] = np.nan  # a diverged seed: only the leading finite part is tested
    res = steptest.staircase_test(STEPS, sp, 1e-3, n_null=50)
    assert len(res.steps) == 100


def test_deterministic_for_a_seed():
    sp = spectra(BURSTS)
    a = steptest.staircase_test(STEPS, sp, 1e-3, n_null=100, seed=4)
    b = steptest.staircase_test(STEPS, sp, 1e-3, n_null=100, seed=4)
    assert (a.p_value, a.statistic, a.null_q95) == (b.p_value, b.statistic, b.null_q95)


# ---- A2, A3: coupling -----------------------------------------------------------------------------
def loss_pair(coupled: bool, seed: int = 0):
    ranks = (spectra(BURSTS, seed=seed) > 1e-3).sum(axis=1).astype(float)
    rng = np.random.default_rng(seed)
    trend = -3 * (STEPS / STEPS[-1]) ** 0.5
    log_loss = 0.3 * trend - 0.2 * (ranks - ranks[0]) if coupled else trend
    return ranks, log_loss + rng.normal(0, 0.005, len(STEPS))


@pytest.mark.parametrize("seed", [0, 1])
def test_a_loss_that_drops_when_the_rank_rises_passes(seed):
    # rises spread over the run (A2's own families: tests/test_coupling.py); bursts at the very
    # start or end of the rank's active period have short windows and less power (docs/claims.md, A2)
    ranks, loss, _ = synthetic.lagged_coupling(STEPS, np.random.default_rng(seed), lag=0)
    res = steptest.coupling_test(STEPS, ranks, np.log(loss), n_null=400, seed=seed)
    assert res.p_value <= 0.05 and res.statistic > 0.7 and res.n_rises >= 4


@pytest.mark.parametrize("seed", [0, 1])
def test_a_loss_that_only_shares_the_trend_fails(seed):
    """Spearman(loss, rank) is near -1 here: both follow time; the coupling test is not fooled."""
    ranks, log_loss = loss_pair(False, seed)
    from scipy.stats import spearmanr

    assert spearmanr(log_loss, ranks).statistic < -0.8
    assert steptest.coupling_test(STEPS, ranks, log_loss, n_null=400, seed=seed).p_value > 0.05


def test_coupling_without_rises_is_nan():
    res = steptest.coupling_test(STEPS, np.full(len(STEPS), 5.0), -STEPS / 1000)
    assert res.n_rises == 0 and np.isnan(res.p_value)


def test_fisher_combination():
    assert steptest.fisher([0.01, 0.01, 0.01]) < 0.001
    assert steptest.fisher([0.5, 0.9, np.nan]) > 0.5
    assert np.isnan(steptest.fisher([np.nan]))


# ---- A1: bursts, excursions, a fit that stays sane ------------------------------------------------
def regular_stairs(k: int = 8, hold: float = 3.0, gap: float = 0.5) -> np.ndarray:
    """A shift that moves REGULAR (gap 0.5 decades) by one gap in each of k equal linear bursts,
    still for ``hold`` times a burst's length in between: one eigenvalue crosses eps per stair."""
    u = STEPS / STEPS[-1]
    motion = 1 / (k * (1 + hold) + hold)
    starts = hold * motion + np.arange(k) * (1 + hold) * motion
    return gap * np.clip((u[:, None] - starts[None, :]) / motion, 0, 1).sum(axis=1)


def test_burst_share_is_the_time_fraction_for_a_steady_motion_and_near_one_for_bursts():
    t = np.arange(101.0)
    assert steptest.burst_share(t, t)[0] == pytest.approx(steptest.BURST_FRACTION)
    assert steptest.burst_share(t, np.repeat([0.0, 1, 2, 3], [25, 25, 25, 26]))[0] == pytest.approx(1.0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_regular_one_eigenvalue_stairs_pass_by_their_bursts(seed):
    """Equal holds (3x the motion): no stall longer than its neighbours, so the stall prominence
    cannot see them; the spectrum's stillness between short bursts can."""
    sp = spectra(regular_stairs(), seed=seed, noise=0.01)
    res = steptest.staircase_test(STEPS, sp, 10**-4.25, n_null=200, seed=seed)
    assert res.rank_rise >= 7 and res.burst_p <= 0.025 and res.burst_contrast >= MIN_RATIO
    assert res.p_value == min(1.0, 2 * min(res.stall_p, res.burst_p))  # Bonferroni, fixed beforehand
    passes, _, _ = steptest.staircase_verdict([res], 0.05, MIN_RATIO)
    assert passes


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_same_spectrum_moving_steadily_does_not_pass_by_its_bursts(seed):
    sp = spectra(4.0 * STEPS / STEPS[-1], seed=seed, noise=0.01)
    res = steptest.staircase_test(STEPS, sp, 10**-4.25, n_null=200, seed=seed)
    assert res.rank_rise >= 7 and not steptest.staircase_verdict([res], 0.05, MIN_RATIO)[0]


def test_excursions_are_masked_and_counted_and_bursts_are_not():
    sp = spectra(LINEAR, seed=1)
    sp[40:43] *= 10.0**1.5  # the whole spectrum 1.5 decades up for 3 measurements, then back
    sp[120:122] /= 10.0**0.8  # and 0.8 down for 2
    keep, count = steptest.excursions(sp)
    assert count == 2 and np.flatnonzero(~keep).tolist() == [40, 41, 42, 120, 121]
    assert steptest.excursions(spectra(BURSTS, seed=1)) == (pytest.approx(np.ones(len(STEPS), bool)), 0)
    res = steptest.staircase_test(STEPS, sp, 1e-3, n_null=100, seed=1)
    assert res.excursions == 2 and len(res.steps) == len(STEPS) - 5
    assert not steptest.staircase_verdict([res], 0.05, MIN_RATIO)[0]


def test_one_phase_fit_stays_finite_and_sane_when_the_solver_returns_garbage(monkeypatch):
    """Regression (issue 23, item 9): NNLS on a +1 and a -1 intercept column once returned a curve
    of -2.5e10 on a clean five-burst staircase, and the null simulation then asked for 183 GiB. The
    fit now has one intercept column, and a solver answer that is absurd is never taken: here every
    other candidate's answer is garbage of that size with a perfect residual."""
    shift = synthetic.bursts(STEPS, [0.1, 0.3, 0.5, 0.7, 0.85], [1.5] * 5)
    levels = np.round(steptest.spectral_progress(spectra(shift, noise=0), 1e-3))
    real_nnls, calls = steptest.nnls, []

    def flaky(a, b, **kw):
        calls.append(1)
        if len(calls) % 2:
            return np.full(a.shape[1], 2.5e10) * np.where(np.arange(a.shape[1]) % 2, 1, -1), 0.0
        return real_nnls(a, b, **kw)

    monkeypatch.setattr(steptest, "nnls", flaky)
    fit = steptest.one_phase_fit(STEPS, levels)
    assert np.isfinite(fit).all() and levels.min() <= fit.min() and fit.max() <= levels.max()
    assert (np.diff(fit) >= -1e-9).all() and np.sqrt(np.mean((fit - levels) ** 2)) < 2
    res = steptest.levels_test(STEPS, levels, n_null=50)  # the null stays within the levels' range
    assert res["p_value"] <= 1 and np.ptp(res["fit"]) <= np.ptp(levels)


def test_ar1_noise_equals_the_recursion_number_for_number():
    """ar1_noise filters with scipy.signal.lfilter; the loop it replaced, here, gives the same bits."""
    for n, sigma, rho, size in [
        (1, 1.0, 0.5, 3),
        (2, 0.3, 0.9, 1),
        (200, 0.1, 0.9, 400),
        (57, 2.0, -0.4, 5),
        (30, 1.0, 0.0, 2),
    ]:
        got = steptest.ar1_noise(n, sigma, rho, np.random.default_rng(n), size=size)
        e = np.random.default_rng(n).normal(0.0, sigma, (size, n))
        if rho:
            scale = np.sqrt(1 - rho**2)
            for i in range(1, n):
                e[:, i] = rho * e[:, i - 1] + scale * e[:, i]
        assert np.array_equal(got, e)
