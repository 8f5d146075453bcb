"""The claims registry (``claims.yaml`` beside this file): each claim and figure declared once.

The audit takes each claim's text, thresholds and judge (the module holding its statistic, null
and decision) from here, the workflow registers the figures
with these notebooks and captions, and the README's claims table is generated from it
(``staircase registry --markdown``). Threshold *defaults* are not here: they live in the config
schema (section ``audit:``), the one place a user looks them up; :func:`thresholds` merges them
with a config's own values.
"""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path

import yaml

from staircase.workflow.schema import load_schema  # not workflow.config: it imports torch, a notebook needs none

REGISTRY_PATH = Path(__file__).with_name("claims.yaml")
CLAIM_FIELDS = ("paper", "judge", "text", "statistic", "null_model", "verdict", "thresholds", "figures")
FIGURE_FIELDS = ("notebook", "scope", "claims", "caption")
SCOPES = ("experiment", "claim", "study", "family")


class RegistryError(ValueError):
    pass


@cache
def load() -> dict:
    """The registry, checked: every field present, every figure's claims and every claim's
    figures declared."""
    reg = yaml.safe_load(REGISTRY_PATH.read_text())
    claims, figures = reg["claims"], reg["figures"]
    for cid, c in claims.items():
        missing = [f for f in CLAIM_FIELDS if f not in c]
        if missing:
            raise RegistryError(f"claims.yaml: claim {cid} lacks {missing}")
        if importlib.util.find_spec(c["judge"]) is None:
            raise RegistryError(f"claims.yaml: claim {cid}'s judge {c['judge']!r} is not a module")
        for fig in c["figures"]:
            if fig not in figures:
                raise RegistryError(f"claims.yaml: claim {cid} names an undeclared figure {fig!r}")
    for name, f in figures.items():
        missing = [k for k in FIGURE_FIELDS if k not in f]
        if missing:
            raise RegistryError(f"claims.yaml: figure {name} lacks {missing}")
        if f["scope"] not in SCOPES:
            raise RegistryError(f"claims.yaml: figure {name} has scope {f['scope']!r}; choose one of {SCOPES}")
        for cid in f["claims"]:
            if cid not in claims:
                raise RegistryError(f"claims.yaml: figure {name} names an undeclared claim {cid!r}")
    return reg


def claims() -> dict[str, dict]:
    return load()["claims"]


def claim_text(cid: str) -> str:
    return claims().get(cid, {}).get("text", "")


def judge_module(cid: str) -> str:
    """The module that judges claim ``cid`` (its statistic, null and decision)."""
    return claims()[cid]["judge"]


def figures(scope: str | None = None) -> dict[str, dict]:
    """Declared figures and tables (``kind: table``), optionally of one scope."""
    return {n: f for n, f in load()["figures"].items() if scope is None or f["scope"] == scope}


def caption(figure: str, name: str = "") -> str:
    """A figure's caption, with {name} (the experiment or study) filled in."""
    return " ".join(load()["figures"][figure]["caption"].split()).replace("{name}", name)


def threshold_defaults() -> dict:
    """The defaults of the schema's `audit:` section (empty where the package runs without its
    checkout's workflow folder)."""
    schema = load_schema()
    if schema is None:
        return {}
    props = schema["properties"]["audit"]["properties"]
    return {k: v["default"] for k, v in props.items() if "default" in v}


def threshold_keys(judge: str) -> list[str]:
    """The audit thresholds of the claims ``judge`` (a module's name) judges, in claims.yaml's order of
    first use. Here rather than in the judge: the workflow reads it when it loads, and a judge's
    imports (scipy.stats: 0.85 s by -X importtime) would be paid by every Snakemake command, dry runs included."""
    keys = []
    for claim in claims().values():
        if claim["judge"] == judge:
            keys += [k for k in claim["thresholds"] if k not in keys]
    return keys


def thresholds(config: dict) -> dict:
    """The audit thresholds of ``config`` over the schema's defaults."""
    return {**threshold_defaults(), **(config.get("audit") or {})}


def markdown_table() -> str:
    """The README's claims table: claim, statistic, null model, verdict rule."""
    lines = [
        "| claim | paper | what is claimed | statistic | null model | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for cid, c in claims().items():
        cells = [cid, c["paper"], c["text"], c["statistic"], c["null_model"], c["verdict"]]
        lines.append("| " + " | ".join(" ".join(str(x).split()).replace("|", "\\|") for x in cells) + " |")
    return "\n".join(lines) + "\n"


__all__ = [
    "caption",
    "claim_text",
    "claims",
    "figures",
    "judge_module",
    "load",
    "markdown_table",
    "threshold_defaults",
    "thresholds",
]
