"""Papers B and C in the workflow: a bad setting of their sections stops a dry run with one line
naming the key, and a tiny end-to-end run goes from training to figures, claim tables and the
claims audit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from helpers import REPO, snakemake

TINY = REPO / "tests" / "config" / "lowrank.yaml"


def test_bad_lowrank_config_fails_before_any_job(tmp_path):
    """(The checks beyond the schema are unit-tested in test_lowrank; both run in the same place.)"""
    cfg = yaml.safe_load(TINY.read_text())
    cfg["rank_collapse"]["studies"]["grid"]["weight_decay"] = ["1e-3"]
    expected = "rank_collapse.studies.grid.weight_decay.0: '1e-3' is not of type 'number'"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(cfg))
    res = snakemake("--dry-run", "--cores", "1", "--configfile", str(path), cwd=tmp_path)
    assert res.returncode != 0
    errors = [line for line in (res.stdout + res.stderr).splitlines() if "config error:" in line]
    assert len(errors) == 1 and expected in errors[0], res.stdout + res.stderr


@pytest.mark.slow
def test_tiny_lowrank_end_to_end(tmp_path):
    # both jobs of each family, and three notebooks (a papermill run costs ~10 s of CPU, so the other
    # figures are left to the default workflow run)
    targets = [
        "results/figures/collapse_bound.png",
        "results/tables/collapse_claims.csv",
        "results/tables/alignment_claims.csv",
    ]
    # targets before --configfile, which takes every following argument as a config file
    res = snakemake("--cores", "2", *targets, "--configfile", str(TINY), cwd=tmp_path, timeout=1200)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    for target in targets:
        assert (tmp_path / target).stat().st_size > 0, target
    log = (tmp_path / "results/logs/rank_collapse/grid.log").read_text()
    assert "results in results/runs/rank_collapse/grid" in log
    table = pd.read_csv(tmp_path / "results/tables/collapse_claims.csv")
    assert set(table["claim"]) == {"B1", "B2", "B3"}
    assert (table[table["claim"] == "B3"]["value"] == 0).all()  # no bound violation
    # the lambda = 5 cells collapse to a trivial classifier and are reported as such
    b1 = table[table["claim"] == "B1"].iloc[0]
    assert "trivial classifier: weight_decay 5" in b1["detail"]
    align = pd.read_csv(tmp_path / "results/tables/alignment_claims.csv")
    assert set(align["claim"]) == {"C1", "C2", "C3"}
    # the audit picks the studies up, with the runs' provenance
    res = subprocess.run(
        [sys.executable, "-m", "staircase", "audit", "--config", str(TINY), "--out", "results/audit"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(REPO / "src"), "PATH": str(Path(sys.executable).parent)},
    )
    assert res.returncode == 0, res.stderr
    audit = pd.read_csv(tmp_path / "results/audit/claims.csv")
    assert {"rank_collapse/grid", "alignment/gauss"} <= set(audit["experiment"])
    # nothing changed: nothing re-runs
    res = snakemake("--dry-run", "--cores", "2", *targets, "--configfile", str(TINY), cwd=tmp_path)
    assert "Nothing to be done" in res.stdout + res.stderr
