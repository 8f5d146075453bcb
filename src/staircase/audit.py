"""The claims audit: from results already on disk to a verdict per claim and experiment.

For every claim of DESIGN.md section 3 that the configured experiments test (``claims:`` tags),
each evaluator below computes a metric per seed (or per sweep cell), takes the median and spread,
compares it with a threshold from ``config.yaml`` (section ``audit:``), and gives a verdict:

* PASS - the measured value meets the threshold;
* FAIL - it does not (a result, not an error: the audit shows the numbers);
* INCONCLUSIVE - the evidence is not usable: too few healthy seeds (diverged runs are excluded
  and counted), a missing quantity, or a guard rail of the claim not met.

Nothing is retrained: ``staircase audit`` reads results/runs and writes results/audit/claims.csv
(one row per claim x experiment x metric) and claims.md (the same for a person, with figures and
the code versions behind the runs). ``--strict`` makes any FAIL a non-zero exit.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from staircase import config as cfgmod
from staircase import stairs
from staircase.lowrank import claims as lowrank_claims
from staircase.provenance import atomic_write
from staircase.runs import Run, load_run

PASS, FAIL, INCONCLUSIVE = "PASS", "FAIL", "INCONCLUSIVE"

CLAIM_TEXT = {
    "A1": "eps-rank of the last hidden layer rises in a staircase during training",
    "A2": "loss falls as eps-rank rises",
    "A3": "loss lower bound falls as eps-rank rises, and loss >= bound always",
    "A4": "the staircase is universal across activations, depth, width",
    "A5": "later hidden layers have higher eps-rank than earlier ones",
    "A6": "advanced methods reach higher eps-rank sooner and cut the staircase",
    "A7": "first-layer pre-training raises the initial eps-rank and speeds training",
    "B1": "with weight decay, each hidden layer's weights approach rank <= K",
    "B2": "distance to rank K grows with within-class variability of the layer's input",
    "B3": "the stationarity bound on the distance to rank K holds",
    "C1": "linear layers after the last ReLU converge to rank 1; ReLU layers need not",
    "C2": "adjacent linear layers align",
    "C3": "the training invariance is conserved (full for linear pairs, diagonal for ReLU pairs)",
}


@dataclass
class Row:
    claim: str
    experiment: str
    metric: str
    value: float
    threshold: str
    verdict: str
    spread: str = ""
    n: int = 0
    detail: str = ""
    runs: list[str] = field(default_factory=list)


def load_runs(config: dict, results: Path, experiment: str) -> list[Run]:
    runs = []
    for variant in cfgmod.variants(config, experiment):
        path = results / "runs" / experiment / variant
        if not (path / "metrics.parquet").exists():
            continue
        runs.append(load_run(path))  # the loader the notebooks use (staircase.runs)
    return runs


# ---- verdict helpers ---------------------------------------------------------------------------


def compare(value: float, op: str, threshold: float) -> str:
    if value is None or not np.isfinite(value):
        return INCONCLUSIVE
    ok = {">=": value >= threshold, "<=": value <= threshold, "==": value == threshold}[op]
    return PASS if ok else FAIL


def summarise(values: list[float]) -> tuple[float, str]:
    arr = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=float)
    if arr.size == 0:
        return float("nan"), ""
    return float(np.median(arr)), f"[{arr.min():.3g}, {arr.max():.3g}]"


def seed_row(claim, experiment, metric, values, op, threshold, runs, audit_cfg, detail="") -> Row:
    """Median over healthy seeds against a threshold; INCONCLUSIVE below the minimum seed count."""
    value, spread = summarise(values)
    n = int(np.isfinite(np.asarray(values, dtype=float)).sum()) if values else 0
    verdict = compare(value, op, threshold)
    diverged = {f"{r.variant}/seed{s}": st for r in runs for s, st in r.status.items() if st != "ok"}
    notes = [detail] if detail else []
    if diverged:
        notes.append(f"excluded (diverged): {', '.join(f'{k} {v}' for k, v in diverged.items())}")
    if n < audit_cfg["min_seeds"]:
        verdict = INCONCLUSIVE
        notes.append(f"only {n} healthy seed(s), need {audit_cfg['min_seeds']}")
    return Row(
        claim,
        experiment,
        metric,
        value,
        f"{op} {threshold:g}",
        verdict,
        spread,
        n,
        "; ".join(notes),
        [str(r.path) for r in runs],
    )


def per_seed(run: Run):
    """Healthy seeds' metric series, sorted by step."""
    for seed in run.healthy_seeds:
        yield seed, run.metrics[run.metrics["seed"] == seed].sort_values("step")


