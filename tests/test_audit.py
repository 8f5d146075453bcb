"""Verdict logic of the claims audit on synthetic results written to disk: a case that must pass,
one that must fail, one that is inconclusive, and the provenance and CLI behaviour."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from staircase import audit

REPO = Path(__file__).resolve().parents[1]
THRESHOLDS = {
    "min_seeds": 2,
    "a1_min_stairs": 2,
    "a1_min_monotone": 0.9,
    "a2_max_spearman": -0.5,
    "a2_min_aligned": 0.6,
    "a3_max_spearman": -0.5,
    "a4_min_fraction": 0.75,
    "a5_min_fraction": 0.8,
}


def make_config(seeds=(0, 1, 2)):
    config = yaml.safe_load((REPO / "tests/config/config.yaml").read_text())
    # only fit1d: the tiny config's other experiments have no results in these tests
    config["experiments"] = {"fit1d": config["experiments"]["fit1d"]}
    config["audit"] = dict(THRESHOLDS)
    exp = config["experiments"]["fit1d"]
    exp["claims"] = ["A2", "A3", "A5"]
    exp["seeds"] = list(seeds)
    return config


def write_run(
    results: Path, config: dict, rank_of_step, loss_of_step, status=None, layers_increasing=True, commit="abc"
):
    """A run directory as `staircase train` writes it, with the given rank and loss curves."""
    seeds = config["experiments"]["fit1d"]["seeds"]
    steps = np.arange(0, 200, 10)
    rows, ranks = [], []
    for seed in seeds:
        r = np.array([rank_of_step(s) for s in steps], dtype=float)
        loss = np.array([loss_of_step(s) for s in steps], dtype=float)
        rows.append(
            pd.DataFrame(
                {
                    "seed": seed,
                    "step": steps,
                    "loss": loss,
                    "eps_rank": r,
                    "lower_bound": 0.5 * loss,
                    "bound_violation": False,
                }
            )
        )
        for layer in (0, 1):
            value = r - (1 - layer) if layers_increasing else r + (1 - layer)
            ranks.append(
                pd.DataFrame(
                    {"seed": seed, "step": steps, "layer": layer, "metric": "eps_rank", "eps": 1e-3, "value": value}
                )
            )
    path = results / "runs/fit1d/base"
    path.mkdir(parents=True, exist_ok=True)
    pd.concat(rows).to_parquet(path / "metrics.parquet")
    pd.concat(ranks).to_parquet(path / "ranks.parquet")
    run_cfg = {"experiment": "fit1d", "variant": "base", "rank": {"main_eps": 1e-3}, "model": {"depth": 2}}
    info = {
        "config": run_cfg,
        "seeds": seeds,
        "status": status or {str(s): "ok" for s in seeds},
        "git_commit": commit,
        "git_dirty": False,
        "package_version": "0.1.0",
    }
    (path / "run.json").write_text(json.dumps(info))
    return path


def verdicts(config, results):
    frame = audit.evaluate(config, results)
    return dict(zip(audit.overall(frame)["claim"], audit.overall(frame)["verdict"])), frame


def stair_rank(step):
    return 3 + step // 50


def stair_loss(step):
    """Falls by half at each rank jump and only slowly on the plateaus: the claimed picture."""
    return 0.5 ** stair_rank(step) * (1 - 1e-4 * (step % 50))


def test_staircase_that_holds_passes(tmp_path):
    config = make_config()
    config["experiments"]["fit1d"]["claims"] = ["A1", "A2", "A3", "A5"]
    write_run(tmp_path, config, rank_of_step=stair_rank, loss_of_step=stair_loss)
    v, frame = verdicts(config, tmp_path)
    assert v == {"A1": "PASS", "A2": "PASS", "A3": "PASS", "A5": "PASS"}
    assert frame[frame.metric.str.startswith("detected stairs")]["value"].iloc[0] == 3
    a2 = frame[frame.claim == "A2"].iloc[0]
    assert -1.0 <= a2["value"] < -0.95 and a2["n"] == 3  # ties within a stair keep it just above -1


def test_stair_detection_uses_the_config_analysis_settings(tmp_path):
    """The audit counts stairs as the figures do: with config `analysis:`. Each plateau of the
    synthetic staircase holds 5 measurements, so requiring 6 leaves none confirmed."""
    config = make_config()
    config["experiments"]["fit1d"]["claims"] = ["A1"]
    write_run(tmp_path, config, rank_of_step=stair_rank, loss_of_step=stair_loss)
    config["analysis"] = {"min_points": 5}
    _, frame = verdicts(config, tmp_path)
    assert frame[frame.metric.str.startswith("detected stairs")]["value"].iloc[0] == 3
    config["analysis"] = {"min_points": 6}
    v, frame = verdicts(config, tmp_path)
    row = frame[frame.metric.str.startswith("detected stairs")].iloc[0]
    assert row["value"] == 0 and v["A1"] == "FAIL" and ">= 6 measurements" in row["detail"]


def test_smooth_loss_is_not_aligned_with_jumps(tmp_path):
    config = make_config()
    write_run(tmp_path, config, rank_of_step=stair_rank, loss_of_step=lambda s: 1.0 / (1 + s))
    v, frame = verdicts(config, tmp_path)
    assert v["A2"] == "FAIL"
    row = frame[frame.metric.str.startswith("fraction of rank jumps")].iloc[0]
    assert row["verdict"] == "FAIL" and row["value"] < 0.6


def test_loss_rising_with_rank_fails(tmp_path):
    config = make_config()
    write_run(
        tmp_path, config, rank_of_step=lambda s: 3 + s // 50, loss_of_step=lambda s: 1.0 + s, layers_increasing=False
    )
    v, frame = verdicts(config, tmp_path)
    assert v["A2"] == "FAIL" and v["A5"] == "FAIL"
    assert v["A3"] == "FAIL"  # the bound rises with the rank too


def test_bound_violation_fails_A3(tmp_path):
    config = make_config()
    path = write_run(tmp_path, config, rank_of_step=lambda s: 3 + s // 50, loss_of_step=lambda s: 1.0 / (1 + s))
    m = pd.read_parquet(path / "metrics.parquet")
    m.iloc[5, m.columns.get_loc("bound_violation")] = True
    m.to_parquet(path / "metrics.parquet")
    v, frame = verdicts(config, tmp_path)
    assert v["A3"] == "FAIL"
    assert frame[(frame.claim == "A3") & frame.metric.str.startswith("bound violations")]["value"].iloc[0] == 1


def test_too_few_healthy_seeds_is_inconclusive_and_says_why(tmp_path):
    config = make_config()
    status = {"0": "ok", "1": "diverged at step 40", "2": "diverged at step 60"}
    path = write_run(
        tmp_path, config, rank_of_step=lambda s: 3 + s // 50, loss_of_step=lambda s: 1.0 / (1 + s), status=status
    )
    m = pd.read_parquet(path / "metrics.parquet")
    m.loc[m.seed > 0, ["loss", "eps_rank"]] = np.nan
    m.to_parquet(path / "metrics.parquet")
    v, frame = verdicts(config, tmp_path)
    assert v["A2"] == "INCONCLUSIVE"
    detail = frame[frame.claim == "A2"]["detail"].iloc[0]
    assert "diverged" in detail and "only 1 healthy seed(s)" in detail


def test_constant_rank_has_no_correlation_inconclusive(tmp_path):
    config = make_config()
    write_run(tmp_path, config, rank_of_step=lambda s: 5, loss_of_step=lambda s: 1.0 / (1 + s))
    v, _ = verdicts(config, tmp_path)
    assert v["A2"] == "INCONCLUSIVE"


def test_missing_results_inconclusive(tmp_path):
    v, frame = verdicts(make_config(), tmp_path)
    assert set(v.values()) == {"INCONCLUSIVE"}


def test_mixed_code_versions_are_flagged(tmp_path):
    config = make_config()
    write_run(tmp_path, config, rank_of_step=lambda s: 3 + s // 50, loss_of_step=lambda s: 1.0 / (1 + s))
    frame = audit.run_audit(config, tmp_path, tmp_path / "audit")
    md = (tmp_path / "audit/claims.md").read_text()
    assert "not all produced by one clean commit" not in md
    info = json.loads((tmp_path / "runs/fit1d/base/run.json").read_text())
    info["git_dirty"] = True
    (tmp_path / "runs/fit1d/base/run.json").write_text(json.dumps(info))
    audit.run_audit(config, tmp_path, tmp_path / "audit")
    assert "not all produced by one clean commit" in (tmp_path / "audit/claims.md").read_text()
    csv = pd.read_csv(tmp_path / "audit/claims.csv")
    assert {"claim", "experiment", "metric", "value", "threshold", "verdict"} <= set(csv.columns)
    assert len(csv) == len(frame)


def test_cli_exits_nonzero_only_when_strict(tmp_path):
    config = make_config()
    write_run(tmp_path, config, rank_of_step=lambda s: 3 + s // 50, loss_of_step=lambda s: 1.0 + s)
    cmd = [
        sys.executable,
        "-m",
        "staircase",
        "audit",
        "--config-json",
        json.dumps(config),
        "--results",
        str(tmp_path),
        "--out",
        str(tmp_path / "a"),
    ]
    loose = subprocess.run(cmd, capture_output=True, text=True)
    assert loose.returncode == 0 and "failed" in loose.stdout
    strict = subprocess.run([*cmd, "--strict"], capture_output=True, text=True)
    assert strict.returncode == 1
