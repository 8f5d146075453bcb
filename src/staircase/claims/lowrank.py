"""Verdicts of claims B1-B3 (paper B) and C1-C3 (paper C) from the files the runs wrote.

Nothing is retrained: each study's ``claims_inputs.parquet``, ``layers.parquet`` (and, for paper C,
``pairs.parquet``) and ``run.json`` are read (see ``collapse`` and ``alignment``), and every claim a
study is tagged with (``claims:`` in config.yaml) gives ``staircase.claims.verdicts.Row`` s with
experiment = ``<family>/<study>``. Each row has a role (test, guard, self-check, description), the
null model it is judged against and, where the test has one, its p-value. The claims, statistics
and null models are declared in ``staircase/claims.yaml``; thresholds come from the ``audit:``
section of the config over the schema's defaults (:func:`thresholds`).

Guard rails of paper B (guard rows: a study whose guard fails is INCONCLUSIVE, never PASS or FAIL).
The cells are filtered in turn and each step is a guard row on what is left:

* lambda = 0 cells are the no-weight-decay baseline (there is no stationary point of J to speak
  of), and diverged cells are no evidence;
* a cell must not have collapsed to a trivial classifier: large lambda sends every weight to 0 and
  the prediction to a constant, so a cell with ``train_accuracy`` < ``b_min_train_accuracy`` or a
  cross-entropy >= ``b_trivial_loss_fraction`` * log K (that of the uniform prediction) is trivial
  (near W = 0 the argmax of vanishing logits can still be right by chance);
* a cell must be near-stationary: ``stationarity_avg_max`` (the gradient of J averaged over the
  last steps, relative to lambda ||W_l||_F, max over layers) <= ``b_stationarity_tol``.

B1/B2 need ``b_min_levels`` distinct lambda (noise) values among the cells left, B3 ``min_seeds``
cells.

B1 - tests, every hidden layer: Spearman(lambda, dist_K/||W||_F) over the valid cells <=
``b1_max_spearman`` with a one-sided permutation p <= ``alpha`` (the lambda labels permuted over the
valid cells: exact enumeration up to ``EXACT_MAX`` cells, else ``RESAMPLES`` seeded draws); hidden
layers after the first (whose input is a hidden representation): median dist_K/||W||_F at the
largest valid lambda <= ``b_rank_tol``, against the null of a random matrix of the layer's shape
(its value at initialisation, step 0 of ``layers.parquet``). Every layer must pass (an
intersection-union rule: each row at level alpha, the claim too).
B2 - test: Spearman(noise, dist_K/||W_1||_F) over valid cells >= ``b2_min_spearman`` with
permutation p <= ``alpha``; every deeper hidden layer <= ``b_rank_tol`` at every valid cell (null:
initialisation, as B1).
B3 - self-checks: the bound holds at every checkpoint of every cell with lambda > 0 and every layer
(it holds at any point by algebra, so a violation is a bug: ERROR), and so does its tighter variant.
Test: the share of (valid cell, hidden layer) where the bound lies below ||W||_F (where it says
something: dist_K <= ||W||_F always) >= ``b3_min_nonvacuous``; null: a vacuous bound. The median
tightness dist_K / bound and the tighter variant's share are descriptions.
C1 - tests: every linear layer after the last ReLU (not the output row vector, rank 1 trivially):
median sigma_1/||W||_F >= ``c1_min_sigma1_ratio`` at the end; null: a random matrix of the layer's
shape (its value at step 0 of ``layers.parquet``). ReLU layers are descriptions.
C2 - tests: every adjacent linear pair: median alignment >= ``c2_min_alignment`` at the end; null:
independent random singular vectors (the alignment at step 0 of ``pairs.parquet``). ReLU pairs are
descriptions.
C3 - tests, max over checkpoints: linear pairs' full drift <= ``c3_max_drift``; ReLU pairs' diagonal
drift <= ``c3_max_drift``. Guards: the weights moved (the smallest relative change of ||W||_F since
initialisation over the layers of the tested pairs, max over checkpoints, >= ``c3_max_drift``: a net
that did not train has drift 0) and the pairs without the full invariance (across a ReLU, around a
skip) drifted beyond ``c3_max_drift`` (the tolerance tells a conserved quantity from one that is
not). Pairs around a skip connection are descriptions (no invariance expected: the null's value).

The false-positive rates of these tests under their nulls are measured by
``staircase.claims.lowrank_calibration``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from staircase.claims import registry
from staircase.claims.verdicts import (
    INCONCLUSIVE,
    PASS,
    Row,
    all_of,
    compare,
    compare_p,
    description_row,
    guard_row,
    self_check_row,
    summarise,
    threshold_row,
    to_frame,
    too_few_seeds,
)
from staircase.records.runs import load_study_run
from staircase.workflow import lowrank_settings as settings
from staircase.workflow.config import results_root

CLAIMS = {"rank_collapse": ("B1", "B2", "B3"), "alignment": ("C1", "C2", "C3")}
EXACT_MAX = 8  # permutation tests enumerate every permutation up to this many cells (8! = 40320)
RESAMPLES = 20_000  # else this many random permutations, p = (1 + #as extreme) / (1 + RESAMPLES)
PERMUTATION_SEED = 0
VIOLATION_RTOL = 1e-9  # as collapse.VIOLATION_RTOL: rounding of a float64 comparison


def threshold_keys() -> list[str]:
    """The audit thresholds claims B1-C3 use (claims.yaml), in their order of first use."""
    return registry.threshold_keys(__name__)


def thresholds(config: dict) -> dict:
    """The thresholds of claims B1-C3: the config's ``audit:`` over the schema's defaults."""
    t = registry.thresholds(config)
    return {k: t[k] for k in threshold_keys() if k in t}


@dataclass
class Study:
    """What one study's run directory holds, as the evaluators read it."""

    experiment: str
    claims_inputs: pd.DataFrame
    layers: pd.DataFrame
    pairs: pd.DataFrame = field(default_factory=pd.DataFrame)
    info: dict = field(default_factory=dict)
    runs: list[str] = field(default_factory=list)

    @property
    def diverged(self) -> list[str]:
        return [f"seed {s} {st}" for s, st in (self.info.get("status") or {}).items() if st != "ok"]


