"""Command line: ``staircase train``, ``audit``, ``calibrate``, ``compare``, ``registry``, ``variants``,
``check-config``, ``bench`` (and ``notebook-failure``: the one line the notebook jobs print when a notebook
fails, for a failed copy run by hand).

The workflow calls these; a user can too, to run one job by hand::

    staircase variants --config config.yaml              # experiments and their variants
    staircase train --config config.yaml --experiment fit1d --out /tmp/fit1d
    staircase audit --strict                             # verdicts from results/small (exit 1 unless all PASS)
    staircase audit --runs results/runs/my_model/base    # verdicts on a run of your own model (staircase.Tracker)
    staircase calibrate                                  # false-positive rate and power of the A1/A2 tests
    staircase compare results/small results/full         # two results side by side
    staircase bench                                      # engine vs peers, ratios in results/bench
    staircase rank-points --experiment fit1d             # how many quadrature points the eps-ranks need

Papers B and C add ``collapse``, ``collapse-merge``, ``align`` and ``lowrank-studies`` (see staircase.cli_lowrank).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from pathlib import Path

import pandas as pd

from staircase import benchmarks
from staircase.cli_lowrank import add_commands
from staircase.errors import UnreadableResult
from staircase.records.provenance import AlreadyRunning, write_json
from staircase.version import __version__
from staircase.workflow import config as cfgmod
from staircase.workflow import loader
from staircase.workflow.notebooks import failure_message
from staircase.workflow.overrides import SET_HELP, apply_override

# A command loads the code it runs, when it runs (``_load``), not every command's: a training job is
# one `staircase train` process, and importing the audit, the calibration and the benchmarks with
# it (scipy.stats and the benchmarks' contenders) cost every job about 0.8 s of CPU more, and made
# `staircase --help` take 3.5 s instead of 0.5 s. The modules, by command:
COMMAND_MODULES = {
    "train": "staircase.training.trainer",
    "cost": "staircase.workflow.cost",
    "audit": "staircase.claims.audit",
    "calibrate": "staircase.claims.calibration",
    "compare": "staircase.claims.compare",
    "registry": "staircase.claims.registry",
    "bench": "staircase.benchmarks.bench",
    "rank-points": "staircase.benchmarks.quadcheck",
}


def _load(command: str):
    """The module behind ``command`` (COMMAND_MODULES), imported on first use."""
    return importlib.import_module(COMMAND_MODULES[command])


# every command's --help ends with one example of it (test_cli checks that each has one)
EXAMPLES = {
    "train": "staircase train --config config.yaml --experiment fit1d --set train.lr=1e-3 --out /tmp/fit1d",
    "audit": "staircase audit --runs results/runs/my_model/base --set audit.alpha=0.1",
    "calibrate": "staircase calibrate --config .test/config/config.yaml --size 50 --out /tmp/calibration",
    "compare": "staircase compare results/small-lr5e-3 results/small-lr2e-2 results/small --labels lr5e-3 lr2e-2 base",
    "registry": "staircase registry --results-table results/small/audit/claims.csv",
    "bench": "staircase bench --only fit --steps 200 --out /tmp/bench",
    "rank-points": "staircase rank-points --experiment fit1d --candidates 51,101,201",
    "variants": "staircase variants --config config.yaml --set scale=full",
    "check-config": "staircase check-config --config .test/config/config.yaml --set experiments.fit1d.train.lr=1e-3",
    "cost": "staircase cost --set scale=full --cores 16",
    "notebook-failure": "staircase notebook-failure results/small/notebooks/layers_fit1d.ipynb",
    "collapse": "staircase collapse --config config.yaml --study digits_lambda --out /tmp/collapse",
    "collapse-merge": "staircase collapse-merge --config config.yaml --study gauss_noise --parts /tmp/g/parts/0 "
    "/tmp/g/parts/1 /tmp/g/parts/2 /tmp/g/parts/3 /tmp/g/parts/4 --out /tmp/g",
    "align": "staircase align --config config.yaml --study digits01_ngd --out /tmp/align",
    "lowrank-studies": "staircase lowrank-studies --config config.yaml",
}


def _load_config(path: str, overrides: list[str], experiment: str | None = None) -> dict:
    """config.yaml with --set overrides (:func:`staircase.workflow.overrides.apply_override`),
    validated (and defaults filled) exactly as the workflow does it: Snakemake's validate against
    the same schema (its algorithm, staircase.workflow.schema.validate_with_defaults, without
    re-reading the schema), then config.check. Anything wrong with it is a ConfigError (one line)."""
    import jsonschema

    config = loader.load_config_file(path)  # strict: duplicate keys, YAML 1.1 surprises, alias bombs
    for item in overrides:
        apply_override(config, item, experiment)
    cfgmod.check_values(config)  # NaN and infinity pass every minimum and maximum of the schema
    try:
        cfgmod.validate_with_defaults(config)
    except jsonschema.ValidationError as err:
        where, problem = cfgmod.schema_problem(err)
        raise cfgmod.ConfigError(f"{where or 'config'}: {problem}") from None
    cfgmod.check(config)
    return config


def _read_text(path: str, what: str) -> str:
    """A text file given on the command line; unreadable or not UTF-8 is a ConfigError."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise cfgmod.ConfigError(f"{what}: cannot read it ({err.strerror})") from None
    except UnicodeDecodeError as err:
        raise cfgmod.ConfigError(f"{what}: not a UTF-8 text file (byte {err.start}: {err.reason})") from None


