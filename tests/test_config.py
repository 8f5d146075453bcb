"""Config validation by class of mistake: non-finite numbers, integers written as floats, sizes
beyond their bounds or the machine's memory, unsafe names, sweeps over settings that name no
variant, repeated eps, a log schedule that cannot show a stair, and files that are no config.
Each is rejected by the same path the workflow and `staircase check-config` take, with one line
naming the key. (Snakemake's side of the same checks: test_workflow.py; a generated fuzz of
config.yaml: test_fuzz_config.py.)"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import helpers
import numpy as np
import pytest
import yaml
from helpers import REPO

from staircase import cli
from staircase.core.schedule import log_schedule
from staircase.workflow import config as cfgmod
from staircase.workflow import loader, lowrank_settings, memory

TINY = REPO / ".test" / "config" / "config.yaml"
LOWRANK = REPO / ".test" / "config" / "lowrank.yaml"


def load(path=TINY) -> dict:
    return yaml.safe_load(Path(path).read_text())


def rejected(tmp_path, config, *overrides) -> str:
    """The one-line error `staircase check-config` gives for ``config`` (written as YAML, so that
    the values go through the YAML loader as a user's do)."""
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(cfgmod.ConfigError) as err:
        cli._load_config(str(path), list(overrides))
    message = str(err.value)
    assert "\n" not in message
    return message


def edited(edit, path=TINY) -> dict:
    config = load(path)
    edit(config)
    return config


def fit1d(c):
    return c["experiments"]["fit1d"]


# ---- 1. NaN and infinity --------------------------------------------------------------------------
NOT_FINITE = {
    "lr nan": (lambda c: fit1d(c)["train"].update(lr=float("nan")), "experiments.fit1d.train.lr: nan"),
    "lr inf": (lambda c: fit1d(c)["train"].update(lr=float("inf")), "experiments.fit1d.train.lr: inf"),
    "amplitude -inf": (
        lambda c: fit1d(c)["task"].update(amplitudes=[1.0, float("-inf")]),
        "experiments.fit1d.task.amplitudes.1: -inf",
    ),
    "frequency nan": (
        lambda c: fit1d(c)["task"].update(frequencies=[float("nan"), 3.0]),
        "experiments.fit1d.task.frequencies.0: nan",
    ),
    "eps nan": (lambda c: fit1d(c)["rank"].update(eps=[float("nan"), 1.0e-3]), "experiments.fit1d.rank.eps.0: nan"),
    "weight decay nan": (
        lambda c: fit1d(c)["train"].update(optimizer="adamw", weight_decay=float("nan")),
        "experiments.fit1d.train.weight_decay: nan",
    ),
    "in a sweep": (
        lambda c: fit1d(c).update(sweep={"train.lr": [1.0e-3, float("inf")]}),
        "experiments.fit1d.sweep.train.lr.1: inf",
    ),
    "in a full block": (
        lambda c: fit1d(c).update(full={"train": {"lr": float("nan")}}),
        "experiments.fit1d.full.train.lr: nan",
    ),
    # generic: every section, including the audit's and the analysis' (no per-key check there)
    "analysis setting": (lambda c: c.update(analysis={"min_span": float("inf")}), "analysis.min_span: inf"),
    "audit threshold": (lambda c: c.update(audit={"a1_min_monotone": float("nan")}), "audit.a1_min_monotone: nan"),
}


@pytest.mark.parametrize("case", NOT_FINITE)
def test_nan_and_infinity_are_rejected_naming_the_key(tmp_path, case):
    edit, expected = NOT_FINITE[case]
    message = rejected(tmp_path, edited(edit))
    assert message == f"{expected} is not a finite number"


@pytest.mark.parametrize(
    "family, edit, expected",
    [
        (
            "rank_collapse",
            lambda c: c["rank_collapse"]["studies"]["grid"].update(weight_decay=[0.0, float("nan")]),
            "rank_collapse.studies.grid.weight_decay.1: nan",
        ),
        (
            "alignment",
            lambda c: c["alignment"]["defaults"]["train"].update(lr=float("inf")),
            "alignment.defaults.train.lr: inf",
        ),
    ],
)
def test_nan_and_infinity_in_papers_b_and_c(tmp_path, family, edit, expected):
    assert rejected(tmp_path, edited(edit, LOWRANK)) == f"{expected} is not a finite number"


def test_nan_on_the_command_line(tmp_path):
    assert rejected(tmp_path, load(), "job_memory_gb=.nan") == "job_memory_gb: nan is not a finite number"


# ---- 3. integers written as floats ------------------------------------------------------------------
@pytest.mark.parametrize(
    "edit, key, value",
    [
        (lambda c: fit1d(c)["model"].update(width=40.0), "experiments.fit1d.model.width", 40),
        (lambda c: fit1d(c)["model"].update(depth=2.0), "experiments.fit1d.model.depth", 2),
        (lambda c: fit1d(c)["train"].update(steps=150.0), "experiments.fit1d.train.steps", 150),
        (lambda c: fit1d(c).update(seeds=[0, 1.0]), "experiments.fit1d.seeds.1", 1),
        (lambda c: fit1d(c)["log"].update(dense_every=10.0), "experiments.fit1d.log.dense_every", 10),
        (
            lambda c: fit1d(c).update(sweep={"model.width": [8, 16.0]}),
            "experiments.fit1d (variant width-16.0).model.width",
            16,
        ),
        (lambda c: c.update(analysis={"min_points": 2.0}), "analysis.min_points", 2),
    ],
)
def test_an_integer_written_as_a_float_is_rejected(tmp_path, edit, key, value):
    message = rejected(tmp_path, edited(edit))
    assert message == f"{key}: {float(value)} is not an integer (write {value}, without a decimal point)"


def test_an_integer_written_as_a_float_in_a_study(tmp_path):
    message = rejected(tmp_path, edited(lambda c: c["alignment"]["defaults"]["model"].update(width=6.0), LOWRANK))
    assert message.startswith("alignment.defaults.model.width: 6.0 is not an integer")


# ---- 2. sizes: sanity bounds and the machine's memory -----------------------------------------------
@pytest.mark.parametrize(
    "edit, expected",
    [
        (lambda c: fit1d(c)["model"].update(width=10**9), "experiments.fit1d.model.width: 1000000000 is greater"),
        (lambda c: fit1d(c)["model"].update(depth=10**6), "experiments.fit1d.model.depth: 1000000 is greater"),
        (lambda c: fit1d(c)["train"].update(steps=10**12), "experiments.fit1d.train.steps: 1000000000000 is greater"),
        (lambda c: fit1d(c)["task"].update(train_points=10**9), "experiments.fit1d.task.train_points: 1000000000 is"),
        (lambda c: fit1d(c)["task"].update(rank_points=10**8), "experiments.fit1d.task.rank_points: 100000000 is"),
        (lambda c: fit1d(c).update(seeds=[0, 2**64]), "experiments.fit1d.seeds.1: 18446744073709551616 is greater"),
        (
            lambda c: c["rank_collapse"]["defaults"]["model"].update(width=10**9),
            "rank_collapse.defaults.model.width: 1000000000 is greater",
        ),
    ],
)
def test_absurd_sizes_are_beyond_the_schema_bounds(tmp_path, edit, expected):
    config = edited(edit, LOWRANK if "rank_collapse" in expected else TINY)
    assert rejected(tmp_path, config).startswith(expected)


GIANT = {
    "width": (
        {"model": {"width": 60000}},
        "the job needs about",
        "for bound: model.width^2 x seeds",
    ),
    "points": (
        {"task": {"train_points": 5_000_000, "rank_points": 5_000_000}, "model": {"width": 500}},
        "the job needs about",
        "task points",
    ),
    "measurements": (
        {"model": {"width": 2000, "depth": 50}, "train": {"steps": 10**8}, "log": {"sparse_every": 1}},
        "the job needs about",
        "for records: measurements",
    ),
}


@pytest.mark.parametrize("case", GIANT)
def test_a_job_bigger_than_the_machine_is_rejected_before_it_starts(tmp_path, case):
    override, start, part = GIANT[case]
    config = edited(lambda c: c["experiments"].update(fit1d=cfgmod.deep_merge(fit1d(c), override)))
    message = rejected(tmp_path, config)
    total = memory.physical_memory() / 1e9
    assert message.startswith(f"experiments.fit1d: {start}"), message
    assert f"more than the {total:.3g} GB of the memory of this machine" in message and part in message, message
    assert "set job_memory_gb" in message


def test_a_disabled_experiment_is_not_sized(tmp_path):
    """A big experiment kept in the config but disabled runs no job, so it does not stop the others."""
    config = edited(lambda c: fit1d(c).update(enabled=False, model={"activation": "tanh", "width": 60000, "depth": 2}))
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    cli._load_config(str(path), [])


def test_job_memory_gb_sets_the_limit(tmp_path):
    big = edited(lambda c: fit1d(c)["model"].update(width=60000))
    big["job_memory_gb"] = 10**5  # a cluster node with 100 TB: accepted
    path = tmp_path / "big.yaml"
    path.write_text(yaml.safe_dump(big))
    cli._load_config(str(path), [])
    small = edited(lambda c: c.update(job_memory_gb=0.2))  # less than the interpreter itself
    assert rejected(tmp_path, small).startswith("experiments.fit1d: the job needs about 0.5")
    assert rejected(tmp_path, load(), "job_memory_gb=0") == (
        "job_memory_gb: 0 is not valid: 'auto' was expected; or 0 is less than or equal to the minimum of 0"
    )


def test_a_study_bigger_than_the_machine_is_rejected(tmp_path):
    def edit(c):
        c["rank_collapse"]["defaults"]["model"]["width"] = 50000
        c["rank_collapse"]["studies"]["grid"]["data"]["per_class"] = 100000

    message = rejected(tmp_path, edited(edit, LOWRANK))
    assert message.startswith("rank_collapse.studies.grid: the job needs about") and "data points" in message


def test_the_default_configs_fit_a_small_machine():
    """Both scales of config.yaml must pass on an 8 GB machine (the full scale is meant for a GPU
    node, but its host memory is modest too)."""
    config = load(REPO / "config.yaml")
    for scale in ("small", "full"):
        config["scale"] = scale
        jobs = [
            memory.train_job(v) for e in cfgmod.enabled_experiments(config) for v in cfgmod.variants(config, e).values()
        ]
        from staircase.workflow import lowrank_settings as settings

        jobs += [memory.lowrank_job(f, s) for f in settings.FAMILIES for s in settings.studies(config, f).values()]
        assert max(memory.peak(parts) for parts in jobs) < 4e9, scale


def test_the_measurement_count_is_that_of_the_schedule():
    rng = np.random.default_rng(0)
    for _ in range(300):
        steps, dense_every, dense_until, sparse_every = (int(v) for v in rng.integers(1, 60, size=4))
        expected = len(log_schedule(steps, dense_every, dense_until, sparse_every))
        assert memory.measurements(steps, dense_every, dense_until, sparse_every) == expected


def test_the_memory_estimate_covers_a_measured_peak(tmp_path):
    """The estimate must not fall short of a real job's peak resident memory, nor exceed it
    wildly (a job of ~0.2 GB above the interpreter: width 1000, 2 seeds)."""
    config = edited(
        lambda c: c["experiments"].update(
            fit1d=cfgmod.deep_merge(
                fit1d(c), {"model": {"width": 1000}, "train": {"steps": 10}, "log": {"dense_every": 2}}
            )
        )
    )
    cfg = cfgmod.variants(config, "fit1d")["base"]
    estimate = memory.peak(memory.train_job(cfg))
    code = (
        "import json, resource, sys; from staircase.training import trainer as train; "
        "train.run(json.loads(sys.argv[1]), sys.argv[2], progress=False); "
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )
    res = subprocess.run(
        [sys.executable, "-c", code, json.dumps(cfg), str(tmp_path / "out")], capture_output=True, text=True
    )
    assert res.returncode == 0, res.stderr
    measured = int(res.stdout.split()[-1]) * 1024  # kB on Linux
    assert measured <= estimate <= 2 * measured, (measured, estimate)


# ---- 4. names ---------------------------------------------------------------------------------------
SAFE_VARIANT = "letters, digits, '_', '-' and '.', not starting with '.' or '-', at most 128 characters"
SAFE_NAME = "letters, digits, '_' and '-', not starting with '-', at most 64 characters"


@pytest.mark.parametrize("name", ["..", ".", ".hidden", "-rf", "a/b", "a b", "x" * 129, "é"])
def test_unsafe_variant_names_are_rejected(tmp_path, name):
    message = rejected(tmp_path, edited(lambda c: fit1d(c).update(variants={"base": {}, name: {}})))
    shown = repr(name) if len(name) <= 64 else f"{name[:60]!r} (and more)"
    assert message == f"experiments.fit1d.variants: {shown} is not a safe name ({SAFE_VARIANT})"


@pytest.mark.parametrize("name", ["a.b", "..", "-x", "x" * 65])
def test_unsafe_experiment_names_are_rejected(tmp_path, name):
    message = rejected(tmp_path, edited(lambda c: c["experiments"].update({name: c["experiments"].pop("fit1d")})))
    shown = repr(name) if len(name) <= 64 else f"{name[:60]!r} (and more)"
    assert message == f"experiments: {shown} is not a safe name ({SAFE_NAME})"


@pytest.mark.parametrize("name", ["..", "x" * 300])
def test_unsafe_study_names_are_rejected(tmp_path, name):
    message = rejected(
        tmp_path,
        edited(lambda c: c["alignment"]["studies"].update({name: c["alignment"]["studies"].pop("gauss")}), LOWRANK),
    )
    shown = repr(name) if len(name) <= 64 else f"{name[:60]!r} (and more)"
    assert message == f"alignment.studies: {shown} is not a safe name ({SAFE_NAME})"


def test_names_made_by_a_sweep_are_checked_too(tmp_path):
    long_names = {
        "train.optimizer": ["adam"],
        "train.lr": [1.0e-3],
        "model.activation": ["tanh"],
        "task.rank_points": [101],
    }
    config = edited(lambda c: fit1d(c).update(sweep=long_names, variants={"a_rather_long_hand_made_name" * 3: {}}))
    message = rejected(tmp_path, config)
    assert message.startswith("experiments.fit1d.sweep: the variant name 'a_rather_long_hand_made_namea_rather")
    assert "is not a safe file name" in message and "(from sweep model.activation, task.rank_points" in message


def _patterns(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "pattern" and value.startswith("^[A-Za-z0-9_]["):
                yield value
            yield from _patterns(value)
    elif isinstance(node, list):
        for value in node:
            yield from _patterns(value)


def test_the_schema_patterns_are_the_checked_ones():
    patterns = set(_patterns(cfgmod.load_schema()))
    assert patterns == set(cfgmod.NAME_RULES) and cfgmod.VARIANT_NAME.pattern in patterns
    assert all(p.endswith("\\Z") for p in patterns)  # $ would match before a trailing newline


@pytest.mark.parametrize(
    "edit, expected",
    [
        (lambda c: c["experiments"].update({1: c["experiments"].pop("fit1d")}), "experiments.1: the key 1 is a number"),
        (lambda c: c["experiments"].update({True: c["experiments"].pop("fit1d")}), "experiments.True: the key True is"),
        (lambda c: c["experiments"].update({None: c["experiments"].pop("fit1d")}), "experiments.None: the key None is"),
        (
            lambda c: c["experiments"].update({__import__("datetime").date(2024, 1, 2): c["experiments"].pop("fit1d")}),
            "experiments.2024-01-02: the key datetime.date(2024, 1, 2) is a date",
        ),
        (lambda c: fit1d(c).update(variants={"base": {}, "base\n": {}}), "experiments.fit1d.variants: 'base\\n' is"),
        (lambda c: c["experiments"].update({"fit1d\n": c["experiments"].pop("fit1d")}), "experiments: 'fit1d\\n' is"),
        (lambda c: c["experiments"].update(FIT1D=fit1d(c)), "experiments: 'FIT1D' and 'fit1d' differ only in case"),
        (
            lambda c: fit1d(c).update(variants={"lr": {}, "LR": {}}),
            "experiments.fit1d: two variants are named 'LR' and 'lr' (equal but for case)",
        ),
    ],
)
def test_names_are_strings_without_newlines_and_unique_when_folded(tmp_path, edit, expected):
    assert rejected(tmp_path, edited(edit)).startswith(expected)


def test_an_override_of_one_experiment_changes_no_other():
    """config.yaml's shared blocks are YAML anchors: an override through one experiment must not
    reach the others that alias the block."""
    config = loader.load_config_file(REPO / "config.yaml")
    names = cfgmod.experiment_names(config)
    before = {name: json.dumps(cfgmod.experiment_settings(config, name), sort_keys=True) for name in names}
    for name in names:
        changed = loader.load_config_file(REPO / "config.yaml")
        for section in ("task", "model", "train", "rank", "log"):
            cli.apply_override(changed, f"{section}.zz_marker=1", name)
        after = {other: json.dumps(cfgmod.experiment_settings(changed, other), sort_keys=True) for other in names}
        assert after[name] != before[name]
        assert {o: after[o] for o in names if o != name} == {o: before[o] for o in names if o != name}, name


# ---- numbers that can train ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "edit, expected",
    [
        (lambda c: fit1d(c)["train"].update(lr=5e-324), "experiments.fit1d.train.lr: 5e-324 is zero or subnormal"),
        (lambda c: fit1d(c)["train"].update(lr=1e-40), "experiments.fit1d.train.lr: 1e-40 is zero or subnormal in"),
        (
            lambda c: fit1d(c)["model"].update(init_gain=5e-324),
            "experiments.fit1d.model.init_gain: 5e-324 is zero or subnormal in float32",
        ),
        (lambda c: c.update(job_memory_gb=1e308), "job_memory_gb: 1e+308 is not valid"),
    ],
)
def test_numbers_that_cannot_train_or_size_are_rejected(tmp_path, edit, expected):
    assert rejected(tmp_path, edited(edit)).startswith(expected)


def test_a_float64_run_takes_a_learning_rate_float32_cannot_hold(tmp_path):
    config = edited(lambda c: fit1d(c)["train"].update(lr=1e-40, dtype="float64"))
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    cli._load_config(str(path), [])


def test_rank_thresholds_above_the_width_are_refused():
    config = loader.load_config_file(REPO / "config.yaml")
    methods = config["experiments"]["methods_fit1d"]
    width = min(v["model"]["width"] for v in cfgmod.variants(config, "methods_fit1d").values())
    methods["comparison"]["rank_thresholds"] = [6, width + 1]
    problems = cfgmod.check_experiment(methods, cfgmod.variants(config, "methods_fit1d"))
    assert problems == [
        ("comparison.rank_thresholds", f"[{width + 1}] above the network's width {width}: no run can reach them")
    ]


# ---- 7. sweeps over a whole mapping -------------------------------------------------------------------
@pytest.mark.parametrize(
    "sweep, kind",
    [
        ({"train.schedule": [{"name": "constant"}, {"name": "cosine"}]}, "a mapping"),
        ({"task.frequencies": [[1.0], [1.0, 3.0]]}, "a list"),
        ({"model.activation": ["tanh", None]}, "empty"),
    ],
)
def test_a_sweep_value_that_names_no_variant_is_rejected(tmp_path, sweep, kind):
    config = edited(lambda c: fit1d(c).update(sweep=sweep))
    fit1d(config)["train"]["schedule"] = {"name": "constant"}  # so that train.schedule names a setting
    key = next(iter(sweep))
    message = rejected(tmp_path, config)
    assert (
        message.startswith(f"experiments.fit1d.sweep.{key}: the value ")
        and f"is {kind}, which names no variant" in message
    )


# ---- 9. repeated eps, a schedule that measures the ends only, files that are no config -----------------
def test_repeated_eps_are_rejected(tmp_path):
    message = rejected(tmp_path, edited(lambda c: fit1d(c)["rank"].update(eps=[1.0e-2, 1.0e-3, 1.0e-2])))
    assert message == "experiments.fit1d.rank.eps: [0.01, 0.001, 0.01] has non-unique elements"


@pytest.mark.parametrize(
    "log, count",
    [
        ({"dense_every": 1000, "dense_until": 0, "sparse_every": 1000}, 2),  # the ends only
        ({"dense_every": 100, "dense_until": 150, "sparse_every": 1000}, 3),
    ],
)
def test_a_schedule_that_cannot_show_a_stair_is_rejected(tmp_path, log, count):
    message = rejected(tmp_path, edited(lambda c: fit1d(c).update(log=log)))
    assert message.startswith(f"experiments.fit1d.log: measures at {count} steps only (of train.steps 150)")
    assert "at least 4" in message
    # with analysis.min_points 1, a single jump between two one-measurement plateaus is a stair
    if count >= 2:
        config = edited(lambda c: (fit1d(c).update(log=log), c.update(analysis={"min_points": 1})))
        path = tmp_path / "ok.yaml"
        path.write_text(yaml.safe_dump(config))
        cli._load_config(str(path), [])


@pytest.mark.parametrize(
    "content, expected",
    [
        ("- fit1d\n- poisson1d\n", "expected a mapping of settings (key: value lines), got a list"),
        ("42\n", "expected a mapping of settings (key: value lines), got a number"),
        ("just words\n", "expected a mapping of settings (key: value lines), got a string"),
        ("", "expected a mapping of settings (key: value lines), got nothing (it is empty)"),
        ("# only a comment\n", "expected a mapping of settings (key: value lines), got nothing (it is empty)"),
        (b"scale: sm\xe9all\n", "not a UTF-8 text file (byte 9: invalid continuation byte)"),
        ("scale: [small\n", "not valid YAML"),
    ],
)
def test_check_config_on_a_file_that_is_no_config(tmp_path, capsys, content, expected):
    path = tmp_path / "config.yaml"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    assert cli.main(["check-config", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"staircase: error: {path}: {expected}"), err


# ---- one grammar: every section's `defaults:` under its entries (docs/configuration.md) ----------
def test_experiment_defaults_resolve_in_the_documented_order():
    config = load()
    config["experiments"] = {
        "defaults": {
            "model": {"activation": "sin", "width": 7, "depth": 2},
            "seeds": [0],
            "full": {"model": {"width": 9, "depth": 4}, "seeds": [0, 1, 2]},
        },
        "fit1d": {k: v for k, v in fit1d(config).items() if k not in ("model", "seeds")},
    }
    fit = config["experiments"]["fit1d"]
    fit.update(model={"depth": 3}, full={"model": {"width": 11}}, variants={"v": {"model": {"activation": "tanh"}}})
    fit["sweep"] = {"model.width": [5]}
    assert cfgmod.enabled_experiments(config) == ["fit1d"]  # `defaults` is not an experiment
    small = cfgmod.variants(config, "fit1d")["v_width-5"]
    assert (small["model"], small["seeds"]) == ({"activation": "tanh", "width": 5, "depth": 3}, [0])
    # defaults at scale full < the experiment < its full: < the variant < the sweep
    full = cfgmod.experiment_settings({**config, "scale": "full"}, "fit1d")
    assert (full["model"], full["seeds"]) == ({"activation": "sin", "width": 11, "depth": 3}, [0, 1, 2])
    assert list(full)[:6] == ["task", "model", "train", "rank", "log", "seeds"]  # the order jobs always had
    cfgmod.check(config)
    with pytest.raises(cfgmod.ConfigError, match="^experiments: no experiment named 'defaults'"):
        cfgmod.variants(config, "defaults")


@pytest.mark.parametrize(
    "edit, path, expected",
    [
        (
            lambda c: c["experiments"].update(defaults={"model": {"widht": 8}}),
            TINY,
            "experiments.defaults.model: Additional properties are not allowed ('widht' was unexpected)",
        ),
        (
            lambda c: c["experiments"].update(defaults={"claims": ["A1"]}),
            TINY,
            "experiments.defaults: Additional properties are not allowed ('claims' was unexpected)",
        ),
        (lambda c: fit1d(c).pop("seeds"), TINY, "experiments.fit1d: 'seeds' is a required property"),
        (
            lambda c: c["rank_collapse"]["defaults"]["train"].update(lr="fast"),
            LOWRANK,
            "rank_collapse.defaults.train.lr: 'fast' is not of type 'number'",
        ),
        (
            lambda c: c["alignment"]["studies"]["gauss"].update(full={"full": {}}),
            LOWRANK,
            "alignment.studies.gauss.full.full: {} should not be valid",
        ),
    ],
)
def test_a_wrong_default_is_named_as_one(tmp_path, edit, path, expected):
    assert rejected(tmp_path, edited(edit, path)).startswith(expected)


def test_studies_take_the_same_grammar():
    config = load(LOWRANK)
    section = config["rank_collapse"]
    section["defaults"]["full"] = {"train": {"steps": 900}, "seeds": [0, 1, 2]}
    section["studies"]["grid"].update(train={"steps": 400}, full={"seeds": [5]})
    small = lowrank_settings.studies(config, "rank_collapse")["grid"]
    full = lowrank_settings.studies({**config, "scale": "full"}, "rank_collapse")["grid"]
    assert (small["train"]["steps"], small["seeds"]) == (400, [0, 1])
    # defaults at scale full < the study < its full:
    assert (full["train"]["steps"], full["seeds"], full["train"]["lr"]) == (400, [5], 0.1)
    assert "full" not in full


# ---- the strict loader (staircase.workflow.loader) -----------------------------------------------------
BOMB = "".join(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9) if i else ', '.join(['lol'] * 9)}]\n" for i in range(10))
YAML_SURPRISES = {
    "duplicate key": ("a: 1\nb: 2\na: 3\n", "f.yaml:3: the key 'a' is given twice in one mapping (also on line 1)"),
    "duplicate in flow": ("m: {width: 4, width: 8}\n", "f.yaml:1: the key 'width' is given twice"),
    "octal": ("steps: 0150\n", "f.yaml:1: 0150 reads as an octal number in YAML 1.1; write 150, or quote it"),
    "sexagesimal": ("width: 1:30\n", "f.yaml:1: 1:30 reads as a base-60 number in YAML 1.1"),
    "sexagesimal float": ("lr: 1:30.5\n", "f.yaml:1: 1:30.5 reads as a base-60 number in YAML 1.1"),
    "yes": ("activation: yes\n", "f.yaml:1: 'yes' reads as true/false in YAML 1.1; write true or false"),
    "off": ("lr: off\n", "f.yaml:1: 'off' reads as true/false in YAML 1.1"),
    "self alias": ("a: &x [1, *x]\n", "f.yaml:1: the alias *x refers to a block it is inside"),
    "self alias in a mapping": ("a: &x {b: {c: *x}}\n", "f.yaml:1: the alias *x refers to a block it is inside"),
    "deep nesting": ("a: " + "[" * 3000 + "]" * 3000 + "\n", "f.yaml:1: nested deeper than 32 levels"),
    "alias bomb": (BOMB, "f.yaml: more than 200000 values once its aliases are expanded"),
    "template": ("__use_yte__: true\nsteps: ?1 + 1\n", "f.yaml: __use_yte__: templates run code"),
    "invalid": ("a: [1\n", "f.yaml: not valid YAML (while parsing a flow sequence"),
}


