"""staircase.figures: the notebooks' shared plotting (save, bands over seeds, tables)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from staircase import figures  # noqa: E402


def test_save_writes_png_and_pdf(tmp_path):
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    stem = tmp_path / "sub" / "figure"
    figures.setup(str(stem))  # makes the folder
    figures.save(fig, str(stem))
    figures.save(fig, str(tmp_path / "plain"), dpi=120, tight=False)
    plt.close(fig)
    for name in ("sub/figure", "plain"):
        assert (tmp_path / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
        assert (tmp_path / f"{name}.pdf").read_bytes()[:4] == b"%PDF"


def test_band_is_median_and_range_over_finite_seeds():
    frame = pd.DataFrame(
        {
            "seed": [0, 1, 2, 0, 1, 2],
            "step": [0, 0, 0, 10, 10, 10],
            "r": [1.0, 2.0, 6.0, 3.0, np.nan, np.inf],  # a diverged seed leaves the band
        }
    )
    fig, ax = plt.subplots()
    band = figures.band(ax, frame, "r", steps=True, shift=1, label="median")
    assert band["step"].tolist() == [0, 10]
    assert band["median"].tolist() == [2.0, 3.0]
    assert band["lo"].tolist() == [1.0, 3.0] and band["hi"].tolist() == [6.0, 3.0]
    assert band["n"].tolist() == [3, 1]
    (line,) = ax.get_lines()
    assert line.get_xdata().tolist() == [1, 11] and line.get_drawstyle() == "steps-post"
    assert line.get_label() == "median"
    plt.close(fig)


def test_title_with_note_is_red_only_with_a_note():
    fig, ax = plt.subplots()
    figures.title_with_note(ax, "fit1d / base", "seed 1 diverged at step 30", fontsize=8)
    title = ax.title if ax.title.get_text() else ax._left_title
    assert title.get_text() == "fit1d / base\n⚠ seed 1 diverged at step 30" and title.get_color() == "C3"
    figures.title_with_note(ax, "fit1d / base", "")
    assert ax._left_title.get_text() == "fit1d / base" and ax._left_title.get_color() == "k"
    plt.close(fig)


def test_number_blanks_what_is_not_finite():
    fmt = figures.number("{:.2g}")
    assert [fmt(v) for v in (0.012345, np.nan, np.inf)] == ["0.012", "", ""]


def test_table_figure_and_palette():
    fig, ax, table = figures.table_figure([["a", "1"], ["b", "2"]], ["name", "value"], figsize=(3, 1))
    assert table.get_celld()[(0, 0)].get_text().get_text() == "name"
    assert table.get_celld()[(2, 1)].get_text().get_text() == "2"
    plt.close(fig)
    assert list(figures.layer_palette([2, 0, 1, 0])) == [0, 1, 2]
