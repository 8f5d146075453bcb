"""One notebook job of the workflow in one process: papermill executes the notebook, the executed
copy is kept, and nbconvert writes its static HTML copy (workflow/rules/notebooks.smk).

    python -m staircase.workflow.notebook_job NOTEBOOK EXECUTED OUTPUT HTML_FOLDER \
        --parameters YAML --log LOG

papermill writes the executed notebook to EXECUTED (the log folder) cell by cell, so a failed job
leaves the partial copy there; its own messages go to LOG. On success the copy goes to OUTPUT and
the HTML copy into HTML_FOLDER. On failure one line on stderr names the failing cell
(:func:`staircase.workflow.notebooks.failure_message`) and the exit status is 1.

Why one process: the rule ran the ``papermill`` command, then ``jupyter nbconvert`` as a second
command; each Python process started and imported nbformat, Jupyter's machinery and (nbconvert) its
templates afresh, ~3 s of CPU per notebook job for the second one alone (PERFORMANCE.md).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import shutil
import sys
from pathlib import Path

import yaml

from staircase.workflow.notebooks import failure_message


def execute(notebook: str, executed: str, parameters: dict, log) -> None:
    """papermill's ``execute_notebook`` as its command line runs it (kernel python3, the current
    folder as the kernel's), its messages into the open file ``log``."""
    import papermill

    handler = logging.StreamHandler(log)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("papermill")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
            papermill.execute_notebook(
                notebook, executed, parameters=parameters, kernel_name="python3", cwd=".", progress_bar=False
            )
    finally:
        logger.removeHandler(handler)


def export_html(notebook: str, folder: str) -> Path:
    """The static HTML copy of an executed notebook, as ``jupyter nbconvert --to html`` writes it."""
    import nbformat
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_notebook_node(nbformat.read(notebook, as_version=4))
    out = Path(folder) / f"{Path(notebook).stem}.html"
    out.write_text(body, encoding="utf-8")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m staircase.workflow.notebook_job", description=__doc__.split("\n\n")[0])
    ap.add_argument("notebook", help="the notebook to run (notebooks/*.ipynb)")
    ap.add_argument("executed", help="where papermill writes the executed copy, cell by cell (the log folder)")
    ap.add_argument("output", help="the executed copy, once every cell ran")
    ap.add_argument("html_folder", help="the folder of the static HTML copy")
    ap.add_argument("--parameters", default="{}", help="the notebook's parameters, YAML (as papermill's -y)")
    ap.add_argument("--log", required=True, help="papermill's messages")
    args = ap.parse_args(argv)
    parameters = yaml.safe_load(args.parameters) or {}
    with open(args.log, "w") as log:
        try:
            execute(args.notebook, args.executed, parameters, log)
        except Exception as err:  # papermill's PapermillExecutionError, or the kernel died
            print(f"{type(err).__name__}: {err}", file=log)
            print(failure_message(args.executed, args.log), file=sys.stderr)
            return 1
    shutil.copyfile(args.executed, args.output)
    export_html(args.output, args.html_folder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
