"""Budgets by progress (staircase.training.budget): the schedule, the stop rule in the trainer, the
config checks, and the audit's "not trained" cells (staircase.claims.progress)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from staircase.claims import audit, progress
from staircase.claims.judges import cells as cells_judge
from staircase.core.schedule import log_schedule
from staircase.errors import ConfigError
from staircase.records.runs import load_run
from staircase.training import budget
from staircase.training import trainer as train
from staircase.workflow import config as cfgmod

REPO = Path(__file__).resolve().parents[1]
LOG = {"dense_every": 10, "dense_until": 100, "sparse_every": 50}


def tiny_cfg(**train_overrides):
    config = yaml.safe_load((REPO / ".test/config/config.yaml").read_text())
    cfg = cfgmod.variants(config, "fit1d")["base"]
    cfg["train"].update(train_overrides)
    return cfg


def test_schedule_without_a_factor_is_the_log_schedule():
    got = budget.measure_steps({"steps": 1000}, LOG)
    assert list(got) == list(log_schedule(1000, 10, 100, 50))


def test_schedule_beyond_steps_is_log_spaced_to_the_cap():
    train_cfg = {"steps": 1000, "until_loss_factor": 10.0, "max_steps": 100_000}
    got = budget.measure_steps(train_cfg, {**LOG, "per_decade": 10})
    assert list(got[got <= 1000]) == list(log_schedule(1000, 10, 100, 50))
    later = got[got > 1000]
    assert later[-1] == 100_000 and len(later) == 20  # two decades, ten a decade
    ratios = later[1:] / later[:-1]
    assert np.allclose(ratios, 10**0.1, rtol=1e-2)


def test_reached_needs_every_live_seed():
    start, ok = np.array([1.0, 1.0, 1.0]), np.array([True, True, False])
    assert budget.reached(start, np.array([0.1, 0.05, 5.0]), ok, 10.0)  # the diverged seed does not count
    assert not budget.reached(start, np.array([0.1, 0.2, 0.0]), ok, 10.0)
    assert not budget.reached(start, start, np.zeros(3, bool), 10.0)  # no live seed: nothing trained


def metrics(final_losses):
    rows = [dict(seed=s, step=t, loss=loss) for s, f in enumerate(final_losses) for t, loss in ((0, 1.0), (10, f))]
    return pd.DataFrame(rows)


def test_untrained_seeds_must_pass_and_must_fail():
    train_cfg = {"steps": 10, "until_loss_factor": 10.0, "max_steps": 10}
    assert budget.untrained_seeds(metrics([0.1, 0.01]), train_cfg) == []
    assert budget.untrained_seeds(metrics([0.1, 0.5]), train_cfg) == [1]
    assert budget.untrained_seeds(metrics([np.nan, 0.5]), train_cfg) == [1]  # diverged: the health check's
    assert budget.untrained_seeds(metrics([0.5, 0.5]), {"steps": 10}) == []  # no factor: a fixed budget


def test_trainer_stops_once_the_loss_fell_by_the_factor(tmp_path):
    cfg = tiny_cfg(steps=40, until_loss_factor=2.0, max_steps=5000)
    train.run(cfg, tmp_path, progress=False)
    m = pd.read_parquet(tmp_path / "metrics.parquet")
    last = m["step"].max()
    assert 40 <= last < 5000
    first, final = (m[m["step"] == s].sort_values("seed")["loss"].to_numpy() for s in (0, last))
    assert (final <= first / 2.0).all()
    # the measurement before the last had not yet reached it for some seed (else it had stopped there)
    before = m[m["step"] == m.loc[m["step"] < last, "step"].max()].sort_values("seed")["loss"].to_numpy()
    assert last == 40 or not (before <= first / 2.0).all()
    assert budget.untrained_seeds(m, cfg["train"]) == []


def test_a_factor_out_of_reach_trains_to_the_cap_and_is_not_trained(tmp_path):
    cfg = tiny_cfg(steps=40, until_loss_factor=1.0e9, max_steps=120)
    train.run(cfg, tmp_path, progress=False)
    run = load_run(tmp_path)
    assert run.metrics["step"].max() == 120
    assert progress.untrained(run) == list(cfg["seeds"])
    row = progress.judge_trained_only(dict(status="ok", a1_pass=True), run)
    assert row["trained"] is False and row["a1_pass"] is None and row["status"].startswith(progress.NOT_TRAINED)


def config_with(**train):
    config = yaml.safe_load((REPO / ".test/config/config.yaml").read_text())
    config["experiments"]["fit1d"]["train"].update(train)
    return config


def test_cap_below_steps_is_one_clear_config_error():
    with pytest.raises(ConfigError, match=r"fit1d.*train\.max_steps: 100 is below train\.steps 150"):
        cfgmod.validate(config_with(until_loss_factor=10.0, max_steps=100))


def test_factor_without_a_cap_is_refused():
    with pytest.raises(ConfigError, match="max_steps"):
        cfgmod.validate(config_with(until_loss_factor=10.0))


def test_the_map_leaves_a_cell_not_trained_out_of_its_count(tmp_path):
    config = yaml.safe_load((REPO / ".test/config/config.yaml").read_text())
    cells = cfgmod.variants(config, "regime1d")
    base = cells["adam_init_gain-1.0"]
    trained = dict(base, train=dict(base["train"], until_loss_factor=1.5, max_steps=2000))
    hopeless = dict(base, variant="hopeless", train=dict(base["train"], until_loss_factor=1.0e9, max_steps=80))
    runs = []
    for cfg in (trained, hopeless):
        train.run(cfg, tmp_path / cfg["variant"], progress=False)
        runs.append(load_run(tmp_path / cfg["variant"]))
    table = audit.regime_table(runs, dict(null_samples=20))
    by = table.set_index("variant")
    assert bool(by.loc["adam_init_gain-1.0", "trained"]) and not bool(by.loc["hopeless", "trained"])
    assert pd.isna(by.loc["hopeless", "a1_pass"]) and by.loc["hopeless", "status"].startswith(progress.NOT_TRAINED)
    passing, n, _ = cells_judge.count_passing(table, 0.05)
    assert n == int(by["a1_pass"].notna().sum()) and n <= 1  # the hopeless cell is not in the denominator
    assert "not trained (left out): hopeless" in cells_judge.cells_detail(table)
