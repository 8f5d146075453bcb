"""The execution profiles (workflow/profiles/): Snakemake accepts each of them, the cluster settings a
user chooses reach the jobs' resources, and the CPU and GPU SLURM profiles differ only where they
should. The real SLURM run is tests/slurm/run_slurm_test.sh (make test-slurm)."""

from __future__ import annotations

import pytest
from helpers import REPO, snakemake
from snakemake.profiles import ProfileConfigFileParser

PROFILES = REPO / "workflow" / "profiles"
TINY = REPO / ".test" / "config" / "config.yaml"
VARIABLES = [
    "STAIRCASE_SLURM_ACCOUNT",
    "STAIRCASE_SLURM_PARTITION",
    "STAIRCASE_SLURM_GPU_PARTITION",
    "STAIRCASE_SLURM_GPU_MODEL",
]


def parse(name: str, monkeypatch, **variables) -> dict:
    """The profile as Snakemake reads it: option -> value, or list of key=value items."""
    for var in VARIABLES:
        monkeypatch.delenv(var, raising=False)
    for var, value in variables.items():
        monkeypatch.setenv(var, value)
    with open(PROFILES / name / "config.yaml") as fh:
        return dict(ProfileConfigFileParser().parse(fh))


def resources(items: list[str]) -> dict:
    return dict(item.split("=", 1) for item in items)


def rule_resources(items: list[str], rule: str) -> dict:
    return resources(item.split(":", 1)[1] for item in items if item.startswith(f"{rule}:"))


def test_profiles_exist():
    assert {p.name for p in PROFILES.iterdir() if (p / "config.yaml").exists()} >= {"default", "slurm", "slurm-gpu"}


def test_default_profile_is_local(monkeypatch):
    profile = parse("default", monkeypatch)
    assert "executor" not in profile
    assert profile["cores"] == "all"


@pytest.mark.parametrize("name", ["slurm", "slurm-gpu"])
def test_cluster_settings_come_from_the_environment(name, monkeypatch):
    unset = parse(name, monkeypatch)
    assert unset["executor"] == "slurm"
    defaults = resources(unset["default-resources"])
    assert defaults["slurm_account"] == "" and defaults["slurm_partition"] == ""  # left to the plugin
    assert int(defaults["runtime"]) > 0 and int(defaults["mem_mb"]) > 0

    set_ = parse(name, monkeypatch, STAIRCASE_SLURM_ACCOUNT="proj42", STAIRCASE_SLURM_PARTITION="short")
    defaults = resources(set_["default-resources"])
    assert defaults["slurm_account"] == "proj42" and defaults["slurm_partition"] == "short"


def test_gpu_profile_differs_only_in_the_training_jobs(monkeypatch):
    cpu = parse("slurm", monkeypatch, STAIRCASE_SLURM_PARTITION="cpu")
    gpu = parse("slurm-gpu", monkeypatch, STAIRCASE_SLURM_PARTITION="cpu")
    assert {k: v for k, v in cpu.items() if k != "set-resources"} == {
        k: v for k, v in gpu.items() if k != "set-resources"
    }
    train_cpu, train_gpu = rule_resources(cpu["set-resources"], "train"), rule_resources(gpu["set-resources"], "train")
    assert train_cpu["gpu"] == "0" and train_gpu["gpu"] == "1"
    assert train_cpu["runtime"] == train_gpu["runtime"]
    assert train_gpu["slurm_partition"] == "cpu"  # no GPU partition named: the partition of the rest
    assert "gpu_model" not in train_gpu

    gpu = parse("slurm-gpu", monkeypatch, STAIRCASE_SLURM_GPU_PARTITION="gpu", STAIRCASE_SLURM_GPU_MODEL="a100")
    train_gpu = rule_resources(gpu["set-resources"], "train")
    assert train_gpu["slurm_partition"] == "gpu" and train_gpu["gpu_model"] == "a100"


@pytest.mark.parametrize("name", ["default", "slurm", "slurm-gpu"])
def test_snakemake_accepts_the_profile(name, tmp_path):
    """A dry run with the profile: every option in it exists, every resource parses (no SLURM needed)."""
    res = snakemake(
        "--profile", str(PROFILES / name), "--configfile", str(TINY), "--dry-run", cwd=tmp_path, timeout=300
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "rule train:" in res.stdout
