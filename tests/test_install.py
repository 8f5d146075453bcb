"""`pip install <clone>` alone gives the tracker and the audit (docs/install.md): the README's tracker
example runs and `staircase audit --runs` judges its run in a virtual environment that holds the
package and the dependencies pyproject.toml declares, and nothing else: no Snakemake, no notebooks.

The environment is built offline from the test venv: a fresh venv, the clone installed into it by
pip (a real build of the distribution), and the declared dependencies with everything they require
made visible through one .pth folder of links. So a missing declaration (an import of a package
pyproject.toml does not name) fails here, as it would for a user's `pip install`."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
import venv
from importlib import metadata
from pathlib import Path

import pandas as pd
import pytest
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
# one thread per process, as the pipeline's jobs: on the shared 2-core machine two threads made
# these small nets several times slower
ONE_THREAD = {**os.environ, "OMP_NUM_THREADS": "1"}
WORKFLOW_ONLY = ("snakemake", "papermill", "matplotlib", "seaborn", "nbformat", "nbconvert", "ipykernel")


def readme_block(heading: str, lang: str, n: int = 0) -> str:
    section = (REPO / "README.md").read_text().split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(rf"```{lang}\n(.*?)```", section, re.S)[n]


def closure(names: list[str]) -> set[str]:
    """The distributions ``names`` need, transitively (environment markers and extras not asked for
    left out), as installed in the test venv."""
    seen, todo = set(), [Requirement(n).name for n in names]
    while todo:
        dist = metadata.distribution(todo.pop())
        name = dist.metadata["Name"].lower().replace("_", "-")
        if name in seen:
            continue
        seen.add(name)
        for req in map(Requirement, dist.requires or []):
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return seen


def link_distributions(names: set[str], into: Path) -> None:
    """Links to every top-level file and folder of the distributions, and their metadata."""
    into.mkdir()
    for name in names:
        dist = metadata.distribution(name)
        root = Path(dist.locate_file(""))
        tops = {Path(f).parts[0] for f in dist.files or [] if not Path(f).parts[0].startswith("..")}
        for top in tops - {"__pycache__"}:
            if (root / top).exists() and not (into / top).exists():
                (into / top).symlink_to(root / top)


@pytest.fixture(scope="module")
def tracker_env(tmp_path_factory) -> Path:
    """A venv with the clone installed by pip and only its declared dependencies importable."""
    work = tmp_path_factory.mktemp("install")
    clone = work / "clone"  # pip builds in the source tree: build from a copy, not the checkout
    shutil.copytree(REPO / "src", clone / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, clone / name)
    env = work / "venv"
    venv.EnvBuilder(with_pip=False).create(env)
    python = env / "bin" / "python"
    site = Path(
        subprocess.check_output(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True
        ).strip()
    )
    link_distributions(closure(PYPROJECT["project"]["dependencies"]), work / "deps")
    (site / "deps.pth").write_text(str(work / "deps") + "\n")
    pip = [
        sys.executable,
        "-m",
        "pip",
        "--python",
        str(python),
        "install",
        "--quiet",
        "--no-deps",
        "--no-build-isolation",
    ]
    subprocess.run([*pip, str(clone)], check=True, capture_output=True, text=True)
    return env


def test_the_dependencies_leave_out_the_workflow():
    assert not closure(PYPROJECT["project"]["dependencies"]) & set(WORKFLOW_ONLY)
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert {"workflow", "docs", "bench", "test"} <= set(extras)
    assert PYPROJECT["project"]["name"] != "staircase"  # that name is another project's on the package index


def test_readme_tracker_example_runs_and_is_audited_without_the_workflow(tracker_env, tmp_path):
    python = tracker_env / "bin" / "python"
    for module in WORKFLOW_ONLY:  # the environment really lacks them
        assert subprocess.run([python, "-c", f"import {module}"], capture_output=True).returncode != 0, module
    info = subprocess.run([python, "-m", "pip", "--version"], capture_output=True)
    assert info.returncode != 0  # no pip either: nothing but the package and its declared dependencies

    example = readme_block("Your own model: the tracker", "python")
    (tmp_path / "example.py").write_text(example)
    res = subprocess.run([python, "example.py"], cwd=tmp_path, capture_output=True, text=True, env=ONE_THREAD)
    assert res.returncode == 0, res.stderr[-3000:]

    command = readme_block("Your own model: the tracker", "bash").splitlines()[0].split("#")[0].split()
    assert command[:3] == ["staircase", "audit", "--runs"]
    staircase = tracker_env / "bin" / "staircase"
    res = subprocess.run([staircase, *command[1:]], cwd=tmp_path, capture_output=True, text=True, env=ONE_THREAD)
    assert res.returncode == 0, res.stderr[-3000:]
    claims = pd.read_csv(tmp_path / command[3] / "audit" / "claims.csv")
    assert set(claims["claim"]) == {"A1", "A2", "A3", "A5"}
    version = subprocess.run(
        [python, "-c", "import staircase, sys; print(staircase.__file__)"], capture_output=True, text=True
    )
    assert str(tracker_env) in version.stdout  # the installed copy ran, not the checkout
