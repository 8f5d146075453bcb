"""False-positive rates of the tests of claims B1-B3 and C1-C3 under their null models.

Each function draws an ensemble of data from one test's null model, at the sizes of the default
config (``config.yaml``: 2 seeds per cell and 6 lambda > 0 or 5 noise levels in paper B, 3 seeds
and width 20 in paper C), applies the rule the audit applies (the functions of
``staircase.claims.lowrank``, thresholds from the schema's defaults) and counts how often the test
passes although the null holds. ``report`` gathers every rate; ``python -m
staircase.claims.lowrank_calibration [draws]`` prints the table of docs/claims.md. Deterministic
(seeded); a few seconds for 200 draws each.

The nulls:

* B1/B2 Spearman with its permutation p: distances independent of lambda (noise), i.i.d. across
  cells, or with a shared offset per seed (cells of one seed alike, as when they share an
  initialisation); the rule is one-sided (rho beyond its threshold and p <= alpha).
* B1/B2 distance to rank K <= b_rank_tol: a random matrix of the layer's shape (He-uniform, as the
  nets are initialised, or Gaussian), median over seeds.
* B3 non-vacuity: the bound at random points, (W, Delta, X) drawn independently (no stationarity):
  the share of layers where it lies below ||W||_F.
* C1 sigma_1/||W||_F >= c1_min_sigma1_ratio and C2 alignment >= c2_min_alignment: random matrices
  of the linear layers' shape; independent random unit vectors (singular vectors of independent
  random matrices are uniform on the sphere).
* C3 drift <= c3_max_drift: random-walk weights (isotropic steps, no invariance), stopped as soon
  as they pass the guard "the weights moved" (the smallest relative change of ||W||_F reaches
  c3_max_drift) - the least movement the audit accepts; also the worst case of a pure rescaling
  W -> c W by that much, which the second guard (the non-conserved pairs drifted) must catch.
"""

from __future__ import annotations

import itertools
import math
import sys
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from staircase.claims import lowrank as claims
from staircase.claims import registry
from staircase.claims.verdicts import OPS, PASS
from staircase.core import linalg
from staircase.training import collapse


@dataclass
class Rate:
    claim: str
    test: str
    null: str
    draws: int
    passes: int
    # the statistic of the null draw that came closest to passing; for the Spearman rules, which do
    # pass at about alpha, the least extreme Spearman that passed (the rule's effective critical value)
    closest: float

    @property
    def rate(self) -> float:
        return self.passes / self.draws


def defaults() -> dict:
    return registry.threshold_defaults()


def _he_uniform(rng, shape, size=()):
    """BiasFreeNet's initialisation up to scale (every statistic here is scale-free)."""
    return rng.uniform(-1.0, 1.0, size=(*size, *shape))


def _matrices(rng, shape, size, kind):
    return _he_uniform(rng, shape, size) if kind == "uniform" else rng.standard_normal((*size, *shape))


# ---- paper B ----------------------------------------------------------------------------------


def b_spearman(claim="B1", levels=6, seeds=2, draws=200, seed=0, seed_effect=0.0, t=None) -> Rate:
    """B1 (a negative trend over lambda) or B2 (a positive one over noise) on distances independent of
    the labels: log-distances N(0, 1) plus ``seed_effect`` x a N(0, 1) offset shared by each seed's cells."""
    t = t or defaults()
    op, threshold, alternative = (
        ("<=", t["b1_max_spearman"], "less") if claim == "B1" else (">=", t["b2_min_spearman"], "greater")
    )
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(1.0, levels + 1), seeds)
    seed_of = np.tile(np.arange(seeds), levels)
    passes, closest = 0, np.inf if alternative == "greater" else -np.inf
    for _ in range(draws):
        offsets = rng.standard_normal(seeds)
        values = np.exp(rng.standard_normal(labels.size) + seed_effect * offsets[seed_of])
        rho, p, *_ = claims.spearman_permutation(labels, values, alternative)
        if claims.spearman_verdict(rho, p, op, threshold, t["alpha"]) == PASS:
            passes += 1
            closest = min(closest, rho) if alternative == "greater" else max(closest, rho)
    null = "distances independent of the labels" + (
        f", seed offsets {seed_effect:g} x the cell noise" if seed_effect else ", i.i.d."
    )
    test = f"Spearman {op} {threshold:g} and p <= {t['alpha']:g}, {levels} levels x {seeds} seeds"
    return Rate(claim, test, null, draws, passes, float(closest))


