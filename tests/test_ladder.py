"""The scale ladder (issue 25): its study config changes only width, steps and seeds against the
default scale, and docs/tools/scale_ladder.py turns a finished run into docs/results/scale_ladder.csv
by the audit's own rule."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from itertools import product
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from staircase.claims import verdicts
from staircase.workflow import config as cfgmod

REPO = Path(__file__).resolve().parents[1]
STUDY = REPO / "workflow" / "studies" / "scale_ladder.yaml"
TOOL = REPO / "docs" / "tools" / "scale_ladder.py"
TABLE = REPO / "docs" / "results" / "scale_ladder.csv"
CALIBRATION = REPO / "docs" / "results" / "scale_ladder_calibration.csv"
PROBLEMS = {"ladder_fit1d": "fit1d", "ladder_poisson1d": "poisson1d"}


def load_tool():
    spec = importlib.util.spec_from_file_location("scale_ladder", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def study():
    return yaml.safe_load(STUDY.read_text())


@pytest.fixture(scope="module")
def default():
    return yaml.safe_load((REPO / "config.yaml").read_text())


def test_the_study_is_a_valid_config_with_its_own_results_root(study):
    cfgmod.check(study)
    assert cfgmod.results_root(dict(study, tag="ladder")) == "results/small-ladder"


def test_every_rung_is_the_default_scale_but_for_width_steps_and_seeds(study, default):
    """A verdict that differs between rungs differs by the rung's factors alone: every other setting
    is the default scale's own (task, training, measurement schedule, analysis and audit)."""
    assert study["analysis"] == default["analysis"] and study["audit"] == default["audit"]
    for experiment, problem in PROBLEMS.items():
        rungs = cfgmod.variants(study, experiment)
        small = cfgmod.variants(default, problem)
        reference = small.get("activation-tanh") or small["base"]  # poisson1d sweeps the activation
        full = cfgmod.variants(dict(default, scale="full"), problem)
        full_ref = full.get("activation-tanh") or full["base"]
        factors = set()
        for name, run in rungs.items():
            width, steps, seeds = run["model"]["width"], run["train"]["steps"], len(run["seeds"])
            assert name == f"w{width}_steps{steps}_seeds{seeds}"
            factors.add((width, steps, seeds))
            assert run["seeds"] == list(range(seeds))
            same = {k: v for k, v in run.items() if k not in ("experiment", "variant", "seeds")}
            ref = {k: v for k, v in reference.items() if k not in ("experiment", "variant", "seeds")}
            same["model"] = dict(same["model"], width=None)
            ref["model"] = dict(ref["model"], width=None)
            same["train"] = dict(same["train"], steps=None)
            ref["train"] = dict(ref["train"], steps=None)
            assert same == ref, name
        widths = {reference["model"]["width"], full_ref["model"]["width"]}
        steps = {reference["train"]["steps"], full_ref["train"]["steps"]}
        seeds = {len(reference["seeds"]), len(full_ref["seeds"])}
        assert factors == set(product(widths, steps, seeds)), experiment
        assert len(factors) == 8


def write_root(root: Path, rows: list[dict], commits=("abc123",)) -> None:
    """A results root of two rungs: claims.csv rows and each rung's run.json."""
    (root / "audit").mkdir(parents=True)
    verdicts.to_frame([verdicts.Row(**r) for r in rows]).to_csv(root / "audit" / "claims.csv", index=False)
    for i, variant in enumerate(("w40_steps6000_seeds3", "w100_steps6000_seeds3")):
        run = root / "runs" / "ladder_fit1d" / variant
        run.mkdir(parents=True)
        record = {
            "config": {"model": {"width": 40 if i == 0 else 100}, "train": {"steps": 6000}},
            "seeds": [0, 1, 2],
            "git_commit": commits[i % len(commits)],
            "git_dirty": False,
            "host": "elsewhere",
        }
        (run / "run.json").write_text(json.dumps(record))


