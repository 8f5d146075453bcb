"""Reading run directories and the per-seed / per-variant summaries the analysis shows."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from helpers import mark_diverged

from staircase.claims import synthetic
from staircase.records import runs
from staircase.training import trainer as train
from staircase.workflow import config as cfgmod

TINY = Path(__file__).resolve().parents[1] / ".test" / "config" / "config.yaml"


def tiny_cfg(steps):
    cfg = cfgmod.variants(yaml.safe_load(TINY.read_text()), "fit1d")["base"]
    cfg["train"]["steps"] = steps
    return cfg


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "fit1d" / "base"
    train.run(tiny_cfg(steps=60), out, progress=False)
    return out


def diverge(src, dst, seed, step):
    """A copy of a run in which ``seed`` diverged at ``step`` (helpers.mark_diverged)."""
    shutil.copytree(src, dst)
    return mark_diverged(dst, seed, step)


def test_load_run_and_seed_summary(tiny_run):
    run = runs.load_run(tiny_run)
    assert (run.experiment, run.variant, run.seeds, run.depth) == ("fit1d", "base", [0, 1], 2)
    assert run.diverged == {} and run.status_note() == ""
    table = runs.seed_summary(run)
    assert list(table["seed"]) == [0, 1] and (table["status"] == "ok").all()
    m = run.metrics
    last = m[m["step"] == 60].set_index("seed")
    np.testing.assert_allclose(table.set_index("seed")["final_loss"], last["loss"])
    # final rank of the last layer is the metrics table's eps_rank column
    np.testing.assert_array_equal(table.set_index("seed")["final_rank_l1"], last["eps_rank"])
    assert (table["bound_violations"] == 0).all()
    assert (table["bound_checks"] == m.groupby("seed").size().to_numpy()).all()
    assert {"n_stairs", "spearman", "monotonicity", "layer_order_strict", "layer_order_ties"} <= set(table.columns)


def test_layer_order_shares_strict_ties_reversals_and_full_rank_apart(tmp_path):
    # three layers of width 4, two checkpoints; seed 0: ordered, with a tie and a pair at full rank;
    # seed 1: reversed
    layers = {0: np.array([[1, 2], [2, 2], [4, 4]]), 1: np.array([[3, 2], [2, 1], [1, 1]])}
    steps = np.array([0, 10])
    path = synthetic.write_run(tmp_path / "r", steps, {s: v[-1] for s, v in layers.items()}, layer_ranks=layers)
    run = runs.load_run(path)
    shares = runs.layer_order_shares(run).set_index(["seed", "pair"])
    assert shares.loc[(0, "0->1"), ["strict", "ties", "reversals"]].tolist() == [0.5, 0.5, 0.0]
    assert shares.loc[(0, "1->2"), ["strict", "ties", "reversals"]].tolist() == [1.0, 0.0, 0.0]
    assert shares.loc[(1, "0->1"), "reversals"] == 1.0
    order = runs.layer_order(run)
    assert order.loc[0, "strict"] == 0.75 and order.loc[1, "reversals"] == 0.75
    # both layers at full rank (4 of 4 neurons) at the second checkpoint: left out, counted apart
    full = {0: np.array([[2, 4], [3, 4]])}
    run = runs.load_run(synthetic.write_run(tmp_path / "f", steps, {0: full[0][-1]}, layer_ranks=full, width=4))
    shares = runs.layer_order_shares(run).iloc[0]
    assert (shares["strict"], shares["saturated"], shares["checkpoints"]) == (1.0, 0.5, 1)
    with pytest.raises(ValueError, match="no eps-rank at eps"):
        runs.layer_ranks(run.ranks, 0.5)


def test_spread_drops_diverged_seeds_from_the_median():
    m = pd.DataFrame(
        {"seed": [0, 0, 1, 1, 2, 2], "step": [0, 10] * 3, "loss": [1.0, 0.5, 3.0, np.nan, 2.0, 0.1]},
    )
    s = runs.spread(m, "loss").set_index("step")
    assert s.loc[0].tolist() == [2.0, 1.0, 3.0, 3]
    assert s.loc[10].tolist() == [0.3, 0.1, 0.5, 2]


def test_diverged_seed_is_flagged_not_dropped(tiny_run, tmp_path):
    run = runs.load_run(diverge(tiny_run, tmp_path / "fit1d" / "base", seed=1, step=30))
    assert run.diverged == {1: 30} and run.status_note() == "seed 1 diverged at step 30"
    table = runs.seed_summary(run).set_index("seed")
    assert table.loc[1, "status"] == "diverged at step 30" and table.loc[1, "last_step"] == 20
    assert bool(table.loc[1, "truncated"]) and not bool(table.loc[0, "truncated"])
    row = runs.run_summary(run)
    assert (row["seeds"], row["seeds_ok"], row["status"]) == (2, 1, "seed 1 diverged at step 30")
    # medians over the seed that did not diverge, bound checks over both
    assert row["final_loss"] == pytest.approx(table.loc[0, "final_loss"])
    assert row["bound_checks"] == int(table["bound_checks"].sum())


@pytest.mark.parametrize("name", ["metrics.parquet", "ranks.parquet", "spectra.npz", "run.json"])
def test_a_truncated_result_file_is_named_with_its_remedy(tiny_run, tmp_path, name):
    damaged = tmp_path / "fit1d" / "base"
    shutil.copytree(tiny_run, damaged)
    data = (damaged / name).read_bytes()
    (damaged / name).write_bytes(data[: len(data) // 2])  # a copy or a disk cut short
    with pytest.raises(runs.UnreadableResult) as err:
        run = runs.load_run(damaged)
        run.ranks, run.spectra  # noqa: B018  (read lazily)
    message = str(err.value)  # the manifest says so before any reader parses the file
    assert message == (
        f"{damaged / name}: does not match its manifest.json (damaged, or swapped in from another run); delete "
        "the run's folder and run snakemake again, which re-runs the job that writes it"
    )
    (damaged / name).unlink()
    with pytest.raises(runs.UnreadableResult, match="missing, though the manifest names it"):
        run = runs.load_run(damaged)
        run.ranks, run.spectra  # noqa: B018
