"""The one way a configuration is read: config.yaml and every --configfile (Snakemake, through
workflow/rules/common.smk), each ``--set`` value and every ``staircase`` command's ``--config``.

PyYAML's SafeLoader, made strict (:class:`StrictLoader`), so that a config means what it looks like:

* a key given twice in one mapping is refused (YAML keeps the last one silently);
* YAML 1.1 readings that surprise are refused: ``0150`` (octal, 104), ``1:30`` (sexagesimal, 90),
  and ``yes``/``no``/``on``/``off`` (booleans); ``true``/``false`` and quoted strings are fine;
* nesting deeper than :data:`MAX_DEPTH`, an alias that refers to the node it is inside (recursion)
  and more than :data:`MAX_NODES` values once aliases are expanded (an alias bomb) are refused;
* a ``__use_yte__`` key is refused: Snakemake would run the template's Python before any check.

What it returns is a plain tree: an alias is copied wherever it is used, never shared, so an
override of one experiment (``--set experiments.fit1d.task.train_points=50``) cannot change
another that names the same ``&anchor`` block. Every problem is a ConfigError, one line naming
the file (and line) and what to write instead.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from staircase.errors import ConfigError

MAX_DEPTH = 32  # config.yaml nests 6 deep; deeper is a mistake or an attack (RecursionError otherwise)
MAX_NODES = 200_000  # values after alias expansion; config.yaml has about 2,000
OCTAL = re.compile(r"[-+]?0[0-7_]+")
SEXAGESIMAL = re.compile(r"[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+(\.[0-9_]*)?")
YAML11_BOOL = re.compile(r"yes|Yes|YES|no|No|NO|on|On|ON|off|Off|OFF")
TEMPLATE_KEY = "__use_yte__"
MERGE_TAG = "tag:yaml.org,2002:merge"


class StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys, YAML 1.1 surprises, deep nesting and recursive
    aliases while it reads (see the module's docstring); ``source`` names the file in messages."""

    source = "config"
    lines = True  # name the line (a file); not for a one-line value (--set)

    def __init__(self, stream):
        super().__init__(stream)
        self._open_anchors: set[str] = set()
        self._depth = 0

    def _refuse(self, node_or_mark, problem: str) -> ConfigError:
        mark = getattr(node_or_mark, "start_mark", node_or_mark)
        line = f":{mark.line + 1}" if mark is not None and self.lines else ""
        return ConfigError(f"{self.source}{line}: {problem}")

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent) and self.peek_event().anchor in self._open_anchors:
            event = self.peek_event()
            raise self._refuse(event.start_mark, f"the alias *{event.anchor} refers to a block it is inside")
        event = self.peek_event()
        anchor = getattr(event, "anchor", None)
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise self._refuse(event.start_mark, f"nested deeper than {MAX_DEPTH} levels")
        if anchor is not None and not self.check_event(yaml.AliasEvent):
            self._open_anchors.add(anchor)
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1
            self._open_anchors.discard(anchor)

    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            if key_node.tag == MERGE_TAG:
                continue  # `<<: *block` merges a block; its keys may be overridden by the mapping's own
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, (list, dict)):
                raise self._refuse(key_node, "a key is a list or mapping; keys are names")
            if key in seen:
                raise self._refuse(
                    key_node, f"the key {key!r} is given twice in one mapping (also on line {seen[key] + 1}); keep one"
                )
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_int(self, node):
        text = str(node.value)
        if OCTAL.fullmatch(text) and text.lstrip("+-") not in ("0", "00"):
            raise self._refuse(
                node, f"{text} reads as an octal number in YAML 1.1; write {text.lstrip('+-0') or 0}, or quote it"
            )
        if SEXAGESIMAL.fullmatch(text):
            raise self._refuse(node, f"{text} reads as a base-60 number in YAML 1.1; write the number, or quote it")
        return super().construct_yaml_int(node)

    def construct_yaml_float(self, node):
        if SEXAGESIMAL.fullmatch(str(node.value)):
            raise self._refuse(node, f"{node.value} reads as a base-60 number in YAML 1.1; write it out, or quote it")
        return super().construct_yaml_float(node)

    def construct_yaml_bool(self, node):
        if YAML11_BOOL.fullmatch(str(node.value)):
            problem = f"{node.value!r} reads as true/false in YAML 1.1; write true or false, or quote it"
            raise self._refuse(node, problem)
        return super().construct_yaml_bool(node)


