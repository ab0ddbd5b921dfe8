"""Tests for helpers.plotting: periodic-table layout and that every figure renders headless (Agg)."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_hex
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from helpers import plotting


@pytest.fixture(autouse=True)
def _output_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BANDGAP_OUTPUT_DIR", str(tmp_path / "output"))


@pytest.mark.parametrize(
    ("symbol", "position"),
    [
        ("H", (1, 1)),
        ("He", (1, 18)),
        ("Cs", (6, 1)),
        ("Pb", (6, 14)),
        ("I", (5, 17)),
        ("Br", (4, 17)),
        ("Sn", (5, 14)),
        ("La", (9, 3)),
        ("Ce", (9, 4)),
        ("Lu", (9, 17)),
        ("Ac", (10, 3)),
        ("Lr", (10, 17)),
        ("Hf", (6, 4)),
        ("Og", (7, 18)),
    ],
)
def test_ptable_position(symbol: str, position: tuple[int, int]) -> None:
    assert plotting.ptable_position(symbol) == position


def test_ptable_position_rejects_non_elements() -> None:
    with pytest.raises(ValueError, match="not a chemical element"):
        plotting.ptable_position("X")


def _cell(fig: Figure, row: int, col: int) -> Rectangle:
    y = row - 0.5 if row >= 9 else row
    ax = fig.axes[0]
    for patch in ax.patches:
        if isinstance(patch, Rectangle) and patch.get_xy() == pytest.approx((col - 0.5, y - 0.5)):
            return patch
    raise AssertionError(f"no cell at row {row}, column {col}")


def test_ptable_heatmap_colours_cells_and_greys_empty_ones() -> None:
    values = {"Pb": 100.0, "I": 300.0, "Cs": 10.0}
    fig = plotting.ptable_heatmap(values, title="t", cbar_label="entries")
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert len([p for p in ax.patches if isinstance(p, Rectangle)]) == 118
    texts = [t.get_text() for t in ax.texts]
    assert {"Pb", "I", "Cs", "Og", "100", "300", "10"} <= set(texts)
    cmap = matplotlib.colormaps["viridis"]
    assert to_hex(_cell(fig, 6, 14).get_facecolor()) == to_hex(cmap((100 - 10) / (300 - 10)))  # Pb
    assert to_hex(_cell(fig, 5, 17).get_facecolor()) == to_hex(cmap(1.0))  # I: the maximum
    assert to_hex(_cell(fig, 4, 14).get_facecolor()) == plotting.EMPTY_COLOR  # Ge: no value
    assert ax.get_title() == "t" and ax.child_axes[0].get_xlabel() == "entries"  # colour bar
    fig.canvas.draw()  # renders with Agg


def test_ptable_heatmap_log_scale_and_bad_input(tmp_path: Path) -> None:
    fig = plotting.ptable_heatmap(pd.Series({"Pb": 31707, "I": 31785, "Au": 1, "Sn": 0}), log=True)
    assert to_hex(_cell(fig, 5, 14).get_facecolor()) == plotting.EMPTY_COLOR  # Sn = 0 has no log colour
    assert "32k" in [t.get_text() for t in fig.axes[0].texts]
    path = plotting.save_figure(fig, "ptable test")
    assert path == tmp_path / "output" / "figures" / "ptable_test.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="not a chemical element"):
        plotting.ptable_heatmap({"X": 1.0})
    with pytest.raises(ValueError, match="no finite values"):
        plotting.ptable_heatmap({"Pb": float("nan")})


def test_other_figures_render() -> None:
    co = pd.DataFrame([[3, 2, 0], [2, 2, 1], [0, 1, 4]], index=["I", "Cs", "Pb"], columns=["I", "Cs", "Pb"])
    fig = plotting.cooccurrence_heatmap(co, title="co")
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["I", "Cs", "Pb"]
    fig.canvas.draw()
    with pytest.raises(ValueError, match="square"):
        plotting.cooccurrence_heatmap(co.iloc[:2])

    gaps = pd.Series(np.linspace(1.2, 2.4, 50))
    fig = plotting.band_gap_histogram({"entries": gaps, "means": gaps[::5]}, title="h")
    assert fig.axes[0].get_xlabel() == "band gap (eV)"
    fig.canvas.draw()

    clean = pd.DataFrame(
        {
            "formula": ["CH6I3NPb"] * 3 + ["CsI3Pb"] * 2,
            "formula_descriptive": ["MAPbI3", "MAPbI3", "", "CsPbI3", "CsPbI3"],
            "band_gap_eV": [1.5, 1.6, 1.7, 1.7, 2.9],
        }
    )
    fig = plotting.band_gap_boxplot(clean, top=2)
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["MAPbI3 (n=3)", "CsPbI3 (n=2)"]
    fig.canvas.draw()
    assert plotting.save_figure(fig, "box.png").name == "box.png"


def test_efficiency_vs_band_gap_counts_missing_rows() -> None:
    df = pd.DataFrame({"band_gap_eV": [1.6, 1.5, None], "efficiency_pct": [20.1, None, 18.0]})
    fig = plotting.efficiency_vs_band_gap(df, title="t")
    ax = fig.axes[0]
    assert ax.get_xlabel() == "absorber band gap (eV)"
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "devices (n=1; 2 lack a value)" in labels
    assert len(ax.collections[0].get_offsets()) == 1
    # the Shockley-Queisser ceiling is drawn as a curve from helpers.solar, with its maximum marked
    assert "Shockley-Queisser limit (AM1.5G, 300 K)" in labels
    assert any(label.startswith("maximum 33.7 % at 1.3") for label in labels)
    curve = ax.get_lines()[0]
    assert max(curve.get_ydata()) == pytest.approx(33.7, abs=0.1)


class _FakeFormatter:
    def __init__(self) -> None:
        self.registered: dict = {}

    def for_type(self, cls, func) -> None:
        self.registered[cls] = func


class _FakeShell:
    def __init__(self) -> None:
        self.display_formatter = type("DF", (), {"formatters": {"image/png": _FakeFormatter()}})()


def test_enable_inline_display_registers_png_formatter() -> None:
    from matplotlib.figure import Figure

    shell = _FakeShell()
    assert plotting.enable_inline_display(shell) is True
    render = shell.display_formatter.formatters["image/png"].registered[Figure]
    fig = Figure(figsize=(2, 1))
    fig.add_subplot().plot([0, 1], [0, 1])
    assert render(fig)[:8] == b"\x89PNG\r\n\x1a\n"
    assert plotting.enable_inline_display(object()) is False  # not an IPython shell: nothing to do


def test_category_shares_are_per_dataset_percentages() -> None:
    a = pd.Series({"cubic": 3, "hexagonal": 1})
    b = pd.Series({"cubic": 1, "trigonal": 1})
    fig = plotting.category_shares({"A": a, "B": b})
    ax = fig.axes[0]
    heights = [round(p.get_height(), 6) for p in ax.patches]
    assert heights == [75.0, 25.0, 0.0, 50.0, 0.0, 50.0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["cubic", "hexagonal", "trigonal"]
