"""Synthetic epsilon-rank and loss series with a known answer, and runs written in the results format.

Used to measure the false-positive rate and power of the claim tests (:mod:`staircase.claims.calibration`)
and as must-pass / must-fail fixtures in the tests. Time is normalised, u = step / last step.

* :func:`spectra` - Gram spectra whose motion has one growth phase (A1's null: the spectrum moves
  up smoothly, any spacing of its eigenvalues) or several (bursts between stalls: a staircase);
* :func:`smooth_rise`, :func:`staircase` - integer series: a rounded smooth rise with AR(1) noise,
  and 2-6 fast rises of 1-5 levels at random times (tests of the integer core of A1);
* :func:`loss_for` - a loss measured with a rank series: ``coupled`` (it falls when the rank rises,
  one-to-one or smoothed over a few measurements) or not (a smooth decay sharing the trend, half
  of the time with drops of its own at random times);
* :func:`write_run` - a run directory as ``staircase train`` writes it (metrics.parquet,
  ranks.parquet, spectra.npz, run.json; see docs/outputs.md) from given series.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.ndimage import gaussian_filter1d

from staircase.core.steptest import ar1_noise
from staircase.records import manifest

SHAPES = ("linear", "saturating", "sigmoid", "power", "log", "delayed")
NOISE_SIGMAS = (0.0, 0.1, 0.2, 0.3, 0.4)
NOISE_RHOS = (0.0, 0.5, 0.8)


def _shape(kind: str, u: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A monotone curve from 0 to 1 on u in [0, 1] whose rate rises then falls at most once."""
    if kind == "linear":
        return u
    if kind == "saturating":
        tau = rng.uniform(0.05, 0.5)
        return np.expm1(-u / tau) / np.expm1(-1 / tau)
    if kind == "sigmoid":
        centre, width = rng.uniform(0.2, 0.8), rng.uniform(0.03, 0.2)
        s = 1 / (1 + np.exp(-(u - centre) / width))
        return (s - s[0]) / (s[-1] - s[0])
    if kind == "power":
        return u ** rng.uniform(0.3, 2.5)
    if kind == "log":
        tau = 10 ** rng.uniform(-3, -1)
        return np.log1p(u / tau) / np.log1p(1 / tau)
    if kind == "delayed":  # a smooth onset after a delay, then saturation (as fit1d's loss plateau)
        onset, tau = rng.uniform(0.05, 0.3), rng.uniform(0.05, 0.4)
        v = 0.02 * np.logaddexp(0, (u - onset) / 0.02)
        g = -np.expm1(-v / tau)
        return (g - g[0]) / (g[-1] - g[0])
    raise ValueError(f"unknown shape {kind!r}; choose one of {SHAPES}")


def _noisy_levels(curve, rng, sigma=None, rho=None) -> tuple[np.ndarray, dict]:
    sigma = rng.choice(NOISE_SIGMAS) if sigma is None else sigma
    rho = rng.choice(NOISE_RHOS) if rho is None else rho
    ranks = np.maximum(np.round(curve + ar1_noise(len(curve), sigma, rho, rng)[0]), 0)
    return ranks, {"sigma": float(sigma), "rho": float(rho)}


def smooth_rise(steps, rng: np.random.Generator, shape: str | None = None, **noise) -> tuple[np.ndarray, dict]:
    """(ranks, description) of one rounded smooth rise: start 1-9, rise 3-30 levels."""
    steps = np.asarray(steps, dtype=float)
    shape = shape or str(rng.choice(SHAPES))
    start, rise = int(rng.integers(1, 10)), float(rng.uniform(3, 30))
    ranks, info = _noisy_levels(start + rise * _shape(shape, steps / steps[-1], rng), rng, **noise)
    return ranks, {"kind": "smooth", "shape": shape, "rise": rise, **info}


