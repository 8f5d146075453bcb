"""The config's JSON schema (workflow/schemas/config.schema.yaml) and the checks no schema keyword
can make: finite numbers, integers written without a decimal point, safe names said in words.
Every check raises ``ConfigError`` with one line naming the dotted key."""

from __future__ import annotations

import copy
import functools
import math
import re
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from staircase.errors import ConfigError

# Experiment and variant names become folder and file names (results/runs/<experiment>/<variant>/,
# logs, checkpoints): letters, digits, '_', '-' (and '.' inside a variant name), never '.' or '..'
# or a hidden name, and short enough for every file name derived from them (the schema's patterns
# are these; a test keeps them equal). They end in \Z, not $: a $ matches before a trailing newline,
# and 'base' and 'base\n' would then be two names for one folder.
VARIANT_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}\Z")
VARIANT_NAME_TEXT = "letters, digits, '_', '-' and '.', not starting with '.' or '-', at most 128 characters"
NAME_RULES = {  # the schema's name patterns, said in words
    VARIANT_NAME.pattern: VARIANT_NAME_TEXT,
    r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,63}\Z": "letters, digits, '_' and '-', not starting with '-', at most 64 characters",
    # the results root's tag (results/<scale>-<tag>)
    r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}\Z": (
        "letters, digits, '_', '.' and '-', not starting with '.' or '-', at most 64 characters"
    ),
}

# The schema lives with the workflow (workflow/schemas/config.schema.yaml); the package reads it
# through a link beside this file, which a wheel turns into a copy, so an installed package (pip
# install <clone>, without the workflow) has its defaults and thresholds too.
SCHEMA_PATH = Path(__file__).with_name("config.schema.yaml")


@functools.lru_cache(maxsize=1)
def _parsed_schema() -> dict | None:
    # once per process, with libyaml where PyYAML has it: the pure-Python parser took ~0.3 s for
    # this file, and a command, a test or a config check read it several times
    if not SCHEMA_PATH.exists():
        return None
    return yaml.load(SCHEMA_PATH.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506


def load_schema() -> dict | None:
    """workflow/schemas/config.schema.yaml (a copy the caller may change), or None where the
    package runs without the workflow."""
    parsed = _parsed_schema()
    return copy.deepcopy(parsed) if parsed is not None else None


def validate_with_defaults(config: Any) -> None:
    """What the workflow's ``snakemake.utils.validate(config, schema)`` does, without parsing the
    schema file again at every call (the CLI and the tests check many configs): a Draft 2020-12
    validator whose ``properties`` first sets each missing property's default (jsonschema's FAQ
    recipe, which Snakemake's ``set_default=True`` is), raising the first ValidationError found,
    as Snakemake's does. Each default is a fresh copy, so no two configs share one.
    tests/test_config.py keeps the result equal to Snakemake's on every shipped config."""
    base = jsonschema.Draft202012Validator
    validate_properties = base.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        for name, subschema in properties.items():
            if "default" in subschema:
                instance.setdefault(name, copy.deepcopy(subschema["default"]))
        yield from validate_properties(validator, properties, instance, schema)

    schema = _parsed_schema()
    if schema is not None:
        jsonschema.validators.extend(base, {"properties": set_defaults})(schema).validate(config)


def check_values(config: Any) -> None:
    """What no schema keyword catches, over the whole loaded config: it must be a mapping, and
    every number in it finite (NaN and infinity pass every minimum and maximum; a NaN learning rate,
    eps or audit threshold would only show up as a crash, an empty column or a wrong verdict)."""
    if not isinstance(config, dict):
        raise ConfigError(f"config: expected a mapping of settings (key: value lines), got {kind_of(config)}")

    def walk(node, path):
        if isinstance(node, dict):
            for key, value in node.items():
                if not isinstance(key, str):  # YAML reads `1:`, `true:`, `2024-01-01:` as a number, boolean, date
                    where = ".".join([*path, str(key)])
                    raise ConfigError(f"{where}: the key {key!r} is {kind_of(key)}, not a name; quote it")
                walk(value, [*path, key])
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, [*path, str(i)])
        elif isinstance(node, float) and not math.isfinite(node):
            raise ConfigError(f"{'.'.join(path) or 'config'}: {node} is not a finite number")

    walk(config, [])


