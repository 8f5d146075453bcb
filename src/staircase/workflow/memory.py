"""How much memory a training job needs, estimated from its sizes before any job starts.

A job too big for its machine dies in the allocator after minutes of work (depth 10^6 trained a
minute before exhausting 8 GB), or pushes the machine into swap. The configuration check
(``staircase.workflow.config.check``, ``staircase.workflow.lowrank_settings.check``) therefore estimates the peak
memory of every job from its sizes and rejects one that needs more than a job may have:
``job_memory_gb`` in config.yaml, by default (``auto``) the physical memory of the machine that
checks the configuration. ``staircase train``, ``collapse`` and ``align`` check again when the job
starts, against the memory of the machine it runs on.

The estimate is deliberately simple: a fixed part for the interpreter and its libraries, plus the
big arrays a job holds at its peak, each counted as (elements x bytes x a factor for the copies and
temporaries made alongside; a training step and a measurement are not at their peak together). The
factors were calibrated on CPU runs (wide, deep, many-point, 2-D PDE, high-dimensional, L-BFGS and
record-heavy jobs of papers A, B and C, 0.2-2.4 GB above the fixed part) against the measured peak
resident memory, which the estimate exceeds by 0-35 %; the batched loss bound's n x n systems,
added later, were checked on fit1d (width 40-2000), poisson1d (1000), poisson2d (300) and ridge8d (800):
6-70 % above the measured peak (tests/test_config.py keeps a measured job between 1x and 2x).
It counts host memory only: on a GPU the same arrays must also fit the GPU's memory, which is not
checked.
"""

from __future__ import annotations

import os

from staircase.errors import ConfigError

GB = 1e9
MAX_GB = 1e9  # the schema's bound on job_memory_gb (an exabyte); no float overflows to int on the way
RUNTIME_BYTES = 0.5 * GB  # Python, torch, numpy, pandas and pyarrow loaded: measured 0.41 GB
MARGIN = 1.2  # on the arrays: the calibration runs measured 0.8-1.0 times the unmargined estimate


def physical_memory() -> int | None:
    """Bytes of physical memory of this machine (None where the system does not say)."""
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return None


def job_limit(config: dict) -> tuple[int | None, str]:
    """The memory one job may use, in bytes, and where the number comes from (for messages)."""
    setting = config.get("job_memory_gb", "auto")
    if setting == "auto":
        total = physical_memory()
        return total, "memory of this machine"
    return int(min(float(setting), MAX_GB) * GB), "job_memory_gb"


def _fmt(n: float) -> str:
    return f"{n / GB:.3g} GB" if n >= 0.1 * GB else f"{n / 1e6:.3g} MB"


def measurements(steps: int, dense_every: int, dense_until: int, sparse_every: int) -> int:
    """How many steps ``staircase.training.trainer.log_schedule`` measures at, without building the schedule:
    the multiples of dense_every up to min(dense_until, steps), the multiples of sparse_every above
    dense_until, and the last step."""
    top = min(dense_until, steps)
    dense = top // dense_every + 1
    sparse = steps // sparse_every - dense_until // sparse_every if steps > dense_until else 0
    on_grid = (steps % dense_every == 0) if steps <= dense_until else (steps % sparse_every == 0)
    return dense + sparse + (0 if on_grid else 1)


def train_job(cfg: dict) -> dict[str, tuple[float, str]]:
    """Estimated peak bytes of a paper-A training job (``staircase train``) by part:
    {part: (bytes, the settings that size it)}. ``cfg`` is a resolved run config whose task has
    passed its own checks."""
    from staircase.problems import TASKS  # only where a job is sized (see config._check_run_settings)
    from staircase.problems.pde import PDETask

    task_cfg = dict(cfg["task"])
    task = TASKS[task_cfg.pop("name")](**task_cfg)
    counts = task.point_counts()
    n_train, n_rank, n_err = counts["train"], counts["rank"], counts["error"]
    d = task.d
    m, t = cfg["model"], cfg["train"]
    seeds, width, depth = len(cfg["seeds"]), m["width"], m["depth"]
    b = 8 if t.get("dtype", "float32") == "float64" else 4
    # the forward Laplacian carries value, input gradient and Laplacian: d + 2 arrays per layer
    jet = d + 2 if isinstance(task, PDETask) else 1
    d_in = 2 * m.get("fourier_features", 32) if m.get("architecture", "mlp") == "fourier" else d
    layers = depth + (2 if m.get("architecture", "mlp") == "modified_mlp" else 0)  # its two encoder layers
    params = d_in * width + (layers - 1) * (width * width + width) + width + 1
    states = 4 + (2 * (t.get("lbfgs") or {}).get("history", 10) if t["optimizer"] in ("lbfgs", "adam_lbfgs") else 0)
    n_meas = measurements(t["steps"], cfg["log"]["dense_every"], cfg["log"]["dense_until"], cfg["log"]["sparse_every"])
    n_eps = len(cfg["rank"]["eps"])
    points = "task points (train_points, rank_points, interior_points per dimension)"
    return {
        "training": (
            # every layer's activations and what backpropagation keeps of them
            seeds * n_train * width * layers * jet * b * (6 if jet > 1 else 4),
            f"{points} x model.width x model.depth x seeds",
        ),
        "measurement": (
            # every hidden layer at the rank and error points, one layer's features in float64, the
            # bound's least-squares system on the training points
            seeds * (n_rank + n_err) * width * layers * b * 2
            + seeds * n_rank * width * 8 * 3
            + seeds * n_train * (width + 1) * 8 * 4,
            f"{points} x model.width x seeds",
        ),
        "bound": (
            # the loss bound's batched QR, Gram eigenpairs and SVD of the last layer
            # (staircase.core.bounds.loss_lower_bounds): ~6 float64 arrays of
            # max(points, width + 1) x (width + 1) per seed, dominant for wide layers
            seeds * max(n_train, width + 1) * (width + 1) * 8 * 6,
            "model.width^2 x seeds",
        ),
        "gram": (seeds * width * width * 8 * 2, "model.width^2 x seeds"),
        "parameters": (seeds * params * b * states, "model.width^2 x model.depth x seeds"),
        "records": (
            # the spectra of every measurement (stacked again when written), the tidy rank table
            seeds * n_meas * layers * (width * 8 * 3 + (n_eps + 3) * 48 * 3),
            "measurements (train.steps / log.dense_every, log.sparse_every) x model.width x model.depth x seeds",
        ),
        "data": (
            (n_train + n_rank + n_err) * d * 8 * 2 + (n_train + n_err) * 8 * 4,
            f"{points} x input dimension",
        ),
    }