def b_spearman_orders(claim="B1", levels=6, seeds=2, orders=0, seed=0, t=None) -> Rate:
    """The rate of B1's (B2's) Spearman rule under ANY continuous i.i.d. null, without sampling noise
    in the values: the rule depends on the ranks of the distances only, and under such a null every
    order of them is equally likely. ``orders`` = 0 enumerates every order (up to 10 cells: 10! =
    3.6 million), else that many seeded random orders. The permutation p uses the audit's own
    permutations (claims.spearman_permutation), so this is the rate of the rule as it is applied."""
    t = t or defaults()
    op, threshold, alternative = (
        ("<=", t["b1_max_spearman"], "less") if claim == "B1" else (">=", t["b2_min_spearman"], "greater")
    )
    labels = np.repeat(np.arange(1.0, levels + 1), seeds)
    n = labels.size
    # the audit's null distribution of rho for these labels (its p depends on rho only)
    x = rankdata(labels) - (n + 1) / 2
    ranks = np.arange(n) - (n - 1) / 2
    den = np.sqrt((x @ x) * (ranks @ ranks))
    exact_p = n <= claims.EXACT_MAX
    perms = claims._permutations(n, 0 if exact_p else claims.RESAMPLES, claims.PERMUTATION_SEED)
    null = np.sort(x[perms] @ ranks / den)
    if orders == 0:
        if n > 10:
            raise ValueError(f"{n}! orders are too many to enumerate; pass orders > 0")
        order_sets = itertools.permutations(range(n))
        total = math.factorial(n)
    else:
        rng = np.random.default_rng(seed)
        order_sets = (row for row in rng.permuted(np.tile(np.arange(n), (orders, 1)), axis=1))
        total = orders
    passes, closest, tol = 0, np.inf if alternative == "greater" else -np.inf, 1e-12
    for chunk in _chunks(order_sets, 200_000):
        rho = ranks[np.asarray(chunk)] @ x / den
        if alternative == "less":
            hits = np.searchsorted(null, rho + tol, side="right")
        else:
            hits = len(null) - np.searchsorted(null, rho - tol, side="left")
        p = hits / len(null) if exact_p else (1 + hits) / (1 + len(null))
        ok = OPS["<="](p, t["alpha"]) & OPS[op](rho, threshold)  # spearman_verdict's rule, over many orders
        passes += int(ok.sum())
        if alternative == "less":  # the least extreme Spearman that passes: the rule's critical value
            closest = max(closest, float(rho[ok].max(initial=-np.inf)))
        else:
            closest = min(closest, float(rho[ok].min(initial=np.inf)))
    how = "every order" if orders == 0 else f"{orders} random orders"
    test = f"Spearman {op} {threshold:g} and p <= {t['alpha']:g}, {levels} levels x {seeds} seeds"
    return Rate(claim, test, f"any continuous i.i.d. null ({how} of the distances)", total, passes, closest)


def _chunks(iterable, size):
    chunk = []
    for item in iterable:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def b_rank_random(shape=(32, 32), classes=10, seeds=2, draws=1000, seed=0, kind="uniform", t=None) -> Rate:
    """B1/B2's distance rows: median over seeds of dist_K/||W||_F <= b_rank_tol for random matrices."""
    t = t or defaults()
    rng = np.random.default_rng(seed)
    mats = _matrices(rng, shape, (draws, seeds), kind)
    dist = linalg.distance_to_rank(linalg.singular_values(mats), classes, relative=True)
    stat = np.median(dist, axis=1)
    test = f"median dist_K/||W||_F <= {t['b_rank_tol']:g}, K = {classes}, {shape[0]}x{shape[1]}, {seeds} seeds"
    null = f"random matrix ({'He-uniform' if kind == 'uniform' else 'Gaussian'})"
    return Rate("B1/B2", test, null, draws, int((stat <= t["b_rank_tol"]).sum()), float(stat.min()))


