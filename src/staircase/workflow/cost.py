"""What a run of the workflow will cost, projected before it starts from measured throughput.

``snakemake --config scale=full`` (and its dry run) prints :func:`describe` of :func:`project`
before any job starts: the training jobs, their model-steps (seeds x steps, summed), and the
projected CPU time of training, of the measurements, of process start-up and of the notebooks
and audit; GPU time where a GPU's throughput has been measured.

The throughput model
--------------------
Every training job of paper A is a stack of S plain-MLP models (width W, depth L, input dimension
d) trained for T steps on N points a step (the batch, or all training points), measured M times
on P points (rank and error grids and the training points). On one CPU thread its cost is

    train CPU   = T * (a_f + b_f * S * N * r * W * (W (L - 1) + d + 1))
    measure CPU = M * (c + e * S * (P + N r) * W * (W (L - 1) + d + 1) + g * S * L * W^3)

where f is the task family (``fit``: r = 1; ``pde``: r = d + 2 rows of the forward Laplacian), the
products are the multiply-adds of one forward pass and W^3 is the eigensolve of a layer's Gram
matrix. The six constants are fitted by non-negative least squares on relative errors to the
measured jobs of ``throughput.csv`` (beside this file): one row per training job of a measured run,
with its sizes and the ``train_cpu_s`` and ``measure_cpu_s`` that ``run.json`` reports
(``staircase cost --record results/small/runs/*/*`` adds rows). Methods the model does not know (other
architectures, L-BFGS's line search, schedules) are corrected per job: when the table holds a
measurement of the same experiment and variant, the projection is multiplied by the measured /
modelled ratio of the one closest in size (a job measured at its own size is reproduced).

Papers B and C's studies (one job per study, every cell and seed stacked; their run.json has wall
time only) are scaled from the same study's measured wall time, of the measured run closest in size
per step (the table holds short runs at the full scale's size), by the ratio of models x steps x
points x width^2. Each job also costs :data:`STARTUP_CPU_S` of process start-up (importing torch),
each figure or table :data:`NOTEBOOK_CPU_S` (papermill, kernel start, HTML copy), and the tests of
the notebooks and the audit :data:`ANALYSIS_CPU_S_PER_SEED_MEASUREMENT` per seed and measurement.

GPU: a projection needs measured GPU throughput (rows with ``device`` cuda); the table has none yet
(PERFORMANCE.md: no GPU was available to measure), so none is printed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import nnls

from staircase.problems import make_task
from staircase.problems.pde import PDETask
from staircase.training import budget
from staircase.workflow import config as cfgmod
from staircase.workflow import lowrank_settings

THROUGHPUT_PATH = Path(__file__).with_name("throughput.csv")
# measured on the 2-core CI machine (docs/running.md, "Scale"):
# `python -c "import staircase.training.trainer, staircase.cli"`,
# user + system CPU, three runs: 2.0-2.1 s
STARTUP_CPU_S = 2.0
# a figure or table: its papermill job and its HTML copy, about 12 s of CPU each at the default scale
# (PERFORMANCE.md, "Wall time of the default-scale pipeline")
NOTEBOOK_CPU_S = 24.0
# the A1-A3 tests per healthy seed and measurement at 400 null samples: `staircase audit` on the full-scale
# fit1d run took 10.0 s of CPU for 8 seeds x 681 measurements (1.8e-3; docs/running.md, "Scale"); the notebooks
# (staircase, summary, universality or regime table) test each seed about twice more: 3 x 1.8e-3
ANALYSIS_CPU_S_PER_SEED_MEASUREMENT = 5.4e-3
COLUMNS = [
    "kind",
    "name",
    "scale",
    "device",
    "family",
    "seeds",
    "steps",
    "width",
    "depth",
    "dim",
    "points",
    "rows",
    "eval_points",
    "measurements",
    "train_cpu_s",
    "measure_cpu_s",
    "wall_s",
    "git_commit",
]


@dataclass
class Job:
    """One training job's sizes (paper A: :func:`paper_a_job`; papers B, C: :func:`lowrank_job`)."""

    kind: str  # "paper_a" | "rank_collapse" | "alignment"
    name: str  # experiment/variant or family/study
    family: str  # fit | pde (paper A); the family for papers B, C
    seeds: int  # stacked models (papers B, C: cells x seeds)
    steps: int
    width: int
    depth: int
    dim: int = 1
    points: int = 0  # points per step
    rows: int = 1  # forward rows per point (PDE: value, gradient, Laplacian)
    eval_points: int = 0
    measurements: int = 0
    part: int | None = None  # a rank_collapse study split by cells: which cell this job trains

    @property
    def label(self) -> str:
        """The job as the projection names it: its name, and its part if it is one."""
        return self.name if self.part is None else f"{self.name}/part{self.part}"

    @property
    def forward(self) -> float:
        """Multiply-adds of one model's forward pass at one point."""
        return self.width * (self.width * (self.depth - 1) + self.dim + 1)

    @property
    def model_steps(self) -> int:
        return self.seeds * self.steps


