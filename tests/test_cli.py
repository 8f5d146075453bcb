"""The command line: --set overrides of nested settings, help texts, and what a user is told."""

from __future__ import annotations

import argparse
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers import snakemake

from staircase import cli
from staircase.version import __version__
from staircase.workflow import config as cfgmod
from staircase.workflow import overrides
from staircase.workflow.schema import yaml_number_text

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


# ---- papercuts (issue 24) -----------------------------------------------------------------------
def test_version():
    out = run("--version")
    assert out.returncode == 0 and out.stdout.strip() == f"staircase {__version__}"


def commands() -> dict:
    sub = next(a for a in cli.parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def test_every_command_has_its_own_help_with_an_example_that_parses():
    helps = {name: p.format_help() for name, p in commands().items()}
    assert len(helps) >= 14 and set(helps) == set(cli.EXAMPLES)
    descriptions = [p.description for p in commands().values()]
    assert all(descriptions) and len(set(descriptions)) == len(descriptions)  # none copied from another
    for name, text in helps.items():
        assert text.rstrip().endswith(cli.EXAMPLES[name]) and "example:\n  staircase " + name in text, name
        silent = [a.dest for a in commands()[name]._actions if not a.help]
        assert not silent, (name, silent)  # every option and argument says what it does
        cli.parser().parse_args(shlex.split(cli.EXAMPLES[name])[1:])  # the example is a valid command line


def test_every_command_reading_a_config_takes_config_and_set():
    readers = {"train", "audit", "calibrate", "bench", "rank-points", "variants", "check-config", "cost"}
    readers |= {"collapse", "collapse-merge", "align", "lowrank-studies"}
    for name, p in commands().items():
        flags = {flag for action in p._actions for flag in action.option_strings}
        if name in readers:
            assert {"--config", "--set"} <= flags, name
        else:
            assert "--config" not in flags and "--set" not in flags, name


def test_config_by_option_or_by_the_old_positional(capsys):
    for argv in (["check-config", "--config", str(TINY)], ["check-config", str(TINY)]):
        assert cli.main(argv) == 0 and capsys.readouterr().out == f"{TINY}: ok\n"
    assert cli.main(["variants", "--config", str(TINY), "--set", "experiments.sweep1d.enabled=false"]) == 0
    assert "sweep1d" not in capsys.readouterr().out
    assert cli.main(["check-config", str(TINY), "--config", str(REPO / "config.yaml")]) == 2
    assert "two configs given" in capsys.readouterr().err


def test_set_reads_exponent_notation_as_numbers_and_the_file_gets_a_suggestion(tmp_path):
    config = cli._load_config(str(TINY), ["experiments.fit1d.train.lr=1e-3", "audit={alpha: 5E-2}"])
    assert config["experiments"]["fit1d"]["train"]["lr"] == 1e-3 and config["audit"]["alpha"] == 0.05
    assert overrides.parse_value("x", "[1e-3, 5E4, 1e-3x]") == [0.001, 50000.0, "1e-3x"]
    assert [yaml_number_text(v) for v in (1e-3, 1000.0, 2.5e-7)] == ["1.0e-3", "1.0e+3", "2.5e-7"]
    assert all(yaml.safe_load(yaml_number_text(v)) == v for v in (1e-3, 1000.0, 2.5e-7))
    text = TINY.read_text().replace("lr: 1.0e-2", "lr: 1e-2", 1)
    assert text != TINY.read_text()
    (tmp_path / "c.yaml").write_text(text)
    with pytest.raises(cfgmod.ConfigError, match=r"'1e-2' is text to YAML 1.1, not a number: write 1.0e-2$"):
        cli._load_config(str(tmp_path / "c.yaml"), [])


def test_audit_of_given_runs_takes_dotted_settings():
    assert cli._settings_only(["audit.alpha=0.1", "analysis={loss_window: 5}"]) == {
        "audit": {"alpha": 0.1},
        "analysis": {"loss_window": 5},
    }
    with pytest.raises(cfgmod.ConfigError, match="only audit and analysis settings apply"):
        cli._settings_only(["scale=full"])
    with pytest.raises(cfgmod.ConfigError, match=r"audit\.alpha"):
        cli._settings_only(["audit.alpha=7"])


# ---- the workflow: a config file replaces config.yaml; typed --config set= -----------------------
def dry_run(cwd, *args) -> str:
    res = snakemake("--dry-run", "--printshellcmds", "--cores", "1", *args, cwd=cwd, timeout=600)
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    return res.stdout + res.stderr


def job_counts(text: str) -> str:
    return text[text.index("Job stats:") :].split("\n\n")[0]


def test_a_configfile_replaces_config_yaml_and_set_gives_typed_nested_settings(tmp_path):
    alone, checkout = tmp_path / "alone", tmp_path / "checkout"
    alone.mkdir(), checkout.mkdir()
    shutil.copy(REPO / "config.yaml", checkout / "config.yaml")  # a checkout's own default config
    tiny = dry_run(alone, "--configfile", str(TINY))
    in_checkout = dry_run(checkout, "--configfile", str(TINY), "--config", "set=experiments.fit1d.train.lr=1e-3")
    assert job_counts(in_checkout) == job_counts(tiny)  # the tiny config's jobs, nothing of config.yaml's
    assert '\\"lr\\": 0.001' in in_checkout or '"lr": 0.001' in in_checkout  # a number, not the text '1e-3'
    several = dry_run(
        alone, "--configfile", str(TINY), "--config", "set=[experiments.fit1d.train.lr=2e-3, scale=small]"
    )
    assert '\\"lr\\": 0.002' in several or '"lr": 0.002' in several
    bad = snakemake(
        "--dry-run",
        "--cores",
        "1",
        "--configfile",
        str(TINY),
        "--config",
        "set=experiments.fit1d.train.lr=-1",
        cwd=alone,
    )
    assert bad.returncode != 0 and "config error: experiments.fit1d.train.lr: -1" in bad.stderr
