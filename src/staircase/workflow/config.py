"""From config.yaml to one resolved configuration per training job.

* ``scale``: each experiment may carry a ``full:`` block of overrides, deep-merged over its
  settings when ``scale: full``. Both scales run the same code.
* variants: an experiment is one job per variant. ``sweep: {dotted.key: [values...]}`` makes
  the cartesian product (e.g. ``model.activation`` x ``model.depth``); ``variants: {name:
  {overrides}}`` names hand-made variants. With neither, the single variant is ``base``.
* every seed of a variant is trained in the same job, stacked (see ``staircase.networks.mlp``).

The JSON schema (workflow/schemas/config.schema.yaml) checks types, keys, ranges and names;
``check`` adds the checks a schema cannot express (task parameters, sweep keys, finite numbers,
integers written as floats, safe variant names from sweeps, a log schedule that can resolve a
stair, each job's memory against the machine's, see staircase.workflow.memory) and checks every resolved
variant against the schema as well (a sweep can put any value into a setting), so that a bad config
fails before any job starts, with one line naming the key. Without Snakemake (the CLI), ``validate``
does both, and ``check_run`` checks one resolved run config.
"""

from __future__ import annotations

import copy
import difflib
import inspect
import itertools
from typing import Any

import numpy as np

from staircase.errors import ConfigError
from staircase.training import budget
from staircase.workflow import lowrank_settings, memory
from staircase.workflow.defaults import at_scale, deep_merge
from staircase.workflow.schema import (  # noqa: F401  (re-exported: config is the workflow's one entry)
    NAME_RULES,
    SCHEMA_PATH,
    VARIANT_NAME,
    VARIANT_NAME_TEXT,
    check_values,
    kind_of,
    load_schema,
    schema_check,
    schema_problem,
    validate_with_defaults,
    validator,
)

SECTION_KEYS = ("task", "model", "train", "rank", "log")


def set_dotted(cfg: dict, dotted: str, value: Any, where: str) -> None:
    *parents, leaf = dotted.split(".")
    node = cfg
    for part in parents:
        if not isinstance(node.get(part), dict):
            raise ConfigError(f"{where}: sweep key {dotted!r} does not name a setting ({part!r} is not a section)")
        node = node[part]
    if leaf not in node:
        close = difflib.get_close_matches(leaf, list(node), n=1)
        hint = f"; did you mean {'.'.join([*parents, close[0]])!r}?" if close else ""
        raise ConfigError(f"{where}: sweep key {dotted!r} does not name an existing setting{hint}")
    node[leaf] = value


def _fmt(value: Any) -> str:
    return str(value).replace("/", "-").replace(" ", "")


def _sweep_values(sweep: dict, where: str) -> None:
    """A sweep names each variant after its values: only single values (numbers, strings,
    booleans) make a name; a mapping (e.g. a whole train.schedule) or a list is a hand-made variant."""
    for key, values in sweep.items():
        for value in values:
            if isinstance(value, (dict, list)) or value is None:
                kind = {dict: "a mapping", list: "a list"}.get(type(value), "empty")
                raise ConfigError(
                    f"{where}.sweep.{key}: the value {value!r} is {kind}, which names no variant; sweep single "
                    f"values, or write each setting as a named variant (variants: {{name: {{{key.split('.')[0]}: "
                    "...}})"
                )


# An experiment's settings, in the order resolved configs have always listed them (Snakemake
# compares a job's parameters as written, so the order stays fixed whichever block sets a key).
SETTINGS_ORDER = ("task", "model", "train", "rank", "log", "seeds")
# what is not a training setting stays out, so that tagging an experiment never retrains it
NOT_SETTINGS = ("full", "sweep", "variants", "description", "claims", "enabled", "comparison")


def experiment_names(config: dict) -> list[str]:
    """The experiments, in file order (``experiments.defaults`` is not one)."""
    return [name for name in config["experiments"] if name != "defaults"]