def paper_a_job(cfg: dict) -> Job:
    """The sizes of one resolved paper-A run config (builds the task's point sets: cheap)."""
    params = dict(cfg["task"])
    task = make_task(params.pop("name"), **params)
    data = task.train_arrays()
    per_step = int(cfg["train"].get("batch_size") or task.batch_points(data))
    pde = isinstance(task, PDETask)
    rank_x, _ = task.rank_points()
    evaluated = len(np.unique(np.concatenate([rank_x, task.error_points()]), axis=0))
    steps = budget.cap(cfg["train"])  # a budget by progress: projected at its cap, the most it may cost
    return Job(
        kind="paper_a",
        name=f"{cfg['experiment']}/{cfg['variant']}",
        family="pde" if pde else "fit",
        seeds=len(cfg["seeds"]),
        steps=steps,
        width=int(cfg["model"]["width"]),
        depth=int(cfg["model"]["depth"]),
        dim=int(task.d),
        points=per_step,
        rows=int(task.d) + 2 if pde else 1,
        eval_points=evaluated + task.batch_points(data),
        measurements=len(budget.measure_steps(cfg["train"], cfg["log"])),
    )


def _lowrank_points(cfg: dict) -> int:
    data = cfg.get("data", {})
    if "train_points" in data:
        return int(data["train_points"])
    if "per_class" in data:
        return int(data["per_class"]) * int(data.get("classes", 2))
    return int(data.get("points", 360))  # digits 0 vs 1: 360 images


def lowrank_job(cfg: dict, part: int | None = None) -> Job:
    """A paper B or C study's job; with ``part``, one of a split study's jobs (one lambda x noise cell)."""
    cells = len(cfg.get("weight_decay", [0])) * len((cfg.get("data") or {}).get("noise", [0]))
    if part is not None:
        cells = 1
    model = cfg["model"]
    depth = int(model.get("depth", model.get("relu_layers", 0) + model.get("linear_layers", 0)))
    return Job(
        kind=cfg["family"],
        name=f"{cfg['family']}/{cfg['study']}",
        family=cfg["family"],
        seeds=cells * len(cfg["seeds"]),
        steps=int(cfg["train"]["steps"]),
        width=int(model["width"]),
        depth=depth,
        points=_lowrank_points(cfg),
        part=part,
    )


def lowrank_jobs(config: dict, family: str) -> list[Job]:
    """The training jobs of a family's studies: one per study, or one per cell of a split study
    (its merge, seconds of reading parquet, is not a training job)."""
    out = []
    for study, cfg in lowrank_settings.studies(config, family).items():
        parts = lowrank_settings.parts(config, family, study)
        out += [lowrank_job(cfg, k) for k in range(parts)] if parts else [lowrank_job(cfg)]
    return out


def jobs(config: dict) -> list[Job]:
    """Every training job of a validated config at its scale."""
    out = [
        paper_a_job(cfg)
        for name in cfgmod.enabled_experiments(config)
        for cfg in cfgmod.variants(config, name).values()
    ]
    for family in lowrank_settings.FAMILIES:
        out += lowrank_jobs(config, family)
    return out


