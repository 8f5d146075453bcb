"""Reading training results for figures, tables and the audit.

A run directory ``<root>/runs/<experiment>/<variant>/`` (root: results/<scale>[-<tag>]) holds
what ``staircase train`` wrote (see :mod:`staircase.training.trainer`). :func:`load_run` reads it into a
:class:`Run` (:func:`load_runs` many, :func:`experiment_runs` the finished ones of one experiment);
the helpers below compute, from a run, the numbers the analysis figures and the summary table show:

* :func:`spread` - median and band (min..max) over seeds of one metric at every step, counting
  only the seeds that have not diverged by that step;
* :func:`layer_ranks` / :func:`layer_order_shares` / :func:`layer_order` - epsilon-rank of every
  hidden layer, and per seed (and pair) the shares of checkpoints with r_eps(l+1) > r_eps(l)
  strictly, ties and reversals, pairs at full rank apart (claim A5);
* :func:`seed_summary` / :func:`run_summary` - per seed and per variant: final loss and error,
  final epsilon-rank per layer, stairs and Spearman (:mod:`staircase.core.stairs`), bound violations,
  and the seed's status.

Diverged seeds are never dropped silently: the trainer records NaN from the step a seed diverged
on and ``run.json`` says ``"diverged at step N"``; :attr:`Run.diverged` gives {seed: N}, and the
summaries carry the status with every row.
"""

from __future__ import annotations

import json
import re
import zipfile
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from staircase.core import stairs
from staircase.errors import UnreadableResult
from staircase.records import manifest as mf

_DIVERGED = re.compile(r"diverged at step (\d+)")


def _read(path, reader):
    path = Path(path)
    try:
        return reader(path)
    except FileNotFoundError:
        raise UnreadableResult(f"{path}: missing; run snakemake again, which re-runs the job that writes it") from None
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as err:
        why = " ".join(str(err).split())[:200] or type(err).__name__
        raise UnreadableResult(
            f"{path}: cannot be read ({why}); the file is damaged or incomplete: delete it and run snakemake "
            "again, which re-runs the job that writes it"
        ) from None


def _read_csv(path: Path) -> pd.DataFrame:
    # pandas' C parser ends a field at a NUL byte and reads on: a damaged file would pass as text
    if b"\x00" in path.read_bytes():
        raise ValueError("it holds a NUL byte")
    return pd.read_csv(path)


def read_table(path, columns=(), numeric=()) -> pd.DataFrame:
    """A result table (parquet, or CSV by its suffix); an unreadable one (a CSV with a NUL byte
    too), or one without the ``columns`` (or with a non-number in a ``numeric`` column), raises
    UnreadableResult naming it."""
    table = _read(path, _read_csv if str(path).endswith(".csv") else pd.read_parquet)
    require_columns(path, table, columns, numeric)
    return table


def require_columns(path, table: pd.DataFrame, columns=(), numeric=()) -> None:
    """UnreadableResult naming ``path`` unless ``table`` has the ``columns`` and numbers in the ``numeric`` ones."""
    missing = [c for c in (*columns, *numeric) if c not in table.columns]
    not_numbers = [c for c in numeric if c in table.columns and not pd.api.types.is_numeric_dtype(table[c])]
    if missing or not_numbers:
        problem = f"missing column(s) {missing}" if missing else f"non-numbers in column(s) {not_numbers}"
        raise UnreadableResult(
            f"{path}: {problem}; the file is damaged or from another version: delete it and run snakemake "
            "again, which re-runs the job that writes it"
        )


def read_json(path) -> dict:
    """A run's run.json; an unreadable one raises UnreadableResult naming it."""
    return _read(path, lambda p: json.loads(p.read_text()))


def read_npz(path) -> dict[str, np.ndarray]:
    """Every array of a spectra.npz; an unreadable one raises UnreadableResult naming it."""

    def load(p):
        with np.load(p) as npz:
            return {k: npz[k] for k in npz.files}

    return _read(path, load)


