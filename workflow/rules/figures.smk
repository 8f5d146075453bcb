# Which figures exist: the staircase of every experiment (claims A1, A2).
for _experiment in EXPERIMENTS:
    add_figure(
        f"staircase_{_experiment}",
        "staircase",
        run_files(_experiment),
        caption=f"Staircase of experiment {_experiment} (claims A1, A2): training loss (log scale) "
        "and epsilon-rank of the last hidden layer at the main epsilon against step. Thin lines "
        "are seeds, the bold line their median.",
        experiment=_experiment,
        runs_dir=f"results/runs/{_experiment}",
    )
