"""The benchmark harness runs end to end on a tiny problem (no timing is asserted: timings depend on
the machine), and the engine's speed-ups keep the numbers they speed up."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from staircase.benchmarks import bench, comparisons, contenders
from staircase.core import stairs
from staircase.core.schedule import log_schedule
from staircase.networks.mlp import StackedMLP
from staircase.training import methods, speed
from staircase.training import trainer as train
from staircase.workflow import config as cfgmod

REPO = Path(__file__).resolve().parents[1]
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def tiny_config(steps=30) -> dict:
    config = yaml.safe_load((REPO / ".test/config/config.yaml").read_text())
    config["experiments"]["fit1d"]["train"]["steps"] = steps
    return config


def tiny_cfg(steps=30) -> dict:
    return cfgmod.variants(tiny_config(steps), "fit1d")["base"]


def test_ends_only_schedule_measures_twice():
    cfg = contenders.ends_only(tiny_cfg(steps=37))
    lg = cfg["log"]
    assert list(log_schedule(37, lg["dense_every"], lg["dense_until"], lg["sparse_every"])) == [0, 37]


def test_contenders_train_the_same_problem():
    cfg = tiny_cfg(steps=40)
    ours = contenders.run_ours(cfg)
    ends = contenders.run_ours(cfg, schedule="ends")
    naive = contenders.run_naive(cfg, seed=0)
    assert ours["n_models"] == 2 and naive["n_models"] == 1
    assert ours["steps"] == naive["steps"] == ends["steps"] == 40
    assert ours["measurements"] == naive["measurements"] == len(log_schedule(40, 10, 50, 25))
    assert ends["measurements"] == 2
    # the measurement schedule does not change the training: same final losses
    assert ours["final_loss"] == ends["final_loss"]
    # both learn: the loss falls from its value at initialisation (~0.6 for this target)
    assert max(ours["final_loss"]) < 0.6 and naive["final_loss"][0] < 0.6
    assert ours["wall_s"] > 0 and naive["cpu_s"] > 0


@pytest.mark.slow
def test_bench_command_writes_tables_and_ratios(tmp_path):
    summary = bench.run_benchmarks(tiny_config(steps=20), tmp_path, repeats=1, steps=12)
    for name in ("fit", "pde"):
        assert (tmp_path / f"{name}.csv").exists()
    on_disk = json.loads((tmp_path / "summary.json").read_text())
    assert on_disk["fit"]["peers"]["naive"]["speedup_tracking_cpu_median"] > 0
    assert np.isfinite(on_disk["fit"]["overhead_cpu_median"])
    assert on_disk["pde"]["task"] == "poisson2d" and on_disk["pde"]["steps"] == 12
    assert ("deepxde" in on_disk["pde"]["peers"]) == (bench.deepxde_available() is None)
    assert on_disk["machine"]["nproc"] >= 1
    if not torch.cuda.is_available():
        assert on_disk["gpu"] == {"skipped": "no CUDA device"}
    assert on_disk["schedule_fit"]["schedules"][0]["schedule"] == "every step"
    assert on_disk["tracker"]["same_final_losses"]
    assert "vs naive" in bench.report(summary) and "measurement schedules" in bench.report(summary)


def test_schedule_study_sees_what_the_schedule_itself_records(tmp_path):
    """The study takes one every-step run's measurements at a schedule's steps; on the CPU a
    measurement does not change the training, so that is exactly what a run on that schedule
    records: the stairs it reports for the config's schedule are those of a real run."""
    config = tiny_config(steps=60)
    config["experiments"]["fit1d"]["log"] = {"dense_every": 2, "dense_until": 20, "sparse_every": 5}
    cfg = cfgmod.variants(config, "fit1d")["base"]
    df, summary = comparisons.compare_schedules(cfg, {"min_points": 2}, log=lambda *_: None)
    rows = df.set_index("schedule")
    assert rows.loc["every step", "measurements"] == 61
    every = json.loads(rows.loc["every step", "stairs_per_seed"])
    assert rows.loc["every step", "stairs_found"] == 1.0 or (
        np.median(every) == 0 and np.isnan(rows["stairs_found"]).all()
    )
    assert rows.loc["log (config)", "measurements"] == len(log_schedule(60, 2, 20, 5))
    assert list(df["measurements"]) == sorted(df["measurements"], reverse=True)  # sparser: fewer
    assert np.all(np.diff(df["overhead_estimated"]) <= 0)

    trainer = train.Trainer(cfg, tmp_path, progress=False)  # the config's schedule, run for real
    trainer.train()
    series = contenders.trajectory(trainer)
    found = [
        int(stairs.analyse(series["steps"], r, l, min_points=2).summary()["n_stairs"])
        for r, l in zip(series["ranks"], series["loss"])
    ]
    assert json.loads(rows.loc["log (config)", "stairs_per_seed"]) == found
    assert summary["measurement_cpu_ms"] > 0 and summary["step_cpu_ms"] > 0


