"""Segment an epsilon-rank series into plateaus and jumps, and measure how the loss moves with it.

This is the evidence behind claims A1 (the epsilon-rank rises in a staircase), A2 (the loss falls
as it rises) and, per sweep cell, A4 (docs/claims.md). Everything works on one series: the
checkpoints ``steps`` of one seed and its integer epsilon-ranks ``ranks`` (and, for the alignment,
its ``loss``). :func:`seed_table` applies it to every seed of a ``metrics.parquet`` table.

Segmentation (:func:`segment`)
------------------------------
1. Only the leading finite part of the series is used: a diverged seed has NaN from the step it
   diverged on (``Staircase.truncated`` says so). Ranks must be integers.
2. The series is cut into *runs* of equal consecutive values.
3. A run is *confirmed* when it holds at least ``min_points`` consecutive measurements and spans
   at least ``min_span`` training steps (from its first to its last measurement). This is the
   hysteresis: a level the rank visits for fewer measurements is a *transient*, not a stair.
   With the default ``min_points=2`` a single-measurement flicker (``..., 18, 19, 18, ...``) is
   ignored, and so is a single passing value in a fast rise (``14, 15, 16, 16`` rises 14 -> 16).
4. Consecutive confirmed runs at the same level (separated only by transients) are merged into one
   *plateau*. A plateau then extends to its level's last measurement before the next plateau and
   back to its level's first measurement after the previous one, so lone visits to a level (a
   flicker's return, a level touched just before it is confirmed) belong to its plateau, and
   transients enclosed by a plateau are part of it.
5. Each change of level between consecutive plateaus is a *jump*; it happens between the old
   plateau's last measurement and the new plateau's first one (other values in between are
   transients of a fast rise). Transients before the first plateau or after the last one make no
   jump: an unconfirmed last rise is not counted.

The number of *stairs* is the number of upward jumps (``n_stairs``); downward jumps are counted
separately (``n_drops``). ``monotonicity`` is measured on the raw series, before any smoothing:
the fraction of consecutive moves that do not decrease the rank (1.0 for a constant series).

Alignment with the loss (:func:`align_loss`)
--------------------------------------------
Loss changes are measured as drops of log(loss) (so a halving counts the same early and late).
Each jump gets a *window*: from ``window`` measurements before the old plateau's last point to
``window`` measurements after the new plateau's first point. For each jump:

* ``rel_drop`` = 1 - L(window end) / L(window start), and ``rate`` = the log-loss drop per step
  across the window;
* ``neighbour_rate`` = the log-loss drop per step on the two plateaus adjacent to the jump,
  over the measurement intervals that lie in no jump's window;
* ``aligned`` = the loss falls faster inside the window than on the neighbouring plateaus
  (``rate > neighbour_rate``). This compares each jump with its own surroundings, so the overall
  trend (most of the loss falls early) does not count as alignment. Chance level is about 1/2.

Over the whole series: ``drop_share`` is the fraction of the total log-loss drop that happens in
the union of the windows, ``step_share`` the fraction of the training steps they cover, and
``enrichment = drop_share / step_share`` (> 1: the loss falls preferentially during jumps; this
global ratio *is* affected by the trend, the per-jump ``fraction_aligned`` is not).
``spearman`` is Spearman's rank correlation between loss and epsilon-rank over the checkpoints
(``scipy.stats.spearmanr``; A2 expects it strongly negative; NaN when either series is constant).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats


@dataclass(frozen=True)
class Plateau:
    """A level the rank holds: measurements ``start`` .. ``stop - 1`` (indices into the series;
    transients inside, at other levels, belong to it)."""

    level: int
    start: int
    stop: int
    start_step: float
    end_step: float  # step of the last measurement on the plateau

    @property
    def n_points(self) -> int:
        return self.stop - self.start

    @property
    def span(self) -> float:
        """Training steps from the plateau's first to its last measurement."""
        return self.end_step - self.start_step


@dataclass(frozen=True)
class Jump:
    """A change of level between consecutive plateaus: the old plateau's last measurement is
    index ``start``, the new plateau's first is ``stop`` (transients may lie in between)."""

    before: int
    after: int
    start: int
    stop: int
    start_step: float  # last step on the old plateau
    stop_step: float  # first step on the new plateau
    step: float  # first step measured off the old plateau: where the jump is first seen

    @property
    def size(self) -> int:
        return self.after - self.before


