"""MkDocs hooks (mkdocs.yml, ``hooks:``): the reference pages generated at every build, and links to
repository files outside docs/.

- ``reference/config.md`` from ``workflow/schemas/config.schema.yaml`` (every key, its type, bounds,
  default and description) and ``reference/cli.md`` from the ``staircase`` argument parser
  (``staircase.cli.parser``), so neither can drift from the code;
- a link from a page to a file of the repository outside docs/ (``[claims.yaml](../src/...)``, which
  reads on a code host) becomes the file's path in code on the site; a link to a file that does not
  exist is left alone, so ``mkdocs build --strict`` fails on it.
"""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path

import yaml
from mkdocs.structure.files import File

REPO = Path(__file__).resolve().parents[2]
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
LINK = re.compile(r"\[([^\]]+)\]\((\.\./[^)#\s]+)\)")


def on_files(files, config):
    for path, text in (("reference/config.md", config_reference()), ("reference/cli.md", cli_reference())):
        files.append(File.generated(config, path, content=text))
    return files


def on_page_markdown(markdown, page, config, files):
    return LINK.sub(lambda m: _outside_link(m, page), markdown)


def _outside_link(match: re.Match, page) -> str:
    text, target = match.groups()
    path = (REPO / "docs" / page.file.src_uri).parent / target
    inside = path.resolve().is_relative_to(REPO / "docs")
    if inside or not path.exists():
        return match.group(0)  # a page of the site, or a broken link for mkdocs to report
    shown = path.resolve().relative_to(REPO).as_posix()
    return text if text.strip("`") == shown else f"{text} (`{shown}`)"


# ---- the configuration reference --------------------------------------------------------------
def config_reference() -> str:
    schema = yaml.safe_load(SCHEMA.read_text())
    parts = [
        "# Configuration reference",
        "Generated at every build from `workflow/schemas/config.schema.yaml`, against which `config.yaml` "
        "is checked before any job starts; [Changing a setting](../configuration.md) explains the grammar "
        "(`defaults:`, `full:`, variants, sweeps) and the checks beyond the schema.",
        _one_line(schema["description"]),
        "## Top level",
        _table(schema["properties"], schema.get("required", [])),
    ]
    for name, node in schema.get("$defs", {}).items():
        parts += [
            f"## {name}",
            _one_line(node.get("description", "")),
            _table(_properties(node), node.get("required", [])),
        ]
    return "\n\n".join(part for part in parts if part) + "\n"


def _properties(node: dict) -> dict:
    return node.get("properties") or {}


def _table(properties: dict, required, prefix: str = "") -> str:
    if not properties:
        return ""
    rows = ["| key | type and bounds | default | meaning |", "|---|---|---|---|"]
    rows += _rows(properties, required, prefix)
    return "\n".join(rows)


def _rows(properties: dict, required, prefix: str) -> list[str]:
    rows = []
    for key, node in properties.items():
        name = f"`{prefix}{key}`" + (" (required)" if key in required else "")
        default = _default(node)
        desc = _one_line(node.get("description", "")).replace("|", "\\|")
        rows.append(f"| {name} | {_kind(node)} | {default} | {desc} |")
        if "$ref" not in node and _properties(node):
            rows += _rows(_properties(node), node.get("required", []), f"{prefix}{key}.")
    return rows


def _default(node: dict) -> str:
    if "default" not in node:
        return ""
    shown = yaml.safe_dump(node["default"], default_flow_style=True).strip().removesuffix("...").strip()
    return f"`{shown}`".replace("|", "\\|")


def _kind(node: dict) -> str:
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{name})"
    if "enum" in node:
        return "one of " + ", ".join(f"`{v}`" for v in node["enum"])
    if "const" in node:
        return f"`{node['const']}`"
    for combine in ("anyOf", "oneOf"):
        if combine in node:
            return " or ".join(_kind(option) for option in node[combine])
    kind = node.get("type", "any")
    kind = " or ".join(kind) if isinstance(kind, list) else kind
    if kind == "array" and isinstance(node.get("items"), dict):
        kind = f"list of {_kind(node['items'])}"
    if kind == "object" and isinstance(node.get("additionalProperties"), dict):
        kind = f"mapping of names to {_kind(node['additionalProperties'])}"
    return " ".join([kind, *_bounds(node)])


def _bounds(node: dict) -> list[str]:
    signs = {"minimum": "≥", "exclusiveMinimum": ">", "maximum": "≤", "exclusiveMaximum": "<"}
    bounds = [f"{sign} {node[key]}" for key, sign in signs.items() if key in node]
    bounds += [f"{key} {node[key]}" for key in ("minItems", "maxItems") if key in node]
    bounds += [f"pattern `{node['pattern']}`"] if "pattern" in node else []
    return [f"({', '.join(bounds)})".replace("|", "\\|")] if bounds else []


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


# ---- the command-line reference ---------------------------------------------------------------
def cli_reference() -> str:
    os.environ["COLUMNS"] = "100"  # argparse wraps help to the terminal; fix it for a stable page
    from staircase.cli import parser

    top = parser()
    parts = [
        "# Command-line reference",
        "Generated at every build from the `staircase` command's argument parser (`staircase.cli.parser`): "
        "exactly what `staircase --help` and `staircase COMMAND --help` print.",
        _help_block("staircase", top),
    ]
    for name, sub in _subcommands(top).items():
        parts += [f"## staircase {name}", _help_block(f"staircase {name}", sub)]
    return "\n\n".join(parts) + "\n"


def _subcommands(top) -> dict:
    (action,) = [a for a in top._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def _help_block(prog: str, parser) -> str:
    parser.prog = prog
    return f"```text\n{parser.format_help().rstrip()}\n```"
