"""Comparing training methods with a baseline (claims A6 and A7): time and steps to thresholds,
initial epsilon-ranks, final errors, stairs, speed-ups, and the verdicts.

Reads the results of one experiment whose variants are methods (``staircase.training.methods``,
``staircase.networks.architectures``) and whose ``comparison:`` block (config.yaml) names the baseline(s) and
the thresholds. Nothing here trains; the notebooks ``methods_curves`` / ``methods_table`` and the
audit's A6/A7 evaluators call it.

Definitions
-----------
* clock: ``train_cpu_s`` (CPU seconds of the training thread spent optimising, first-layer
  pre-training included, measurements excluded) when every run was on the CPU; ``train_s`` (the
  same in wall seconds) otherwise. ``clock_override`` picks another column of metrics.parquet.
* time (steps) to a threshold, per seed: the clock (step) at the first measurement where
  loss <= a loss threshold, or where the last hidden layer's eps-rank at ``rank.main_eps``
  >= a rank threshold; NaN when never reached. The resolution is the measurement schedule.
* per variant: the median over seeds, counting a seed that never reached it as +inf (so the
  median is finite when more than half the seeds reached it), and the [min, max] over seeds.
* speed-up of a method over its baseline at a threshold: baseline median / method median
  (inf when only the method reaches it, 0 when only the baseline does, NaN when neither).
* the key thresholds: the hardest loss threshold and the hardest rank threshold the method's
  baseline reaches (median).
* groups: ``baseline`` (the ``baseline`` variant and every value of ``baseline_of``); ``A7`` (variants
  with first-layer pre-training, ``train.pretrain.steps > 0``); ``A6`` (every other variant: the
  acceleration methods).
* stairs: ``staircase.core.stairs.segment`` of each seed's eps-rank series (plateaus of at least
  ``min_plateau`` measurements); ``n_stairs`` is the number of upward jumps.

Verdicts (one row per metric, like the rest of the audit)
--------------------------------------------------------
A6, over the A6 methods: the fraction whose key-rank speed-up is >= ``min_speedup`` (they reach a
high eps-rank sooner), the fraction whose key-loss speed-up is >= ``min_speedup``, and the
fraction that cut the staircase (A1 does not pass on them while it passes on their baseline: the
audit's A1 decisions, ``a1_pass``; without them the stair counts are a description); each must be
>= ``a6_min_fraction``. And the mechanism: over the A6 methods compared with the main baseline,
Spearman's correlation between the key-rank and the key-loss speed-ups (methods that reach a high
rank sooner are those that train faster) must be >= ``a6_min_spearman`` with a one-sided
permutation p <= alpha (:func:`spearman_permutation`).
A7, per pre-training variant: its median initial eps-rank of the first hidden layer minus the
baseline's (>= 1; a test of the mechanism, which can fail: pre-training maximises the log-det of
that very Gram), of the last hidden layer (>= 1), its key-loss speed-up (>= ``min_speedup``; the
pre-training's time is included), and its median final relative L2 error over the baseline's
(<= ``max_error_ratio``). Variants listed in ``chosen_here`` had their settings chosen by a scan on
this experiment: their speed and error rows are descriptions (role), judged as evidence only on
other experiments, and a test row without a value says "speeds training" was not tested here, so
A7 is INCONCLUSIVE there unless a tested row fails.

Every verdict row carries a ``role`` (test, guard, description; see staircase.claims.verdicts) and the
``null`` it is judged against.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from staircase.claims import verdicts as vd
from staircase.core import stairs
from staircase.records.runs import Run, experiment_runs
from staircase.workflow.schema import load_schema  # not workflow.config: it imports torch, a notebook needs none


def options(comparison: dict) -> dict:
    """The comparison block over the schema's defaults (workflow/schemas/config.schema.yaml,
    ``$defs.comparison``: the one place they are written)."""
    schema = load_schema()
    props = schema["$defs"]["comparison"]["properties"] if schema else {}
    return {**{k: v["default"] for k, v in props.items() if "default" in v}, **comparison}


# ---- loading -------------------------------------------------------------------------------------
def method_runs(runs_dir, variants=None) -> dict[str, Run]:
    """{variant: run} for every finished run under ``runs_dir`` (results/runs/<experiment>), or
    only the named ``variants``; in the order of the variants' names (read by
    :func:`staircase.records.runs.experiment_runs`)."""
    names = sorted(variants) if variants is not None else None
    return {run.path.name: run for run in experiment_runs(runs_dir, names)}


def choose_clock(runs: dict[str, Run], clock_override: str | None = None) -> str:
    if clock_override:
        return clock_override
    on_cpu = all(str(r.info.get("device", "cpu")).startswith("cpu") for r in runs.values())
    return "train_cpu_s" if on_cpu else "train_s"


def group_of(variant: str, cfg: dict, comparison: dict) -> str:
    if variant == comparison["baseline"] or variant in (comparison.get("baseline_of") or {}).values():
        return "baseline"
    if ((cfg["train"].get("pretrain") or {}).get("steps", 0) or 0) > 0:
        return "A7"
    return "A6"


def baseline_of(variant: str, comparison: dict) -> str:
    return (comparison.get("baseline_of") or {}).get(variant, comparison["baseline"])


# ---- per seed ------------------------------------------------------------------------------------
def first_reached(values: np.ndarray, ok: np.ndarray, at: np.ndarray) -> float:
    """``at`` of the first measurement where ``ok`` holds (NaN if none)."""
    idx = np.flatnonzero(ok & np.isfinite(values))
    return float(at[idx[0]]) if idx.size else float("nan")


def loss_key(threshold: float) -> str:
    return f"loss<={threshold:g}"


def rank_key(threshold: int) -> str:
    return f"rank>={int(threshold)}"


def seed_table(runs: dict[str, Run], comparison: dict, clock: str) -> pd.DataFrame:
    """One row per variant and seed (see the module docstring for every column)."""
    opt = options(comparison)
    rows = []
    for variant, run in runs.items():
        info, metrics, ranks = run.info, run.metrics, run.ranks
        cfg = info["config"]
        eps = cfg["rank"]["main_eps"]
        layer_ranks = ranks[(ranks["metric"] == "eps_rank") & np.isclose(ranks["eps"], eps)]
        pre = info.get("pretrain") or {}
        for i, (seed, m) in enumerate(metrics.sort_values("step").groupby("seed", sort=True)):
            steps, t = m["step"].to_numpy(float), m[clock].to_numpy(float)
            loss, rank = m["loss"].to_numpy(float), m["eps_rank"].to_numpy(float)
            row = {
                "variant": variant,
                "group": group_of(variant, cfg, comparison),
                "baseline": baseline_of(variant, comparison),
                "seed": int(seed),
                "status": info["status"].get(str(int(seed)), "ok"),
            }
            for th in comparison["loss_thresholds"]:
                row[f"steps_to_{loss_key(th)}"] = first_reached(loss, loss <= th, steps)
                row[f"time_to_{loss_key(th)}"] = first_reached(loss, loss <= th, t)
            for th in comparison["rank_thresholds"]:
                row[f"steps_to_{rank_key(th)}"] = first_reached(rank, rank >= th, steps)
                row[f"time_to_{rank_key(th)}"] = first_reached(rank, rank >= th, t)
            first = layer_ranks[(layer_ranks["seed"] == seed) & (layer_ranks["step"] == steps.min())]
            for layer, value in zip(first["layer"], first["value"]):
                row[f"init_rank_l{int(layer)}"] = float(value)
                before = pre.get("eps_rank_before")
                row[f"init_rank_before_pretrain_l{int(layer)}"] = (
                    float(before[int(layer)][i]) if before else float(value)
                )
            fin = np.flatnonzero(np.isfinite(loss))
            last = fin[-1] if fin.size else len(loss) - 1
            row.update(
                final_loss=float(loss[last]) if fin.size else float("nan"),
                final_rel_l2=float(m["rel_l2"].to_numpy(float)[last]) if fin.size else float("nan"),
                final_rank=float(rank[last]) if fin.size else float("nan"),
                n_stairs=stairs.segment(steps, rank, min_points=opt["min_plateau"]).n_stairs,
                total_time=float(np.nanmax(t)),
                total_steps=float(steps.max()),
                pretrain_time=float(pre.get("cpu_s" if clock == "train_cpu_s" else "wall_s", 0.0)),
            )
            rows.append(row)
    return pd.DataFrame(rows)


# ---- per variant ---------------------------------------------------------------------------------
def median_inf(values) -> float:
    """Median with NaN (never reached) counted as +inf."""
    v = np.asarray(values, dtype=float)
    return float(np.median(np.where(np.isnan(v), np.inf, v))) if v.size else float("nan")


def spread_text(values) -> str:
    """'[min, max]' of the values, NaN (never reached) counted as +inf."""
    v = np.asarray(values, dtype=float)
    v = np.where(np.isnan(v), np.inf, v)
    return f"[{v.min():.3g}, {v.max():.3g}]" if v.size else ""


def speedup(base: float, method: float) -> float:
    if np.isinf(base) and np.isinf(method):
        return float("nan")
    if np.isinf(method):
        return 0.0
    if np.isinf(base):
        return float("inf")
    return base / method if method > 0 else float("inf")


def thresholds(comparison: dict) -> list[tuple[str, str]]:
    """(kind, key) of every threshold, from the easiest to the hardest within each kind."""
    loss = [("loss", loss_key(th)) for th in sorted(comparison["loss_thresholds"], reverse=True)]
    rank = [("rank", rank_key(th)) for th in sorted(comparison["rank_thresholds"])]
    return loss + rank


def summary_table(seeds: pd.DataFrame, comparison: dict) -> pd.DataFrame:
    """One row per variant: medians and [min, max] over seeds, speed-ups against its baseline at
    every threshold, and at the key thresholds (the hardest its baseline reaches)."""
    rows = {}
    for variant, grp in seeds.groupby("variant", sort=False):
        row = {"variant": variant, "group": grp["group"].iloc[0], "baseline": grp["baseline"].iloc[0]}
        row["seeds"] = len(grp)
        row["diverged"] = int((grp["status"] != "ok").sum())
        for _, key in thresholds(comparison):
            for what in ("time", "steps"):
                col = f"{what}_to_{key}"
                row[col] = median_inf(grp[col])
                row[f"{col}_range"] = spread_text(grp[col])
        for col in [c for c in grp.columns if c.startswith("init_rank")]:
            row[col] = float(np.nanmedian(grp[col]))
        for col in ("final_loss", "final_rel_l2", "final_rank", "n_stairs", "total_time", "pretrain_time"):
            row[col] = float(np.nanmedian(grp[col]))
            if col in ("final_loss", "final_rel_l2", "n_stairs"):
                row[f"{col}_range"] = spread_text(grp[col])
        rows[variant] = row
    for row in rows.values():
        base = rows.get(row["baseline"])
        for kind in ("loss", "rank"):
            key = None
            if base is not None:
                reached = [k for knd, k in thresholds(comparison) if knd == kind and np.isfinite(base[f"time_to_{k}"])]
                key = reached[-1] if reached else None
            row[f"key_{kind}_threshold"] = key or ""
            for what in ("time", "steps"):
                row[f"{what}_speedup_{kind}"] = (
                    speedup(base[f"{what}_to_{key}"], row[f"{what}_to_{key}"]) if key else float("nan")
                )
        for _, key in thresholds(comparison):
            row[f"time_speedup_{key}"] = (
                speedup(base[f"time_to_{key}"], row[f"time_to_{key}"]) if base is not None else float("nan")
            )
        row["stairs_minus_baseline"] = row["n_stairs"] - base["n_stairs"] if base is not None else float("nan")
        row["error_ratio"] = row["final_rel_l2"] / base["final_rel_l2"] if base is not None else float("nan")
        row["beats_baseline"] = bool(
            row["group"] != "baseline"
            and row["time_speedup_rank"] >= comparison["min_speedup"]
            and row["time_speedup_loss"] >= comparison["min_speedup"]
        )
    order = {"baseline": 0, "A6": 1, "A7": 2}
    frame = pd.DataFrame(list(rows.values()))
    return frame.sort_values("group", key=lambda s: s.map(order), kind="stable").reset_index(drop=True)


# ---- verdicts ------------------------------------------------------------------------------------
def _fmt(x: float) -> str:
    return "inf" if np.isinf(x) else "n/a" if np.isnan(x) else f"{x:.2g}"


VERDICT_COLUMNS = ["claim", "metric", "role", "value", "op", "threshold", "null", "n", "detail", "p_value"]
PERMUTATION_DRAWS = 20000  # above 8 methods (8! = 40 320 orders are enumerated), seeded draws


def _verdict(claim, metric, role, value, op, threshold, null, n, detail, p_value=float("nan")) -> dict:
    return dict(
        claim=claim,
        metric=metric,
        role=role,
        value=float(value),
        op=op,
        threshold=float(threshold),
        null=null,
        n=int(n),
        detail=detail,
        p_value=float(p_value),
    )


def spearman_permutation(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(Spearman, one-sided permutation p of a correlation at least that large): every order of
    ``y`` up to 8 values, else PERMUTATION_DRAWS seeded ones (scipy.stats.permutation_test, with
    the Spearman computed on ranks for all orders at once)."""
    rx = stats.rankdata(x)
    rx = (rx - rx.mean()) / np.linalg.norm(rx - rx.mean())

    def spearman(yy, axis=-1):
        ry = stats.rankdata(yy, axis=axis)
        ry = ry - ry.mean(axis=axis, keepdims=True)
        return (ry @ rx) / np.linalg.norm(ry, axis=axis)

    res = stats.permutation_test(
        (y,),
        spearman,
        permutation_type="pairings",
        alternative="greater",
        vectorized=True,
        n_resamples=np.inf if len(x) <= 8 else PERMUTATION_DRAWS,
        random_state=0,
    )
    return float(res.statistic), float(res.pvalue)


