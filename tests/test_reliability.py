"""When things go wrong: interrupted runs resume, bad run configs fail in one line, diverged runs
are recorded and flagged, a failing notebook points to its failing cell, and no reader ever sees
half a file. (Bad config.yaml files through Snakemake and the DAG's file ownership are in
test_workflow.py; determinism and the training-level resume in test_train.py.)"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import helpers
import nbformat
import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from helpers import REPO, snakemake_command

from staircase import cli
from staircase.errors import UnreadableResult
from staircase.records import manifest, runs
from staircase.records.provenance import AlreadyRunning, atomic_write, exclusive
from staircase.training import trainer as train
from staircase.training.recorder import TIMING_COLUMNS
from staircase.workflow import config as cfgmod
from staircase.workflow.notebooks import failure_message

TINY = REPO / ".test" / "config" / "config.yaml"


def tiny_config(**fit1d_overrides) -> dict:
    """The tiny test config with only fit1d (whatever else it holds), its settings overridden."""
    config = yaml.safe_load(TINY.read_text())
    config["experiments"] = {"fit1d": cfgmod.deep_merge(config["experiments"]["fit1d"], fit1d_overrides)}
    return config


RUN_FILES = ("metrics.parquet", "ranks.parquet", "spectra.npz", "run.json", "manifest.json")


def files_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


# ---- atomic outputs -------------------------------------------------------------------------------


def test_atomic_write_failing_writer_keeps_the_old_file_whole(tmp_path):
    path = tmp_path / "metrics.parquet"
    path.write_bytes(b"old, complete")
    seen = {}

    def half_then_fail(tmp):
        seen["tmp"] = Path(tmp)
        Path(tmp).write_bytes(b"half of the new")
        seen["during"] = path.read_bytes()  # a reader while the writer works sees the old file
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, half_then_fail)
    assert seen["tmp"].parent == path.parent  # same filesystem: the final rename is atomic
    assert seen["tmp"].name != path.name and seen["during"] == b"old, complete"
    assert path.read_bytes() == b"old, complete"
    assert files_under(tmp_path) == {"metrics.parquet"}  # no temporary file left behind


def test_atomic_write_failing_writer_leaves_no_file_under_the_final_name(tmp_path):
    path = tmp_path / "new" / "run.json"

    def half_then_fail(tmp):
        Path(tmp).write_text('{"config": ')
        raise RuntimeError("killed mid-way")

    with pytest.raises(RuntimeError):
        atomic_write(path, half_then_fail)
    assert not path.exists() and files_under(tmp_path) == set()
    atomic_write(path, lambda tmp: Path(tmp).write_text("{}"))
    assert path.read_text() == "{}" and files_under(tmp_path) == {"new/run.json"}


def test_training_writes_only_into_its_output_and_checkpoint_folders(tmp_path, monkeypatch):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    cfg = cfgmod.variants(tiny_config(train={"steps": 60, "checkpoint_every": 20}), "fit1d")["base"]
    seen = []
    save = train.Trainer.save_checkpoint

    def spy(self):
        save(self)
        seen.append(files_under(tmp_path))

    monkeypatch.setattr(train.Trainer, "save_checkpoint", spy)
    train.run(cfg, tmp_path / "out", tmp_path / "ckpt", progress=False)
    assert len(seen) == 2  # checkpoints at steps 20 and 40 (none at the last step)
    for during in seen:
        assert during == {"ckpt/checkpoint.pt", "ckpt/lock"}  # nothing in out/ until the end
    outputs = {
        f"out/{name}" for name in ("metrics.parquet", "ranks.parquet", "spectra.npz", "run.json", "manifest.json")
    }
    assert files_under(tmp_path) == outputs  # checkpoint and lock are gone after success ...
    assert not (tmp_path / "ckpt").exists()  # ... and so is their folder


# ---- one job, one process ---------------------------------------------------------------------------


@contextlib.contextmanager
def lock_held_elsewhere(lock: Path):
    """Another process holding ``lock`` (as a running job does) for the block; SIGKILLed after it."""
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from staircase.records.provenance import exclusive\n"
         f"with exclusive({str(lock)!r}, 'job'):\n    print('held', flush=True); time.sleep(600)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        yield holder
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()


def test_a_second_process_on_the_same_job_stops_at_once(tmp_path):
    lock = tmp_path / "ckpt" / "lock"
    with lock_held_elsewhere(lock) as holder:
        with pytest.raises(AlreadyRunning, match=f"training fit1d/base is already running \\(pid {holder.pid} "):
            with exclusive(lock, "training fit1d/base"):
                pass
    with exclusive(lock, "training fit1d/base"):  # the kernel released a SIGKILLed holder's lock
        pass


# ---- bad run configs: one line, before any training -------------------------------------------------


@pytest.mark.parametrize(
    "argv, expected",
    [
        (
            ["--config", str(TINY), "--experiment", "fti1d"],
            "experiments: no experiment named 'fti1d'; have ['fit1d', 'regime1d', 'sweep1d']",
        ),
        (["--config", str(TINY), "--experiment", "fit1d", "--variant", "wide"], "has no variant 'wide'"),
        (["--config", str(TINY), "--experiment", "fit1d", "--set", "scale=fulll"], "scale: 'fulll' is not one of"),
        (["--config", "no/such.yaml", "--experiment", "fit1d"], "no/such.yaml: cannot read it (No such file"),
        (["--run-config", '{"experiment": "fit1d",'], "--run-config: not valid JSON"),
        (["--run-config", "@no/such.json"], "--run-config @no/such.json: cannot read it"),
        (["--run-config", "WIDTH"], "experiments.fit1d.model.width: -3 is less than the minimum of 1"),
        (["--run-config", "SEEDS"], "experiments.fit1d: 'seeds' is a required property"),
        (["--run-config", "AMPLITUDES"], "experiments.fit1d.task: 2 frequencies but 1 amplitudes"),
        (["--run-config", "NAN_LR"], "experiments.fit1d.train.lr: nan is not a finite number"),
        (["--run-config", "NO_EXPERIMENT"], "run config: experiment: missing (a run config names its experiment"),
        (["--run-config", "DOTS"], "run config: variant: '..' is not a name ("),
        # a loss that is not finite before any step is no divergence: the job stops before training
        (["--run-config", "OVERFLOW"], "experiments.fit1d.task: the loss is inf before any training step (seed 0, 1)"),
        (["--run-config", "RUN", "--device", "tpu"], "--device: 'tpu' is not a device; choose one of"),
        (["--run-config", "RUN", "--out", "FILE"], "--out FILE: exists and is not a folder"),
        (["--run-config", "RUN", "--out", "FILE/out"], "--out FILE/out: cannot create it (FILE is not a folder)"),
        (["--run-config", "RUN", "--log", "FILE/x.log"], "--log FILE/x.log: cannot create it (FILE is not a folder)"),
        (["--run-config", "RUN", "--checkpoint-dir", "FILE"], "--checkpoint-dir FILE: exists and is not a folder"),
    ],
)
def test_train_cli_rejects_a_bad_config_in_one_line(tmp_path, capsys, argv, expected):
    run_cfg = cfgmod.variants(tiny_config(), "fit1d")["base"]
    bad = {
        "RUN": run_cfg,
        "WIDTH": cfgmod.deep_merge(run_cfg, {"model": {"width": -3}}),
        "SEEDS": {k: v for k, v in run_cfg.items() if k != "seeds"},
        "AMPLITUDES": cfgmod.deep_merge(run_cfg, {"task": {"amplitudes": [1.0]}}),
        "NAN_LR": cfgmod.deep_merge(run_cfg, {"train": {"lr": float("nan")}}),
        "NO_EXPERIMENT": {k: v for k, v in run_cfg.items() if k != "experiment"},
        "DOTS": {**run_cfg, "variant": ".."},
        "OVERFLOW": cfgmod.deep_merge(run_cfg, {"task": {"amplitudes": [1.0e30, 1.0]}}),
    }
    (tmp_path / "FILE").write_text("a file where a folder belongs")
    argv = [json.dumps(bad[a]) if a in bad else a.replace("FILE", str(tmp_path / "FILE")) for a in argv]
    expected = expected.replace("FILE", str(tmp_path / "FILE"))
    out = tmp_path / "out"
    defaults = {"--out": str(out), "--checkpoint-dir": str(tmp_path / "ckpt")}
    argv += [x for flag, value in defaults.items() if flag not in argv for x in (flag, value)]
    before = files_under(tmp_path)
    assert cli.main(["train", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("staircase: error: ") and expected in err[0], err
    assert files_under(tmp_path) == before and not out.exists()  # failed before any training, wrote nothing
    assert not (tmp_path / "ckpt").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_train_on_a_missing_gpu_is_refused_before_training(tmp_path, capsys):
    run_cfg = cfgmod.variants(tiny_config(), "fit1d")["base"]
    for argv, flag in (([], "device"), (["--device", "cuda"], "--device")):
        cfg = {**run_cfg, "device": "cuda"} if not argv else run_cfg
        assert cli.main(["train", "--run-config", json.dumps(cfg), "--out", str(tmp_path / "out"), *argv]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err == [
            f"staircase: error: {flag}: 'cuda' requested but this machine has no CUDA device; use cpu or auto"
        ]
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_train_into_an_unwritable_folder_is_refused_before_training(tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    run_cfg = cfgmod.variants(tiny_config(), "fit1d")["base"]
    assert cli.main(["train", "--run-config", json.dumps(run_cfg), "--out", str(locked / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"staircase: error: --out {locked / 'out'}: cannot write there ({locked} is not writable)"]


@pytest.mark.parametrize(
    "command, argv, expected",
    [
        ("collapse", ["--run-config", '{"study": '], "--run-config: not valid JSON"),
        ("align", ["--run-config", "[1, 2]"], "run config: expected a mapping of settings, got a list"),
        ("align", ["--run-config", "NO_STUDY"], "run config: study: missing"),
        ("align", ["--run-config", "NAN"], "alignment.studies.gauss.train.lr: nan is not a finite number"),
        ("align", ["--run-config", "WIDTH"], "alignment.studies.gauss.model.width: 6.0 is not an integer"),
        ("align", ["--run-config", "STUDY", "--device", "tpu"], "--device: 'tpu' is not a device"),
        ("collapse", ["--config", str(REPO / ".test/config/lowrank.yaml"), "--study", "nope"], "has no enabled study"),
    ],
)
def test_lowrank_cli_rejects_a_bad_run_config_in_one_line(tmp_path, capsys, command, argv, expected):
    from staircase.workflow import lowrank_settings as settings

    study = settings.studies(yaml.safe_load((REPO / ".test/config/lowrank.yaml").read_text()), "alignment")["gauss"]
    bad = {
        "STUDY": study,
        "NO_STUDY": {k: v for k, v in study.items() if k != "study"},
        "NAN": cfgmod.deep_merge(study, {"train": {"lr": float("nan")}}),
        "WIDTH": cfgmod.deep_merge(study, {"model": {"width": 6.0}}),
    }
    argv = [json.dumps(bad[a]) if a in bad else a for a in argv]
    assert cli.main([command, *argv, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("staircase: error: ") and expected in err[0], err
    assert not (tmp_path / "out").exists()


def test_a_duplicate_job_leaves_the_running_jobs_log_alone(tmp_path, capsys):
    """The training rule lets the job write its log (--log) once it holds its lock: a second
    process on the same job stops, saying so, and the running job's log is untouched."""
    ckpt, log = tmp_path / "ckpt", tmp_path / "logs" / "base.log"
    log.parent.mkdir()
    log.write_text("the running job's progress\n")
    run_cfg = json.dumps(cfgmod.variants(tiny_config(), "fit1d")["base"])
    argv = ["train", "--run-config", run_cfg, "--out", str(tmp_path / "out"), "--checkpoint-dir", str(ckpt)]
    with lock_held_elsewhere(ckpt / "lock"):
        assert cli.main([*argv, "--log", str(log)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "training fit1d/base is already running (pid" in err[0], err
    assert log.read_text() == "the running job's progress\n" and not (tmp_path / "out").exists()
    # once the other process is gone, the job runs and its log holds its own output
    assert cli.main([*argv, "--log", str(log), "--no-progress"]) == 0
    assert "results in" in log.read_text() and "the running job's progress" not in log.read_text()
    assert capsys.readouterr().err == ""  # everything went to the log
    assert not ckpt.exists()  # lock and folder removed after success


def test_two_variants_of_one_name_are_a_config_error():
    config = tiny_config(sweep={"model.width": [8, 8]})
    with pytest.raises(cfgmod.ConfigError, match="two variants are named 'width-8'"):
        cfgmod.variants(config, "fit1d")


# ---- results that prove they are intact (staircase.records.manifest) -----------------------------------


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A results root with two finished runs of fit1d: base and lr2 (another learning rate)."""
    root = tmp_path_factory.mktemp("root")
    for variant, lr in (("base", 5.0e-3), ("lr2", 1.0e-2)):
        cfg = cfgmod.variants(tiny_config(train={"steps": 40, "lr": lr}), "fit1d")["base"]
        cfg["variant"] = variant
        train.run(cfg, root / "runs" / "fit1d" / variant, progress=False)
    return root


def copy_run(finished, tmp_path, variant="base") -> Path:
    out = tmp_path / "runs" / "fit1d" / variant
    shutil.copytree(finished / "runs" / "fit1d" / variant, out)
    return out


def refused(folder: Path) -> str:
    """The one line with which the runs reader refuses ``folder``."""
    with pytest.raises(UnreadableResult) as err:
        run = runs.load_run(folder)
        run.ranks, run.spectra  # noqa: B018  (read lazily)
    message = str(err.value)
    assert "\n" not in message and message.startswith(str(folder)), message
    return message


def test_a_bit_flip_anywhere_in_a_finished_run_is_detected(finished, tmp_path):
    """Fault injection: one flipped bit at 40 places of every file of a finished run (evenly spread
    and random, the first and last byte among them); the next reader refuses each, naming a file."""
    rng = np.random.default_rng(26)
    folder = copy_run(finished, tmp_path)
    runs.load_run(folder)  # whole, it reads
    trials = 0
    for name in RUN_FILES:
        path = folder / name
        original = path.read_bytes()
        places = np.unique(
            np.r_[np.linspace(0, len(original) - 1, 20).astype(int), rng.integers(len(original), size=20)]
        )
        for place in places:
            damaged = bytearray(original)
            damaged[place] ^= 1 << int(rng.integers(8))
            path.write_bytes(bytes(damaged))
            message = refused(folder)
            assert "delete the run's folder and run snakemake again" in message
            trials += 1
        path.write_bytes(original)
    runs.load_run(folder)
    assert trials >= 150


def test_a_file_swapped_in_from_another_run_is_refused(finished, tmp_path):
    for name in ("metrics.parquet", "ranks.parquet", "spectra.npz", "run.json"):
        folder = copy_run(finished, tmp_path / name)
        shutil.copy(finished / "runs/fit1d/lr2" / name, folder / name)
        assert refused(folder).startswith(f"{folder / name}: does not match its manifest.json")


def test_a_run_folder_copied_or_linked_under_another_name_is_refused(finished, tmp_path):
    folder = tmp_path / "runs" / "fit1d" / "base"
    shutil.copytree(finished / "runs/fit1d/lr2", folder)  # the whole folder, manifest and all
    assert refused(folder) == (
        f"{folder}: holds the run of fit1d/lr2 (copied, moved or linked from there); delete the run's folder "
        "and run snakemake again, which re-runs the job that writes it"
    )
    link = tmp_path / "runs" / "fit1d" / "alias"
    link.symlink_to(finished / "runs/fit1d/base")
    assert "holds the run of fit1d/base" in refused(link)


# ---- papers B and C: a study folder proves itself the same way --------------------------------

TINY_STUDIES = {
    "rank_collapse": {
        "family": "rank_collapse",
        "study": "tiny",
        "device": "cpu",
        "data": {"name": "gaussian_mixture", "classes": 3, "dim": 6, "per_class": 8, "radius": 3.0, "noise": [0.1]},
        "weight_decay": [0.0, 3.0e-2],
        "model": {"width": 8, "depth": 2},
        "train": {"lr": 0.1, "momentum": 0.9, "steps": 20, "dtype": "float64", "stationarity_window": 5},
        "log": {"checkpoints": 3},
        "metrics": {"numerical_rank_rtol": 1e-3},
        "seeds": [0],
    },
    "alignment": {
        "family": "alignment",
        "study": "tiny",
        "device": "cpu",
        "data": {"name": "separable_gaussian", "dim": 5, "points": 20, "margin": 0.2, "seed": 0, "rms_norm": 1.0},
        "model": {"relu_layers": 1, "linear_layers": 2, "width": 5, "init_scale": 1.0},
        "train": {"loss": "logistic", "optimizer": "gd", "lr": 0.05, "steps": 20, "dtype": "float64"},
        "log": {"checkpoints": 3},
        "seeds": [0, 1],
    },
}


@pytest.fixture(scope="module")
def studies(tmp_path_factory):
    """A results root with a finished tiny study of each family (the study code called directly)."""
    from staircase.training import alignment, collapse

    root = tmp_path_factory.mktemp("studies")
    for family, job in (("rank_collapse", collapse), ("alignment", alignment)):
        job.run(TINY_STUDIES[family], root / "runs" / family / "tiny", progress=False)
    return root


def refused_study(folder: Path, family: str) -> str:
    """The one line with which the audit's reader of a study (staircase.claims.lowrank) refuses ``folder``."""
    from staircase.claims import lowrank

    with pytest.raises(UnreadableResult) as err:
        lowrank.load_study(folder, family, folder.name)
    message = str(err.value)
    assert "\n" not in message and message.startswith(str(folder)), message
    return message


@pytest.mark.parametrize("family", ["rank_collapse", "alignment"])
def test_a_bit_flip_anywhere_in_a_finished_study_is_detected(studies, tmp_path, family):
    """Fault injection on papers B and C's runs: one flipped bit at 12 places of every file the
    study wrote (evenly spread and random, first and last byte among them); each is refused."""
    rng = np.random.default_rng(26)
    folder = tmp_path / "runs" / family / "tiny"
    shutil.copytree(studies / "runs" / family / "tiny", folder)
    written = sorted(p.name for p in folder.iterdir() if p.name != manifest.NAME)
    assert sorted(json.loads((folder / manifest.NAME).read_text())["files"]) == written  # every file vouched for
    runs.load_study_run(folder)  # whole, it reads
    for name in written:
        path = folder / name
        original = path.read_bytes()
        places = np.unique(np.r_[np.linspace(0, len(original) - 1, 6).astype(int), rng.integers(len(original), size=6)])
        for place in places:
            damaged = bytearray(original)
            damaged[place] ^= 1 << int(rng.integers(8))
            path.write_bytes(bytes(damaged))
            assert "delete the run's folder and run snakemake again" in refused_study(folder, family)
        path.write_bytes(original)
    assert runs.load_study_run(folder).table("claims_inputs").shape[0] > 0


def test_a_study_swapped_unfinished_or_under_another_name_is_refused(studies, tmp_path):
    collapse_run, align_run = (studies / "runs" / f / "tiny" for f in ("rank_collapse", "alignment"))
    folder = tmp_path / "runs/rank_collapse/tiny"
    shutil.copytree(collapse_run, folder)
    shutil.copy(align_run / "metrics.parquet", folder / "metrics.parquet")
    assert "metrics.parquet: does not match its manifest.json" in refused_study(folder, "rank_collapse")
    renamed = tmp_path / "runs/rank_collapse/other"
    shutil.copytree(collapse_run, renamed)
    assert "holds the run of rank_collapse/tiny (copied, moved or linked" in refused_study(renamed, "rank_collapse")
    (renamed / manifest.NAME).unlink()
    assert "manifest.json: missing (the run is unfinished" in refused_study(renamed, "rank_collapse")


def rehash(folder: Path, name: str) -> None:
    """Make the manifest agree with an edited ``name`` (its sha256 and size only): the contents
    checks behind the manifest's are then what refuses the file."""
    manifest = json.loads((folder / "manifest.json").read_text())
    entry = manifest["files"][name]
    entry.update(sha256=hashlib.sha256((folder / name).read_bytes()).hexdigest(), bytes=(folder / name).stat().st_size)
    (folder / "manifest.json").write_text(json.dumps(manifest))


def _metrics(edit):
    def apply(folder):
        m = pd.read_parquet(folder / "metrics.parquet")
        pd.DataFrame(edit(m)).to_parquet(folder / "metrics.parquet", index=False)
        manifest.seal(folder)

    return apply


def _run_json(value):
    def apply(folder):
        info = json.loads((folder / "run.json").read_text())
        (folder / "run.json").write_text(json.dumps(value(info) if callable(value) else value))
        rehash(folder, "run.json")

    return apply


WRONG_CONTENTS = {
    "NaN losses in a finished run": (
        _metrics(lambda m: m.assign(loss=np.where(m["step"] > 20, np.nan, m["loss"]))),
        "metrics.parquet: seed 0 has NaN or infinite losses though run.json says it finished ok",
    ),
    "a missing column": (_metrics(lambda m: m.drop(columns=["eps_rank"])), "metrics.parquet: missing column(s)"),
    "a lost seed": (_metrics(lambda m: m[m["seed"] == 0]), "metrics.parquet: its seeds [0] are not run.json's [0, 1]"),
    "run.json {}": (_run_json({}), "run.json: its config lacks experiment"),
    "run.json []": (_run_json([]), "run.json: expected a mapping, got list"),
    "run.json without status": (
        _run_json(lambda i: {k: v for k, v in i.items() if k != "status"}),
        "run.json: status: expected one status per seed",
    ),
    "run.json with wrong seeds": (_run_json(lambda i: {**i, "seeds": [0, 7]}), "run.json: status: expected one"),
}


@pytest.mark.parametrize("case", WRONG_CONTENTS)
def test_contents_that_cannot_be_right_are_refused_in_one_line(finished, tmp_path, case):
    edit, expected = WRONG_CONTENTS[case]
    folder = copy_run(finished, tmp_path)
    edit(folder)
    message = refused(folder)
    assert message.startswith(f"{folder}/{expected}"), message


def test_the_audit_command_refuses_a_damaged_run_in_one_line(finished, tmp_path):
    folder = copy_run(finished, tmp_path)
    data = bytearray((folder / "ranks.parquet").read_bytes())
    data[len(data) // 2] ^= 4
    (folder / "ranks.parquet").write_bytes(bytes(data))
    res = subprocess.run(
        [sys.executable, "-m", "staircase", "audit", "--runs", str(folder)], capture_output=True, text=True
    )
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(lines) == 1, res.stderr
    assert lines[0].startswith(f"staircase: error: {folder / 'ranks.parquet'}: does not match its manifest.json")


@pytest.mark.parametrize(
    "table",
    [
        "test,ensemble\nA1,x\n",
        "\x00\x01garbage",
        "test,ensemble,measures,draws,rate,ci_low,ci_high\nA1,x,y,10,lots,0,1\n",
    ],
)
def test_a_damaged_calibration_table_is_named_in_one_line(finished, tmp_path, capsys, table):
    (tmp_path / "calibration").mkdir()
    (tmp_path / "calibration/summary.csv").write_text(table)
    argv = [
        "audit",
        "--runs",
        str(finished / "runs/fit1d/base"),
        "--results",
        str(tmp_path),
        "--out",
        str(tmp_path / "a"),
    ]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"staircase: error: {tmp_path / 'calibration/summary.csv'}: "), err


def test_a_run_without_a_manifest_is_unfinished(finished, tmp_path):
    folder = copy_run(finished, tmp_path)
    (folder / "manifest.json").unlink()
    assert "manifest.json: missing (the run is unfinished" in refused(folder)


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o002])
def test_result_files_follow_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        atomic_write(tmp_path / "claims.csv", lambda tmp: Path(tmp).write_text("claim\n"))
    finally:
        os.umask(old)
    assert (tmp_path / "claims.csv").stat().st_mode & 0o777 == 0o666 & ~umask