def read_run_config(value: str):
    """--run-config: JSON, or @file holding it; any problem reading it is a ConfigError."""
    text = _read_text(value[1:], f"--run-config {value}") if value.startswith("@") else value
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise cfgmod.ConfigError(f"--run-config: not valid JSON ({err})") from None


def _run_config(args) -> dict:
    if args.run_config:
        cfg = read_run_config(args.run_config)
        cfgmod.check_run(cfg)
        return cfg
    if not (args.config and args.experiment):
        raise cfgmod.ConfigError("staircase train: give --run-config, or --config with --experiment")
    config = _load_config(args.config, args.set, args.experiment)
    vs = cfgmod.variants(config, args.experiment)
    variant = args.variant or next(iter(vs))
    if variant not in vs:
        raise cfgmod.ConfigError(
            f"staircase train: experiment {args.experiment!r} has no variant {variant!r}; have {sorted(vs)}"
        )
    if not args.variant and len(vs) > 1:
        print(
            f"staircase train: {args.experiment} has {len(vs)} variants ({', '.join(vs)}); training {variant} "
            "(choose another with --variant)",
            file=sys.stderr,
        )
    return vs[variant]


def writable_folder(flag: str, path: str | None, file: bool = False) -> None:
    """ConfigError unless ``path`` (a folder, or with ``file`` a file's path) can be created or
    written: checked before training, not found out after it. Creates nothing."""
    if path is None:
        return
    target = Path(path)
    if file and target.is_dir():
        raise cfgmod.ConfigError(f"{flag} {path}: is a folder, not a file")
    if not file and target.exists() and not target.is_dir():
        raise cfgmod.ConfigError(f"{flag} {path}: exists and is not a folder")
    folder = target.parent if file else target
    existing = next((p for p in [folder, *folder.absolute().parents] if p.exists()), None)
    if existing is None or not existing.is_dir():
        raise cfgmod.ConfigError(f"{flag} {path}: cannot create it ({existing} is not a folder)")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise cfgmod.ConfigError(f"{flag} {path}: cannot write there ({existing} is not writable)")


def check_job_start(args, cfg: dict) -> None:
    """What a job checks when it starts, before any training: the device it asks for exists on
    this machine (--device overrides the config's), and its output folders can be written."""
    from staircase.training.trainer import choose_device  # torch: only the commands that train

    if args.device:
        cfg["device"] = args.device
    try:
        choose_device(cfg.get("device", "auto"))
    except cfgmod.ConfigError as err:
        raise cfgmod.ConfigError(f"{'--device' if args.device else 'device'}: {str(err).partition(': ')[2]}") from None
    writable_folder("--out", args.out)
    if Path(args.out).is_symlink():  # it would write into the folder it points at: another run's
        raise cfgmod.ConfigError(f"--out {args.out}: is a symlink (to {Path(args.out).resolve()}); give a folder")
    writable_folder("--checkpoint-dir", getattr(args, "checkpoint_dir", None))
    writable_folder("--log", getattr(args, "log", None), file=True)


