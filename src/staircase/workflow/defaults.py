"""Merging of nested config mappings: a section's ``defaults:`` under an experiment's own keys."""

from __future__ import annotations

import copy


def deep_merge(base: dict, override: dict) -> dict:
    """``base`` with ``override`` laid over it, mapping by mapping; neither input is changed."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def at_scale(block: dict, scale: str, not_settings=("full",)) -> dict:
    """A block's settings (``not_settings`` left out) at ``scale``: at ``full`` its ``full:``
    block is deep-merged over them. The one rule of every section of config.yaml: its ``defaults:``
    at the scale < an entry (experiment or study) at the scale (docs/configuration.md)."""
    settings = {k: v for k, v in block.items() if k not in not_settings}
    if scale == "full":
        settings = deep_merge(settings, block.get("full") or {})
    return settings