def experiment_settings(config: dict, name: str) -> dict:
    """The experiment's settings at the configured scale (before variants). Resolution order, each
    deep-merged over the one before (docs/configuration.md): ``experiments.defaults`` at the
    scale < the experiment < its ``full:`` at scale full < a named variant < a sweep's values."""
    if name == "defaults" or name not in config["experiments"]:
        have = sorted(experiment_names(config))
        raise ConfigError(f"experiments: no experiment named {name!r}; have {have}")
    scale = config.get("scale", "small")
    defaults = at_scale(config["experiments"].get("defaults") or {}, scale)
    merged = deep_merge(defaults, at_scale(config["experiments"][name], scale, NOT_SETTINGS))
    order = [k for k in SETTINGS_ORDER if k in merged]
    return {k: merged[k] for k in [*order, *(k for k in merged if k not in order)]}


def variants(config: dict, name: str) -> dict[str, dict]:
    """All variants of an experiment: {variant name: resolved run config}."""
    settings = experiment_settings(config, name)  # first: names a misspelt experiment
    exp = config["experiments"][name]
    where = f"experiments.{name}"
    out: dict[str, dict] = {}
    named = exp.get("variants") or {"base": {}}
    sweep = exp.get("sweep") or {}
    if config.get("scale", "small") == "full":
        sweep = exp.get("full", {}).get("sweep", sweep)
    _sweep_values(sweep, where)
    keys = list(sweep)
    short = [k.split(".")[-1] for k in keys]
    labels = short if len(set(short)) == len(short) else [k.replace(".", "-") for k in keys]
    for vname, override in named.items():
        base = deep_merge(settings, override)
        for combo in itertools.product(*(sweep[k] for k in keys)):
            cfg = copy.deepcopy(base)
            for key, value in zip(keys, combo):
                set_dotted(cfg, key, value, where)
            parts = [f"{label}-{_fmt(v)}" for label, v in zip(labels, combo)]
            label = "_".join(([] if vname == "base" and parts else [vname]) + parts)
            if not VARIANT_NAME.match(label):  # it names folders and files: <root>/runs/<experiment>/<label>
                what = f"sweep {', '.join(keys)}" if keys else f"variants.{vname}"
                raise ConfigError(
                    f"{where}.{'sweep' if keys else 'variants'}: the variant name {label[:60]!r}"
                    f"{'...' if len(label) > 60 else ''} (from {what}) is not a safe file name "
                    f"({VARIANT_NAME_TEXT}); rename the variant or sweep fewer or shorter values"
                )
            cfg.update(experiment=name, variant=label, scale=config.get("scale", "small"))
            cfg.setdefault("device", config.get("device", "auto"))
            same = next((v for v in out if v.casefold() == label.casefold()), None)
            if same is not None:  # one job's files twice, or one folder on a case-insensitive file system
                named = f"{label!r}" if same == label else f"{same!r} and {label!r} (equal but for case)"
                raise ConfigError(f"{where}: two variants are named {named}; rename one or drop a repeated value")
            out[label] = cfg
    return out


def results_root(config: dict) -> str:
    """Where a run of the workflow writes: ``results/<scale>``, or ``results/<scale>-<tag>`` with a
    ``tag:`` (e.g. ``--config tag=lr-scan``), so the default and the full scale, or two settings,
    live side by side. A relative path: a checkout moved with its results re-runs nothing."""
    tag = config.get("tag")
    return f"results/{config.get('scale', 'small')}" + (f"-{tag}" if tag else "")


def enabled_experiments(config: dict) -> list[str]:
    return [name for name in experiment_names(config) if config["experiments"][name].get("enabled", True)]


def check_experiment(experiment: dict, variant_configs: dict) -> list[tuple[str, str]]:
    """Problems with an experiment's `comparison:` block, as (key, problem) pairs."""
    claims = set(experiment.get("claims", []))
    comparison = experiment.get("comparison")
    if not comparison:
        return [("comparison", "claims A6/A7 need a comparison: block")] if claims & {"A6", "A7"} else []
    names = set(variant_configs)
    problems = []
    # the eps-rank of the last hidden layer is at most its width: a threshold above it is never reached
    configs = variant_configs.values() if isinstance(variant_configs, dict) else []
    width = min((cfg["model"]["width"] for cfg in configs), default=None)
    unreachable = [t for t in comparison.get("rank_thresholds") or [] if width is not None and t > width]
    if unreachable:
        problems.append(
            ("comparison.rank_thresholds", f"{unreachable} above the network's width {width}: no run can reach them")
        )
    if comparison["baseline"] not in names:
        problems.append(("comparison.baseline", f"{comparison['baseline']!r} is not a variant (have {sorted(names)})"))
    for method, base in (comparison.get("baseline_of") or {}).items():
        for role, name in (("method", method), ("baseline", base)):
            if name not in names:
                problems.append((f"comparison.baseline_of.{method}", f"{role} {name!r} is not a variant"))
    return problems


