"""Helpers shared by several test files (plain functions; pytest puts tests/ on sys.path)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from staircase.records import manifest

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")


def snakemake_command(*args) -> list[str]:
    """The venv's snakemake on this repository's Snakefile (run from any folder)."""
    return [SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), *args]


def snakemake(*args, cwd, timeout=900) -> subprocess.CompletedProcess:
    return subprocess.run(snakemake_command(*args), cwd=cwd, capture_output=True, text=True, timeout=timeout)


METRICS_SET_NAN = ("loss", "rel_l2", "eps_rank", "lower_bound", "best_loss", "best_loss_top_r", "bound_rank")


def mark_diverged(run_dir: Path, seed: int, step: int) -> Path:
    """Rewrite a run directory as if ``seed`` had diverged at ``step``, as the trainer records it:
    NaN metrics, ranks and spectra from that step on, and the status in run.json."""
    m = pd.read_parquet(run_dir / "metrics.parquet")
    after = (m["seed"] == seed) & (m["step"] >= step)
    for col in METRICS_SET_NAN:
        m.loc[after, col] = np.nan
    m.loc[after, "bound_violation"] = False
    m.to_parquet(run_dir / "metrics.parquet", index=False)
    r = pd.read_parquet(run_dir / "ranks.parquet")
    r.loc[(r["seed"] == seed) & (r["step"] >= step), "value"] = np.nan
    r.to_parquet(run_dir / "ranks.parquet", index=False)
    with np.load(run_dir / "spectra.npz") as npz:
        spectra = {k: npz[k] for k in npz.files}
    s = list(spectra["seeds"]).index(seed)
    for key in spectra:
        if key.startswith("layer"):
            spectra[key][s, spectra["steps"] >= step] = np.nan
    np.savez_compressed(run_dir / "spectra.npz", **spectra)
    info = json.loads((run_dir / "run.json").read_text())
    info["status"][str(seed)] = f"diverged at step {step}"
    info["diverged"] = True
    (run_dir / "run.json").write_text(json.dumps(info))
    manifest.seal(run_dir)  # an edit made on purpose: the readers refuse a run its manifest does not match
    return run_dir
