import json
import os
import sys

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version, validate

from staircase import config as cfgmod

min_version("9.0")


# Jobs find `python`, `papermill` and `jupyter` next to the Python running Snakemake, so
# `.venv/bin/snakemake` works without activating the venv (with --sdm conda, the rule's env comes
# first), and import the package from this checkout's src/ whatever environment runs them.
def _prepend(variable, path):
    return os.pathsep.join(filter(None, [path, os.environ.get(variable)]))


os.environ.update(
    PATH=_prepend("PATH", os.path.dirname(sys.executable)),
    PYTHONPATH=_prepend("PYTHONPATH", os.path.join(workflow.basedir, "src")),
)
ENV = "../../envs/staircase.yaml"


def config_error(where, problem):
    """Stop before any job runs, with one line naming the key (no traceback: it is the
    user's input that is wrong, not the workflow)."""
    print(f"config error: {where}: {problem}", file=sys.stderr)
    sys.exit(1)


def validate_config():
    try:
        validate(config, "../schemas/config.schema.yaml")
    except WorkflowError as err:
        cause = err.__context__  # the jsonschema ValidationError that Snakemake wrapped
        if not hasattr(cause, "absolute_path"):
            raise
        where = ".".join(str(p) for p in cause.absolute_path) or "config"
        config_error(where, cause.message)
    try:
        cfgmod.check(config)
    except cfgmod.ConfigError as err:
        where, _, problem = str(err).partition(": ")
        config_error(where, problem)


validate_config()

EXPERIMENTS = cfgmod.enabled_experiments(config)
VARIANTS = {name: cfgmod.variants(config, name) for name in EXPERIMENTS}


wildcard_constraints:
    experiment="[A-Za-z0-9_-]+",
    variant="[A-Za-z0-9_.-]+",


def run_dir(experiment, variant):
    return f"results/runs/{experiment}/{variant}"


def run_files(experiment, name="metrics.parquet"):
    """One file of every variant of an experiment."""
    return [f"{run_dir(experiment, v)}/{name}" for v in VARIANTS[experiment]]


def notebook(name):
    """A notebook of this repository, found also when Snakemake runs in another --directory."""
    return os.path.join(workflow.basedir, "notebooks", f"{name}.ipynb")


def all_targets():
    targets = []
    for experiment in EXPERIMENTS:
        targets += [
            f"results/figures/staircase_{experiment}.png",
            f"results/notebooks/staircase_{experiment}.html",
        ]
    return targets


# On a cluster (workflow/profiles/slurm*), these light rules run on the submitting node instead
# of as jobs: they take seconds, far less than a wait in the queue. Add new notebook rules here.
localrules:
    staircase_figure,
    notebook_html,