def load_study(path, family: str, study: str) -> Study | None:
    path = Path(path)
    if not (path / "claims_inputs.parquet").exists():
        return None
    run = load_study_run(path)  # verified against its manifest before any byte is used
    read = lambda name: run.table(name) if run.holds(name) else pd.DataFrame()  # noqa: E731
    return Study(f"{family}/{study}", read("claims_inputs"), read("layers"), read("pairs"), run.info, [str(path)])


# ---- statistics -------------------------------------------------------------------------------


def spearman(a, b) -> float:
    """Spearman's rho (average ranks for ties); NaN when either side is constant or too short."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.size < 2 or np.all(a == a[0]) or np.all(b == b[0]):
        return float("nan")
    x, y = rankdata(a) - (a.size + 1) / 2, rankdata(b) - (b.size + 1) / 2
    return float(x @ y / np.sqrt((x @ x) * (y @ y)))


def spearman_permutation(labels, values, alternative: str, resamples: int = RESAMPLES, seed: int = PERMUTATION_SEED):
    """Spearman(labels, values) and its one-sided permutation p-value: the labels permuted over the
    cells (every permutation when there are at most EXACT_MAX cells, else ``resamples`` seeded ones,
    p = (1 + #as extreme) / (1 + resamples)). ``alternative``: "less" (a negative trend) or "greater".
    Returns (rho, p, (2.5 %, 97.5 %) of the null distribution of rho, number of permutations, exact)."""
    a, b = np.asarray(labels, dtype=float), np.asarray(values, dtype=float)
    rho = spearman(a, b)
    if not np.isfinite(rho):
        return rho, float("nan"), (float("nan"), float("nan")), 0, False
    x, y = rankdata(a) - (a.size + 1) / 2, rankdata(b) - (b.size + 1) / 2
    y = y / np.sqrt((x @ x) * (y @ y))
    exact = a.size <= EXACT_MAX
    null = x[_permutations(a.size, 0 if exact else resamples, seed)] @ y
    tol = 1e-12  # ties of the statistic count as "as extreme"
    hits = int((null <= rho + tol).sum() if alternative == "less" else (null >= rho - tol).sum())
    p = hits / len(null) if exact else (1 + hits) / (1 + len(null))
    lo, hi = np.quantile(null, [0.025, 0.975])
    return rho, float(p), (float(lo), float(hi)), len(null), exact


@cache
def _permutations(n: int, resamples: int, seed: int) -> np.ndarray:
    """Every permutation of n items (resamples = 0), else ``resamples`` seeded random ones; cached
    (the same for every row and every calibration draw), read-only."""
    if resamples == 0:
        perms = np.array(list(itertools.permutations(range(n))))
    else:
        perms = np.random.default_rng(seed).permuted(np.tile(np.arange(n), (resamples, 1)), axis=1)
    perms.setflags(write=False)
    return perms


def spearman_verdict(rho: float, p: float, op: str, threshold: float, alpha: float) -> str:
    """B1/B2's rule: PASS when the Spearman is beyond its threshold and its permutation p <= alpha."""
    return all_of(compare(rho, op, threshold), compare_p(p, alpha))


def nonvacuous_share(bound, fro) -> float:
    """B3's statistic: the share of layers where the bound lies below ||W||_F (NaN without any)."""
    bound, fro = np.asarray(bound, dtype=float), np.asarray(fro, dtype=float)
    return float((bound < fro).mean()) if bound.size else float("nan")


def relative_norm_change(layers: pd.DataFrame) -> pd.DataFrame:
    """Per seed and layer: max over checkpoints of | ||W_t||_F / ||W_0||_F - 1 |, a lower bound on
    ||W_t - W_0||_F / ||W_0||_F (the triangle inequality) - how far the weights moved at least."""
    ordered = layers.sort_values("step")
    first = ordered.groupby(["seed", "layer"])["fro"].transform("first")
    change = (ordered["fro"] / first - 1).abs()
    return ordered.assign(change=change).groupby(["seed", "layer"], as_index=False)["change"].max()


# ---- paper B ----------------------------------------------------------------------------------


def collapse_cell_status(claims_inputs: pd.DataFrame, t: dict) -> pd.DataFrame:
    """One row per cell: weight_decay, noise, seed, train_accuracy, stationarity_avg_max and
    ``status``: ok (evidence) / no weight decay / not stationary / trivial classifier / diverged."""
    cells = claims_inputs.groupby("cell", as_index=False).first()[
        [
            "cell",
            "weight_decay",
            "noise",
            "seed",
            "loss",
            "classes",
            "train_accuracy",
            "stationarity_avg_max",
            "diverged",
        ]
    ]

    def status(r):
        if r["diverged"]:
            return "diverged"
        if r["weight_decay"] <= 0:
            return "no weight decay (baseline)"
        chance = np.log(r["classes"])  # the cross-entropy of a constant uniform prediction
        if not (r["train_accuracy"] >= t["b_min_train_accuracy"]) or r["loss"] >= t["b_trivial_loss_fraction"] * chance:
            return "trivial classifier"
        if not (r["stationarity_avg_max"] <= t["b_stationarity_tol"]):
            return "not stationary"
        return "ok"

    cells["status"] = cells.apply(status, axis=1)
    return cells


def _values(frame: pd.DataFrame, axis: str) -> str:
    return ", ".join(f"{v:g}" for v in sorted(set(frame[axis].round(12))))


def _excluded(cells: pd.DataFrame, axis: str) -> str:
    bad = cells[cells["status"] != "ok"]
    if bad.empty:
        return "no cell excluded"
    parts = [f"{status}: {axis} {_values(group, axis)}" for status, group in bad.groupby("status")]
    return "excluded cells - " + "; ".join(parts)


def collapse_guards(claim: str, study: Study, cells: pd.DataFrame, axis: str | None, t: dict) -> tuple[list[Row], bool]:
    """The guard rails in turn, each a guard row on the cells it leaves: with ``axis``, the number of
    distinct ``axis`` values (>= b_min_levels), else the number of cells (>= min_seeds). Returns the
    rows and whether every guard held."""
    steps = (
        ("trained cells with lambda > 0", ("diverged", "no weight decay (baseline)")),
        (
            f"... not a trivial classifier (train accuracy >= {t['b_min_train_accuracy']:g}, "
            f"cross-entropy < {t['b_trivial_loss_fraction']:g} log K)",
            ("trivial classifier",),
        ),
        (
            f"... near-stationary (window-averaged stationarity <= {t['b_stationarity_tol']:g}): the valid cells",
            ("not stationary",),
        ),
    )
    left, rows = cells, []
    for words, causes in steps:
        dropped, left = left[left["status"].isin(causes)], left[~left["status"].isin(causes)]
        detail = (
            f"excluded here - {', '.join(causes)}: {axis or 'weight_decay'} {_values(dropped, axis or 'weight_decay')}"
        )
        if dropped.empty:
            detail = "none excluded here"
        if axis:
            value, op_t, metric = left[axis].nunique(), t["b_min_levels"], f"distinct {axis} values: {words}"
        else:
            value, op_t, metric = len(left), t["min_seeds"], f"cells: {words}"
        rows.append(
            guard_row(claim, study.experiment, metric, value, ">=", op_t, n=len(left), detail=detail, runs=study.runs)
        )
    return rows, all(r.verdict == PASS for r in rows)


def _init_null(study: Study, layer: int, column: str) -> tuple[float, str]:
    """``column`` of ``layer`` at initialisation (step 0 of layers.parquet): median over seeds (the
    cells of one seed share their initial weights) and its text."""
    return _at_init(study.layers, "layer", layer, column)


def _spearman_row(claim, study, metric, labels, values, op, threshold, alternative, t, enough, detail, axis):
    rho, p, (lo, hi), count, exact = spearman_permutation(labels, values, alternative)
    verdict = spearman_verdict(rho, p, op, threshold, t["alpha"]) if enough else INCONCLUSIVE
    how = f"all {count} permutations" if exact else f"{count} random permutations (seed {PERMUTATION_SEED})"
    row = threshold_row(
        claim,
        study.experiment,
        metric,
        rho,
        op,
        threshold,
        verdict=verdict,
        p_value=p,
        null=f"no relation: {axis} labels permuted over the {len(values)} valid cells ({how}); "
        f"null 95% range of the Spearman [{lo:.2f}, {hi:.2f}]",
        n=len(values),
        detail=detail,
        runs=study.runs,
    )
    row.threshold += f" and one-sided p <= {t['alpha']:g}"
    return row


def eval_b1(study: Study, t: dict) -> list[Row]:
    ci = study.claims_inputs
    cells = collapse_cell_status(ci, t)
    rows, enough = collapse_guards("B1", study, cells, "weight_decay", t)
    rows[-1].detail += "; " + _excluded(cells, "weight_decay")
    valid = ci[ci["cell"].isin(cells.loc[cells["status"] == "ok", "cell"])]
    base = ci[(ci["weight_decay"] == 0) & ~ci["diverged"]]
    hidden = sorted(ci.loc[~ci["is_output"], "layer"].unique())
    lam_max = valid["weight_decay"].max() if not valid.empty else np.nan
    for layer in hidden:
        v = valid[valid["layer"] == layer]
        at_max = v[v["weight_decay"] == lam_max]
        b = base[base["layer"] == layer]["dist_k_rel"]
        by_lam = v.groupby("weight_decay")["dist_k_rel"].median()
        detail = (
            "median dist_K/||W|| by lambda: "
            + ", ".join(f"{k:g}: {d:.3g}" for k, d in by_lam.items())
            + f"; lambda = 0 baseline {b.median():.3g}; numerical rank at lambda {lam_max:g}: "
            f"{at_max['numerical_rank'].median():g} (K = {int(ci['classes'].iloc[0])}, "
            f"width {int(v['fan_out'].iloc[0]) if len(v) else 0})"
        )
        rows.append(
            _spearman_row(
                "B1",
                study,
                f"layer {layer}: Spearman(lambda, dist_K/||W||_F) over valid cells",
                v["weight_decay"],
                v["dist_k_rel"],
                "<=",
                t["b1_max_spearman"],
                "less",
                t,
                enough,
                detail,
                "lambda",
            )
        )
        if layer > 1:
            value, spread, n = summarise(at_max["dist_k_rel"])
            init, init_text = _init_null(study, layer, "dist_k_rel")
            rows.append(
                threshold_row(
                    "B1",
                    study.experiment,
                    f"layer {layer}: dist_K/||W||_F at the largest valid lambda (median over seeds)",
                    value,
                    "<=",
                    t["b_rank_tol"],
                    verdict=None if enough and n >= t["min_seeds"] else INCONCLUSIVE,
                    null=f"a random matrix of the layer's shape: dist_K/||W||_F at initialisation {init_text}; "
                    f"after training without weight decay (lambda = 0) {b.median():.3g}",
                    spread=spread,
                    n=n,
                    detail=f"lambda = {lam_max:g}"
                    + ("" if n >= t["min_seeds"] else f"; only {n} cell(s), need {t['min_seeds']}"),
                    runs=study.runs,
                )
            )
    return rows


def eval_b2(study: Study, t: dict) -> list[Row]:
    ci = study.claims_inputs
    if ci["noise"].isna().all():
        return [
            guard_row(
                "B2",
                study.experiment,
                "distinct noise values (a noise sweep)",
                0,
                ">=",
                t["b_min_levels"],
                detail="no noise levels (digits)",
                runs=study.runs,
            )
        ]
    cells = collapse_cell_status(ci, t)
    rows, enough = collapse_guards("B2", study, cells, "noise", t)
    rows[-1].detail += "; " + _excluded(cells, "noise")
    valid = ci[ci["cell"].isin(cells.loc[cells["status"] == "ok", "cell"])]
    first = valid[valid["layer"] == 1]
    by_noise = first.groupby("noise")["dist_k_rel"].median()
    rows.append(
        _spearman_row(
            "B2",
            study,
            "layer 1: Spearman(within-class noise, dist_K/||W||_F) over valid cells",
            first["noise"],
            first["dist_k_rel"],
            ">=",
            t["b2_min_spearman"],
            "greater",
            t,
            enough,
            "median dist_K/||W|| by noise: " + ", ".join(f"{k:g}: {v:.3g}" for k, v in by_noise.items()),
            "noise",
        )
    )
    slope = float("nan")
    if len(first) >= 2 and (first["dist_k_rel"] > 0).all() and first["within_class_rel"].nunique() > 1:
        slope = float(np.polyfit(np.log(first["within_class_rel"]), np.log(first["dist_k_rel"]), 1)[0])
    rows.append(
        description_row(
            "B2",
            study.experiment,
            "layer 1: log-log slope of dist_K/||W||_F against the input's relative within-class variability",
            slope,
            n=len(first),
            runs=study.runs,
        )
    )
    return rows + [_b2_deeper_layers(study, valid, enough, t)]


def _b2_deeper_layers(study: Study, valid: pd.DataFrame, enough: bool, t: dict) -> Row:
    """B2's test of the hidden layers after the first: collapsed at every valid cell."""
    deeper = valid[(valid["layer"] > 1) & ~valid["is_output"]]
    worst = deeper["dist_k_rel"].max() if len(deeper) else float("nan")
    _, spread, n = summarise(deeper["dist_k_rel"])
    init = [_init_null(study, layer, "dist_k_rel")[0] for layer in sorted(deeper["layer"].unique())]
    return threshold_row(
        "B2",
        study.experiment,
        "deeper hidden layers: max dist_K/||W||_F over valid cells",
        worst,
        "<=",
        t["b_rank_tol"],
        verdict=None if enough and n else INCONCLUSIVE,
        null="a random matrix of the layer's shape: dist_K/||W||_F at initialisation, median per layer "
        + ", ".join(f"{v:.3g}" for v in init),
        spread=spread,
        n=n,
        detail="deeper layers' inputs are hidden representations with small within-class variability: "
        + ", ".join(f"layer {l} median {g['within_class_rel'].median():.3g}" for l, g in deeper.groupby("layer")),
        runs=study.runs,
    )


def eval_b3(study: Study, t: dict) -> list[Row]:
    ci = study.claims_inputs
    cells = collapse_cell_status(ci, t)
    rows, enough = collapse_guards("B3", study, cells, None, t)
    rows[-1].detail += "; " + _excluded(cells, "weight_decay")
    valid = ci[ci["cell"].isin(cells.loc[cells["status"] == "ok", "cell"])]
    hidden = valid[~valid["is_output"]]
    share = nonvacuous_share(hidden["bound_rhs"], hidden["fro"])
    per_layer = ", ".join(
        f"layer {l} {nonvacuous_share(g['bound_rhs'], g['fro']):.0%}" for l, g in hidden.groupby("layer")
    )
    rows += _b3_self_checks(study, valid)
    rows.append(
        threshold_row(
            "B3",
            study.experiment,
            "share of (valid cell, hidden layer) where the bound lies below ||W||_F (non-vacuous)",
            share,
            ">=",
            t["b3_min_nonvacuous"],
            verdict=None if enough and len(hidden) else INCONCLUSIVE,
            null="a vacuous bound: at least ||W||_F, above any distance to rank K",
            n=len(hidden),
            detail=f"per layer: {per_layer}; median bound / ||W||_F "
            f"{(hidden['bound_rhs'] / hidden['fro']).median():.3g}",
            runs=study.runs,
        )
    )
    return rows + _b3_descriptions(study, hidden)


def _b3_self_checks(study: Study, valid: pd.DataFrame) -> list[Row]:
    """B3's identities, at every checkpoint of every cell with lambda > 0 and every layer
    (layers.parquet): the bound, and its tighter variant (below the bound, above dist_K)."""
    lay = study.layers
    checked = lay[(lay["weight_decay"] > 0) & lay["bound_rhs"].notna()] if not lay.empty else lay
    violations = int(checked["bound_violation"].sum()) if len(checked) else 0
    tight_bad = (
        int((checked["dist_k"] > checked["bound_rhs_tight"] * (1 + VIOLATION_RTOL) + 1e-12).sum())
        + int((checked["bound_rhs_tight"] > checked["bound_rhs"] * (1 + VIOLATION_RTOL) + 1e-12).sum())
        if len(checked)
        else 0
    )
    return [
        self_check_row(
            "B3",
            study.experiment,
            "bound violations, every checkpoint of every cell with lambda > 0, every layer",
            violations,
            len(checked),
            null="an identity: grad_W J = (1/N) Delta X^T + lambda W at any point, so the bound cannot fail",
            detail=f"of them at the valid cells' final checkpoint: {int(valid['bound_violation'].sum())}",
            runs=study.runs,
        ),
        self_check_row(
            "B3",
            study.experiment,
            "tighter variant (||Delta (X-M)^T||_F / (lambda N) as first term): violations, or looser than the bound",
            tight_bad,
            len(checked),
            null="an identity: the step of the proof before ||AB||_F <= ||A||_2 ||B||_F",
            runs=study.runs,
        ),
    ]


def _b3_descriptions(study: Study, hidden: pd.DataFrame) -> list[Row]:
    """What B3 reports beside its test, over the valid cells' hidden layers: the bound's tightness,
    its tighter variant's share, the gradient term's share."""
    tight, spread, n = summarise(hidden["dist_k"] / hidden["bound_rhs"])
    grad, g_spread, g_n = summarise(hidden["bound_grad"] / hidden["bound_rhs"])
    return [
        description_row(
            "B3",
            study.experiment,
            "tightness dist_K / bound, valid cells' hidden layers (median)",
            tight,
            spread=spread,
            n=n,
            runs=study.runs,
        ),
        description_row(
            "B3",
            study.experiment,
            "share where the tighter variant lies below ||W||_F",
            nonvacuous_share(hidden["bound_rhs_tight"], hidden["fro"]),
            n=len(hidden),
            runs=study.runs,
        ),
        description_row(
            "B3",
            study.experiment,
            "share of the gradient term ||grad_W J||_F / lambda in the bound (median)",
            grad,
            spread=g_spread,
            n=g_n,
            runs=study.runs,
        ),
    ]


# ---- paper C ----------------------------------------------------------------------------------


def _seed_row(claim, study, metric, values, op, threshold, t, null="", detail=""):
    """A test on the median over healthy seeds (INCONCLUSIVE with fewer than min_seeds)."""
    value, spread, n = summarise(values)
    notes = [detail] if detail else []
    if study.diverged:
        notes.append("excluded (diverged): " + ", ".join(study.diverged))
    few = too_few_seeds(n, t["min_seeds"])
    if few:
        notes.append(few)
    return threshold_row(
        claim,
        study.experiment,
        metric,
        value,
        op,
        threshold,
        verdict=INCONCLUSIVE if few else None,
        null=null,
        spread=spread,
        n=n,
        detail="; ".join(notes),
        runs=study.runs,
    )


def _item_rows(claim, study, values: pd.DataFrame, metric: str, op, threshold, t, null) -> list[Row]:
    """One :func:`_seed_row` per item of ``values`` (its ``value`` per seed), in their order;
    ``metric`` a format of the ``{item}``, ``null(item)`` its null model."""
    return [
        _seed_row(claim, study, metric.format(item=item), g["value"], op, threshold, t, null=null(item))
        for item, g in values.groupby("item", sort=False)
    ]


def _described_items(claim, study, values: pd.DataFrame, metric: str) -> list[Row]:
    """One description per item of ``values``; ``metric`` a format of the ``{item}``."""
    return [
        _describe(claim, study, metric.format(item=item), g["value"]) for item, g in values.groupby("item", sort=False)
    ]


def _nothing(claim, experiment, what, detail="none in this study", runs=()) -> Row:
    """A guard that fails: there is nothing to test (the claim is INCONCLUSIVE)."""
    return guard_row(claim, experiment, what, 0, ">=", 1, detail=detail, runs=list(runs))


def _describe(claim, study, metric, values, detail=""):
    value, spread, n = summarise(values)
    return description_row(claim, study.experiment, metric, value, spread=spread, n=n, detail=detail, runs=study.runs)


def _at_init(frame: pd.DataFrame, key: str, item, column: str) -> tuple[float, str]:
    """``column`` where ``key`` == ``item`` at the first checkpoint (step 0), one value per seed."""
    if frame.empty or "step" not in frame:
        return float("nan"), "not recorded"
    init = frame[(frame["step"] == frame["step"].min()) & (frame[key] == item)]
    value, spread, n = summarise(init.groupby("seed")[column].median())
    return value, f"{value:.3g} {spread} (step 0, {n} seed(s))"


def eval_c1(study: Study, t: dict) -> list[Row]:
    c = study.claims_inputs[study.claims_inputs["claim"] == "C1"]
    linear = c[(c["kind"] == "linear") & ~c["trivially_rank1"]]
    rows = _item_rows(
        "C1",
        study,
        linear,
        "{item} (linear): sigma_1/||W||_F at the end",
        ">=",
        t["c1_min_sigma1_ratio"],
        t,
        lambda item: (
            "a random matrix of the layer's shape: sigma_1/||W||_F at initialisation "
            + _at_init(study.layers, "layer", int(item.split()[-1]), "sigma1_ratio")[1]
        ),
    ) or [_nothing("C1", study.experiment, "linear layers of rank > 1 after the last ReLU", runs=study.runs)]
    relu = c[c["kind"] == "relu"]
    return rows + _described_items("C1", study, relu, "{item} (ReLU, need not be rank 1): sigma_1/||W||_F at the end")


def eval_c2(study: Study, t: dict) -> list[Row]:
    c = study.claims_inputs[study.claims_inputs["claim"] == "C2"]
    rows = _item_rows(
        "C2",
        study,
        c[c["kind"] == "linear"],
        "{item} (linear): alignment |<u_1(W_k), v_1(W_k+1)>| at the end",
        ">=",
        t["c2_min_alignment"],
        t,
        lambda item: (
            "independent random singular vectors: the alignment at initialisation "
            + _at_init(study.pairs, "layers", item.split()[-1], "alignment")[1]
        ),
    ) or [_nothing("C2", study.experiment, "adjacent linear pairs", runs=study.runs)]
    return rows + _described_items(
        "C2", study, c[c["kind"] != "linear"], "{item} (with a ReLU between): alignment at the end"
    )


def eval_c3(study: Study, t: dict) -> list[Row]:
    c = study.claims_inputs[study.claims_inputs["claim"] == "C3"]
    tol = t["c3_max_drift"]
    full = c[c["metric"] == "drift_full"]
    diag = c[c["metric"] == "drift_diag"]
    tested = c[c["expected"].isin(("full", "diagonal"))]
    control = full[full["expected"].isin(("diagonal", "none"))]  # the pairs without the full invariance
    rows = [_c3_weights_moved(study, tested, tol), _c3_control(study, control, tol)]
    null_run = (
        f"; in this run the pairs without it drift {_smallest_drift(control)[0]:.3g} (smallest, median over seeds)"
        if not control.empty
        else "; no pair without it in this run"
    )
    skip_diag = diag[diag["expected"] == "none"]
    skip_text = (
        f"; around a skip the diagonal drifts {_smallest_drift(skip_diag)[0]:.3g}" if not skip_diag.empty else ""
    )
    null = "no invariance (random-walk weights: drift beyond the tolerance, see staircase.claims.lowrank_calibration)"
    for drifts, expected, kind, beside in ((full, "full", "linear", null_run), (diag, "diagonal", "ReLU", skip_text)):
        metric = f"{{item}} ({kind}): max {expected} drift / ||W||_F^2"
        rows += _item_rows(
            "C3", study, drifts[drifts["expected"] == expected], metric, "<=", tol, t, lambda item, b=beside: null + b
        )
    for (item, metric), g in c[c["expected"] == "none"].groupby(["item", "metric"], sort=False):
        rows.append(
            _describe(
                "C3", study, f"{item} (around a skip, no invariance expected): max {metric} / ||W||_F^2", g["value"]
            )
        )
    rows += _described_items(
        "C3", study, full[full["expected"] == "diagonal"], "{item} (ReLU): max full drift / ||W||_F^2 (not conserved)"
    )
    if not len(tested):
        what = "pairs with an expected invariance (linear, or ReLU without a skip)"
        rows.append(_nothing("C3", study.experiment, what, runs=study.runs))
    return rows


def _smallest_drift(drifts: pd.DataFrame) -> tuple[float, str, int]:
    """Per seed the smallest of the pairs' (max over checkpoints) drifts: median, spread, seeds."""
    return summarise(drifts.groupby("seed")["value"].min())


def _c3_weights_moved(study: Study, tested: pd.DataFrame, tol: float) -> Row:
    """C3's first guard: the weights moved (a net that did not train has drift 0)."""
    layers_tested = sorted({int(x) for item in tested["item"].unique() for x in item.split()[-1].split("-")})
    if study.layers.empty:
        moved, spread, n = float("nan"), "", 0
    else:
        change = relative_norm_change(study.layers)
        change = change[change["layer"].isin(layers_tested)]
        moved, spread, n = summarise(change.groupby("seed")["change"].min())
    return guard_row(
        "C3",
        study.experiment,
        "the weights moved: smallest relative change of ||W||_F since initialisation over the tested pairs' "
        "layers (max over checkpoints, median over seeds)",
        moved,
        ">=",
        tol,
        spread=spread,
        n=n,
        detail="a lower bound on ||W_t - W_0||_F / ||W_0||_F; layers " + ", ".join(map(str, layers_tested)),
        runs=study.runs,
    )


def _c3_control(study: Study, control: pd.DataFrame, tol: float) -> Row:
    """C3's second guard: the pairs without the full invariance (``control``) drifted beyond the
    tolerance (it tells a conserved quantity from one that is not)."""
    if control.empty:
        return guard_row(
            "C3",
            study.experiment,
            "pairs without the full invariance (across a ReLU or around a skip) drift beyond the tolerance",
            float("nan"),
            ">=",
            tol,
            detail="no such pair in this network: nothing shows the tolerance tells conserved from not",
            runs=study.runs,
        )
    value, spread, n = _smallest_drift(control)
    return guard_row(
        "C3",
        study.experiment,
        "pairs without the full invariance (across a ReLU or around a skip): smallest max full drift "
        "(median over seeds)",
        value,
        ">=",
        tol,
        spread=spread,
        n=n,
        detail="pairs " + ", ".join(control["item"].str.replace("pair ", "").unique()),
        runs=study.runs,
    )


EVALUATORS = {"B1": eval_b1, "B2": eval_b2, "B3": eval_b3, "C1": eval_c1, "C2": eval_c2, "C3": eval_c3}


def run_rows(path, family: str, study: str, claims, t: dict) -> list[Row]:
    """Rows of ``claims`` for one study's run directory ``path``, thresholds ``t`` (over the
    schema's defaults)."""
    t = {**registry.threshold_defaults(), **t}
    data = load_study(path, family, study)
    if data is None:
        return [
            guard_row(c, f"{family}/{study}", "results", float("nan"), ">=", 1, detail=f"no results found in {path}")
            for c in claims
        ]
    return [row for claim in claims for row in EVALUATORS[claim](data, t)]


def study_rows(config: dict, family: str, study: str, results=None) -> list[Row]:
    """Rows of the claims a study is tagged with, from its files under ``results`` (default: the
    config's results root)."""
    claims = settings.claims_of(config, family).get(study, [])
    root = Path(results or results_root(config))
    return run_rows(root / "runs" / family / study, family, study, claims, thresholds(config))


def audit_rows(config: dict, results=None) -> list[Row]:
    """Every tagged claim of every enabled study of both families."""
    rows = []
    for family in settings.FAMILIES:
        for study in settings.studies(config, family):
            rows += study_rows(config, family, study, results)
    return rows


def verdict_table(rows: list[Row]) -> pd.DataFrame:
    return to_frame(rows)
