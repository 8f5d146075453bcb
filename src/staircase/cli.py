"""Command line: ``staircase train``, ``audit``, ``calibrate``, ``compare``, ``registry``, ``variants``,
``check-config``, ``bench`` (and ``notebook-failure``, which the notebook rules call when a notebook
fails).

The workflow calls these; a user can too, to run one job by hand::

    staircase variants config.yaml                       # experiments and their variants
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
from staircase.training.trainer import choose_device
from staircase.workflow import config as cfgmod
from staircase.workflow import loader, lowrank_settings
from staircase.workflow.notebooks import failure_message

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


SCHEMA = cfgmod.SCHEMA_PATH


SET_HELP = (
    "override a setting, validated like the file: a top-level key (scale=full), a dotted path into the config "
    "(experiments.fit1d.train.steps=300, audit.alpha=0.01); with --experiment, a path into that experiment "
    "(train.steps=300); the value is YAML; repeatable"
)
EXPERIMENT_SECTIONS = ("task", "model", "train", "rank", "log", "seeds", "sweep", "variants", "full", "claims")


def _yaml_value(item: str, value: str):
    """The VALUE of a --set ``item`` (KEY=VALUE), read as YAML."""
    return loader.load_text(value, f"--set {item}", lines=False)


def apply_override(config: dict, item: str, experiment: str | None = None) -> None:
    """One --set KEY=VALUE into ``config``: KEY is a top-level key or a dotted path; with an
    ``experiment``, a path that starts with one of an experiment's sections goes into it. Only the
    last part of the path may be new (a new key is then checked by the schema like any other)."""
    key, eq, value = item.partition("=")
    if not eq or not key or any(not part for part in key.split(".")):
        raise cfgmod.ConfigError(f"--set {item}: expected KEY=VALUE, KEY a setting or a dotted path to one")
    parsed = _yaml_value(item, value)
    path = key.split(".")
    if experiment and path[0] in EXPERIMENT_SECTIONS:
        path = ["experiments", experiment, *path]
    node = config
    schema = cfgmod.load_schema() or {"properties": {}}
    for depth, part in enumerate(path[:-1]):
        if depth == 0 and part not in node and schema["properties"].get(part, {}).get("type") == "object":
            node[part] = {}  # a section the file leaves out (analysis:, audit:) takes the schema's defaults
        if part not in node and _is_entry(path[:depth]):
            node[part] = {}  # a section an experiment or study leaves to its `defaults:`
        if not isinstance(node.get(part), dict):
            where = ".".join(path[: depth + 1])
            hint = ""
            if depth == 1 and part in (node.get("defaults") or {}):  # the spelling before `defaults:`
                hint = f"; settings its entries share go under {path[0]}.defaults.{'.'.join(path[1:])}"
            raise cfgmod.ConfigError(f"--set {item}: {where} is not a section of the config{hint}")
        node = node[part]
    node[path[-1]] = parsed


def _is_entry(path: list[str]) -> bool:
    """Whether ``path`` names one experiment (experiments.<name>) or one study of papers B and C
    (<family>.studies.<name>): an entry whose sections may be left to its section's ``defaults:``."""
    if len(path) == 2 and path[0] == "experiments":
        return path[1] != "defaults"
    return len(path) == 3 and path[0] in lowrank_settings.FAMILIES and path[1] == "studies"


def _load_config(path: str, overrides: list[str], experiment: str | None = None) -> dict:
    """config.yaml with --set overrides (:func:`apply_override`), validated (and defaults filled)
    exactly as the workflow does it: Snakemake's validate against the same schema, then
    config.check. Anything wrong with it is a ConfigError (one line)."""
    from snakemake.utils import validate  # heavy (snakemake's whole engine); only a config file needs it

    config = loader.load_config_file(path)  # strict: duplicate keys, YAML 1.1 surprises, alias bombs
    for item in overrides:
        apply_override(config, item, experiment)
    cfgmod.check_values(config)  # NaN and infinity pass every minimum and maximum of the schema
    try:
        validate(config, str(SCHEMA))
    except Exception as err:  # WorkflowError wrapping jsonschema's ValidationError
        cause = err.__context__
        if not hasattr(cause, "absolute_path"):
            raise
        where, problem = cfgmod.schema_problem(cause)
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


def cmd_variants(args) -> int:
    config = _load_config(args.config, args.set)
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
    _load_config(args.config, args.set)
    print(f"{args.config}: ok")
    return 0


