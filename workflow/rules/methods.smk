# Methods comparison (claims A6, A7): for every experiment tagged A6 or A7, the loss and eps-rank
# curves of each method against its baseline, and three tables from one notebook (summary per
# method, per seed, and the verdicts). Definitions: staircase.claims.comparison; settings: the
# experiment's `comparison:` block in config.yaml.
for _experiment in EXPERIMENTS:
    _exp = config["experiments"][_experiment]
    if not {"A6", "A7"} & set(_exp.get("claims", [])):
        continue
    _params = dict(
        experiment=_experiment,
        runs_dir=res(f"runs/{_experiment}"),
        variants=list(VARIANTS[_experiment]),
        comparison=_exp["comparison"],
    )
    add_figure(
        f"methods_curves_{_experiment}",
        "methods_curves",
        run_files(_experiment),
        caption=claims_registry.caption("methods_curves", _experiment),
        **_params,
    )
    for _kind in ("summary", "seeds", "verdicts"):
        add_table(
            f"methods_{_kind}_{_experiment}",
            "methods_table",
            run_files(_experiment),
            caption=claims_registry.caption(f"methods_{_kind}", _experiment),
            kind=_kind,
            **_params,
        )