@pytest.mark.parametrize("case", YAML_SURPRISES)
def test_the_loader_refuses_what_yaml_would_misread_in_one_line(case):
    text, expected = YAML_SURPRISES[case]
    with pytest.raises(cfgmod.ConfigError) as err:
        loader.load_text(text, "f.yaml")
    assert str(err.value).startswith(expected) and "\n" not in str(err.value)


def test_the_loader_reads_plain_yaml_as_before_and_shares_no_block():
    text = "a: &x {b: [1, 2]}\nc: *x\nd: 0\ne: '0150'\nf: true\ng: 1.0e-3\nh: 12\ni: {<<: *x, j: 1}\n"
    value = loader.load_text(text, "f.yaml")
    assert value == yaml.safe_load(text)
    value["a"]["b"].append(3)
    assert value["c"] == {"b": [1, 2]}  # an alias is a copy
    assert value["i"] == {"b": [1, 2], "j": 1}  # a merge key (`<<: *x`) is YAML's, not a duplicate
    assert loader.load_file(REPO / "config.yaml") == yaml.safe_load((REPO / "config.yaml").read_text())


def test_the_loader_merges_a_block_and_lets_the_mapping_override_it():
    # `<<: *block` (YAML's merge key) is no duplicate: the mapping's own keys win, the block stays as it was
    text = "t: &t {a: 1, b: 2}\nu: {<<: *t, b: 3}\n"
    value = loader.load_text(text, "f.yaml")
    assert value == {"t": {"a": 1, "b": 2}, "u": {"a": 1, "b": 3}}
    with pytest.raises(cfgmod.ConfigError, match="the key 'b' is given twice"):
        loader.load_text("t: &t {a: 1}\nu: {<<: *t, b: 3, b: 4}\n", "f.yaml")