@dataclass
class Run:
    """One experiment variant: all its seeds."""

    path: Path
    info: dict  # run.json
    metrics: pd.DataFrame
    _ranks: pd.DataFrame | None = field(default=None, repr=False)

    @property
    def config(self) -> dict:
        return self.info["config"]

    @property
    def experiment(self) -> str:
        return self.config["experiment"]

    @property
    def variant(self) -> str:
        return self.config["variant"]

    @property
    def main_eps(self) -> float:
        return float(self.config["rank"]["main_eps"])

    @property
    def seeds(self) -> list[int]:
        return [int(s) for s in self.info["seeds"]]

    @property
    def status(self) -> dict[int, str]:
        return {int(s): st for s, st in self.info["status"].items()}

    @property
    def healthy_seeds(self) -> list[int]:
        """The seeds that trained to the end (status ok)."""
        return [s for s, st in self.status.items() if st == "ok"]

    @property
    def diverged(self) -> dict[int, int]:
        """{seed: step at which it diverged} for the diverged seeds."""
        out = {}
        for seed, st in self.status.items():
            if st != "ok":
                match = _DIVERGED.search(st)
                out[seed] = int(match.group(1)) if match else -1
        return out

    @property
    def depth(self) -> int:
        return int(self.config["model"]["depth"])

    @property
    def ranks(self) -> pd.DataFrame:
        if self._ranks is None:
            self._ranks = read_table(self.path / "ranks.parquet")
        return self._ranks

    @cached_property
    def spectra(self) -> dict[str, np.ndarray]:
        return read_npz(self.path / "spectra.npz")

    def status_note(self) -> str:
        """'' when every seed is fine, else e.g. 'seed 1 diverged at step 300'."""
        return "; ".join(
            f"seed {s} diverged" + (f" at step {step}" if step >= 0 else "") for s, step in self.diverged.items()
        )


def load_run(path) -> Run:
    """A run folder, verified before use: every file against manifest.json (sha256, size), run.json's
    identity against the manifest's and the folder's, and the tables' columns, seeds and statuses
    against run.json. Anything amiss is UnreadableResult, one line naming the file and the remedy."""
    path = Path(path)
    manifest = mf.verify(path)
    info = read_json(path / "run.json")
    _check_run_json(path / "run.json", info)
    mf.check_identity(path, manifest, info)
    metrics = read_table(path / "metrics.parquet")
    _check_metrics(path / "metrics.parquet", info, metrics)
    return Run(path, info, metrics)


# what every reader takes from metrics.parquet (the bound's columns are optional: the audit says
# "re-run" for A3 without them)
METRICS_COLUMNS = ("seed", "step", "loss", "eps_rank", "rel_l2")


def _bad(path, problem: str) -> UnreadableResult:
    return UnreadableResult(f"{path}: {problem}; {mf.REMEDY}")


def _check_run_json(path: Path, info) -> None:
    """run.json holds what every reader takes from it: the config's names and main eps, the seeds,
    and a status for every seed."""
    if not isinstance(info, dict):
        raise _bad(path, f"expected a mapping, got {type(info).__name__}")
    config, seeds, status = info.get("config"), info.get("seeds"), info.get("status")
    try:
        names_ok = all(isinstance(config[k], str) for k in ("experiment", "variant"))
        main_eps_ok = isinstance(config["rank"]["main_eps"], (int, float))
    except (KeyError, TypeError):
        raise _bad(path, "its config lacks experiment, variant or rank.main_eps") from None
    if not (names_ok and main_eps_ok):
        raise _bad(path, "its config's experiment, variant or rank.main_eps is not of its kind")
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) for s in seeds):
        raise _bad(path, f"seeds: expected a list of integers, got {seeds!r:.60}")
    if not isinstance(status, dict) or sorted(status) != sorted(str(s) for s in seeds):
        raise _bad(path, "status: expected one status per seed")


def _check_metrics(path: Path, info: dict, metrics: pd.DataFrame) -> None:
    """The columns a reader uses, one block of rows per seed of run.json, and no NaN loss for a
    seed run.json calls ok (NaN is what a diverged seed records), unless the run records no loss
    at all (a model tracked without one: staircase.Tracker)."""
    missing = [c for c in METRICS_COLUMNS if c not in metrics.columns]
    if missing:
        raise _bad(path, f"missing column(s) {missing}")
    seeds = sorted(int(s) for s in info["seeds"])
    if sorted(int(s) for s in metrics["seed"].unique()) != seeds:
        raise _bad(path, f"its seeds {sorted(metrics['seed'].unique().tolist())} are not run.json's {seeds}")
    if not np.isfinite(metrics["loss"].to_numpy(float)).any():
        return
    for seed, st in info["status"].items():
        loss = metrics.loc[metrics["seed"] == int(seed), "loss"].to_numpy(float)
        if st == "ok" and not np.isfinite(loss).all():
            raise _bad(path, f"seed {seed} has NaN or infinite losses though run.json says it finished ok")


