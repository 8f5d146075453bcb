"""The rank-points check (staircase.benchmarks.quadcheck): agreement of candidate rules with a reference, and
the check on a tiny experiment followed through training."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from staircase.benchmarks import quadcheck
from staircase.workflow import config as cfgmod

REPO = Path(__file__).resolve().parents[1]


def test_agreement_finds_the_smallest_rule_that_agrees_with_every_larger_one():
    ref = np.full((4, 2, 3, 2), 5)  # (checkpoints, layers, models, eps)
    coarse, middle, fine, finest = ref - 1, ref.copy(), ref.copy(), ref.copy()
    middle[2, 1, 0, 1] += 1  # one cell off at the second eps
    ranks = {"ref": ref, "a": coarse, "b": middle, "c": fine, "d": finest}
    table, summary = quadcheck.agreement(ranks, "ref", [1e-2, 1e-3], {"a": 11, "b": 21, "c": 41, "d": 81})
    assert list(table["differ"]) == [48, 1, 0, 0] and list(table["max_abs_diff"]) == [1, 1, 0, 0]
    assert list(table["differ_eps_0.01"]) == [24, 0, 0, 0]
    assert summary["smallest_n_all_eps"] == 41 and summary["smallest_n_per_eps"] == {"0.01": 21, "0.001": 41}
    ambiguous = np.zeros(ref.shape, dtype=bool)
    ambiguous[2, 1, 0, 1] = True  # an eigenvalue at eps there: b's difference does not count against it
    table, summary = quadcheck.agreement(ranks, "ref", [1e-2, 1e-3], {"a": 11, "b": 21, "c": 41, "d": 81}, ambiguous)
    assert list(table["differ_clear"]) == [47, 0, 0, 0] and summary["smallest_n_clear"] == 21
    fine[0, 0, 0, 0] = 0  # a larger rule that disagrees again: the smallest agreeing one is above it
    _, summary = quadcheck.agreement(ranks, "ref", [1e-2, 1e-3], {"a": 11, "b": 21, "c": 41, "d": 81})
    assert summary["smallest_n_all_eps"] == 81


def test_near_eps_and_eigenvalue_error():
    spectra = [[np.array([[1.0, 1.0005e-2, 1e-5]])]]  # one checkpoint, one layer, one model
    assert quadcheck.near_eps(spectra, [1e-2, 1e-3], 1e-3).tolist() == [[[[True, False]]]]
    other = [[np.array([[1.01, 1.0e-2, 1e-5]])]]
    errors = quadcheck.eigenvalue_error({"ref": spectra, "x": other}, "ref", 1e-4)
    assert errors["ref"] == 0 and abs(errors["x"] - 0.01) < 1e-12


def test_check_on_a_tiny_experiment(capsys):
    config = yaml.safe_load((REPO / ".test/config/config.yaml").read_text())
    cfg = cfgmod.variants(config, "fit1d")["base"]
    table, summary = quadcheck.check_experiment(cfg, candidates=[11, 101], max_checkpoints=4)
    assert summary["checkpoints"] == 4 and summary["reference_points"] == 3000 and summary["layers"] == 2
    assert list(table["points"]) == [11, 101] and table["cells"].eq(4 * 2 * 2 * 2).all()
    assert summary["pipeline_rank_points"] == 101 and summary["pipeline_agrees"] is not None
    assert table.loc[table["n"] == 101, "differ"].item() <= table.loc[table["n"] == 11, "differ"].item()
    assert "smallest n agreeing at every eps" in capsys.readouterr().out