def kind_of(value: Any) -> str:
    """What a loaded YAML document is, in words (for a config that is not a mapping)."""
    if value is None:
        return "nothing (it is empty)"
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, (int, float)):
        return "a number"
    return {list: "a list", str: "a string"}.get(type(value), f"a {type(value).__name__}")


def validator(schema: dict):
    """A JSON-schema validator for ``schema`` whose ``integer`` is an int, not a float of integral
    value: YAML reads ``width: 40.0`` as a float, and torch refuses a float size."""
    base = jsonschema.Draft202012Validator
    checker = base.TYPE_CHECKER.redefine(
        "integer", lambda _, value: isinstance(value, int) and not isinstance(value, bool)
    )
    return jsonschema.validators.extend(base, type_checker=checker)(schema)


def schema_check(instance: Any, schema, where: str = "") -> None:
    """Raise ConfigError with the most relevant violation of a schema (dict or jsonschema
    validator), one line naming the dotted key."""
    checker = schema if hasattr(schema, "iter_errors") else validator(schema)
    error = jsonschema.exceptions.best_match(checker.iter_errors(instance))
    if error is not None:
        key, problem = schema_problem(error)
        raise ConfigError(f"{'.'.join(filter(None, [where, key])) or 'config'}: {problem}")


# what YAML 1.1 (PyYAML) leaves as text but any reader means as a number: 1e-3, 5E4, 2.5e3
_EXPONENT_FLOAT = re.compile(r"[-+]?(\d+(\.\d*)?|\.\d+)[eE][-+]?\d+")


def exponent_float(text) -> float | None:
    """The float that ``text`` spells in exponent notation YAML 1.1 does not read (None if it is not one)."""
    return float(text) if isinstance(text, str) and _EXPONENT_FLOAT.fullmatch(text.strip()) else None


def yaml_number_text(value: float) -> str:
    """How to write ``value`` so that YAML 1.1 reads a float: a dot and a signed exponent (1.0e-3)."""
    mantissa, exponent = f"{value:e}".split("e")
    mantissa = mantissa.rstrip("0")
    return f"{mantissa}0e{int(exponent):+d}" if mantissa.endswith(".") else f"{mantissa}e{int(exponent):+d}"


def schema_problem(error) -> tuple[str, str]:
    """(dotted key, one-line problem) of a jsonschema ValidationError; a name that breaks its
    pattern and an integer written as a float are said in words."""
    key = ".".join(str(p) for p in error.absolute_path)
    problem = " ".join(error.message.split())
    if error.validator == "pattern" and error.validator_value in NAME_RULES:
        name = error.instance if len(error.instance) <= 64 else error.instance[:60]
        problem = f"{name!r}{'' if name == error.instance else ' (and more)'} is not a safe name"
        problem += f" ({NAME_RULES[error.validator_value]})"
    elif error.validator == "type" and isinstance(error.instance, float) and error.instance.is_integer():
        if "integer" in str(error.validator_value):
            problem = f"{error.instance} is not an integer (write {int(error.instance)}, without a decimal point)"
    elif error.validator == "type" and exponent_float(error.instance) is not None:
        written = yaml_number_text(exponent_float(error.instance))
        problem = f"{error.instance!r} is text to YAML 1.1, not a number: write {written}"
    elif error.validator in ("anyOf", "oneOf") and error.context:  # say what each alternative wanted
        alternatives = list(dict.fromkeys(" ".join(sub.message.split()) for sub in error.context))
        problem = f"{error.instance!r} is not valid: " + "; or ".join(alternatives)
    return key, problem