def _spearman(a, b) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if np.all(a == a[0]) or np.all(b == b[0]):
        return float("nan")  # a constant series has no rank correlation
    return float(spearmanr(a, b).statistic)


# ---- the evaluators: (config, runs of one experiment, audit thresholds) -> rows ----------------


def stair_table(runs, t: dict) -> pd.DataFrame:
    """staircase.stairs per healthy seed of every run (last hidden layer, main eps), with the
    settings of config `analysis:`."""
    options = stairs.config_options(t.get("analysis"))
    frames = []
    for r in runs:
        healthy = r.metrics[r.metrics["seed"].isin(r.healthy_seeds)]
        if not healthy.empty:
            frames.append(stairs.seed_table(healthy, **options).assign(variant=r.variant))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["variant", "n_stairs"])


def eval_a1(experiment, runs, t) -> list[Row]:
    table = stair_table(runs, t)
    min_points = stairs.config_options(t.get("analysis")).get("min_points", 2)
    return [
        seed_row(
            "A1",
            experiment,
            "detected stairs (upward jumps between plateaus)",
            list(table["n_stairs"]),
            ">=",
            t["a1_min_stairs"],
            runs,
            t,
            f"staircase.stairs.segment, plateaus of >= {min_points} measurements",
        ),
        seed_row(
            "A1",
            experiment,
            "monotonicity (fraction of non-decreasing rank moves)",
            list(table["monotonicity"]),
            ">=",
            t["a1_min_monotone"],
            runs,
            t,
        ),
    ]


def eval_a2(experiment, runs, t) -> list[Row]:
    rho = [_spearman(m["loss"], m["eps_rank"]) for r in runs for _, m in per_seed(r)]
    table = stair_table(runs, t)
    aligned = list(table["fraction_aligned"]) if "fraction_aligned" in table else []
    return [
        seed_row(
            "A2",
            experiment,
            "Spearman(loss, eps-rank) over checkpoints",
            rho,
            "<=",
            t["a2_max_spearman"],
            runs,
            t,
            "negative: the loss is lower where the rank is higher",
        ),
        seed_row(
            "A2",
            experiment,
            "fraction of rank jumps with a faster loss drop than on the adjacent plateaus",
            aligned,
            ">=",
            t["a2_min_aligned"],
            runs,
            t,
            "chance level is about 0.5",
        ),
    ]


def eval_a4(experiment, runs, t) -> list[Row]:
    """Universality: A1 and A2 per sweep cell (variant), then the fraction of cells where both hold."""
    table = stair_table(runs, t)
    cells, failed = [], []
    for r in runs:
        cell = table[table["variant"] == r.variant]
        if cell.empty:
            continue
        rho = [_spearman(m["loss"], m["eps_rank"]) for _, m in per_seed(r)]
        cells.append(r.variant)
        if not (cell["n_stairs"].median() >= t["a1_min_stairs"] and np.nanmedian(rho) <= t["a2_max_spearman"]):
            failed.append(r.variant)
    fraction = 1 - len(failed) / len(cells) if cells else float("nan")
    return [
        Row(
            "A4",
            experiment,
            "fraction of sweep cells where A1 (stairs) and A2 (Spearman) hold",
            fraction,
            f">= {t['a4_min_fraction']:g}",
            compare(fraction, ">=", t["a4_min_fraction"]),
            "",
            len(cells),
            ("cells failing: " + ", ".join(failed)) if failed else "every cell holds",
            [str(r.path) for r in runs],
        )
    ]


def eval_a3(experiment, runs, t) -> list[Row]:
    violations = sum(int(r.metrics["bound_violation"].sum()) for r in runs)
    checked = sum(int(r.metrics["lower_bound"].notna().sum()) for r in runs)
    rho = [_spearman(m["lower_bound"], m["eps_rank"]) for r in runs for _, m in per_seed(r)]
    return [
        Row(
            "A3",
            experiment,
            "bound violations (lower bound > loss)",
            float(violations),
            "== 0",
            INCONCLUSIVE if checked == 0 else (PASS if violations == 0 else FAIL),
            "",
            checked,
            f"{checked} checkpoints checked",
            [str(r.path) for r in runs],
        ),
        seed_row(
            "A3",
            experiment,
            "Spearman(lower bound, eps-rank) over checkpoints",
            rho,
            "<=",
            t["a3_max_spearman"],
            runs,
            t,
            "negative: the bound falls as the rank rises",
        ),
    ]


