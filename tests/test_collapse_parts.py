"""A rank_collapse study split into one job per lambda x noise cell (``split: cells``) and merged
(staircase.training.collapse_parts): the merged files equal those of the study trained in one job,
number for number (tests/slurm/compare_runs.py's comparison); the workflow plans and runs the parts
and the merge; and the full-scale projection has no job above 4 hours on one core."""

from __future__ import annotations

import json
import shutil
import sys

import pytest
import yaml
from helpers import REPO, snakemake

from staircase.errors import ConfigError
from staircase.training import collapse, collapse_parts
from staircase.workflow import cost, lowrank_settings

sys.path.insert(0, str(REPO / "tests" / "slurm"))
import compare_runs  # noqa: E402  (a script of tests/slurm, not a package)

TINY = REPO / ".test" / "config" / "lowrank.yaml"
FOUR_HOURS = 4 * 3600


def tiny_config(split: str | None = None) -> dict:
    config = yaml.safe_load(TINY.read_text())
    if split:
        config["rank_collapse"]["studies"]["grid"]["split"] = split
    return config


def grid_study(config: dict) -> dict:
    return lowrank_settings.studies(config, "rank_collapse")["grid"]


def test_split_does_not_change_the_resolved_study():
    """`split` is how a study runs: the run config (and so run.json's config) is the same."""
    assert grid_study(tiny_config("cells")) == grid_study(tiny_config())
    assert lowrank_settings.parts(tiny_config("cells"), "rank_collapse", "grid") == 5 * 2  # lambda x noise
    assert lowrank_settings.parts(tiny_config(), "rank_collapse", "grid") == 0


@pytest.mark.slow
def test_the_workflow_splits_and_merges_to_the_unsplit_files(tmp_path):
    """The tiny grid (5 lambda x 2 noise x 2 seeds) as 10 part jobs and a merge, through Snakemake,
    against the same study trained in one process: identical tables, spectra and run.json."""
    cfg = grid_study(tiny_config())
    whole = tmp_path / "whole"
    collapse.run(cfg, whole, progress=False)
    (tmp_path / "split.yaml").write_text(yaml.safe_dump(tiny_config("cells")))
    target = "results/small/runs/rank_collapse/grid/run.json"
    res = snakemake("--cores", "2", target, "--configfile", str(tmp_path / "split.yaml"), cwd=tmp_path, timeout=900)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    merged = tmp_path / "results/small/runs/rank_collapse/grid"
    assert sorted(p.name for p in (merged / "parts").iterdir()) == sorted(str(k) for k in range(10))
    assert compare_runs.compare_run(whole, merged, merged.relative_to(tmp_path)) == []
    assert sorted(p.name for p in merged.iterdir() if p.is_file()) == sorted(p.name for p in whole.iterdir())
    record = json.loads((merged / "run.json").read_text())
    parts = record["parts"]
    assert [p["part"] for p in parts] == list(range(10))
    assert record["wall_time_s"] == pytest.approx(sum(p["wall_time_s"] for p in parts), abs=1e-2)


def test_merge_refuses_parts_of_another_study_or_a_missing_part(tmp_path):
    cfg = grid_study(tiny_config())
    cfg["train"]["steps"] = 20
    dirs = [tmp_path / str(k) for k in range(collapse.grid_cells(cfg))]
    for k, folder in enumerate(dirs):
        collapse.run(cfg, folder, progress=False, part=k)
    other = json.loads(json.dumps(cfg))
    other["train"]["lr"] = 0.05
    with pytest.raises(ConfigError, match=r"run.json: config differs from the study's"):
        collapse_parts.merge(other, dirs, tmp_path / "merged")
    with pytest.raises(ConfigError, match=r"parts \[0, 1, .*\] given; study grid has parts"):
        collapse_parts.merge(cfg, dirs[:-1], tmp_path / "merged")
    shutil.copytree(dirs[0], tmp_path / "again")
    with pytest.raises(ConfigError, match="part 0 is given twice"):
        collapse_parts.merge(cfg, [*dirs, tmp_path / "again"], tmp_path / "merged")
    # a part whose files are not those its manifest sealed (one byte flipped) is refused, naming it
    flipped = tmp_path / "flipped"
    shutil.copytree(dirs[1], flipped)
    table = next(flipped.glob("*.parquet"))
    data = bytearray(table.read_bytes())
    data[len(data) // 2] ^= 0x01
    table.write_bytes(bytes(data))
    with pytest.raises(ConfigError, match=rf"--parts: .*{table.name}: does not match its manifest.json"):
        collapse_parts.merge(cfg, [dirs[0], flipped, *dirs[2:]], tmp_path / "merged")
    assert not (tmp_path / "merged").exists()  # nothing written before the parts are checked
    collapse_parts.merge(cfg, dirs[::-1], tmp_path / "merged")  # any order
    assert (tmp_path / "merged" / "run.json").exists()


def full_scale_projection(split: bool = True) -> cost.Projection:
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["scale"] = "full"
    if not split:
        for study in config["rank_collapse"]["studies"].values():
            study.get("full", {}).pop("split", None)
    return cost.project(config)


def test_no_full_scale_job_is_projected_above_four_hours():
    projection = full_scale_projection()
    durations = cost.job_seconds(projection)
    jobs = projection.per_job["job"]
    assert durations.max() < FOUR_HOURS, jobs.iloc[durations.argmax()]
    assert jobs.str.startswith("rank_collapse/digits_lambda/part").sum() == 11
    assert jobs.str.startswith("rank_collapse/gauss_noise/part").sum() == 7
    # the makespan on 16 cores: at least the longest job and the total / 16, within Graham's 4/3 of the best
    assert max(durations.max(), durations.sum() / 16) <= cost.makespan(durations, 16) < FOUR_HOURS * 4 / 3
    # the split moves no work: the parts add up to the study (start-up aside)
    whole = full_scale_projection(split=False)
    assert projection.lowrank_s == pytest.approx(whole.lowrank_s, rel=1e-9)
    # and unsplit, the study alone is the longest job, far above four hours: what the split removes
    assert cost.job_seconds(whole).max() > 4 * FOUR_HOURS


def test_a_part_outside_the_grid_is_one_line_before_any_training(tmp_path, capsys):
    from staircase import cli

    argv = ["collapse", "--config", str(TINY), "--study", "grid", "--part", "10", "--out", str(tmp_path / "p")]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--part 10: study grid has 10 lambda x noise cells: give 0 to 9" in err
    assert not (tmp_path / "p").exists()
