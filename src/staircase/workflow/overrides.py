"""``--set KEY=VALUE``: one grammar for every command that reads a config, and for Snakemake.

KEY is a top-level key (``scale``) or a dotted path into the config
(``experiments.fit1d.train.lr``); with an experiment, a path that starts with one of an
experiment's sections goes into it (``train.steps``). VALUE is YAML, read so that numbers stay
numbers at any depth: ``1e-3``, which YAML 1.1 reads as text, is a float here. Snakemake's own
``--config`` turns nested values into strings; the workflow takes the same grammar through
``--config set=KEY=VALUE`` (several: ``--config 'set=[KEY=VALUE, KEY=VALUE]'``, see
workflow/rules/common.smk and docs/cli-recipes.md).

This module is light (yaml only): the Snakefile imports it at every parse.
"""

from __future__ import annotations

from staircase.errors import ConfigError
from staircase.workflow import loader, lowrank_settings
from staircase.workflow.schema import exponent_float, load_schema

SET_HELP = (
    "override a setting, validated like the file: a top-level key (scale=full), a dotted path into the config "
    "(experiments.fit1d.train.steps=300, audit.alpha=0.01); with --experiment, a path into that experiment "
    "(train.steps=300); the value is YAML (1e-3 is a number); repeatable"
)
EXPERIMENT_SECTIONS = ("task", "model", "train", "rank", "log", "seeds", "sweep", "variants", "full", "claims")


def _numbers(value):
    """``value`` with every exponent-notation string (at any depth) read as the float it spells."""
    if isinstance(value, dict):
        return {k: _numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_numbers(v) for v in value]
    number = exponent_float(value)
    return value if number is None else number


def parse_value(item: str, value: str):
    """The VALUE of a --set ``item`` (KEY=VALUE), read as YAML by the strict loader
    (:mod:`staircase.workflow.loader`), exponent notation as floats."""
    return _numbers(loader.load_text(value, f"--set {item}", lines=False))


def apply_override(config: dict, item: str, experiment: str | None = None) -> None:
    """One --set KEY=VALUE into ``config`` (module docs). Only the last part of the path may be new
    (a new key is then checked by the schema like any other)."""
    key, eq, value = item.partition("=")
    if not eq or not key or any(not part for part in key.split(".")):
        raise ConfigError(f"--set {item}: expected KEY=VALUE, KEY a setting or a dotted path to one")
    parsed = parse_value(item, value)
    path = key.split(".")
    if experiment and path[0] in EXPERIMENT_SECTIONS:
        path = ["experiments", experiment, *path]
    node = config
    schema = load_schema() or {"properties": {}}
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
            raise ConfigError(f"--set {item}: {where} is not a section of the config{hint}")
        node = node[part]
    node[path[-1]] = parsed


def _is_entry(path: list[str]) -> bool:
    """Whether ``path`` names one experiment (experiments.<name>) or one study of papers B and C
    (<family>.studies.<name>): an entry whose sections may be left to its section's ``defaults:``."""
    if len(path) == 2 and path[0] == "experiments":
        return path[1] != "defaults"
    return len(path) == 3 and path[0] in lowrank_settings.FAMILIES and path[1] == "studies"


def set_items(given) -> list[str]:
    """The KEY=VALUE items of Snakemake's ``--config set=...``: one string, or a list of them."""
    items = [given] if isinstance(given, str) else given
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise ConfigError(f"set: {given!r}: expected KEY=VALUE, or a list [KEY=VALUE, ...]")
    return items


__all__ = ["EXPERIMENT_SECTIONS", "SET_HELP", "apply_override", "parse_value", "set_items"]