def eval_a5(experiment, runs, t) -> list[Row]:
    fractions = []
    for r in runs:
        ranks = r.ranks
        eps = r.info["config"]["rank"]["main_eps"]
        sel = ranks[(ranks["metric"] == "eps_rank") & np.isclose(ranks["eps"], eps)]
        wide = sel.pivot_table(index=["seed", "step"], columns="layer", values="value")
        if wide.shape[1] < 2:
            continue
        for seed in r.healthy_seeds:
            w = wide.loc[seed].to_numpy()
            fractions.append(float((w[:, 1:] >= w[:, :-1]).mean()))
    return [
        seed_row(
            "A5",
            experiment,
            "fraction of checkpoints and layer pairs with r(l+1) >= r(l)",
            fractions,
            ">=",
            t["a5_min_fraction"],
            runs,
            t,
            "needs depth >= 2",
        )
    ]


def eval_methods(claim: str) -> Callable:
    """A6/A7: methods against their baseline (staircase.comparison, the experiment's `comparison:`)."""

    def evaluator(experiment, runs, t) -> list[Row]:
        from staircase import comparison as cmp

        paths = [str(r.path) for r in runs]
        if not t.get("comparison"):
            return [Row(claim, experiment, "comparison", float("nan"), "", INCONCLUSIVE, detail="no comparison: block")]
        data = {r.variant: {"metrics": r.metrics, "ranks": r.ranks, "info": r.info} for r in runs}
        summary = cmp.summary_table(cmp.seed_table(data, t["comparison"], cmp.choose_clock(data)), t["comparison"])
        few = [f"{r.variant} ({len(r.healthy_seeds)})" for r in runs if len(r.healthy_seeds) < t["min_seeds"]]
        rows = []
        for v in cmp.verdicts(summary, t["comparison"]).query("claim == @claim").itertuples():
            verdict, detail = v.verdict, v.detail
            if few:
                verdict, detail = INCONCLUSIVE, f"{detail}; too few healthy seeds: {', '.join(few)}"
            rows.append(
                Row(claim, experiment, v.metric, v.value, f"{v.op} {v.threshold:g}", verdict, "", v.n, detail, paths)
            )
        return rows or [
            Row(claim, experiment, "methods", float("nan"), "", INCONCLUSIVE, detail="no method of this claim")
        ]

    return evaluator


EVALUATORS: dict[str, Callable] = {"A1": eval_a1, "A2": eval_a2, "A3": eval_a3, "A4": eval_a4, "A5": eval_a5}
EVALUATORS.update(A6=eval_methods("A6"), A7=eval_methods("A7"))


# ---- the audit ---------------------------------------------------------------------------------


def evaluate(config: dict, results: str | os.PathLike = "results") -> pd.DataFrame:
    results = Path(results)
    t = config["audit"]
    rows: list[Row] = []
    for experiment in cfgmod.enabled_experiments(config):
        claims = config["experiments"][experiment].get("claims", [])
        runs = load_runs(config, results, experiment)
        for claim in claims:
            if claim not in EVALUATORS:
                continue
            if not runs:
                rows.append(
                    Row(claim, experiment, "results", float("nan"), "", INCONCLUSIVE, detail="no results found")
                )
                continue
            comparison = config["experiments"][experiment].get("comparison")  # A6/A7 (staircase.comparison)
            settings = {**t, "comparison": comparison, "analysis": config.get("analysis", {})}
            rows.extend(EVALUATORS[claim](experiment, runs, settings))
    rows.extend(Row(**r) for r in lowrank_claims.audit_rows(config, results))  # papers B and C
    frame = pd.DataFrame([asdict(r) for r in rows])
    if frame.empty:
        frame = pd.DataFrame(columns=[f for f in Row.__dataclass_fields__])
    frame["runs"] = frame["runs"].map(lambda v: ";".join(v) if isinstance(v, list) else v)
    return frame


def code_versions(frame: pd.DataFrame) -> pd.DataFrame:
    """The code behind the runs: one row per distinct (commit, dirty, package version)."""
    seen = []
    for paths in frame["runs"].dropna():
        for path in filter(None, paths.split(";")):
            info = json.loads((Path(path) / "run.json").read_text())
            seen.append(
                {
                    "git_commit": info.get("git_commit"),
                    "git_dirty": info.get("git_dirty"),
                    "package_version": info.get("package_version"),
                    "run": path,
                }
            )
    if not seen:
        return pd.DataFrame(columns=["git_commit", "git_dirty", "package_version", "runs"])
    df = pd.DataFrame(seen).drop_duplicates("run")
    return (
        df.groupby(["git_commit", "git_dirty", "package_version"], dropna=False)["run"]
        .agg(lambda s: len(s))
        .rename("runs")
        .reset_index()
    )


