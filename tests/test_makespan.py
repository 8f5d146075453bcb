"""The cost projection's makespan (staircase.workflow.cost): list scheduling of the training jobs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

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
