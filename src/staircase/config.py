"""From config.yaml to one resolved configuration per training job.

* ``scale``: each experiment may carry a ``full:`` block of overrides, deep-merged over its
  settings when ``scale: full``. Both scales run the same code.
* variants: an experiment is one job per variant. ``sweep: {dotted.key: [values...]}`` makes
  the cartesian product (e.g. ``model.activation`` x ``model.depth``); ``variants: {name:
  {overrides}}`` names hand-made variants. With neither, the single variant is ``base``.
* every seed of a variant is trained in the same job, stacked (see ``staircase.models``).

The JSON schema (workflow/schemas/config.schema.yaml) checks types and keys; ``check`` adds the
checks a schema cannot express (task parameters, sweep keys) and checks every resolved variant
against the schema as well (a sweep can put any value into a setting), so that a bad config fails
before any job starts, with one line naming the key. Without Snakemake (the CLI), ``validate`` does
both, and ``check_run`` checks one resolved run config.
"""

from __future__ import annotations

import copy
import difflib
import inspect
import itertools
from pathlib import Path
from typing import Any

SECTION_KEYS = ("task", "model", "train", "rank", "log")


class ConfigError(ValueError):
    """A configuration problem; str() is one line naming the key."""


def deep_merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


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
    """A swept value in a variant name: a list becomes its items joined by '-' (amplitudes
    [1.0, 0.3] -> '1.0-0.3'), so that the name stays a valid file and wildcard name."""
    if isinstance(value, (list, tuple)):
        return "-".join(_fmt(v) for v in value)
    return str(value).replace("/", "-").replace(" ", "")


def experiment_settings(config: dict, name: str) -> dict:
    """The experiment's settings at the configured scale (before variants)."""
    try:
        exp = config["experiments"][name]
    except KeyError:
        raise ConfigError(f"experiments: no experiment named {name!r}; have {sorted(config['experiments'])}") from None
    # what is not a training setting stays out, so that tagging an experiment never retrains it
    not_settings = ("full", "sweep", "variants", "description", "claims", "enabled", "comparison")
    settings = {k: v for k, v in exp.items() if k not in not_settings}
    if config.get("scale", "small") == "full":
        settings = deep_merge(settings, exp.get("full", {}))
    return settings


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
            cfg.update(experiment=name, variant=label, scale=config.get("scale", "small"))
            cfg.setdefault("device", config.get("device", "auto"))
            if label in out:  # two variants of one name would be one job writing the same files
                raise ConfigError(f"{where}: two variants are named {label!r}; rename one or drop a repeated value")
            out[label] = cfg
    return out


def enabled_experiments(config: dict) -> list[str]:
    return [name for name, exp in config["experiments"].items() if exp.get("enabled", True)]


def check(config: dict) -> None:
    """Checks beyond the schema; raises ConfigError naming the key. Cheap: builds no model.

    Each resolved variant is checked against the schema too: a sweep (``{model.width: [-3]}``)
    can put a value into a setting where the schema never saw it.
    """
    from staircase.comparison import check_experiment
    from staircase.methods import check_run_config
    from staircase.models import ACTIVATIONS
    from staircase.tasks import TASKS

    schema = load_schema()
    if schema is not None:
        import jsonschema

        experiment = schema["$defs"]["experiment"]
        settings_schema = jsonschema.Draft202012Validator({"$defs": schema["$defs"], **experiment})
    for name in config["experiments"]:
        for key, problem in check_experiment(config["experiments"][name], variants(config, name)):
            raise ConfigError(f"experiments.{name}.{key}: {problem}")  # methods comparison (A6, A7)
        for vname, cfg in variants(config, name).items():
            where = f"experiments.{name}" + ("" if vname == "base" else f" (variant {vname})")
            if schema is not None:
                schema_check({k: cfg[k] for k in experiment["properties"] if k in cfg}, settings_schema, where)
            task = dict(cfg["task"])
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
            act = cfg["model"]["activation"]
            if act not in ACTIVATIONS:
                raise ConfigError(
                    f"{where}.model.activation: unknown activation {act!r}; choose one of {sorted(ACTIVATIONS)}"
                )
            if cfg["rank"]["main_eps"] not in cfg["rank"]["eps"]:
                raise ConfigError(
                    f"{where}.rank.main_eps: {cfg['rank']['main_eps']} is not one of rank.eps {cfg['rank']['eps']}"
                )
            if len(set(cfg["seeds"])) != len(cfg["seeds"]):
                raise ConfigError(f"{where}.seeds: seeds repeat: {cfg['seeds']}")
            for key, problem in check_run_config(cfg):  # training methods (staircase.methods)
                raise ConfigError(f"{where}.{key}: {problem}")

    from staircase.lowrank import settings as lowrank_settings  # papers B and C: their own sections

    lowrank_settings.check(config)


# ---- without Snakemake (the CLI): the same checks the workflow makes before any job -------------
# The schema lives with the workflow; it is found when the package runs from its checkout.
SCHEMA_PATH = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"


def load_schema() -> dict | None:
    """workflow/schemas/config.schema.yaml, or None where the package runs without the workflow."""
    import yaml

    return yaml.safe_load(SCHEMA_PATH.read_text()) if SCHEMA_PATH.exists() else None


def schema_check(instance: Any, schema, where: str = "") -> None:
    """Raise ConfigError with the most relevant violation of a schema (dict or jsonschema
    validator), one line naming the dotted key."""
    import jsonschema

    validator = schema if hasattr(schema, "iter_errors") else jsonschema.Draft202012Validator(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(instance))
    if error is not None:
        key = ".".join(([where] if where else []) + [str(p) for p in error.absolute_path]) or "config"
        raise ConfigError(f"{key}: {' '.join(error.message.split())}")


def validate(config: Any) -> None:
    """Schema, then ``check``: a whole config, as the workflow validates it."""
    if not isinstance(config, dict):
        raise ConfigError(f"config: expected a mapping of settings, got {type(config).__name__}")
    schema = load_schema()
    if schema is not None:
        schema_check(config, schema)
    check(config)


def check_run(cfg: Any) -> None:
    """Check one resolved run config (``staircase train --run-config``) as the workflow would."""
    if not isinstance(cfg, dict):
        raise ConfigError(f"run config: expected a mapping of settings, got {type(cfg).__name__}")
    name = str(cfg.get("experiment", "run"))
    experiment = {k: v for k, v in cfg.items() if k not in ("experiment", "variant", "scale", "device")}
    config = {"scale": cfg.get("scale", "small"), "experiments": {name: experiment}}
    if "device" in cfg:
        config["device"] = cfg["device"]
    validate(config)