def cmd_train(args) -> int:
    train = _load("train")
    cfg = _run_config(args)  # every problem with the configuration is reported before training
    check_job_start(args, cfg)
    train.run(cfg, args.out, args.checkpoint_dir, progress=not args.no_progress, log=args.log)
    return 0


def _config_path(args) -> str:
    """--config, or the positional CONFIG of the commands that took one before --config."""
    given = getattr(args, "config_file", None)
    if given and args.config not in (given, "config.yaml"):
        raise cfgmod.ConfigError(f"two configs given ({given} and --config {args.config}); give one")
    return given or args.config


def cmd_variants(args) -> int:
    config = _load_config(_config_path(args), args.set)
    for name in cfgmod.enabled_experiments(config):
        for vname, cfg in cfgmod.variants(config, name).items():
            print(f"{name}\t{vname}\tseeds={cfg['seeds']}")
    return 0


def cmd_cost(args) -> int:
    """Record measured runs into the throughput table, or print the projected cost of a config."""
    cost = _load("cost")
    args.table = args.table or str(cost.THROUGHPUT_PATH)
    if args.record:
        table = cost.load_table(args.table)
        rows = pd.DataFrame([cost.record(path) for path in args.record], columns=cost.COLUMNS)
        key = ["name", "scale", "device"]
        keep = table[~table.set_index(key).index.isin(rows.set_index(key).index)]
        merged = pd.concat([keep, rows], ignore_index=True) if len(keep) else rows
        merged.sort_values(["kind", "scale", "name"]).to_csv(args.table, index=False)
        print(f"{args.table}: {len(rows)} row(s) recorded, {len(merged)} in all")
        return 0
    config = _load_config(args.config, args.set)
    table = cost.load_table(args.table)
    projection = cost.project(config, args.notebooks, table)
    print(cost.describe(projection, args.cores))
    print(cost.describe_makespan(projection, sorted({2, 16, *([args.cores] if args.cores else [])})))
    return 0


def cmd_check_config(args) -> int:
    path = _config_path(args)
    _load_config(path, args.set)
    print(f"{path}: ok")
    return 0


def _settings_only(overrides: list[str]) -> dict:
    """The ``audit:`` and ``analysis:`` sections from ``--set`` alone (whole sections or dotted paths
    into them), checked against the schema (``staircase audit --runs`` without ``--config``: the
    schema's defaults fill the rest)."""
    config: dict = {}
    for item in overrides:
        if item.partition("=")[0].split(".")[0] not in ("audit", "analysis"):
            raise cfgmod.ConfigError(
                f"--set {item}: with --runs and no --config only audit and analysis settings apply "
                "(audit.alpha=0.1, analysis.loss_window=5)"
            )
        apply_override(config, item)
    cfgmod.check_values(config)
    schema = cfgmod.load_schema()
    if schema is not None:
        for key, section in config.items():
            cfgmod.schema_check(section, schema["properties"][key], key)
    return config


def cmd_audit(args) -> int:
    audit = _load("audit")
    if args.config_json:
        config = json.loads(args.config_json)
    elif args.runs and not args.config:
        config = _settings_only(args.set)
    else:
        config = _load_config(args.config or "config.yaml", args.set)
    if args.runs:
        out = Path(args.out or Path(args.runs[0]) / "audit")
        writable_folder("--out", str(out))
        frame = audit.run_audit(config, args.results or cfgmod.results_root(config), out, runs=args.runs)
    else:
        results = args.results or cfgmod.results_root(config)
        if not audit.has_results(results):
            raise cfgmod.ConfigError(
                f"staircase audit: no results under {results}/ (expected {results}/runs/<experiment>/"
                "<variant>/run.json); run the workflow first, or point --results at its results root"
            )
        out = Path(args.out or Path(results) / "audit")
        writable_folder("--out", str(out))
        frame = audit.run_audit(config, results, out)
        if coverage := audit.coverage_line(config, results):
            print(coverage)
    print(audit.summary_line(frame))
    for note in audit.given_run_notes(args.runs) if args.runs else []:
        print(f"note: {note}")
    print(f"details: {out / 'claims.md'}")
    if args.strict:
        return strict_status(audit.overall(frame), [] if args.runs else configured_claims(config), audit.PASS)
    return 0