def test_set_goes_through_the_loader(tmp_path):
    assert rejected(tmp_path, load(), "experiments.fit1d.train.steps=0150").startswith(
        "--set experiments.fit1d.train.steps=0150: 0150 reads as an octal number"
    )
    message = rejected(tmp_path, load(), "experiments.fit1d.task=&x [*x]")
    assert message.startswith("--set experiments.fit1d.task=&x [*x]: the alias *x refers to a block it is inside")


# ---- --config KEY=VALUE: Snakemake parses these itself (snakemake.cli.parse_config) ----------------
CONFIG_ARG_SURPRISES = {
    "a key twice in a value": (["audit={a: 1, a: 2}"], "--config audit: the key 'a' is given twice in one mapping"),
    "octal in a list": (["seeds=[0150]"], "--config seeds: 0150 reads as an octal number in YAML 1.1"),
    "yes in a mapping": (["audit={strict: yes}"], "--config audit: 'yes' reads as true/false in YAML 1.1"),
    "alias bomb": (["audit=" + BOMB], "--config audit: more than 200000 values once its aliases are expanded"),
    "a key twice": (["scale=small", "scale=full"], "--config scale: given twice; Snakemake would keep the last"),
}


@pytest.mark.parametrize("case", CONFIG_ARG_SURPRISES)
def test_config_args_that_snakemake_would_misread_are_refused_in_one_line(case):
    from snakemake.cli import parse_config

    args, expected = CONFIG_ARG_SURPRISES[case]
    with pytest.raises(cfgmod.ConfigError) as err:
        loader.check_config_args(args, parse_config(args))
    assert str(err.value).startswith(expected) and "\n" not in str(err.value)


