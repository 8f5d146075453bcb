"""Each speed feature (staircase.training.speed) trains a tiny job to the same recorded series,
bit for bit, as the plain reference loop with every feature off. (keep_freed_memory is
process-wide: once on in this process it stays on, and changes where memory comes from, never a
value; the test checks that the job runs the same with it.)"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from test_train import tiny_cfg

from staircase.training import speed
from staircase.training import trainer as train
from staircase.training.recorder import TIMING_COLUMNS

PLAIN = speed.Speed(
    fast_optimizer_step=False,
    keep_freed_memory=False,
    shared_forward=False,
    measure_clock=False,
    cuda_graph=False,
    full_float32=False,
)
POISSON = dict(
    name="poisson1d",
    frequencies=[1.0, 3.0],
    amplitudes=[1.0, 0.5],
    phases=[0.25, 0.0],
    interior_points=20,
    rank_points=21,
    boundary_weight=10.0,
)
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def recorded(cfg: dict, features: speed.Speed, tmp_path) -> tuple:
    trainer = train.Trainer(cfg, tmp_path, progress=False, speed_features=features)
    trainer.train()
    rec = trainer.rec
    scalars = {k: np.array(v) for k, v in rec.scalars.items() if k not in TIMING_COLUMNS}
    return rec.steps, scalars, rec.spectra, trainer


def assert_same(a: tuple, b: tuple) -> None:
    assert a[0] == b[0]
    for key in a[1]:
        np.testing.assert_array_equal(a[1][key], b[1][key], err_msg=key, strict=True)
    for step_a, step_b in zip(a[2], b[2], strict=True):
        for layer_a, layer_b in zip(step_a, step_b, strict=True):
            np.testing.assert_array_equal(layer_a, layer_b, strict=True)


def pde_cfg(**train_overrides) -> dict:
    cfg = tiny_cfg(steps=30, **train_overrides)
    cfg["task"] = dict(POISSON)
    return cfg


CPU_FEATURES = ("fast_optimizer_step", "keep_freed_memory", "shared_forward", "measure_clock")


@pytest.mark.parametrize("feature", CPU_FEATURES)
@pytest.mark.parametrize("make_cfg", [lambda: tiny_cfg(steps=30), pde_cfg], ids=["fit1d", "poisson1d"])
def test_feature_matches_the_plain_loop(feature, make_cfg, tmp_path):
    cfg = make_cfg()
    on = dataclasses.replace(PLAIN, **{feature: True})
    assert_same(recorded(cfg, PLAIN, tmp_path / "plain"), recorded(cfg, on, tmp_path / "on"))


def test_defaults_are_the_config_and_all_cpu_features_on(tmp_path):
    """The pipeline's defaults: every CPU feature on, the CUDA graph only on request and on a GPU."""
    assert speed.Speed.from_config(tiny_cfg(), "cpu") == dataclasses.replace(
        PLAIN, **dict.fromkeys(CPU_FEATURES, True), full_float32=True
    )
    assert not speed.Speed.from_config(tiny_cfg(cuda_graph=True), "cpu").cuda_graph
    assert speed.Speed.from_config(tiny_cfg(cuda_graph=True), "cuda").cuda_graph
    cfg = tiny_cfg(steps=30, optimizer="sgd", momentum=0.9)
    default = recorded(cfg, None, tmp_path / "default")
    assert_same(recorded(cfg, PLAIN, tmp_path / "plain"), default)
    assert default[3].measure_clock.total() > 0  # the default clock reads time; the plain one does not


def test_measure_clock_off_reads_zero(tmp_path):
    *_, trainer = recorded(tiny_cfg(steps=20), PLAIN, tmp_path)
    assert trainer.measure_clock.total() == 0 and trainer.measure_clock.count == len(trainer.rec.steps)


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize("feature", ["cuda_graph", *CPU_FEATURES])
def test_gpu_feature_matches_the_plain_loop(feature, tmp_path):
    """On a GPU the reference computes in full float32 too: TF32 is a precision, not a speed-up,
    and changes the numbers (staircase.training.speed)."""
    cfg = dict(tiny_cfg(steps=40, cuda_graph=feature == "cuda_graph"), device="cuda")
    plain = dataclasses.replace(PLAIN, full_float32=True)
    on = dataclasses.replace(plain, **{feature: True})
    a, b = recorded(cfg, plain, tmp_path / "plain"), recorded(cfg, on, tmp_path / "on")
    if feature == "cuda_graph":
        assert b[3].run_step.graph is not None  # captured and replayed
    assert_same(a, b)