def _a6_fraction(a6: pd.DataFrame, metric: str, col: str, op: str, threshold: float, opt: dict) -> dict:
    """A6's share of methods whose ``col`` is ``op threshold`` (a value never reached counts as not)."""
    hits = a6[col].map(lambda v: vd.passes(v, op, threshold))
    detail = ", ".join(f"{v}: {_fmt(x)}" for v, x in zip(a6["variant"], a6[col]))
    return _verdict(
        "A6",
        metric,
        "test",
        hits.mean(),
        ">=",
        opt["a6_min_fraction"],
        "methods no faster than their baseline (speed-up 1) and no fewer stairs: fraction 0",
        len(a6),
        f"{col} per method: {detail}",
    )


def _a6_cuts(a6: pd.DataFrame, opt: dict, a1_pass: dict | None) -> dict:
    """A6's "cuts the staircase", judged with A1's test (``a1_pass``: {variant: True, False, or None
    with too few seeds}): the share of methods on which A1 does not pass while it passes on their
    baseline, among the methods whose baseline passes A1 (INCONCLUSIVE without any). Without A1's
    decisions (a notebook's table) the stair counts are shown as a description: counting integer
    steps is not evidence (docs/claims.md)."""
    if a1_pass is None:
        detail = ", ".join(f"{v}: {_fmt(x)}" for v, x in zip(a6["variant"], a6["stairs_minus_baseline"]))
        hits = a6["stairs_minus_baseline"].map(lambda v: vd.passes(v, "<", 0.0))
        return _verdict(
            "A6", "fraction of methods with fewer detected stairs than the baseline (not evidence)", "description",
            hits.mean(), ">=", opt["a6_min_fraction"], "", len(a6), f"stairs_minus_baseline per method: {detail}",
        )  # fmt: skip
    judged = [(v, b) for v, b in zip(a6["variant"], a6["baseline"]) if a1_pass.get(b) and a1_pass.get(v) is not None]
    cuts = [v for v, _ in judged if not a1_pass[v]]
    detail = (
        f"A1 passes on the baseline and not on: {', '.join(cuts) or 'none'}; judged: {', '.join(v for v, _ in judged)}"
        if judged
        else "no method's baseline passes A1 (with enough seeds): no staircase to cut"
    )
    return _verdict(
        "A6",
        "fraction of methods that cut the staircase: A1 does not pass on them while it passes on their baseline",
        "test",
        len(cuts) / len(judged) if judged else float("nan"),
        ">=",
        opt["a6_min_fraction"],
        "a method leaves the staircase as it is (A1 passes on it as on its baseline): fraction 0",
        len(judged),
        detail,
    )