def configured_claims(config: dict) -> list[tuple[str, str]]:
    """(claim, experiment) of every claim an enabled experiment names."""
    experiments = config.get("experiments") or {}
    return [(c, e) for e in cfgmod.enabled_experiments(config) for c in experiments[e].get("claims", [])]


def strict_status(overall: pd.DataFrame, configured, passed: str) -> int:
    """--strict: 0 only when claims were judged, every configured one among them, and all PASS."""
    judged = set(zip(overall["claim"], overall["experiment"]))
    missing = [pair for pair in configured if pair not in judged]
    if overall.empty or missing:
        what = f"{len(missing)} configured claim(s) not judged, e.g. {missing[0]}" if missing else "no claim judged"
        print(f"staircase audit --strict: {what}; not a pass", file=sys.stderr)
        return 1
    return 0 if (overall["verdict"] == passed).all() else 1


def cmd_calibrate(args) -> int:
    calibration = _load("calibrate")
    config = json.loads(args.config_json) if args.config_json else _load_config(args.config, args.set)
    size = args.size or (config.get("analysis") or {}).get("calibration_draws", 150)
    out = Path(args.out or Path(cfgmod.results_root(config)) / "calibration")
    writable_folder("--out", str(out))
    table = calibration.run(config, out, size=size, n_null=args.null_samples)
    print(table.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    print(f"per draw: {out / 'a1.csv'}, {out / 'a2.csv'}")
    return 0


def cmd_compare(args) -> int:
    compare = _load("compare")
    writable_folder("--out", args.out)
    try:
        result = compare.compare(args.roots, args.out, labels=args.labels)
    except compare.CompareError as err:
        raise cfgmod.ConfigError(str(err)) from None
    print(compare.report(result))
    files = ", ".join(str(Path(args.out) / f"{name}.csv") for name in ("configs", "verdicts", "statistics"))
    print(f"details: {files}")
    return 0


def cmd_registry(args) -> int:
    if args.results_table:
        print(_load("audit").results_table(pd_read_csv(args.results_table)), end="")
    else:
        print(_load("registry").markdown_table(), end="")
    return 0


def pd_read_csv(path):
    try:
        return pd.read_csv(path)
    except OSError as err:
        raise cfgmod.ConfigError(f"{path}: cannot read it ({err.strerror})") from None


def cmd_bench(args) -> int:
    bench = _load("bench")
    config = _load_config(args.config, args.set)
    only = args.only.split(",") if args.only else None
    bench.run_benchmarks(
        config,
        Path(args.out),
        only=only,
        repeats=args.repeats,
        experiment=args.experiment,
        pde_experiment=args.pde_experiment,
        gpu_models=args.gpu_models,
        steps=args.steps,
    )
    return 0


def cmd_rank_points(args) -> int:
    quadcheck = _load("rank-points")
    config = _load_config(args.config, args.set)
    vs = cfgmod.variants(config, args.experiment)
    variant = args.variant or next(iter(vs))
    if variant not in vs:
        raise cfgmod.ConfigError(f"staircase rank-points: {args.experiment!r} has no variant {variant!r}")
    cfg = vs[variant]
    if args.steps:
        cfg["train"] = dict(cfg["train"], steps=args.steps)
    candidates = [int(n) for n in args.candidates.split(",")] if args.candidates else None
    table, summary = quadcheck.check_experiment(cfg, candidates, args.family, max_checkpoints=args.checkpoints)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{args.experiment}_{variant}" + (f"_{args.family}" if args.family else "")
    table.to_csv(out / f"{stem}.csv", index=False)
    write_json(out / f"{stem}.json", summary)
    print(f"written: {out / stem}.csv, .json")
    return 0


def cmd_notebook_failure(args) -> int:
    print(failure_message(args.notebook, args.log))
    return 0


def _add_set(p, text: str = SET_HELP) -> None:
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help=text)


def _add_config(p, text: str = "the configuration file (default: config.yaml)", default="config.yaml") -> None:
    p.add_argument("--config", default=default, metavar="CONFIG", help=text)


