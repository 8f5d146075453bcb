"""Command line: ``staircase train``, ``audit``, ``calibrate``, ``registry``, ``variants``,
``check-config``, ``bench`` (and ``notebook-failure``, which the notebook rules call when a notebook
fails).

The workflow calls these; a user can too, to run one job by hand::

    staircase variants config.yaml                       # experiments and their variants
    staircase train --config config.yaml --experiment fit1d --out /tmp/fit1d
    staircase audit --strict                             # verdicts from results/ (exit 1 unless all PASS)
    staircase calibrate                                  # false-positive rate and power of the A1/A2 tests
    staircase bench                                      # engine vs peers, ratios in results/bench

Papers B and C add ``collapse``, ``align`` and ``lowrank-studies`` (see staircase.lowrank.cli).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

from staircase import config as cfgmod
from staircase.provenance import AlreadyRunning

SCHEMA = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"


def _load_config(path: str, overrides: list[str]) -> dict:
    """config.yaml with top-level overrides, validated (and defaults filled) exactly as the
    workflow does it: Snakemake's validate against the same schema, then config.check.
    Anything wrong with it is a ConfigError (one line)."""
    from snakemake.utils import validate

    try:
        with open(path) as fh:
            config = yaml.safe_load(fh)
    except OSError as err:
        raise cfgmod.ConfigError(f"{path}: cannot read it ({err.strerror})") from None
    except yaml.YAMLError as err:
        raise cfgmod.ConfigError(f"{path}: not valid YAML ({' '.join(str(err).split())})") from None
    for item in overrides:
        key, eq, value = item.partition("=")
        if not eq or not isinstance(config, dict):
            raise cfgmod.ConfigError(f"--set {item}: expected KEY=VALUE")
        config[key] = yaml.safe_load(value)
    try:
        validate(config, str(SCHEMA))
    except Exception as err:  # WorkflowError wrapping jsonschema's ValidationError
        cause = err.__context__
        if not hasattr(cause, "absolute_path"):
            raise
        where = ".".join(str(p) for p in cause.absolute_path) or "config"
        raise cfgmod.ConfigError(f"{where}: {cause.message}") from None
    cfgmod.check(config)
    return config


def _run_config(args) -> dict:
    if args.run_config:
        try:
            text = Path(args.run_config[1:]).read_text() if args.run_config.startswith("@") else args.run_config
            cfg = json.loads(text)
        except OSError as err:
            raise cfgmod.ConfigError(f"--run-config {args.run_config}: cannot read it ({err.strerror})") from None
        except json.JSONDecodeError as err:
            raise cfgmod.ConfigError(f"--run-config: not valid JSON ({err})") from None
        cfgmod.check_run(cfg)
        return cfg
    if not (args.config and args.experiment):
        raise cfgmod.ConfigError("staircase train: give --run-config, or --config with --experiment")
    config = _load_config(args.config, args.set)
    vs = cfgmod.variants(config, args.experiment)
    variant = args.variant or next(iter(vs))
    if variant not in vs:
        raise cfgmod.ConfigError(
            f"staircase train: experiment {args.experiment!r} has no variant {variant!r}; have {sorted(vs)}"
        )
    return vs[variant]


def cmd_train(args) -> int:
    cfg = _run_config(args)  # every problem with the configuration is reported before training
    if args.device:
        cfg["device"] = args.device
    from staircase import train

    train.run(cfg, args.out, args.checkpoint_dir, progress=not args.no_progress)
    return 0


def cmd_variants(args) -> int:
    config = _load_config(args.config, args.set)
    for name in cfgmod.enabled_experiments(config):
        for vname, cfg in cfgmod.variants(config, name).items():
            print(f"{name}\t{vname}\tseeds={cfg['seeds']}")
    return 0


def cmd_cost(args) -> int:
    """Record measured runs into the throughput table, or print the projected cost of a config."""
    import pandas as pd

    from staircase import cost

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
    print(cost.describe(cost.project(config, args.notebooks, table), args.cores))
    return 0


def cmd_check_config(args) -> int:
    _load_config(args.config, args.set)
    print(f"{args.config}: ok")
    return 0


def cmd_audit(args) -> int:
    from staircase import audit

    config = json.loads(args.config_json) if args.config_json else _load_config(args.config, args.set)
    if not audit.has_results(args.results):
        raise cfgmod.ConfigError(
            f"staircase audit: no results under {args.results}/ (expected {args.results}/runs/<experiment>/<variant>/"
            "run.json); run the workflow first, or point --results at its results folder"
        )
    frame = audit.run_audit(config, args.results, args.out)
    print(audit.summary_line(frame))
    print(f"details: {Path(args.out) / 'claims.md'}")
    if args.strict and not (audit.overall(frame)["verdict"] == audit.PASS).all():
        return 1
    return 0


def cmd_calibrate(args) -> int:
    from staircase import calibration

    config = json.loads(args.config_json) if args.config_json else _load_config(args.config, args.set)
    size = args.size or (config.get("analysis") or {}).get("calibration_draws", 400)
    table = calibration.run(config, args.out, size=size, n_null=args.null_samples)
    print(table.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    print(f"per draw: {Path(args.out) / 'a1.csv'}, {Path(args.out) / 'a2.csv'}")
    return 0


def cmd_registry(args) -> int:
    from staircase import audit, registry

    if args.results_table:
        print(audit.results_table(pd_read_csv(args.results_table)), end="")
    else:
        print(registry.markdown_table(), end="")
    return 0


def pd_read_csv(path):
    import pandas as pd

    try:
        return pd.read_csv(path)
    except OSError as err:
        raise cfgmod.ConfigError(f"{path}: cannot read it ({err.strerror})") from None


COMPARISONS = ("fit", "pde", "gpu", "schedule")  # bench.COMPARISONS, without importing it


def cmd_bench(args) -> int:
    from staircase import bench

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


def cmd_notebook_failure(args) -> int:
    from staircase.notebooks import failure_message

    print(failure_message(args.notebook, args.log))
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="staircase",
        description="The staircase pipeline's commands: train one job, audit the claims, calibrate their tests, "
        "benchmark, check a config. The workflow (snakemake) calls them; README.md explains each.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train every seed of one experiment variant")
    p.add_argument("--run-config", help="resolved run config as JSON, or @file")
    p.add_argument("--config", help="config.yaml (with --experiment)")
    p.add_argument("--experiment")
    p.add_argument("--variant")
    p.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="top-level override, e.g. scale=full"
    )
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--checkpoint-dir", help="where to keep the resume checkpoint")
    p.add_argument("--device", help="cpu, cuda or auto (overrides the config)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("audit", help="claim verdicts from existing results (no retraining)")
    p.add_argument("--config", default="config.yaml")
    p.add_argument("--config-json", help="the validated config as JSON (used by the workflow)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--results", default="results")
    p.add_argument("--out", default="results/audit")
    p.add_argument(
        "--strict",
        action="store_true",
        help="exit 1 unless every claim PASSes (a FAIL, an ERROR of a self-check, or too little evidence)",
    )
    p.set_defaults(func=cmd_audit)

    p = sub.add_parser("calibrate", help="false-positive rate and power of the A1/A2 tests on synthetic ensembles")
    p.add_argument("--config", default="config.yaml", help="its schedules and analysis settings are used")
    p.add_argument("--config-json", help="the validated config as JSON (used by the workflow)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--out", default="results/calibration")
    p.add_argument(
        "--size", type=int, help="draws per ensemble, null and alternative each (default: analysis.calibration_draws)"
    )
    p.add_argument("--null-samples", type=int, default=200, help="null simulations per test")
    p.set_defaults(func=cmd_calibrate)

    p = sub.add_parser("registry", help="the claims registry as the README's markdown table")
    p.add_argument(
        "--results-table", metavar="CLAIMS_CSV", help="instead: the README's results table from a claims.csv"
    )
    p.set_defaults(func=cmd_registry)

    p = sub.add_parser("bench", help="benchmarks against a naive loop, DeepXDE; ratios to results/bench")
    p.add_argument("--config", default="config.yaml")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--out", default="results/bench")
    p.add_argument("--experiment", default="fit1d", help="the fitting experiment of the fit comparison")
    p.add_argument(
        "--pde-experiment",
        default="poisson2d",
        help="the PDE experiment of the pde comparison (a built-in 2-D Poisson problem if config has none)",
    )
    p.add_argument("--only", help="comma-separated subset of: " + ", ".join(COMPARISONS))
    p.add_argument("--steps", type=int, help="override the training steps (quick runs; not for the documented numbers)")
    p.add_argument("--repeats", type=int, default=3, help="interleaved repeats; ratios are their median")
    p.add_argument("--gpu-models", type=int, default=32, help="models stacked on the GPU (with CUDA only)")
    p.set_defaults(func=cmd_bench)

    for name, func, text in (
        ("variants", cmd_variants, "list enabled experiments and their variants"),
        ("check-config", cmd_check_config, "validate a config as the workflow does (schema and checks)"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("config")
        p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
        p.set_defaults(func=func)

    p = sub.add_parser("cost", help="projected cost of a config from measured throughput (or record runs into it)")
    p.add_argument("--config", default="config.yaml")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="e.g. scale=full")
    p.add_argument("--notebooks", type=int, default=0, help="figure and table notebooks to count")
    p.add_argument("--cores", type=int, help="also say the wall time if this many cores stay busy")
    p.add_argument("--table", default=None, help="the throughput table (default: staircase/throughput.csv)")
    p.add_argument("--record", nargs="+", metavar="RUN_DIR", help="add these finished runs' measurements to the table")
    p.set_defaults(func=cmd_cost)

    p = sub.add_parser("notebook-failure", help="one line on a failed papermill notebook: the failing cell and error")
    p.add_argument("notebook", help="the partially executed copy papermill wrote")
    p.add_argument("log", nargs="?", help="papermill's output")
    p.set_defaults(func=cmd_notebook_failure)

    from staircase.lowrank.cli import add_commands

    add_commands(sub, _load_config)

    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (cfgmod.ConfigError, AlreadyRunning) as err:
        # the user's input is wrong, or the job runs already: one line. Anything else keeps its traceback.
        print(f"staircase: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
