"""Compare the results of two runs of the workflow (a SLURM run against a local one).

    python tests/slurm/compare_runs.py [--runs-only] LOCAL_DIR SLURM_DIR

Each directory is a working directory the workflow ran in (it holds results/, whatever roots the
runs wrote there). Passes when both produced the same set of result files (with --runs-only: of
training results, the roots' runs/) and
every training job's numbers are identical: the metrics table without its clock columns, the rank
table, every spectrum, and the run record without its timings and host. Training on the CPU is
deterministic, so the tolerance is zero.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from staircase.training.trainer import TIMING_COLUMNS  # the clock columns: the only ones that may differ

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

    runs = sorted(p.parent for p in (local / "results").glob("*/runs/**/metrics.parquet"))
    if not runs:
        problems.append(f"no training results under {local / 'results'}/<root>/runs")
    for run in runs:
        rel = run.relative_to(local)
        a, b = local / rel, other / rel
        if not (b / "metrics.parquet").exists():
            continue  # reported above as missing
        try:
            pd.testing.assert_frame_equal(
                pd.read_parquet(a / "metrics.parquet").drop(columns=list(TIMING_COLUMNS), errors="ignore"),
                pd.read_parquet(b / "metrics.parquet").drop(columns=list(TIMING_COLUMNS), errors="ignore"),
                check_exact=True,
            )
        except AssertionError as err:
            problems.append(f"{rel}/metrics.parquet differs: {err}")
        try:
            pd.testing.assert_frame_equal(
                pd.read_parquet(a / "ranks.parquet"), pd.read_parquet(b / "ranks.parquet"), check_exact=True
            )
        except AssertionError as err:
            problems.append(f"{rel}/ranks.parquet differs: {err}")
        with np.load(a / "spectra.npz") as sa, np.load(b / "spectra.npz") as sb:
            if sorted(sa.files) != sorted(sb.files):
                problems.append(f"{rel}/spectra.npz: arrays {sorted(sa.files)} != {sorted(sb.files)}")
            else:
                for key in sa.files:
                    if not np.array_equal(sa[key], sb[key]):
                        problems.append(f"{rel}/spectra.npz: array {key} differs")
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
    n = len(list((local / "results").glob("*/runs/**/metrics.parquet")))
    files = len(result_files(local, under))
    print(f"compare_runs: {other}: {files} files under {under}/ and {n} training job(s), all identical")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
