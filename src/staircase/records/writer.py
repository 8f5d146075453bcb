"""The results format, written in one place: ``staircase train`` (:class:`staircase.training.trainer.Trainer`)
and the tracker of any PyTorch model (:class:`staircase.training.tracker.Tracker`) both call
:func:`write_results`, so that the audit, the notebooks and :mod:`staircase.records.runs` read either alike.

A run directory holds (docs/outputs.md; the manifest: docs/results-format.md):

* ``metrics.parquet`` - one row per (seed, step): ``seed, step``, the scalar columns in the order
  the writer is given them, with ``eps_rank`` (last hidden layer at the main eps) fourth and
  ``bound_eps`` last; ``bound_violation`` and ``eps_bound_violation`` as booleans;
* ``ranks.parquet`` - tidy ``seed, step, layer, metric, eps, value``: the eps-rank of every hidden
  layer at every eps and the peer metrics (:data:`staircase.core.rank.PEER_METRICS`);
* ``spectra.npz`` - ``steps``, ``seeds``, ``normalisation`` and ``layer<l>`` (seed, step, n): the
  sorted Gram spectrum of every hidden layer at every measured step;
* ``run.json`` - the run's config, per-seed status, clocks and provenance;
* ``manifest.json`` - written last: each file's sha256, size and shape, and the run's identity
  (:mod:`staircase.records.manifest`); the readers verify the folder against it.

A seed's measurements after it diverged are NaN (its spectra too), and so are its ranks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from staircase.core import rank as rk
from staircase.errors import ConfigError
from staircase.records import manifest as mf
from staircase.records.provenance import atomic_write, job_record, write_json


def main_ranks(spectra: list[list[np.ndarray]], main_eps: float) -> np.ndarray:
    """(seeds, measurements): the eps-rank of the last hidden layer at the main eps, NaN once a
    seed diverged (its spectra are NaN). ``spectra``: per measurement, one (S, n) array per layer."""
    last = np.stack([per_step[-1] for per_step in spectra], axis=1)  # (S, T, n)
    ranks = rk.eps_rank_from_spectrum(np.nan_to_num(last, nan=-np.inf), main_eps)
    return np.where(np.isnan(last[..., 0]), np.nan, ranks)


def write_results(
    out_dir,
    rec,
    clock,
    *,
    config: dict,
    seeds,
    depth: int,
    eps: list[float],
    main_eps: float,
    bound_eps: float,
    normalisation: str,
    train_clock,
    diverged_at,
    steps_done: int,
    elapsed: float,
    device: str,
    pretrain: dict | None = None,
    extra: dict | None = None,
) -> None:
    """Write metrics.parquet, ranks.parquet, spectra.npz and run.json (each atomically) in ``out_dir``,
    then manifest.json (last: its presence says the others are whole).

    rec: the measurements (:class:`staircase.training.recorder.Recorder`: ``steps``; ``scalars`` {column: one (S,)
    array per measurement}; ``spectra``, per measurement one (S, n_l) array of sorted Gram
    eigenvalues per hidden layer, ``depth`` of them); clock: their CPU time by part
    (:class:`staircase.training.clocks.MeasureClock`); eps: the eps of the ranks table; bound_eps: the loss
    bound's eps (a column); normalisation: the Gram's weights (``integral`` or ``mean``); config:
    run.json's ``config``; train_clock: (wall, CPU) seconds of training outside the measurements;
    diverged_at: per seed, the step it diverged at (< 0: it did not); steps_done, elapsed, device:
    for the provenance (:func:`staircase.records.provenance.job_record`); pretrain: what pre-training did;
    extra: more run.json keys, over the others (the Tracker's ``complete``, ``stopped``, its user's commit).
    """
    run = {
        "config": config,
        "seeds": [int(s) for s in seeds],
        "gram_normalisation": normalisation,
        "train_s": round(float(train_clock[0]), 3),
        "train_cpu_s": round(float(train_clock[1]), 3),
        # the tracking overhead: CPU seconds of the measurements, by part (MeasureClock)
        "measurements": clock.count,
        "measure_cpu_s": {k: round(v, 3) for k, v in clock.seconds.items()},
        "pretrain": pretrain,
        **job_record([int(s) for s in seeds], diverged_at, steps_done, elapsed, device),
        **(extra or {}),
    }
    seeds, steps = np.asarray(seeds), np.asarray(rec.steps)
    spec = {f"layer{l}": np.stack([st[l] for st in rec.spectra], axis=1) for l in range(depth)}
    metrics = metrics_table(seeds, steps, rec.scalars, rec.spectra, main_eps, bound_eps)
    ranks = ranks_table(seeds, steps, [spec[f"layer{l}"] for l in range(depth)], eps)

    out_dir = Path(out_dir)
    refuse_symlink(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / mf.NAME).unlink(missing_ok=True)  # until the new files are all in place, the folder is unfinished
    atomic_write(out_dir / "metrics.parquet", lambda t: metrics.to_parquet(t, index=False))
    atomic_write(out_dir / "ranks.parquet", lambda t: ranks.to_parquet(t, index=False))

    def _npz(tmp):
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, steps=steps, seeds=seeds, normalisation=normalisation, **spec)

    atomic_write(out_dir / "spectra.npz", _npz)
    write_json(out_dir / "run.json", run)
    mf.seal(out_dir)


def refuse_symlink(out_dir: Path) -> None:
    """A run folder that is a symlink would write into the folder it points at (another run's)."""
    if out_dir.is_symlink():
        raise ConfigError(f"{out_dir}: is a symlink (to {out_dir.resolve()}); a run writes only into its own folder")


def metrics_table(seeds: np.ndarray, steps: np.ndarray, scalars: dict, spectra, main_eps: float, bound_eps: float):
    """metrics.parquet: one row per (seed, step), sorted so; the scalars in their order, ``eps_rank``
    fourth, ``bound_eps`` last, the violations as booleans."""
    n_t, n_s = len(steps), len(seeds)
    cols = {"seed": np.tile(seeds, n_t), "step": np.repeat(steps, n_s)}
    for key, vals in scalars.items():
        cols[key] = np.concatenate(vals)
    metrics = pd.DataFrame(cols)
    metrics.insert(3, "eps_rank", main_ranks(spectra, main_eps).T.reshape(-1))
    metrics["bound_eps"] = bound_eps
    # compared in float64 with the loss recomputed from the same linear system (bounds.BoundResult)
    metrics["bound_violation"] = metrics["bound_violation"] == 1
    metrics["eps_bound_violation"] = metrics["eps_bound_violation"] == 1
    return metrics.sort_values(["seed", "step"], kind="stable").reset_index(drop=True)


def ranks_table(seeds: np.ndarray, steps: np.ndarray, layers: list[np.ndarray], eps: list[float]) -> pd.DataFrame:
    """ranks.parquet: per hidden layer (its (S, T, n) spectra), the eps-rank at every eps, then the
    peer metrics; NaN where a seed had diverged (NaN spectra)."""
    n_t, n_s = len(steps), len(seeds)
    frames = []
    for l, s in enumerate(layers):
        valid = ~np.isnan(s[..., 0])
        clean = np.nan_to_num(s, nan=0.0)
        ranks = rk.eps_rank_from_spectrum(clean, eps)  # (S, T, E)
        base = {"seed": np.repeat(seeds, n_t), "step": np.tile(steps, n_s), "layer": l}
        for e_i, e in enumerate(eps):
            value = np.where(valid, ranks[..., e_i], np.nan).reshape(-1)
            frames.append(pd.DataFrame({**base, "metric": "eps_rank", "eps": e, "value": value}))
        for metric, fn in rk.PEER_METRICS.items():
            value = np.where(valid, fn(clean), np.nan).reshape(-1).astype(float)
            frames.append(pd.DataFrame({**base, "metric": metric, "eps": np.nan, "value": value}))
    return pd.concat(frames, ignore_index=True)


__all__ = ["main_ranks", "metrics_table", "ranks_table", "write_results"]
