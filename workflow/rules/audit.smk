rule audit:
    """Claim verdicts (PASS / FAIL / INCONCLUSIVE) from the runs on disk; retrains nothing."""
    input:
        runs=lambda w: [f for e in EXPERIMENTS for f in run_files(e, "run.json")]
        + AUDIT_INPUTS,
        figures=lambda w: [f"results/figures/{name}.png" for name in FIGURES],
        tables=lambda w: [f"results/tables/{name}.csv" for name in TABLES],
    output:
        csv="results/audit/claims.csv",
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


TARGETS.extend(job_outputs(rules.audit))
