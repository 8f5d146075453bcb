"""The workflow as a user runs it: config validation before any job, a dry run of the default
config, and a tiny end-to-end run from training to figure, executed notebook and HTML."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")
TINY = REPO / "tests" / "config" / "config.yaml"


def snakemake(*args, cwd, timeout=900):
    return subprocess.run(
        [SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_default_config_dry_run(tmp_path):
    res = snakemake("--dry-run", "--cores", "2", "--configfile", str(REPO / "config.yaml"), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "train" in res.stdout


def _bad(tmp_path, edit):
    cfg = yaml.safe_load(TINY.read_text())
    edit(cfg)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return snakemake("--dry-run", "--cores", "1", "--configfile", str(path), cwd=tmp_path)


@pytest.mark.parametrize(
    "edit, expected",
    [
        (lambda c: c.update(colour="blue"), "config: Additional properties are not allowed ('colour' was unexpected)"),
        (
            lambda c: c["experiments"]["fit1d"]["train"].update(lr="1e-3"),
            "experiments.fit1d.train.lr: '1e-3' is not of type 'number'",
        ),
        (
            lambda c: c["experiments"]["fit1d"]["model"].update(width=-3),
            "experiments.fit1d.model.width: -3 is less than the minimum of 1",
        ),
        (
            lambda c: c["experiments"]["fit1d"]["model"].update(activation="swish"),
            "experiments.fit1d.model.activation: 'swish' is not one of",
        ),
        (
            lambda c: c["experiments"]["fit1d"]["task"].update(rank_pts=10),
            "experiments.fit1d.task: Additional properties are not allowed ('rank_pts'",
        ),
        (
            lambda c: c["experiments"]["fit1d"]["task"].pop("frequencies"),
            "experiments.fit1d.task.frequencies: required by task 'multifreq1d' but missing",
        ),
        (
            lambda c: c["experiments"]["fit1d"]["rank"].update(main_eps=0.5),
            "experiments.fit1d.rank.main_eps: 0.5 is not one of rank.eps",
        ),
    ],
)
def test_bad_config_fails_before_any_job_with_one_line(tmp_path, edit, expected):
    res = _bad(tmp_path, edit)
    assert res.returncode != 0
    errors = [line for line in (res.stdout + res.stderr).splitlines() if "config error:" in line]
    assert len(errors) == 1, res.stdout + res.stderr
    assert expected in errors[0]
    assert not (tmp_path / "results").exists()


@pytest.mark.slow
def test_tiny_end_to_end(tmp_path):
    res = snakemake("--cores", "2", "--configfile", str(TINY), cwd=tmp_path, timeout=1200)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    for name in (
        "results/figures/staircase_fit1d.png",
        "results/figures/staircase_fit1d.pdf",
        "results/notebooks/staircase_fit1d.ipynb",
        "results/notebooks/staircase_fit1d.html",
        "results/runs/fit1d/base/run.json",
        "results/runs/fit1d/base/spectra.npz",
        # the analysis figures, chosen by the experiments' claims (workflow/rules/analysis.smk)
        "results/figures/spectra_fit1d.pdf",
        "results/figures/layers_fit1d.pdf",
        "results/figures/bound.pdf",
        "results/figures/universality_sweep1d.pdf",
        "results/tables/summary.pdf",
        "results/notebooks/summary.html",
    ):
        assert (tmp_path / name).stat().st_size > 0, name
    summary = pd.read_csv(tmp_path / "results/tables/summary.csv")
    assert list(summary["variant"]) == ["base", "activation-tanh", "activation-relu"]
    assert (summary["bound_violations"] == 0).all() and (summary["bound_checks"] > 0).all()
    assert not (tmp_path / "results/figures/layers_sweep1d.png").exists()  # sweep1d is not tagged A5
    metrics = pd.read_parquet(tmp_path / "results/runs/fit1d/base/metrics.parquet")
    assert {"step", "loss", "lower_bound", "eps_rank", "seed"} <= set(metrics.columns)
    assert sorted(metrics["seed"].unique()) == [0, 1]
    assert not metrics["bound_violation"].any()
    log = (tmp_path / "results/logs/train/fit1d/base.log").read_text()
    assert "150/150" in log and "results in results/runs/fit1d/base" in log  # progress bar, where results went
    assert not (tmp_path / "results/checkpoints/fit1d/base/checkpoint.pt").exists()  # removed after success

    # nothing changed: nothing re-runs
    res = snakemake("--dry-run", "--cores", "2", "--configfile", str(TINY), cwd=tmp_path)
    assert "Nothing to be done" in res.stdout + res.stderr
    shutil.rmtree(tmp_path / "results")
