"""Notebooks run where they sit (issue 24 item 5): input paths found from the working folder and the
folders above it, as given or inside the recorded results root; outputs named after the experiment;
a path found nowhere named with what to pass."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from torch import nn

from staircase import Tracker
from staircase.workflow.notebooks import notebook_output, notebook_path, notebook_paths

REPO = Path(__file__).resolve().parents[1]
PAPERMILL = str(Path(sys.executable).parent / "papermill")
RUN = "results/small/runs/mine/base"


def layout(base: Path) -> Path:
    """A checkout-like folder: results/small/{runs/mine/base, figures, notebooks}."""
    for sub in ("runs/mine/base", "figures", "notebooks"):
        (base / "results/small" / sub).mkdir(parents=True)
    return base


def test_paths_are_found_from_the_checkout_from_the_copys_folder_and_in_a_moved_root(tmp_path, monkeypatch):
    base = layout(tmp_path / "checkout")
    monkeypatch.chdir(base)
    assert notebook_path(RUN, "results/small") == RUN  # from the checkout: as given
    monkeypatch.chdir(base / "results/small/notebooks")  # where Jupyter runs the executed copy
    assert Path(notebook_path(RUN, "results/small")).resolve() == (base / RUN).resolve()
    assert notebook_paths({"a": RUN}, "results/small")["a"] == notebook_paths([RUN], "results/small")[0]
    stem = notebook_output("results/small/figures/layers_mine", "results/small")
    assert Path(stem).parent.resolve() == (base / "results/small/figures").resolve()
    moved = shutil.move(base / "results/small", tmp_path / "elsewhere")  # the root alone, moved
    monkeypatch.chdir(Path(moved) / "notebooks")
    assert Path(notebook_path(RUN, "results/small")).resolve() == (Path(moved) / "runs/mine/base").resolve()
    with pytest.raises(FileNotFoundError, match=r"parameter runs: results/small/runs/other is not under .* -p runs"):
        notebook_path("results/small/runs/other", "results/small")


def tracked_run(run: Path) -> None:
    nets = [nn.Sequential(nn.Linear(1, 8), nn.Tanh(), nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 1)) for _ in range(2)]
    x = np.linspace(-1, 1, 41)
    with Tracker(nets, x, schedule=5, out=run, progress=False) as tracker:
        for step in range(51):
            tracker.step(step, [1.0 / (step + 1)] * 2)


def papermill(notebook: Path, out: Path, cwd: Path, **parameters) -> subprocess.CompletedProcess:
    command = [PAPERMILL, str(notebook), str(out), "-k", "python3", "--cwd", str(cwd), "-y", json.dumps(parameters)]
    return subprocess.run(command, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_an_executed_notebook_runs_again_where_it_sits_and_names_its_output_after_the_experiment(tmp_path):
    base = layout(tmp_path / "checkout")
    tracked_run(base / RUN)
    copy = base / "results/small/notebooks/layers_mine.ipynb"
    stem = "results/small/figures/layers_mine"
    params = dict(experiment="mine", runs=[RUN], results_root="results/small", output_stem=stem)
    res = papermill(REPO / "notebooks/layers.ipynb", copy, base, **params)  # as the workflow runs it
    assert res.returncode == 0, res.stderr[-3000:]
    (base / f"{stem}.png").unlink()
    res = papermill(copy, tmp_path / "again.ipynb", copy.parent)  # the executed copy, where it sits
    assert res.returncode == 0, res.stderr[-3000:]
    assert (base / f"{stem}.png").stat().st_size > 0 and not (copy.parent / "results").exists()
    # no output_stem: named after the experiment, under the working folder's results/scratch
    res = papermill(REPO / "notebooks/layers.ipynb", tmp_path / "x.ipynb", base, experiment="mine", runs=[RUN])
    assert res.returncode == 0, res.stderr[-3000:]
    assert (base / "results/scratch/figures/layers_mine.png").exists()
    assert not list(base.rglob("layers_fit1d*"))
    # from a folder that holds no such run: the error names the parameter and what to pass
    res = papermill(copy, tmp_path / "lost.ipynb", tmp_path)
    assert res.returncode != 0 and "parameter runs: results/small/runs/mine/base is not under" in res.stderr