def lowrank_job(family: str, cfg: dict) -> dict[str, tuple[float, str]]:
    """Estimated peak bytes of a paper-B (``rank_collapse``) or paper-C (``alignment``) study job,
    by part, as ``train_job``. ``cfg`` is a resolved study config that passed its checks."""
    data, m, t = cfg["data"], cfg["model"], cfg["train"]
    seeds = len(cfg["seeds"])
    b = 8 if t.get("dtype", "float32") == "float64" else 4
    if family == "rank_collapse":
        n_levels = len(data["noise"]) if isinstance(data.get("noise"), list) else 1
        models = len(cfg["weight_decay"]) * n_levels * seeds
        if data["name"] == "digits":
            n, dim, out = data.get("train_points", 1797), 64, 10
        else:
            n, dim, out = data["classes"] * data["per_class"], data["dim"], data["classes"]
        width, layers = m["width"], m["depth"] + 1
        keys = "model.width x model.depth x weight_decay x data.noise x seeds"
        per_cell_data = n_levels > 1
    else:
        models = seeds
        n, dim = (360, 64) if data["name"] == "digits01" else (data["points"], data["dim"])
        out, width, layers = 1, m["width"], m["relu_layers"] + m["linear_layers"]
        keys = "model.width x (model.relu_layers + model.linear_layers) x seeds"
        per_cell_data = False
    checkpoints = cfg["log"]["checkpoints"] + 1
    params = dim * width + (layers - 2) * width * width + width * out
    # a measurement works in float64 on every layer's input, pre-activation and their gradients;
    # paper B's bound also on each layer's per-sample Delta and the class-centred input
    per_layer = 3 if family == "rank_collapse" else 1
    return {
        "training": (models * n * width * layers * b * 2, f"data points x {keys}"),
        "measurement": (models * n * 8 * (per_layer * width * layers + 4 * dim), f"data points x {keys}"),
        "parameters": (models * params * (b * 4 + 8 * 6), keys),
        "records": (checkpoints * models * layers * (width * 8 + 40 * 8) * 3, f"log.checkpoints x {keys}"),
        "data": (n * dim * 8 * 4 + (models * n * dim * (8 + b) if per_cell_data else 0), "data points x data.dim"),
    }


def peak(parts: dict[str, tuple[float, str]]) -> float:
    """The estimated peak: the fixed part, what the job keeps throughout (data, parameters,
    records), and the larger of its two transient phases: a training step, or a measurement."""
    size = {k: v[0] for k, v in parts.items()}
    arrays = size["data"] + size["parameters"] + size["records"]
    arrays += max(size["training"], size["measurement"] + size.get("gram", 0.0) + size.get("bound", 0.0))
    return RUNTIME_BYTES + MARGIN * arrays


def check(parts: dict[str, tuple[float, str]], limit: int | None, source: str, where: str) -> None:
    """Raise ConfigError (one line, naming ``where`` and the sizes behind the largest part) when
    the estimated peak exceeds ``limit`` bytes (no check when the limit is unknown)."""
    if limit is None:
        return
    total = peak(parts)
    if total <= limit:
        return
    part, (biggest, keys) = max(parts.items(), key=lambda kv: kv[1][0])
    raise ConfigError(
        f"{where}: the job needs about {_fmt(total)} of memory, more than the {_fmt(limit)} of the {source} "
        f"(most of it, {_fmt(biggest)}, for {part}: {keys}); make them smaller"
        + (", or set job_memory_gb to the memory of the machines the jobs run on" if source != "job_memory_gb" else "")
    )
