"""The plotting the analysis notebooks (notebooks/*.ipynb) share: one theme, one way to save a
figure, medians over seeds with their spread, and tables drawn as figures.

The notebooks compute nothing the audit decides: their numbers come from :mod:`staircase.claims`
(the audit's own functions) and :mod:`staircase.records.runs`; this module only draws them.
Nothing but the notebooks imports it (the layer contract in pyproject.toml).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from staircase.records import runs as rs

DPI = 150  # PNG resolution of every figure and table


def setup(output_stem: str, style: str | None = "whitegrid") -> None:
    """Seaborn's ``style`` at paper scale (None: matplotlib's defaults), and the output folder."""
    if style:
        sns.set_theme(style=style, context="paper")
    Path(output_stem).parent.mkdir(parents=True, exist_ok=True)


def save(fig, stem: str, dpi: int = DPI, tight: bool = True) -> None:
    """``<stem>.png`` and ``<stem>.pdf``; ``tight``: cropped to what is drawn (bbox_inches="tight")."""
    bbox = "tight" if tight else None
    fig.savefig(f"{stem}.png", dpi=dpi, bbox_inches=bbox)
    fig.savefig(f"{stem}.pdf", bbox_inches=bbox)


def band(
    ax,
    metrics: pd.DataFrame,
    column: str,
    colour="C0",
    *,
    line=None,
    steps: bool = False,
    alpha: float = 0.2,
    lw: float = 1.5,
    ls: str = "-",
    label: str | None = None,
    shift: float = 0,
) -> pd.DataFrame:
    """Per step, the median over seeds of ``column`` as a line (colour ``line``, else ``colour``)
    over its min-max band (:func:`staircase.records.runs.spread`: finite values only); ``steps``
    draws an integer series as a staircase, ``shift`` moves the x axis (step + 1 on a log axis).
    Returns the band."""
    spread = rs.spread(metrics, column)
    x = spread["step"] + shift
    ax.fill_between(x, spread["lo"], spread["hi"], step="post" if steps else None, alpha=alpha, color=colour, lw=0)
    drawstyle = "steps-post" if steps else "default"
    ax.plot(x, spread["median"], color=line or colour, lw=lw, ls=ls, drawstyle=drawstyle, label=label)
    return spread


def title_with_note(ax, text: str, note: str | None, **kwargs) -> None:
    """A panel's title, and a run's status note (e.g. a diverged seed) below it in red when there is one."""
    ax.set_title(text + (f"\n⚠ {note}" if note else ""), loc="left", color="C3" if note else "k", **kwargs)


def layer_palette(layers: Iterable) -> dict:
    """One viridis colour per layer, in layer order."""
    layers = sorted(set(layers))
    return dict(zip(layers, sns.color_palette("viridis", len(layers))))


def evidence_scatter(ax, frame: pd.DataFrame, x: str, y: str, colour, evidence: pd.Series, s: float = 14) -> None:
    """Points that are evidence filled, the others open."""
    ax.scatter(frame.loc[evidence, x], frame.loc[evidence, y], color=colour, s=s)
    ax.scatter(frame.loc[~evidence, x], frame.loc[~evidence, y], facecolors="none", edgecolors=colour, s=s)


def number(fmt: str):
    """A formatter for table cells: ``fmt`` for a finite number, blank otherwise."""
    return lambda v: "" if not np.isfinite(v) else fmt.format(v)


def table_figure(
    cells, columns: Sequence[str], figsize, fontsize: float = 7, cell_loc: str = "center", cell_colours=None
):
    """A table drawn on an empty figure, columns as wide as their text: (figure, axes, table)."""
    fig, ax = plt.subplots(figsize=figsize)
    ax.axis("off")
    table = ax.table(cellText=cells, colLabels=list(columns), cellColours=cell_colours, loc="center", cellLoc=cell_loc)
    table.auto_set_font_size(False)
    table.set_fontsize(fontsize)
    table.auto_set_column_width(list(range(len(columns))))
    return fig, ax, table
