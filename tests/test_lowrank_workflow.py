"""Papers B and C in the workflow: a bad setting of their sections stops a dry run with one line
naming the key, and a tiny end-to-end run goes from training to figures, claim tables and the rows
the claims audit takes (staircase.claims.lowrank.audit_rows)."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml
from helpers import REPO, snakemake

from staircase.claims import lowrank as lowrank_claims
from staircase.claims import verdicts

TINY = REPO / ".test" / "config" / "lowrank.yaml"


def test_bad_lowrank_config_fails_before_any_job(tmp_path):
    """(The checks beyond the schema are unit-tested in test_lowrank; both run in the same place.)"""
    cfg = yaml.safe_load(TINY.read_text())
    cfg["rank_collapse"]["studies"]["grid"]["weight_decay"] = ["1e-3"]
    expected = "rank_collapse.studies.grid.weight_decay.0: '1e-3' is text to YAML 1.1, not a number: write 1.0e-3"
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
        "results/small/figures/collapse_bound.png",
        "results/small/tables/collapse_claims.csv",
        "results/small/tables/alignment_claims.csv",
    ]
    # targets before --configfile, which takes every following argument as a config file
    res = snakemake("--cores", "2", *targets, "--configfile", str(TINY), cwd=tmp_path, timeout=1200)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    for target in targets:
        assert (tmp_path / target).stat().st_size > 0, target
    log = (tmp_path / "results/small/logs/rank_collapse/grid.log").read_text()
    assert "results in results/small/runs/rank_collapse/grid" in log
    table = pd.read_csv(tmp_path / "results/small/tables/collapse_claims.csv")
    assert set(table["claim"]) == {"B1", "B2", "B3"}
    assert set(verdicts.COLUMNS) - {"runs"} <= set(table.columns)  # role, null, p_value, margin, ...
    checks = table[table["role"] == "self-check"]
    assert len(checks) == 2 and (checks["value"] == 0).all() and (checks["verdict"] == "PASS").all()  # no violation
    assert table.loc[table["metric"].str.contains("Spearman"), "p_value"].notna().all()
    # the lambda = 5 cells collapse to a trivial classifier and are reported as such
    b1 = table[(table["claim"] == "B1") & (table["role"] == "guard")]
    assert b1["detail"].str.contains("trivial classifier: weight_decay 5").any()
    align = pd.read_csv(tmp_path / "results/small/tables/alignment_claims.csv")
    assert set(align["claim"]) == {"C1", "C2", "C3"}
    assert (
        set(align["role"]) <= set(verdicts.ROLES) and (align.loc[align["role"] == "test", "null"].str.len() > 0).all()
    )
    # what the audit takes of papers B and C (staircase.claims.audit consumes these rows), with the runs' provenance
    config = yaml.safe_load(TINY.read_text())
    rows = verdicts.to_frame(lowrank_claims.audit_rows(config, tmp_path / "results/small"))
    assert {"rank_collapse/grid", "alignment/gauss"} <= set(rows["experiment"])
    assert rows["runs"].str.endswith(("runs/rank_collapse/grid", "runs/alignment/gauss")).all()
    assert set(verdicts.overall(rows)["verdict"]) <= {"PASS", "FAIL", "INCONCLUSIVE"}  # no ERROR
    # nothing changed: nothing re-runs
    res = snakemake("--dry-run", "--cores", "2", *targets, "--configfile", str(TINY), cwd=tmp_path)
    assert "Nothing to be done" in res.stdout + res.stderr
