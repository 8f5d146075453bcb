"""staircase compare: two or more results side by side (differing settings, verdicts, statistics, an overlay)."""

from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import yaml

from staircase.claims import audit, synthetic
from staircase.core.schedule import log_schedule

STEPS = log_schedule(3000, 10, 1000, 50)
REGULAR = -np.arange(40) * 0.5 - 1.0


def results(root, shift, claims=("A1", "A5"), lr=1.0e-3):
    spectra, ranks, layers = {}, {}, {}
    for seed in (0, 1, 2):
        sp = synthetic.moving_spectra(shift, REGULAR, 0.05, 0.02, 0.5, np.random.default_rng(seed))
        ranks[seed] = (sp > 1e-3).sum(axis=1).astype(float)
        spectra[seed], layers[seed] = sp, np.stack([ranks[seed] - 1, ranks[seed]])
    synthetic.write_run(
        root / "runs/fit1d/base",
        STEPS,
        ranks,
        spectra=spectra,
        layer_ranks=layers,
        experiment="fit1d",
        width=60,
        config={"train": {"optimizer": "adam", "lr": lr}},  # the resolved settings compare shows
    )
    config = {"scale": "small", "experiments": {"fit1d": {"claims": list(claims), "seeds": [0, 1, 2]}}}
    config["experiments"]["fit1d"].update(
        yaml.safe_load(
            "{task: {name: multifreq1d, frequencies: [1.0], amplitudes: [1.0], train_points: 8, rank_points: 9},"
            " model: {activation: tanh, width: 4, depth: 2}, train: {optimizer: adam, lr: 1.0e-3, steps: 10},"
            " rank: {eps: [1.0e-3], main_eps: 1.0e-3, normalisation: integral},"
            " log: {dense_every: 1, dense_until: 10, sparse_every: 1}}"
        )
    )
    audit.run_audit(config, root, root / "audit")
    return root


def test_compare_names_the_verdicts_that_differ_and_overlays_the_curves(tmp_path):
    a = results(tmp_path / "a", synthetic.bursts(STEPS, [0.15, 0.45, 0.75], [2.5, 2.5, 2.5]))
    b = results(tmp_path / "b", 7.5 * STEPS / STEPS[-1])
    out = subprocess.run(
        [sys.executable, "-m", "staircase", "compare", a, b, "--out", tmp_path / "cmp", "--labels", "small", "full"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert "1 of 2 verdicts differ" in out.stdout and "A1 fit1d: small PASS | full FAIL" in out.stdout
    verdicts = pd.read_csv(tmp_path / "cmp/verdicts.csv")
    assert verdicts["differs"].sum() == 1 and {"verdict_small", "verdict_full"} <= set(verdicts.columns)
    stats = pd.read_csv(tmp_path / "cmp/statistics.csv")
    assert {"value_small", "value_full", "change_full"} <= set(stats.columns)
    assert (tmp_path / "cmp/overlay.png").stat().st_size > 0
    # the same results: nothing differs
    same = subprocess.run(
        [sys.executable, "-m", "staircase", "compare", a, a / "audit/claims.csv", "--out", tmp_path / "same"],
        capture_output=True,
        text=True,
    )
    assert same.returncode == 0 and "0 of 2 verdicts differ" in same.stdout
    assert "settings: the same" in same.stdout


def test_compare_without_an_audit_says_so_in_one_line(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "staircase", "compare", tmp_path / "none", tmp_path / "other"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "no audit there" in out.stderr


def test_a_damaged_claims_file_is_named_in_one_line(tmp_path):
    (tmp_path / "a/audit").mkdir(parents=True)
    (tmp_path / "a/audit/claims.csv").write_bytes(b"\x00\x01 not a table \xff")
    out = subprocess.run(
        [sys.executable, "-m", "staircase", "compare", tmp_path / "a", tmp_path / "a"], capture_output=True, text=True
    )
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "claims.csv: cannot be read" in out.stderr


def compare_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "staircase", "compare", *map(str, args)], capture_output=True, text=True
    )


def test_three_roots_with_labels_holding_dashes_and_their_config_differences(tmp_path):
    """The issue's crash: labels such as lr5e-3 are not Python names (an AttributeError after
    writing partial output); three roots; the settings that differ shown beside the verdicts."""
    stalls = synthetic.bursts(STEPS, [0.15, 0.45, 0.75], [2.5, 2.5, 2.5])
    roots = [results(tmp_path / "a", stalls, lr=5.0e-3), results(tmp_path / "b", 7.5 * STEPS / STEPS[-1], lr=2.0e-2)]
    roots.append(shutil.copytree(roots[0], tmp_path / "c"))  # the first results again: one audit fewer to run
    out = compare_cli(*roots, "--out", tmp_path / "cmp", "--labels", "lr5e-3", "lr2e-2", "lr5e-3-again")
    assert out.returncode == 0, out.stderr
    assert "fit1d/base train.lr: lr5e-3 0.005 | lr2e-2 0.02 | lr5e-3-again 0.005" in out.stdout
    assert "A1 fit1d: lr5e-3 PASS | lr2e-2 FAIL | lr5e-3-again PASS" in out.stdout
    assert out.stdout.index("setting(s) differ") < out.stdout.index("verdicts differ")
    configs = pd.read_csv(tmp_path / "cmp/configs.csv")
    assert list(configs["setting"]) == ["train.lr"] and list(configs.columns[-3:]) == [
        "lr5e-3",
        "lr2e-2",
        "lr5e-3-again",
    ]
    stats = pd.read_csv(tmp_path / "cmp/statistics.csv")
    assert {"change_lr2e-2", "change_lr5e-3-again"} <= set(stats.columns)
    assert (tmp_path / "cmp/overlay.png").stat().st_size > 0


def test_labels_that_cannot_name_the_sides_are_refused_in_one_line_before_any_output(tmp_path):
    a = results(tmp_path / "a", 7.5 * STEPS / STEPS[-1])
    for labels, message in (
        (["x", "x"], "'x' given more than once"),
        (["x"], "1 label(s) for 2 results"),
        (["x", " "], "a label is empty"),
    ):
        out = compare_cli(a, a, "--out", tmp_path / "none", "--labels", *labels)
        assert out.returncode == 2 and out.stderr.count("\n") == 1 and message in out.stderr, out.stderr
    one = compare_cli(a, "--out", tmp_path / "none")
    assert one.returncode == 2 and "compare needs two or more" in one.stderr
    assert not (tmp_path / "none").exists()
