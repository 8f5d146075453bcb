# The calibration depends on its settings (calibration_config: the schedules, the analysis
# settings, alpha) and on the package's code (the tests it measures, the run it trains for its
# trained-spectra families), so it is computed once per settings and code, in
# results/calibration/<hash of both>/, and every results root whose settings are equal (another
# tag, a changed threshold of another claim) copies it instead of recomputing it: it was the run's
# largest job after the trainings. A changed test makes a new store, never a stale copy.
CALIBRATION_SETTINGS = json.dumps(calibration_config(), sort_keys=True)
CALIBRATION_STORE = f"results/calibration/{calibration_key(CALIBRATION_SETTINGS)}"
CALIBRATION_FILES = ("summary.csv", "a1.csv", "a2.csv")


rule calibrate:
    """False-positive rate and power of the A1 and A2 tests on synthetic ensembles drawn on this
    config's measurement schedules, with its settings (staircase.claims.calibration; docs/claims.md).
    """
    output:
        [f"{CALIBRATION_STORE}/{name}" for name in CALIBRATION_FILES],
        settings=f"{CALIBRATION_STORE}/settings.json",
    log:
        f"{CALIBRATION_STORE}/calibrate.log",
    conda:
        ENV
    threads: 1
    params:
        config=CALIBRATION_SETTINGS,
        out=lambda w, output: os.path.dirname(output.settings),
    shell:
        "python -m staircase calibrate --config-json {params.config:q} --out {params.out}"
        " > {log} 2>&1 && printf '%s\\n' {params.config:q} > {output.settings}"


rule calibration:
    """This results root's copy of the calibration of its settings (rule calibrate)."""
    input:
        [f"{CALIBRATION_STORE}/{name}" for name in CALIBRATION_FILES],
    output:
        [res(f"calibration/{name}") for name in CALIBRATION_FILES],
    log:
        res("logs/calibration.log"),
    conda:
        ENV
    params:
        folder=lambda w, output: os.path.dirname(output[0]),
    shell:
        "cp {input} {params.folder}/ > {log} 2>&1"


localrules:
    calibration,


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
TARGETS.extend(job_outputs(rules.calibration))
TARGETS.extend(job_outputs(rules.audit))
