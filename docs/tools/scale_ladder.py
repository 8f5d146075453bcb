"""The scale ladder's tables, from a finished run of workflow/studies/scale_ladder.yaml.

    snakemake --configfile workflow/studies/scale_ladder.yaml --config tag=ladder --cores all \\
        results/small-ladder/audit/claims.csv
    python docs/tools/scale_ladder.py --results results/small-ladder

writes docs/results/scale_ladder.csv: one row per rung (width x steps x seeds, one variant of the
study) and claim (A1, A2, A3): the rung's verdict by the audit's own rule
(:func:`staircase.claims.verdicts.combine` of the cell's rows of ``<root>/audit/claims.csv``), the
p-value and the effect size of its test, the number of healthy seeds, and the commit, host and CPU
the rung was trained on; and docs/results/scale_ladder_calibration.csv: A1's false-positive rate
and power per measurement schedule of that run's calibration (``<root>/calibration/a1.csv``), so
the rates at the full-scale schedules (30000 and 20000 steps) are read apart from the default's.
Nothing is computed here that the workflow did not compute: the verdicts are the audit's, the rates
the calibration's draws decided by the audit's rule (:func:`staircase.claims.calibration.unit_decisions`).
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from staircase.claims import calibration, registry, verdicts

DOCS = Path(__file__).resolve().parents[1]
STUDY = DOCS.parent / "workflow" / "studies" / "scale_ladder.yaml"
OUT = DOCS / "results" / "scale_ladder.csv"
PAGE = DOCS / "scale-ladder.md"
OUT_CALIBRATION = DOCS / "results" / "scale_ladder_calibration.csv"
CLAIMS = ("A1", "A2", "A3")
# the statistic each claim's effect column holds (the value of that test row of the audit)
EFFECT = {
    "A1": "effect size: stall ratio or burst contrast, median over seeds (>= 2)",
    "A2": "mean percentile of the lagged loss drop at the rank's rises (0.5 at chance)",
    "A3": "share of checkpoints where the bound is at least a quarter of the squared L2 error",
}


def fail(message: str):
    sys.exit(f"scale_ladder: {message}")


def rung_settings(root: Path, experiment: str, variant: str) -> dict:
    """Width, steps and seeds as the rung's run.json records them (not parsed from its name)."""
    path = root / "runs" / experiment / variant / "run.json"
    if not path.exists():
        fail(f"{path} is missing: the rung did not finish; run the workflow again")
    record = json.loads(path.read_text())
    cfg = record["config"]
    return {
        "width": int(cfg["model"]["width"]),
        "steps": int(cfg["train"]["steps"]),
        "seeds": len(record["seeds"]),
        "commit": record.get("git_commit"),
        "dirty": bool(record.get("git_dirty")),
        "host": record.get("host"),
    }


def cell_rows(claims: pd.DataFrame) -> pd.DataFrame:
    """The ladder's rows of claims.csv with their cell: the variant of the one run each row judged
    (its ``runs`` column), and the metric without the audit's "cell <variant>: " prefix."""
    rows = claims[claims["experiment"].str.startswith("ladder_") & claims["claim"].isin(CLAIMS)].copy()
    if rows.empty:
        fail("the audit holds no row of a ladder_* experiment: is this the root of the ladder's run?")
    runs = rows["runs"].astype("string").fillna("")
    several = runs.str.contains(";") | (runs == "")
    if several.any():
        fail(f"rows that judge no single run: {sorted(set(rows.loc[several, 'metric']))[:3]}")
    rows["variant"] = [Path(run).name for run in runs]
    rows["metric"] = [m.removeprefix(f"cell {v}: ") for m, v in zip(rows["metric"], rows["variant"])]
    return rows


def rung_table(root: Path) -> pd.DataFrame:
    rows = cell_rows(pd.read_csv(root / "audit" / "claims.csv"))
    out = []
    for (experiment, variant, claim), cell in rows.groupby(["experiment", "variant", "claim"], sort=False):
        tests = cell[cell["role"] == "test"]
        with_p = tests[tests["p_value"].notna()]
        effect_row = tests[tests["metric"].str.startswith("effect size")] if claim == "A1" else tests
        out.append(
            {
                "experiment": experiment.removeprefix("ladder_"),
                "rung": variant,
                **rung_settings(root, experiment, variant),
                "claim": claim,
                "verdict": verdicts.combine(cell["verdict"], cell["role"]),
                "p_value": float(with_p["p_value"].iloc[0]) if len(with_p) else float("nan"),
                "effect": float(effect_row["value"].iloc[0]) if len(effect_row) else float("nan"),
                "effect_measures": EFFECT[claim],
                "n": int(tests["n"].max()) if len(tests) else 0,
            }
        )
    table = pd.DataFrame(out)
    commits = set(table["commit"])
    if len(commits) != 1 or None in commits or table["dirty"].any():
        fail(f"the rungs come from commits {sorted(map(str, commits))} or a changed tree: re-run from one clean commit")
    return table.drop(columns="dirty").sort_values(["experiment", "claim", "width", "steps", "seeds"])


