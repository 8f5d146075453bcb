"""From config.yaml to one resolved configuration per training job.

* ``scale``: each experiment may carry a ``full:`` block of overrides, deep-merged over its
  settings when ``scale: full``. Both scales run the same code.
* variants: an experiment is one job per variant. ``sweep: {dotted.key: [values...]}`` makes
  the cartesian product (e.g. ``model.activation`` x ``model.depth``); ``variants: {name:
  {overrides}}`` names hand-made variants. With neither, the single variant is ``base``.
* every seed of a variant is trained in the same job, stacked (see ``staircase.models``).

The JSON schema (workflow/schemas/config.schema.yaml) checks types and keys; ``check`` adds the
checks a schema cannot express (task parameters, sweep keys) so that a bad config fails before any
job starts, with one line naming the key.
"""

from __future__ import annotations

import copy
import inspect
import itertools
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
        raise ConfigError(f"{where}: sweep key {dotted!r} does not name an existing setting")
    node[leaf] = value


def _fmt(value: Any) -> str:
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
    exp = config["experiments"][name]
    settings = experiment_settings(config, name)
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
            out[label] = cfg
    return out


def enabled_experiments(config: dict) -> list[str]:
    return [name for name, exp in config["experiments"].items() if exp.get("enabled", True)]


def check(config: dict) -> None:
    """Checks beyond the schema; raises ConfigError naming the key. Cheap: builds no model."""
    from staircase.comparison import check_experiment
    from staircase.methods import check_run_config
    from staircase.models import ACTIVATIONS
    from staircase.tasks import TASKS

    for name in config["experiments"]:
        for key, problem in check_experiment(config["experiments"][name], variants(config, name)):
            raise ConfigError(f"experiments.{name}.{key}: {problem}")  # methods comparison (A6, A7)
        for vname, cfg in variants(config, name).items():
            where = f"experiments.{name}" + ("" if vname == "base" else f" (variant {vname})")
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
