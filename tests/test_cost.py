"""The projected cost of a run (staircase.workflow.cost): the jobs it resolves, the fitted throughput model,
and the block printed before a full-scale run."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import yaml
from helpers import REPO, snakemake

from staircase.core.schedule import log_schedule
from staircase.training import trainer as train
from staircase.workflow import config as cfgmod
from staircase.workflow import cost

TINY = REPO / ".test" / "config" / "config.yaml"


def _config(scale="small"):
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["scale"] = scale
    return config


def test_jobs_resolve_the_sizes_of_every_training_job():
    jobs = {j.name: j for j in cost.jobs(_config("full"))}
    fit = jobs["fit1d/base"]
    assert (fit.family, fit.seeds, fit.steps, fit.width, fit.depth, fit.points, fit.rows) == (
        "fit",
        8,
        30000,
        100,
        3,
        400,
        1,
    )
    assert fit.measurements == len(log_schedule(30000, 10, 1000, 50)) and fit.model_steps == 240000
    pde = jobs["poisson1d/activation-tanh"]
    assert (pde.family, pde.points, pde.rows, pde.dim) == ("pde", 1000, 3, 1)
    sgd = next(j for n, j in jobs.items() if n.startswith("regime_fit1d/sgd"))
    assert sgd.points == 32  # a mini-batch is what a step costs
    # split by cells at full scale (docs/full-scale.md): one job per lambda, its 5 seeds stacked
    parts = [j for j in cost.jobs(_config("full")) if j.name == "rank_collapse/digits_lambda"]
    assert [j.part for j in parts] == list(range(11)) and {j.seeds for j in parts} == {5}
    whole = {j.name: j for j in cost.jobs(_config())}["rank_collapse/digits_lambda"]
    assert whole.part is None and whole.seeds == 7 * 2  # at the default scale every (lambda, seed) cell stacked


def _table(rows):
    return pd.DataFrame(rows, columns=cost.COLUMNS)


def _row(job, train_s, measure_s, scale="small", device="cpu"):
    row = {k: getattr(job, k) for k in cost.COLUMNS if hasattr(job, k)}
    return row | dict(scale=scale, device=device, train_cpu_s=train_s, measure_cpu_s=measure_s, wall_s=train_s)


def test_the_model_recovers_known_constants_and_projects_a_larger_job():
    # jobs whose costs follow the model's form exactly are fitted back to those constants
    rng = np.random.default_rng(0)
    rows, a, b, c, e, g = [], 3e-4, 2e-10, 3e-3, 2e-10, 1.5e-9
    for family, rows_per_point in (("fit", 1), ("pde", 3)):
        for _ in range(6):
            job = cost.Job(
                "paper_a", f"x/{len(rows)}", family, int(rng.integers(1, 4)), 1000, int(rng.choice([20, 40, 60])),
                int(rng.integers(1, 4)), 1, int(rng.integers(50, 800)), rows_per_point, 2000, 100,
            )  # fmt: skip
            t = job.steps * (a + b * job.seeds * job.points * job.rows * job.forward)
            m = job.measurements * (
                c + e * job.seeds * (job.eval_points + job.points * job.rows) * job.forward
                + g * job.seeds * job.depth * job.width**3
            )  # fmt: skip
            rows.append(_row(job, t, m))
    model = cost.fit(_table(rows))
    np.testing.assert_allclose(model.train["fit"], [a, b], rtol=1e-3)
    np.testing.assert_allclose(model.measure, [c, e, g], rtol=1e-3)
    big = cost.Job("paper_a", "y/big", "fit", 8, 30000, 100, 3, 1, 400, 1, 2001, 681)
    train_s, _ = model.modelled(big)
    assert big.forward == 100 * (100 * 2 + 1 + 1)
    assert np.isclose(train_s, 30000 * (a + b * 8 * 400 * big.forward), rtol=1e-3)
    # a job the table measured at another scale is corrected by its measured / modelled ratio
    slow = cost.Job("paper_a", "y/slow", "fit", 2, 1000, 40, 2, 1, 100, 1, 2000, 50)
    t, m = model.modelled(slow)
    model.table = pd.concat([model.table, _table([_row(slow, 3 * t, 3 * m)])], ignore_index=True)
    longer = cost.Job("paper_a", "y/slow", "fit", 2, 5000, 40, 2, 1, 100, 1, 2000, 250)
    assert np.isclose(sum(model.project(longer)), 3 * sum(model.modelled(longer)), rtol=1e-6)


def test_projection_of_the_full_scale_from_the_committed_table():
    projection = cost.project(_config("full"), notebooks=40)
    assert projection.train_cpu_s > 0 and projection.measure_cpu_s > 0 and projection.cpu_s > projection.train_cpu_s
    assert len(projection.jobs) == len(projection.per_job)
    text = cost.describe(projection, cores=2)
    assert text.startswith("projected cost at this scale")
    assert "M model-steps" in text and "GPU:" in text and "wall time on 2 cores" in text
    small = cost.project(_config("small"))
    assert small.train_cpu_s < projection.train_cpu_s / 10


def test_record_reads_a_finished_run(tmp_path):
    cfg = cfgmod.variants(yaml.safe_load(TINY.read_text()), "fit1d")["base"]
    cfg["train"]["steps"] = 20
    train.run(cfg, tmp_path / "run", progress=False)
    row = cost.record(tmp_path / "run")
    info = json.loads((tmp_path / "run/run.json").read_text())
    assert row["name"] == "fit1d/base" and row["steps"] == 20 and row["seeds"] == 2 and row["points"] == 64
    assert row["train_cpu_s"] == info["train_cpu_s"] and row["measurements"] == info["measurements"]


def test_a_full_scale_dry_run_prints_its_projected_cost(tmp_path):
    (tmp_path / "config.yaml").write_text(TINY.read_text())
    res = snakemake(
        "--dry-run", "--cores", "2", "--configfile", str(tmp_path / "config.yaml"), "--config", "scale=full",
        cwd=tmp_path,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    out = res.stdout + res.stderr
    assert "projected cost at this scale" in out and "model-steps" in out
    res = snakemake("--dry-run", "--cores", "2", "--configfile", str(tmp_path / "config.yaml"), cwd=tmp_path)
    assert "projected cost" not in res.stdout + res.stderr  # the default scale says nothing
