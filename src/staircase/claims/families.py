"""The calibration's families: series with a known answer, one class of case each.

Every family draws, for a measurement schedule and a random generator, one case with its own
randomised parameters (docs/claims.md lists them and why): A1 families give (spectra (T, n), eps,
description), A2 families (ranks, loss, description). ``null`` families have no staircase (A1) or no
coupling (A2): the test's false-positive rate is measured on them; the others measure power.
Families on real spectra re-time the pipeline's own trained spectra (:func:`retime`) and need a
pool of them (``pool``: a list of (steps, spectra, eps) of trained seeds, grouped by run).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from staircase.claims import synthetic
from staircase.core import steptest


@dataclass(frozen=True)
class Family:
    name: str
    test: str  # "A1" or "A2"
    null: bool
    draw: Callable  # (steps, rng, pool) -> case
    seeds: int = 1  # seeds judged together (2: a cell whose seeds share one run's structure)


# ---- A1: spectra ----------------------------------------------------------------------------------
def _moved(steps, rng, shift, spectrum="any", sigma=None, rho=None) -> tuple[np.ndarray, float, dict]:
    """An initial spectrum moved up by ``shift`` decades (see synthetic.moving_spectra)."""
    logs0, kind = synthetic.initial_spectrum(rng)
    if spectrum == "pairs":
        while kind != "pairs":
            logs0, kind = synthetic.initial_spectrum(rng)
    sigma = float(rng.choice([0.0, 0.02, 0.05])) if sigma is None else sigma
    rho = float(rng.choice([0.0, 0.5, 0.9])) if rho is None else rho
    moved = synthetic.moving_spectra(shift, logs0, rng.uniform(0, 0.15), sigma, rho, rng)
    eps = float(10 ** rng.uniform(-4, -2))
    return moved, eps, {"spectrum": kind, "sigma": sigma, "rho": rho, "eps": eps}


def _logistic(z):
    return 1 / (1 + np.exp(np.clip(-z, -50, 50)))


def _unit(curve: np.ndarray) -> np.ndarray:
    return (curve - curve[0]) / (curve[-1] - curve[0])


def one_phase(steps, rng, pool=None):
    return synthetic.spectra(steps, rng, phases=1)


def log_time_pairs(steps, rng, pool=None):
    """A logistic rise in log time on a paired (tanh-like) spectrum."""
    z = np.log(steps + steps[1])
    centre, width = rng.uniform(z[0] + 1, z[-1] - 0.5), rng.uniform(0.3, 1.5)
    shift = rng.uniform(3, 10) * _unit(_logistic((z - centre) / width))
    spectra, eps, info = _moved(steps, rng, shift, spectrum="pairs")
    return spectra, eps, info | {"centre_log_step": centre, "width": width}


def slow_power(steps, rng, pool=None):
    """t^a with a small exponent: fast early, a long slow tail."""
    a = rng.uniform(0.15, 0.45)
    spectra, eps, info = _moved(steps, rng, rng.uniform(3, 10) * (steps / steps[-1]) ** a)
    return spectra, eps, info | {"exponent": a}


def delay_then_saturation(steps, rng, pool=None):
    """Nothing for a long time, then a smooth rise that saturates."""
    u = steps / steps[-1]
    onset, tau = rng.uniform(0.3, 0.7), rng.uniform(0.03, 0.3)
    shift = rng.uniform(3, 10) * _unit(-np.expm1(-np.clip(u - onset, 0, None) / tau))
    spectra, eps, info = _moved(steps, rng, shift)
    return spectra, eps, info | {"onset": onset, "tau": tau}


def at_schedule_switch(steps, rng, pool=None):
    """A sigmoid centred where the schedule turns from dense to sparse (or mid-run if uniform)."""
    gaps = np.diff(steps)
    switch = int(np.argmax(gaps > gaps[0])) if (gaps > gaps[0]).any() else len(steps) // 2
    u = steps / steps[-1]
    width = rng.uniform(0.01, 0.1)
    shift = rng.uniform(3, 10) * _unit(_logistic((u - u[switch]) / width))
    spectra, eps, info = _moved(steps, rng, shift)
    return spectra, eps, info | {"width": width}


def correlated_noise(steps, rng, pool=None):
    """One growth phase under the strongest eigenvalue noise of the grid (0.1 decades, rho 0.9)."""
    spectra, eps, info = synthetic.spectra(steps, rng, phases=1)
    logs0 = np.log10(spectra[0])
    shift = np.log10(spectra).mean(axis=1) - logs0.mean()
    moved = synthetic.moving_spectra(shift, logs0, 0.0, 0.1, 0.9, rng)
    return moved, eps, info | {"sigma": 0.1, "rho": 0.9}


def _displace(spectra, rng, runs: int, length: tuple[int, int]) -> tuple[np.ndarray, int]:
    """The whole spectrum moved 0.5-2 decades up or down for ``length`` consecutive measurements,
    ``runs`` times at random places, then back."""
    out = np.array(spectra, dtype=float)
    for _ in range(runs):
        n = int(rng.integers(length[0], length[1] + 1))
        at = int(rng.integers(1, len(out) - n))
        out[at : at + n] *= 10.0 ** (rng.choice([-1, 1]) * rng.uniform(0.5, 2.0))
    return out, runs


def single_outliers(steps, rng, pool=None):
    spectra, eps, info = synthetic.spectra(steps, rng, phases=1)
    out, k = _displace(spectra, rng, int(rng.integers(1, 6)), (1, 1))
    return out, eps, info | {"outliers": k}


def outlier_episodes(steps, rng, pool=None):
    spectra, eps, info = synthetic.spectra(steps, rng, phases=1)
    out, k = _displace(spectra, rng, int(rng.integers(1, 4)), (2, 3))
    return out, eps, info | {"episodes": k}


def bursts(steps, rng, pool=None):
    return synthetic.spectra(steps, rng, phases=int(rng.integers(2, 6)))


def bursts_with_episodes(steps, rng, pool=None):
    spectra, eps, info = synthetic.spectra(steps, rng, phases=int(rng.integers(2, 6)))
    out, k = _displace(spectra, rng, int(rng.integers(1, 4)), (2, 3))
    return out, eps, info | {"episodes": k}


def regular_stairs(steps, rng, pool=None, hold=(3.0, 3.0)):
    """Each stair one eigenvalue crossing eps: an evenly spaced spectrum (gap g decades) moved by g
    in each of k equal bursts (linear ramps), with still holds ``hold`` times as long as a burst."""
    u = steps / steps[-1]
    k, gap, ratio = int(rng.integers(4, 11)), rng.uniform(0.3, 1.0), rng.uniform(*hold)
    motion = 1 / (k * (1 + ratio) + ratio)  # k bursts and k + 1 holds fill the run
    starts = ratio * motion + np.arange(k) * (1 + ratio) * motion
    shift = gap * np.clip((u[:, None] - starts[None, :]) / motion, 0, 1).sum(axis=1)
    logs0 = -np.arange(40) * gap + rng.uniform(0, 1.5)
    sigma, rho = float(rng.choice([0.0, 0.01, 0.02])), float(rng.choice([0.0, 0.5]))
    spectra = synthetic.moving_spectra(shift, logs0, 0.0, sigma, rho, rng)
    eps = float(10 ** (logs0[int(rng.integers(5, 15))] - gap * rng.uniform(0.3, 0.7)))
    return spectra, eps, {"stairs": k, "gap": gap, "hold_over_motion": ratio, "sigma": sigma, "eps": eps}


def long_regular_stairs(steps, rng, pool=None):
    return regular_stairs(steps, rng, hold=(8.0, 15.0))


# ---- A1 on the pipeline's own spectra -------------------------------------------------------------
def retime(steps, real, progress_curve) -> tuple[np.ndarray, float, dict]:
    """A trained seed's spectra (``real``: steps, spectra (T, n), eps) moved along a new timing:
    at each of ``steps`` the spectrum the seed had when its spectral progress (running maximum)
    reached the share ``progress_curve`` (0 to 1) of its total, interpolated in log.

    No noise is added: the seed's own noise is in its measurements. Its fast noise moved to other
    times (the residual from a running median, as this family once added it) lands on eigenvalues of
    other sizes -- the deep ones' numerical noise spans decades -- and put 15-29 % of the whole
    progress into one measurement interval: a burst, so the family was no null (docs/claims.md)."""
    _, spectra, eps = real
    logs = np.log10(np.clip(spectra, 1e-30, None))
    x = np.maximum.accumulate(steptest.spectral_progress(spectra, eps))
    x = (x - x[0]) / max(x[-1] - x[0], 1e-12) + 1e-9 * np.arange(len(x))  # strictly increasing
    where = np.interp(progress_curve * x[-1], x, np.arange(len(x)))
    low = np.floor(where).astype(int)
    high, frac = np.minimum(low + 1, len(x) - 1), (where - low)[:, None]
    moved = (1 - frac) * logs[low] + frac * logs[high]
    return 10.0 ** -np.sort(-moved, axis=1), float(eps), {"eps": float(eps)}


def _real(pool, rng):
    run = pool[int(rng.integers(len(pool)))]
    return run[int(rng.integers(len(run)))]


def real_one_phase(steps, rng, pool):
    shape = str(rng.choice(synthetic.SHAPES))
    spectra, eps, info = retime(steps, _real(pool, rng), synthetic._shape(shape, steps / steps[-1], rng))
    return spectra, eps, info | {"shape": shape, "spectrum": "trained"}


def real_one_phase_cell(steps, rng, pool):
    """Two seeds of one trained run on the very same re-timing: seeds that share structure."""
    run = pool[int(rng.integers(len(pool)))]
    pick = rng.choice(len(run), size=2, replace=len(run) < 2)
    shape = str(rng.choice(synthetic.SHAPES))
    curve = synthetic._shape(shape, steps / steps[-1], rng)
    return [retime(steps, run[i], curve)[:2] + ({"shape": shape, "spectrum": "trained"},) for i in pick]


def real_bursts(steps, rng, pool):
    k = int(rng.integers(2, 6))
    times, sizes = np.sort(rng.uniform(0.05, 0.9, k)), rng.dirichlet(np.ones(k))
    curve = synthetic.bursts(steps, times, sizes, rng.uniform(0.002, 0.02))
    spectra, eps, info = retime(steps, _real(pool, rng), _unit(curve))
    return spectra, eps, info | {"stairs": k, "spectrum": "trained"}


# ---- A2: a rank and a loss ------------------------------------------------------------------------
def _ranks(steps, rng, phases=None):
    spectra, eps, _ = synthetic.spectra(steps, rng, phases=phases or int(rng.integers(1, 5)))
    return (spectra > eps).sum(axis=1).astype(float)


def uncoupled_loss(steps, rng, pool=None):
    ranks = _ranks(steps, rng)
    loss, info = synthetic.loss_for(steps, ranks, rng, coupled=False)
    return ranks, loss, info


def shared_narrow_phase(steps, rng, pool=None):
    """Rank and loss move in one shared growth phase a few measurements wide, not rise by rise."""
    centre = int(rng.integers(len(steps) // 5, 4 * len(steps) // 5))
    width = rng.uniform(1.0, 6.0)  # measurements
    idx = np.arange(len(steps))
    ranks = np.round(rng.integers(1, 10) + rng.uniform(4, 20) * _logistic((idx - centre) / width))
    lw = width * rng.uniform(0.5, 2.0)
    log_loss = -rng.uniform(1, 4) * _logistic((idx - centre - rng.normal(0, width)) / lw)
    log_loss = log_loss - rng.uniform(0.5, 2) * steps / steps[-1]
    noise = float(rng.choice([0.002, 0.01, 0.03]))
    loss = np.exp(log_loss + rng.normal(0.0, noise, len(steps)))
    return ranks, loss, {"width": width, "loss_width": lw, "loss_noise": noise}


def leading_drops(steps, rng, pool=None):
    """The loss drops 3-10 measurements before each rise of the rank."""
    ranks = _ranks(steps, rng, phases=int(rng.integers(2, 5)))
    lead = min(int(rng.integers(3, 11)), len(steps) - 1)
    env = np.maximum.accumulate(ranks) - ranks[0]
    ahead = np.concatenate([env[lead:], np.full(lead, env[-1])])
    log_loss = -rng.uniform(0.05, 0.3) * ahead - rng.uniform(0.5, 2) * steps / steps[-1]
    loss = np.exp(log_loss + rng.normal(0.0, 0.01, len(steps)))
    return ranks, loss, {"lead": lead}


def coupled_loss(steps, rng, pool=None):
    ranks = _ranks(steps, rng)
    loss, info = synthetic.loss_for(steps, ranks, rng, coupled=True)
    return ranks, loss, info


def lagged(lag: int) -> Callable:
    def draw(steps, rng, pool=None):
        """The loss drops ``lag`` measurements after each rise of the rank."""
        ranks = _ranks(steps, rng, phases=int(rng.integers(2, 6)))
        env = np.maximum.accumulate(ranks) - ranks[0]
        shift = min(lag, len(env) - 1)
        late = np.concatenate([np.zeros(shift), env[: len(env) - shift]])
        log_loss = -rng.uniform(0.05, 0.3) * late - rng.uniform(0.5, 2) * (steps / steps[-1]) ** rng.uniform(0.3, 1)
        loss = np.exp(log_loss + rng.normal(0.0, float(rng.choice([0.002, 0.01, 0.03])), len(steps)))
        return ranks, loss, {"lag": lag}

    return draw


NEEDS_POOL = (real_one_phase, real_one_phase_cell, real_bursts)

FAMILIES = (
    Family("one growth phase, six shapes", "A1", True, one_phase),
    Family("logistic in log time, paired spectrum", "A1", True, log_time_pairs),
    Family("slow power law t^0.15-0.45", "A1", True, slow_power),
    Family("long delay, then saturation", "A1", True, delay_then_saturation),
    Family("rise centred on the schedule's dense/sparse switch", "A1", True, at_schedule_switch),
    Family("one growth phase, eigenvalue noise 0.1 decades, rho 0.9", "A1", True, correlated_noise),
    Family("one growth phase with 1-5 one-measurement outliers", "A1", True, single_outliers),
    Family("one growth phase with 1-3 outlier episodes (2-3 points, 0.5-2 decades)", "A1", True, outlier_episodes),
    Family("trained spectra re-timed in one growth phase", "A1", True, real_one_phase),
    Family("trained spectra re-timed in one growth phase, cells of 2 seeds", "A1", True, real_one_phase_cell, 2),
    Family("uncoupled loss", "A2", True, uncoupled_loss),
    Family("rank and loss share one narrow growth phase", "A2", True, shared_narrow_phase),
    Family("loss drops 3-10 measurements before the rises", "A2", True, leading_drops),
    Family("2-5 bursts", "A1", False, bursts),
    Family("regular one-eigenvalue stairs, holds 3x the motion", "A1", False, regular_stairs),
    Family("regular one-eigenvalue stairs, holds 8-15x the motion", "A1", False, long_regular_stairs),
    Family("2-5 bursts with 1-3 outlier episodes", "A1", False, bursts_with_episodes),
    Family("trained spectra re-timed in 2-5 bursts", "A1", False, real_bursts),
    Family("coupled loss", "A2", False, coupled_loss),
    *(Family(f"loss drops {lag} measurements after each rise", "A2", False, lagged(lag)) for lag in range(4)),
)

__all__ = ["FAMILIES", "NEEDS_POOL", "Family", "retime"]
