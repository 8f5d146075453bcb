"""``staircase compare ROOT ROOT [ROOT ...]``: two or more results (scales, commits, settings) side by side.

Each ROOT is a results root (a folder holding ``audit/claims.csv`` and ``runs/``), an audit
folder, or a ``claims.csv`` file; each side has a label (``--labels``; default A, B, C, ...), any
text but unique. The comparison writes to ``out``:

* ``verdicts.csv`` - one row per claim x experiment of any side: the verdict of each side
  (``verdict_<label>``) and whether they differ (a claim judged on some sides only is a difference too);
* ``statistics.csv`` - every test row (role ``test``) of any side: value, p-value and verdict of
  each side, and the change of the value from the first side (``change_<label>`` per later side);
* ``configs.csv`` - the settings that differ between the sides' runs of the same experiment and
  variant (their run.json's resolved config, dotted keys), one column per side (``<label>``); a
  run only some sides hold is one row, ``(run)``;
* ``overlay.png`` / ``.pdf`` - when every side holds runs: for every experiment variant they all
  share, the training loss and the last layer's eps-rank against step, median over healthy
  seeds, one line style per side.

The command prints the differing settings and the differing verdicts (and says when there are none).
"""

from __future__ import annotations

import json
import string
from dataclasses import dataclass
from functools import reduce
from pathlib import Path

import numpy as np
import pandas as pd

from staircase.claims import verdicts as vd
from staircase.records.runs import load_run, read_json, read_table, spread

NOT_JUDGED = "(not judged)"
SHOWN_SETTINGS = 20  # the printed config differences; configs.csv holds them all


class CompareError(ValueError):
    """A side that holds no audit, or labels that cannot name the sides: one line naming it."""


@dataclass
class Side:
    label: str
    claims: pd.DataFrame
    runs_dir: Path | None


def default_labels(n: int) -> list[str]:
    return list(string.ascii_uppercase[:n]) if n <= 26 else [f"R{i}" for i in range(n)]


def check_labels(labels, n: int) -> list[str]:
    """One non-empty, distinct label per side."""
    labels = default_labels(n) if not labels else [str(label) for label in labels]
    if len(labels) != n:
        raise CompareError(f"--labels: {len(labels)} label(s) for {n} results; give one per results root")
    if not all(label.strip() for label in labels):
        raise CompareError("--labels: a label is empty")
    twice = sorted({label for label in labels if labels.count(label) > 1})
    if twice:
        raise CompareError(f"--labels: {', '.join(map(repr, twice))} given more than once; each side needs its own")
    return labels


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


def _merge(tables: list[pd.DataFrame], keys: list[str]) -> pd.DataFrame:
    return reduce(lambda left, right: left.merge(right, on=keys, how="outer"), tables)


def verdict_table(sides: list[Side]) -> pd.DataFrame:
    tables = [vd.overall(s.claims).rename(columns={"verdict": f"verdict_{s.label}"}) for s in sides]
    table = _merge(tables, ["claim", "experiment"])
    columns = [f"verdict_{s.label}" for s in sides]
    table[columns] = table[columns].fillna(NOT_JUDGED)
    table["differs"] = table[columns].nunique(axis=1) > 1
    return table


def statistics_table(sides: list[Side]) -> pd.DataFrame:
    keys = ["claim", "experiment", "metric"]
    cols = ["value", "p_value", "verdict"]

    def tests(side: Side) -> pd.DataFrame:
        rows = side.claims[side.claims["role"] == "test"][keys + cols].drop_duplicates(keys)
        return rows.rename(columns={c: f"{c}_{side.label}" for c in cols})

    table = _merge([tests(s) for s in sides], keys)
    first = sides[0].label
    for side in sides[1:]:
        table[f"change_{side.label}"] = table[f"value_{side.label}"] - table[f"value_{first}"]
    return table


def run_configs(side: Side) -> dict[tuple[str, str], dict]:
    """(experiment, variant) -> the resolved config its run.json holds, flattened to dotted keys."""
    if side.runs_dir is None:
        return {}
    found = {}
    for path in sorted(side.runs_dir.glob("*/*/run.json")):
        found[(path.parent.parent.name, path.parent.name)] = flatten(read_json(path).get("config") or {})
    return found


def flatten(config: dict, prefix: str = "") -> dict[str, str]:
    """{dotted key: the value as compact JSON} of a nested config."""
    flat = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = json.dumps(value, sort_keys=True, default=str)
    return flat


def config_table(sides: list[Side]) -> pd.DataFrame:
    """The settings that differ between the sides' runs of one experiment and variant (module docs)."""
    configs = [run_configs(s) for s in sides]
    labels = [s.label for s in sides]
    rows = []
    for run in sorted(set().union(*configs)):
        if not all(run in c for c in configs):
            held = {label: "yes" if run in c else "no" for label, c in zip(labels, configs)}
            rows.append({"experiment": run[0], "variant": run[1], "setting": "(run)", **held})
            continue
        flats = [c[run] for c in configs]
        for key in sorted(set().union(*flats)):
            values = [f.get(key, "(unset)") for f in flats]
            if len(set(values)) > 1:
                rows.append({"experiment": run[0], "variant": run[1], "setting": key, **dict(zip(labels, values))})
    return pd.DataFrame(rows, columns=["experiment", "variant", "setting", *labels])