def test_a_run_folder_that_is_a_symlink_is_not_written_through(finished, tmp_path, capsys):
    other = tmp_path / "runs" / "fit1d" / "lr2"
    shutil.copytree(finished / "runs/fit1d/lr2", other)
    before = {p.name: p.read_bytes() for p in other.iterdir()}
    (tmp_path / "runs/fit1d/base").symlink_to(other)
    argv = ["train", "--config", str(TINY), "--experiment", "fit1d", "--out", str(tmp_path / "runs/fit1d/base")]
    assert cli.main([*argv, "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is a symlink" in err[0]
    assert {p.name: p.read_bytes() for p in other.iterdir()} == before


# ---- commands' outputs and --strict ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["compare", "a", "b", "--out", "{file}"],
        ["calibrate", "--config", str(TINY), "--out", "{file}"],
        ["audit", "--runs", "{run}", "--out", "{file}"],
    ],
)
def test_an_output_folder_that_is_a_file_is_refused_before_work(finished, tmp_path, capsys, argv):
    file = tmp_path / "taken"
    file.write_text("mine")
    argv = [a.format(file=file, run=finished / "runs/fit1d/base") for a in argv]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"staircase: error: --out {file}: exists and is not a folder"]
    assert file.read_text() == "mine"


def test_strict_needs_every_configured_claim_judged_and_passed(capsys):
    frame = pd.DataFrame({"claim": ["A1", "A2"], "experiment": ["fit1d", "fit1d"], "verdict": ["PASS", "PASS"]})
    assert cli.strict_status(frame, [("A1", "fit1d"), ("A2", "fit1d")], "PASS") == 0
    assert cli.strict_status(frame, [("A1", "fit1d"), ("A4", "sweep1d")], "PASS") == 1
    assert "1 configured claim(s) not judged, e.g. ('A4', 'sweep1d')" in capsys.readouterr().err
    assert cli.strict_status(frame.iloc[:0], [], "PASS") == 1
    assert "no claim judged" in capsys.readouterr().err
    assert cli.strict_status(frame.assign(verdict=["PASS", "FAIL"]), [("A1", "fit1d")], "PASS") == 1