def _settings_only(overrides: list[str]) -> dict:
    """The ``audit:`` and ``analysis:`` sections from ``--set`` alone, checked against the schema
    (``staircase audit --runs`` without ``--config``: the schema's defaults fill the rest)."""
    config: dict = {}
    for item in overrides:
        key, eq, value = item.partition("=")
        if not eq:
            raise cfgmod.ConfigError(f"--set {item}: expected KEY=VALUE")
        if key not in ("audit", "analysis"):
            raise cfgmod.ConfigError(f"--set {key}: with --runs and no --config only audit= and analysis= apply")
        config[key] = _yaml_value(item, value)
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
    print(audit.summary_line(frame))
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
    size = args.size or (config.get("analysis") or {}).get("calibration_draws", 400)
    out = Path(args.out or Path(cfgmod.results_root(config)) / "calibration")
    writable_folder("--out", str(out))
    table = calibration.run(config, out, size=size, n_null=args.null_samples)
    print(table.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    print(f"per draw: {out / 'a1.csv'}, {out / 'a2.csv'}")
    return 0


def cmd_compare(args) -> int:
    compare = _load("compare")
    labels = tuple(args.labels)
    writable_folder("--out", args.out)
    try:
        result = compare.compare(args.a, args.b, args.out, labels=labels)
    except compare.CompareError as err:
        raise cfgmod.ConfigError(str(err)) from None
    print(compare.report(result, labels))
    print(f"details: {Path(args.out) / 'verdicts.csv'}, {Path(args.out) / 'statistics.csv'}")
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
    p.add_argument("--no-progress", action="store_true")
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
    p.add_argument("--config", default="config.yaml", help="its schedules and analysis settings are used")
    p.add_argument("--config-json", help="the validated config as JSON (used by the workflow)")
    _add_set(p)
    p.add_argument("--out", help="where to write summary.csv, a1.csv, a2.csv (default: <results root>/calibration)")
    p.add_argument(
        "--size", type=int, help="draws per ensemble, null and alternative each (default: analysis.calibration_draws)"
    )
    p.add_argument("--null-samples", type=int, default=200, help="null simulations per test")
    p.set_defaults(func=cmd_calibrate)


def _add_compare(sub) -> None:
    p = sub.add_parser(
        "compare", help="two results (scales, commits, settings) side by side: verdicts, statistics, curves"
    )
    p.add_argument("a", help="a results root (holding audit/ and runs/), an audit folder, or a claims.csv")
    p.add_argument("b", help="the other one")
    p.add_argument("--out", default="results/compare", help="where to write verdicts.csv, statistics.csv, overlay.png")
    p.add_argument("--labels", nargs=2, default=["A", "B"], metavar=("LABEL_A", "LABEL_B"), help="names of the sides")
    p.set_defaults(func=cmd_compare)


def _add_registry(sub) -> None:
    p = sub.add_parser("registry", help="the claims registry as a markdown table (the one in docs/auditing.md)")
    p.add_argument(
        "--results-table", metavar="CLAIMS_CSV", help="instead: the README's results table from a claims.csv"
    )
    p.set_defaults(func=cmd_registry)


def _add_bench(sub) -> None:
    p = sub.add_parser("bench", help="benchmarks against a naive loop, DeepXDE; ratios to results/bench")
    p.add_argument("--config", default="config.yaml")
    _add_set(p)
    p.add_argument("--out", default="results/bench")
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
    p.add_argument("--config", default="config.yaml")
    _add_set(p)
    p.add_argument("--experiment", required=True)
    p.add_argument("--variant", help="default: the experiment's first")
    p.add_argument("--steps", type=int, help="train this many steps instead of the experiment's")
    p.add_argument("--checkpoints", type=int, default=60, help="measurement steps compared (spread over the schedule)")
    p.add_argument("--candidates", help="comma-separated sizes (points, per dimension for grids)")
    p.add_argument("--family", choices=["trapezoid", "gauss", "monte_carlo", "qmc"], help="default: the task's own")
    p.add_argument("--out", default="results/rank_points")
    p.set_defaults(func=cmd_rank_points)


def _add_config_readers(sub) -> None:
    """``variants`` and ``check-config``: both read one config file given by position."""
    for name, func, text in (
        ("variants", cmd_variants, "list enabled experiments and their variants"),
        ("check-config", cmd_check_config, "validate a config as the workflow does (schema and checks)"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("config", help="the configuration file, e.g. config.yaml")
        _add_set(p)
        p.set_defaults(func=func)


def _add_cost(sub) -> None:
    p = sub.add_parser("cost", help="projected cost of a config from measured throughput (or record runs into it)")
    p.add_argument("--config", default="config.yaml")
    _add_set(p, "e.g. scale=full")
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
    sub = top.add_subparsers(dest="command", required=True)
    for add in SUBCOMMANDS:
        add(sub)
    add_commands(sub, _load_config, read_run_config, check_job_start)
    return top


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
