"""Compare the results of two runs of the workflow (a SLURM run against a local one).

    python tests/slurm/compare_runs.py [--runs-only] LOCAL_DIR SLURM_DIR

Each directory is a working directory the workflow ran in (it holds results/, whatever roots the
runs wrote there). Passes when both produced the same set of result files (with --runs-only: of
training results, the roots' runs/) and
every training job's numbers are identical (papers B and C's jobs too): every table without its clock
columns, every array (spectra), and the run record without its timings and host. The same check
compares a results root before and after a change meant to preserve behaviour. Training on the CPU is
deterministic, so the tolerance is zero.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from staircase.training.recorder import TIMING_COLUMNS  # the clock columns: the only ones that may differ

# the parts of run.json that describe the result (host, wall time, speed do not)
RUN_KEYS = [
    "config",
    "seeds",
    "status",
    "diverged",
    "device",
    "gram_normalisation",
    "package_version",
    "torch_version",
    "numpy_version",
]


def result_files(workdir: Path, under: str = "results") -> set[str]:
    """Files under results/ (with under "runs": only the roots' runs/ folders)."""
    if under == "runs":
        return {str(p.relative_to(workdir)) for p in (workdir / "results").glob("*/runs/**/*") if p.is_file()}
    return {str(p.relative_to(workdir)) for p in (workdir / under).rglob("*") if p.is_file()}


def compare(local: Path, other: Path, under: str = "results") -> list[str]:
    problems = []
    files_local, files_other = result_files(local, under), result_files(other, under)
    if missing := sorted(files_local - files_other):
        problems.append(f"missing from {other}: {missing}")
    if extra := sorted(files_other - files_local):
        problems.append(f"only in {other}: {extra}")
    for name in sorted(files_local & files_other):
        if (other / name).stat().st_size == 0 < (local / name).stat().st_size:
            problems.append(f"empty file: {other / name}")

    # every training job of every paper: a folder with a run.json (papers B and C write more tables)
    runs = sorted(p.parent for p in (local / "results").glob("*/runs/**/run.json"))
    if not runs:
        problems.append(f"no training results under {local / 'results'}/<root>/runs")
    for run in runs:
        rel = run.relative_to(local)
        if (other / rel / "run.json").exists():  # a missing job is reported above
            problems += compare_run(local / rel, other / rel, rel)
    return problems


def same(x: np.ndarray, y: np.ndarray) -> bool:
    """Equal to the bit, NaN where NaN (a grid cell without a value)."""
    return np.array_equal(x, y, equal_nan=x.dtype.kind in "fc" and y.dtype.kind in "fc")


def compare_run(a: Path, b: Path, rel: Path) -> list[str]:
    """One training job's numbers: every table without its clock columns, every array, and the
    run record's RUN_KEYS."""
    problems = []
    for table in sorted(p.name for p in a.glob("*.parquet")):
        try:
            pd.testing.assert_frame_equal(
                pd.read_parquet(a / table).drop(columns=list(TIMING_COLUMNS), errors="ignore"),
                pd.read_parquet(b / table).drop(columns=list(TIMING_COLUMNS), errors="ignore"),
                check_exact=True,
            )
        except (AssertionError, FileNotFoundError) as err:
            problems.append(f"{rel}/{table} differs: {err}")
    for arrays in sorted(p.name for p in a.glob("*.npz")):
        with np.load(a / arrays) as sa, np.load(b / arrays) as sb:
            if sorted(sa.files) != sorted(sb.files):
                problems.append(f"{rel}/{arrays}: arrays {sorted(sa.files)} != {sorted(sb.files)}")
                continue
            problems += [f"{rel}/{arrays}: array {key} differs" for key in sa.files if not same(sa[key], sb[key])]
    ja, jb = (json.loads((d / "run.json").read_text()) for d in (a, b))
    for key in RUN_KEYS:
        if ja.get(key) != jb.get(key):
            problems.append(f"{rel}/run.json: {key}: {ja.get(key)!r} != {jb.get(key)!r}")
    return problems


def main(argv: list[str]) -> int:
    under = "results"
    if argv[:1] == ["--runs-only"]:
        under, argv = "runs", argv[1:]
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    local, other = (Path(p).resolve() for p in argv)
    problems = compare(local, other, under)
    for problem in problems:
        print(f"compare_runs: {problem}", file=sys.stderr)
    if problems:
        return 1
    n = len(list((local / "results").glob("*/runs/**/run.json")))
    files = len(result_files(local, under))
    print(f"compare_runs: {other}: {files} files under {under}/ and {n} training job(s), all identical")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