def b3_random_points(
    shapes=((32, 64), (32, 32), (32, 32)),
    points=300,
    classes=10,
    weight_decay=(5e-3, 1e-2, 2e-2, 3e-2),
    seeds=2,
    draws=200,
    seed=0,
    t=None,
) -> Rate:
    """B3's non-vacuity at random points: W (He-uniform), X (N(0, 1) inputs) and Delta (N(0, s^2), s
    log-uniform over 1e-3..1) drawn independently, grad of the data term = (1/N) Delta X^T; share of
    (cell, hidden layer) with the bound below ||W||_F >= b3_min_nonvacuous."""
    t = t or defaults()
    rng = np.random.default_rng(seed)
    y = np.arange(points) % classes
    lam = np.repeat(np.asarray(weight_decay, dtype=float), seeds)
    passes, closest = 0, 0.0
    for _ in range(draws):
        below = []
        for n_out, n_in in shapes:
            s = lam.size
            mat = _he_uniform(rng, (n_out, n_in), (s,)) * np.sqrt(6.0 / n_in)
            x_in = rng.standard_normal((s, points, n_in))
            delta = rng.standard_normal((s, points, n_out)) * 10 ** rng.uniform(-3, 0, size=(s, 1, 1))
            grad = np.einsum("snk,snj->skj", delta, x_in) / points
            terms = collapse.layer_terms(mat, grad, delta, x_in, y, classes, lam, 1e-3)
            below += list(terms["bound_rhs"] < terms["fro"])
        share = float(np.mean(below))
        passes += share >= t["b3_min_nonvacuous"]
        closest = max(closest, share)
    test = f"non-vacuous share >= {t['b3_min_nonvacuous']:g}, {len(lam)} cells x {len(shapes)} layers"
    return Rate("B3", test, "the bound at random points (no stationarity)", draws, passes, closest)


# ---- paper C ----------------------------------------------------------------------------------


def c1_random(shape=(20, 20), seeds=3, draws=1000, seed=0, kind="uniform", t=None) -> Rate:
    t = t or defaults()
    rng = np.random.default_rng(seed)
    sv = linalg.singular_values(_matrices(rng, shape, (draws, seeds), kind))
    stat = np.median(sv[..., 0] / np.sqrt((sv**2).sum(axis=-1)), axis=1)
    test = f"median sigma_1/||W||_F >= {t['c1_min_sigma1_ratio']:g}, {shape[0]}x{shape[1]}, {seeds} seeds"
    null = f"random matrix ({'He-uniform' if kind == 'uniform' else 'Gaussian'})"
    return Rate("C1", test, null, draws, int((stat >= t["c1_min_sigma1_ratio"]).sum()), float(stat.max()))


def c2_random(dim=20, seeds=3, draws=1000, seed=0, t=None) -> Rate:
    t = t or defaults()
    rng = np.random.default_rng(seed)
    u, v = rng.standard_normal((2, draws, seeds, dim))
    cos = np.abs((u * v).sum(-1)) / np.linalg.norm(u, axis=-1) / np.linalg.norm(v, axis=-1)
    stat = np.median(cos, axis=1)
    test = f"median alignment >= {t['c2_min_alignment']:g}, dimension {dim}, {seeds} seeds"
    passes = int((stat >= t["c2_min_alignment"]).sum())
    return Rate("C2", test, "independent random unit vectors", draws, passes, float(stat.max()))


def _drift(w_k, w_k1, d0, metric):
    scale = 0.5 * ((w_k**2).sum(axis=(-2, -1)) + (w_k1**2).sum(axis=(-2, -1)))
    return linalg.invariance_drift(linalg.invariance(w_k, w_k1), d0, scale)[f"drift_{metric}"]


def c3_random_walk(
    shapes=((20, 20), (20, 20)), metric="full", seeds=3, draws=200, seed=0, step=0.02, max_steps=20_000, t=None
) -> Rate:
    """Random walks W <- W + step ||W_0||_F G/||G||_F (G Gaussian) of the pair (W_k, W_k+1), each
    stopped at the first step where both layers' relative change of ||W||_F (max so far) reaches
    c3_max_drift (the guard); false positive when the median over seeds of the max drift so far is
    <= c3_max_drift."""
    t = t or defaults()
    tol = t["c3_max_drift"]
    rng = np.random.default_rng(seed)
    size = (draws * seeds,)
    w = [_he_uniform(rng, shape, size) for shape in shapes]
    fro0 = [np.sqrt((m**2).sum(axis=(-2, -1))) for m in w]
    d0 = linalg.invariance(*w)
    moved = np.zeros((2, *size))
    worst = np.zeros(size)
    active = np.ones(size, dtype=bool)
    for _ in range(max_steps):
        if not active.any():
            break
        for i, m in enumerate(w):
            g = rng.standard_normal(m.shape)
            g *= (step * fro0[i] / np.sqrt((g**2).sum(axis=(-2, -1))))[:, None, None]
            m[active] += g[active]
            change = np.abs(np.sqrt((m**2).sum(axis=(-2, -1))) / fro0[i] - 1)
            moved[i] = np.maximum(moved[i], change)
        worst = np.where(active, np.maximum(worst, _drift(w[0], w[1], d0, metric)), worst)
        active &= moved.min(axis=0) < tol
    stat = np.median(worst.reshape(draws, seeds), axis=1)
    pair = " & ".join(f"{a}x{b}" for a, b in shapes)
    test = f"median max {metric} drift <= {tol:g}, pair {pair}, {seeds} seeds"
    null = f"random walk stopped at the guard (weights moved {tol:g})"
    return Rate("C3", test, null, draws, int((stat <= tol).sum()), float(stat.min()))


