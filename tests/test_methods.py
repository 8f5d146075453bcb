"""Training methods and architectures (claims A6, A7): every architecture/init/optimiser builds and
trains stacked, seeds stay independent (L-BFGS included), the structured init and the first-layer
pre-training raise the first layer's epsilon-rank, schedules follow their formulas, and the
comparison computes the documented speed-ups and verdicts."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from staircase.claims import comparison as cmp
from staircase.claims import verdicts as vd
from staircase.core import rank as rk
from staircase.networks import init as weight_init
from staircase.networks.architectures import (
    ConfigurableMLP,
    StackedFourierMLP,
    StackedModifiedMLP,
    StackedResMLP,
    build_model,
)
from staircase.networks.forward_laplacian import Jet
from staircase.networks.mlp import StackedMLP
from staircase.problems import make_task
from staircase.problems.operators import autograd_laplacian, laplacian
from staircase.records import manifest
from staircase.records.runs import Run
from staircase.training import methods
from staircase.training import trainer as train
from staircase.workflow import config as cfgmod

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Tiny models: more threads only cost (the training job uses one too)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


BOUNDS_1D = [(-1.0, 1.0)]

MODELS = {
    "mlp": {},
    "xavier": {"init": "xavier"},
    "kaiming": {"init": "kaiming"},
    "structured": {"init": "structured"},
    "resnet": {"architecture": "resnet"},
    "fourier": {"architecture": "fourier", "fourier_features": 8, "fourier_sigma": 1.0},
    "modified_mlp": {"architecture": "modified_mlp"},
    "layernorm": {"norm": "layer"},
    "batchnorm": {"norm": "batch"},
    "resnet_layernorm": {"architecture": "resnet", "norm": "layer"},
}


def make(name, seeds=(0, 1, 2), width=10, depth=3, d_in=1, bounds=BOUNDS_1D, dtype=torch.float64, **extra):
    cfg = {"activation": "tanh", "width": width, "depth": depth, **MODELS[name], **extra}
    return build_model(cfg, list(seeds), d_in, bounds, dtype)


def fit_task(points=64):
    return make_task("multifreq1d", frequencies=[1.0, 3.0], amplitudes=[1.0, 0.5], train_points=points, rank_points=101)


@pytest.mark.parametrize("name", list(MODELS))
def test_architecture_interface_and_a_few_training_steps(name):
    model = make(name)
    x = torch.linspace(-1, 1, 17, dtype=torch.float64)[:, None]
    out, hidden = model(x, return_hidden=True)
    assert out.shape == (3, 17, 1)
    assert model.n_models == 3 and model.depth == 3 and len(hidden) == 3
    assert all(h.shape == (3, 17, 10) for h in hidden)
    # the output is the last hidden layer combined with output_coefficients (the bound relies on it)
    coef = model.output_coefficients()
    assert coef.shape == (3, 11)
    rebuilt = coef[:, :1] + torch.einsum("snk,sk->sn", hidden[-1], coef[:, 1:])
    torch.testing.assert_close(rebuilt, out[..., 0])
    task = fit_task()
    data = task.train_data("cpu", torch.float64)
    method = methods.make_method(model, {"optimizer": "adam", "lr": 1e-2, "steps": 30})
    first = task.loss(model, data).detach()
    for _ in range(30):
        last = method.step(lambda: task.loss(model, data))
    assert torch.isfinite(last).all()
    assert (task.loss(model, data).detach() < first).all()


@pytest.mark.parametrize("name", list(MODELS))
def test_a_seed_initialises_the_same_whatever_its_companions(name):
    stacked, alone = make(name, seeds=(4, 7, 9)), make(name, seeds=(7,))
    for (key, p_stack), (_, p_alone) in zip(stacked.state_dict().items(), alone.state_dict().items()):
        torch.testing.assert_close(p_stack[1:2], p_alone, rtol=0, atol=0, msg=key)


def test_default_configurable_mlp_is_the_plain_stacked_mlp():
    plain = StackedMLP([3, 5], 1, 10, 2, "tanh", dtype=torch.float64)
    same = ConfigurableMLP([3, 5], 1, 10, 2, "tanh", dtype=torch.float64)
    for a, b in zip(plain.parameters(), same.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert type(build_model({"activation": "tanh", "width": 4, "depth": 1}, [0], 1, BOUNDS_1D)) is StackedMLP


@pytest.mark.parametrize("name", [n for n in MODELS if n != "batchnorm"])
@pytest.mark.parametrize("d_in", [1, 2])
def test_forward_laplacian_matches_autograd(name, d_in):
    """Every architecture's exact forward Laplacian (used by PDE losses) against double backward."""
    bounds = [(-1.0, 1.0)] * d_in
    model = make(name, width=6, depth=2, d_in=d_in, bounds=bounds)
    x = torch.rand(11, d_in, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * 2 - 1
    fast, ref = model.forward_laplacian(x), autograd_laplacian(model, x, hidden=True)
    torch.testing.assert_close(fast.out, ref.out)
    torch.testing.assert_close(fast.lap_out, ref.lap_out)
    torch.testing.assert_close(fast.grad_out, ref.grad_out)
    for a, b in zip(fast.lap_hidden, ref.lap_hidden):
        torch.testing.assert_close(a, b)
    assert laplacian(model, x).lap_out is not None  # the PDE tasks pick it up


def test_batchnorm_laplacian_treats_the_statistics_of_the_point_set_as_constants():
    """Known answer: three points x0 - h, x0, x0 + h evaluated in one call share the batch
    statistics, so their second difference approximates the forward Laplacian at x0. (Autograd's
    sum trick is no reference here: it also differentiates the statistics, coupling all points.)"""
    model = make("batchnorm", width=6, depth=2)
    x0, h = 0.3, 1e-3
    pts = torch.cat(
        [torch.linspace(-1, 1, 200, dtype=torch.float64), torch.tensor([x0 - h, x0, x0 + h], dtype=torch.float64)]
    )[:, None]
    der = model.forward_laplacian(pts)
    u = der.out[..., -3:, 0]
    second_difference = (u[:, 2] - 2 * u[:, 1] + u[:, 0]) / h**2
    torch.testing.assert_close(der.lap_out[:, -2, 0], second_difference, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(der.out, model(pts))


def test_architecture_classes():
    assert isinstance(make("resnet"), StackedResMLP)
    assert isinstance(make("fourier"), StackedFourierMLP)
    assert isinstance(make("modified_mlp"), StackedModifiedMLP)
    # the Fourier frequencies are fixed, not trained
    assert "fourier_b" not in dict(make("fourier").named_parameters())


def test_residual_connection_is_an_identity_skip():
    model = make("resnet")
    x = torch.linspace(-1, 1, 9, dtype=torch.float64)[:, None]
    _, hidden = model(x, return_hidden=True)
    inner = torch.tanh(torch.baddbmm(model.biases[1], hidden[0], model.weights[1]))
    torch.testing.assert_close(hidden[1], hidden[0] + inner)


def test_layer_and_batch_norm_match_torch():
    x = torch.linspace(-1, 1, 33, dtype=torch.float64)[:, None]
    for name in ("layernorm", "batchnorm"):
        model = make(name)
        with torch.no_grad():
            model.norm_gain[0].uniform_(0.5, 1.5)
            model.norm_shift[0].uniform_(-0.5, 0.5)
        z = torch.baddbmm(model.biases[0], x.expand(3, *x.shape), model.weights[0])
        for s in range(3):
            gain, shift = model.norm_gain[0][s, 0], model.norm_shift[0][s, 0]
            if name == "layernorm":
                ref = torch.nn.functional.layer_norm(z[s], (10,), gain, shift, eps=1e-5)
            else:  # training-mode batch norm over the points, no running statistics
                ref = torch.nn.functional.batch_norm(z[s], None, None, gain, shift, training=True, eps=1e-5)
            torch.testing.assert_close(model._normalise(0, Jet(z)).v[s], ref)


def first_layer_rank(model, task, eps=1e-3):
    x, w = task.rank_points()
    _, hidden = model(torch.as_tensor(x, dtype=torch.float64), return_hidden=True)
    return rk.eps_rank_from_spectrum(rk.spectrum(hidden[0], w), eps)


def test_structured_init_gives_a_higher_first_layer_eps_rank_than_default():
    task = fit_task()
    default = first_layer_rank(make("mlp", width=40), task)
    structured = first_layer_rank(make("structured", width=40), task)
    # default nn.Linear neurons on [-1, 1] are nearly linear: a handful of directions; the
    # structured ramps are spread over the domain: most of the 40 neurons count
    assert default.max() <= 6
    assert structured.min() >= 25


def test_structured_init_geometry():
    n, bounds = 25, [(0.0, 2.0), (-1.0, 1.0)]
    model = make("structured", seeds=(3,), width=n, depth=1, d_in=2, bounds=bounds, init_scale=2.0)
    w, b = model.weights[0][0].detach(), model.biases[0][0, 0].detach()
    # scale s = k (n^(1/d) - 1) / |Omega|^(1/d): k = 2, n = 25, d = 2, |Omega| = 4 -> s = 4
    assert weight_init.structured_scale(n, bounds, 2.0) == pytest.approx(4.0)
    torch.testing.assert_close(torch.linalg.vector_norm(w, dim=0), torch.full((n,), 4.0, dtype=torch.float64))
    # neuron i's hyperplane w_i.x + b_i = 0 passes through its centre c_i, the i-th point of the
    # seed's scrambled Halton sequence mapped onto the box
    from scipy.stats import qmc

    centres = qmc.Halton(2, scramble=True, seed=3).random(n) * np.array([2.0, 2.0]) + np.array([0.0, -1.0])
    np.testing.assert_allclose((torch.as_tensor(centres) * w.T).sum(1) + b, 0.0, atol=1e-12)
    # in 2-D the structured layer is also far richer than the default one
    xs = np.stack(np.meshgrid(np.linspace(0, 2, 41), np.linspace(-1, 1, 41)), -1).reshape(-1, 2)
    wq = np.full(len(xs), 4.0 / len(xs))
    for name, lo, hi in (("mlp", 0, 10), ("structured", 15, n)):
        m = make(name, seeds=(3,), width=n, depth=1, d_in=2, bounds=bounds, init_scale=1.0)
        _, hidden = m(torch.as_tensor(xs), return_hidden=True)
        r = rk.eps_rank_from_spectrum(rk.spectrum(hidden[0], wq), 1e-3)
        assert lo <= int(r[0]) <= hi, (name, r)


def test_structured_init_refuses_a_sine():
    cfg = {"model": {"activation": "sin", "init": "structured"}, "train": {"optimizer": "adam", "steps": 10}}
    (key, problem), *_ = methods.check_run_config(cfg)
    assert key == "model.init" and "monotone activation" in problem


def test_pretraining_raises_the_first_layer_eps_rank(tmp_path):
    cfg = tiny_cfg(steps=5)
    cfg["model"]["width"] = 20
    cfg["train"]["pretrain"] = {"steps": 150, "lr": 2e-2, "ridge": 1e-6}
    train.run(cfg, tmp_path, progress=False)
    info = json.loads((tmp_path / "run.json").read_text())["pretrain"]
    before, after = np.array(info["eps_rank_before"]), np.array(info["eps_rank_after"])
    assert (np.array(info["logdet_after"]) > np.array(info["logdet_before"]) + 10).all()
    assert (after[0] >= before[0] + 5).all(), (before[0], after[0])  # every seed, first layer
    # step 0 of the run is the pre-trained network, and its clock includes the pre-training
    m = pd.read_parquet(tmp_path / "metrics.parquet")
    assert (m.loc[m.step == 0, "train_cpu_s"] > 0).all()
    ranks = pd.read_parquet(tmp_path / "ranks.parquet")
    r0 = ranks.query("step == 0 and layer == 0 and metric == 'eps_rank' and eps == 1e-3").sort_values("seed")
    np.testing.assert_array_equal(r0["value"].to_numpy(), after[0])


def test_pretraining_touches_only_the_first_layer():
    model = make("mlp")
    before = copy.deepcopy(model.state_dict())
    task = fit_task()
    x, w = task.rank_points()
    methods.pretrain_first_layer(model, torch.as_tensor(x), w, {"steps": 5, "lr": 1e-2, "ridge": 1e-6})
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"weights.0", "biases.0"}


# ---- optimisers --------------------------------------------------------------------------------
def tiny_cfg(**train_overrides):
    config = yaml.safe_load((REPO / ".test/config/config.yaml").read_text())
    cfg = cfgmod.variants(config, "fit1d")["base"]
    cfg["train"].update(train_overrides)
    return cfg


def trajectory(seeds, optimizer_cfg, steps=12, coupled_torch_lbfgs=False):
    """Per-model loss after each step, float64, for the tiny fitting task."""
    task = fit_task()
    data = task.train_data("cpu", torch.float64)
    model = StackedMLP(seeds, 1, 8, 2, "tanh", dtype=torch.float64)
    if coupled_torch_lbfgs:
        opt = torch.optim.LBFGS(model.parameters(), lr=1.0, max_iter=1, history_size=10, line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            loss = task.loss(model, data).sum()
            loss.backward()
            return loss

        out = []
        for _ in range(steps):
            opt.step(closure)
            out.append(task.loss(model, data).detach().numpy().copy())
        return np.array(out)
    method = methods.make_method(model, {"steps": steps, **optimizer_cfg})
    out = []
    for _ in range(steps):
        method.step(lambda: task.loss(model, data))
        out.append(task.loss(model, data).detach().numpy().copy())
    return np.array(out)


@pytest.mark.parametrize(
    "opt",
    [
        {"optimizer": "lbfgs", "lr": 1.0},
        {"optimizer": "adam_lbfgs", "lr": 1e-2, "lbfgs": {"switch_step": 4}},
        {"optimizer": "sgd", "lr": 0.1, "momentum": 0.9},
        {"optimizer": "adamw", "lr": 1e-2, "schedule": {"name": "cosine", "warmup_steps": 3}},
    ],
)
def test_each_model_trains_exactly_as_if_alone(opt):
    together = trajectory([0, 1, 2], opt)
    alone = trajectory([1], opt)
    np.testing.assert_allclose(together[:, 1], alone[:, 0], rtol=1e-9, atol=1e-12)
    assert together[-1, 1] < together[0, 1]  # and it did train


def test_torch_lbfgs_on_the_summed_loss_would_couple_the_models():
    """The control for the test above: one L-BFGS over the stack (shared history, line search and
    step) gives seed 1 a different trajectory with companions than alone."""
    together = trajectory([0, 1, 2], {}, coupled_torch_lbfgs=True)
    alone = trajectory([1], {}, coupled_torch_lbfgs=True)
    assert np.max(np.abs(together[:, 1] - alone[:, 0]) / alone[:, 0]) > 1e-3


def test_batched_lbfgs_solves_per_model_quadratics():
    """Known answer: each model minimises its own ill-conditioned quadratic; L-BFGS converges to
    every model's own minimiser."""
    gen = torch.Generator().manual_seed(0)
    s, p = 3, 6
    q = torch.linalg.qr(torch.randn(s, p, p, generator=gen, dtype=torch.float64))[0]
    a = q @ torch.diag_embed(torch.logspace(0, 3, p, dtype=torch.float64).expand(s, p)) @ q.transpose(1, 2)
    target = torch.randn(s, p, generator=gen, dtype=torch.float64)
    x = torch.nn.Parameter(torch.zeros(s, p, dtype=torch.float64))

    def loss_fn():
        d = x - target
        return 0.5 * torch.einsum("si,sij,sj->s", d, a, d)

    opt = methods.BatchedLBFGS([x], lr=1.0, history=10)
    for _ in range(60):
        opt.step(loss_fn)
    torch.testing.assert_close(x.detach(), target, atol=1e-7, rtol=0)


def test_adam_lbfgs_switches_at_the_switch_step():
    model = make("mlp")
    method = methods.make_method(
        model, {"optimizer": "adam_lbfgs", "lr": 1e-3, "steps": 10, "lbfgs": {"switch_step": 3}}
    )
    task = fit_task()
    data = task.train_data("cpu", torch.float64)
    kinds = []
    for _ in range(5):
        kinds.append(type(method.current).__name__)
        method.step(lambda: task.loss(model, data))
    assert kinds == ["Adam", "Adam", "Adam", "BatchedLBFGS", "BatchedLBFGS"]


def test_lbfgs_resumes_from_its_state():
    task = fit_task()
    data = task.train_data("cpu", torch.float64)
    model = make("mlp")
    cfg = {"optimizer": "lbfgs", "lr": 1.0, "steps": 20}
    method = methods.make_method(model, cfg)
    for _ in range(6):
        method.step(lambda: task.loss(model, data))
    saved_model, saved_opt = copy.deepcopy(model.state_dict()), copy.deepcopy(method.state_dict())
    for _ in range(4):
        straight = method.step(lambda: task.loss(model, data))
    model.load_state_dict(saved_model)
    resumed_method = methods.make_method(model, cfg)
    resumed_method.load_state_dict(saved_opt)
    for _ in range(4):
        resumed = resumed_method.step(lambda: task.loss(model, data))
    torch.testing.assert_close(resumed, straight, rtol=0, atol=0)


# ---- schedules ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "schedule, steps, expected",
    [
        ({"name": "constant"}, 4, [1, 1, 1, 1]),
        ({"name": "step", "step_size": 2, "gamma": 0.5}, 6, [1, 1, 0.5, 0.5, 0.25, 0.25]),
        ({"name": "constant", "warmup_steps": 4}, 6, [0.25, 0.5, 0.75, 1, 1, 1]),
        ({"name": "cosine"}, 4, [1, (1 + math.cos(math.pi / 4)) / 2, 0.5, (1 + math.cos(3 * math.pi / 4)) / 2]),
        ({"name": "cosine", "min_factor": 0.2}, 3, [1, 0.2 + 0.8 * 0.75, 0.2 + 0.8 * 0.25]),
        ({"name": "cosine", "warmup_steps": 2}, 6, [0.5, 1, 1, 0.5 + 0.5 * math.cos(math.pi / 4), 0.5, None]),
    ],
)
def test_schedule_gives_the_documented_learning_rates(schedule, steps, expected):
    model = make("mlp")
    task = fit_task()
    data = task.train_data("cpu", torch.float64)
    method = methods.make_method(model, {"optimizer": "adam", "lr": 2.0, "steps": steps, "schedule": schedule})
    used = []
    for _ in range(steps):
        used.append(method.lr())  # the learning rate of the update about to happen
        method.step(lambda: task.loss(model, data))
    for t, (got, want) in enumerate(zip(used, expected)):
        if want is not None:
            assert got == pytest.approx(2.0 * want), (t, used)


def test_schedule_and_methods_reject_bad_combinations():
    cfg = {
        "model": {"activation": "tanh"},
        "train": {"optimizer": "adam_lbfgs", "steps": 10, "lbfgs": {}, "schedule": {"name": "step"}},
    }
    keys = [k for k, _ in methods.check_run_config(cfg)]
    assert keys == ["train.lbfgs.switch_step", "train.schedule.step_size"]


def test_batch_size_is_checked_against_the_optimiser_and_the_points():
    task = {"name": "multifreq1d", "frequencies": [1.0], "amplitudes": [1.0], "train_points": 50, "rank_points": 11}
    cfg = {"model": {"activation": "tanh"}, "task": task, "train": {"optimizer": "sgd", "steps": 10, "batch_size": 50}}
    assert methods.check_run_config(cfg) == []
    cfg["train"]["batch_size"] = 51
    assert [k for k, _ in methods.check_run_config(cfg)] == ["train.batch_size"]
    cfg["train"].update(batch_size=10, optimizer="lbfgs")
    ((key, problem),) = methods.check_run_config(cfg)
    assert key == "train.batch_size" and "first-order" in problem
    pde = {"name": "poisson1d", "frequencies": [1.0], "amplitudes": [1.0], "phases": [0.0], "interior_points": 20}
    pde |= {"rank_points": 11, "boundary_weight": 1.0}
    cfg = {"model": {"activation": "tanh"}, "task": pde, "train": {"optimizer": "adam", "steps": 10, "batch_size": 21}}
    ((_, problem),) = methods.check_run_config(cfg)
    assert "the 20 points" in problem  # interior points only: the boundary is never batched


# ---- the comparison ----------------------------------------------------------------------------
def fake_run(times_to_loss, rank_curve, final_err, pretrain=None, n_layers=2, init_ranks=(3, 4)):
    """A run whose seeds reach loss 0.01 at the given CPU times (None: never), measured every
    step of 1 s; ranks follow rank_curve (one per measurement) for every seed."""
    rows, ranks = [], []
    n = len(rank_curve)
    for seed, reach in enumerate(times_to_loss):
        for step in range(n):
            loss = 0.005 if reach is not None and step >= reach else 1.0
            rows.append(
                dict(
                    seed=seed,
                    step=step * 10,
                    loss=loss,
                    eps_rank=rank_curve[step],
                    rel_l2=final_err,
                    train_cpu_s=float(step),
                )
            )
            for layer in range(n_layers):
                value = init_ranks[layer] if step == 0 else rank_curve[step]
                ranks.append(dict(seed=seed, step=step * 10, layer=layer, metric="eps_rank", eps=1e-3, value=value))
    cfg = {"rank": {"main_eps": 1e-3}, "train": {"pretrain": pretrain} if pretrain else {}}
    info = {"config": cfg, "status": {str(s): "ok" for s in range(len(times_to_loss))}, "device": "cpu"}
    if pretrain:
        info["pretrain"] = {"eps_rank_before": [[3] * len(times_to_loss), [4] * len(times_to_loss)], "cpu_s": 0.5}
    return Run(Path("fake"), info, pd.DataFrame(rows), pd.DataFrame(ranks))


COMPARISON = {"baseline": "base", "loss_thresholds": [0.01], "rank_thresholds": [5, 9], "min_speedup": 1.5}


def test_comparison_speedups_and_verdicts_have_known_answers():
    slow_rank = [3, 3, 3, 3, 5, 5, 5, 5, 7, 7, 9, 9]
    fast_rank = [3, 5, 5, 9, 9, 9, 9, 9, 9, 9, 9, 9]
    runs = {
        "base": fake_run([8, 9, 10], slow_rank, 0.1),
        "fast": fake_run([2, 3, 4], fast_rank, 0.05),  # 3x sooner to the loss, 10/3x to rank 9
        "never": fake_run([None, None, 5], slow_rank, 0.2),  # most seeds never reach the loss
        "pre": fake_run([4, 5, 6], fast_rank, 0.08, pretrain={"steps": 10}, init_ranks=(8, 6)),
    }
    seeds = cmp.seed_table(runs, COMPARISON, "train_cpu_s")
    assert seeds.query("variant == 'fast' and seed == 0")["time_to_loss<=0.01"].item() == 2.0
    assert np.isnan(seeds.query("variant == 'never' and seed == 0")["time_to_loss<=0.01"].item())
    summary = cmp.summary_table(seeds, COMPARISON).set_index("variant")
    assert summary.loc["fast", "time_speedup_loss"] == pytest.approx(9 / 3)
    assert summary.loc["fast", "time_speedup_rank"] == pytest.approx(10 / 3)  # rank 9 at t=10 vs t=3
    assert summary.loc["never", "time_speedup_loss"] == 0.0  # median never reached
    # 3 -> 5 -> 7 -> 9 is three stairs; in 3, 5, 5, 9, ... the lone first 3 is no plateau: one stair
    assert summary.loc["base", "n_stairs"] == 3 and summary.loc["fast", "n_stairs"] == 1
    assert summary.loc["pre", "group"] == "A7" and summary.loc["fast", "group"] == "A6"
    verdicts = cmp.verdicts(summary.reset_index(), COMPARISON).set_index("metric")
    a6 = verdicts[verdicts.claim == "A6"]
    # rank, loss: "fast" beats the baseline, "never" does not; stair counts without A1: a description
    assert list(a6["value"])[:3] == [0.5, 0.5, 0.5]
    assert list(a6["verdict"])[:3] == ["PASS", "PASS", "INFO"]  # a6_min_fraction 0.5
    assert np.isnan(a6["value"].iloc[3]) and a6["verdict"].iloc[3] == "INCONCLUSIVE"  # Spearman needs 3 methods
    a7 = verdicts[verdicts.claim == "A7"]
    assert list(a7["value"]) == pytest.approx([5.0, 2.0, 9 / 5, 0.8])
    assert list(a7["verdict"]) == ["PASS"] * 4
    # the first-layer gain is a mechanism test that can fail; the rest is evidence, each with its null
    assert list(a7["role"]) == ["test", "test", "test", "test"] and a7["null"].str.len().gt(0).all()
    # a pre-training whose settings were chosen on this experiment: speed and error only described
    chosen = cmp.verdicts(summary.reset_index(), {**COMPARISON, "chosen_here": ["pre"]})
    a7 = chosen[chosen.claim == "A7"]
    assert list(a7["role"]) == ["test", "test", "description", "description", "test"]
    assert list(a7["verdict"])[2:4] == ["INFO", "INFO"] and a7["metric"].str.contains("not evidence").sum() == 2
    # "speeds training" was not tested there: the claim is INCONCLUSIVE, never PASS
    assert a7["verdict"].iloc[4] == "INCONCLUSIVE" and vd.combine(a7["verdict"], a7["role"]) == "INCONCLUSIVE"
    # must fail: a pre-training that does not raise the last layer's rank and is slower
    slow = {**runs, "pre": fake_run([9, 10, 11], slow_rank, 0.2, pretrain={"steps": 10}, init_ranks=(8, 3))}
    summary = cmp.summary_table(cmp.seed_table(slow, COMPARISON, "train_cpu_s"), COMPARISON)
    a7 = cmp.verdicts(summary, COMPARISON).query("claim == 'A7'")
    assert list(a7["verdict"]) == ["PASS", "FAIL", "FAIL", "FAIL"]


def test_comparison_block_is_checked():
    exp = {"claims": ["A6"], "comparison": {"baseline": "nope", "baseline_of": {"x": "base"}}}
    problems = cfgmod.check_experiment(exp, ["base", "fast"])
    assert [k for k, _ in problems] == ["comparison.baseline", "comparison.baseline_of.x"]
    assert cfgmod.check_experiment({"claims": ["A7"]}, ["base"]) == [
        ("comparison", "claims A6/A7 need a comparison: block")
    ]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("opt", [{"optimizer": "lbfgs", "lr": 1.0}, {"optimizer": "adam", "lr": 1e-2}])
def test_methods_and_architectures_on_cuda_match_the_cpu(opt):
    task = fit_task()
    x = torch.linspace(-1, 1, 9, dtype=torch.float64)[:, None]
    for name in ("structured", "resnet", "fourier", "modified_mlp", "layernorm"):
        cpu = make(name)
        gpu = copy.deepcopy(cpu).cuda()
        torch.testing.assert_close(gpu.forward_laplacian(x.cuda()).lap_out.cpu(), cpu.forward_laplacian(x).lap_out)
        losses = []
        for model, device in ((cpu, "cpu"), (gpu, "cuda")):
            data = task.train_data(device, torch.float64)
            method = methods.make_method(model, {"steps": 5, **opt})
            losses.append([method.step(lambda m=model, d=data: task.loss(m, d)).cpu() for _ in range(5)][-1])
        torch.testing.assert_close(losses[1], losses[0], rtol=1e-6, atol=1e-9)


# ---- end to end ------------------------------------------------------------------------------------
@pytest.mark.slow
def test_methods_workflow_end_to_end(tmp_path):
    """Training jobs -> the curves figure and the three tables (the audit rows: the test below)."""
    import subprocess
    import sys

    snakemake = str(Path(sys.executable).parent / "snakemake")
    targets = [f"results/small/tables/methods_{k}_methods_tiny.csv" for k in ("summary", "seeds", "verdicts")]
    targets += ["results/small/figures/methods_curves_methods_tiny.png"]
    config = REPO / ".test" / "config" / "methods.yaml"
    res = subprocess.run(
        [snakemake, "--snakefile", str(REPO / "Snakefile"), *targets, "--cores", "2", "--configfile", str(config)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    summary = pd.read_csv(tmp_path / "results/small/tables/methods_summary_methods_tiny.csv")
    assert list(summary["variant"]) == ["baseline", "lbfgs", "pretrain"]
    assert list(summary["group"]) == ["baseline", "A6", "A7"]
    seeds = pd.read_csv(tmp_path / "results/small/tables/methods_seeds_methods_tiny.csv")
    assert len(seeds) == 6 and {"init_rank_l0", "init_rank_l1", "n_stairs", "final_rel_l2"} <= set(seeds.columns)
    # pre-training is recorded: the rank before it, and the first layer's rank after it at step 0
    pre = seeds[seeds.variant == "pretrain"]
    assert (pre["init_rank_l0"] >= pre["init_rank_before_pretrain_l0"]).all()
    verdicts = pd.read_csv(tmp_path / "results/small/tables/methods_verdicts_methods_tiny.csv")
    assert set(verdicts["verdict"]) <= {"PASS", "FAIL", "INCONCLUSIVE", "INFO"}  # INFO: a description row
    assert (tmp_path / "results/small/figures/methods_curves_methods_tiny.pdf").stat().st_size > 0


def test_audit_reports_a6_and_a7_from_the_comparison(tmp_path):
    from staircase.claims import audit

    runs = {
        "base": fake_run([8, 9, 10], [3, 3, 5, 5, 7, 7, 9, 9, 9, 9, 9, 9], 0.1),
        "fast": fake_run([2, 3, 4], [3, 5, 5, 9, 9, 9, 9, 9, 9, 9, 9, 9], 0.05),
        # its times differ from fast's: two variants with an identical seed series are refused as copies
        "pre": fake_run(
            [5, 6, 7], [3, 5, 5, 9, 9, 9, 9, 9, 9, 9, 9, 9], 0.08, pretrain={"steps": 10}, init_ranks=(8, 6)
        ),
    }
    for variant, run in runs.items():
        out = tmp_path / "runs" / "exp" / variant
        out.mkdir(parents=True)
        run.info["config"] = dict(run.config, experiment="exp", variant=variant)  # as train writes it
        run.info["seeds"] = [int(s) for s in run.info["status"]]
        run.metrics.to_parquet(out / "metrics.parquet")
        run.ranks.to_parquet(out / "ranks.parquet")
        (out / "run.json").write_text(json.dumps(run.info))
        manifest.seal(out)  # the readers verify a run against its manifest
    experiment = yaml.safe_load((REPO / ".test/config/methods.yaml").read_text())["experiments"]["methods_tiny"]
    experiment["variants"] = {"base": {}, "fast": {}, "pre": {"train": {"pretrain": {"steps": 10}}}}
    experiment["comparison"] = COMPARISON
    config = {"scale": "small", "audit": {"min_seeds": 2}, "experiments": {"exp": experiment}}
    frame = audit.evaluate(config, tmp_path)
    assert set(frame["claim"]) == {"A6", "A7"}
    a7 = frame[frame["claim"] == "A7"]
    assert list(a7["verdict"]) == ["PASS"] * 4 and a7["metric"].str.startswith("pre:").all()
    assert audit.overall(frame).set_index("claim").loc["A6", "verdict"] == "INCONCLUSIVE"  # Spearman of 1 method
