"""The workflow as a user runs it: config validation before any job, a dry run of the default
config, and a tiny end-to-end run from training to figure, executed notebook and HTML."""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
import yaml
from helpers import REPO, SNAKEMAKE, snakemake

TINY = REPO / ".test" / "config" / "config.yaml"


def _jobs(dry_run_output: str) -> list[dict]:
    """The jobs of a `--dry-run --printshellcmds` listing: rule, declared outputs and logs, shell."""
    jobs = []
    for line in dry_run_output.splitlines():
        if re.match(r"^(local)?rule \w+:$", line):
            jobs.append({"rule": line.split()[-1].rstrip(":"), "input": [], "output": [], "log": [], "shell": ""})
        elif jobs and (m := re.match(r"^\s+(input|output|log): (.*)$", line)):
            jobs[-1][m.group(1)] = m.group(2).split(", ")
        elif jobs and line.startswith("Shell command: "):
            jobs[-1]["shell"] = line.removeprefix("Shell command: ")
    return jobs


def test_default_config_dry_run_and_no_two_jobs_write_one_file(tmp_path):
    res = snakemake(
        "--dry-run", "--forceall", "--printshellcmds", "--cores", "2", "--configfile", str(REPO / "config.yaml"),
        cwd=tmp_path,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    jobs = _jobs(res.stdout)
    assert "train" in {job["rule"] for job in jobs}
    # parallel safety with --cores all: every file a job writes (outputs, logs, the executed notebook
    # papermill writes into the log folder) belongs to that job alone ...
    written = Counter(path for job in jobs for path in job["output"] + job["log"])
    assert written and not [path for path, n in written.items() if n > 1]
    # ... and so does the one place a job writes outside its declared files, the resume checkpoint
    train = [job for job in jobs if job["rule"] == "train"]
    checkpoints = [re.search(r"--checkpoint-dir (\S+)", job["shell"]).group(1) for job in train]
    assert len(set(checkpoints)) == len(train)
    assert not [path for path in written for d in checkpoints if path.startswith(d + "/")]
    for job in train:  # the job writes its results into the folder of its declared outputs only
        out = re.search(r"--out (\S+)", job["shell"]).group(1)
        assert {str(Path(path).parent) for path in job["output"]} == {out}
    # every declared output of every job is a target of the default rule: none is left unmade when
    # it goes missing because no other job reads it (a run's spectra.npz, a figure's PDF)
    (default,) = [job for job in jobs if job["rule"] == "all"]
    outputs = {path for job in jobs if job["rule"] != "all" for path in job["output"]}
    assert outputs - set(default["input"]) == set(), "outputs the default target does not require"
    assert {job["rule"] for job in jobs} >= {"train", "rank_collapse", "alignment", "figure", "table", "audit"}


def _snapshot(root: Path) -> dict:
    """Every file under root with its modification time and content hash."""
    return {
        str(path.relative_to(root)): (path.stat().st_mtime_ns, hashlib.sha256(path.read_bytes()).hexdigest())
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


CHECKOUT = ("Snakefile", "workflow", "notebooks", "src", "envs")  # not config.yaml: only the tiny config


def in_checkout(*args, cwd, timeout=900) -> subprocess.CompletedProcess:
    """Snakemake on the Snakefile of the checkout ``cwd``, as a user of a clone runs it."""
    cmd = [SNAKEMAKE, "--snakefile", "Snakefile", *args]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """The tiny config run once through the whole workflow, in a checkout of its own (a copy of
    the repository's workflow files, results inside it); shared by the tests below."""
    work = tmp_path_factory.mktemp("tiny")
    for name in CHECKOUT:
        src = REPO / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, work / name)
    res = in_checkout("--cores", "2", "--configfile", str(TINY), cwd=work, timeout=1200)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    (work / "snakemake.out").write_text(res.stdout + res.stderr)
    return work


@pytest.mark.slow
def test_tiny_end_to_end(tiny_run):
    for name in (
        "results/small/figures/staircase_fit1d.png",
        "results/small/figures/staircase_fit1d.pdf",
        "results/small/notebooks/staircase_fit1d.ipynb",
        "results/small/notebooks/staircase_fit1d.html",
        "results/small/runs/fit1d/base/run.json",
        "results/small/runs/fit1d/base/spectra.npz",
        # the analysis figures, chosen by the experiments' claims (workflow/rules/analysis.smk)
        "results/small/figures/spectra_fit1d.pdf",
        "results/small/figures/layers_fit1d.pdf",
        "results/small/figures/bound.pdf",
        "results/small/figures/universality_sweep1d.pdf",
        "results/small/tables/summary.pdf",
        "results/small/notebooks/summary.html",
        # the regime map (claim A1-regime): its table, and the figure drawn from it
        "results/small/tables/regime_table.csv",
        "results/small/figures/regime_map.pdf",
        "results/small/notebooks/regime_map.html",
        "results/small/runs/regime1d/sgd_init_gain-0.1/run.json",
    ):
        assert (tiny_run / name).stat().st_size > 0, name
    summary = pd.read_csv(tiny_run / "results/small/tables/summary.csv")
    assert list(summary["variant"]) == ["base", "activation-tanh", "activation-relu"]
    assert (summary["bound_violations"] == 0).all() and (summary["bound_checks"] > 0).all()
    assert {"a1_p", "a1_stall_ratio", "a2_p", "a3_nonvacuous", "layer_order_strict"} <= set(summary.columns)
    assert not (tiny_run / "results/small/figures/layers_sweep1d.png").exists()  # sweep1d is not tagged A5
    metrics = pd.read_parquet(tiny_run / "results/small/runs/fit1d/base/metrics.parquet")
    assert {"step", "loss", "lower_bound", "eps_rank", "seed"} <= set(metrics.columns)
    assert sorted(metrics["seed"].unique()) == [0, 1]
    assert not metrics["bound_violation"].any()
    log = (tiny_run / "results/small/logs/train/fit1d/base.log").read_text()
    assert "150/150" in log and "results in results/small/runs/fit1d/base" in log  # progress bar, where results went
    assert not (
        tiny_run / "results/small/checkpoints"
    ).exists()  # checkpoints, locks and their folders: gone after success
    # no temporary (hidden) file of atomic_write left; the root's lock file stays (docs/reliability.md)
    assert [p.name for p in (tiny_run / "results").rglob(".*")] in ([], [".staircase.lock"])

    # the run ends with the claims summary; the audit and the report exist
    assert re.search(
        r"claims audit: \d+ passed, \d+ failed, \d+ inconclusive", (tiny_run / "snakemake.out").read_text()
    )
    # the report hint carries the run's own options: the report describes this results root
    assert f"report: snakemake --report report.html --configfile {TINY}\n" in (tiny_run / "snakemake.out").read_text()
    claims = pd.read_csv(tiny_run / "results/small/audit/claims.csv")
    assert {"claim", "experiment", "metric", "role", "value", "p_value", "margin", "null", "verdict"} <= set(
        claims.columns
    )
    assert {"A1", "A2", "A3", "A4", "A5", "A1-regime"} <= set(claims["claim"])
    regime = pd.read_csv(tiny_run / "results/small/tables/regime_table.csv")
    assert len(regime) == 4 and set(regime["init_gain"]) == {1.0, 0.1} and "sgd + batch 16" in set(regime["method"])
    assert len(claims[(claims["claim"] == "A1-regime") & (claims["role"] == "description")]) == 4
    assert (claims["experiment"] == "sweep1d+regime1d").sum() == 1  # A4 over the sweep and the map
    tests = claims[claims["role"] == "test"]
    assert tests["verdict"].isin(["PASS", "FAIL", "INCONCLUSIVE"]).all() and tests["null"].notna().all()
    assert (claims.loc[claims["role"] == "description", "verdict"] == "INFO").all()
    assert (claims.loc[claims["role"] == "self-check", "verdict"] == "PASS").all()  # no bound violated
    assert not metrics["eps_bound_violation"].any() and metrics["eps_bound"].notna().all()
    assert "# Claims audit" in (tiny_run / "results/small/audit/claims.md").read_text()
    calibration = pd.read_csv(tiny_run / "results/small/calibration/summary.csv")
    # calibration_draws (10) per family, half as many for the power and per-cell families (docs/claims.md)
    assert set(calibration["test"]) >= {"A1", "A2"} and calibration["draws"].isin([10, 5]).all()
    assert "How often the tests err" in (tiny_run / "results/small/audit/claims.md").read_text()
    res = in_checkout("--cores", "1", "--configfile", str(TINY), "--report", "report.html", cwd=tiny_run)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "Claims audit" in (tiny_run / "report.html").read_text()

    # nothing changed: nothing re-runs
    res = in_checkout("--dry-run", "--cores", "2", "--configfile", str(TINY), cwd=tiny_run)
    assert "Nothing to be done" in res.stdout + res.stderr


def _fit1d(c):
    return c["experiments"]["fit1d"]


# Each bad config: (edit of the tiny config, extra snakemake arguments, the expected error line).
BAD_CONFIGS = {
    "unknown top-level key": (
        lambda c: c.update(colour="blue"),
        [],
        "config: Additional properties are not allowed ('colour' was unexpected)",
    ),
    "unknown task key": (
        lambda c: _fit1d(c)["task"].update(rank_pts=10),
        [],
        "experiments.fit1d.task: Additional properties are not allowed ('rank_pts' was unexpected)",
    ),
    "string for a number": (
        lambda c: _fit1d(c)["train"].update(lr="1e-3"),
        [],
        "experiments.fit1d.train.lr: '1e-3' is text to YAML 1.1, not a number: write 1.0e-3",
    ),
    "negative width": (
        lambda c: _fit1d(c)["model"].update(width=-3),
        [],
        "experiments.fit1d.model.width: -3 is less than the minimum of 1",
    ),
    "unknown activation": (
        lambda c: _fit1d(c)["model"].update(activation="swish"),
        [],
        "experiments.fit1d.model.activation: 'swish' is not one of",
    ),
    "unknown optimizer": (
        lambda c: _fit1d(c)["train"].update(optimizer="rmsprop"),
        [],
        "experiments.fit1d.train.optimizer: 'rmsprop' is not one of",
    ),
    "eps not positive": (
        lambda c: _fit1d(c)["rank"].update(eps=[0.0, 1.0e-3]),
        [],
        "experiments.fit1d.rank.eps.0: 0.0 is less than or equal to the minimum of 0",
    ),
    "main_eps not in eps": (
        lambda c: _fit1d(c)["rank"].update(main_eps=0.5),
        [],
        "experiments.fit1d.rank.main_eps: 0.5 is not one of rank.eps",
    ),
    "empty seed list": (
        lambda c: _fit1d(c).update(seeds=[]),
        [],
        "experiments.fit1d.seeds: [] should be non-empty",
    ),
    "unknown scale (command line)": (
        lambda c: None,
        ["--config", "scale=fulll"],
        "scale: 'fulll' is not one of ['small', 'full']",
    ),
    "missing required setting": (
        lambda c: _fit1d(c)["model"].pop("width"),
        [],
        "experiments.fit1d.model: 'width' is a required property",
    ),
    "missing task parameter": (
        lambda c: _fit1d(c)["task"].pop("frequencies"),
        [],
        "experiments.fit1d.task.frequencies: required by task 'multifreq1d' but missing",
    ),
    "task's own check": (
        lambda c: _fit1d(c)["task"].update(amplitudes=[1.0]),
        [],
        "experiments.fit1d.task: 2 frequencies but 1 amplitudes",
    ),
    "misspelt sweep key": (
        lambda c: _fit1d(c).update(sweep={"model.activaton": ["tanh", "sin"]}),
        [],
        "experiments.fit1d: sweep key 'model.activaton' does not name an existing setting; "
        "did you mean 'model.activation'?",
    ),
    "mini-batch larger than the points": (
        lambda c: _fit1d(c)["train"].update(optimizer="sgd", batch_size=65),
        [],
        "experiments.fit1d.train.batch_size: 65 is more than the 64 points a batch is drawn from",
    ),
    "bad value in a sweep": (
        lambda c: _fit1d(c).update(sweep={"model.width": [8, -3]}),
        [],
        "experiments.fit1d (variant width--3).model.width: -3 is less than the minimum of 1",
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", BAD_CONFIGS)
def test_bad_config_fails_before_any_job_with_one_line(tiny_run, tmp_path, case):
    edit, args, expected = BAD_CONFIGS[case]
    cfg = yaml.safe_load(TINY.read_text())
    edit(cfg)
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(cfg))
    before = _snapshot(tiny_run / "results")
    # not a dry run: a bad config that got through would re-run jobs over the existing results
    res = in_checkout("--cores", "1", "--configfile", str(bad), *args, cwd=tiny_run)
    out = res.stdout + res.stderr
    assert res.returncode != 0
    errors = [line for line in out.splitlines() if "config error:" in line]
    assert len(errors) == 1, out
    assert expected in errors[0], errors[0]
    assert "Traceback" not in out and "Building DAG" not in out, out
    assert _snapshot(tiny_run / "results") == before


# One file of every kind a job declares, each in a different job, grouped so that no deleted file's
# job is downstream of another's in the same group (else it would be planned anyway): the train
# rule's four files (sweep1d's spectra are read by no notebook), a figure's (its HTML copy too: the
# figure job makes it), a table's, and the audit's.
DELETIONS = [
    {
        "results/small/runs/fit1d/base/metrics.parquet": "train",
        "results/small/runs/sweep1d/activation-tanh/spectra.npz": "train",
        "results/small/runs/sweep1d/activation-relu/ranks.parquet": "train",
    },
    {
        "results/small/figures/staircase_fit1d.pdf": "figure",
        "results/small/notebooks/spectra_fit1d.ipynb": "figure",
        "results/small/figures/universality_sweep1d.png": "figure",
        "results/small/tables/summary.pdf": "table",
        "results/small/notebooks/bound.html": "figure",
    },
    {"results/small/runs/sweep1d/activation-tanh/run.json": "train", "results/small/audit/claims.csv": "audit"},
]


@pytest.mark.slow
def test_removing_any_output_plans_the_job_that_writes_it(tiny_run, tmp_path):
    """Every declared output is reachable from the default target: delete one (of each kind) from a
    finished run, and `snakemake -n` plans the job that writes it."""
    results = tiny_run / "results"
    for group in DELETIONS:
        saved = {}
        for name in group:
            saved[name] = tmp_path / name.replace("/", "_")
            (tiny_run / name).rename(saved[name])
        try:
            res = in_checkout("--dry-run", "--printshellcmds", "--cores", "2", "--configfile", str(TINY), cwd=tiny_run)
            assert res.returncode == 0, res.stderr[-3000:]
            planned = {path: job["rule"] for job in _jobs(res.stdout) for path in job["output"]}
            for name, rule in group.items():
                assert planned.get(name) == rule, (name, sorted(planned))
        finally:
            for name, path in saved.items():
                path.rename(tiny_run / name)
    assert (
        "Nothing to be done" in in_checkout("--dry-run", "--cores", "2", "--configfile", str(TINY), cwd=tiny_run).stdout
    )
    assert results.exists()


@pytest.mark.slow
def test_misspelt_experiment_in_a_target_runs_nothing(tiny_run):
    before = _snapshot(tiny_run / "results")
    # (targets before --configfile, which takes every argument after it for a config file)
    res = in_checkout(
        "results/small/runs/fti1d/base/metrics.parquet", "--cores", "1", "--configfile", str(TINY), cwd=tiny_run
    )
    out = res.stdout + res.stderr
    assert res.returncode != 0
    assert "No rule to produce results/small/runs/fti1d/base/metrics.parquet" in out
    assert "Traceback" not in out and "KeyError" not in out, out
    assert _snapshot(tiny_run / "results") == before


@pytest.mark.slow
def test_a_checkout_moved_with_its_results_reruns_nothing_and_roots_keep_runs_apart(tiny_run, tmp_path):
    """Every run writes under results/<scale>[-<tag>]: the default and another scale or tag live
    side by side; claims.md says which root, scale and code it describes; and paths that
    Snakemake records are relative, so moving a finished checkout plans no job."""
    # the module's finished tiny run, its checkout copied whole (results and Snakemake's records
    # with their files' times): running the tiny workflow again here cost ~150 s of the suite
    checkout = tmp_path / "a" / "checkout"
    shutil.copytree(tiny_run, checkout, symlinks=True)
    shutil.copy(TINY, checkout / "tiny.yaml")

    def run(*args, cwd):
        return in_checkout(*args, "--configfile", "tiny.yaml", cwd=cwd, timeout=1200)

    res = run("--dry-run", "--cores", "1", cwd=checkout)
    assert "Nothing to be done" in res.stdout + res.stderr, (res.stdout + res.stderr)[-3000:]
    claims = (checkout / "results/small/audit/claims.md").read_text()
    assert "results root **results/small**" in claims and "scale **small**" in claims and "tag **none**" in claims
    moved = tmp_path / "elsewhere" / "deeper" / "checkout"
    shutil.move(checkout, moved)
    res = run("--dry-run", "--cores", "1", cwd=moved)
    assert "Nothing to be done" in res.stdout + res.stderr, (res.stdout + res.stderr)[-3000:]
    # another tag or scale: every job planned under its own root, the finished one untouched
    for setting, root in (("tag=lr-scan", "results/small-lr-scan"), ("scale=full", "results/full")):
        res = run("--dry-run", "--cores", "1", "--config", setting, cwd=moved)
        out = res.stdout + res.stderr
        assert res.returncode == 0 and f"{root}/runs/fit1d/base/metrics.parquet" in out, out[-2000:]
        assert "results/small/runs" not in out


def test_results_roots_with_equal_analysis_settings_share_one_calibration(tmp_path):
    """The calibration is keyed by its settings, not by the results root: another tag plans the same
    calibrate job (Snakemake makes it once), a changed analysis setting plans another."""

    more_draws = yaml.safe_load(TINY.read_text())
    more_draws["analysis"]["calibration_draws"] = 20
    (tmp_path / "more_draws.yaml").write_text(yaml.safe_dump(more_draws))

    def calibration_of(tag, configfile=TINY):
        res = snakemake(
            "--dry-run", "--forceall", "--printshellcmds", "--cores", "1", "--configfile", str(configfile),
            "--config", f"tag={tag}", cwd=tmp_path,
        )  # fmt: skip
        assert res.returncode == 0, res.stderr
        jobs = {job["rule"]: job for job in _jobs(res.stdout)}
        return jobs["calibrate"]["output"], jobs["calibration"]["output"]

    store, copy = calibration_of("one")
    store_two, copy_two = calibration_of("two")
    store_other, _ = calibration_of("one", tmp_path / "more_draws.yaml")
    assert store == store_two and copy != copy_two
    assert all(path.startswith("results/small-one/calibration/") for path in copy)
    assert store_other != store
