# Analysis figures and tables for the claims A1-A5 of paper A (src/staircase/claims/claims.yaml; each
# test is explained in docs/claims.md).
#
# Nothing here names an experiment: each figure is registered for the enabled experiments whose
# `claims:` contain a claim it shows (the registry says which), with the registry's caption, so a
# new experiment gets its figures by saying what it tests. The notebooks read only the run files
# listed as inputs (through staircase.records.runs, staircase.core.stairs, staircase.core.steptest) and take the
# tests' settings from the `analysis:` block of the config and alpha from `audit:`.
#
#   staircase_<exp>     A1, A2  loss and last-layer eps-rank vs step, seeds, plateaus, the null's fit, p-values
#   spectra_<exp>       A1, A2  sorted Gram eigenvalues of every layer at chosen checkpoints, with the eps lines
#   layers_<exp>        A5      eps-rank of every hidden layer vs step, strict order / ties / counterexamples
#   bound               A3      the eps-rank's bound on the L2 error vs step and vs eps-rank, all A3 runs
#   universality_<exp>  A4      staircase per sweep cell, cells that beat A1's null framed
#   regime_table (table) A1-regime  one row per cell of every experiment tagged A1-regime: factors, A1, A2, error
#   regime_map          A1-regime  heat-maps of A1's statistic over the cells (from regime_table.csv)
#   summary (table)     A1-A5   one row per experiment variant


ANALYSIS = config["analysis"]  # filled with the schema's defaults when absent
STAIR_OPTIONS = {k: ANALYSIS[k] for k in ("min_points", "min_span", "window")}
# the settings of the A1-A3 tests (staircase.core.steptest), as the audit uses them
TEST_OPTIONS = dict(
    STAIR_OPTIONS,
    loss_window=ANALYSIS["loss_window"],
    null_samples=ANALYSIS["null_samples"],
    alpha=claims_registry.thresholds(config)["alpha"],
    a1_min_stall_ratio=claims_registry.thresholds(config)["a1_min_stall_ratio"],
)


def claimed(*claims):
    """Enabled experiments that test any of ``claims`` (their `claims:` tags)."""
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
        run_inputs([_experiment], *TIDY, "spectra.npz"),
        caption=claims_registry.caption("staircase", _experiment),
        experiment=_experiment,
        runs=run_dirs([_experiment]),
        **TEST_OPTIONS,
    )
    add_figure(
        f"spectra_{_experiment}",
        "spectra",
        run_inputs([_experiment], "spectra.npz", "run.json", "metrics.parquet"),
        caption=claims_registry.caption("spectra", _experiment),
        experiment=_experiment,
        runs=run_dirs([_experiment]),
        n_checkpoints=ANALYSIS["spectrum_checkpoints"],
    )

for _experiment in claimed("A5"):
    add_figure(
        f"layers_{_experiment}",
        "layers",
        run_inputs([_experiment], *TIDY, "spectra.npz"),
        caption=claims_registry.caption("layers", _experiment),
        experiment=_experiment,
        runs=run_dirs([_experiment]),
    )

if claimed("A3"):
    add_figure(
        "bound",
        "bound",
        run_inputs(claimed("A3"), *TIDY),
        caption=claims_registry.caption("bound"),
        runs=run_dirs(claimed("A3")),
        **TEST_OPTIONS,
    )

for _experiment in claimed("A4"):
    add_figure(
        f"universality_{_experiment}",
        "universality",
        run_inputs([_experiment], *TIDY, "spectra.npz"),
        caption=claims_registry.caption("universality", _experiment),
        experiment=_experiment,
        runs=run_dirs([_experiment]),
        **TEST_OPTIONS,
    )

if claimed("A1-regime"):
    # the table computes the cells' tests once (staircase.claims.audit.regime_table); the figure draws it
    add_table(
        "regime_table",
        "regime_table",
        run_inputs(claimed("A1-regime"), *TIDY, "spectra.npz"),
        caption=claims_registry.caption("regime_table"),
        runs=run_dirs(claimed("A1-regime")),
        min_seeds=claims_registry.thresholds(config)["min_seeds"],
        **TEST_OPTIONS,
    )
    add_figure(
        "regime_map",
        "regime_map",
        [res("tables/regime_table.csv")],
        caption=claims_registry.caption("regime_map"),
        table=res("tables/regime_table.csv"),
        alpha=TEST_OPTIONS["alpha"],
        a1_min_stall_ratio=TEST_OPTIONS["a1_min_stall_ratio"],
    )

if claimed("A1", "A2", "A3", "A4", "A5"):
    add_table(
        "summary",
        "summary",
        run_inputs(claimed("A1", "A2", "A3", "A4", "A5"), *TIDY, "spectra.npz"),
        caption=claims_registry.caption("summary"),
        runs=run_dirs(claimed("A1", "A2", "A3", "A4", "A5")),
        **TEST_OPTIONS,
    )