def test_tracker_comparison_reports_its_overhead_and_leaves_training_alone():
    df, summary = comparisons.compare_tracker(tiny_cfg(steps=40), repeats=1, log=lambda *_: None)
    assert set(df["contender"]) == {"user_loop", "user_loop_tracked"}
    assert summary["same_final_losses"]  # the tracked loop trains exactly as the untracked one
    assert summary["measurements"] == len(log_schedule(40, 10, 50, 25)) and summary["rank_points"] == 101
    assert np.isfinite(summary["overhead_cpu_median"]) and summary["overhead_inrun_cpu_median"] > 0
    assert "staircase.Tracker in a plain PyTorch loop" in bench.report({"tracker": summary})


def test_cli_lists_the_comparisons(capsys):
    from staircase import cli

    with pytest.raises(SystemExit):
        cli.main(["bench", "--help"])
    assert "subset of: " + ", ".join(bench.COMPARISONS) in " ".join(capsys.readouterr().out.split())


def test_pde_contenders_follow_the_same_trajectory():
    """Same initial weights, same points and loss: our forward Laplacian and the naive loop's
    double backward reach the same loss after the same steps (up to float32 rounding)."""
    cfg = dict(bench.POISSON_BENCH, seeds=[0])
    cfg["task"] = dict(cfg["task"], interior_points=8, boundary_points=9, rank_points=9)
    cfg["train"] = dict(cfg["train"], steps=15)
    ours, naive = contenders.run_ours(cfg), contenders.run_naive(cfg, seed=0)
    np.testing.assert_allclose(ours["final_loss"], naive["final_loss"], rtol=1e-3)
    np.testing.assert_allclose(ours["final_rel_l2"], naive["final_rel_l2"], rtol=1e-3)


def test_shared_forward_computes_once_per_tensor():
    model = StackedMLP([0, 1], 1, 8, 2, "tanh")
    calls = []
    model.register_forward_hook(lambda *a: calls.append(1))
    shared = speed.SharedForward(model)
    x, x2 = torch.linspace(-1, 1, 11)[:, None], torch.linspace(-1, 1, 11)[:, None]
    out = shared(x)
    out2, hidden = shared(x, return_hidden=True)
    assert out is out2 and len(hidden) == 2 and len(calls) == 1
    torch.testing.assert_close(shared(x2), model(x2))  # an equal but different tensor: computed
    assert shared.n_models == 2  # everything else is the model's


def test_fused_adam_follows_the_reference_update():
    """make_optimizer uses the fused kernels; the trajectory is the textbook (for-loop) Adam's."""
    torch.manual_seed(0)
    x, y = torch.linspace(-1, 1, 64)[:, None], torch.sin(3 * torch.linspace(-1, 1, 64))
    models = [StackedMLP([0, 1], 1, 16, 2, "tanh") for _ in range(2)]
    opts = [
        methods.make_optimizer(models[0].parameters(), {"optimizer": "adam", "lr": 1e-2}),
        torch.optim.Adam(models[1].parameters(), lr=1e-2, foreach=False),
    ]
    for _ in range(50):
        for m, opt in zip(models, opts):
            opt.zero_grad()
            ((m(x)[..., 0] - y) ** 2).mean(-1).sum().backward()
            opt.step()
    for p, q in zip(models[0].parameters(), models[1].parameters()):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5)


@pytest.mark.gpu
@needs_cuda
def test_cuda_graph_matches_eager_steps(tmp_path):
    cfg = dict(tiny_cfg(steps=60), device="cuda")
    graphed = dict(cfg, train=dict(cfg["train"], cuda_graph=True))
    a, b = train.Trainer(cfg, tmp_path / "a", progress=False), train.Trainer(graphed, tmp_path / "b", progress=False)
    a.train()
    b.train()
    assert b.run_step.graph is not None  # the graph was captured and replayed
    np.testing.assert_allclose(np.array(a.rec.scalars["loss"]), np.array(b.rec.scalars["loss"]), rtol=1e-5)


@pytest.mark.gpu
@needs_cuda
def test_gpu_comparison_runs(tmp_path):
    summary = bench.run_benchmarks(tiny_config(steps=20), tmp_path, only=["gpu"], repeats=1, gpu_models=4)
    assert summary["gpu"]["speedup_wall_median"] > 0
    assert not summary["gpu"]["cuda_graph_errors"]


def test_cpu_kind_names_the_model_and_the_speed_flags():
    """A benchmark says which kind of CPU it ran on: the same ratio differs between kinds."""
    from staircase.benchmarks.bench import cpu_kind

    xeon = (
        "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz\n"
        "flags\t\t: fpu sse avx avx2 fma avx512f avx512_vnni\n\nprocessor\t: 1\nmodel name\t: other\n"
    )
    kind = cpu_kind(xeon)
    assert kind["cpu_model"] == "Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz"
    assert kind["cpu_flags"] == ["avx512f", "avx512_vnni", "avx2", "fma", "avx"]
    assert kind["cpu_kind"].endswith("(avx512f)") and kind["cpu_vendor"] == "GenuineIntel"
    epyc = cpu_kind("vendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC\nflags\t\t: fpu avx avx2 fma\n")
    assert epyc["cpu_kind"] == "AMD EPYC (avx2)" and "avx512f" not in epyc["cpu_flags"]
