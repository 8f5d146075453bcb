"""The cost projection's makespan (staircase.workflow.cost): list scheduling of the training jobs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from helpers import snakemake

from staircase.workflow import cost

REPO = Path(__file__).resolve().parents[1]


def test_makespan_is_bounded_by_the_longest_job_and_the_average():
    jobs = [20.0, 1.0, 1.0, 1.0, 1.0]
    assert cost.makespan(jobs, 16) == 20.0  # one long job: more cores do not help
    assert cost.makespan(jobs, 1) == 24.0
    assert cost.makespan([3.0, 3.0, 2.0, 2.0, 2.0], 2) == 7.0  # longest first: 3+2+2 | 3+2 (best is 6)
    many = [1.0] * 100
    assert cost.makespan(many, 16) == pytest.approx(7.0)  # ceil(100 / 16)


def test_full_scale_projection_names_its_makespan_on_2_and_16_cores():
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["scale"] = "full"
    projection = cost.project(config)
    text = cost.describe_makespan(projection, (2, 16))
    durations = cost.job_seconds(projection)
    assert "on 2 cores" in text and "on 16 cores" in text and "the longest job" in text
    assert cost.makespan(durations, 16) >= durations.max()
    assert cost.makespan(durations, 2) >= durations.sum() / 2


def test_a_full_scale_dry_run_ends_with_its_makespan(tmp_path):
    (tmp_path / "config.yaml").write_text((REPO / ".test/config/config.yaml").read_text())
    args = ("--dry-run", "--cores", "2", "--configfile", str(tmp_path / "config.yaml"), "--config", "scale=full")
    res = snakemake(*args, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    last = res.stderr.strip().splitlines()[-4:]
    assert last[0].startswith("projected makespan of the training jobs")
    assert last[1].strip().startswith("on 2 cores:") and last[2].strip().startswith("on 16 cores:")
    assert last[3].strip().startswith("the longest job:")