StrictLoader.add_constructor("tag:yaml.org,2002:int", StrictLoader.construct_yaml_int)
StrictLoader.add_constructor("tag:yaml.org,2002:float", StrictLoader.construct_yaml_float)
StrictLoader.add_constructor("tag:yaml.org,2002:bool", StrictLoader.construct_yaml_bool)


def unshared(value: Any, source: str) -> Any:
    """A copy of a loaded config in which no block is shared by two keys (what Snakemake's own
    loader returns shares an ``&anchor`` block wherever it is aliased), bounded in size."""
    return _plain_tree(value, source, [MAX_NODES])


def _plain_tree(value: Any, source: str, budget: list[int]) -> Any:
    """A copy of ``value`` in which no dict or list is shared (aliases expanded), refusing more
    than MAX_NODES values in all: the copy is bounded, whatever the aliases multiply."""
    budget[0] -= 1
    if budget[0] < 0:
        raise ConfigError(f"{source}: more than {MAX_NODES} values once its aliases are expanded (an alias bomb?)")
    if isinstance(value, dict):
        return {key: _plain_tree(item, source, budget) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain_tree(item, source, budget) for item in value]
    return value


def load_text(text: str, source: str, lines: bool = True) -> Any:
    """The YAML document ``text``, strictly read (see the module); ``source`` names it in messages,
    with the line where ``lines``."""
    loader_class = type("SourceLoader", (StrictLoader,), {"source": source, "lines": lines})
    try:
        value = yaml.load(text, Loader=loader_class)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as err:
        raise ConfigError(f"{source}: not valid YAML ({' '.join(str(err).split())[:300]})") from None
    except RecursionError:
        raise ConfigError(f"{source}: nested too deeply to read") from None
    value = unshared(value, source)
    if isinstance(value, dict) and TEMPLATE_KEY in value:
        raise ConfigError(
            f"{source}: {TEMPLATE_KEY}: templates run code before any check and are not supported; write the values out"
        )
    return value


def load_file(path: str | Path) -> Any:
    """A configuration file, strictly read; unreadable, not UTF-8 or invalid YAML is a ConfigError
    naming ``path``."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"{path}: cannot read it ({err.strerror})") from None
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not a UTF-8 text file (byte {err.start}: {err.reason})") from None
    return load_text(text, str(path))


def load_config_file(path: str | Path) -> dict:
    """A configuration file that must hold a mapping of settings."""
    from staircase.workflow.schema import kind_of

    config = load_file(path)
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: expected a mapping of settings (key: value lines), got {kind_of(config)}")
    return config


def check_config_args(args, parsed) -> None:
    """Snakemake's ``--config KEY=VALUE`` arguments (``args``: the raw strings; ``parsed``: the
    values Snakemake made of them). Snakemake reads a VALUE that is not a number or True/False
    with YAML's BaseLoader, which keeps the last of duplicate keys and expands aliases without
    bound; a VALUE it made a list or mapping is read again here, strictly, and a KEY given twice
    (Snakemake keeps the last) is refused. A plain string value is left as Snakemake reads it:
    there ``yes`` or ``1:30`` stays the string it looks like. ConfigError, one line, otherwise."""
    seen = set()
    for arg in args or ():
        key, _, raw = str(arg).partition("=")
        if key in seen:
            raise ConfigError(f"--config {key}: given twice; Snakemake would keep the last value silently")
        seen.add(key)
        if isinstance(parsed.get(key), (list, dict)):
            load_text(raw, f"--config {key}", lines=False)
