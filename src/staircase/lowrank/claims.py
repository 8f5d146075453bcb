"""Verdicts of claims B1-B3 (paper B) and C1-C3 (paper C) from the files the runs wrote.

Nothing is retrained: each study's ``claims_inputs.parquet`` (see ``collapse`` and ``alignment``) and
``run.json`` are read, and every claim a study is tagged with (``claims:`` in config.yaml) gives rows
in the format of ``staircase.audit.Row`` (claim, experiment = ``<family>/<study>``, metric, value,
threshold, verdict, spread, n, detail, runs) with PASS / FAIL / INCONCLUSIVE. Thresholds come from
the ``audit:`` section of config.yaml (``THRESHOLDS`` are the schema's defaults).

Guard rails of paper B (a run that is not evidence is reported as such and not counted):

* lambda = 0 cells are the no-weight-decay baseline (there is no stationary point of J to speak of);
* a cell must be near-stationary: ``stationarity_avg_max`` (the gradient of J averaged over the
  last steps, relative to lambda ||W_l||_F, max over layers) <= ``b_stationarity_tol``;
* it must not have collapsed to a trivial classifier: large lambda sends every weight to 0 and the
  prediction to a constant, so a cell with ``train_accuracy`` < ``b_min_train_accuracy`` or a
  cross-entropy >= ``b_trivial_loss_fraction`` * log K (that of the uniform prediction) is trivial
  (near W = 0 the argmax of vanishing logits can still be right by chance);
* a trend (Spearman over lambda or noise) needs ``b_min_levels`` distinct values among valid cells.

B1 - for every hidden layer: Spearman(lambda, dist_K/||W||_F) over valid cells <= ``b1_max_spearman``,
and, for hidden layers after the first (whose input is a hidden representation), the median
dist_K/||W||_F at the largest valid lambda <= ``b_rank_tol``. Layer 1's value is reported: its input
is the data, whose within-class variability B2 is about.
B2 - Spearman(noise, dist_K/||W_1||_F) over valid cells >= ``b2_min_spearman``, and every deeper hidden
layer has dist_K/||W||_F <= ``b_rank_tol`` at every valid cell.
B3 - zero violations of the bound at the valid cells' final checkpoints (all layers); violations at
any checkpoint of any cell and the bound's tightness are reported.
C1 - every linear layer after the last ReLU (not the output row vector, rank 1 trivially) has median
sigma_1/||W||_F >= ``c1_min_sigma1_ratio`` at the end; ReLU layers are reported.
C2 - every adjacent linear pair has median alignment >= ``c2_min_alignment``; ReLU pairs reported.
C3 - over all checkpoints: linear pairs' full drift <= ``c3_max_drift``; ReLU pairs' diagonal drift
<= ``c3_max_drift`` while their full drift exceeds it (only the diagonal is conserved); pairs around a
skip connection (no invariance expected) are reported.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from staircase.lowrank import settings
from staircase.runs import read_json, read_table

PASS, FAIL, INCONCLUSIVE = "PASS", "FAIL", "INCONCLUSIVE"

THRESHOLDS = {
    "min_seeds": 2,
    "b_stationarity_tol": 0.05,
    "b_min_train_accuracy": 0.5,
    "b_trivial_loss_fraction": 0.99,
    "b_min_levels": 3,
    "b_rank_tol": 0.1,
    "b1_max_spearman": -0.5,
    "b2_min_spearman": 0.5,
    "c1_min_sigma1_ratio": 0.99,
    "c2_min_alignment": 0.99,
    "c3_max_drift": 0.01,
}

CLAIMS = {"rank_collapse": ("B1", "B2", "B3"), "alignment": ("C1", "C2", "C3")}


def thresholds(config: dict) -> dict:
    return {**THRESHOLDS, **(config.get("audit") or {})}


def _row(claim, experiment, metric, value, op, threshold, verdict=None, spread="", n=0, detail="", runs=()):
    value = float(value) if value is not None else float("nan")
    if verdict is None:
        verdict = _compare(value, op, threshold)
    return {
        "claim": claim,
        "experiment": experiment,
        "metric": metric,
        "value": value,
        "threshold": f"{op} {threshold:g}" if op else "",
        "verdict": verdict,
        "spread": spread,
        "n": int(n),
        "detail": detail,
        "runs": list(runs),
    }


def _compare(value, op, threshold) -> str:
    if value is None or not np.isfinite(value):
        return INCONCLUSIVE
    return PASS if {">=": value >= threshold, "<=": value <= threshold, "==": value == threshold}[op] else FAIL


def _spread(values) -> str:
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    return f"[{v.min():.3g}, {v.max():.3g}]" if v.size else ""


def _spearman(a, b) -> float:
    from scipy.stats import spearmanr

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.size < 2 or np.all(a == a[0]) or np.all(b == b[0]):
        return float("nan")
    return float(spearmanr(a, b).statistic)


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


def _excluded(cells: pd.DataFrame, axis: str) -> str:
    bad = cells[cells["status"] != "ok"]
    if bad.empty:
        return "no cell excluded"
    parts = []
    for status, group in bad.groupby("status"):
        values = sorted(set(group[axis].round(12)))
        parts.append(f"{status}: {axis} {', '.join(f'{v:g}' for v in values)}")
    return "excluded cells - " + "; ".join(parts)


def _levels_row(claim, experiment, cells, axis, t, runs):
    ok = cells[cells["status"] == "ok"]
    levels = ok[axis].nunique()
    verdict = PASS if levels >= t["b_min_levels"] else INCONCLUSIVE
    return _row(
        claim,
        experiment,
        f"distinct {axis} values among valid cells (lambda > 0, near-stationary, non-trivial)",
        levels,
        ">=",
        t["b_min_levels"],
        verdict=verdict,
        n=len(ok),
        detail=_excluded(cells, axis),
        runs=runs,
    )


def eval_b1(experiment, ci, t, runs) -> list[dict]:
    cells = collapse_cell_status(ci, t)
    rows = [_levels_row("B1", experiment, cells, "weight_decay", t, runs)]
    enough = rows[0]["verdict"] == PASS
    valid = ci[ci["cell"].isin(cells.loc[cells["status"] == "ok", "cell"])]
    base = ci[ci["weight_decay"] == 0]
    hidden = sorted(ci.loc[~ci["is_output"], "layer"].unique())
    lam_max = valid["weight_decay"].max() if not valid.empty else np.nan
    for layer in hidden:
        v = valid[valid["layer"] == layer]
        rho = _spearman(v["weight_decay"], v["dist_k_rel"]) if enough else float("nan")
        at_max = v[v["weight_decay"] == lam_max]
        b = base[base["layer"] == layer]["dist_k_rel"]
        detail = (
            f"dist_K/||W|| median: lambda=0 baseline {b.median():.3g}, largest valid lambda {lam_max:g}: "
            f"{at_max['dist_k_rel'].median():.3g}; numerical rank there {at_max['numerical_rank'].median():g} "
            f"(K = {int(ci['classes'].iloc[0])}, width {int(v['fan_out'].iloc[0]) if len(v) else 0})"
        )
        rows.append(
            _row(
                "B1",
                experiment,
                f"layer {layer}: Spearman(lambda, dist_K/||W||_F) over valid cells",
                rho,
                "<=",
                t["b1_max_spearman"],
                verdict=None if enough else INCONCLUSIVE,
                n=len(v),
                detail=detail,
                runs=runs,
            )
        )
        if layer > 1:
            value = at_max["dist_k_rel"].median() if len(at_max) else float("nan")
            rows.append(
                _row(
                    "B1",
                    experiment,
                    f"layer {layer}: dist_K/||W||_F at the largest valid lambda (median over seeds)",
                    value,
                    "<=",
                    t["b_rank_tol"],
                    verdict=None if len(at_max) >= t["min_seeds"] else INCONCLUSIVE,
                    spread=_spread(at_max["dist_k_rel"]),
                    n=len(at_max),
                    detail=f"lambda = {lam_max:g}",
                    runs=runs,
                )
            )
    return rows


def eval_b2(experiment, ci, t, runs) -> list[dict]:
    cells = collapse_cell_status(ci, t)
    if ci["noise"].isna().all():
        return [_row("B2", experiment, "noise sweep", np.nan, "", 0, INCONCLUSIVE, detail="no noise levels (digits)")]
    rows = [_levels_row("B2", experiment, cells, "noise", t, runs)]
    enough = rows[0]["verdict"] == PASS
    valid = ci[ci["cell"].isin(cells.loc[cells["status"] == "ok", "cell"])]
    first = valid[valid["layer"] == 1]
    rho = _spearman(first["noise"], first["dist_k_rel"]) if enough else float("nan")
    by_noise = first.groupby("noise")["dist_k_rel"].median()
    slope = float("nan")
    if len(first) >= 2 and (first["dist_k_rel"] > 0).all():
        slope = float(np.polyfit(np.log(first["within_class_rel"]), np.log(first["dist_k_rel"]), 1)[0])
    rows.append(
        _row(
            "B2",
            experiment,
            "layer 1: Spearman(within-class noise, dist_K/||W||_F) over valid cells",
            rho,
            ">=",
            t["b2_min_spearman"],
            verdict=None if enough else INCONCLUSIVE,
            n=len(first),
            detail="median dist_K/||W|| by noise: "
            + ", ".join(f"{k:g}: {v:.3g}" for k, v in by_noise.items())
            + f"; log-log slope against the input's relative within-class variability {slope:.2f}",
            runs=runs,
        )
    )
    deeper = valid[(valid["layer"] > 1) & ~valid["is_output"]]
    worst = deeper["dist_k_rel"].max() if len(deeper) else float("nan")
    rows.append(
        _row(
            "B2",
            experiment,
            "deeper hidden layers: max dist_K/||W||_F over valid cells",
            worst,
            "<=",
            t["b_rank_tol"],
            verdict=None if len(deeper) else INCONCLUSIVE,
            spread=_spread(deeper["dist_k_rel"]),
            n=len(deeper),
            detail="deeper layers' inputs are hidden representations with small within-class variability: "
            + ", ".join(f"layer {l} median {g['within_class_rel'].median():.3g}" for l, g in deeper.groupby("layer")),
            runs=runs,
        )
    )
    return rows


def eval_b3(experiment, ci, t, runs) -> list[dict]:
    cells = collapse_cell_status(ci, t)
    valid = ci[ci["cell"].isin(cells.loc[cells["status"] == "ok", "cell"])]
    violations = int(valid["bound_violation"].sum())
    all_steps = int(ci["bound_violations_all_steps"].sum())
    hidden = valid[~valid["is_output"]]
    tight = (hidden["dist_k"] / hidden["bound_rhs"]).median() if len(hidden) else float("nan")
    nonvacuous = (hidden["bound_rhs"] < hidden["fro"]).mean() if len(hidden) else float("nan")
    nonvacuous_tight = (hidden["bound_rhs_tight"] < hidden["fro"]).mean() if len(hidden) else float("nan")
    grad_share = (hidden["bound_grad"] / hidden["bound_rhs"]).median() if len(hidden) else float("nan")
    detail = (
        f"violations at any checkpoint of any cell (incl. non-evidence): {all_steps}; "
        f"hidden layers: median dist_K / bound {tight:.3g}, bound < ||W||_F in {nonvacuous:.0%} "
        f"({nonvacuous_tight:.0%} with ||Delta (X-M)^T||_F in place of ||Delta||_2 ||X-M||_F), "
        f"median share of the gradient term {grad_share:.2f}; " + _excluded(cells, "weight_decay")
    )
    return [
        _row(
            "B3",
            experiment,
            "bound violations at valid cells (final checkpoint, every layer)",
            violations,
            "==",
            0,
            verdict=(INCONCLUSIVE if valid.empty else None),
            n=len(valid),
            detail=detail,
            runs=runs,
        )
    ]


# ---- paper C ----------------------------------------------------------------------------------


def _seed_row(claim, experiment, metric, values, op, threshold, t, runs, detail="", diverged=()):
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    value = float(np.median(values)) if values.size else float("nan")
    verdict = _compare(value, op, threshold)
    notes = [detail] if detail else []
    if diverged:
        notes.append("excluded (diverged): " + ", ".join(diverged))
    if values.size < t["min_seeds"]:
        verdict = INCONCLUSIVE
        notes.append(f"only {values.size} healthy seed(s), need {t['min_seeds']}")
    return _row(
        claim, experiment, metric, value, op, threshold, verdict, _spread(values), values.size, "; ".join(notes), runs
    )


def _reported(frame: pd.DataFrame, label: str) -> str:
    if frame.empty:
        return ""
    med = frame.groupby("item", sort=False)["value"].median()
    return f"{label}: " + ", ".join(f"{k} {v:.3g}" for k, v in med.items())


def eval_c1(experiment, ci, t, runs, diverged=()) -> list[dict]:
    c = ci[ci["claim"] == "C1"]
    linear = c[(c["kind"] == "linear") & ~c["trivially_rank1"]]
    relu_note = _reported(c[c["kind"] == "relu"], "ReLU layers (need not be rank 1), median sigma1/||W||")
    if linear.empty:
        return [
            _row(
                "C1",
                experiment,
                "linear layers",
                np.nan,
                "",
                0,
                INCONCLUSIVE,
                detail="no linear layer of rank > 1 possible",
            )
        ]
    return [
        _seed_row(
            "C1",
            experiment,
            f"{item} (linear): sigma_1/||W||_F at the end",
            g["value"],
            ">=",
            t["c1_min_sigma1_ratio"],
            t,
            runs,
            relu_note,
            diverged,
        )
        for item, g in linear.groupby("item", sort=False)
    ]


def eval_c2(experiment, ci, t, runs, diverged=()) -> list[dict]:
    c = ci[ci["claim"] == "C2"]
    linear = c[c["kind"] == "linear"]
    note = _reported(c[c["kind"] != "linear"], "pairs with a ReLU between, median alignment")
    if linear.empty:
        return [_row("C2", experiment, "linear pairs", np.nan, "", 0, INCONCLUSIVE, detail="no adjacent linear layers")]
    return [
        _seed_row(
            "C2",
            experiment,
            f"{item} (linear): alignment |<u_1(W_k), v_1(W_k+1)>| at the end",
            g["value"],
            ">=",
            t["c2_min_alignment"],
            t,
            runs,
            note,
            diverged,
        )
        for item, g in linear.groupby("item", sort=False)
    ]


def eval_c3(experiment, ci, t, runs, diverged=()) -> list[dict]:
    c = ci[ci["claim"] == "C3"]
    tol = t["c3_max_drift"]
    rows = []
    for item, g in c.groupby("item", sort=False):
        expected = g["expected"].iloc[0]
        full = g[g["metric"] == "drift_full"]["value"]
        diag = g[g["metric"] == "drift_diag"]["value"]
        if expected == "full":
            rows.append(
                _seed_row(
                    "C3",
                    experiment,
                    f"{item} (linear): max full drift / ||W||_F^2",
                    full,
                    "<=",
                    tol,
                    t,
                    runs,
                    "",
                    diverged,
                )
            )
        elif expected == "diagonal":
            rows.append(
                _seed_row(
                    "C3",
                    experiment,
                    f"{item} (ReLU): max diagonal drift / ||W||_F^2",
                    diag,
                    "<=",
                    tol,
                    t,
                    runs,
                    "",
                    diverged,
                )
            )
            rows.append(
                _seed_row(
                    "C3",
                    experiment,
                    f"{item} (ReLU): max full drift / ||W||_F^2 (only the diagonal is conserved)",
                    full,
                    ">=",
                    tol,
                    t,
                    runs,
                    "the full matrix is not expected to be conserved across a ReLU",
                    diverged,
                )
            )
    skip = c[c["expected"] == "none"]
    if not skip.empty and rows:
        note = "around a skip connection (no invariance expected): " + ", ".join(
            f"{item} {m} {v:.3g}"
            for (item, m), v in skip.groupby(["item", "metric"], sort=False)["value"].median().items()
        )
        rows[0]["detail"] = "; ".join(filter(None, [rows[0]["detail"], note]))
    return rows


EVALUATORS = {"B1": eval_b1, "B2": eval_b2, "B3": eval_b3, "C1": eval_c1, "C2": eval_c2, "C3": eval_c3}


def run_rows(path, family: str, study: str, claims, t: dict) -> list[dict]:
    """Rows of ``claims`` for one study's run directory ``path``, thresholds ``t``."""
    t = {**THRESHOLDS, **t}
    experiment = f"{family}/{study}"
    path = Path(path)
    if not (path / "claims_inputs.parquet").exists():
        return [_row(c, experiment, "results", np.nan, "", 0, INCONCLUSIVE, detail="no results found") for c in claims]
    ci = read_table(path / "claims_inputs.parquet")
    info = read_json(path / "run.json")
    runs = [str(path)]
    rows = []
    for claim in claims:
        if family == "alignment":
            diverged = [f"seed {s} {st}" for s, st in info["status"].items() if st != "ok"]
            rows += EVALUATORS[claim](experiment, ci, t, runs, diverged)
        else:
            rows += EVALUATORS[claim](experiment, ci, t, runs)
    return rows


def study_rows(config: dict, family: str, study: str, results="results") -> list[dict]:
    """Rows of the claims a study is tagged with, from its files under ``results``."""
    claims = settings.claims_of(config, family).get(study, [])
    return run_rows(Path(results) / "runs" / family / study, family, study, claims, thresholds(config))


def audit_rows(config: dict, results="results") -> list[dict]:
    """Every tagged claim of every enabled study of both families."""
    rows = []
    for family in settings.FAMILIES:
        for study in settings.studies(config, family):
            rows += study_rows(config, family, study, results)
    return rows


def verdict_table(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=list(_row("", "", "", 0, "", 0, PASS)))
    frame["runs"] = frame["runs"].map(lambda v: ";".join(v) if isinstance(v, list) else v)
    return frame
