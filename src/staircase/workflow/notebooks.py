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
