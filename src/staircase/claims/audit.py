"""The claims audit: from results already on disk to a verdict per claim and experiment.

Each claim of the registry (``src/staircase/claims/claims.yaml``, explained in docs/claims.md) that an
enabled experiment is tagged with (``claims:`` in config.yaml) is judged by rows of
:class:`staircase.claims.verdicts.Row`: tests against a stated null model (a p-value or a margin),
guards, self-checks and descriptions. Each claim of paper A has its own module under
:mod:`staircase.claims.judges` (statistic, null, decision), named by the registry's ``judge:``;
papers B and C's are in :mod:`staircase.claims.lowrank`. This module gathers the runs, calls the
judges and writes the files. Thresholds come from the config's ``audit:`` section over the
schema's defaults (:func:`staircase.claims.registry.thresholds`), the tests' settings from ``analysis:``.

Nothing is retrained: ``staircase audit`` reads <root>/runs (root: results/<scale>[-<tag>]) and
writes <root>/audit/claims.csv (one row per claim x experiment x statistic), seeds.csv (the
per-seed tests behind A1-A4) and claims.md (the same for a person, with the results root it
describes, figures, the tests' calibration and the code versions).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from staircase.claims import integrity, registry
from staircase.claims import lowrank as lowrank_claims
from staircase.claims import verdicts as vd
from staircase.claims.judges.cells import across_row, cell_factors, regime_table  # noqa: F401 (the notebooks' names)
from staircase.claims.judges.context import (  # noqa: F401 (the notebooks' and tests' names)
    ANALYSIS_DEFAULTS,
    ExperimentAudit,
    SeedTests,
    analysis_settings,
    config_runs,
    seed_tests,
)
from staircase.records.provenance import atomic_write
from staircase.records.runs import Run, load_run, read_json, read_table
from staircase.workflow import config as cfgmod

PASS, FAIL, INCONCLUSIVE, ERROR = vd.PASS, vd.FAIL, vd.INCONCLUSIVE, vd.ERROR
# <root>/calibration/summary.csv's columns, as the report shows them
CALIBRATION_COLUMNS, CALIBRATION_NUMBERS = ("test", "ensemble", "measures"), ("draws", "rate", "ci_low", "ci_high")


# ---- the audit ---------------------------------------------------------------------------------
def no_results(claim: str, experiment: str) -> vd.Row:
    return vd.guard_row(claim, experiment, "results", 0.0, ">=", 1.0, detail="no results found")


def _judge(experiment: str, runs: list[Run], config: dict, claims: list[str], seed_records: list | None) -> list:
    return _judge_rows(ExperimentAudit(experiment, runs, config), claims, seed_records)


def _judge_rows(judge: ExperimentAudit, claims: list[str], seed_records: list | None) -> list:
    rows = [row for claim in claims for row in judge.rows(claim)]
    if seed_records is not None:
        seed_records.extend(judge.seed_records)
    return rows


def config_experiment_runs(config: dict, results: Path) -> dict[str, list[Run]]:
    """The finished runs of every enabled experiment of ``config`` under ``results`` (empty lists
    for those that did not run), each experiment's runs checked to be distinct data
    (:func:`staircase.claims.integrity.check`) before anything is judged."""
    found = {e: config_runs(config, results, e) for e in cfgmod.enabled_experiments(config)}
    for experiment, runs in found.items():
        integrity.check(experiment, runs)
    return found


def unconfigured_experiments(config: dict, results: Path) -> list[str]:
    """Experiments with runs under ``results``/runs that ``config`` does not enable."""
    enabled = set(cfgmod.enabled_experiments(config))
    on_disk = {p.parent.parent.name for p in Path(results, "runs").glob("*/*/metrics.parquet")}
    return sorted(on_disk - enabled - set(config.get("rank_collapse") or {}) - set(config.get("alignment") or {}))


def coverage_line(config: dict, results) -> str:
    """One line naming the config's experiments that ran and those that did not ('' when all ran),
    and what on disk is judged instead (:func:`evaluate`)."""
    found = {e: bool(config_runs(config, results, e)) for e in cfgmod.enabled_experiments(config)}
    missing = [e for e, ran in found.items() if not ran]
    if not missing:
        return ""
    ran = [e for e, ran in found.items() if ran]
    line = f"audit: results for {', '.join(ran) or 'none of its experiments'}; none for {', '.join(missing)}"
    others = unconfigured_experiments(config, results) if not ran else []
    if others:
        line += f"; judging what ran instead, on the claims its data can test: {', '.join(others)}"
    return line


def evaluate(config: dict, results: str | os.PathLike | None = None, seed_records: list | None = None) -> pd.DataFrame:
    """claims.csv as a DataFrame: every tagged claim of every enabled experiment and study, from
    the runs under ``results`` (default: the config's results root, results/<scale>[-<tag>]).
    When none of the config's experiments ran, the experiments found on disk are judged on the
    claims their own data can test (:func:`run_claims`), beside the config's INCONCLUSIVE rows."""
    results = Path(results or cfgmod.results_root(config))
    rows: list[vd.Row] = []
    judges: dict[str, ExperimentAudit] = {}
    for experiment, runs in config_experiment_runs(config, results).items():
        claims = [c for c in config["experiments"][experiment].get("claims", []) if c in registry.claims()]
        if not runs:
            rows.extend(no_results(c, experiment) for c in claims)
            continue
        judge = judges[experiment] = ExperimentAudit(experiment, runs, config)
        rows.extend(_judge_rows(judge, claims, seed_records))
    if not judges:
        rows.extend(_judge_on_disk(config, results, seed_records))
    across = across_row(judges, config)  # A4 over the sweep and the regime map together
    if across is not None:
        rows.append(across)
    rows.extend(lowrank_claims.audit_rows(config, results))  # papers B and C
    return vd.to_frame(rows)


def _judge_on_disk(config: dict, results: Path, seed_records: list | None) -> list[vd.Row]:
    """The experiments on disk that the config does not enable, judged as given runs."""
    paths = [
        p.parent
        for e in unconfigured_experiments(config, results)
        for p in sorted(Path(results, "runs", e).glob("*/metrics.parquet"))
    ]
    return evaluate_runs(paths, config, seed_records).to_dict("records") if paths else []


# ---- runs given by hand (a tracker's run, staircase audit --runs) -------------------------------
def run_claims(runs: list[Run]) -> list[str]:
    """The claims of paper A that runs of one experiment can be judged on from their own data: A1
    always; A2 when a loss was recorded; A3 when the eps-rank's bound was (metrics.parquet
    ``eps_bound``); A5 when some run has >= 2 hidden layers. (A4 needs a sweep, A6 and A7 a
    comparison: they come from a config's experiments.)"""
    claims = ["A1"]
    if all(r.metrics["loss"].notna().any() for r in runs):
        claims.append("A2")
    if all("eps_bound" in r.metrics and r.metrics["eps_bound"].notna().any() for r in runs):
        claims.append("A3")
    if any(r.depth >= 2 for r in runs):
        claims.append("A5")
    return claims


def runs_config(runs: list[Run], config: dict | None = None) -> dict:
    """A config for run directories given by hand: each run's experiment (run.json) tagged with
    :func:`run_claims`, and the ``audit:`` and ``analysis:`` sections of ``config`` (the schema's
    defaults where it has none)."""
    config = config or {}
    by_experiment: dict[str, list[Run]] = {}
    for run in runs:
        by_experiment.setdefault(run.experiment, []).append(run)
    return {
        "audit": dict(config.get("audit") or {}),
        "analysis": dict(config.get("analysis") or {}),
        "experiments": {name: {"claims": run_claims(rs)} for name, rs in by_experiment.items()},
    }


def load_given_runs(paths) -> list[Run]:
    """The run directories ``paths`` (each with run.json and metrics.parquet), checked."""
    runs, seen = [], {}
    for path in paths:
        path = Path(path)
        if not ((path / "run.json").exists() and (path / "metrics.parquet").exists()):
            raise cfgmod.ConfigError(
                f"staircase audit: {path} is not a run directory (no run.json and metrics.parquet)"
            )
        run = load_run(path)
        key = (run.experiment, run.variant)
        if key in seen:
            raise cfgmod.ConfigError(f"staircase audit: {seen[key]} and {path} are both {'/'.join(key)}; give one")
        seen[key] = path
        runs.append(run)
    return runs


def given_run_notes(paths) -> list[str]:
    """What the verdicts on runs given by hand should be read with: a run that stopped before its
    Tracker's close() (run.json ``complete: false``), and bounds a Tracker left out (``bound_note``)."""
    notes = []
    for path in paths:
        info = read_json(Path(path) / "run.json")
        if info.get("complete") is False:
            notes.append(
                f"{path} is incomplete ({info.get('stopped') or 'stopped early'}): judged on the steps it holds."
            )
        if info.get("bound_note"):
            notes.append(f"{path}: {info['bound_note']}.")
    return notes


def evaluate_runs(paths, config: dict | None = None, seed_records: list | None = None) -> pd.DataFrame:
    """claims.csv as a DataFrame for run directories given by hand (e.g. a :class:`staircase.training.tracker.
    Tracker`'s): each experiment among them judged on :func:`run_claims`, with ``config``'s thresholds
    and test settings (the schema's defaults where it has none)."""
    runs = load_given_runs(paths)
    minimal = runs_config(runs, config)
    rows: list[vd.Row] = []
    for experiment, settings in minimal["experiments"].items():
        mine = [r for r in runs if r.experiment == experiment]
        integrity.check(experiment, mine)
        rows.extend(_judge(experiment, mine, minimal, settings["claims"], seed_records))
    return vd.to_frame(rows)


def overall(frame: pd.DataFrame) -> pd.DataFrame:
    return vd.overall(frame)


def code_versions(frame: pd.DataFrame) -> pd.DataFrame:
    """The code behind the runs: one row per distinct (commit, dirty, package version)."""
    seen = []
    for paths in frame["runs"].dropna():
        for path in filter(None, str(paths).split(";")):
            info = read_json(Path(path) / "run.json")
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


def _fmt(x) -> str:
    return "" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x:.4g}"


