"""The tracker of any PyTorch model (staircase.training.tracker): the README's example runs and its output
passes through `staircase audit --runs`; it writes the trainer's format and the trainer's numbers;
it does not change training; layers, output layer, schedules and divergence."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from torch import nn

from staircase import Tracker
from staircase.benchmarks.initial import initial_weights, load_linears
from staircase.claims import audit
from staircase.core import quadrature
from staircase.core.schedule import log_schedule
from staircase.problems import make_task
from staircase.records.writer import main_ranks
from staircase.training import trainer as train
from staircase.training.tracker import Schedule, sequential_head, sequential_layers
from staircase.training.tracker_layers import resolve
from staircase.workflow import config as cfgmod

REPO = Path(__file__).resolve().parents[1]
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.fixture
def one_thread():
    """One torch thread, as the pipeline's jobs: on a shared 2-core machine two threads made these
    small nets ten times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def readme_example() -> str:
    section = (REPO / "README.md").read_text().split("## Your own model: the tracker", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def tiny_cfg(steps=40) -> dict:
    config = yaml.safe_load((REPO / ".test/config/config.yaml").read_text())
    cfg = cfgmod.variants(config, "fit1d")["base"]
    cfg["train"]["steps"] = steps
    return cfg


def documented_metrics_columns() -> set[str]:
    """The metrics.parquet columns the README's table names."""
    row = next(ln for ln in (REPO / "README.md").read_text().splitlines() if ln.startswith("| `<root>/runs/<exp"))
    return set(re.findall(r"`([a-z_0-9]+)`", row.split("|")[2]))


def sequential(width=12, depth=2, seed=0):
    torch.manual_seed(seed)
    layers, d = [], 1
    for _ in range(depth):
        layers += [nn.Linear(d, width), nn.Tanh()]
        d = width
    return nn.Sequential(*layers, nn.Linear(d, 1))


# ---- the README's example ----------------------------------------------------------------------
def test_readme_example_runs_and_its_run_passes_the_audit(tmp_path, monkeypatch, one_thread):
    monkeypatch.chdir(tmp_path)
    exec(compile(readme_example(), "README.md", "exec"), {})
    run = tmp_path / "results/runs/my_model/base"

    # the format of staircase train: the same columns, dtypes and run.json keys as a trainer's run
    train.run(tiny_cfg(), tmp_path / "trainer", progress=False)
    ours, theirs = pd.read_parquet(run / "metrics.parquet"), pd.read_parquet(tmp_path / "trainer/metrics.parquet")
    assert list(ours.columns) == list(theirs.columns) and (ours.dtypes == theirs.dtypes).all()
    assert documented_metrics_columns() <= set(ours.columns)
    steps = log_schedule(2000, 10, 1000, 50)
    assert list(ours["step"].unique()) == list(steps) and set(ours["seed"]) == {0, 1}
    known = ["loss", "eps_rank", "rel_l2", "error_sq", "eps_bound", "eps_bound_top_r", "elapsed_s", "train_cpu_s"]
    assert ours[known].notna().all().all()
    assert ours[["lower_bound", "best_loss", "bound_rank", "bound_eps"]].isna().all().all()  # no train_data
    assert not ours["eps_bound_violation"].any() and (ours["eps_bound"] <= ours["error_sq"]).all()
    assert ours.groupby("seed")["loss"].last().max() < ours.groupby("seed")["loss"].first().min()  # it learned
    ranks = pd.read_parquet(run / "ranks.parquet")
    assert list(ranks.columns) == list(pd.read_parquet(tmp_path / "trainer/ranks.parquet").columns)
    assert set(ranks["layer"]) == {0, 1} and set(ranks["eps"].dropna()) == {1e-1, 1e-2, 1e-3, 1e-4, 1e-6}
    spectra = np.load(run / "spectra.npz")
    assert spectra["layer1"].shape == (2, len(steps), 40) and str(spectra["normalisation"]) == "integral"
    info = json.loads((run / "run.json").read_text())
    assert set(json.loads((tmp_path / "trainer/run.json").read_text())) <= set(info)
    assert info["status"] == {"0": "ok", "1": "ok"} and info["measurements"] == len(steps)
    assert info["config"]["model"]["layers"] == ["1 (Tanh)", "3 (Tanh)"]  # the module path, and what it is
    assert info["config"]["model"]["output_layer"] == "4 (Linear)" and info["complete"] and info["stopped"] is None
    assert info["config"]["rank"]["main_eps"] == 1e-3 and info["config"]["tracker"]["points"] == 201

    # `staircase audit --runs`: verdicts computed on A1, A2, A3, A5 (not necessarily PASS); no self-check fails
    res = subprocess.run(
        [sys.executable, "-m", "staircase", "audit", "--runs", str(run)], capture_output=True, text=True, cwd=tmp_path
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("claims audit: ") and "details: " in res.stdout
    claims = pd.read_csv(run / "audit/claims.csv")
    verdicts = audit.overall(claims).set_index("claim")["verdict"]
    assert list(verdicts.index) == ["A1", "A2", "A3", "A5"]
    assert set(verdicts) <= {"PASS", "FAIL"}  # two healthy seeds: every test decided
    assert (claims.loc[claims["role"] == "self-check", "verdict"] == "PASS").all()
    assert (run / "audit/claims.md").exists() and len(pd.read_csv(run / "audit/seeds.csv"))


@pytest.mark.slow
def test_notebooks_draw_a_tracked_run(tmp_path, one_thread):
    from test_analysis_notebooks import papermill

    x, w = quadrature.trapezoid_1d(-1.0, 1.0, 101)
    x = torch.tensor(x, dtype=torch.float32)[:, None]
    y = torch.sin(3 * x)
    nets = [sequential(seed=s) for s in (0, 1)]
    opts = [torch.optim.Adam(n.parameters(), lr=1e-2) for n in nets]
    out = tmp_path / "runs/mine/base"
    tracker = Tracker(nets, x, w, target=y, train_data=(x, y), out=out, schedule={"dense_every": 5, "sparse_every": 5})
    for step in range(201):
        losses = [((n(x) - y) ** 2).mean() for n in nets]
        tracker.step(step, losses)
        for opt, loss in zip(opts, losses):
            opt.zero_grad()
            loss.backward()
            opt.step()
    tracker.close()
    stairs = dict(min_points=2, min_span=0.0, window=1)
    for name, extra in (("staircase", dict(experiment="mine", **stairs)), ("spectra", dict(experiment="mine"))):
        papermill(name, tmp_path, runs=[str(out)], output_stem=str(tmp_path / name), **extra)
        assert (tmp_path / f"{name}.png").stat().st_size > 0
    for name in ("layers", "bound", "summary"):
        extra = dict(experiment="mine") if name == "layers" else stairs
        papermill(name, tmp_path, runs=[str(out)], output_stem=str(tmp_path / name), **extra)
    assert pd.read_csv(tmp_path / "summary.csv")["bound_violations"].eq(0).all()


# ---- the same numbers as the trainer -----------------------------------------------------------
def test_tracker_measures_what_the_trainer_measures(tmp_path, one_thread):
    """An nn.Sequential with the trainer's initial weights of seed 0, tracked on the task's rank
    quadrature with its exact solution and training data: at step 0 the spectra, eps-ranks, A3's
    bound and the loss's own bound are the trainer's (up to float32 rounding of the features)."""
    cfg = dict(tiny_cfg(steps=10), seeds=[0])
    trainer = train.Trainer(cfg, tmp_path / "trainer", progress=False)
    trainer.measure()
    params = dict(cfg["task"])
    task = make_task(params.pop("name"), **params)
    net = sequential(width=cfg["model"]["width"], depth=cfg["model"]["depth"])
    load_linears([m for m in net if isinstance(m, nn.Linear)], initial_weights(cfg, 0, 1))
    xr, wr = task.rank_points()
    data = task.train_data("cpu", torch.float32)
    tracker = Tracker(
        net,
        xr,
        wr,
        eps=cfg["rank"]["eps"],
        main_eps=cfg["rank"]["main_eps"],
        target=task.exact(xr),
        train_data=(data["x"], data["y"]),
        out=tmp_path / "runs/mine/base",
    )
    loss = ((net(data["x"])[:, 0] - data["y"]) ** 2).mean()
    tracker.step(0, loss)
    for layer, (ours, theirs) in enumerate(zip(tracker.rec.spectra[0], trainer.rec.spectra[0])):
        big = theirs[0] > 1e-6
        np.testing.assert_allclose(ours[0][big], theirs[0][big], rtol=1e-4, err_msg=f"layer {layer}")
    ranks = main_ranks(tracker.rec.spectra, tracker.main_eps)[:, 0]
    np.testing.assert_array_equal(ranks, trainer.main_ranks()[:, 0])
    assert ranks[0] > 0
    for key in ("loss", "error_sq", "eps_bound", "eps_bound_top_r", "lower_bound", "best_loss", "bound_rank"):
        np.testing.assert_allclose(tracker.rec.scalars[key][0], trainer.rec.scalars[key][0], rtol=1e-4, err_msg=key)
    assert tracker.bound_eps == pytest.approx(trainer.bound_eps)


# ---- it does not change training -----------------------------------------------------------------
class Net(nn.Module):
    """Not a Sequential: dropout (random in training), batch norm (running statistics), a frozen
    (eval-mode) submodule, and an output scaled after the last linear layer."""

    def __init__(self):
        super().__init__()
        self.inp = nn.Linear(2, 16)
        self.norm = nn.BatchNorm1d(16)
        self.act1 = nn.Tanh()
        self.drop = nn.Dropout(0.2)
        self.mid = nn.Linear(16, 16)
        self.act2 = nn.Tanh()
        self.head = nn.Linear(16, 1)
        self.scale = 1.0

    def forward(self, x):
        h1 = self.act1(self.norm(self.inp(x)))
        h2 = self.act2(self.mid(self.drop(h1)))
        return self.head(h2) * self.scale


def train_net(track: bool, tmp_path, steps=30):
    torch.manual_seed(1)
    net = Net()
    net.norm.eval()  # a user's frozen submodule: must stay in eval mode
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    x = torch.rand(64, 2) * 2 - 1
    y = torch.sin(3 * x[:, :1])
    points, weights = quadrature.trapezoid_box([(-1, 1), (-1, 1)], 9)
    tracker = None
    if track:
        tracker = Tracker(
            net,
            points,
            weights,
            layers=[net.act1, net.act2],
            output_layer=net.head,
            target=np.sin(3 * points[:, 0]),
            schedule=1,
            out=tmp_path / "runs/net/base",
        )
    for step in range(steps):
        loss = ((net(x) - y) ** 2).mean()
        if tracker:
            tracker.step(step, loss)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net, tracker


def test_tracking_does_not_change_training(tmp_path):
    plain, _ = train_net(False, tmp_path)
    rng_plain = torch.get_rng_state()
    tracked, tracker = train_net(True, tmp_path)
    assert torch.equal(torch.get_rng_state(), rng_plain)  # the measurements drew no random numbers
    for (name, a), b in zip(plain.state_dict().items(), tracked.state_dict().values()):
        assert torch.equal(a, b), name  # weights, batch-norm statistics: bit for bit
    assert tracked.training and tracked.drop.training and not tracked.norm.training  # modes restored
    assert not tracked._forward_hooks and not tracked.act1._forward_hooks and not tracked.head._forward_hooks
    tracker.close()
    m = pd.read_parquet(tmp_path / "runs/net/base/metrics.parquet")
    assert len(m) == 30 and m["eps_rank"].between(1, 16).all() and m["error_sq"].notna().all()


def test_the_bound_needs_the_model_output_to_be_the_output_layers(tmp_path):
    net, tracker = train_net(True, tmp_path, steps=1)
    net.scale = 2.0  # the output is no longer head's output: the bound would be about another function
    with pytest.raises(ValueError, match="not output_layer's output"):
        tracker.measure(5, 0.1)
    net.scale = 1.0
    tracker.layers = [resolve(net, [net.act2, net.act1])]  # head reads act2's output, not the last tracked layer's
    with pytest.raises(ValueError, match="does not read the last tracked layer"):
        tracker.measure(6, 0.1)


def test_hidden_features_serve_the_quadrature_check(one_thread):
    from staircase.benchmarks import quadcheck

    nets = [sequential(seed=s) for s in (0, 1)]
    tracker = Tracker(nets, np.linspace(-1, 1, 11))
    hidden = tracker.hidden(np.linspace(-1, 1, 7))
    assert [tuple(h.shape) for h in hidden] == [(2, 7, 12), (2, 7, 12)]
    torch.testing.assert_close(hidden[1][1], nets[1][:4](torch.linspace(-1, 1, 7)[:, None]))
    rules = {
        "trapezoid 201": quadrature.trapezoid_1d(-1, 1, 201),
        "gauss 3000": quadrature.gauss_legendre_1d(-1, 1, 3000),
    }
    ranks, _, _ = quadcheck.rank_table(tracker.hidden, rules, tracker.eps)
    assert ranks["gauss 3000"].shape == (2, 2, 5)  # layers, models, eps
    table, _ = quadcheck.agreement(
        {k: v[None] for k, v in ranks.items()}, "gauss 3000", tracker.eps, {"trapezoid 201": 201}
    )
    assert table["differ"].item() == 0  # an untrained smooth net: 201 points are plenty


def test_defaults_and_errors():
    net = sequential(width=5, depth=3)
    assert sequential_layers(net) == [net[1], net[3], net[5]] and sequential_head(net) is net[6]
    with pytest.raises(ValueError, match="not an nn.Sequential"):
        Tracker(Net(), np.zeros((3, 2)))
    net2 = Net()
    with pytest.warns(UserWarning, match="bound left out: no output layer known"):
        Tracker(net2, np.zeros((3, 2)), layers=[net2.act1], target=np.zeros(3), progress=False)
    with pytest.raises(ValueError, match="2 weights for 3 points"):
        Tracker(net, np.zeros(3), np.ones(2))
    with pytest.raises(ValueError, match="layers for 1 model"):
        Tracker([net, sequential(width=5, depth=3)], np.zeros(3), layers=[net[1]])
    with pytest.raises(RuntimeError, match="nothing measured"):
        Tracker(net, np.zeros(3)).close()


def test_schedules():
    default = Schedule()
    assert [s for s in range(1101) if default(s)] == list(range(0, 1001, 10)) + [1050, 1100]
    assert [s for s in range(10) if Schedule(3)(s)] == [0, 3, 6, 9]
    logged = Schedule({"dense_every": 5, "dense_until": 10, "sparse_every": 20, "steps": 50})
    assert [s for s in range(60) if logged(s)] == list(log_schedule(50, 5, 10, 20))
    assert [s for s in range(10) if Schedule([2, 7])(s)] == [0, 2, 7]
    assert [s for s in range(10) if Schedule(lambda s: s > 7)(s)] == [0, 8, 9]


def test_a_diverged_model_is_recorded_and_the_others_go_on(tmp_path, one_thread):
    nets = [sequential(seed=s) for s in (0, 1)]
    x, w = quadrature.gauss_legendre_1d(-1.0, 1.0, 40)
    tracker = Tracker(nets, x, w, schedule=2, seeds=[3, 4], out=tmp_path / "runs/d/base")
    for step in range(11):
        if step == 5:
            with torch.no_grad():
                nets[1][0].weight.fill_(float("nan"))
        tracker.step(step, [1 / (step + 1)] * 2)  # the loss looks fine: the features give it away
    tracker.close()
    info = json.loads((tmp_path / "runs/d/base/run.json").read_text())
    assert info["status"] == {"3": "ok", "4": "diverged at step 6"} and info["diverged"]
    m = pd.read_parquet(tmp_path / "runs/d/base/metrics.parquet").set_index(["seed", "step"])
    assert m.loc[4, "eps_rank"].loc[:4].notna().all() and m.loc[4, "eps_rank"].loc[6:].isna().all()
    assert m.loc[3, "eps_rank"].notna().all() and m["rel_l2"].isna().all()  # no target: no error
    frame = audit.evaluate_runs([tmp_path / "runs/d/base"])
    assert set(frame["claim"]) == {"A1", "A2", "A5"}  # no bound recorded: A3 is left out
    assert (audit.overall(frame)["verdict"] == "INCONCLUSIVE").all()  # one healthy seed
    assert "excluded (diverged): base/seed4" in frame["detail"].iloc[0]


def test_audit_of_given_runs_picks_the_claims_their_data_can_test(tmp_path):
    x, w = quadrature.trapezoid_1d(-1.0, 1.0, 21)
    for name, depth in (("shallow", 1), ("deep", 2)):
        tracker = Tracker([sequential(depth=depth, seed=s) for s in (0, 1)], x, w, schedule=1, out=tmp_path / name)
        for step in range(6):
            tracker.step(step)  # no loss
        tracker.close()
    runs = audit.load_given_runs([tmp_path / "shallow", tmp_path / "deep"])
    assert audit.run_claims(runs[:1]) == ["A1"] and audit.run_claims(runs[1:]) == ["A1", "A5"]
    with pytest.raises(cfgmod.ConfigError, match="are both .*/shallow"):  # two runs of one experiment and variant
        audit.load_given_runs([tmp_path / "shallow", tmp_path / "shallow"])
    res = subprocess.run(
        [sys.executable, "-m", "staircase", "audit", "--runs", str(tmp_path / "nothing")],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 2 and "is not a run directory" in res.stderr
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "staircase",
            "audit",
            "--runs",
            str(tmp_path / "deep"),
            "--set",
            "analysis={loss_window: 0}",
        ],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 2 and "analysis.loss_window" in res.stderr


@pytest.mark.gpu
@needs_cuda
def test_cuda_tracker_matches_cpu(tmp_path):
    x, w = quadrature.trapezoid_1d(-1.0, 1.0, 101)
    y = np.sin(3 * x)
    spectra = {}
    for device in ("cpu", "cuda"):
        net = sequential(width=16).to(device)
        tracker = Tracker(net, x, w, target=y, out=tmp_path / device)
        tracker.step(0, torch.tensor(0.5, device=device))
        spectra[device] = tracker.rec.spectra[0][-1]
        assert tracker.device.startswith(device)
        assert np.isfinite(tracker.rec.scalars["eps_bound"][0]).all()
    big = spectra["cpu"] > 1e-6
    np.testing.assert_allclose(spectra["cuda"][big], spectra["cpu"][big], rtol=1e-4)


# ---- models that are not an nn.Sequential (issue 24) ---------------------------------------------
class Residual(nn.Module):
    """A residual block with a functional activation (torch.tanh in forward), then the output layer."""

    def __init__(self, width=10, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.inp, self.mid, self.head = nn.Linear(1, width), nn.Linear(width, width), nn.Linear(width, 1)

    def forward(self, x):
        h = torch.tanh(self.inp(x))
        return self.head(h + torch.tanh(self.mid(h)))


def residual_features(net, x):
    """Residual's hidden features, computed as its forward does: the documented recipe."""
    h = torch.tanh(net.inp(x))
    return {"h": h, "block": h + torch.tanh(net.mid(h))}


class SharedAct(nn.Module):
    """One activation module used by both hidden layers."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.l1, self.l2, self.head, self.act = nn.Linear(1, 8), nn.Linear(8, 8), nn.Linear(8, 1), nn.Tanh()

    def forward(self, x):
        return self.head(self.act(self.l2(self.act(self.l1(x)))))


class Blocks(nn.Module):
    """Residual blocks in a ModuleList, tracked as whole blocks."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.inp = nn.Linear(1, 8)
        self.blocks = nn.ModuleList(nn.Sequential(nn.Linear(8, 8), nn.Tanh()) for _ in range(2))
        self.head = nn.Linear(8, 1)

    def forward(self, x):
        h = torch.tanh(self.inp(x))
        for block in self.blocks:
            h = h + block(h)
        return self.head(h)


def gram_spectrum(features: torch.Tensor, w: np.ndarray) -> np.ndarray:
    """The sorted Gram spectrum of (N, n) features, computed here by hand, in float64."""
    phi = features.detach().double().numpy()
    return np.sort(np.linalg.eigvalsh(phi.T @ (w[:, None] * phi)))[::-1]


def test_a_residual_model_with_a_functional_activation_is_tracked_with_its_bound(tmp_path, one_thread):
    x, w = quadrature.trapezoid_1d(-1.0, 1.0, 41)
    xt = torch.tensor(x, dtype=torch.float32)[:, None]
    net = Residual()
    out = tmp_path / "runs/res/base"
    with Tracker(net, x, w, layers=residual_features, output_layer=net.head, target=np.sin(3 * x), out=out) as tr:
        tr.step(0, 0.5)
    info = json.loads((out / "run.json").read_text())
    assert info["config"]["model"]["layers"] == ["h", "block"] and info["complete"] and info["bound_note"] is None
    with torch.no_grad():
        expected = residual_features(net, xt)
    for layer, name in enumerate(("h", "block")):
        np.testing.assert_allclose(tr.rec.spectra[0][layer][0], gram_spectrum(expected[name], w), rtol=1e-5, atol=1e-9)
    m = pd.read_parquet(out / "metrics.parquet")
    assert m["eps_bound"].notna().all() and (m["eps_bound"] <= m["error_sq"]).all() and m["rel_l2"].notna().all()


def test_a_residual_sum_after_the_last_tracked_module_leaves_the_bound_out_with_a_note(tmp_path, one_thread):
    x, w = quadrature.trapezoid_1d(-1.0, 1.0, 41)
    nets = [Blocks() for _ in range(2)]
    for i, net in enumerate(nets):
        torch.manual_seed(i)
        net.head.reset_parameters()
    out = tmp_path / "runs/blocks/act"
    layers = [[net.blocks[0][1], net.blocks[1][1]] for net in nets]  # the Tanh modules: head reads h + tanh(...)
    with pytest.warns(UserWarning, match="does not read the last tracked layer"):
        with Tracker(
            nets, x, w, layers=layers, target=np.sin(3 * x), output_layer=[n.head for n in nets], out=out
        ) as tr:
            for step in range(6):
                tr.step(step, [0.1, 0.1])
    info = json.loads((out / "run.json").read_text())
    assert "bound left out" in info["bound_note"] and info["complete"]
    m = pd.read_parquet(out / "metrics.parquet")
    assert m["eps_bound"].isna().all() and m["rel_l2"].notna().all()  # the error is known, the bound is not
    assert "A3" not in audit.run_claims(audit.load_given_runs([out]))
    res = subprocess.run(
        [sys.executable, "-m", "staircase", "audit", "--runs", out, "--set", "analysis.null_samples=50"],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0 and "bound left out" in res.stdout, res.stderr
    assert "bound left out" in (out / "audit/claims.md").read_text()


def test_layers_named_by_path_pattern_and_call(tmp_path, one_thread):
    x = np.linspace(-1, 1, 21)
    xt = torch.tensor(x, dtype=torch.float32)[:, None]
    blocks = Blocks()
    tracker = Tracker(blocks, x, layers="blocks.*", progress=False, out=tmp_path / "b")
    assert tracker.layer_names == ["blocks.0", "blocks.1"]
    with torch.no_grad():
        h0 = torch.tanh(blocks.inp(xt))
        h1 = h0 + blocks.blocks[0](h0)
        torch.testing.assert_close(tracker.hidden(x)[1][0], blocks.blocks[1](h1))  # a block's own output
    shared = SharedAct()
    with pytest.raises(ValueError, match=r"'act' ran twice in one forward pass .*layers=\['act#0', 'act#1'"):
        Tracker(shared, x, layers=["act"], progress=False).step(0)
    tracker = Tracker(
        shared, x, layers=["act#0", "act#1"], output_layer=shared.head, target=np.sin(3 * x), out=tmp_path / "s"
    )
    tracker.step(0)
    with torch.no_grad():
        a0 = torch.tanh(shared.l1(xt))
        a1 = torch.tanh(shared.l2(a0))
    w = np.full(21, 1 / 21)
    np.testing.assert_allclose(tracker.rec.spectra[0][0][0], gram_spectrum(a0, w), rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(tracker.rec.spectra[0][1][0], gram_spectrum(a1, w), rtol=1e-5, atol=1e-9)
    assert tracker.bound_note is None and np.isfinite(tracker.rec.scalars["eps_bound"][0]).all()
    with pytest.raises(ValueError, match="has no module 'blocks.9'"):
        Tracker(blocks, x, layers=["blocks.9"])
    with pytest.raises(ValueError, match="matches no module path"):
        Tracker(blocks, x, layers="nothing.*")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(eps=1e-3), r"eps=0.001 is one number: eps is a list \(eps=\[0.001\]\)"),
        (dict(eps="small"), "eps='small': expected a list of positive numbers"),
        (dict(schedule=0.5), r"schedule=0.5: give None .* an int k \(every k steps\)"),
        (dict(schedule={"every": 5}), r"schedule has unknown key\(s\) \['every'\]"),
        (dict(main_eps=[1e-3]), r"main_eps=\[0.001\]: one positive number"),
        (dict(layers=nn.Tanh()), "is not a module of the model|give a list of modules"),
    ],
)
def test_argument_errors_are_one_line(kwargs, message):
    with pytest.raises(ValueError, match=message) as err:
        Tracker(sequential(), np.zeros(3), progress=False, **kwargs)
    assert "\n" not in str(err.value)


# ---- crash safety ------------------------------------------------------------------------------
def test_an_exception_inside_with_leaves_a_readable_incomplete_run_the_audit_notes(tmp_path, one_thread):
    x, w = quadrature.trapezoid_1d(-1.0, 1.0, 41)
    nets = [sequential(seed=s) for s in (0, 1)]
    out = tmp_path / "runs/crash/base"
    with pytest.raises(KeyboardInterrupt):  # Ctrl-C in the loop
        with Tracker(nets, x, w, schedule=2, out=out, progress=False, save_every_s=3600) as tracker:
            for step in range(41):
                tracker.step(step, [1 / (step + 1)] * 2)
                if step == 30:
                    raise KeyboardInterrupt
    info = json.loads((out / "run.json").read_text())
    assert info["complete"] is False and info["stopped"] == "interrupted by KeyboardInterrupt after step 30"
    m = pd.read_parquet(out / "metrics.parquet")
    assert sorted(m["step"].unique()) == list(range(0, 31, 2))  # all 16 measurements, none lost
    res = subprocess.run(
        [sys.executable, "-m", "staircase", "audit", "--runs", out, "--set", "analysis.null_samples=50"],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr
    assert "is incomplete (interrupted by KeyboardInterrupt after step 30)" in res.stdout
    claims_md = (out / "audit/claims.md").read_text()
    assert "is incomplete" in claims_md
    assert "scale **" not in claims_md and "../figures" not in claims_md  # a tracker's run has neither
    assert set(pd.read_csv(out / "audit/claims.csv")["claim"]) == {"A1", "A2", "A5"}


def test_measurements_reach_the_disk_within_the_interval(tmp_path, one_thread):
    out = tmp_path / "runs/live/base"
    tracker = Tracker(sequential(), np.linspace(-1, 1, 21), schedule=1, out=out, progress=False, save_every_s=0)
    for step in range(3):
        tracker.step(step, 0.1)
        on_disk = pd.read_parquet(out / "metrics.parquet")
        assert list(on_disk["step"]) == list(range(step + 1))  # every measurement, at once
    assert json.loads((out / "run.json").read_text())["complete"] is False
    slow = Tracker(sequential(), np.linspace(-1, 1, 21), schedule=1, out=tmp_path / "slow", progress=False)
    for step in range(3):
        slow.step(step, 0.1)
    assert list(pd.read_parquet(tmp_path / "slow/metrics.parquet")["step"]) == [0]  # the first, then every 5 s
    tracker.close(), slow.close()
    assert json.loads((out / "run.json").read_text())["complete"] is True


SCRIPT = """
import numpy as np
from torch import nn
from staircase import Tracker
net = nn.Sequential(nn.Linear(1, 6), nn.Tanh(), nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 1))
tracker = Tracker(net, np.linspace(-1, 1, 11), schedule=1, out="run/mine/base", save_every_s=3600)
for step in range(5):
    tracker.step(step, 0.5)
# no close(): the interpreter's exit writes the run
"""


def test_a_forgotten_close_still_writes_the_run_with_the_scripts_own_commit(tmp_path):
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(tmp_path)]
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "train.py").write_text(SCRIPT)
    subprocess.run([*git, "add", "train.py"], check=True)
    subprocess.run([*git, "commit", "-qm", "the user's script"], check=True)
    commit = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    res = subprocess.run([sys.executable, "train.py"], cwd=tmp_path, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "mine/base" in res.stderr and "5/" not in res.stderr  # the progress line, without a total
    info = json.loads((tmp_path / "run/mine/base/run.json").read_text())
    assert info["complete"] is False and info["stopped"] == "the script ended without close() after step 4"
    assert info["git_commit"] == commit and info["git_dirty"] is False and info["script"].endswith("train.py")
    assert info["package_git_commit"] != commit
    assert len(pd.read_parquet(tmp_path / "run/mine/base/metrics.parquet")) == 5


def test_a_rerun_into_the_same_folder_leaves_no_stale_audit(tmp_path, one_thread):
    out = tmp_path / "runs/again/base"
    for _ in range(2):
        tracker = Tracker([sequential(seed=s) for s in (0, 1)], np.linspace(-1, 1, 21), schedule=1, out=out)
        assert not (out / "audit").exists()
        for step in range(4):
            tracker.step(step, [0.1, 0.1])
        tracker.close()
        audit.run_audit({}, out, out / "audit", runs=[str(out)])
        assert (out / "audit/claims.csv").exists()


def test_the_progress_line_shows_step_loss_and_rank(tmp_path, capsys):
    tracker = Tracker(sequential(), np.linspace(-1, 1, 21), schedule=1, out=tmp_path / "p", total_steps=3)
    for step in range(4):
        tracker.step(step, 0.25)
    tracker.close()
    err = capsys.readouterr().err
    assert "/p: " in err and "3/3" in err and "loss=0.25" in err and "eps_rank=" in err
    quiet = Tracker(sequential(), np.linspace(-1, 1, 21), out=tmp_path / "q", progress=False)
    quiet.step(0, 0.25)
    quiet.close()
    assert capsys.readouterr().err == ""


def test_the_tracker_pages_residual_example_runs_as_documented(tmp_path, monkeypatch, one_thread):
    """docs/tracker.md's own code block (the README's example is included there, and tested above)."""
    monkeypatch.chdir(tmp_path)
    blocks = re.findall(r"```python\n(.*?)```", (REPO / "docs/tracker.md").read_text(), re.S)
    assert len(blocks) == 1
    exec(compile(blocks[0], "docs/tracker.md", "exec"), {})
    info = json.loads((tmp_path / "results/runs/res/base/run.json").read_text())
    assert info["complete"] and info["bound_note"] is None and info["config"]["model"]["layers"] == ["h", "block"]
    metrics = pd.read_parquet(tmp_path / "results/runs/res/base/metrics.parquet")
    assert metrics["eps_bound"].notna().all() and (metrics["eps_bound"] <= metrics["error_sq"]).all()