def shared_runs(sides: list[Side]) -> list[tuple[str, str]]:
    """(experiment, variant) whose runs every side holds."""
    if any(s.runs_dir is None for s in sides):
        return []

    def runs(root: Path) -> set[tuple[str, str]]:
        return {(p.parent.parent.name, p.parent.name) for p in root.glob("*/*/metrics.parquet")}

    common = set.intersection(*(runs(s.runs_dir) for s in sides))
    # papers B and C's studies have no eps-rank curves to overlay
    first = sides[0].runs_dir
    return sorted(k for k in common if "eps_rank" in read_table(first / k[0] / k[1] / "metrics.parquet"))


def overlay(sides: list[Side], pairs: list[tuple[str, str]], stem: Path) -> None:
    """Loss and eps-rank of every shared run, one line style per side (median over healthy seeds)."""
    # matplotlib on demand: the claims layer is imported by every Snakemake parse (the audit's rules)
    # and by every `staircase` command; only this one draws
    import matplotlib

    matplotlib.use("Agg")  # a command, not a notebook: no display
    import matplotlib.pyplot as plt

    styles = ["-", "--", ":", "-."]
    fig, axes = plt.subplots(len(pairs), 2, figsize=(10, 2.4 * len(pairs)), squeeze=False)
    for (ax_loss, ax_rank), (experiment, variant) in zip(axes, pairs):
        for i, side in enumerate(sides):
            run = load_run(side.runs_dir / experiment / variant)
            healthy = run.metrics[run.metrics["seed"].isin(run.healthy_seeds)]
            style = dict(ls=styles[i % len(styles)], color=f"C{i // len(styles)}" if i >= len(styles) else "k")
            for ax, column in ((ax_loss, "loss"), (ax_rank, "eps_rank")):
                band = spread(healthy, column)
                ax.plot(band["step"], band["median"], lw=1.2, label=side.label, **style)
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


def compare(paths, out, labels=None) -> dict:
    """Write verdicts.csv, statistics.csv, configs.csv and (with shared runs) overlay.png/pdf to
    ``out``; return {"labels", "verdicts", "statistics", "configs", "shared"}. Every side is read
    before anything is written."""
    paths = list(paths)
    if len(paths) < 2:
        raise CompareError(f"staircase compare: {len(paths)} results given; compare needs two or more")
    labels = check_labels(labels, len(paths))
    sides = [locate(path, label) for path, label in zip(paths, labels)]
    result = {
        "labels": labels,
        "verdicts": verdict_table(sides),
        "statistics": statistics_table(sides),
        "configs": config_table(sides),
        "shared": shared_runs(sides),
    }
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for name in ("verdicts", "statistics", "configs"):
        result[name].to_csv(out / f"{name}.csv", index=False)
    if result["shared"]:
        overlay(sides, result["shared"], out / "overlay")
    return result


def report(result: dict) -> str:
    """The lines ``staircase compare`` prints: differing settings, then differing verdicts."""
    labels = result["labels"]
    lines = _config_lines(result["configs"], labels)
    verdicts = result["verdicts"]
    differ = verdicts[verdicts["differs"]]
    lines.append(f"{len(differ)} of {len(verdicts)} verdicts differ" + (":" if len(differ) else ""))
    for row in differ.to_dict("records"):  # records, not tuples: a label need not be an identifier
        sides = " | ".join(f"{label} {row[f'verdict_{label}']}" for label in labels)
        lines.append(f"  {row['claim']} {row['experiment']}: {sides}")
    stats = result["statistics"]
    moved = stats[stats[[f"verdict_{label}" for label in labels]].astype(str).nunique(axis=1) > 1]
    for row in moved.to_dict("records"):
        values = " | ".join(f"{label} {_fmt(row[f'value_{label}'])}" for label in labels)
        lines.append(f"    {row['claim']} {row['experiment']}: {row['metric'][:70]}: {values}")
    if result["shared"]:
        lines.append(f"overlay of {len(result['shared'])} shared runs written")
    return "\n".join(lines)


def _config_lines(configs: pd.DataFrame, labels: list[str]) -> list[str]:
    if configs.empty:
        return ["settings: the same in every run the sides share (or no runs to compare)"]
    lines = [f"{len(configs)} setting(s) differ:"]
    for row in configs.head(SHOWN_SETTINGS).to_dict("records"):
        values = " | ".join(f"{label} {row[label]}" for label in labels)
        lines.append(f"  {row['experiment']}/{row['variant']} {row['setting']}: {values}")
    if len(configs) > SHOWN_SETTINGS:
        lines.append(f"  ... and {len(configs) - SHOWN_SETTINGS} more in configs.csv")
    return lines


def _fmt(x) -> str:
    return "-" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x:.4g}"


__all__ = ["CompareError", "check_labels", "compare", "config_table", "locate", "report"]