# ---- the measured table and the fitted model ----------------------------------------------------------
def load_table(path: Path | str = THROUGHPUT_PATH) -> pd.DataFrame:
    path = Path(path)
    return pd.read_csv(path) if path.exists() else pd.DataFrame(columns=COLUMNS)


def record(run_dir: Path | str) -> dict:
    """One row of the throughput table from a finished run's run.json (paper A or B/C)."""
    run_dir = Path(run_dir)
    info = json.loads((run_dir / "run.json").read_text())
    cfg = info["config"]
    if "family" in cfg and "study" in cfg:
        job = lowrank_job(cfg)
        train_cpu, measure_cpu = np.nan, np.nan
    else:
        job = paper_a_job(cfg)
        train_cpu, measure_cpu = info.get("train_cpu_s"), sum((info.get("measure_cpu_s") or {}).values())
    row = {k: getattr(job, k) for k in COLUMNS if hasattr(job, k)}
    row.update(
        scale=cfg.get("scale", "small"),
        device=info.get("device", "cpu"),
        train_cpu_s=train_cpu,
        measure_cpu_s=measure_cpu,
        wall_s=info.get("wall_time_s"),
        git_commit=str(info.get("git_commit", ""))[:7],
    )
    return row


def _nnls_relative(features: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Non-negative least squares of target ~ features @ coef on relative errors."""

    scale = 1.0 / np.maximum(target, 1e-12)
    norms = np.maximum(np.abs(features).max(axis=0), 1e-300)
    coef, _ = nnls(features * scale[:, None] / norms, np.ones_like(target))
    return coef / norms


def _train_features(t: pd.DataFrame) -> np.ndarray:
    work = t["seeds"] * t["points"] * t["rows"] * t["width"] * (t["width"] * (t["depth"] - 1) + t["dim"] + 1)
    return np.stack([np.ones(len(t)), work], axis=1).astype(float)


def _measure_features(t: pd.DataFrame) -> np.ndarray:
    forward = t["width"] * (t["width"] * (t["depth"] - 1) + t["dim"] + 1)
    work = t["seeds"] * (t["eval_points"] + t["points"] * t["rows"]) * forward
    eig = t["seeds"] * t["depth"] * t["width"] ** 3
    return np.stack([np.ones(len(t)), work, eig], axis=1).astype(float)


@dataclass
class Model:
    """The fitted constants (see the module docstring) and the rows they were fitted on."""

    train: dict[str, np.ndarray]  # family -> (a, b), CPU seconds per step
    measure: np.ndarray  # (c, e, g), CPU seconds per measurement
    table: pd.DataFrame
    device: str = "cpu"

    def _frame(self, job: Job) -> pd.DataFrame:
        return pd.DataFrame([{k: getattr(job, k) for k in COLUMNS if hasattr(job, k)}])

    def modelled(self, job: Job) -> tuple[float, float]:
        """(train, measure) CPU seconds of a paper-A job by the model alone."""
        t = self._frame(job)
        per_step = float(_train_features(t)[0] @ self.train[job.family])
        per_measure = float(_measure_features(t)[0] @ self.measure)
        return job.steps * per_step, job.measurements * per_measure

    def correction(self, job: Job) -> float:
        """Measured / modelled total of the same experiment and variant in the table, of its
        measured run closest in size (modelled total) to the job, or 1 without one: what the model
        does not know about this job's method (a job measured at its own size is reproduced)."""
        same = self.table[(self.table["kind"] == "paper_a") & (self.table["name"] == job.name)]
        same = same.dropna(subset=["train_cpu_s", "measure_cpu_s"])
        if same.empty:
            return 1.0
        target = max(sum(self.modelled(job)), 1e-9)
        best, ratio = np.inf, 1.0
        for row in same.itertuples():
            sizes = {k: getattr(row, k) for k in COLUMNS if k in Job.__dataclass_fields__}
            modelled = max(sum(self.modelled(Job(**sizes))), 1e-9)
            if abs(np.log(modelled / target)) < best:
                best, ratio = abs(np.log(modelled / target)), (row.train_cpu_s + row.measure_cpu_s) / modelled
        return float(ratio)

    def project(self, job: Job) -> tuple[float, float]:
        if job.kind == "paper_a":
            factor = self.correction(job)
            train, measure = self.modelled(job)
            return train * factor, measure * factor
        same = self.table[(self.table["name"] == job.name) & self.table["wall_s"].notna()]
        if same.empty:
            return float("nan"), 0.0
        # the measured run closest in size per step (a short run at the job's own size is best)
        per_step = (same["seeds"] * same["points"] * same["width"] ** 2).to_numpy(float)
        target = job.seeds * job.points * job.width**2
        row = same.iloc[int(np.argmin(np.abs(np.log(per_step / target))))]
        ratio = target * job.steps / (row.seeds * row.points * row.width**2 * row.steps)
        return float(row.wall_s) * ratio, 0.0


def fit(table: pd.DataFrame | None = None, device: str = "cpu", exclude_scale: str | None = None) -> Model | None:
    """Fit the model on the table's paper-A rows of ``device`` (None without enough rows);
    ``exclude_scale`` leaves out rows of one scale (to validate a projection on them)."""
    table = load_table() if table is None else table
    rows = table[(table["device"] == device) & (table["kind"] == "paper_a")]
    if exclude_scale is not None:
        rows = rows[rows["scale"] != exclude_scale]
    rows = rows.dropna(subset=["train_cpu_s", "measure_cpu_s"])
    train = {}
    for family in ("fit", "pde"):
        part = rows[rows["family"] == family]
        if len(part) < 2:
            return None
        train[family] = _nnls_relative(_train_features(part), (part["train_cpu_s"] / part["steps"]).to_numpy(float))
    measure = _nnls_relative(_measure_features(rows), (rows["measure_cpu_s"] / rows["measurements"]).to_numpy(float))
    keep = table if exclude_scale is None else table[table["scale"] != exclude_scale]
    return Model(train=train, measure=measure, table=keep.reset_index(drop=True), device=device)


# ---- the projection ---------------------------------------------------------------------------------
@dataclass
class Projection:
    jobs: list[Job]
    train_cpu_s: float
    measure_cpu_s: float
    startup_cpu_s: float
    lowrank_s: float
    analysis_cpu_s: float
    notebooks: int
    per_job: pd.DataFrame
    gpu_s: float | None
    unprojected: list[str]

    @property
    def cpu_s(self) -> float:
        return self.train_cpu_s + self.measure_cpu_s + self.startup_cpu_s + self.lowrank_s + self.analysis_cpu_s


def project(config: dict, notebooks: int = 0, table: pd.DataFrame | None = None) -> Projection:
    """The cost of the training jobs of ``config`` (at its scale) and of ``notebooks`` figure and
    table jobs, from the measured table (:func:`fit`)."""
    found = jobs(config)
    model = fit(table)
    null = (config.get("analysis") or {}).get("null_samples", 400)
    rows, unprojected = [], []
    for job in found:
        train, measure = model.project(job) if model is not None else (float("nan"), 0.0)
        if not np.isfinite(train):
            unprojected.append(job.label)
        rows.append(dict(job=job.label, kind=job.kind, model_steps=job.model_steps, train_s=train, measure_s=measure))
    per_job = pd.DataFrame(rows)
    paper_a = per_job[per_job["kind"] == "paper_a"]
    seed_measurements = sum(j.seeds * j.measurements for j in found if j.kind == "paper_a")
    gpu_model = fit(table, device="cuda")
    gpu = None
    if gpu_model is not None:
        gpu = float(sum(sum(gpu_model.project(j)) for j in found if j.kind == "paper_a"))
    return Projection(
        jobs=found,
        train_cpu_s=float(np.nansum(paper_a["train_s"])),
        measure_cpu_s=float(np.nansum(paper_a["measure_s"])),
        startup_cpu_s=STARTUP_CPU_S * len(found),
        lowrank_s=float(np.nansum(per_job.loc[per_job["kind"] != "paper_a", "train_s"])),
        analysis_cpu_s=NOTEBOOK_CPU_S * notebooks
        + ANALYSIS_CPU_S_PER_SEED_MEASUREMENT * seed_measurements * null / 400,
        notebooks=notebooks,
        per_job=per_job,
        gpu_s=gpu,
        unprojected=unprojected,
    )


def _duration(seconds: float) -> str:
    if not np.isfinite(seconds):
        return "?"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def job_seconds(p: Projection) -> np.ndarray:
    """Each training job's projected CPU seconds on one core (start-up included; unprojected: 0)."""
    total = np.nan_to_num((p.per_job["train_s"] + p.per_job["measure_s"]).to_numpy(float))
    return total + STARTUP_CPU_S


def makespan(durations, cores: int) -> float:
    """Wall time of independent jobs on ``cores`` one-thread workers, by list scheduling longest first
    (each job to the worker free first): at least the longest job and the total / cores, and within
    4/3 of the best schedule (Graham's bound)."""
    loads = np.zeros(max(int(cores), 1))
    for seconds in sorted(durations, reverse=True):
        loads[np.argmin(loads)] += seconds
    return float(loads.max()) if len(loads) else 0.0


def describe_makespan(p: Projection, cores=(2, 16)) -> str:
    """The last lines of a dry run at full scale: the projected wall time of the training jobs on each
    number of cores, and the longest job, which no number of cores shortens."""
    durations = job_seconds(p)
    longest = int(np.argmax(durations)) if len(durations) else None
    lines = ["projected makespan of the training jobs (list scheduling, longest first; staircase.workflow.cost):"]
    lines += [f"  on {n} cores: {_duration(makespan(durations, n))}" for n in cores]
    if longest is not None:
        lines.append(f"  the longest job: {p.per_job['job'].iloc[longest]} {_duration(durations[longest])} on one core")
    return "\n".join(lines)


def describe(p: Projection, cores: int | None = None) -> str:
    """The short block printed before a full-scale run."""
    model_steps = sum(j.model_steps for j in p.jobs)
    paper_a = [j for j in p.jobs if j.kind == "paper_a"]
    heaviest = p.per_job.assign(total=p.per_job["train_s"] + p.per_job["measure_s"]).nlargest(3, "total")
    lines = [
        f"projected cost at this scale (staircase.workflow.cost; measured throughput {THROUGHPUT_PATH.name}):",
        f"  training jobs: {len(p.jobs)} ({len(paper_a)} of paper A, {len(p.jobs) - len(paper_a)} of papers B/C), "
        f"{model_steps / 1e6:.2f} M model-steps (seeds x steps), {p.notebooks} figure/table notebooks",
        f"  CPU, one thread per job: training {_duration(p.train_cpu_s)}, measurements {_duration(p.measure_cpu_s)}, "
        f"papers B/C {_duration(p.lowrank_s)}, start-up {_duration(p.startup_cpu_s)}, "
        f"notebooks and audit {_duration(p.analysis_cpu_s)}: total {_duration(p.cpu_s)}"
        + (f" (training: {_duration(makespan(job_seconds(p), cores))} of wall time on {cores} cores)" if cores else ""),
        "  heaviest jobs: " + ", ".join(f"{r.job} {_duration(r.total)}" for r in heaviest.itertuples()),
        "  GPU: "
        + (
            f"{_duration(p.gpu_s)} of training and measurement"
            if p.gpu_s is not None
            else "not projected: no GPU throughput has been measured (PERFORMANCE.md, GPU)"
        ),
    ]
    if p.unprojected:
        lines.append(f"  not projected (no measured run to scale from): {', '.join(p.unprojected)}")
    return "\n".join(lines)


__all__ = [
    "Job",
    "Model",
    "Projection",
    "describe",
    "describe_makespan",
    "fit",
    "job_seconds",
    "jobs",
    "load_table",
    "makespan",
    "project",
    "record",
]
