rule calibrate:
    """False-positive rate and power of the A1 and A2 tests on synthetic ensembles drawn on this
    config's measurement schedules, with its settings (staircase.calibration; docs/claims.md).
    """
    output:
        summary="results/calibration/summary.csv",
        a1="results/calibration/a1.csv",
        a2="results/calibration/a2.csv",
    log:
        "results/logs/calibrate.log",
    conda:
        ENV
    threads: 1
    params:
        # only what the tests and their schedules depend on: a new experiment with the same
        # schedule, or a changed threshold of another claim, does not re-run the calibration
        config=lambda w: json.dumps(calibration_config(), sort_keys=True),
    shell:
        "python -m staircase calibrate --config-json {params.config:q} --out results/calibration"
        " > {log} 2>&1"


rule audit:
    """Claim verdicts (PASS / FAIL / INCONCLUSIVE / ERROR) from the runs on disk; retrains nothing."""
    input:
        # every file of every run: the audit reads metrics, ranks and spectra
        runs=lambda w: [
            f
            for e in EXPERIMENTS
            for name in ("run.json", "metrics.parquet", "ranks.parquet", "spectra.npz")
            for f in run_files(e, name)
        ]
        + AUDIT_INPUTS,
        calibration="results/calibration/summary.csv",
        figures=lambda w: [f"results/figures/{name}.png" for name in FIGURES],
        tables=lambda w: [f"results/tables/{name}.csv" for name in TABLES],
    output:
        csv="results/audit/claims.csv",
        seeds="results/audit/seeds.csv",
        table="results/audit/results_table.md",
        md=report(
            "results/audit/claims.md",
            caption="../report/audit.rst",
            category="0. Claims audit",
        ),
    log:
        "results/logs/audit.log",
    conda:
        ENV
    params:
        config=lambda w: json.dumps(config),
    shell:
        "python -m staircase audit --config-json {params.config:q} --results results"
        " --out results/audit > {log} 2>&1"


TARGETS.extend(job_outputs(rules.calibrate))
TARGETS.extend(job_outputs(rules.audit))
