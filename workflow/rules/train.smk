rule train:
    """Train every seed of one experiment variant (stacked in one process) and measure
    loss, error, spectra and eps-ranks of every hidden layer, and the loss lower bound.
    """
    output:
        metrics=res("runs/{experiment}/{variant}/metrics.parquet"),
        ranks=res("runs/{experiment}/{variant}/ranks.parquet"),
        spectra=res("runs/{experiment}/{variant}/spectra.npz"),
        run=res("runs/{experiment}/{variant}/run.json"),
        # written last: the files' checksums and the run's identity (staircase.records.manifest)
        manifest=res("runs/{experiment}/{variant}/manifest.json"),
    log:
        res("logs/train/{experiment}/{variant}.log"),
    # only configured runs: a misspelt experiment in a target has no rule (instead of a KeyError)
    wildcard_constraints:
        experiment=_one_of(EXPERIMENTS),
        variant=_one_of({v for vs in VARIANTS.values() for v in vs}),
    conda:
        ENV
    threads: 1
    params:
        # the resolved settings: changing any of them re-runs exactly the jobs they touch
        run_config=lambda w: json.dumps(
            VARIANTS[w.experiment][w.variant], sort_keys=True
        ),
        out=lambda w: run_dir(w.experiment, w.variant),
        # outside the declared outputs, so a re-run job can resume from it
        checkpoint_dir=lambda w: res(f"checkpoints/{w.experiment}/{w.variant}"),
    # the job writes its log itself (--log), once it holds the lock of its checkpoint folder: a
    # duplicate of a running job stops, printing why, without emptying the running job's log
    shell:
        "python -m staircase train --run-config {params.run_config:q} --out {params.out:q}"
        " --checkpoint-dir {params.checkpoint_dir:q} --log {log:q}"


_jobs = [(e, v) for e in EXPERIMENTS for v in VARIANTS[e]]
TARGETS.extend(
    job_outputs(
        rules.train,
        experiment=[e for e, _ in _jobs],
        variant=[v for _, v in _jobs],
    )
)
