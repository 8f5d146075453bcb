"""``staircase compare A B``: two results (two scales, two commits, two settings) side by side.

A and B are each a results root (a folder holding ``audit/claims.csv`` and ``runs/``), an audit
folder, or a ``claims.csv`` file. The comparison writes to ``out``:

* ``verdicts.csv`` - one row per claim x experiment of either side: the verdict in A and in B and
  whether they differ (a claim judged on one side only is a difference too);
* ``statistics.csv`` - every test row (role ``test``) of either side: value, p-value and verdict in
  A and B, and the change of the value;
* ``overlay.png`` / ``.pdf`` - when both sides hold runs: for every experiment variant they share,
  the training loss and the last layer's eps-rank against step, median over healthy seeds, A
  solid, B dashed.

The command prints the differing verdicts (and says when there are none).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from staircase.claims import verdicts as vd
from staircase.records.runs import load_run, read_table, spread


class CompareError(ValueError):
    """A side that holds no audit: one line naming it."""


@dataclass
class Side:
    label: str
    claims: pd.DataFrame
    runs_dir: Path | None


def locate(path, label: str) -> Side:
    """The audit (and the runs, when there are) of a results root, an audit folder or a claims.csv."""
    path = Path(path)
    for claims, runs in (
        (path / "audit" / "claims.csv", path / "runs"),
        (path / "claims.csv", path.parent / "runs"),
        (path, path.parent.parent / "runs"),
    ):
        if claims.is_file():
            return Side(label, read_table(claims), runs if runs.is_dir() else None)
    raise CompareError(
        f"{path}: no audit there (expected {path}/audit/claims.csv, {path}/claims.csv or a claims.csv file); "
        "run the workflow or `staircase audit` first"
    )


def verdict_table(a: Side, b: Side) -> pd.DataFrame:
    left = vd.overall(a.claims).rename(columns={"verdict": f"verdict_{a.label}"})
    right = vd.overall(b.claims).rename(columns={"verdict": f"verdict_{b.label}"})
    table = left.merge(right, on=["claim", "experiment"], how="outer")
    table = table.fillna({f"verdict_{a.label}": "(not judged)", f"verdict_{b.label}": "(not judged)"})
    table["differs"] = table[f"verdict_{a.label}"] != table[f"verdict_{b.label}"]
    return table


def statistics_table(a: Side, b: Side) -> pd.DataFrame:
    keys = ["claim", "experiment", "metric"]
    cols = ["value", "p_value", "verdict"]

    def tests(side: Side) -> pd.DataFrame:
        rows = side.claims[side.claims["role"] == "test"][keys + cols].drop_duplicates(keys)
        return rows.rename(columns={c: f"{c}_{side.label}" for c in cols})

    table = tests(a).merge(tests(b), on=keys, how="outer")
    table["change"] = table[f"value_{b.label}"] - table[f"value_{a.label}"]
    return table


def shared_runs(a: Side, b: Side) -> list[tuple[str, str]]:
    """(experiment, variant) whose runs both sides hold."""
    if a.runs_dir is None or b.runs_dir is None:
        return []

    def runs(root: Path) -> set[tuple[str, str]]:
        return {(p.parent.parent.name, p.parent.name) for p in root.glob("*/*/metrics.parquet")}

    both = runs(a.runs_dir) & runs(b.runs_dir)
    # papers B and C's studies have no eps-rank curves to overlay
    return sorted(k for k in both if "eps_rank" in read_table(a.runs_dir / k[0] / k[1] / "metrics.parquet"))


def overlay(a: Side, b: Side, pairs: list[tuple[str, str]], stem: Path) -> None:
    """Loss and eps-rank of every shared run, A solid and B dashed (median over healthy seeds)."""
    # matplotlib on demand: the claims layer is imported by every Snakemake parse (the audit's rules)
    # and by every `staircase` command; only this one draws
    import matplotlib

    matplotlib.use("Agg")  # a command, not a notebook: no display
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(pairs), 2, figsize=(10, 2.4 * len(pairs)), squeeze=False)
    for (ax_loss, ax_rank), (experiment, variant) in zip(axes, pairs):
        for side, style in ((a, "-"), (b, "--")):
            run = load_run(side.runs_dir / experiment / variant)
            healthy = run.metrics[run.metrics["seed"].isin(run.healthy_seeds)]
            for ax, column in ((ax_loss, "loss"), (ax_rank, "eps_rank")):
                band = spread(healthy, column)
                ax.plot(band["step"], band["median"], style, color="k", lw=1.2, label=f"{side.label}")
        ax_loss.set_yscale("log")
        ax_loss.set_title(f"{experiment} / {variant}", loc="left", fontsize=8)
        ax_loss.set_ylabel("training loss")
        ax_rank.set_ylabel("eps-rank, last layer")
        for ax in (ax_loss, ax_rank):
            ax.set_xlabel("step")
            ax.legend(fontsize=7)
    fig.tight_layout()
    stem.parent.mkdir(parents=True, exist_ok=True)
    for suffix in (".png", ".pdf"):
        fig.savefig(stem.with_suffix(suffix), dpi=130)
    plt.close(fig)


def compare(path_a, path_b, out, labels=("A", "B")) -> dict:
    """Write verdicts.csv, statistics.csv and (with shared runs) overlay.png/pdf to ``out``;
    return {"verdicts", "statistics", "shared"}."""
    a, b = locate(path_a, labels[0]), locate(path_b, labels[1])
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    verdicts = verdict_table(a, b)
    statistics = statistics_table(a, b)
    verdicts.to_csv(out / "verdicts.csv", index=False)
    statistics.to_csv(out / "statistics.csv", index=False)
    pairs = shared_runs(a, b)
    if pairs:
        overlay(a, b, pairs, out / "overlay")
    return {"verdicts": verdicts, "statistics": statistics, "shared": pairs}


def report(result: dict, labels=("A", "B")) -> str:
    """The lines ``staircase compare`` prints."""
    verdicts = result["verdicts"]
    differ = verdicts[verdicts["differs"]]
    lines = [f"{len(differ)} of {len(verdicts)} verdicts differ" + (":" if len(differ) else "")]
    for r in differ.itertuples(index=False):
        lines.append(f"  {r.claim} {r.experiment}: {r[2]} -> {r[3]}")
    stats = result["statistics"]
    moved = stats[stats[f"verdict_{labels[0]}"] != stats[f"verdict_{labels[1]}"]]
    for r in moved.itertuples(index=False):
        va, vb = getattr(r, f"value_{labels[0]}"), getattr(r, f"value_{labels[1]}")
        lines.append(f"    {r.claim} {r.experiment}: {r.metric[:70]}: {_fmt(va)} -> {_fmt(vb)}")
    if result["shared"]:
        lines.append(f"overlay of {len(result['shared'])} shared runs written")
    return "\n".join(lines)


def _fmt(x) -> str:
    return "-" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x:.4g}"


__all__ = ["CompareError", "compare", "locate", "report"]
