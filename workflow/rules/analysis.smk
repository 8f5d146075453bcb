# Analysis figures and tables for the claims A1-A5 of paper A (DESIGN.md section 3).
#
# Nothing here names an experiment: each figure is registered for the enabled experiments whose
# `claims:` contain the claim it tests, so a new experiment gets its figures by saying what it
# tests. The notebooks read only the run files listed as inputs (through staircase.runs and
# staircase.stairs) and take the stair-detection settings from the `analysis:` block of the config.
#
#   staircase_<exp>     A1, A2  loss and last-layer eps-rank vs step, seeds as median + range, detected stairs
#   spectra_<exp>       A1, A2  sorted Gram eigenvalues of every layer at chosen checkpoints, with the eps lines
#   layers_<exp>        A5      eps-rank of every hidden layer vs step
#   bound               A3      loss and its lower bound vs eps-rank; bound vs loss (violations), all A3 runs
#   universality_<exp>  A4      staircase per sweep cell (activation x depth / width)
#   summary (table)     A1-A5   one row per experiment variant: final loss, error, ranks, stairs, Spearman, violations


ANALYSIS = config["analysis"]  # filled with the schema's defaults when absent
STAIR_OPTIONS = {k: ANALYSIS[k] for k in ("min_points", "min_span", "window")}


def claimed(*claims):
    """Enabled experiments that test any of ``claims``."""
    return [
        name
        for name in EXPERIMENTS
        if set(claims) & set(config["experiments"][name].get("claims", []))
    ]


def run_dirs(experiments):
    return [run_dir(e, v) for e in experiments for v in VARIANTS[e]]


def run_inputs(experiments, *names):
    """The listed files of every variant of the experiments (the notebooks read them)."""
    return [f"{d}/{name}" for d in run_dirs(experiments) for name in names]


TIDY = ("metrics.parquet", "ranks.parquet", "run.json")

for _experiment in claimed("A1", "A2"):
    add_figure(
        f"staircase_{_experiment}",
        "staircase",
        run_inputs([_experiment], *TIDY),
        caption=f"Staircase of experiment {_experiment} (claims A1, A2): training loss (log scale) "
        "and epsilon-rank of the last hidden layer at the main epsilon against step, one row per "
        "variant. Bold line: median over seeds; band: their range; thin step lines and dots: each "
        "seed's detected plateaus and jumps (staircase.stairs). Diverged seeds are named in red.",
        experiment=_experiment,
        runs=run_dirs([_experiment]),
        **STAIR_OPTIONS,
    )
    add_figure(
        f"spectra_{_experiment}",
        "spectra",
        run_inputs([_experiment], "spectra.npz", "run.json", "metrics.parquet"),
        caption=f"Spectrum evolution of experiment {_experiment}: sorted Gram eigenvalues (log "
        "scale) of every hidden layer at a few checkpoints (colour), median over seeds, with the "
        "epsilons of rank.eps as horizontal lines (main epsilon in red). An eigenvalue crossing "
        "the red line is a stair of the epsilon-rank.",
        experiment=_experiment,
        runs=run_dirs([_experiment]),
        n_checkpoints=ANALYSIS["spectrum_checkpoints"],
    )

for _experiment in claimed("A5"):
    add_figure(
        f"layers_{_experiment}",
        "layers",
        run_inputs([_experiment], *TIDY),
        caption=f"Layer-wise epsilon-rank of experiment {_experiment} (claim A5): every hidden "
        "layer at the main epsilon against step, median over seeds and range. The title gives the "
        "fraction of (checkpoint, adjacent layer pair) where the later layer's rank is at least "
        "the earlier one's.",
        experiment=_experiment,
        runs=run_dirs([_experiment]),
    )

if claimed("A3"):
    add_figure(
        "bound",
        "bound",
        run_inputs(claimed("A3"), *TIDY),
        caption="Loss lower bound (claim A3), every experiment tagged A3: loss and the computable "
        "lower bound against the epsilon-rank of the last hidden layer, and the bound against "
        "the loss; no point may lie above the diagonal (violations are counted and drawn red).",
        runs=run_dirs(claimed("A3")),
    )

for _experiment in claimed("A4"):
    add_figure(
        f"universality_{_experiment}",
        "universality",
        run_inputs([_experiment], *TIDY),
        caption=f"Universality of the staircase (claim A4), experiment {_experiment}: epsilon-rank "
        "of the last hidden layer (median and range over seeds) and loss (grey) per sweep cell; "
        "rows: activation, columns: the other swept settings. Titles: detected stairs and "
        "Spearman(loss, epsilon-rank).",
        experiment=_experiment,
        runs=run_dirs([_experiment]),
        **STAIR_OPTIONS,
    )

if claimed("A1", "A2", "A3", "A4", "A5"):
    add_table(
        "summary",
        "summary",
        run_inputs(claimed("A1", "A2", "A3", "A4", "A5"), *TIDY),
        caption="Summary per experiment variant (claims A1-A5): final loss and relative L2 error, "
        "final epsilon-rank per layer, detected stairs, Spearman(loss, epsilon-rank), aligned "
        "jumps, layer order, loss-bound violations (must be zero), and diverged seeds.",
        runs=run_dirs(claimed("A1", "A2", "A3", "A4", "A5")),
        **STAIR_OPTIONS,
    )
