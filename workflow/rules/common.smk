import atexit
import hashlib
import json
import os
import re
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version, validate

from staircase.records.provenance import AlreadyRunning, hold
from staircase.workflow import config as cfgmod
from staircase.workflow import loader, overrides
from staircase.claims import registry as claims_registry

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
        # an override of one experiment must not change another that aliases the same block
        plain = loader.unshared(dict(config), "config")
        config.clear()
        config.update(plain)
        # NaN and infinity first: they pass every minimum and maximum
        cfgmod.check_values(config)
        try:
            validate(config, "../schemas/config.schema.yaml")
        except WorkflowError as err:
            # the jsonschema ValidationError that Snakemake wrapped
            cause = err.__context__
            if not hasattr(cause, "absolute_path"):
                raise
            where, problem = cfgmod.schema_problem(cause)
            raise cfgmod.ConfigError(f"{where or 'config'}: {problem}") from None
        cfgmod.check(config)
    except cfgmod.ConfigError as err:
        where, _, problem = str(err).partition(": ")
        config_error(where, problem)


def apply_set_overrides():
    """--config set=PATH=VALUE (several: --config 'set=[PATH=VALUE, PATH=VALUE]'): nested settings,
    typed, through the grammar of the command line's --set (staircase.workflow.overrides); plain
    --config turns nested values into strings."""
    if "set" not in config:
        return
    try:
        for item in overrides.set_items(config.pop("set")):
            overrides.apply_override(config, item)
    except cfgmod.ConfigError as err:
        where, _, problem = str(err).partition(": ")
        config_error(where, problem)


apply_set_overrides()
validate_config()

EXPERIMENTS = cfgmod.enabled_experiments(config)
# everything this run writes goes under its results root: results/<scale>[-<tag>]
RESULTS = cfgmod.results_root(config)


def res(path):
    """A path under this run's results root."""
    return f"{RESULTS}/{path}"


VARIANTS = {name: cfgmod.variants(config, name) for name in EXPERIMENTS}


def check_results_folders():
    """The workflow writes and deletes inside its results root only: a folder there that is a
    symlink (runs/, checkpoints/, an experiment's or a run's folder) would send its writes or
    deletions elsewhere, or onto another run. One line, before any job."""
    folders = [res("runs"), res("checkpoints"), res("logs")]
    for name in EXPERIMENTS:
        folders += [res(f"runs/{name}"), res(f"checkpoints/{name}")]
        folders += [run_dir(name, v) for v in VARIANTS[name]]
    for folder in folders:
        if os.path.islink(folder):
            config_error(
                folder,
                f"is a symlink (to {os.path.realpath(folder)}); the workflow writes only inside its "
                "results root: replace it with a folder",
            )


def hold_results_lock():
    """One workflow writes into a results root at a time: a lock held by this Snakemake process
    until it exits (the kernel drops it then, even on SIGKILL; --rerun-incomplete never deletes it).
    """
    try:
        hold(res(".staircase.lock"), f"a workflow writing into {RESULTS}")
    except AlreadyRunning as err:
        print(f"error: {err}", file=sys.stderr)
        # before any job; a SystemExit here would be reported as a failed handler
        os._exit(1)


wildcard_constraints:
    experiment="[A-Za-z0-9_-]+",
    variant="[A-Za-z0-9_.-]+",


def run_dir(experiment, variant):
    return res(f"runs/{experiment}/{variant}")


check_results_folders()


def run_files(experiment, name="metrics.parquet"):
    """One file of every variant of an experiment."""
    return [f"{run_dir(experiment, v)}/{name}" for v in VARIANTS[experiment]]


def notebook(name):
    """A notebook of this repository, found also when Snakemake runs in another --directory: a
    path relative to the working directory, so that a checkout moved (or copied) with its
    results is the same set of inputs to Snakemake and re-runs nothing."""
    return os.path.relpath(os.path.join(workflow.basedir, "notebooks", f"{name}.ipynb"))


# Figures and tables. Each stage's rule file registers its own with add_figure / add_table; the
# generic rules in notebooks.smk run the notebook with papermill. A figure writes
# <root>/figures/<name>.{png,pdf}; a table writes <root>/tables/<name>.{csv,png,pdf}. The
# notebook gets `output_stem` (where to write, without suffix), `results_root` (which its paths lie
# under: an executed copy finds them again from <root>/notebooks/) plus the given parameters.
FIGURES = {}
TABLES = {}
# run files the audit reads besides the train rule's (stages with their own training rules add theirs)
AUDIT_INPUTS = []
# Every declared output of every job, which the default target (`all`, in the Snakefile) requires.
# Each stage's file adds the outputs of its rules (job_outputs) right after defining them, so that
# removing any result file makes Snakemake plan the job that writes it, also where nothing
# downstream reads the file (a run's spectra.npz, a figure's PDF).
TARGETS = []


def job_outputs(rule, **wildcards):
    """Every declared output of ``rule`` for each job: ``wildcards`` maps each wildcard to its list
    of values, one entry per job (all lists of equal length)."""
    jobs = [dict(zip(wildcards, values)) for values in zip(*wildcards.values())]
    if not wildcards:
        jobs = [{}]
    return [str(path).format(**job) for job in jobs for path in rule.output]