def check(config: dict) -> None:
    """Checks beyond the schema; raises ConfigError naming the key. Cheap: builds no model.

    Each resolved variant is checked against the schema too: a sweep (``{model.width: [-3]}``)
    can put a value into a setting where the schema never saw it, and ``experiments.defaults``
    may fill what an experiment leaves out (so what a job needs is required only once merged).
    """
    check_values(config)
    schema = load_schema()
    settings_check = None
    if schema is not None:
        # again, strictly: the workflow's first pass (Snakemake's validate, which fills defaults)
        # takes 40.0 for an integer, which torch then refuses
        schema_check(config, validator(schema))
        run = schema["$defs"]["run"]
        run_validator = validator({"$defs": schema["$defs"], **run})

        def settings_check(cfg, where):
            schema_check({k: cfg[k] for k in run["properties"] if k in cfg}, run_validator, where)

    min_points = (config.get("analysis") or {}).get("min_points", 2)
    limit, source = memory.job_limit(config)
    unique_when_folded(experiment_names(config), "experiments")
    for name in experiment_names(config):
        if settings_check is not None:  # names a missing key before any variant needs it
            settings_check(experiment_settings(config, name), f"experiments.{name}")
        for key, problem in check_experiment(config["experiments"][name], variants(config, name)):
            raise ConfigError(f"experiments.{name}.{key}: {problem}")  # methods comparison (A6, A7)
        for vname, cfg in variants(config, name).items():
            where = f"experiments.{name}" + ("" if vname == "base" else f" (variant {vname})")
            if settings_check is not None:
                settings_check(cfg, where)
            _check_run_settings(cfg, where, min_points)
            if config["experiments"][name].get("enabled", True):  # a job that never runs needs no memory
                memory.check(memory.train_job(cfg), limit, source, where)

    lowrank_settings.check(config)


def unique_when_folded(names, where: str) -> None:
    """Names that differ only in case are one folder on a case-insensitive file system (macOS, Windows)."""
    seen: dict[str, str] = {}
    for name in names:
        if name.casefold() in seen:
            raise ConfigError(f"{where}: {seen[name.casefold()]!r} and {name!r} differ only in case; rename one")
        seen[name.casefold()] = name


# settings that scale every update or weight: one the precision holds as zero or subnormal trains nothing
SCALE_KEYS = ("lr", "init_gain")


def _check_precision(cfg: dict, where: str) -> None:
    dtype = cfg["train"].get("dtype", "float32")
    tiny = float(np.finfo(np.float64 if dtype == "float64" else np.float32).tiny)

    def walk(node, path):
        for key, value in node.items():
            if isinstance(value, dict):
                walk(value, [*path, key])
            elif key in SCALE_KEYS and isinstance(value, (int, float)) and 0 <= value < tiny:
                raise ConfigError(
                    f"{where}.{'.'.join([*path, key])}: {value} is zero or subnormal in {dtype} (smallest normal "
                    f"{tiny:.3g}): nothing would train"
                )

    walk({k: cfg[k] for k in ("model", "train") if isinstance(cfg.get(k), dict)}, [])