def a1_rows(variant, p, effect):
    cell, run = f"cell {variant}: ", [f"results/small-ladder/runs/ladder_fit1d/{variant}"]
    rows = [
        dict(claim="A1", experiment="ladder_fit1d", metric=cell + "stall prominence", role="test", value=1.0,
             verdict="PASS" if p <= 0.05 else "FAIL", p_value=p, n=3),
        dict(claim="A1", experiment="ladder_fit1d", metric=cell + "effect size: stall ratio", role="test", value=effect,
             verdict="PASS" if effect >= 2 else "FAIL", n=3),
        dict(claim="A1", experiment="ladder_fit1d", metric=cell + "detected stairs", role="description", value=9.0,
             verdict="INFO", n=3),
    ]  # fmt: skip
    return [dict(row, runs=run) for row in rows]  # each cell's rows name its one run, as the audit's do


def test_the_table_takes_each_rungs_verdict_by_the_audits_rule(tmp_path):
    tool = load_tool()
    write_root(tmp_path, a1_rows("w40_steps6000_seeds3", 0.001, 3.5) + a1_rows("w100_steps6000_seeds3", 0.001, 1.5))
    table = tool.rung_table(tmp_path).set_index("rung")
    # the wide rung's p passes but its effect does not: the cell FAILs, as combine() decides
    assert table.loc["w40_steps6000_seeds3", "verdict"] == "PASS"
    assert table.loc["w100_steps6000_seeds3", "verdict"] == "FAIL"
    assert (
        table.loc["w100_steps6000_seeds3", "effect"] == 1.5 and table.loc["w100_steps6000_seeds3", "p_value"] == 0.001
    )
    assert list(table["width"]) == [40, 100] and (table["seeds"] == 3).all() and (table["n"] == 3).all()
    assert (table["commit"] == "abc123").all()


def run_tool(root: Path, out: Path) -> subprocess.CompletedProcess:
    args = ["--results", str(root), "--out", str(out / "t.csv"), "--out-calibration", str(out / "c.csv"), "--page", ""]
    return subprocess.run([sys.executable, str(TOOL), *args], capture_output=True, text=True)


def test_rungs_of_two_commits_or_a_missing_rung_are_refused_in_one_line(tmp_path):
    rows = a1_rows("w40_steps6000_seeds3", 0.001, 3.5) + a1_rows("w100_steps6000_seeds3", 0.001, 1.5)
    write_root(tmp_path / "two", rows, commits=("abc123", "def456"))
    res = run_tool(tmp_path / "two", tmp_path)
    assert res.returncode != 0 and "calibration/a1.csv is missing" in res.stderr  # checked before anything is read
    (tmp_path / "two" / "calibration").mkdir()
    (tmp_path / "two" / "calibration" / "a1.csv").write_text("family,null,schedule,unit,p_value,effect,cell_seed\n")
    res = run_tool(tmp_path / "two", tmp_path)
    assert res.returncode != 0 and "Traceback" not in res.stderr
    assert res.stderr.strip().splitlines() == [
        "scale_ladder: the rungs come from commits ['abc123', 'def456'] or a changed tree: re-run from one clean commit"
    ]
    assert not (tmp_path / "t.csv").exists()
    write_root(tmp_path / "missing", rows + a1_rows("w40_steps30000_seeds3", 0.5, 1.0))
    with pytest.raises(SystemExit, match="w40_steps30000_seeds3/run.json is missing"):
        load_tool().rung_table(tmp_path / "missing")
    pooled = [dict(row, runs=[]) for row in a1_rows("w40_steps6000_seeds3", 0.001, 3.5)]
    write_root(tmp_path / "pooled", pooled)
    with pytest.raises(SystemExit, match="rows that judge no single run"):
        load_tool().rung_table(tmp_path / "pooled")


