"""Each claim of paper A is judged by one module (its statistic, null and decision), named by the
claims registry; the registry refuses a claim whose judge is not a module."""

from __future__ import annotations

import importlib

import pytest
import yaml

from staircase.claims import registry


def test_every_claim_names_its_judge_and_paper_a_judges_have_one_entry():
    for cid, claim in registry.claims().items():
        module = importlib.import_module(registry.judge_module(cid))
        if claim["paper"] == "A":
            assert callable(module.judge), cid
            assert module.__name__.startswith("staircase.claims.judges."), cid


def test_a_claim_whose_judge_is_not_a_module_is_refused(tmp_path, monkeypatch):
    reg = yaml.safe_load(registry.REGISTRY_PATH.read_text())
    reg["claims"]["A2"]["judge"] = "staircase.claims.judges.nowhere"
    path = tmp_path / "claims.yaml"
    path.write_text(yaml.safe_dump(reg))
    monkeypatch.setattr(registry, "REGISTRY_PATH", path)
    registry.load.cache_clear()
    try:
        with pytest.raises(registry.RegistryError, match="A2's judge 'staircase.claims.judges.nowhere'"):
            registry.load()
    finally:
        registry.load.cache_clear()