@dataclass
class StudyRun:
    """One paper B/C study folder (<root>/runs/<family>/<study>), verified by :func:`load_study_run`."""

    path: Path
    info: dict  # run.json
    files: tuple[str, ...]  # the files its manifest vouches for

    def holds(self, table: str) -> bool:
        return f"{table}.parquet" in self.files

    def table(self, name: str) -> pd.DataFrame:
        """``<name>.parquet``; one its manifest does not name is refused (it was not written by the job)."""
        if not self.holds(name):
            raise _bad(self.path / f"{name}.parquet", "not among the files its manifest.json vouches for")
        return read_table(self.path / f"{name}.parquet")

    @cached_property
    def spectra(self) -> dict[str, np.ndarray]:
        return read_npz(self.path / "spectra.npz")


def load_study_run(path) -> StudyRun:
    """A paper B/C study folder, verified before use as :func:`load_run` verifies a paper-A run:
    every file against manifest.json, and run.json's family, study, seeds and config against the
    manifest's identity and the folder's name. Anything amiss is UnreadableResult, one line."""
    path = Path(path)
    manifest = mf.verify(path)
    info = read_json(path / "run.json")
    study_json_ok = isinstance(info, dict) and isinstance(info.get("config"), dict)
    seeds = info.get("seeds") if study_json_ok else None
    if not (study_json_ok and "family" in info and isinstance(seeds, list) and all(isinstance(s, int) for s in seeds)):
        raise _bad(path / "run.json", "expected a study's run.json (a mapping with family, study, config and seeds)")
    mf.check_identity(path, manifest, info)
    return StudyRun(path, info, tuple(manifest["files"]))


def load_runs(paths) -> list[Run]:
    """The runs in the directories ``paths``, in their order (the one reader of many runs: the
    notebooks, the audit and the methods comparison all come here)."""
    return [load_run(p) for p in paths]


def experiment_runs(runs_dir, variants=None) -> list[Run]:
    """The finished runs (those with a metrics.parquet) of one experiment, ``runs_dir`` =
    <root>/runs/<experiment>: the named ``variants`` in their order, else every variant on disk in
    the order of its directory's name."""
    runs_dir = Path(runs_dir)
    if variants is None:
        variants = sorted(path.parent.name for path in runs_dir.glob("*/metrics.parquet"))
    return load_runs(runs_dir / v for v in variants if (runs_dir / v / "metrics.parquet").exists())


def spread(metrics: pd.DataFrame, column: str) -> pd.DataFrame:
    """Per step: median, min and max of ``column`` over the seeds with a finite value, and their
    number ``n`` (it falls when a seed diverges)."""
    grp = metrics[np.isfinite(metrics[column])].groupby("step")[column]
    return pd.DataFrame({"median": grp.median(), "lo": grp.min(), "hi": grp.max(), "n": grp.count()}).reset_index()


def layer_ranks(ranks: pd.DataFrame, eps: float) -> pd.DataFrame:
    """Wide table: index (seed, step), one column per hidden layer: its epsilon-rank at ``eps``."""
    sel = ranks[(ranks["metric"] == "eps_rank") & np.isclose(ranks["eps"], eps, rtol=1e-9, atol=0)]
    if sel.empty:
        raise ValueError(f"no eps-rank at eps={eps} in the ranks table (have {sorted(ranks['eps'].dropna().unique())})")
    return sel.pivot_table(index=["seed", "step"], columns="layer", values="value", dropna=False).sort_index()


def layer_order_shares(run: Run) -> pd.DataFrame:
    """Claim A5, per seed and adjacent pair of hidden layers (l -> l+1): over the checkpoints, the
    shares with r_eps(l+1) > r_eps(l) (``strict``), = (``ties``) and < (``reversals``), leaving out
    the checkpoints where both layers have full rank (every neuron's direction above eps: nothing to
    order; their share is ``saturated``). Empty for a single hidden layer; checkpoints after a
    divergence (NaN) are left out."""
    wide = layer_ranks(run.ranks, run.main_eps)
    if wide.shape[1] < 2:
        return pd.DataFrame(columns=["seed", "pair", "strict", "ties", "reversals", "saturated", "checkpoints"])
    widths = np.array([run.spectra[f"layer{layer}"].shape[-1] for layer in wide.columns])
    rows = []
    for seed in wide.index.get_level_values("seed").unique():
        w = wide.loc[seed].to_numpy(float)
        w = w[np.isfinite(w).all(axis=1)]
        for pair in range(w.shape[1] - 1):
            earlier, later = w[:, pair], w[:, pair + 1]
            full = (earlier == widths[pair]) & (later == widths[pair + 1])
            ok = ~full
            n = int(ok.sum())
            shares = {
                name: float((mask & ok).sum() / n) if n else np.nan
                for name, mask in (
                    ("strict", later > earlier),
                    ("ties", later == earlier),
                    ("reversals", later < earlier),
                )
            }
            saturated = float(full.mean()) if len(full) else np.nan
            rows.append(dict(seed=int(seed), pair=f"{pair}->{pair + 1}", **shares, saturated=saturated, checkpoints=n))
    return pd.DataFrame(rows)