@dataclass(frozen=True)
class Staircase:
    """The segmented series. ``steps`` and ``ranks`` are the (finite) part that was analysed."""

    steps: np.ndarray
    ranks: np.ndarray
    plateaus: tuple[Plateau, ...]
    jumps: tuple[Jump, ...]
    monotonicity: float
    truncated: bool
    min_points: int
    min_span: float

    @property
    def n_stairs(self) -> int:
        """Upward jumps between plateaus."""
        return sum(j.size > 0 for j in self.jumps)

    @property
    def n_drops(self) -> int:
        return sum(j.size < 0 for j in self.jumps)

    @property
    def jump_sizes(self) -> np.ndarray:
        return np.array([j.size for j in self.jumps], dtype=int)

    @property
    def jump_steps(self) -> np.ndarray:
        return np.array([j.step for j in self.jumps], dtype=float)

    @property
    def levels(self) -> np.ndarray:
        return np.array([p.level for p in self.plateaus], dtype=int)

    @property
    def plateau_spans(self) -> np.ndarray:
        return np.array([p.span for p in self.plateaus], dtype=float)

    @property
    def net_rise(self) -> int:
        """Last plateau level minus the first (0 without plateaus)."""
        return int(self.plateaus[-1].level - self.plateaus[0].level) if self.plateaus else 0

    def levels_at_steps(self) -> np.ndarray:
        """The denoised series, for plotting: at each measurement the level of the plateau it
        belongs to, or of the last plateau before it (a jump shows at the new plateau's first
        measurement); NaN before the first plateau."""
        return _levels_of([[p.level, p.start, p.stop] for p in self.plateaus], len(self.ranks))


@dataclass(frozen=True)
class JumpAlignment:
    """How the loss moves around one jump (see the module docstring)."""

    jump: Jump
    window_start_step: float
    window_end_step: float
    rel_drop: float
    rate: float
    neighbour_rate: float
    aligned: bool | None  # None when there is no neighbouring plateau interval to compare with


@dataclass(frozen=True)
class LossAlignment:
    jumps: tuple[JumpAlignment, ...]
    spearman: float
    spearman_p: float
    drop_share: float
    step_share: float
    window: int

    @property
    def fraction_aligned(self) -> float:
        """Fraction of jumps (with a defined comparison) where the loss falls faster than on the
        neighbouring plateaus; NaN without such jumps."""
        known = [j.aligned for j in self.jumps if j.aligned is not None]
        return float(np.mean(known)) if known else float("nan")

    @property
    def enrichment(self) -> float:
        if not np.isfinite(self.drop_share) or not self.step_share > 0:
            return float("nan")
        return self.drop_share / self.step_share


@dataclass(frozen=True)
class StairAnalysis:
    """Segmentation plus, when a loss was given, its alignment."""

    staircase: Staircase
    loss: LossAlignment | None = field(default=None)

    def summary(self) -> dict:
        """Flat numbers for a table row."""
        s = self.staircase
        out = {
            "n_points": len(s.ranks),
            "truncated": s.truncated,
            "n_stairs": s.n_stairs,
            "n_drops": s.n_drops,
            "n_plateaus": len(s.plateaus),
            "monotonicity": s.monotonicity,
            "first_level": int(s.plateaus[0].level) if s.plateaus else np.nan,
            "last_level": int(s.plateaus[-1].level) if s.plateaus else np.nan,
            "net_rise": s.net_rise,
            "mean_jump_size": float(np.mean(s.jump_sizes[s.jump_sizes > 0])) if s.n_stairs else np.nan,
            "max_jump_size": int(s.jump_sizes.max()) if s.n_stairs else np.nan,
            "median_plateau_span": float(np.median(s.plateau_spans)) if s.plateaus else np.nan,
            "max_plateau_span": float(np.max(s.plateau_spans)) if s.plateaus else np.nan,
        }
        if self.loss is not None:
            a = self.loss
            out.update(
                spearman=a.spearman,
                spearman_p=a.spearman_p,
                fraction_aligned=a.fraction_aligned,
                drop_share=a.drop_share,
                step_share=a.step_share,
                enrichment=a.enrichment,
            )
        return out


CONFIG_OPTIONS = ("min_points", "min_span", "window")  # the settings of config `analysis:` taken here


def config_options(analysis: dict | None) -> dict:
    """The stair-detection settings given in config `analysis:` (as keyword arguments of
    ``analyse`` / ``seed_table``); this module's defaults for any it leaves out."""
    analysis = analysis or {}
    return {k: analysis[k] for k in CONFIG_OPTIONS if k in analysis}


def _finite_prefix(*arrays: np.ndarray) -> int:
    ok = np.ones(len(arrays[0]), dtype=bool)
    for a in arrays:
        ok &= np.isfinite(a)
    bad = np.flatnonzero(~ok)
    return int(bad[0]) if len(bad) else len(ok)


