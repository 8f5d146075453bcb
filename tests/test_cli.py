"""The command line: --set overrides of nested settings, help texts, and what a user is told."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from staircase import cli
from staircase.workflow import config as cfgmod

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / ".test/config/config.yaml"


def run(*args):
    return subprocess.run([sys.executable, "-m", "staircase", *map(str, args)], capture_output=True, text=True)


def test_set_reaches_nested_settings_and_is_validated_like_the_file():
    config = cli._load_config(str(TINY), ["experiments.fit1d.train.steps=300", "audit.alpha=0.01", "scale=small"])
    assert config["experiments"]["fit1d"]["train"]["steps"] == 300 and config["audit"]["alpha"] == 0.01
    # with an experiment, a path into it
    config = cli._load_config(str(TINY), ["train.steps=120", "model.width=8"], experiment="fit1d")
    assert config["experiments"]["fit1d"]["train"]["steps"] == 120
    assert config["experiments"]["fit1d"]["model"]["width"] == 8
    for bad, message in (
        ("experiments.fit1d.train.steps=-3", "experiments.fit1d.train.steps: -3 is less than the minimum"),
        ("experiments.fit1d.train.stpes=3", "'stpes' was unexpected"),
        ("experiments.nope.train.steps=3", "experiments.nope is not a section"),
        ("audit.alpha=.nan", "audit.alpha: nan is not a finite number"),
        ("train.steps", "expected KEY=VALUE"),
        ("a..b=1", "expected KEY=VALUE"),
    ):
        with pytest.raises(cfgmod.ConfigError, match=message.replace(".", r"\.").replace("(", r"\(")):
            cli._load_config(str(TINY), [bad])


def test_set_reaches_a_section_an_entry_leaves_to_its_defaults():
    # config.yaml's fit1d takes its model from experiments.defaults: --set still reaches it, over the defaults
    config = cli._load_config(str(REPO / "config.yaml"), ["model.width=8"], experiment="fit1d")
    model = cfgmod.variants(config, "fit1d")["base"]["model"]
    defaults = config["experiments"]["defaults"]["model"]
    assert model == {**defaults, "width": 8} and defaults["width"] != 8
    config = cli._load_config(str(REPO / "config.yaml"), ["rank_collapse.studies.gauss_noise.train.steps=300"])
    assert cfgmod.lowrank_settings.studies(config, "rank_collapse")["gauss_noise"]["train"]["steps"] == 300
    # the spelling before `defaults:` is named, with where the setting goes now
    with pytest.raises(cfgmod.ConfigError, match=r"go under rank_collapse\.defaults\.train\.steps$"):
        cli._load_config(str(REPO / "config.yaml"), ["rank_collapse.train.steps=300"])
    with pytest.raises(cfgmod.ConfigError, match=r"experiments\.fitd is not a section of the config$"):
        cli._load_config(str(REPO / "config.yaml"), ["experiments.fitd.model.width=8"])


def test_train_with_set_and_the_variant_it_chose(tmp_path):
    out = run(
        "train",
        "--config",
        TINY,
        "--experiment",
        "sweep1d",
        "--set",
        "train.steps=40",
        "--out",
        tmp_path / "run",
        "--no-progress",
    )
    assert out.returncode == 0, out.stderr
    assert "sweep1d has 2 variants (activation-tanh, activation-relu); training activation-tanh" in out.stderr
    config = yaml.safe_load((tmp_path / "run/run.json").read_text())["config"]
    assert config["train"]["steps"] == 40 and config["variant"] == "activation-tanh"
    bad = run("train", "--config", TINY, "--experiment", "fit1d", "--set", "train.lr=-1", "--out", tmp_path / "x")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "experiments.fit1d.train.lr" in bad.stderr
    assert not (tmp_path / "x").exists()


def test_help_is_whole_and_every_option_says_what_it_does():
    top = run("--help").stdout
    assert "README.md explains each" in top
    for command in ("audit", "variants", "check-config", "train", "calibrate"):
        text = run(command, "--help").stdout
        options = [line for line in text.splitlines() if line.strip().startswith("--")]
        assert options, command
        for line in options:  # an option line with its help on the same or the next line
            assert len(line.split("  ")) > 1 or line.strip().endswith(("VALUE", "CONFIG", "RUN_DIR ...]")), line
        assert "--set KEY=VALUE" not in text or "dotted path" in text
