"""Audit input integrity (issue 23 item 8) and the audit on odd but valid runs (item 9's audit
side): copies of a run and a seed listed twice are refused in one line naming them; a config whose
experiments did not run says which did and judges what ran; no finite run crashes the audit."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from staircase.claims import audit, synthetic
from staircase.errors import UnreadableResult
from staircase.records import manifest
from staircase.workflow.config import ConfigError

STEPS = np.arange(0, 2000, 20)


def config(*experiments, claims=("A1", "A2"), variants=("base",)):
    exp = {"claims": list(claims), "seeds": [0, 1], "variants": {v: {} for v in variants}}
    return {"analysis": {"null_samples": 30}, "audit": {"min_seeds": 1}, "experiments": {e: exp for e in experiments}}


def write(results: Path, experiment="fit1d", variant="base", seeds=(0, 1), shift=0.0):
    """A run of two seeds, each with its own noisy staircase and loss."""
    ranks, loss = {}, {}
    for seed in seeds:
        rng = np.random.default_rng(100 * seed + int(shift * 10))
        ranks[seed] = 3 + np.floor(np.linspace(0, 6, len(STEPS)) + rng.uniform(0, 1)).astype(float)
        loss[seed] = np.exp(-3 * STEPS / STEPS[-1] - 0.1 * ranks[seed] + rng.normal(0, 0.01, len(STEPS)) + shift)
    return synthetic.write_run(
        results / "runs" / experiment / variant, STEPS, ranks, loss, experiment=experiment, variant=variant
    )


def renamed(folder: Path, variant: str) -> Path:
    """A copy of a run renamed as another variant, run.json and manifest rewritten to match (or the
    same seeds trained twice under two names: training is deterministic): the manifest cannot tell."""
    info = json.loads((folder / "run.json").read_text())
    info["config"]["variant"] = variant
    (folder / "run.json").write_text(json.dumps(info))
    manifest.seal(folder)
    return folder


def test_a_run_copied_under_another_variant_name_is_refused_naming_both(tmp_path):
    first = write(tmp_path, variant="a")
    renamed(shutil.copytree(first, tmp_path / "runs/fit1d/b"), "b")
    with pytest.raises(ConfigError) as err:
        audit.evaluate(config("fit1d", variants=("a", "b")), tmp_path)
    message = str(err.value)
    assert "\n" not in message and "runs/fit1d/a/seed0" in message and "runs/fit1d/b/seed0" in message
    assert "identical" in message


def test_distinct_runs_pass_the_check(tmp_path):
    write(tmp_path, variant="a")
    write(tmp_path, variant="b", shift=0.5)
    frame = audit.evaluate(config("fit1d", variants=("a", "b")), tmp_path)
    assert set(frame["claim"]) == {"A1", "A2"}


def test_a_seed_listed_twice_is_refused(tmp_path):
    run = write(tmp_path)
    info = json.loads((run / "run.json").read_text())
    info["seeds"] = [0, 0, 1]
    (run / "run.json").write_text(json.dumps(info))
    manifest.seal(run)
    # the results reader refuses it first (one status per seed), else integrity.check would
    with pytest.raises((ConfigError, UnreadableResult), match=r"run.json.*(seed|status)") as err:
        audit.evaluate(config("fit1d"), tmp_path)
    assert "\n" not in str(err.value)


def test_a_seed_measured_twice_at_one_step_is_refused(tmp_path):
    run = write(tmp_path)
    m = pd.read_parquet(run / "metrics.parquet")
    pd.concat([m, m[m["seed"] == 1].head(1)]).to_parquet(run / "metrics.parquet", index=False)
    manifest.seal(run)
    with pytest.raises(ConfigError, match=r"seed 1 measured twice at one step in metrics.parquet"):
        audit.evaluate(config("fit1d"), tmp_path)


def test_copies_given_by_hand_are_refused_too(tmp_path):
    first = write(tmp_path, variant="a")
    second = renamed(shutil.copytree(first, tmp_path / "elsewhere"), "b")
    with pytest.raises(ConfigError, match="identical series"):
        audit.evaluate_runs([first, second])


def test_a_config_whose_experiments_did_not_run_says_so_and_judges_what_ran(tmp_path):
    write(tmp_path, experiment="other")
    cfg = config("fit1d", "poisson1d")
    frame = audit.evaluate(cfg, tmp_path)
    missing = frame[frame["experiment"].isin(["fit1d", "poisson1d"])]
    assert (missing["verdict"] == "INCONCLUSIVE").all() and (missing["detail"] == "no results found").all()
    judged = frame[frame["experiment"] == "other"]
    assert {"A1", "A2"} <= set(judged["claim"]) and (judged["role"] == "test").any()
    line = audit.coverage_line(cfg, tmp_path)
    assert "none for fit1d, poisson1d" in line and "judging what ran instead" in line and "other" in line


def test_a_config_partly_run_names_the_missing_experiments(tmp_path):
    write(tmp_path, experiment="fit1d")
    cfg = config("fit1d", "poisson1d")
    frame = audit.evaluate(cfg, tmp_path)
    assert set(frame["experiment"]) == {"fit1d", "poisson1d"}
    assert audit.coverage_line(cfg, tmp_path) == "audit: results for fit1d; none for poisson1d"
    write(tmp_path, experiment="poisson1d", shift=1.0)
    assert audit.coverage_line(cfg, tmp_path) == ""


def test_the_command_line_names_what_did_not_run(tmp_path):
    write(tmp_path, experiment="other")
    (tmp_path / "config.yaml").write_text(json.dumps(config("fit1d") | {"scale": "small"}))
    res = subprocess.run(
        [sys.executable, "-m", "staircase", "audit", "--config-json", json.dumps(config("fit1d")), "--results",
         str(tmp_path), "--out", str(tmp_path / "audit")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "audit: results for none of its experiments; none for fit1d; judging what ran instead" in res.stdout


# ---- odd but valid runs: the audit never crashes on finite values ------------------------------
def _odd_series(kind: str, n: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """(eps-rank, loss) of an odd but valid run: flat, falling, one jump, saw-tooth, huge or tiny
    loss, a rank at 0, a loss that never moves."""
    t = np.linspace(0, 1, n)
    ranks = {
        "flat": np.full(n, 4.0),
        "falling": np.round(10 - 8 * t),
        "one_jump": np.where(t < 0.5, 2.0, 9.0),
        "sawtooth": 3 + (np.arange(n) % 3),
        "zero": np.zeros(n),
        "huge_loss": np.round(2 + 6 * t),
        "constant_loss": np.round(2 + 6 * t),
        "noise": np.round(5 + 2 * rng.normal(size=n)).clip(0),
    }[kind]
    loss = {"huge_loss": 1e30 * np.exp(-t), "constant_loss": np.full(n, 0.5)}.get(kind, np.exp(-5 * t))
    return ranks.astype(float), loss * np.exp(rng.normal(0, 1e-3, n))


@pytest.mark.parametrize("n", [3, 4, 40])
def test_the_audit_never_crashes_on_odd_but_valid_runs(tmp_path, n):
    rng = np.random.default_rng(n)
    steps = np.arange(n) * 10
    kinds = ["flat", "falling", "one_jump", "sawtooth", "zero", "huge_loss", "constant_loss", "noise"]
    paths = []
    for kind in kinds:
        series = {s: _odd_series(kind, n, rng) for s in (0, 1)}
        paths.append(
            synthetic.write_run(
                tmp_path / kind, steps, {s: r for s, (r, _) in series.items()},
                {s: lo for s, (_, lo) in series.items()}, experiment=kind, variant="base",
                layer_ranks={s: np.stack([r, r]) for s, (r, _) in series.items()},
            )
        )  # fmt: skip
    frame = audit.evaluate_runs(paths, {"analysis": {"null_samples": 20}})
    assert set(frame["experiment"]) == set(kinds)
    assert frame["verdict"].isin(["PASS", "FAIL", "INCONCLUSIVE", "INFO"]).all()