def _checked(steps, ranks, min_points: int) -> tuple[np.ndarray, np.ndarray, bool]:
    """(steps, integer ranks, truncated): the finite prefix of a series, checked as
    :func:`segment` documents."""
    steps = np.asarray(steps, dtype=float)
    ranks = np.asarray(ranks, dtype=float)
    if steps.shape != ranks.shape or steps.ndim != 1:
        raise ValueError(f"steps and ranks must be 1-D of the same length, got {steps.shape} and {ranks.shape}")
    if min_points < 1:
        raise ValueError(f"min_points must be >= 1, got {min_points}")
    n = _finite_prefix(steps, ranks)
    truncated = n < len(ranks)
    steps, ranks = steps[:n], ranks[:n]
    if np.any(np.diff(steps) <= 0):
        raise ValueError("steps must be strictly increasing")
    if np.any(ranks != np.round(ranks)):
        raise ValueError("ranks must be integers (an epsilon-rank counts eigenvalues)")
    return steps, ranks.astype(int), truncated


def _plateau_bounds(steps: np.ndarray, ranks: np.ndarray, min_points: int, min_span: float) -> list[list[int]]:
    """[level, start, stop) of each plateau of a checked series (see the module docstring).

    Plain Python on lists: a series has a few hundred measurements and a few dozen runs, where
    numpy's per-call overhead dominated (the A1 null simulation segments each series hundreds of
    times; tests/test_stairs.py holds this equal to the array version it replaced)."""
    r = ranks.tolist()
    t = steps.tolist()
    edges = (np.flatnonzero(np.diff(ranks) != 0) + 1).tolist()
    merged: list[list[int]] = []  # [level, start, stop]
    for a, b in zip([0, *edges], [*edges, len(r)]):  # runs of equal consecutive values
        if b - a >= min_points and t[b - 1] - t[a] >= min_span:  # a confirmed run
            if merged and merged[-1][0] == r[a]:
                merged[-1][2] = b
            else:
                merged.append([r[a], a, b])
    # a plateau lasts up to its level's last visit before the next plateau, and starts at its
    # level's first visit after the previous one: lone returns to a level belong to its plateau
    for k, (v, _, b) in enumerate(merged):
        limit = merged[k + 1][1] if k + 1 < len(merged) else len(r)
        merged[k][2] = next((i + 1 for i in range(limit - 1, b - 1, -1) if r[i] == v), b)
    for k, (v, a, _) in enumerate(merged):
        floor = merged[k - 1][2] if k else 0
        merged[k][1] = next((i for i in range(floor, a) if r[i] == v), a)
    return merged


def plateau_levels(steps, ranks, min_points: int = 2, min_span: float = 0.0) -> np.ndarray:
    """``segment(...).levels_at_steps()`` without building the :class:`Staircase`: at each
    measurement of the finite prefix the level of the plateau it belongs to, or of the last one
    before it; NaN before the first plateau."""
    steps, ranks, _ = _checked(steps, ranks, min_points)
    return _levels_of(_plateau_bounds(steps, ranks, min_points, min_span), len(ranks))


def _levels_of(merged: list[list[int]], n: int) -> np.ndarray:
    """The level at each of ``n`` measurements from plateau bounds (see :func:`plateau_levels`)."""
    out = np.full(n, np.nan)
    for k, (v, a, _) in enumerate(merged):
        out[a : merged[k + 1][1] if k + 1 < len(merged) else n] = v
    return out


def segment(steps, ranks, min_points: int = 2, min_span: float = 0.0) -> Staircase:
    """Plateaus and jumps of one epsilon-rank series (see the module docstring).

    steps: increasing training steps of the checkpoints; ranks: the epsilon-rank at each (integer
    values; NaN from a divergence on is cut off). ``min_points`` (>= 1) and ``min_span`` (steps)
    are the hysteresis: the least number of consecutive measurements, and the least span in
    steps, for a level to count as a plateau.
    """
    steps, ranks, truncated = _checked(steps, ranks, min_points)
    merged = _plateau_bounds(steps, ranks, min_points, min_span)
    plateaus = tuple(Plateau(v, a, b, float(steps[a]), float(steps[b - 1])) for v, a, b in merged)
    jumps = tuple(
        Jump(
            before=p.level,
            after=q.level,
            start=p.stop - 1,
            stop=q.start,
            start_step=p.end_step,
            stop_step=q.start_step,
            step=float(steps[p.stop]),
        )
        for p, q in zip(plateaus[:-1], plateaus[1:])
    )
    moves = np.diff(ranks)
    monotonicity = float(np.mean(moves >= 0)) if len(moves) else float("nan")
    return Staircase(steps, ranks, plateaus, jumps, monotonicity, truncated, min_points, float(min_span))


