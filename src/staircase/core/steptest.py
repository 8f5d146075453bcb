"""Is the epsilon-rank a staircase, and does the loss fall when it rises? Tests that can fail.

Claims A1 (staircase), A2 (the loss falls as the rank rises), A3 (the bound falls as it rises) and
A4 (universality) of docs/claims.md are judged by the functions here. Counting integer steps is no
evidence: a smooth curve rounded to integers climbs one "stair" per level. Nor are the rank's
plateaus alone: the rank counts Gram eigenvalues above eps, and a spectrum that moves up at a
steady pace holds the rank for long wherever two eigenvalues are far apart (gaps, pairs), so a
smoothly trained net can have a step-like rank. What makes a staircase a phenomenon of training is
that the spectrum itself stalls and then bursts: more than one growth phase of its motion at eps.

A1: :func:`staircase_test`
--------------------------
1. Spectral progress (:func:`spectral_progress`): X(t), the cumulative median rise (in decades) of
   the eigenvalues within ``band`` decades below eps, the ones about to cross. Rescaled so that it
   rises as many levels as the eps-rank does, and rounded: an integer series that climbs one level
   per eigenvalue's worth of motion, whatever the spectrum's spacing.
2. It is denoised as :mod:`staircase.core.stairs` does it (a level counts when held ``min_points``
   measurements and ``min_span`` steps) and its running maximum taken, so flicker does not count.
3. Hold times (:func:`hold_times`): for every level entered and left during the run, the steps
   between the first measurement at >= L and the first at >= L + 1; a level passed within one
   measurement interval is held half that interval. The first and last levels are left out (their
   holds are cut by the start and the end of training).
4. Statistic (:func:`plateau_prominence`): the largest *prominence* of an interior peak of log hold
   time (scipy.signal.peak_prominences): log of how many times longer the most prominent stall
   lasted than the faster motion on both sides of it; 0 without an interior peak.
5. Null model: one growth phase. :func:`one_phase_fit` is the least-squares monotone curve whose
   rate is unimodal (convex, then concave: NNLS on ramp functions, best split over a grid: linear,
   saturating, sigmoid, power-law, delayed onsets all qualify). Simulated series are that curve plus
   a random rounding phase and AR(1) noise whose size and correlation are matched to the series
   (:func:`match_noise`: the share of falling moves and the autocorrelation of the moves; the size
   at least the measured jitter of the continuous progress, :func:`jitter`), rounded, on the run's
   own steps, and scored as in 2-4. p = (1 + #{null >= observed}) / (1 + n_null).
   :func:`levels_test` is steps 2-5 on any integer series.

A2, A3: :func:`coupling_test`
-----------------------------
For a series y measured with the rank (A2: log loss; A3: the square root of the bound), its drop
rate per step in each measurement interval, and its lagged drop (:func:`lagged_drop`): at each
interval the fastest drop within it and the ``lag`` (``COUPLING_LAG`` = 3) intervals after it, so a
loss that falls a few measurements after the eigenvalue crossed eps still counts. Only the rank's
active period is compared (:func:`active_period`: its first rise to its last, widened by the lag):
a rank and a loss that share one growth phase, with rises and drops crowded into it but not
coupled rise by rise, are compared within that phase, not against the quiet intervals around it.
At every interval where the denoised rank rises (:func:`rise_intervals`), the lagged drop is
ranked among the intervals of the active period within ``window`` measurements on either side
(cut symmetrically so that the rise stays at its centre); the statistic is the mean of these
percentiles (0.5 at chance). Null: no coupling beyond a shared trend or phase: each rise moved to
a random interval of its own window. A rank-based percentile at the window's centre is unbiased
for any monotone trend within the window, so a loss that merely falls fastest early, as the rank
rises fastest early, does not pass.

Seeds are independent runs: :func:`fisher` combines their p-values (scipy.stats.combine_pvalues);
:func:`staircase_verdict` is A1's decision over seeds: the combined p at most alpha and the median
stall ratio at least a stated effect size (a tight null can make a barely longer stall significant).
The false-positive rates and power of both tests on synthetic ensembles are measured by
:mod:`staircase.claims.calibration` (``staircase calibrate``) and reported in docs/claims.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import stats
from scipy.ndimage import median_filter
from scipy.optimize import nnls
from scipy.signal import find_peaks, lfilter, peak_prominences, savgol_coeffs, savgol_filter

from staircase.core import stairs

NOISE_SIGMAS = (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5)
NOISE_RHOS = (0.0, 0.5, 0.8, 0.9)
FIT_SPLITS = 25  # candidate inflection points of the one-growth-phase fit (quantiles of the steps)
COUPLING_LAG = 3  # measurements after a rise in which a drop counts for it (A2, A3; docs/claims.md)
SPECTRAL_BAND = 1.0  # decades below eps whose eigenvalues' motion is the spectral progress (docs/claims.md)
BURST_FRACTION = 0.2  # the busiest share of the run's time whose progress the burst statistic measures
EXCURSION_DECADES = 0.3  # a spectrum this far off its running median for <= EXCURSION_POINTS points left and returned
EXCURSION_POINTS = 3


# ---- the series ----------------------------------------------------------------------------------
def _finite(steps, values) -> tuple[np.ndarray, np.ndarray]:
    steps, values = np.asarray(steps, dtype=float), np.asarray(values, dtype=float)
    ok = np.isfinite(steps) & np.isfinite(values)
    n = int(np.argmin(ok)) if not ok.all() else len(ok)  # the leading finite part (a divergence cuts it)
    return steps[:n], values[:n]


def envelope(steps, ranks, min_points: int = 2, min_span: float = 0.0) -> np.ndarray | None:
    """Running maximum of the denoised series (plateau levels of :func:`staircase.core.stairs.segment`,
    carried forward; the first plateau's level before it); None without any plateau."""
    return _running_max(stairs.plateau_levels(steps, ranks, min_points=min_points, min_span=min_span))


def _running_max(levels: np.ndarray) -> np.ndarray | None:
    """The envelope of plateau levels (NaN before the first plateau): None without any plateau."""
    known = np.flatnonzero(np.isfinite(levels))
    if not len(known):
        return None
    levels[: known[0]] = levels[known[0]]
    return np.maximum.accumulate(levels)


def hold_times(steps, ranks, min_points: int = 2, min_span: float = 0.0) -> np.ndarray:
    """Steps the denoised series spends at each level it enters and leaves during the run (see the
    module docstring); the first and the last level are left out: their holds are cut by the start
    and the end of training, and a cut hold would make its neighbour look like a plateau."""
    return _level_holds(steps, ranks, min_points, min_span)[1]


def _level_holds(steps, ranks, min_points, min_span) -> tuple[int, np.ndarray]:
    """(level of the first complete hold, the complete holds: levels first + 1 .. last - 1)."""
    steps, ranks = _finite(steps, ranks)
    return _holds_of(steps, envelope(steps, ranks, min_points, min_span) if len(steps) else None)


def _holds_of(steps: np.ndarray, env: np.ndarray | None) -> tuple[int, np.ndarray]:
    """:func:`_level_holds` from the envelope of the series at ``steps``."""
    if env is None or env[-1] - env[0] < 2:
        return -1, np.array([])
    levels = np.arange(int(env[0]) + 1, int(env[-1]))
    first = np.searchsorted(env, levels, side="left")  # index of the first measurement at >= L
    leave = np.searchsorted(env, levels + 1, side="left")
    spacing = np.diff(steps)
    return int(env[0]) + 1, np.maximum(steps[leave] - steps[first], spacing[first - 1] / 2)


def _simulated_holds(steps, sims: np.ndarray, min_points, min_span):
    """:func:`hold_times` of each row of ``sims`` at ``steps``, which the observed series' test has
    checked: a finite, integer-valued ``sims`` skips the per-series checks of :func:`hold_times` (the
    null simulation's hot loop, hundreds of series a test); anything else takes that route."""
    if not len(steps) or not np.isfinite(sims).all() or np.any(sims != np.round(sims)):
        return [hold_times(steps, sim, min_points, min_span) for sim in sims]
    out = []
    for sim in sims.astype(int):
        bounds = stairs._plateau_bounds(steps, sim, min_points, min_span)
        out.append(_holds_of(steps, _running_max(stairs._levels_of(bounds, len(sim))))[1])
    return out


def plateau_prominence(holds) -> tuple[float, int]:
    """(prominence, index) of the most prominent interior peak of log hold time; (0, -1) if none."""
    holds = np.asarray(holds, dtype=float)
    if len(holds) < 3:
        return 0.0, -1
    log_holds = np.log(holds)
    peaks, _ = find_peaks(log_holds, plateau_size=1)
    if not len(peaks):
        return 0.0, -1
    prom = peak_prominences(log_holds, peaks)[0]
    k = int(np.argmax(prom))
    return float(prom[k]), int(peaks[k])


def one_phase_fit(steps, values, splits: int = FIT_SPLITS) -> np.ndarray:
    """Least-squares fit of ``values`` by a nondecreasing curve whose rate rises then falls once.

    For an inflection step tau the curve is c + sum_k a_k r_k(t) with a_k >= 0 and ramps
    r_k(t) = (min(t, tau) - k)_+ for knots k <= tau (the rate steps up) and (min(t, k) - tau)_+ for
    knots k >= tau (the rate steps down to zero at k), knots at the measured steps; NNLS for each of
    ``splits`` candidate tau (quantiles of the steps), the best one kept. The intercept is one
    nonnegative column over values shifted below their minimum (a +1 and a -1 column let NNLS
    cancel two huge coefficients: a curve of -2.5e10 once, docs/claims.md), and the curve is
    clipped to the values' range, so it is always finite and never absurd.
    """
    t, y = np.asarray(steps, dtype=float), np.asarray(values, dtype=float)
    if len(t) < 3:
        return np.full(len(t), float(np.mean(y)) if len(y) else 0.0)
    low, high = float(y.min()), float(y.max())
    base = low - max(high - low, 1.0)  # c >= 0 above this base reaches every sensible start
    best, fit = np.inf, np.full(len(t), float(np.median(y)))
    for tau in np.unique(np.quantile(t, np.linspace(0, 1, splits))):
        x = _ramps(t, tau)
        scale = np.maximum(x.max(axis=0), 1e-300)
        coef, residual = nnls(x / scale, y - base, maxiter=50 * x.shape[1])
        curve = base + (x / scale) @ coef
        sane = np.isfinite(curve).all() and curve.min() >= base and curve.max() <= 2 * high - base
        if residual < best and sane:  # a solver failure (absurd coefficients) is never the best fit
            best, fit = residual, curve
    return np.clip(fit, low, high)


def _ramps(t: np.ndarray, tau: float) -> np.ndarray:
    """The design of :func:`one_phase_fit` at inflection ``tau``: intercept, rising and falling rates."""
    left, right = t[t <= tau], t[t >= tau]
    return np.hstack(
        [
            np.ones((len(t), 1)),
            np.clip(np.minimum(t[:, None], tau) - left[None, :], 0, None),
            np.clip(np.minimum(t[:, None], right[None, :]) - tau, 0, None),
        ]
    )


# ---- noise of the null ---------------------------------------------------------------------------
def ar1_noise(n: int, sigma: float, rho: float, rng: np.random.Generator, size: int = 1) -> np.ndarray:
    """(size, n) stationary AR(1) noise of standard deviation sigma and lag-1 correlation rho."""
    e = rng.normal(0.0, sigma, (size, n))
    if rho and n > 1:
        # e[i] = rho e[i-1] + scale e[i] for i >= 1, as one IIR filter (scipy.signal.lfilter; the
        # same two products and sum as the loop it replaced, so the same numbers: tests/test_steptest.py)
        scale = np.sqrt(1 - rho**2)
        e[:, 1:] = lfilter([scale], [1.0, -rho], e[:, 1:], axis=1, zi=rho * e[:, :1])[0]
    return e


def _noise_features(series: np.ndarray) -> np.ndarray:
    """(share of falling moves, lag-1 autocorrelation of the moves) of each row: both depend on
    the noise and hardly on the smooth curve under it, so no fit is needed to compare them."""
    moves = np.diff(np.atleast_2d(series), axis=1)
    falls = (moves < 0).mean(axis=1)
    centred = moves - moves.mean(axis=1, keepdims=True)
    denom = np.maximum((centred * centred).sum(axis=1), 1e-12)
    return np.stack([falls, (centred[:, 1:] * centred[:, :-1]).sum(axis=1) / denom], axis=1)


def match_noise(ranks, fit, rng: np.random.Generator, draws: int = 20, rounded: bool = True) -> tuple[float, float]:
    """(sigma, rho) of the AR(1) noise on the grid NOISE_SIGMAS x NOISE_RHOS whose (``rounded``)
    series look most like the run: the same share of falling moves (flicker) and autocorrelation of moves."""
    target = _noise_features(np.asarray(ranks, dtype=float))[0]
    best, choice = np.inf, (0.0, 0.0)
    for sigma in NOISE_SIGMAS:
        for rho in NOISE_RHOS if sigma > 0 else (0.0,):
            sims = _simulate(fit, sigma, rho, rng, draws, rounded)
            mean = _noise_features(sims).mean(axis=0)
            dist = abs(mean[0] - target[0]) / 0.02 + abs(mean[1] - target[1]) / 0.1
            if dist < best:
                best, choice = dist, (sigma, rho)
    return choice


def jitter(series: np.ndarray, window: int = 7, robust: bool = False) -> float:
    """Standard deviation of the fast noise of a continuous series: the residual from a local
    quadratic fit (Savitzky-Golay, ``window`` points), corrected for the fit's own share of the
    noise (the central weight 1/3 of a 7-point quadratic). ``robust``: from the residual's median
    absolute deviation, so that the few residuals at the edges of bursts do not count as noise."""
    if len(series) < window:
        return 0.0
    residual = series - savgol_filter(series, window, 2)
    centre = savgol_coeffs(window, 2)[window // 2]
    spread = stats.median_abs_deviation(residual, scale="normal") if robust else np.std(residual)
    return float(spread / np.sqrt(1 - centre))


def increment_noise(series: np.ndarray, window: int = 21) -> tuple[float, float]:
    """(sigma, rho) of AR(1) noise with the size and correlation of the series' moves.

    The burst share is made of the moves, so their noise is matched: the moves less their running
    median over ``window`` (the slow trend), and the root mean square of the *falling* ones, s1 for
    single moves and s2 for sums of two consecutive moves. Noise falls as far as it rises, a burst
    only rises: the falling half measures the noise, spikes included, and no burst counts as noise.
    AR(1) noise has moves of variance 2 sigma^2 (1 - rho) and lag-1 correlation r = -(1 - rho) / 2,
    so 1 + r = s2^2 / (2 s1^2) gives rho = 1 + 2 r (clipped to [0, 0.95])."""
    moves = np.diff(np.asarray(series, dtype=float))
    if len(moves) < window + 2:
        return 0.0, 0.0
    e = moves - median_filter(moves, size=window, mode="nearest")
    pairs = e[1:] + e[:-1]
    if not (e < 0).any() or not (pairs < 0).any():
        return 0.0, 0.0
    s1, s2 = np.sqrt(np.mean(e[e < 0] ** 2)), np.sqrt(np.mean(pairs[pairs < 0] ** 2))
    rho = float(np.clip(1 + 2 * (s2**2 / (2 * s1**2) - 1), 0.0, 0.95))
    return float(s1 / np.sqrt(2 * (1 - rho))), rho


def _simulate(fit, sigma, rho, rng, size, rounded: bool = True) -> np.ndarray:
    """One-growth-phase series: the fit and AR(1) noise; ``rounded``: with a random rounding phase,
    rounded."""
    if not rounded:
        return fit[None, :] + ar1_noise(len(fit), sigma, rho, rng, size)
    phase = rng.uniform(-0.5, 0.5, (size, 1))
    return np.round(fit[None, :] + phase + ar1_noise(len(fit), sigma, rho, rng, size))


# ---- A1 ------------------------------------------------------------------------------------------
def spectral_progress(spectra, eps: float, band: float = SPECTRAL_BAND) -> np.ndarray:
    """X(t): how far, in decades, the spectrum has moved up at eps since the first measurement.

    spectra: (T, n) Gram eigenvalues at the measured steps (any order). Over each measurement
    interval, X grows by the median change of log10 of the eigenvalues that were within ``band``
    decades below eps at its start (the ones about to cross; the nearest one below when none is that
    close); it stays when no eigenvalue is below eps. A spectrum that moves up smoothly gives a
    smooth X whatever the spacing of its eigenvalues; one that stalls and bursts gives plateaus.
    """
    logs = np.log10(np.clip(np.asarray(spectra, dtype=float), 1e-300, None))
    log_eps = np.log10(eps)
    x = np.zeros(len(logs))
    for i in range(len(logs) - 1):
        below = logs[i] < log_eps
        near = np.flatnonzero(below & (logs[i] >= log_eps - band))
        if not len(near) and below.any():
            near = [int(np.argmax(np.where(below, logs[i], -np.inf)))]
        step = np.median(logs[i + 1, near] - logs[i, near]) if len(near) else 0.0
        x[i + 1] = x[i] + (step if np.isfinite(step) else 0.0)
    return x


def excursions(spectra, max_points: int = EXCURSION_POINTS, decades: float = EXCURSION_DECADES):
    """(mask of measurements to keep, number of excursions): an excursion is a run of at most
    ``max_points`` measurements where the spectrum's median log10 eigenvalue is more than ``decades``
    off its running median over 2 * max_points + 1 measurements: the spectrum left and came back,
    which is neither a stall nor a burst. A monotone motion (a burst included) is its own running
    median, so bursts are never masked."""
    logs = np.log10(np.clip(np.asarray(spectra, dtype=float), 1e-300, None))
    level = np.median(logs, axis=1)
    off = np.abs(level - median_filter(level, size=2 * max_points + 1, mode="nearest")) > decades
    runs = np.diff(np.concatenate([[0], off.astype(int), [0]]))
    starts, ends = np.flatnonzero(runs == 1), np.flatnonzero(runs == -1)
    keep = np.ones(len(level), dtype=bool)
    short = [(a, b) for a, b in zip(starts, ends) if b - a <= max_points]
    for a, b in short:
        keep[a:b] = False
    return keep, len(short)


def burst_share(steps, progress, fraction: float = BURST_FRACTION) -> np.ndarray:
    """Share of the progress made in the busiest ``fraction`` of the run's time: the measurement
    intervals sorted by rate, the fastest taken until they cover that much time (the last one in
    part); progress counts the rising moves (the falls of noise are no progress), so the share is
    in [0, 1]. ``progress``: (T,) or (S, T) series; one share per row. About ``fraction`` for a
    steady noiseless motion; near 1 for motion in short bursts between still levels."""
    x = np.atleast_2d(np.asarray(progress, dtype=float))
    dt = np.diff(np.asarray(steps, dtype=float))
    rises = np.clip(np.diff(x, axis=1), 0.0, None)
    order = np.argsort(-rises / dt, axis=1, kind="stable")
    dt_sorted, rises_sorted = dt[order], np.take_along_axis(rises, order, axis=1)
    before = np.cumsum(dt_sorted, axis=1) - dt_sorted
    taken = np.clip((fraction * dt.sum() - before) / dt_sorted, 0.0, 1.0)
    return (taken * rises_sorted).sum(axis=1) / np.maximum(rises.sum(axis=1), 1e-12)


def burst_contrast(share: float, null_share: float) -> float:
    """How many times the odds of progress in the busiest time exceed those of one growth phase
    (its simulations' median): 1 when the spectrum moves as one growth phase with its noise does,
    large when it stays still between short bursts."""
    odds = lambda b: b / (1 - b)  # noqa: E731 - a one-line formula
    return float(odds(np.clip(share, 1e-3, 0.999)) / odds(np.clip(null_share, 1e-3, 0.999)))


def burst_test(steps, progress, n_null: int = 400, seed: int = 0) -> dict:
    """The burst statistic of a continuous progress series against one growth phase: its
    :func:`one_phase_fit` plus AR(1) noise of the series' own size and correlation
    (:func:`increment_noise`), same steps, same statistic."""
    steps, progress = np.asarray(steps, dtype=float), np.asarray(progress, dtype=float)
    observed = float(burst_share(steps, progress)[0])
    fit = one_phase_fit(steps, progress)
    rng = np.random.default_rng(seed)
    sigma, rho = increment_noise(progress)
    null = burst_share(steps, fit[None, :] + ar1_noise(len(fit), sigma, rho, rng, n_null))
    return dict(
        share=observed,
        p_value=float((1 + np.sum(null >= observed - 1e-12)) / (1 + n_null)),
        contrast=burst_contrast(observed, float(np.median(null))),
        null_median=float(np.median(null)),
    )


@dataclass(frozen=True)
class StaircaseTest:
    """A1 on one seed: two statistics against one growth phase, combined (docs/claims.md, fixed
    before any calibration): p = min(1, 2 min(p_stall, p_burst)) (Bonferroni), and the effect size
    of the statistic with the smaller p."""

    statistic: float  # stall prominence: log of (longest interior stall / the faster progress around it)
    step: float  # where the most prominent stall began (NaN if none)
    p_value: float  # Bonferroni over the two statistics
    null_median: float
    null_q95: float
    noise: tuple[float, float]  # (sigma, rho) of the null's AR(1) noise, in levels
    rank_rise: int
    steps: np.ndarray = field(repr=False)
    levels: np.ndarray = field(repr=False)  # the progress in eps-rank units, rounded (what is tested)
    fit: np.ndarray = field(repr=False)  # its one-growth-phase fit (the null's curve)
    stall_p: float = 1.0
    burst: float = float("nan")  # share of the progress made in the busiest BURST_FRACTION of the time
    burst_p: float = 1.0
    burst_contrast: float = 1.0  # odds of that share against the one-phase null's median
    excursions: int = 0  # spectra that left and came back within EXCURSION_POINTS measurements (masked)

    @property
    def hold_ratio(self) -> float:
        return float(np.exp(self.statistic))

    @property
    def effect(self) -> float:
        """The effect size of the statistic that decided (the smaller p; on a tie the larger effect):
        the stall ratio or the burst contrast."""
        arms = ((self.stall_p, self.hold_ratio), (self.burst_p, self.burst_contrast))
        return max(effect for p, effect in arms if p == min(self.stall_p, self.burst_p))


def staircase_test(
    steps,
    spectra,
    eps: float,
    n_null: int = 400,
    seed: int = 0,
    min_points: int = 2,
    min_span: float = 0.0,
    band: float = SPECTRAL_BAND,
) -> StaircaseTest:
    """A1's test of one seed (see the module docstring): spectra (T, n) of the last hidden layer
    at ``steps``; the eps-rank is the count above ``eps``. Deterministic for a seed."""
    steps = np.asarray(steps, dtype=float)
    spectra = np.asarray(spectra, dtype=float)
    n = int(np.argmin(np.isfinite(spectra).all(axis=1))) if not np.isfinite(spectra).all() else len(steps)
    keep, away = excursions(spectra[:n]) if n else (np.ones(0, dtype=bool), 0)
    steps, spectra = steps[:n][keep], spectra[:n][keep]  # the leading finite part, excursions masked
    n = len(steps)
    ranks = (spectra > eps).sum(axis=1).astype(float)
    rise = int(ranks[-1] - ranks[0]) if n else 0
    x = spectral_progress(spectra, eps, band) if n else np.zeros(0)
    if n < 3 or rise < 2 or x[-1] - x[0] <= 0:  # nothing to test: the rank (or the spectrum) did not rise
        return StaircaseTest(0.0, float("nan"), 1.0, 0.0, 0.0, (0.0, 0.0), rise, steps, ranks, ranks, excursions=away)
    progress = (x - x[0]) * rise / (x[-1] - x[0])
    res = levels_test(steps, np.round(progress), n_null, seed, min_points, min_span, latent=progress)
    burst = burst_test(steps, progress, n_null, seed)
    return StaircaseTest(
        rank_rise=rise,
        **res | {"p_value": min(1.0, 2 * min(res["p_value"], burst["p_value"]))},
        stall_p=res["p_value"],
        burst=burst["share"],
        burst_p=burst["p_value"],
        burst_contrast=burst["contrast"],
        excursions=away,
    )


def levels_test(steps, levels, n_null=400, seed=0, min_points=2, min_span=0.0, latent=None) -> dict:
    """The plateau-prominence test of an integer series against one growth phase (the core of
    :func:`staircase_test`, which feeds it the spectral progress in eps-rank units). ``latent``: the
    continuous series that was rounded, when there is one: the null's noise is then at least its
    measured jitter (:func:`jitter`), which rounding hides from the matched share of falls."""
    steps, levels = _finite(steps, levels)
    first_level, holds = _level_holds(steps, levels, min_points, min_span)
    observed, where = plateau_prominence(holds)
    at = float("nan")
    if where >= 0:
        env = envelope(steps, levels, min_points, min_span)
        at = float(steps[np.searchsorted(env, first_level + where, side="left")])
    fit = one_phase_fit(steps, levels)
    rng = np.random.default_rng(seed)
    noise = match_noise(levels, fit, rng)
    if latent is not None:
        noise = (max(noise[0], jitter(np.asarray(latent, dtype=float)[: len(steps)])), noise[1])
    null = np.array(
        [
            plateau_prominence(holds)[0]
            for holds in _simulated_holds(steps, _simulate(fit, *noise, rng, n_null), min_points, min_span)
        ]
    )
    p = (1 + np.sum(null >= observed - 1e-12)) / (1 + n_null)
    return dict(
        statistic=observed,
        step=at,
        p_value=float(p),
        null_median=float(np.median(null)),
        null_q95=float(np.quantile(null, 0.95)),
        noise=noise,
        steps=steps,
        levels=levels,
        fit=fit,
    )


# ---- A2, A3 --------------------------------------------------------------------------------------
def rise_intervals(steps, ranks, min_points: int = 2, min_span: float = 0.0) -> np.ndarray:
    """Indices i of the measurement intervals (i, i + 1) in which the denoised rank rises."""
    steps, ranks = _finite(steps, ranks)
    env = envelope(steps, ranks, min_points, min_span) if len(steps) else None
    return np.array([], dtype=int) if env is None else np.flatnonzero(np.diff(env) > 0)


def lagged_drop(rate: np.ndarray, lag: int) -> np.ndarray:
    """At each interval j, the fastest drop in intervals j .. j + lag (cut at the end): a drop that
    follows a rise within ``lag`` measurements counts for the rise."""
    return np.array([rate[j : j + lag + 1].max() for j in range(len(rate))])


def active_period(rises: np.ndarray, lag: int, last: int) -> tuple[int, int]:
    """The intervals the rank's growth spans: its first rise to its last, widened by ``lag`` on
    both sides (the rises' own lag tolerance), within [0, last]."""
    return max(int(rises.min()) - lag, 0), min(int(rises.max()) + lag, last)


@dataclass(frozen=True)
class CouplingTest:
    """A2/A3 on one series: how the drop rate of y ranks at the rank's rises."""

    statistic: float  # mean local percentile of the lagged drop rate at the rises (0.5 at chance)
    p_value: float
    null_q95: float
    n_rises: int  # rises with at least one neighbouring interval to compare with
    percentiles: np.ndarray = field(repr=False)


def coupling_test(
    steps,
    ranks,
    y,
    window: int = 20,
    n_null: int = 400,
    seed: int = 0,
    min_points: int = 2,
    min_span: float = 0.0,
    lag: int = COUPLING_LAG,
) -> CouplingTest:
    """Does y fall faster within ``lag`` measurements after the rank rises than around it, within the
    rank's active period (see the module docstring)? ``y`` is measured at the same steps (already
    transformed: log loss, sqrt of the bound); the series is cut where either is not finite."""
    steps, ranks, y = (np.asarray(a, dtype=float) for a in (steps, ranks, y))
    ok = np.isfinite(y) & np.isfinite(ranks)
    n = int(np.argmin(ok)) if not ok.all() else len(ok)
    steps, ranks, y = steps[:n], ranks[:n], y[:n]
    empty = CouplingTest(float("nan"), float("nan"), float("nan"), 0, np.array([]))
    rises = rise_intervals(steps, ranks, min_points, min_span) if n >= 3 else np.array([], dtype=int)
    if not rises.size:
        return empty
    score = lagged_drop(-np.diff(y) / np.diff(steps), lag)
    lo, hi = active_period(rises, lag, len(score) - 1)
    pct, choices = [], []
    for i in rises:
        half = min(window, i - lo, hi - i)
        if half < 1:
            continue
        local = (stats.rankdata(score[i - half : i + half + 1]) - 0.5) / (2 * half + 1)
        pct.append(local[half])
        choices.append(local)
    if not pct:
        return empty
    observed = float(np.mean(pct))
    rng = np.random.default_rng(seed)
    null = np.mean([c[rng.integers(0, len(c), n_null)] for c in choices], axis=0)
    p = (1 + np.sum(null >= observed - 1e-12)) / (1 + n_null)
    return CouplingTest(observed, float(p), float(np.quantile(null, 0.95)), len(pct), np.asarray(pct))


def staircase_verdict(results, alpha: float, min_ratio: float) -> tuple[bool, float, float]:
    """(passes, Fisher p, median effect size) of A1 over the seeds' :class:`StaircaseTest`s: a
    staircase when the seeds beat the null together (p <= alpha) and the typical effect (the stall
    ratio, or the burst contrast where that statistic decided) is at least ``min_ratio``."""
    results = list(results)
    p = fisher([r.p_value for r in results])
    ratio = float(np.median([r.effect for r in results])) if results else float("nan")
    return bool(p <= alpha and ratio >= min_ratio), p, ratio


def fisher(p_values) -> float:
    """Fisher's combination of independent p-values (NaN ignored; NaN if none)."""
    p = np.asarray([v for v in p_values if v is not None and np.isfinite(v)], dtype=float)
    if not p.size:
        return float("nan")
    return float(stats.combine_pvalues(np.clip(p, 1e-300, 1.0), method="fisher").pvalue)


__all__ = [
    "COUPLING_LAG",
    "CouplingTest",
    "burst_share",
    "burst_test",
    "excursions",
    "StaircaseTest",
    "coupling_test",
    "envelope",
    "fisher",
    "hold_times",
    "active_period",
    "lagged_drop",
    "levels_test",
    "one_phase_fit",
    "plateau_prominence",
    "rise_intervals",
    "spectral_progress",
    "staircase_test",
    "staircase_verdict",
]