def calibration_table(root: Path, config: dict) -> pd.DataFrame:
    """A1's rate per family and measurement schedule, decided as the audit decides (its thresholds)."""
    return calibration_table_from(pd.read_csv(root / "calibration" / "a1.csv"), config)


def calibration_table_from(a1: pd.DataFrame, config: dict) -> pd.DataFrame:
    """One row per schedule and family, and per schedule the null families and the power families
    pooled (``family`` "all null families" / "all power families": their draws' decisions together,
    a tighter interval than a family's share of the draws on one schedule)."""
    thresholds = registry.thresholds(config)
    alpha, ratio = thresholds["alpha"], thresholds["a1_min_stall_ratio"]
    rows, pooled = [], {}
    for (family, null, schedule), draws in a1.groupby(["family", "null", "schedule"], sort=False):
        decided = calibration.unit_decisions(draws, alpha, ratio)
        measures = "false-positive rate" if null else "power"
        pooled.setdefault((schedule, measures), []).append(decided)
        rows.append({"schedule": schedule, "family": family, "measures": measures} | calibration.rate(decided, alpha))
    for (schedule, measures), decided in pooled.items():
        family = "all null families" if measures == "false-positive rate" else "all power families"
        rows.append(
            {"schedule": schedule, "family": family, "measures": measures}
            | calibration.rate(np.concatenate(decided), alpha)
        )
    return pd.DataFrame(rows).sort_values(["schedule", "measures", "family"], kind="stable")


def _cell(row) -> str:
    if row["claim"] == "A1":
        return f"{row['verdict']} (p={row['p_value']:.2g}, effect {row['effect']:.3g})"
    if row["claim"] == "A2":
        return f"{row['verdict']} (p={row['p_value']:.2g})"
    return f"{row['verdict']} ({row['effect']:.3g})"


def markdown(table: pd.DataFrame) -> str:
    """The rung table as the site shows it (docs/scale-ladder.md, between the scale-ladder-table markers)."""
    lines = ["| experiment | width | steps | seeds | A1 | A2 | A3 |", "|---|---|---|---|---|---|---|"]
    for (experiment, width, steps, seeds), rung in table.groupby(["experiment", "width", "steps", "seeds"], sort=True):
        cells = {row["claim"]: _cell(row) for _, row in rung.iterrows()}
        lines.append(
            f"| {experiment} | {width} | {steps} | {seeds} | " + " | ".join(cells.get(c, "") for c in CLAIMS) + " |"
        )
    return "\n".join(lines)


def replace_marked(page: Path, text: str) -> None:
    start, end = "<!-- scale-ladder-table:start -->", "<!-- scale-ladder-table:end -->"
    content = page.read_text()
    if start not in content or end not in content:
        fail(f"{page} has no {start} ... {end} markers")
    head, rest = content.split(start, 1)
    page.write_text(head + start + "\n" + text + "\n" + end + rest.split(end, 1)[1])


def machine(hosts: set) -> str:
    """This machine's CPU, when the rungs were trained here (else only their host names are known)."""
    if hosts != {socket.gethostname()}:
        return "hosts " + ", ".join(sorted(map(str, hosts)))
    from staircase.benchmarks.bench import cpu_kind

    cpu = cpu_kind()
    return f"{cpu['cpu_kind']}, flags {' '.join(cpu['cpu_flags'])}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--results", required=True, type=Path, help="the results root of the ladder's run")
    ap.add_argument("--config", type=Path, default=STUDY, help="the study's config (its audit thresholds)")
    ap.add_argument("--out", type=Path, default=OUT, help=f"the rung table (default {OUT.relative_to(DOCS.parent)})")
    ap.add_argument("--out-calibration", type=Path, default=OUT_CALIBRATION, help="the calibration by schedule")
    ap.add_argument(
        "--page",
        type=lambda v: Path(v) if v else None,
        default=PAGE,
        help="the page whose table to regenerate ('' for none)",
    )
    args = ap.parse_args(argv)
    for needed in ("audit/claims.csv", "calibration/a1.csv"):
        if not (args.results / needed).exists():
            fail(f"{args.results / needed} is missing: give the root of a finished ladder run")
    import yaml

    config = yaml.safe_load(args.config.read_text())
    table = rung_table(args.results)
    table.insert(len(table.columns) - 1, "machine", machine(set(table["host"])))
    table = table.drop(columns="host")
    table.to_csv(args.out, index=False)
    calibration_table(args.results, config).to_csv(args.out_calibration, index=False)
    if args.page:
        replace_marked(args.page, markdown(table))
    print(f"{args.out}: {len(table)} rows; {args.out_calibration}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
