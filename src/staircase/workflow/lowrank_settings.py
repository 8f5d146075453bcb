"""The ``rank_collapse:`` (paper B) and ``alignment:`` (paper C) sections of config.yaml -> one
resolved configuration per study (one training job each).

A section has the grammar of ``experiments:`` (docs/configuration.md): ``defaults:`` (``model``,
``train``, ``log``, ``metrics``, ``seeds``, and a ``full:`` block of overrides at ``scale: full``) and its
``studies``, each with its own settings and ``full:`` block. Resolution order, each deep-merged over the
one before: the defaults at the scale < the study < the study's ``full:`` at scale full. Lists (seeds, the
weight-decay grid, noise levels) are replaced, not merged. What only describes a study
(``description``, ``claims``, ``enabled``) stays out of the resolved config, so tagging a study never
retrains it. All grid cells and seeds of a study are trained in one process, stacked; or, for a
rank_collapse study with ``split: cells`` (:func:`parts`), one process per lambda x noise cell (all its
seeds stacked) and a merge that writes the study's files as the one process would. ``split`` is how the
study is run, not what it computes: it stays out of the resolved config too.

``check(config)`` adds what the JSON schema cannot express (which data keys each data set needs,
architecture constraints), raising ``staircase.workflow.config.ConfigError`` with one line naming the key.
"""

from __future__ import annotations

import inspect

from staircase.errors import ConfigError
from staircase.workflow import memory, schema
from staircase.workflow.defaults import at_scale, deep_merge

FAMILIES = ("rank_collapse", "alignment")
SHARED_KEYS = ("model", "train", "log", "metrics", "seeds")
NOT_SETTINGS = ("description", "claims", "enabled", "full", "split")


def datasets() -> dict[str, dict]:
    """Data sets per family, and the generator whose parameters a study's ``data`` block may set.

    A function, not a module constant: the generators' module imports torch, which readers of a
    config (notebooks, audit) should not pay for (tests/test_imports.py)."""
    from staircase.problems import datasets as datamod

    return {
        "rank_collapse": {"digits": datamod.digits, "gaussian_mixture": datamod.gaussian_mixture},
        "alignment": {"digits01": datamod.digits01, "separable_gaussian": datamod.separable_gaussian},
    }


# keys of a data block that are not generator parameters


def enabled(config: dict, family: str) -> bool:
    return bool(config.get(family)) and config[family].get("enabled", True)


def studies(config: dict, family: str) -> dict[str, dict]:
    """{study: resolved run config} of the enabled studies of a family (empty if the section is
    absent or disabled): the section's ``defaults`` at the scale < the study at the scale."""
    if not enabled(config, family):
        return {}
    scale = config.get("scale", "small")
    merged = at_scale(config[family].get("defaults") or {}, scale)
    defaults = {k: merged[k] for k in SHARED_KEYS if k in merged}
    out = {}
    for name, study in (config[family].get("studies") or {}).items():
        if not study.get("enabled", True):
            continue
        cfg = deep_merge(defaults, at_scale(study, scale, NOT_SETTINGS))
        cfg.pop("split", None)  # a study's full: block may set it; it does not change a number
        cfg.update(family=family, study=name, scale=scale)
        cfg.setdefault("device", config.get("device", "auto"))
        out[name] = cfg
    return out


def parts(config: dict, family: str, study: str) -> int:
    """How many jobs train an enabled study at the config's scale: 0 for one job writing the study's
    files itself; with ``split: cells`` (rank_collapse only), one job per lambda x noise cell, and a
    merge (``staircase collapse-merge``) joins them."""
    block = at_scale(config[family]["studies"][study], config.get("scale", "small"))
    if block.get("split", "none") == "none":
        return 0
    from staircase.training import collapse  # torch: see datasets()

    return collapse.grid_cells(studies(config, family)[study])


def claims_of(config: dict, family: str) -> dict[str, list[str]]:
    """{study: the claims it is tagged with} (enabled studies only)."""
    return {name: list(config[family]["studies"][name].get("claims", [])) for name in studies(config, family)}


def run_dir(family: str, study: str, root: str = "results/small") -> str:
    """Where a study's job writes: <root>/runs/<family>/<study> (relative to the workflow's
    directory; root: staircase.workflow.config.results_root)."""
    return f"{root}/runs/{family}/{study}"


def tagged(config: dict, family: str, claims=None) -> list[str]:
    """Enabled studies of a family, optionally only those tagged with one of ``claims``."""
    tags = claims_of(config, family)
    return [s for s in tags if claims is None or set(claims) & set(tags[s])]