def a6_verdicts(summary: pd.DataFrame, comparison: dict, a1_pass: dict | None = None) -> list[dict]:
    """A6's rows over the acceleration methods (none without any); see the module docstring.
    ``a1_pass``: A1's decision per variant (:func:`_a6_cuts`)."""
    opt = options(comparison)
    s_min = float(comparison["min_speedup"])
    a6 = summary[summary["group"] == "A6"]
    if not len(a6):
        return []
    rows = [
        _a6_fraction(
            a6, f"fraction of methods reaching the key {what} >= {s_min:g}x sooner (time)", col, ">=", s_min, opt
        )
        for what, col in (("eps-rank", "time_speedup_rank"), ("loss", "time_speedup_loss"))
    ]
    rows.append(_a6_cuts(a6, opt, a1_pass))
    same = a6[a6["baseline"] == comparison["baseline"]]
    x, y = same["time_speedup_rank"].to_numpy(float), same["time_speedup_loss"].to_numpy(float)
    keep = ~(np.isnan(x) | np.isnan(y))
    rho, p = float("nan"), float("nan")
    if keep.sum() >= 3 and len(set(x[keep])) > 1 and len(set(y[keep])) > 1:
        rho, p = spearman_permutation(x[keep], y[keep])
    rows.append(
        _verdict(
            "A6",
            "Spearman over methods of the key-rank and key-loss speed-ups (and its permutation p <= alpha)",
            "test",
            rho,
            ">=",
            opt["a6_min_spearman"],
            "speed-ups in rank and loss unrelated: the loss speed-ups permuted over the methods (one-sided)",
            int(keep.sum()),
            f"methods compared with {comparison['baseline']} (not-reached counts as speed-up 0)",
            p,
        )
    )
    return rows


