"""The analysis notebooks on results with a diverged seed: they must run, flag the seed, and keep
it out of the medians (the tiny end-to-end run in test_workflow.py runs every notebook on
healthy results)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from helpers import mark_diverged

from staircase.claims import audit
from staircase.records import manifest
from staircase.training import trainer as train
from staircase.workflow import config as cfgmod

REPO = Path(__file__).resolve().parents[1]
PAPERMILL = str(Path(sys.executable).parent / "papermill")


def diverge(run_dir: Path, seed: int, step: int, activation: str) -> None:
    """Rewrite a run as if ``seed`` had diverged at ``step`` (helpers.mark_diverged), relabelled
    as another sweep cell."""
    mark_diverged(run_dir, seed, step)
    info = json.loads((run_dir / "run.json").read_text())
    info["config"]["model"]["activation"] = activation
    (run_dir / "run.json").write_text(json.dumps(info))
    manifest.seal(run_dir)  # edited on purpose


def papermill(name: str, cwd: Path, **parameters) -> str:
    out = cwd / f"{name}.ipynb"
    res = subprocess.run(
        [PAPERMILL, str(REPO / "notebooks" / f"{name}.ipynb"), str(out), "-k", "python3", "--cwd", str(cwd)]
        + ["-y", json.dumps(parameters)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    return out.read_text()


@pytest.mark.slow
def test_notebooks_flag_a_diverged_seed(tmp_path):
    config = yaml.safe_load((REPO / ".test/config/config.yaml").read_text())
    cfg = cfgmod.variants(config, "fit1d")["base"]
    cfg["train"]["steps"] = 60
    runs = [tmp_path / "runs/exp/activation-tanh", tmp_path / "runs/exp/activation-relu"]
    for run in runs:
        train.run(dict(cfg, experiment="exp", variant=run.name), run, progress=False)
    diverge(runs[1], seed=1, step=30, activation="relu")
    runs = [str(r) for r in runs]
    stairs = dict(min_points=2, min_span=0.0, window=1)
    for name, extra in (
        ("staircase", dict(experiment="exp", **stairs)),
        ("universality", dict(experiment="exp", **stairs)),
        ("spectra", dict(experiment="exp")),
    ):
        executed = papermill(name, tmp_path, runs=runs, output_stem=str(tmp_path / name), **extra)
        assert (tmp_path / f"{name}.png").stat().st_size > 0 and (tmp_path / f"{name}.pdf").stat().st_size > 0
        if name != "spectra":
            assert "diverged at step 30" in executed  # the status is shown, not dropped
    # the regime map's table and figure: the cell with one healthy seed is not judged, and says why
    papermill("regime_table", tmp_path, runs=runs, output_stem=str(tmp_path / "regime_table"), **stairs)
    cells = pd.read_csv(tmp_path / "regime_table.csv").set_index("variant")
    assert cells.loc["activation-relu", "seeds_ok"] == 1 and pd.isna(cells.loc["activation-relu", "a1_pass"])
    assert cells.loc["activation-relu", "status"] == "seed 1 diverged at step 30"
    assert not pd.isna(cells.loc["activation-tanh", "a1_pass"])
    executed = papermill(
        "regime_map", tmp_path, table=str(tmp_path / "regime_table.csv"), output_stem=str(tmp_path / "regime_map")
    )
    assert (tmp_path / "regime_map.png").stat().st_size > 0 and "of 1 cells pass A1" in executed
    papermill("summary", tmp_path, runs=runs, output_stem=str(tmp_path / "summary"), **stairs)
    table = pd.read_csv(tmp_path / "summary.csv").set_index("variant")
    assert table.loc["activation-relu", "status"] == "seed 1 diverged at step 30"
    assert table.loc["activation-relu", "seeds_ok"] == 1 and table.loc["activation-tanh", "seeds_ok"] == 2
    # the medians of the diverged cell are those of its surviving seed 0, which trained exactly as in the healthy
    # cell (same config and seed)
    healthy = pd.read_parquet(Path(runs[0]) / "metrics.parquet")
    seed0 = healthy[(healthy["seed"] == 0) & (healthy["step"] == 60)]
    assert table.loc["activation-relu", "final_loss"] == pytest.approx(float(seed0["loss"].iloc[0]))
    assert (table["bound_violations"] == 0).all()
    # the bound figure shows A3's numbers as the audit computes them (its rows, its filter)
    executed = papermill("bound", tmp_path, runs=runs, output_stem=str(tmp_path / "bound"), **stairs)
    assert (tmp_path / "bound.png").stat().st_size > 0 and (tmp_path / "bound.pdf").stat().st_size > 0
    claims = audit.evaluate_runs(runs)
    checks = claims[(claims["claim"] == "A3") & (claims["role"] == "self-check")].iloc[0]
    shown = next(
        "".join(out["data"]["text/plain"])
        for cell in json.loads(executed)["cells"]
        for out in cell.get("outputs", [])
        if "self-check" in "".join(out.get("data", {}).get("text/plain", ""))
    )
    assert f"{checks['value']:g}" in shown and f"{checks['n']}" in shown