def staircase(steps, rng: np.random.Generator, stairs: int | None = None, **noise) -> tuple[np.ndarray, dict]:
    """(ranks, description) of a staircase: ``stairs`` (2-6) rises of 1-5 levels at random times
    in u in [0.05, 0.9], each over a logistic transition of width 0.1-2 % of the run."""
    steps = np.asarray(steps, dtype=float)
    u = steps / steps[-1]
    k = int(rng.integers(2, 7)) if stairs is None else stairs
    sizes = rng.integers(1, 6, k)
    width = rng.uniform(0.001, 0.02)
    curve = float(rng.integers(1, 10)) + sum(
        s / (1 + np.exp(np.clip(-(u - c) / width, -50, 50))) for s, c in zip(sizes, np.sort(rng.uniform(0.05, 0.9, k)))
    )
    noise.setdefault("sigma", rng.choice(NOISE_SIGMAS[:-1]))
    ranks, info = _noisy_levels(curve, rng, **noise)
    return ranks, {"kind": "staircase", "stairs": k, "mean_jump": float(np.mean(sizes)), **info}


def initial_spectrum(rng: np.random.Generator, n: int = 40) -> tuple[np.ndarray, str]:
    """log10 eigenvalues (decreasing) of an initial Gram: exponential or gamma(3) gaps of 0.3-1
    decades on average, or pairs 1.5-3 decades apart (as a tanh net's at initialisation)."""
    kind = str(rng.choice(["exponential", "gamma3", "pairs"]))
    if kind == "pairs":
        base = -np.arange(n // 2) * rng.uniform(1.5, 3.0)
        logs = np.sort(np.concatenate([base, base - rng.uniform(0.2, 0.6, n // 2)]))[::-1]
    else:
        shape = 1.0 if kind == "exponential" else 3.0
        logs = -np.cumsum(rng.gamma(shape, rng.uniform(0.3, 1.0) / shape, n))
    return logs + rng.uniform(0, 1.5), kind


def spectra(steps, rng: np.random.Generator, phases: int = 1, n: int = 40) -> tuple[np.ndarray, float, dict]:
    """(spectra (T, n), eps, description): an initial spectrum moved up by 3-10 decades in
    ``phases`` growth phases. One phase: a smooth shape of :data:`SHAPES`. Several: logistic bursts
    of random sizes at random times (0.2-2 % of the run wide) with stalls between them. Deeper
    eigenvalues move faster (the spectrum compresses, as trained nets' do, but keeps its order), the top ones
    saturate, and each eigenvalue carries AR(1) noise (0-0.1 decades); eps is 1e-4..1e-2."""
    steps = np.asarray(steps, dtype=float)
    u = steps / steps[-1]
    logs0, kind = initial_spectrum(rng, n)
    total = rng.uniform(3, 10)
    if phases == 1:
        shape = str(rng.choice(SHAPES))
        shift = total * _shape(shape, u, rng)
    else:
        shape = f"{phases} bursts"
        width = rng.uniform(0.002, 0.02)
        sizes = rng.dirichlet(np.ones(phases)) * total
        shift = sum(
            a / (1 + np.exp(np.clip(-(u - c) / width, -50, 50)))
            for a, c in zip(sizes, np.sort(rng.uniform(0.05, 0.9, phases)))
        )
        shift = shift - shift[0]
    sigma, rho = float(rng.choice([0.0, 0.02, 0.05, 0.1])), float(rng.choice([0.0, 0.5, 0.9]))
    moved = moving_spectra(shift, logs0, rng.uniform(0, 0.15), sigma, rho, rng)
    eps = float(10 ** rng.uniform(-4, -2))
    info = {"phases": phases, "shape": shape, "spectrum": kind, "sigma": sigma, "rho": rho, "eps": eps}
    return moved, eps, info


def moving_spectra(shift, initial, compression=0.0, sigma=0.0, rho=0.0, rng=None) -> np.ndarray:
    """(T, n) eigenvalues, sorted decreasing: log10 ``initial`` (n,) moved up by ``shift`` (T,)
    decades, deeper ones faster (gain 1 + compression * depth, relative to the median, at most so
    fast that no two eigenvalues meet), capped half a decade above the top, plus AR(1) noise."""
    shift, logs0 = np.asarray(shift, dtype=float), np.asarray(initial, dtype=float)
    depth = logs0.max() - logs0
    c = compression
    for _ in range(5):  # two eigenvalues d apart close by c / median gain * shift * d: at most 70 % of d
        closing = c / np.median(1 + c * depth) * np.ptp(shift)
        if closing <= 0.7:
            break
        c *= 0.7 / closing
    gain = (1 + c * depth) / np.median(1 + c * depth)
    logs = np.minimum(logs0[None, :] + shift[:, None] * gain[None, :], logs0.max() + 0.5)
    if sigma:
        logs = logs + ar1_noise(len(shift), sigma, rho, rng or np.random.default_rng(0), len(logs0)).T
    return 10.0 ** -np.sort(-logs, axis=1)


def bursts(steps, times, sizes, width: float = 0.005) -> np.ndarray:
    """A shift (decades) that rises by ``sizes`` in logistic bursts at fractions ``times`` of the
    run, flat in between: a spectrum moved by it stalls between the bursts (a staircase)."""
    u = np.asarray(steps, dtype=float) / steps[-1]
    shift = sum(a / (1 + np.exp(np.clip(-(u - c) / width, -50, 50))) for a, c in zip(sizes, times))
    return shift - shift[0]


def loss_for(steps, ranks, rng: np.random.Generator, coupled: bool) -> tuple[np.ndarray, dict]:
    """(loss, description) measured with ``ranks`` (see the module docstring)."""
    u = np.asarray(steps, dtype=float) / steps[-1]
    trend = -rng.uniform(2, 8) * u ** rng.uniform(0.3, 1.0)  # log loss: falls fastest early, as ranks rise
    info = {"coupled": coupled}
    if coupled:
        progress = np.maximum.accumulate(np.asarray(ranks, dtype=float)) - ranks[0]
        smoothing = float(rng.choice([0.0, rng.uniform(1, 5)]))  # one-to-one, or over a few measurements
        if smoothing:
            progress = gaussian_filter1d(progress, smoothing)
        log_loss = trend * rng.uniform(0.2, 0.6) - rng.uniform(0.05, 0.3) * progress
        info["smoothing"] = smoothing
    else:
        log_loss = trend
        if rng.random() < 0.5:  # drops of its own, at times that have nothing to do with the rank
            for centre in rng.uniform(0.05, 0.9, int(rng.integers(2, 6))):
                log_loss = log_loss - rng.uniform(0.3, 1.5) / (1 + np.exp(np.clip(-(u - centre) / 0.005, -50, 50)))
            info["own_drops"] = True
    noise = float(rng.choice([0.002, 0.01, 0.03]))
    return np.exp(log_loss + rng.normal(0.0, noise, len(u))), {**info, "loss_noise": noise}


def write_run(
    path,
    steps,
    ranks: dict,
    loss: dict | None = None,
    experiment: str = "synthetic",
    variant: str = "base",
    layer_ranks: dict | None = None,
    eps: float = 1e-3,
    status: dict | None = None,
    extra_metrics: dict | None = None,
    config: dict | None = None,
    spectra: dict | None = None,
    width: int | None = None,
) -> Path:
    """A run directory in the results format from given series.

    steps: (T,) measured steps; ranks: {seed: (T,) eps-rank of the last hidden layer}; loss:
    {seed: (T,)} (default: a smooth decay); layer_ranks: {seed: (L, T)} eps-ranks of every hidden
    layer (default: the last layer's only); extra_metrics: {column: {seed: (T,)}} further
    metrics.parquet columns (e.g. the bound's); spectra: {seed: (T, n)} the last hidden layer's Gram
    spectra (e.g. from :func:`spectra`; ``ranks`` must then be their counts above ``eps``). Without
    them spectra are made up to give exactly these eps-ranks at ``eps`` (eigenvalues 10 eps above,
    eps / 10 below, which move only when they cross), ``width`` neurons per layer (default: the
    largest rank + 2).
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    steps = np.asarray(steps)
    seeds = sorted(ranks)
    layers = {s: np.atleast_2d(np.asarray(layer_ranks[s] if layer_ranks else ranks[s], dtype=float)) for s in seeds}
    depth = next(iter(layers.values())).shape[0]
    width = width or int(max(np.nanmax(v) for v in layers.values())) + 2
    if spectra:
        width = max(width, next(iter(spectra.values())).shape[1])
    metrics, tidy = _tables(steps, seeds, ranks, loss, layers, eps, extra_metrics)
    arrays = _spectra_arrays(seeds, layers, width, eps)
    if spectra:
        arrays[f"layer{depth - 1}"] = np.stack([np.asarray(spectra[s], dtype=float) for s in seeds])
    metrics.to_parquet(path / "metrics.parquet", index=False)
    tidy.to_parquet(path / "ranks.parquet", index=False)
    np.savez_compressed(path / "spectra.npz", steps=steps, seeds=np.asarray(seeds), normalisation="integral", **arrays)
    cfg = {
        "experiment": experiment,
        "variant": variant,
        "rank": {"eps": [eps], "main_eps": eps, "normalisation": "integral"},
        "model": {"depth": depth, "width": width, "activation": "tanh"},
        "train": {"steps": int(steps[-1])},
        "seeds": seeds,
        **(config or {}),
    }
    (path / "run.json").write_text(json.dumps(_run_info(cfg, seeds, status or {}), indent=1))
    manifest.seal(path)  # last, as the writer does: the readers verify a run against it
    return path


def _run_info(cfg: dict, seeds: list, status: dict) -> dict:
    """run.json of a synthetic run: every seed ok unless ``status`` says otherwise."""
    return {
        "config": cfg,
        "seeds": seeds,
        "status": {str(s): status.get(s, "ok") for s in seeds},
        "diverged": any(v != "ok" for v in status.values()),
        "git_commit": "synthetic",
        "git_dirty": False,
        "package_version": "synthetic",
        "device": "cpu",
    }


def _tables(steps, seeds, ranks, loss, layers, eps, extra_metrics) -> tuple[pd.DataFrame, pd.DataFrame]:
    """metrics.parquet and ranks.parquet of :func:`write_run` (its arguments; ``layers``: {seed:
    (L, T)} eps-ranks of every hidden layer)."""
    rows, tidy = [], []
    for seed in seeds:
        r = np.asarray(ranks[seed], dtype=float)
        lo = np.asarray(loss[seed], dtype=float) if loss else np.exp(-3 * steps / steps[-1])
        cols = {"seed": seed, "step": steps, "loss": lo, "rel_l2": np.sqrt(lo), "eps_rank": r}
        cols.update(lower_bound=0.5 * lo, bound_rank=r + 1, bound_violation=False)  # + 1: the output's bias
        for column, values in (extra_metrics or {}).items():
            cols[column] = np.asarray(values[seed])
        rows.append(pd.DataFrame(cols))
        for layer, values in enumerate(layers[seed]):
            tidy.append(
                pd.DataFrame(
                    {"seed": seed, "step": steps, "layer": layer, "metric": "eps_rank", "eps": eps} | {"value": values}
                )
            )
    return pd.concat(rows, ignore_index=True), pd.concat(tidy, ignore_index=True)


def _spectra_arrays(seeds, layers, width: int, eps: float) -> dict[str, np.ndarray]:
    """Made-up Gram spectra with exactly the given eps-ranks at ``eps``: eigenvalues 10 eps above,
    eps / 10 below (they move only when they cross)."""
    arrays = {}
    for layer in range(next(iter(layers.values())).shape[0]):
        counts = np.stack([layers[s][layer] for s in seeds])  # (S, T)
        k = np.arange(width)
        arrays[f"layer{layer}"] = np.where(k[None, None, :] < counts[..., None], 10 * eps, eps / 10)
    return arrays


# ---- A2's own families: a lagged coupling and a shared narrow growth phase (docs/claims.md, A2) ----
def _rank_rising_at(n_points: int, intervals, start: float = 5.0) -> np.ndarray:
    """An eps-rank that rises by one level in each measurement interval of ``intervals``."""
    ranks = np.full(n_points, start)
    for i in intervals:
        ranks[i + 1 :] += 1
    return ranks


def _spaced_intervals(rng: np.random.Generator, lo: int, hi: int, k: int, gap: int) -> np.ndarray:
    """``k`` sorted intervals in [lo, hi) at least ``gap`` apart (fewer when they do not fit)."""
    picks = np.sort(rng.choice(np.arange(lo, hi), size=min(k, max(hi - lo, 0)), replace=False))
    kept = [int(i) for i in picks[:1]]
    for i in picks[1:]:
        if i - kept[-1] >= gap:
            kept.append(int(i))
    return np.array(kept, dtype=int)


def _log_trend(n_points: int, rng: np.random.Generator) -> np.ndarray:
    """A smooth falling log loss over the run, fastest early (as loss_for's trend)."""
    u = np.linspace(0.0, 1.0, n_points)
    return -rng.uniform(1, 4) * u ** rng.uniform(0.3, 1.0)


def lagged_coupling(steps, rng: np.random.Generator, lag: int, rises: int = 5) -> tuple[np.ndarray, np.ndarray, dict]:
    """(ranks, loss, description): ``rises`` rank rises spread over the run, each followed ``lag``
    measurements later by a drop of the log loss (0.1-0.5) on a smooth trend with noise: coupled
    rise by rise, late by ``lag``."""
    n = len(steps)
    at = _spaced_intervals(rng, 3, n - 3 - lag, rises, gap=4)
    log_loss = _log_trend(n, rng) + rng.normal(0.0, float(rng.choice([0.002, 0.01, 0.03])), n)
    for i in at:
        log_loss[i + lag + 1 :] -= rng.uniform(0.1, 0.5)
    return _rank_rising_at(n, at), np.exp(log_loss), {"lag": lag, "rises": len(at)}


def shared_phase(steps, rng: np.random.Generator, width: int, rises: int = 5) -> tuple[np.ndarray, np.ndarray, dict]:
    """(ranks, loss, description): one narrow growth phase of ``width`` measurements in which the
    rank rises ``rises`` times at random and the log loss falls by 1-3 (evenly, or as a logistic
    centred on the phase), with no coupling rise by rise: the null A2 must hold against."""
    n = len(steps)
    start = int(rng.integers(5, n - width - 5))
    at = _spaced_intervals(rng, start, start + width, rises, gap=2)
    idx = np.arange(n) - start
    if rng.random() < 0.5:
        phase = np.clip(idx / width, 0.0, 1.0)
    else:
        phase = 1 / (1 + np.exp(-(idx - width / 2) / (width / 6)))
    noise = float(rng.choice([0.002, 0.01, 0.03]))
    log_loss = 0.3 * _log_trend(n, rng) - rng.uniform(1, 3) * phase + rng.normal(0.0, noise, n)
    return _rank_rising_at(n, at), np.exp(log_loss), {"width": width, "rises": len(at)}


__all__ = [
    "SHAPES",
    "bursts",
    "initial_spectrum",
    "lagged_coupling",
    "loss_for",
    "moving_spectra",
    "shared_phase",
    "smooth_rise",
    "spectra",
    "staircase",
    "write_run",
]