def check(config: dict) -> None:
    """Checks beyond the schema for both sections; raises ConfigError naming the key. Each
    study's job must fit in the memory a job may have (staircase.workflow.memory)."""
    limit, source = memory.job_limit(config)
    for family in FAMILIES:
        if family in config.get("experiments", {}):
            raise ConfigError(
                f"experiments.{family}: the name is taken (<results root>/runs/{family} holds the {family} studies)"
            )
    for family in FAMILIES:
        for name, cfg in studies(config, family).items():
            where = f"{family}.studies.{name}"
            for key in ("data", "model", "train", "log", "seeds"):
                if key not in cfg:
                    raise ConfigError(f"{where}.{key}: missing (set it in the study or in {family}.defaults)")
            _check_data(family, where, cfg["data"])
            if len(set(cfg["seeds"])) != len(cfg["seeds"]):
                raise ConfigError(f"{where}.seeds: seeds repeat: {cfg['seeds']}")
            if family == "rank_collapse":
                _check_collapse(where, cfg)
            else:
                _check_alignment(where, cfg)
            memory.check(memory.lowrank_job(family, cfg), limit, source, where)


SECTION_SCHEMA = {"rank_collapse": "collapse_section", "alignment": "alignment_section"}


def check_run(cfg, family: str) -> None:
    """Check one resolved study config (``staircase collapse/align --run-config``) as the workflow
    would: the schema of its section, then ``check`` (which sizes the job's memory too)."""
    if not isinstance(cfg, dict):
        raise ConfigError(f"run config: expected a mapping of settings, got {schema.kind_of(cfg)}")
    study = cfg.get("study")
    if not isinstance(study, str):
        raise ConfigError("run config: study: missing (a study's run config names its study)")
    settings = {k: v for k, v in cfg.items() if k not in ("family", "study", "scale", "device")}
    section = {"studies": {study: settings}}
    schema.check_values({family: section})
    full = schema.load_schema()
    if full is not None:
        sub = {"$defs": full["$defs"], **full["$defs"][SECTION_SCHEMA[family]]}
        schema.schema_check(section, schema.validator(sub), family)
    check({"scale": cfg.get("scale", "small"), family: section})


def _check_data(family: str, where: str, data: dict) -> None:
    from staircase.problems.datasets import DATA_EXTRA

    known = datasets()[family]
    name = data.get("name")
    if name not in known:
        raise ConfigError(f"{where}.data.name: {name!r} is not a {family} data set; choose one of {sorted(known)}")
    sig = inspect.signature(known[name])
    accepted = list(sig.parameters)
    for key in data:
        if key not in DATA_EXTRA and key not in accepted:
            raise ConfigError(f"{where}.data.{key}: not a parameter of data set {name!r} (accepted: {accepted})")
    for key, p in sig.parameters.items():
        if p.default is inspect.Parameter.empty and key not in data:
            raise ConfigError(f"{where}.data.{key}: required by data set {name!r} but missing")
    if name == "gaussian_mixture" and "rms_norm" in data:
        raise ConfigError(f"{where}.data.rms_norm: not for gaussian_mixture (its scale is set by radius and noise)")
    if name == "digits" and data.get("train_points", 1797) > 1797:
        raise ConfigError(f"{where}.data.train_points: the digits have 1797 images, got {data['train_points']}")


def _check_collapse(where: str, cfg: dict) -> None:
    grid = cfg.get("weight_decay")
    if not grid:
        raise ConfigError(f"{where}.weight_decay: missing (the grid of lambda values)")
    if len(set(grid)) != len(grid):
        raise ConfigError(f"{where}.weight_decay: values repeat: {grid}")
    noise = cfg["data"].get("noise")
    if isinstance(noise, list) and len(set(noise)) != len(noise):
        raise ConfigError(f"{where}.data.noise: values repeat: {noise}")
    for key in ("width", "depth"):
        if key not in cfg["model"]:
            raise ConfigError(f"{where}.model.{key}: missing")
    for key in ("lr", "steps"):
        if key not in cfg["train"]:
            raise ConfigError(f"{where}.train.{key}: missing")


def _check_alignment(where: str, cfg: dict) -> None:
    m = cfg["model"]
    for key in ("relu_layers", "linear_layers", "width"):
        if key not in m:
            raise ConfigError(f"{where}.model.{key}: missing")
    if m.get("skip") and m["relu_layers"] < 2:
        raise ConfigError(f"{where}.model.skip: a skip connection needs relu_layers >= 2 (a residual ReLU block)")
    for key in ("loss", "optimizer", "lr", "steps"):
        if key not in cfg["train"]:
            raise ConfigError(f"{where}.train.{key}: missing")