def overall(frame: pd.DataFrame) -> pd.DataFrame:
    """One verdict per claim and experiment: FAIL if any metric fails, INCONCLUSIVE if any is, else PASS."""

    def combine(v):
        return FAIL if (v == FAIL).any() else INCONCLUSIVE if (v == INCONCLUSIVE).any() else PASS

    return frame.groupby(["claim", "experiment"], sort=False)["verdict"].agg(combine).reset_index()


def to_markdown(frame: pd.DataFrame, versions: pd.DataFrame, figures_dir: str = "../figures") -> str:
    lines = ["# Claims audit", ""]
    verdicts = overall(frame) if not frame.empty else pd.DataFrame(columns=["claim", "experiment", "verdict"])
    counts = verdicts["verdict"].value_counts()
    lines.append(
        f"**{counts.get(PASS, 0)} passed, {counts.get(FAIL, 0)} failed, {counts.get(INCONCLUSIVE, 0)} inconclusive** "
        f"(claim x experiment). Thresholds come from the `audit:` section of config.yaml."
    )
    lines += ["", "| claim | experiment | verdict | what is claimed |", "|---|---|---|---|"]
    for _, v in verdicts.iterrows():
        lines.append(f"| {v.claim} | {v.experiment} | **{v.verdict}** | {CLAIM_TEXT.get(v.claim, '')} |")
    lines += ["", "## Measurements", ""]
    lines += ["| claim | experiment | metric | value (median) | spread | n | threshold | verdict | notes |"]
    lines += ["|---|---|---|---|---|---|---|---|---|"]
    for _, r in frame.iterrows():
        lines.append(
            f"| {r.claim} | {r.experiment} | {r.metric} | {r.value:.4g} | {r.spread} | {r.n} | {r.threshold} | "
            f"{r.verdict} | {r.detail} |"
        )
    # staircase figures exist for the `experiments:`; papers B and C's runs are named <family>/<study>
    figs = sorted({e for e in frame["experiment"] if "/" not in e}) if not frame.empty else []
    if figs:
        lines += ["", "## Figures", ""]
        for e in figs:  # the figures registered for the claims the experiment tests
            tested = set(frame.loc[frame["experiment"] == e, "claim"])
            links = [f"[staircase]({figures_dir}/staircase_{e}.png)"] if tested - {"A6", "A7"} else []
            if tested & {"A6", "A7"}:
                links.append(f"[methods]({figures_dir}/methods_curves_{e}.png)")
            lines.append(f"- {e}: {', '.join(links)}")
    lines += ["", "## Code versions behind these runs", ""]
    if len(versions) > 1 or (len(versions) == 1 and bool(versions["git_dirty"].iloc[0])):
        lines.append("**Warning: the runs were not all produced by one clean commit.**")
        lines.append("")
    lines += ["| git commit | dirty | package | runs |", "|---|---|---|---|"]
    for _, v in versions.iterrows():
        lines.append(f"| {v.git_commit} | {v.git_dirty} | {v.package_version} | {v.runs} |")
    return "\n".join(lines) + "\n"


def run_audit(config: dict, results="results", out_dir="results/audit") -> pd.DataFrame:
    frame = evaluate(config, results)
    versions = code_versions(frame)
    out = Path(out_dir)
    atomic_write(out / "claims.csv", lambda tmp: frame.to_csv(tmp, index=False))
    atomic_write(out / "claims.md", lambda tmp: Path(tmp).write_text(to_markdown(frame, versions)))
    return frame


def summary_line(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "claims audit: no claims evaluated"
    counts = overall(frame)["verdict"].value_counts()
    failed = overall(frame).query("verdict == 'FAIL'")
    text = (
        f"claims audit: {counts.get(PASS, 0)} passed, {counts.get(FAIL, 0)} failed, "
        f"{counts.get(INCONCLUSIVE, 0)} inconclusive"
    )
    if not failed.empty:
        text += " (failed: " + ", ".join(f"{r.claim}/{r.experiment}" for r in failed.itertuples()) + ")"
    return text