def c3_rescaling(
    shapes=((20, 20), (20, 20)), control=((20, 64), (20, 20)), seeds=3, draws=1000, seed=0, guards=True, t=None
) -> Rate:
    """The worst case the random walk misses: every layer rescaled by c = 1 + c3_max_drift (guard 1,
    the weights moved, just holds). A linear pair's full drift is then (c^2 - 1)/c^2 ||D_0|| / scale_0,
    below the tolerance for typical D_0: the row alone passes. With ``guards``, a false positive also
    needs guard 2: the ``control`` pair (across a ReLU, same rescaling) drifting beyond the tolerance."""
    t = t or defaults()
    tol = t["c3_max_drift"]
    rng = np.random.default_rng(seed)
    c = 1 + tol
    medians = []
    for pair in (shapes, control):
        w = [_he_uniform(rng, shape, (draws * seeds,)) for shape in pair]
        drift = _drift(c * w[0], c * w[1], linalg.invariance(*w), "full")
        medians.append(np.median(drift.reshape(draws, seeds), axis=1))
    stat, ctrl = medians
    passes = (stat <= tol) & (ctrl >= tol) if guards else stat <= tol
    pair = " & ".join(f"{a}x{b}" for a, b in shapes)
    test = f"median max full drift <= {tol:g}, pair {pair}, {seeds} seeds" + (" (with both guards)" if guards else "")
    null = f"every layer rescaled W -> {c:g} W"
    return Rate("C3", test, null, draws, int(passes.sum()), float(stat.min()))


def report(draws: int = 200, seed: int = 0) -> pd.DataFrame:
    """Every rate: the Spearman rules over every order of the distances (or 2 million), the other
    nulls ``draws`` draws each (the random-matrix ones 5x as many: they cost nothing)."""
    rates = [
        b_spearman_orders("B1", 4, 2),  # the default run's valid cells: 8, every order
        b_spearman_orders("B2", 5, 2),  # 10 cells, every order (3.6 million; ~10 s)
        b_spearman_orders("B1", 6, 2, orders=2_000_000, seed=seed),
        b_spearman("B1", 6, 2, draws, seed),
        b_spearman("B1", 4, 2, draws, seed),  # the default run's valid cells (exact permutations)
        b_spearman("B1", 6, 2, draws, seed, seed_effect=2.0),
        b_spearman("B2", 5, 2, draws, seed),
        b_spearman("B2", 5, 2, draws, seed, seed_effect=2.0),
        b_rank_random((32, 32), 10, draws=5 * draws, seed=seed),
        b_rank_random((32, 32), 4, draws=5 * draws, seed=seed),
        b_rank_random((32, 32), 10, draws=5 * draws, seed=seed, kind="gaussian"),
        b3_random_points(draws=draws, seed=seed),
        c1_random((20, 20), draws=5 * draws, seed=seed),
        c1_random((20, 20), draws=5 * draws, seed=seed, kind="gaussian"),
        c2_random(20, draws=5 * draws, seed=seed),
        c3_random_walk(((20, 20), (20, 20)), "full", draws=draws, seed=seed),
        c3_random_walk(((20, 20), (1, 20)), "full", draws=draws, seed=seed),
        c3_random_walk(((20, 64), (20, 20)), "diag", draws=draws, seed=seed),
        c3_random_walk(((20, 20), (20, 20)), "diag", draws=draws, seed=seed),
        c3_rescaling(draws=5 * draws, seed=seed, guards=False),
        c3_rescaling(draws=5 * draws, seed=seed),
    ]
    frame = pd.DataFrame([asdict(r) for r in rates])
    frame["rate"] = frame["passes"] / frame["draws"]
    return frame


if __name__ == "__main__":
    with pd.option_context("display.width", 250, "display.max_colwidth", 90):
        print(report(int(sys.argv[1]) if len(sys.argv) > 1 else 200).to_string(index=False))