def test_calibration_by_schedule_decides_as_the_audit_does(tmp_path):
    tool = load_tool()
    (tmp_path / "calibration").mkdir()
    a1 = pd.DataFrame(
        {
            "family": ["one phase"] * 4 + ["bursts"] * 2,
            "null": [True] * 4 + [False] * 2,
            "schedule": ["30000:10/1000/50", "30000:10/1000/50", "6000:10/1000/50", "6000:10/1000/50"] * 1
            + ["30000:10/1000/50"] * 2,
            "unit": [0, 1, 2, 3, 0, 1],
            "p_value": [0.01, 0.5, 0.01, 0.01, 0.01, 0.01],
            "effect": [3.0, 3.0, 1.0, 3.0, 3.0, 3.0],  # a small p with too small an effect is no pass
            "cell_seed": [0] * 6,
        }
    )
    table = tool.calibration_table_from(a1, {"audit": {"alpha": 0.05, "a1_min_stall_ratio": 2.0}})
    rates = table.set_index(["schedule", "family"])["rate"]
    assert rates[("30000:10/1000/50", "one phase")] == 0.5
    assert rates[("6000:10/1000/50", "one phase")] == 0.5
    assert rates[("30000:10/1000/50", "bursts")] == 1.0
    assert rates[("30000:10/1000/50", "all null families")] == 0.5
    assert table.set_index(["schedule", "family"])["draws"][("30000:10/1000/50", "all power families")] == 2
    assert set(table["measures"]) == {"false-positive rate", "power"}


def test_the_committed_ladder_is_one_clean_run_of_every_rung_and_claim(study):
    if not TABLE.exists():
        pytest.fail("docs/results/scale_ladder.csv is not committed (python docs/tools/scale_ladder.py)")
    table = pd.read_csv(TABLE)
    expected = {
        (experiment.removeprefix("ladder_"), rung, claim)
        for experiment in PROBLEMS
        for rung in cfgmod.variants(study, experiment)
        for claim in ("A1", "A2", "A3")
    }
    assert set(zip(table["experiment"], table["rung"], table["claim"])) == expected
    assert len(table) == len(expected)
    assert set(table["verdict"]) <= {"PASS", "FAIL", "INCONCLUSIVE"}
    assert table["commit"].nunique() == 1 and table["machine"].nunique() == 1
    assert (table["n"] <= table["seeds"]).all()
    a1 = table[table["claim"] == "A1"]
    assert np.all((a1["p_value"] > 0) & (a1["p_value"] <= 1))
    page = (REPO / "docs" / "scale-ladder.md").read_text()
    assert load_tool().markdown(table) in page, (
        "docs/scale-ladder.md's table is not docs/tools/scale_ladder.py's output"
    )
    calibration = pd.read_csv(CALIBRATION)
    assert {"30000:10/1000/50", "20000:10/1000/50"} <= set(calibration["schedule"])
    assert calibration["rate"].between(0, 1).all()


@pytest.mark.parametrize(
    ("experiment", "cell", "rung"),
    [("fit1d", "", "w40_steps6000_seeds3"), ("poisson1d", "cell activation-tanh: ", "w40_steps3000_seeds3")],
)
def test_the_default_rung_is_the_reference_runs_experiment(experiment, cell, rung):
    """The rung at the default scale's width, steps and seeds is config.yaml's experiment itself, so
    its verdicts and p-values are the committed reference audit's (docs/results/claims.csv); when
    they differ, one of the two tables is stale (re-run the ladder with the reference's commit)."""
    ladder = pd.read_csv(TABLE)
    reference = pd.read_csv(REPO / "docs" / "results" / "claims.csv")
    for claim in ("A1", "A2", "A3"):
        rows = reference[(reference["experiment"] == experiment) & (reference["claim"] == claim)]
        rows = rows[rows["metric"].str.startswith(cell)] if cell else rows[~rows["metric"].str.startswith("cell ")]
        got = ladder[(ladder["experiment"] == experiment) & (ladder["rung"] == rung) & (ladder["claim"] == claim)]
        assert len(got) == 1 and len(rows) > 0
        assert got["verdict"].iloc[0] == verdicts.combine(rows["verdict"], rows["role"]), claim
        p = rows.loc[rows["role"] == "test", "p_value"].dropna()
        if len(p):
            assert got["p_value"].iloc[0] == pytest.approx(p.iloc[0], rel=1e-9), claim
