# Methods comparison (claims A6, A7): for every experiment tagged A6 or A7, the loss and eps-rank
# curves of each method against its baseline, and three tables from one notebook (summary per
# method, per seed, and the verdicts). Definitions: staircase.comparison; settings: the
# experiment's `comparison:` block in config.yaml.
for _experiment in EXPERIMENTS:
    _exp = config["experiments"][_experiment]
    if not {"A6", "A7"} & set(_exp.get("claims", [])):
        continue
    _params = dict(
        experiment=_experiment,
        runs_dir=f"results/runs/{_experiment}",
        variants=list(VARIANTS[_experiment]),
        comparison=_exp["comparison"],
    )
    add_figure(
        f"methods_curves_{_experiment}",
        "methods_curves",
        run_files(_experiment),
        caption=f"Methods against their baseline in experiment {_experiment} (claims A6, A7): training "
        "loss and epsilon-rank of the last hidden layer against the optimisation clock (CPU seconds of "
        "the training thread on a CPU, pre-training included). Thin lines are seeds, bold their median, "
        "dashed black the baseline's median, dotted the comparison thresholds.",
        **_params,
    )
    for _kind, _text in (
        (
            "summary",
            "per method: medians and [min, max] over seeds of time and steps to each threshold, "
            "speed-ups against the baseline, initial epsilon-rank per layer, final error, stairs",
        ),
        ("seeds", "the same measurements per method and seed"),
        ("verdicts", "the A6 and A7 verdicts with their numbers"),
    ):
        add_table(
            f"methods_{_kind}_{_experiment}",
            "methods_table",
            run_files(_experiment),
            caption=f"Methods comparison of experiment {_experiment}: {_text}.",
            kind=_kind,
            **_params,
        )