def _check_task(task: dict, where: str) -> None:
    """The task's parameters against its constructor, then the task's own checks."""
    from staircase.problems import TASKS  # here, not at the top: see _check_run_settings

    task = dict(task)
    tname = task.pop("name")
    if tname not in TASKS:
        raise ConfigError(f"{where}.task.name: unknown task {tname!r}; choose one of {sorted(TASKS)}")
    sig = inspect.signature(TASKS[tname].__init__)
    accepted = [p for p in sig.parameters if p != "self"]
    for key in task:
        if key not in accepted:
            raise ConfigError(f"{where}.task.{key}: not a parameter of task {tname!r} (accepted: {accepted})")
    for key in accepted:
        if sig.parameters[key].default is inspect.Parameter.empty and key not in task:
            raise ConfigError(f"{where}.task.{key}: required by task {tname!r} but missing")
    try:  # the task's own checks (e.g. one amplitude per frequency); constructors must be cheap
        TASKS[tname](**task)
    except (ValueError, TypeError) as err:
        raise ConfigError(f"{where}.task: {' '.join(str(err).split()).removeprefix('task: ')}") from None


def _check_run_settings(cfg: dict, where: str, min_points: int) -> None:
    """One resolved variant: task, activation, eps, seeds, training methods, precision, log schedule."""
    # imported here, not at the top: the notebooks, the audit and the calibration read configs
    # through this module without validating them. None of these imports torch (a task's tensors are
    # built when it trains), so validating a config, which every Snakemake command does, costs no
    # torch import (~2.2 s; tests/test_imports.py keeps it so)
    from staircase.networks import ACTIVATION_NAMES
    from staircase.training.run_checks import check_run_config

    _check_task(cfg["task"], where)
    _check_precision(cfg, where)
    act = cfg["model"]["activation"]
    if act not in ACTIVATION_NAMES:
        raise ConfigError(
            f"{where}.model.activation: unknown activation {act!r}; choose one of {sorted(ACTIVATION_NAMES)}"
        )
    if cfg["rank"]["main_eps"] not in cfg["rank"]["eps"]:
        raise ConfigError(
            f"{where}.rank.main_eps: {cfg['rank']['main_eps']} is not one of rank.eps {cfg['rank']['eps']}"
        )
    if len(set(cfg["seeds"])) != len(cfg["seeds"]):
        raise ConfigError(f"{where}.seeds: seeds repeat: {cfg['seeds']}")
    # training methods (staircase.training.methods) and a budget by progress (staircase.training.budget)
    for key, problem in [*check_run_config(cfg), *budget.problems(cfg["train"])]:
        raise ConfigError(f"{where}.{key}: {problem}")
    lg = cfg["log"]
    count = memory.measurements(cfg["train"]["steps"], lg["dense_every"], lg["dense_until"], lg["sparse_every"])
    if count < 2 * min_points:  # two plateaus of min_points measurements: the least that shows a stair
        raise ConfigError(
            f"{where}.log: measures at {count} steps only (of train.steps {cfg['train']['steps']}); a stair "
            f"needs two plateaus of analysis.min_points = {min_points} measurements, so at least "
            f"{2 * min_points}: lower log.dense_every or log.sparse_every"
        )


# ---- without Snakemake (the CLI): the same checks the workflow makes before any job -------------
def validate(config: Any) -> None:
    """Schema, then ``check``: a whole config, as the workflow validates it."""
    check_values(config)
    schema = load_schema()
    if schema is not None:
        schema_check(config, schema)
    check(config)


def check_run(cfg: Any) -> None:
    """Check one resolved run config (``staircase train --run-config``) as the workflow would."""
    if not isinstance(cfg, dict):
        raise ConfigError(f"run config: expected a mapping of settings, got {type(cfg).__name__}")
    for key in ("experiment", "variant"):  # the job's name, as staircase.workflow.config.variants resolves it
        if not isinstance(cfg.get(key), str) or not VARIANT_NAME.match(cfg[key]):
            problem = "missing" if key not in cfg else f"{cfg[key]!r} is not a name ({VARIANT_NAME_TEXT})"
            raise ConfigError(f"run config: {key}: {problem} (a run config names its experiment and variant)")
    name = cfg["experiment"]
    experiment = {k: v for k, v in cfg.items() if k not in ("experiment", "variant", "scale", "device")}
    config = {"scale": cfg.get("scale", "small"), "experiments": {name: experiment}}
    if "device" in cfg:
        config["device"] = cfg["device"]
    validate(config)