def _register(registry, kind, name, notebook_name, inputs, caption, parameters):
    if name in FIGURES or name in TABLES:
        raise WorkflowError(f"{kind} {name!r} is registered twice")
    registry[name] = dict(
        notebook=notebook(notebook_name),
        inputs=list(inputs),
        caption=caption,
        parameters=dict(
            parameters, output_stem=res(f"{kind}s/{name}"), results_root=RESULTS
        ),
    )


def add_figure(name, notebook_name, inputs, caption, **parameters):
    _register(FIGURES, "figure", name, notebook_name, inputs, caption, parameters)


def add_table(name, notebook_name, inputs, caption, **parameters):
    _register(TABLES, "table", name, notebook_name, inputs, caption, parameters)


def _one_of(names):
    """A wildcard constraint matching exactly these names (nothing, if there are none)."""
    return "|".join(re.escape(n) for n in names) or "(?!)"


def shared_defaults():
    """experiments.defaults as a one-entry mapping, or nothing when the config has none."""
    experiments = config["experiments"]
    return {"defaults": experiments["defaults"]} if "defaults" in experiments else {}


def calibration_key(settings: str) -> str:
    """16 hex digits of the sha256 of the calibration's settings and of every source file of the
    package (src/staircase/**/*.py, sorted by path): equal settings and code share one store.
    """
    digest = hashlib.sha256(settings.encode())
    src = Path(workflow.basedir) / "src" / "staircase"
    for path in sorted(src.rglob("*.py")):
        digest.update(path.relative_to(src).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def calibration_config():
    """The part of the config the calibration depends on: the schedules of the experiments whose
    claims it calibrates, the analysis settings and alpha."""
    tested = {
        name: config["experiments"][name]
        for name in EXPERIMENTS
        if {"A1", "A2", "A4", "A1-regime"}
        & set(config["experiments"][name].get("claims", []))
    }
    return {
        "scale": config["scale"],
        "analysis": config["analysis"],
        "audit": {
            k: claims_registry.thresholds(config)[k]
            for k in ("alpha", "a1_min_stall_ratio")
        },
        # with experiments.defaults: the calibration resolves their schedules from this alone
        "experiments": {**shared_defaults(), **tested},
    }


def print_audit_summary():
    """The last thing a run prints: how the claims fared and where to look."""
    claims = res("audit/claims.csv")
    if not os.path.exists(claims):
        return
    from staircase.claims import audit
    import pandas as pd

    print(f"\n{audit.summary_line(pd.read_csv(claims))}")
    report_command = " ".join(["snakemake --report report.html", *config_options()])
    print(f"details: {res('audit/claims.md')}; report: {report_command}")


def config_options():
    """The options that chose this run's config (--configfile, --config), to give a later command
    (the report) the same results root."""
    import shlex

    options = []
    for path in workflow.overwrite_configfiles or []:
        relative = os.path.relpath(path)
        options += [
            "--configfile",
            shlex.quote(str(path) if relative.startswith("..") else relative),
        ]
    for key, value in (workflow.config_settings.config or {}).items():
        text = json.dumps(value) if isinstance(value, list | dict) else str(value)
        options += ["--config", shlex.quote(f"{key}={text}")]
    return options


def print_cost_projection():
    """At scale full, before any job: what the run will cost (staircase.workflow.cost: jobs, model-steps,
    CPU time projected from measured throughput), and, as the last lines of a dry run, the training
    jobs' makespan on 2 and 16 cores. Never stops a run."""
    from staircase.workflow import cost

    try:
        cores = workflow.resource_settings.cores
        projection = cost.project(config, notebooks=len(FIGURES) + len(TABLES))
        text = cost.describe(projection, cores if isinstance(cores, int) else None)
        # the last lines of a dry run (after Snakemake's job table): wall time on 2 and 16 cores
        at_end = cost.describe_makespan(projection, (2, 16))
        atexit.register(print, at_end, file=sys.stderr)
    except Exception as err:  # noqa: BLE001 - a projection must not stop the workflow
        text = f"projected cost: not available ({type(err).__name__}: {err})"
    print(text, file=sys.stderr)


def remove_empty_checkpoint_folders():
    """After a successful run, when none of its jobs runs any more: the experiment folders under
    <root>/checkpoints that its training jobs left empty (each job removes its checkpoint, lock and
    own folder when done; a folder above it may still hold another job's while that one runs).
    """
    # never delete inside a folder outside the root
    if os.path.islink(res("checkpoints")):
        return
    for folder, _, _ in os.walk(res("checkpoints"), topdown=False):
        if not os.listdir(folder):
            os.rmdir(folder)


# On a cluster (workflow/profiles/slurm*), these light rules run on the submitting node instead
# of as jobs: they take seconds, far less than a wait in the queue. Only training is submitted.
localrules:
    figure,
    table,
    audit,


# a real run (not a dry run) of the main process, once the DAG is built and before any job
onstart:
    hold_results_lock()