def test_config_args_snakemake_reads_as_they_look_pass():
    """Numbers, True/False and plain strings ('yes' stays the string 'yes' there); set= lists."""
    from snakemake.cli import parse_config

    args = ["scale=small", "tag=yes", "steps=0150", "when=1:30", "set=[experiments.fit1d.train.steps=30]"]
    parsed = parse_config(args)
    assert parsed["steps"] == 150 and parsed["tag"] == "yes"  # what Snakemake makes of them
    loader.check_config_args(args, parsed)


def test_snakemake_refuses_a_misread_config_arg_before_any_job(tmp_path):
    res = subprocess.run(
        [
            *helpers.snakemake_command("--dry-run", "--cores", "1", "--configfile", str(TINY)),
            "--config",
            "audit={a: 1, a: 2}",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert "config error: --config audit: the key 'a' is given twice in one mapping" in res.stderr.splitlines()[-1]


# ---- the CLI validates as Snakemake's validate does ---------------------------------------------
SHIPPED = [REPO / "config.yaml", *sorted((REPO / ".test" / "config").glob("*.yaml"))]


def _snakemake_validated(config: dict) -> dict:
    from snakemake.utils import validate

    validate(config, str(cfgmod.SCHEMA_PATH))
    return config


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_the_cli_fills_defaults_exactly_as_snakemake_validate(path):
    """schema.validate_with_defaults (the CLI's, schema parsed once) and snakemake.utils.validate
    (the workflow's) give the same config, key for key, and the same first error."""
    ours, theirs = loader.load_config_file(path), _snakemake_validated(loader.load_config_file(path))
    cfgmod.validate_with_defaults(ours)
    assert json.dumps(ours, sort_keys=True) == json.dumps(theirs, sort_keys=True)
    assert ours != loader.load_config_file(path)  # defaults were filled in: the comparison is not vacuous
    # a default is a fresh copy: filling one config never changes the next one's
    ours["experiments"][next(iter(ours["experiments"]))]["rank"]["eps"].append(0.5)
    again = loader.load_config_file(path)
    cfgmod.validate_with_defaults(again)
    assert json.dumps(again, sort_keys=True) == json.dumps(theirs, sort_keys=True)
    # the first error found is Snakemake's too
    broken = loader.load_config_file(path)
    broken["experiments"][next(iter(broken["experiments"]))]["train"] = {"lr": "fast", "steps": -1}
    errors = []
    for validate in (cfgmod.validate_with_defaults, _snakemake_validated):
        try:
            validate(json.loads(json.dumps(broken)))
        except Exception as err:  # noqa: BLE001  (Snakemake wraps jsonschema's error in a WorkflowError)
            cause = err if hasattr(err, "absolute_path") else err.__context__
            errors.append(cfgmod.schema_problem(cause))
    assert len(errors) == 2 and errors[0] == errors[1], errors


def test_the_schema_reads_the_same_with_libyaml():
    assert cfgmod.load_schema() == yaml.safe_load(cfgmod.SCHEMA_PATH.read_text())
    assert cfgmod.load_schema() is not cfgmod.load_schema()  # a copy each time: callers may change it
