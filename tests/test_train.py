"""The training job: its outputs, determinism on CPU, resume after SIGKILL, divergence."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from staircase.core.schedule import log_schedule
from staircase.training import trainer as train
from staircase.training.clocks import MeasureClock
from staircase.training.recorder import TIMING_COLUMNS
from staircase.workflow import config as cfgmod

REPO = Path(__file__).resolve().parents[1]


def tiny_cfg(**train_overrides):
    config = yaml.safe_load((REPO / ".test/config/config.yaml").read_text())
    cfg = cfgmod.variants(config, "fit1d")["base"]
    cfg["train"].update(train_overrides)
    return cfg


def test_log_schedule_dense_then_sparse():
    steps = log_schedule(1000, dense_every=10, dense_until=100, sparse_every=200)
    assert steps[0] == 0 and steps[-1] == 1000
    assert list(steps[:11]) == list(range(0, 101, 10))
    assert list(steps[11:]) == [200, 400, 600, 800, 1000]


def test_outputs_and_columns(tmp_path):
    cfg = tiny_cfg(steps=40)
    train.run(cfg, tmp_path, progress=False)
    m = pd.read_parquet(tmp_path / "metrics.parquet")
    assert {"seed", "step", "loss", "rel_l2", "eps_rank", "lower_bound", "best_loss", "best_loss_top_r"} <= set(
        m.columns
    )
    assert len(m) == 2 * len(log_schedule(40, 10, 50, 25))
    assert (m["lower_bound"] <= m["loss"] * (1 + 1e-9)).all()
    assert (m["best_loss"] <= m["loss"] * (1 + 1e-9)).all()
    ranks = pd.read_parquet(tmp_path / "ranks.parquet")
    assert set(ranks["layer"]) == {0, 1}
    assert set(ranks["metric"]) == {"eps_rank", "effective_rank", "stable_rank", "numerical_rank"}
    # the main-eps rank column agrees with the long table
    last = ranks[(ranks.layer == 1) & (ranks.metric == "eps_rank") & (ranks.eps == 1e-3)]
    merged = m.merge(last, on=["seed", "step"])
    assert (merged["eps_rank"] == merged["value"]).all()
    spectra = np.load(tmp_path / "spectra.npz")
    assert spectra["layer1"].shape == (2, len(spectra["steps"]), 12)
    assert np.all(np.diff(spectra["layer1"], axis=-1) <= 1e-12)  # sorted decreasing
    run = json.loads((tmp_path / "run.json").read_text())
    for key in (
        "config",
        "seeds",
        "git_commit",
        "git_dirty",
        "torch_version",
        "numpy_version",
        "device",
        "wall_time_s",
        "host",
    ):
        assert key in run
    assert run["status"] == {"0": "ok", "1": "ok"}
    # the tracking overhead, by part: one entry per measurement, CPU seconds that add up
    assert run["measurements"] == len(spectra["steps"])
    assert set(run["measure_cpu_s"]) == set(MeasureClock.PARTS)
    assert all(v >= 0 for v in run["measure_cpu_s"].values())
    assert 0 < sum(run["measure_cpu_s"].values()) < run["wall_time_s"] + 1.0


def _metrics_without_timing(path):
    return pd.read_parquet(path).drop(columns=list(TIMING_COLUMNS))


def test_deterministic_on_cpu(tmp_path):
    cfg = tiny_cfg(steps=60)
    train.run(cfg, tmp_path / "a", progress=False)
    train.run(cfg, tmp_path / "b", progress=False)
    pd.testing.assert_frame_equal(
        _metrics_without_timing(tmp_path / "a/metrics.parquet"), _metrics_without_timing(tmp_path / "b/metrics.parquet")
    )
    assert pd.read_parquet(tmp_path / "a/ranks.parquet").equals(pd.read_parquet(tmp_path / "b/ranks.parquet"))


def test_seed_result_does_not_depend_on_its_companions(tmp_path):
    cfg = tiny_cfg(steps=30)
    train.run(cfg, tmp_path / "both", progress=False)
    alone = dict(cfg, seeds=[1])
    train.run(alone, tmp_path / "alone", progress=False)
    both = pd.read_parquet(tmp_path / "both/metrics.parquet").query("seed == 1").reset_index(drop=True)
    one = pd.read_parquet(tmp_path / "alone/metrics.parquet")
    np.testing.assert_allclose(both["loss"], one["loss"], rtol=1e-5)
    np.testing.assert_array_equal(both["eps_rank"], one["eps_rank"])


# mini-batches: the batch generators' states are checkpointed, so a resumed run draws the batches
# the uninterrupted one draws
@pytest.mark.parametrize(
    "overrides", [{}, dict(optimizer="sgd", lr=0.1, batch_size=16)], ids=["full-batch", "mini-batch"]
)
def test_resume_after_sigkill_gives_identical_metrics(tmp_path, capsys, overrides):
    cfg = tiny_cfg(steps=4000, checkpoint_every=100, **overrides)  # long enough to be killed between two checkpoints
    cfg["log"]["sparse_every"] = 250
    cfg_file = tmp_path / "run.json"
    cfg_file.write_text(json.dumps(cfg))
    cmd = [sys.executable, "-m", "staircase", "train", "--run-config", f"@{cfg_file}", "--no-progress"]
    ckpt = tmp_path / "ckpt"
    proc = subprocess.Popen([*cmd, "--out", str(tmp_path / "killed"), "--checkpoint-dir", str(ckpt)])
    deadline = time.time() + 120
    while not (ckpt / "checkpoint.pt").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    time.sleep(0.3)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert (ckpt / "checkpoint.pt").exists(), "no checkpoint written before the kill"
    assert not (tmp_path / "killed/metrics.parquet").exists(), "the run finished before it was killed"
    # resumed and uninterrupted runs in this process (the Snakemake-level test runs them as jobs)
    train.run(cfg, tmp_path / "killed", ckpt, progress=False)
    assert "resumed from checkpoint at step" in capsys.readouterr().err
    train.run(cfg, tmp_path / "straight", progress=False)
    pd.testing.assert_frame_equal(
        _metrics_without_timing(tmp_path / "killed/metrics.parquet"),
        _metrics_without_timing(tmp_path / "straight/metrics.parquet"),
    )


def test_minibatch_seed_does_not_depend_on_its_companions(tmp_path):
    # train.batch_size: each seed draws its own batches, so stacked seeds keep the promise
    cfg = tiny_cfg(steps=30, optimizer="sgd", lr=0.1, batch_size=16)
    train.run(cfg, tmp_path / "both", progress=False)
    train.run(dict(cfg, seeds=[1]), tmp_path / "alone", progress=False)
    both = pd.read_parquet(tmp_path / "both/metrics.parquet").query("seed == 1").reset_index(drop=True)
    one = pd.read_parquet(tmp_path / "alone/metrics.parquet")
    np.testing.assert_allclose(both["loss"], one["loss"], rtol=1e-5)
    np.testing.assert_array_equal(both["eps_rank"], one["eps_rank"])
    # ... and the batches matter: full-batch training of the same seed follows another path
    train.run(dict(cfg, seeds=[1], train=dict(cfg["train"], batch_size=None)), tmp_path / "full", progress=False)
    full = pd.read_parquet(tmp_path / "full/metrics.parquet")
    assert not np.allclose(full["loss"].iloc[1:], one["loss"].iloc[1:], rtol=1e-4)


def test_minibatches_are_each_seeds_own_and_cover_the_points():
    from staircase.training import methods

    gens = [methods.batch_generator(s) for s in (0, 1)]
    index = methods.draw_batches(gens, 64, 16)
    assert index.shape == (2, 16)
    assert all(len(set(row.tolist())) == 16 for row in index)  # without replacement
    assert not torch.equal(index[0], index[1])  # each seed its own
    again = methods.draw_batches([methods.batch_generator(1)], 64, 16)
    assert torch.equal(again[0], index[1])  # a function of the seed alone
    # not the initialisation's stream
    assert not torch.equal(torch.randperm(64, generator=torch.Generator().manual_seed(1))[:16], index[1])


def test_pde_minibatch_draws_interior_points_and_keeps_the_boundary():
    from staircase.problems import make_task

    task = make_task(
        "poisson1d",
        frequencies=[1.0],
        amplitudes=[1.0],
        phases=[0.0],
        interior_points=20,
        rank_points=11,
        boundary_weight=10.0,
    )
    data = task.train_data("cpu", torch.float64)
    assert task.batch_points(data) == 20
    index = torch.tensor([[0, 5, 7], [1, 2, 3]])
    batch = task.minibatch(data, index)
    assert batch["x_int"].shape == (2, 3, 1) and batch["f"].shape == (2, 3)
    torch.testing.assert_close(batch["f"][1], data["f"][[1, 2, 3]])
    assert batch["x_bd"] is data["x_bd"] and batch["g"] is data["g"]


def test_init_gain_scales_every_initial_weight_and_bias():
    from staircase.networks.architectures import build_model

    model_cfg = {"activation": "tanh", "width": 8, "depth": 2}
    plain = build_model(model_cfg, [0, 3], 1, [(-1.0, 1.0)])
    small = build_model(dict(model_cfg, init_gain=0.01), [0, 3], 1, [(-1.0, 1.0)])
    for p, q in zip(plain.parameters(), small.parameters()):
        torch.testing.assert_close(q, 0.01 * p)
    # every architecture: its trained linear layers (encoders included), not normalisation gains
    for extra in ({"architecture": "modified_mlp"}, {"norm": "layer"}, {"init": "xavier"}, {"architecture": "fourier"}):
        plain = build_model(dict(model_cfg, **extra), [0], 1, [(-1.0, 1.0)])
        small = build_model(dict(model_cfg, init_gain=0.1, **extra), [0], 1, [(-1.0, 1.0)])
        for (name, p), (_, q) in zip(plain.named_parameters(), small.named_parameters()):
            factor = 1.0 if name.startswith("norm_") else 0.1
            torch.testing.assert_close(q, factor * p, msg=f"{extra} {name}")
        for (name, p), (_, q) in zip(plain.named_buffers(), small.named_buffers()):
            torch.testing.assert_close(q, p, msg=f"{extra} buffer {name}")


def test_divergence_is_recorded_not_hidden(tmp_path, capsys):
    cfg = tiny_cfg(steps=60, lr=1.0e6, optimizer="sgd")
    train.run(cfg, tmp_path, progress=False)
    err = capsys.readouterr().err
    assert re.search(r"fit1d/base seed 0 diverged: loss is (nan|-?inf) at step 10 \(finite at step 0\)", err), err
    assert "stopped before step 60: every seed diverged" in err
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["diverged"] and run["status"]["0"].startswith("diverged at step")
    m = pd.read_parquet(tmp_path / "metrics.parquet")
    assert m["loss"].isna().any()


@pytest.mark.gpu
@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu_ranks(tmp_path):
    cfg = tiny_cfg(steps=20)
    train.run(dict(cfg, device="cpu"), tmp_path / "cpu", progress=False)
    train.run(dict(cfg, device="cuda"), tmp_path / "cuda", progress=False)
    a = pd.read_parquet(tmp_path / "cpu/metrics.parquet")
    b = pd.read_parquet(tmp_path / "cuda/metrics.parquet")
    np.testing.assert_allclose(a["loss"], b["loss"], rtol=1e-3)
