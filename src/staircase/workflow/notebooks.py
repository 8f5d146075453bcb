"""What went wrong in a failed papermill notebook, in one line (used by the workflow's notebook
rules; see workflow/rules/notebooks.smk).

papermill writes the executed copy cell by cell and, when a cell raises, marks it and stops; the
partially executed copy then holds the outputs up to the failure and the traceback under the
failing cell. ``failure_message`` names that cell as Jupyter numbers it (``In [n]``) with the
error, and says where the copy is.
"""

from __future__ import annotations

import json
from pathlib import Path


def failure_message(notebook: str | Path, log: str | Path | None = None) -> str:
    notebook = Path(notebook)
    where = f" (papermill output in {log})" if log else ""
    try:
        cells = json.loads(notebook.read_text())["cells"]
    except (OSError, ValueError, KeyError):
        return f"notebook failed before any cell ran: no executed copy at {notebook}{where}"
    for cell in cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                error = " ".join(f"{out.get('ename', '')}: {out.get('evalue', '')}".split())
                return (
                    f"notebook failed in cell In [{cell.get('execution_count')}] with {error}; the partially "
                    f"executed copy, with the traceback under that cell, is {notebook}{where}"
                )
    return f"notebook failed; no cell holds an error: see {notebook}{where}"


# ---- paths of a notebook's parameters, wherever it runs ------------------------------------------
# The workflow runs a notebook from the checkout with paths such as results/small/runs/fit1d/base;
# its executed copy sits in <root>/notebooks/, where Jupyter runs it again. A relative path is
# looked up from the working folder and every folder above it, as given and as a path inside the
# results root (``results_root``, a parameter of every notebook), so both places work, and so does
# a results root moved as a whole.
def notebook_path(path: str, results_root: str = "", name: str = "runs") -> str:
    """``path`` found from the working folder (module comment); FileNotFoundError saying what to pass."""
    given = Path(path)
    if given.is_absolute() or given.exists():
        return str(given)
    tails = [given]
    if results_root and given.is_relative_to(results_root):
        tails.append(given.relative_to(results_root))
    for base in [Path.cwd(), *Path.cwd().parents]:
        for tail in tails:
            if (base / tail).exists():
                return str(base / tail)
    raise FileNotFoundError(
        f"parameter {name}: {path} is not under {Path.cwd()} nor any folder above it; run the notebook from the "
        f"checkout that holds {results_root or 'the results'}, or pass the folder: papermill ... -p {name} <path>"
    )


def notebook_paths(value, results_root: str = "", name: str = "runs"):
    """:func:`notebook_path` of a path, a list of paths or a dict of them (the notebooks' ``runs``)."""
    if isinstance(value, dict):
        return {key: notebook_path(v, results_root, name) for key, v in value.items()}
    if isinstance(value, list | tuple):
        return [notebook_path(v, results_root, name) for v in value]
    return notebook_path(value, results_root, name)


def notebook_output(stem: str, results_root: str = "") -> str:
    """Where a notebook writes: ``stem`` whose folder is found as :func:`notebook_path` finds inputs
    (as given when it exists nowhere yet: the notebook creates it)."""
    folder = Path(stem).parent
    try:
        return str(Path(notebook_path(str(folder), results_root, "output_stem")) / Path(stem).name)
    except FileNotFoundError:
        return stem