def layer_order(run: Run) -> pd.DataFrame:
    """Per seed: the A5 shares over all adjacent pairs together (checkpoint-weighted), NaN for a
    single hidden layer."""
    shares = layer_order_shares(run)
    if shares.empty:
        return pd.DataFrame(columns=["strict", "ties", "reversals", "saturated"], index=pd.Index([], name="seed"))
    weighted = shares[["strict", "ties", "reversals"]].mul(shares["checkpoints"], axis=0)
    out = weighted.groupby(shares["seed"]).sum().div(shares.groupby("seed")["checkpoints"].sum(), axis=0)
    out["saturated"] = shares.groupby("seed")["saturated"].mean()
    return out


def seed_summary(run: Run, min_points: int = 2, min_span: float = 0.0, window: int = 1) -> pd.DataFrame:
    """One row per seed: status, the last finite loss / rel_l2 / lower bound, final epsilon-rank
    of every layer at the main eps (``final_rank_l<l>``), the stair analysis of the last layer
    (:func:`staircase.core.stairs.seed_table`), the layer order (A5) and the bound violations."""
    m = run.metrics.sort_values(["seed", "step"])
    finite = m[np.isfinite(m["loss"])]
    last = finite.groupby("seed").tail(1).set_index("seed")
    table = pd.DataFrame(index=pd.Index(run.seeds, name="seed"))
    table["status"] = [run.status.get(s, "missing") for s in run.seeds]
    table["last_step"] = last["step"]
    table["final_loss"] = last["loss"]
    table["final_rel_l2"] = last["rel_l2"]
    table["final_lower_bound"] = last["lower_bound"]
    wide = layer_ranks(run.ranks, run.main_eps)
    final_ranks = wide.dropna(how="all").groupby(level="seed").tail(1).droplevel("step")
    for layer in final_ranks.columns:
        table[f"final_rank_l{layer}"] = final_ranks[layer]
    st = stairs.seed_table(m, min_points=min_points, min_span=min_span, window=window).set_index("seed")
    table = table.join(st)
    order = layer_order(run)
    table["layer_order_strict"] = order["strict"]
    table["layer_order_ties"] = order["ties"]
    table["bound_checks"] = finite.groupby("seed")["bound_violation"].size()
    table["bound_violations"] = finite.groupby("seed")["bound_violation"].sum()
    table.insert(0, "variant", run.variant)
    table.insert(0, "experiment", run.experiment)
    return table.reset_index()


def run_summary(run: Run, **options) -> dict:
    """One row per variant: medians over the seeds that did not diverge (all seeds when every
    one diverged, flagged in ``status``), sums of the bound checks over all seeds."""
    seeds = seed_summary(run, **options)
    ok = seeds[seeds["status"] == "ok"]
    use = ok if len(ok) else seeds
    row = {
        "experiment": run.experiment,
        "variant": run.variant,
        "seeds": len(seeds),
        "seeds_ok": len(ok),
        "status": run.status_note() or "ok",
    }
    numeric = [c for c in seeds.columns if c not in ("experiment", "variant", "seed", "status", "truncated")]
    for col in numeric:
        row[col] = float(use[col].median()) if use[col].notna().any() else np.nan
    row["bound_checks"] = int(seeds["bound_checks"].sum())
    row["bound_violations"] = int(seeds["bound_violations"].sum())
    return row


__all__ = [
    "Run",
    "experiment_runs",
    "layer_order",
    "layer_order_shares",
    "layer_ranks",
    "StudyRun",
    "load_run",
    "load_runs",
    "load_study_run",
    "run_summary",
    "seed_summary",
    "spread",
]