def _init_gain(r: pd.Series, base: pd.Series, layer: int) -> tuple[float, str]:
    """A pre-training variant's median initial eps-rank of ``layer`` minus its baseline's, and the
    numbers behind it."""
    col = f"init_rank_l{layer}"
    detail = (
        f"{r[f'init_rank_before_pretrain_l{layer}']:g} before pre-training, {r[col]:g} after; baseline {base[col]:g}"
    )
    return r[col] - base[col], detail


def a7_verdicts(summary: pd.DataFrame, comparison: dict) -> list[dict]:
    """A7's rows, four per pre-training variant with a baseline; see the module docstring."""
    opt = options(comparison)
    s_min = float(comparison["min_speedup"])
    chosen = set(opt.get("chosen_here") or [])
    rows = []
    for _, r in summary[summary["group"] == "A7"].iterrows():
        base = summary[summary["variant"] == r["baseline"]]
        if base.empty:
            continue
        base = base.iloc[0]
        last = max(int(c.rsplit("l", 1)[1]) for c in summary.columns if c.startswith("init_rank_l"))
        # speed and error are evidence only where the pre-training's settings were not chosen
        evidence = "description" if r["variant"] in chosen else "test"
        tuned = " (settings chosen on this experiment: not evidence)" if r["variant"] in chosen else ""
        first_gain, first_detail = _init_gain(r, base, 0)
        last_gain, last_detail = _init_gain(r, base, last)
        for role, metric, value, op, th, null, detail in (
            (
                "test",
                "initial first-layer eps-rank minus the baseline's (mechanism: pre-training maximises its log-det)",
                first_gain,
                ">=",
                1.0,
                "no gain (0)",
                first_detail,
            ),
            (
                "test",
                "initial last-layer eps-rank minus the baseline's",
                last_gain,
                ">=",
                1.0,
                "no gain (0)",
                last_detail,
            ),
            (
                evidence,
                f"speed-up to the key loss {r['key_loss_threshold']} (time, pre-training included){tuned}",
                r["time_speedup_loss"],
                ">=",
                s_min,
                "no speed-up (1)",
                f"rank speed-up {_fmt(r['time_speedup_rank'])} at {r['key_rank_threshold']}; "
                f"pre-training {r['pretrain_time']:.3g} s",
            ),
            (
                evidence,
                f"final relative L2 error over the baseline's{tuned}",
                r["error_ratio"],
                "<=",
                opt["max_error_ratio"],
                "no change (1)",
                f"{r['final_rel_l2']:.3g} vs {base['final_rel_l2']:.3g}",
            ),
        ):
            rows.append(_verdict("A7", f"{r['variant']}: {metric}", role, value, op, th, null, r["seeds"], detail))
        if r["variant"] in chosen:  # "speeds training" untested here: the claim cannot PASS on this experiment
            rows.append(
                _verdict(
                    "A7", f"{r['variant']}: speed-up to the key loss on an experiment that did not choose its settings",
                    "test", float("nan"), ">=", s_min, "no speed-up (1)", r["seeds"],
                    "not tested here (comparison.chosen_here): the speed-up above is a description; see the other "
                    "experiments",
                )
            )  # fmt: skip
    return rows


