rule calibrate:
    """False-positive rate and power of the A1 and A2 tests on synthetic ensembles drawn on this
    config's measurement schedules, with its settings (staircase.claims.calibration; docs/claims.md).
    """
    output:
        summary=res("calibration/summary.csv"),
        a1=res("calibration/a1.csv"),
        a2=res("calibration/a2.csv"),
    log:
        res("logs/calibrate.log"),
    conda:
        ENV
    threads: 1
    params:
        # only what the tests and their schedules depend on: a new experiment with the same
        # schedule, or a changed threshold of another claim, does not re-run the calibration
        config=lambda w: json.dumps(calibration_config(), sort_keys=True),
        out=lambda w, output: os.path.dirname(output.summary),
    shell:
        "python -m staircase calibrate --config-json {params.config:q} --out {params.out}"
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
        calibration=res("calibration/summary.csv"),
        figures=lambda w: [res(f"figures/{name}.png") for name in FIGURES],
        tables=lambda w: [res(f"tables/{name}.csv") for name in TABLES],
    output:
        csv=res("audit/claims.csv"),
        seeds=res("audit/seeds.csv"),
        table=res("audit/results_table.md"),
        md=report(
            res("audit/claims.md"),
            caption="../report/audit.rst",
            category="0. Claims audit",
        ),
    log:
        res("logs/audit.log"),
    conda:
        ENV
    params:
        config=lambda w: json.dumps(config),
        # the root that holds audit/ (and runs/): derived from the output, as Snakemake advises
        root=lambda w, output: os.path.dirname(os.path.dirname(output.csv)),
        out=lambda w, output: os.path.dirname(output.csv),
    shell:
        "python -m staircase audit --config-json {params.config:q} --results {params.root}"
        " --out {params.out} > {log} 2>&1"


TARGETS.extend(job_outputs(rules.calibrate))
TARGETS.extend(job_outputs(rules.audit))