def _add_train(sub) -> None:
    p = sub.add_parser("train", help="train every seed of one experiment variant")
    p.add_argument("--run-config", help="resolved run config as JSON, or @file")
    p.add_argument("--config", help="config.yaml (with --experiment)")
    p.add_argument("--experiment", help="the experiment of config.yaml to train (with --config)")
    p.add_argument("--variant", help="which of its variants (default: the first; `staircase variants` lists them)")
    _add_set(p)
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--checkpoint-dir", help="where to keep the resume checkpoint")
    p.add_argument("--device", help="cpu, cuda or auto (overrides the config)")
    p.add_argument(
        "--log",
        help="write the job's output to this file, opened only once the job holds its lock (a duplicate "
        "of a running job stops without touching the running job's log); problems found before are printed",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress line")
    p.set_defaults(func=cmd_train)


def _add_audit(sub) -> None:
    p = sub.add_parser("audit", help="claim verdicts from existing results (no retraining)")
    p.add_argument("--config", help="config.yaml (the default without --runs); with --runs: its audit: and analysis:")
    p.add_argument("--config-json", help="the validated config as JSON (used by the workflow)")
    _add_set(p)
    p.add_argument(
        "--results",
        help="the results root whose runs/ are audited (default: the config's, results/<scale>[-<tag>])",
    )
    p.add_argument(
        "--runs",
        nargs="+",
        metavar="RUN_DIR",
        help="audit these run directories (e.g. a Tracker's) on the claims their data can test (A1, A2, A3, A5), "
        "instead of config.yaml's experiments",
    )
    p.add_argument("--out", help="where to write claims.csv etc. (default <results>/audit; with --runs: RUN_DIR/audit)")
    p.add_argument(
        "--strict",
        action="store_true",
        help="exit 1 unless every claim PASSes (a FAIL, an ERROR of a self-check, or too little evidence)",
    )
    p.set_defaults(func=cmd_audit)


def _add_calibrate(sub) -> None:
    p = sub.add_parser("calibrate", help="false-positive rate and power of the A1/A2 tests on synthetic ensembles")
    _add_config(p, "the configuration file, whose schedules and analysis settings are used (default: config.yaml)")
    p.add_argument("--config-json", help="the validated config as JSON (used by the workflow)")
    _add_set(p)
    p.add_argument("--out", help="where to write summary.csv, a1.csv, a2.csv (default: <results root>/calibration)")
    p.add_argument(
        "--size",
        type=int,
        help="draws per null family, half as many per power family (default: analysis.calibration_draws)",
    )
    p.add_argument("--null-samples", type=int, default=200, help="null simulations per test")
    p.set_defaults(func=cmd_calibrate)


def _add_compare(sub) -> None:
    p = sub.add_parser(
        "compare",
        help="two or more results (scales, commits, settings) side by side: settings, verdicts, statistics, curves",
    )
    p.add_argument(
        "roots",
        nargs="+",
        metavar="ROOT",
        help="results roots (holding audit/ and runs/), audit folders or claims.csv files; two or more",
    )
    p.add_argument(
        "--out",
        default="results/compare",
        help="where to write configs.csv, verdicts.csv, statistics.csv, overlay.png (default: results/compare)",
    )
    p.add_argument(
        "--labels", nargs="+", metavar="LABEL", help="one name per ROOT, any text but each its own (default: A B C ...)"
    )
    p.set_defaults(func=cmd_compare)


def _add_registry(sub) -> None:
    p = sub.add_parser("registry", help="the claims registry as a markdown table (the one in docs/auditing.md)")
    p.add_argument(
        "--results-table", metavar="CLAIMS_CSV", help="instead: the README's results table from a claims.csv"
    )
    p.set_defaults(func=cmd_registry)


def _add_bench(sub) -> None:
    p = sub.add_parser("bench", help="benchmarks against a naive loop, DeepXDE; ratios to results/bench")
    _add_config(p)
    _add_set(p)
    p.add_argument("--out", default="results/bench", help="where to write the timings and ratios")
    p.add_argument("--experiment", default="fit1d", help="the fitting experiment of the fit comparison")
    p.add_argument(
        "--pde-experiment",
        default="poisson2d",
        help="the PDE experiment of the pde comparison (a built-in 2-D Poisson problem if config has none)",
    )
    p.add_argument("--only", help="comma-separated subset of: " + ", ".join(benchmarks.COMPARISONS))
    p.add_argument("--steps", type=int, help="override the training steps (quick runs; not for the documented numbers)")
    p.add_argument("--repeats", type=int, default=3, help="interleaved repeats; ratios are their median")
    p.add_argument("--gpu-models", type=int, default=32, help="models stacked on the GPU (with CUDA only)")
    p.set_defaults(func=cmd_bench)


def _add_rank_points(sub) -> None:
    p = sub.add_parser(
        "rank-points",
        help="how many quadrature points the eps-ranks need: candidate rules against a fine reference in training",
    )
    _add_config(p)
    _add_set(p)
    p.add_argument("--experiment", required=True, help="the experiment whose quadrature is checked")
    p.add_argument("--variant", help="default: the experiment's first")
    p.add_argument("--steps", type=int, help="train this many steps instead of the experiment's")
    p.add_argument("--checkpoints", type=int, default=60, help="measurement steps compared (spread over the schedule)")
    p.add_argument("--candidates", help="comma-separated sizes (points, per dimension for grids)")
    p.add_argument("--family", choices=["trapezoid", "gauss", "monte_carlo", "qmc"], help="default: the task's own")
    p.add_argument("--out", default="results/rank_points", help="where to write the table and its summary")
    p.set_defaults(func=cmd_rank_points)


def _add_config_readers(sub) -> None:
    """``variants`` and ``check-config``: both read one config file, --config as every command (the
    positional of earlier versions still works)."""
    for name, func, text in (
        ("variants", cmd_variants, "list enabled experiments and their variants"),
        ("check-config", cmd_check_config, "validate a config as the workflow does (schema and checks)"),
    ):
        p = sub.add_parser(name, help=text)
        _add_config(p)
        p.add_argument("config_file", nargs="?", metavar="CONFIG", help="the same as --config (kept for old scripts)")
        _add_set(p)
        p.set_defaults(func=func)


def _add_cost(sub) -> None:
    p = sub.add_parser("cost", help="projected cost of a config from measured throughput (or record runs into it)")
    _add_config(p)
    _add_set(p)
    p.add_argument("--notebooks", type=int, default=0, help="figure and table notebooks to count")
    p.add_argument("--cores", type=int, help="also say the wall time on this many cores (2 and 16 always)")
    p.add_argument("--table", default=None, help="the throughput table (default: staircase/workflow/throughput.csv)")
    p.add_argument("--record", nargs="+", metavar="RUN_DIR", help="add these finished runs' measurements to the table")
    p.set_defaults(func=cmd_cost)


def _add_notebook_failure(sub) -> None:
    p = sub.add_parser("notebook-failure", help="one line on a failed papermill notebook: the failing cell and error")
    p.add_argument("notebook", help="the partially executed copy papermill wrote")
    p.add_argument("log", nargs="?", help="papermill's output")
    p.set_defaults(func=cmd_notebook_failure)


# every subcommand in the order `staircase --help` lists them (then papers B and C's, cli_lowrank.py)
SUBCOMMANDS = (
    _add_train,
    _add_audit,
    _add_calibrate,
    _add_compare,
    _add_registry,
    _add_bench,
    _add_rank_points,
    _add_config_readers,
    _add_cost,
    _add_notebook_failure,
)


def parser() -> argparse.ArgumentParser:
    """The ``staircase`` command line: every subcommand, each with its ``func``."""
    top = argparse.ArgumentParser(
        prog="staircase",
        description="The staircase pipeline's commands: train one job, audit the claims, calibrate their tests, "
        "benchmark, check a config. The workflow (snakemake) calls them; README.md explains each.",
    )
    top.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = top.add_subparsers(dest="command", required=True)
    for add in SUBCOMMANDS:
        add(sub)
    add_commands(sub, _load_config, read_run_config, check_job_start)
    _describe(sub)
    return top


def _describe(sub) -> None:
    """Each command's --help: its own one-line summary on top, its example at the end."""
    summaries = {action.dest: action.help for action in sub._choices_actions}
    for name, command in sub.choices.items():
        command.description = summaries[name]
        command.epilog = f"example:\n  {EXAMPLES[name]}"
        command.formatter_class = argparse.RawDescriptionHelpFormatter


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except (cfgmod.ConfigError, AlreadyRunning, UnreadableResult) as err:
        # the user's input is wrong, a result file is damaged (named, with its remedy), or the job runs
        # already: one line. Anything else keeps its traceback.
        print(f"staircase: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