def verdicts(summary: pd.DataFrame, comparison: dict, a1_pass: dict | None = None, alpha: float = 0.05) -> pd.DataFrame:
    """Rows (claim, metric, role, value, op, threshold, null, n, detail, p_value, verdict), A6's then
    A7's; each judged by its role (:func:`staircase.claims.verdicts.decide`), and a row with a
    p-value FAILs unless also p <= ``alpha``. ``a1_pass``: A1's decision per variant (the audit's;
    without it the stairs row is a description). See the module docstring."""
    rows = a6_verdicts(summary, comparison, a1_pass) + a7_verdicts(summary, comparison)
    frame = pd.DataFrame(rows, columns=VERDICT_COLUMNS)
    frame["verdict"] = [
        vd.FAIL if v == vd.PASS and np.isfinite(p) and p > alpha else v
        for v, p in zip(
            (vd.decide(*r) for r in zip(frame["role"], frame["value"], frame["op"], frame["threshold"])),
            frame["p_value"],
        )
    ]
    return frame


def analyse(runs_dir, comparison: dict, clock_override: str | None = None):
    """(seed table, summary table, verdicts, clock) of one experiment's results."""
    runs = method_runs(runs_dir)
    if not runs:
        raise FileNotFoundError(f"no results under {runs_dir}: run the training jobs first")
    clock = choose_clock(runs, clock_override)
    seeds = seed_table(runs, comparison, clock)
    summary = summary_table(seeds, comparison)
    return seeds, summary, verdicts(summary, comparison), clock