def spearman(loss, ranks) -> tuple[float, float]:
    """Spearman's rho and its p-value between loss and epsilon-rank over the finite checkpoints;
    (NaN, NaN) when fewer than 3 remain or either series is constant."""
    loss = np.asarray(loss, dtype=float)
    ranks = np.asarray(ranks, dtype=float)
    ok = np.isfinite(loss) & np.isfinite(ranks)
    if ok.sum() < 3 or np.ptp(loss[ok]) == 0 or np.ptp(ranks[ok]) == 0:
        return float("nan"), float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stats.ConstantInputWarning)
        res = stats.spearmanr(loss[ok], ranks[ok])
    return float(res.statistic), float(res.pvalue)


def align_loss(staircase: Staircase, loss, window: int = 1) -> LossAlignment:
    """How the loss moves around the jumps of ``staircase`` (see the module docstring).

    loss: the loss at the same checkpoints as the series given to :func:`segment` (at least as
    long as its analysed part; must be positive there). ``window``: measurements added on each
    side of a jump's own interval.
    """
    if window < 0:
        raise ValueError(f"window must be >= 0, got {window}")
    steps = staircase.steps
    n = len(steps)
    loss = np.asarray(loss, dtype=float)[:n]
    if len(loss) < n or not np.all(np.isfinite(loss)) or np.any(loss <= 0):
        raise ValueError("loss must be positive and finite wherever the rank series is analysed")
    rho, p = spearman(loss, staircase.ranks)
    logl = np.log(loss)
    drops = -np.diff(logl)  # interval i: from measurement i to i + 1
    spans = np.diff(steps)
    inside = np.zeros(max(n - 1, 0), dtype=bool)
    windows = []
    for j in staircase.jumps:
        a, b = max(j.start - window, 0), min(j.stop + window, n - 1)
        windows.append((a, b))
        inside[a:b] = True
    per_jump = []
    for k, (j, (a, b)) in enumerate(zip(staircase.jumps, windows)):
        rate = (logl[a] - logl[b]) / (steps[b] - steps[a])
        lo = staircase.plateaus[k].start
        hi = staircase.plateaus[k + 1].stop - 1
        near = np.zeros_like(inside)
        near[lo:hi] = True
        near &= ~inside
        neighbour = drops[near].sum() / spans[near].sum() if near.any() else float("nan")
        per_jump.append(
            JumpAlignment(
                jump=j,
                window_start_step=float(steps[a]),
                window_end_step=float(steps[b]),
                rel_drop=float(1 - loss[b] / loss[a]),
                rate=float(rate),
                neighbour_rate=float(neighbour),
                aligned=bool(rate > neighbour) if near.any() else None,
            )
        )
    total = logl[0] - logl[-1] if n else float("nan")
    drop_share = float(drops[inside].sum() / total) if n > 1 and total > 0 else float("nan")
    step_share = float(spans[inside].sum() / (steps[-1] - steps[0])) if n > 1 else float("nan")
    return LossAlignment(tuple(per_jump), rho, p, drop_share, step_share, window)


def analyse(steps, ranks, loss=None, min_points: int = 2, min_span: float = 0.0, window: int = 1) -> StairAnalysis:
    """:func:`segment` and, when ``loss`` is given, :func:`align_loss` of one series. The loss
    limits the analysed part too: where it is not finite (divergence) the series is cut."""
    steps = np.asarray(steps, dtype=float)
    ranks = np.asarray(ranks, dtype=float)
    if loss is not None:
        loss = np.asarray(loss, dtype=float)
        ranks = np.where(np.isfinite(loss), ranks, np.nan)
    stair = segment(steps, ranks, min_points=min_points, min_span=min_span)
    return StairAnalysis(stair, None if loss is None else align_loss(stair, loss, window=window))


def seed_table(
    metrics: pd.DataFrame,
    rank_column: str = "eps_rank",
    loss_column: str | None = "loss",
    by=("seed",),
    **options,
) -> pd.DataFrame:
    """One row of :meth:`StairAnalysis.summary` per group (default: per seed) of a tidy metrics
    table with a ``step`` column; ``options`` go to :func:`analyse`."""
    rows = []
    for key, grp in metrics.sort_values("step").groupby(list(by), sort=True):
        grp_loss = None if loss_column is None else grp[loss_column].to_numpy()
        res = analyse(grp["step"].to_numpy(), grp[rank_column].to_numpy(), grp_loss, **options)
        rows.append({**dict(zip(by, key)), **res.summary()})
    return pd.DataFrame(rows)


__all__ = [
    "Jump",
    "JumpAlignment",
    "LossAlignment",
    "Plateau",
    "StairAnalysis",
    "Staircase",
    "align_loss",
    "analyse",
    "seed_table",
    "segment",
    "spearman",
]