# ---- failing notebooks ------------------------------------------------------------------------------


def test_notebook_failure_names_the_failing_cell(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1", execution_count=1), nbformat.v4.new_code_cell("1 / 0")]
    nb.cells[1].execution_count = 2
    nb.cells[1].outputs = [nbformat.v4.new_output("error", ename="ZeroDivisionError", evalue="division by zero")]
    path = tmp_path / "fig.ipynb"
    nbformat.write(nb, path)
    message = failure_message(path, "fig.log")
    assert message.startswith("notebook failed in cell In [2] with ZeroDivisionError: division by zero")
    assert f"partially executed copy, with the traceback under that cell, is {path}" in message
    assert "fig.log" in message
    assert "before any cell ran" in failure_message(tmp_path / "missing.ipynb")


# ---- end to end through Snakemake ---------------------------------------------------------------------


def start_snakemake(*args, cwd, log):
    """Snakemake in its own process group (as in a terminal), so the test can kill the lot."""
    with open(log, "w") as fh:
        return subprocess.Popen(
            snakemake_command(*args),
            cwd=cwd, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip


def snakemake(*args, cwd, timeout=600):
    return helpers.snakemake(*args, cwd=cwd, timeout=timeout)


def wait_for(condition, proc, what, timeout=300):
    deadline = time.time() + timeout
    while not condition():
        assert proc.poll() is None, f"snakemake ended before {what}"
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def training_process(root_pid: int) -> int:
    """The `python -m staircase train` process below root_pid (not the shell that started it)."""
    rows = subprocess.run(["ps", "-eo", "pid=,ppid=,args="], capture_output=True, text=True, check=True).stdout
    procs = [line.split(None, 2) for line in rows.splitlines() if len(line.split(None, 2)) == 3]
    parent = {int(pid): int(ppid) for pid, ppid, _ in procs}

    def below_root(pid):
        while pid > 1:
            if pid == root_pid:
                return True
            pid = parent.get(pid, 0)
        return False

    found = [
        int(pid)
        for pid, _, args in procs
        if "-m staircase train" in args and "python" in args.split()[0] and below_root(int(pid))
    ]
    assert len(found) == 1, procs
    return found[0]


def same_results(a: Path, b: Path) -> None:
    """Identical outputs apart from the clock columns."""
    pd.testing.assert_frame_equal(
        pd.read_parquet(a / "metrics.parquet").drop(columns=list(TIMING_COLUMNS)),
        pd.read_parquet(b / "metrics.parquet").drop(columns=list(TIMING_COLUMNS)),
    )
    assert pd.read_parquet(a / "ranks.parquet").equals(pd.read_parquet(b / "ranks.parquet"))
    with np.load(a / "spectra.npz") as sa, np.load(b / "spectra.npz") as sb:
        assert sorted(sa.files) == sorted(sb.files)
        for key in sa.files:
            np.testing.assert_array_equal(sa[key], sb[key])


def test_one_workflow_per_results_root_and_no_symlinks_out_of_it(tmp_path):
    """A second Snakemake on the same results root stops before any job, in one line (the first
    holds the root's lock for its life); a checkpoints folder linked elsewhere stops a dry run."""
    shutil.copy(TINY, tmp_path / "tiny.yaml")
    (tmp_path / "results/small").mkdir(parents=True)
    (tmp_path / "elsewhere/kept").mkdir(parents=True)
    (tmp_path / "results/small/checkpoints").symlink_to(tmp_path / "elsewhere")
    res = snakemake("--dry-run", "--cores", "1", "--configfile", "tiny.yaml", cwd=tmp_path)
    errors = [line for line in (res.stdout + res.stderr).splitlines() if "error" in line.lower()]
    assert res.returncode == 1 and errors == [
        f"config error: results/small/checkpoints: is a symlink (to {tmp_path / 'elsewhere'}); the workflow "
        "writes only inside its results root: replace it with a folder"
    ]
    (tmp_path / "results/small/checkpoints").unlink()
    target = "results/small/runs/sweep1d/activation-tanh/run.json"
    with lock_held_elsewhere(tmp_path / "results/small/.staircase.lock") as holder:
        res = snakemake("--cores", "1", target, "--configfile", "tiny.yaml", cwd=tmp_path)
    out = res.stdout + res.stderr
    errors = [line for line in out.splitlines() if "error" in line.lower()]
    assert res.returncode == 1 and "Traceback" not in out and len(errors) == 1, out
    assert errors[0].startswith(f"error: a workflow writing into results/small is already running (pid {holder.pid} ")
    assert not (tmp_path / "results/small/runs").exists() and (tmp_path / "elsewhere/kept").is_dir()


@pytest.mark.slow
def test_snakemake_run_resumes_after_sigkill(tmp_path):
    """Kill the training process, then Snakemake with its jobs: the run resumes from its checkpoint
    with the commands the README gives, and ends with exactly the uninterrupted run's numbers."""
    config = tiny_config(train={"steps": 1500, "checkpoint_every": 100}, log={"sparse_every": 250})
    (tmp_path / "long.yaml").write_text(yaml.safe_dump(config))
    work = tmp_path / "work"
    work.mkdir()
    target = "results/small/runs/fit1d/base/metrics.parquet"
    args = [target, "--cores", "2", "--configfile", str(tmp_path / "long.yaml")]  # targets before --configfile
    ckpt = work / "results/small/checkpoints/fit1d/base/checkpoint.pt"
    log = work / "results/small/logs/train/fit1d/base.log"

    # 1. the training process dies (out of memory, kill -9): Snakemake reports the failed job
    sm = start_snakemake(*args, cwd=work, log=tmp_path / "sm1.log")
    wait_for(ckpt.exists, sm, "the first checkpoint")
    os.kill(training_process(sm.pid), signal.SIGKILL)
    assert sm.wait(timeout=300) != 0
    assert ckpt.exists() and not (work / target).exists()

    # 2. a plain re-run resumes; this time Snakemake and its jobs are killed together (terminal
    #    closed, node lost) once the resumed run has written a checkpoint of its own
    first = ckpt.stat().st_mtime_ns
    sm = start_snakemake(*args, cwd=work, log=tmp_path / "sm2.log")
    wait_for(lambda: log.exists() and "resumed from checkpoint at step" in log.read_text(), sm, "the resume")
    wait_for(lambda: ckpt.stat().st_mtime_ns != first, sm, "a checkpoint after the resume")
    os.killpg(sm.pid, signal.SIGKILL)
    sm.wait()

    # 3. Snakemake left its lock: it refuses to start until --unlock
    res = snakemake(*args, cwd=work)
    assert res.returncode != 0 and "--unlock" in res.stdout + res.stderr
    assert snakemake(*args, "--unlock", cwd=work).returncode == 0
    # Snakemake marked the job's outputs incomplete when it started it; had the job been killed
    # while writing them, a plain re-run would stop with IncompleteFilesException and ask for
    # --rerun-incomplete (checked by hand; not repeated here, each Snakemake start costs seconds)
    markers = {base64.b64decode(m.name).decode() for m in (work / ".snakemake/incomplete").iterdir()}
    assert target in markers
    (work / target).write_bytes(b"PAR1 half a file")

    # 4. --rerun-incomplete resumes from the last checkpoint and finishes
    res = snakemake(*args, "--rerun-incomplete", cwd=work)
    assert res.returncode == 0, res.stderr[-3000:]
    text = log.read_text()
    assert "resumed from checkpoint at step" in text and "1500 steps" in text
    resumed_at = int(text.split("resumed from checkpoint at step ")[1].split()[0])
    assert 100 < resumed_at < 1500  # from the second run's checkpoint, not the first one
    assert not ckpt.exists()

    train.run(cfgmod.variants(config, "fit1d")["base"], tmp_path / "straight", progress=False)
    same_results(work / "results/small/runs/fit1d/base", tmp_path / "straight")


@pytest.mark.slow
def test_diverged_run_is_recorded_and_flagged_and_a_failing_notebook_points_to_its_cell(tmp_path):
    config = tiny_config(
        claims=["A1", "A2"],
        train={"steps": 60},
        variants={"base": {}, "diverge": {"train": {"optimizer": "sgd", "lr": 1.0e6}}},
    )
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    work = tmp_path / "work"
    work.mkdir()
    args = ["--cores", "2", "--configfile", str(tmp_path / "config.yaml")]
    res = snakemake("results/small/audit/claims.md", *args, cwd=work)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]  # a diverged run is a result, not a crash

    # the training log says which experiment, seed and step
    log = (work / "results/small/logs/train/fit1d/diverge.log").read_text()
    assert re.search(r"fit1d/diverge seed 0 diverged: loss is (nan|-?inf) at step 10 \(finite at step 0\)", log), log
    assert "stopped before step 60: every seed diverged" in log
    # run.json and the metrics record it
    run = json.loads((work / "results/small/runs/fit1d/diverge/run.json").read_text())
    assert run["diverged"] and run["status"] == {"0": "diverged at step 10", "1": "diverged at step 10"}
    metrics = pd.read_parquet(work / "results/small/runs/fit1d/diverge/metrics.parquet")
    assert metrics.query("step >= 10")["loss"].isna().all() and metrics.query("step < 10")["loss"].notna().all()
    assert json.loads((work / "results/small/runs/fit1d/base/run.json").read_text())["diverged"] is False
    # the figure's notebook lists the diverged seeds, and the audit names them
    executed = (work / "results/small/notebooks/staircase_fit1d.ipynb").read_text()
    assert "diverged at step 10" in executed
    claims = (work / "results/small/audit/claims.md").read_text()
    assert "excluded (diverged): diverge/seed0 diverged at step 10" in claims

    # now the figure's notebook fails (here: unreadable data): the partial copy stays in the logs
    # and the message names it and the failing cell
    (work / "results/small/runs/fit1d/diverge/metrics.parquet").write_bytes(b"not a parquet file")
    res = snakemake("results/small/figures/staircase_fit1d.png", *args, cwd=work)
    assert res.returncode != 0
    partial = work / "results/small/logs/notebooks/staircase_fit1d.ipynb"
    nb = nbformat.read(partial, as_version=4)
    failing = [c for c in nb.cells if any(o.get("output_type") == "error" for o in c.get("outputs", []))]
    assert len(failing) == 1
    lines = [line for line in res.stderr.splitlines() if line.startswith("notebook failed")]
    assert len(lines) == 1, res.stderr[-3000:]
    assert f"notebook failed in cell In [{failing[0].execution_count}] with " in lines[0]
    assert "is results/small/logs/notebooks/staircase_fit1d.ipynb (papermill output in " in lines[0]
    assert not (work / "results/small/notebooks/staircase_fit1d.ipynb").exists()  # no output passes for complete