def figure_links(frame: pd.DataFrame, figures_dir: str) -> list[str]:
    """Per experiment: links to the registry's figures of the claims it was audited for."""
    lines = []
    # studies (b/c) and rows over several experiments (a+b) have no figures of their own
    for experiment in dict.fromkeys(e for e in frame["experiment"] if "/" not in e and "+" not in e):
        tested = set(frame.loc[frame["experiment"] == experiment, "claim"])
        names = [
            f"{name}_{experiment}" if fig["scope"] == "experiment" else name
            for name, fig in registry.figures().items()
            if fig.get("kind", "figure") == "figure"
            and tested & set(fig["claims"])
            and fig["scope"] in ("experiment", "claim")
        ]
        lines.append(f"- {experiment}: " + ", ".join(f"[{n}]({figures_dir}/{n}.png)" for n in names))
    return lines


def to_markdown(
    frame: pd.DataFrame,
    versions: pd.DataFrame,
    calibration: pd.DataFrame | None = None,
    where: dict | None = None,
    figures: bool = True,
) -> str:
    """claims.md; ``where``: the results root, scale and tag it describes (the code versions follow
    at the end); ``figures``: link the workflow's figures of the claims (runs given by hand have none)."""
    lines = ["# Claims audit", ""]
    if where:
        commits = ", ".join(f"{v.git_commit}{' (dirty)' if v.git_dirty else ''}" for v in versions.itertuples())
        lines += [
            "This audit describes "
            + "; ".join(f"{k} **{v}**" for k, v in where.items())
            + f"; code: {commits or 'unknown'} (see the end).",
            "",
        ]
    verdicts = overall(frame)
    counts = verdicts["verdict"].value_counts()
    lines.append(
        f"**{summary_counts(counts)}** (claim x experiment). Each claim is judged by its tests against a "
        "stated null model (p-value or margin); self-checks are identities (a violation is a bug: ERROR); "
        "descriptions are reported, not evidence. Thresholds: the `audit:` section of config.yaml; "
        "statistics and nulls: src/staircase/claims/claims.yaml and docs/claims.md."
    )
    lines += ["", "| claim | experiment | verdict | what is claimed |", "|---|---|---|---|"]
    for v in verdicts.itertuples():
        lines.append(f"| {v.claim} | {v.experiment} | **{v.verdict}** | {registry.claim_text(v.claim)} |")
    lines += ["", "## Evidence", ""]
    lines += [
        "| claim | experiment | statistic | role | value | spread | n | null model | p | threshold | margin | verdict |"
    ]
    lines += ["|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in frame.itertuples():
        cells = [r.claim, r.experiment, r.metric, r.role, _fmt(r.value), r.spread, r.n, r.null, _fmt(r.p_value)]
        cells += [r.threshold, _fmt(r.margin), f"**{r.verdict}**"]
        lines.append("| " + " | ".join(str(c).replace("|", "/") for c in cells) + " |")
    details = [r for r in frame.itertuples() if r.detail]
    if details:
        lines += ["", "## Details", ""]
        lines += [f"- **{r.claim} {r.experiment}** ({r.metric}): {r.detail}" for r in details]
    if calibration is not None and len(calibration):
        lines += ["", "## How often the tests err (synthetic ensembles of this run: <root>/calibration)", ""]
        lines += ["| test | ensemble | measures | draws | rate | 95% interval |", "|---|---|---|---|---|---|"]

        def rate(x: float) -> str:  # a rate below 0.001 keeps its digits (the map's test: 8e-05, not 0.000)
            return f"{x:.2g}" if 0 < x < 1e-3 else f"{x:.3f}"

        for c in calibration.itertuples():
            interval = f"[{rate(c.ci_low)}, {rate(c.ci_high)}]"
            lines.append(f"| {c.test} | {c.ensemble} | {c.measures} | {c.draws} | {rate(c.rate)} | {interval} |")
    links = figure_links(frame, "../figures") if figures and not frame.empty else []
    if links:
        lines += ["", "## Figures", "", *links]
    lines += ["", "## Code versions behind these runs", ""]
    if len(versions) > 1 or (len(versions) == 1 and bool(versions["git_dirty"].iloc[0])):
        lines += ["**Warning: the runs were not all produced by one clean commit.**", ""]
    lines += ["| git commit | dirty | package | runs |", "|---|---|---|---|"]
    lines += [f"| {v.git_commit} | {v.git_dirty} | {v.package_version} | {v.runs} |" for v in versions.itertuples()]
    return "\n".join(lines) + "\n"


def results_table(frame: pd.DataFrame) -> str:
    """The README's results table: one table for paper A's experiments, one for papers B and C's
    studies; each cell the verdict with the number that decided it (the p-value, or the value and
    its threshold, of the first failing test, else of the first test). Every verdict in it is a
    test against a null: descriptions never decide."""
    verdicts = overall(frame).set_index(["claim", "experiment"])["verdict"]
    out = []
    for studies in (False, True):
        part = frame[frame["experiment"].str.contains("/") == studies]
        claims = [c for c in registry.claims() if c in set(part["claim"])]
        if not claims:
            continue
        lines = [f"| {'study' if studies else 'experiment'} | " + " | ".join(claims) + " |"]
        lines.append("|---|" + "---|" * len(claims))
        for experiment in dict.fromkeys(part["experiment"]):
            cells = []
            for claim in claims:
                rows = part[(part["claim"] == claim) & (part["experiment"] == experiment)]
                decisive = rows[rows["role"].isin(["test", "guard", "self-check"])]
                if decisive.empty:
                    cells.append("")
                    continue
                failing = decisive[decisive["verdict"] != PASS]
                tests = decisive[decisive["role"] == "test"]
                shown = (failing if len(failing) else tests if len(tests) else decisive).iloc[0]
                number = (
                    f"p={shown.p_value:.2g}"
                    if np.isfinite(shown.p_value) and str(shown.threshold).startswith("p")
                    else f"{shown.value:.3g}, {shown.threshold}"
                )
                cells.append(f"{verdicts[(claim, experiment)]} ({number})")
            lines.append(f"| {experiment} | " + " | ".join(cells) + " |")
        out.append("\n".join(lines) + "\n")
    return "\n".join(out)


def summary_counts(counts) -> str:
    parts = [
        f"{counts.get(PASS, 0)} passed",
        f"{counts.get(FAIL, 0)} failed",
        f"{counts.get(INCONCLUSIVE, 0)} inconclusive",
    ]
    if counts.get(ERROR, 0):
        parts.append(f"{counts.get(ERROR, 0)} with a failed self-check (ERROR)")
    return ", ".join(parts)


def has_results(results) -> bool:
    return any(Path(results, "runs").glob("*/*/run.json"))


def run_audit(config: dict, results=None, out_dir=None, runs=None) -> pd.DataFrame:
    """Audit and write claims.csv, seeds.csv, claims.md and results_table.md to ``out_dir``: the
    config's experiments from ``results``, or the run directories ``runs`` (:func:`evaluate_runs`)."""
    results = Path(results or cfgmod.results_root(config))
    seed_records: list[dict] = []
    frame = evaluate(config, results, seed_records) if runs is None else evaluate_runs(runs, config, seed_records)
    versions = code_versions(frame)
    calib_path = results / "calibration" / "summary.csv"
    # a damaged table is one line naming it (read_table), not a traceback in the report
    calibration = read_table(calib_path, CALIBRATION_COLUMNS, CALIBRATION_NUMBERS) if calib_path.exists() else None
    out = Path(out_dir or results / "audit")
    where = {"results root": str(results), "scale": config.get("scale", "small"), "tag": config.get("tag") or "none"}
    if runs is not None:  # runs given by hand have no scale or tag of the config, and no figures
        where = {"runs": ", ".join(map(str, runs))}
        notes = given_run_notes(runs)
        if notes:
            where["note"] = " ".join(notes)
    seeds = pd.DataFrame(
        seed_records,
        columns=["claim", "experiment", "variant", "seed", "statistic", "value", "p_value", "null", "detail"],
    )
    atomic_write(out / "claims.csv", lambda tmp: frame.to_csv(tmp, index=False))
    atomic_write(out / "seeds.csv", lambda tmp: seeds.to_csv(tmp, index=False))
    markdown = to_markdown(frame, versions, calibration, where, figures=runs is None)
    atomic_write(out / "claims.md", lambda tmp: Path(tmp).write_text(markdown))
    atomic_write(out / "results_table.md", lambda tmp: Path(tmp).write_text(results_table(frame)))
    return frame


def summary_line(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "claims audit: no claims evaluated"
    verdicts = overall(frame)
    text = f"claims audit: {summary_counts(verdicts['verdict'].value_counts())}"
    bad = verdicts[verdicts["verdict"].isin([FAIL, ERROR])]
    if not bad.empty:
        text += " (failed: " + ", ".join(f"{r.claim}/{r.experiment}" for r in bad.itertuples()) + ")"
    return text
