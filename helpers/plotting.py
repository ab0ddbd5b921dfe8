"""Figures of the course: periodic-table heatmap, co-occurrence heatmap, band-gap distributions.

Every function draws with matplotlib's object API on a new
:class:`matplotlib.figure.Figure` (or on the ``ax`` you pass) and returns the
figure, so it works headless (Agg), never needs ``plt.show()``, and does not
pile up figures in pyplot. In a notebook, end the cell with the figure to
display it: importing this module inside an IPython kernel registers a PNG
formatter for :class:`matplotlib.figure.Figure` (:func:`enable_inline_display`),
so a bare figure shows as a picture in JupyterLab, Binder, nbconvert and nbval
without ``plt.show()`` or ``%matplotlib inline``. :func:`save_figure` writes a
PNG to :func:`helpers.config.figures_dir`.

The periodic table is drawn offline from pymatgen's element data (no
plotly/kaleido): elements sit at (period, group), with the lanthanides
La-Lu and actinides Ac-Lr in two rows below the main table.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Callable, Mapping
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib import colors as mcolors
from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from pymatgen.core import Element

from . import config, solar

#: Colour of cells without a value.
EMPTY_COLOR = "#e6e6e6"
_LANTHANIDES = range(57, 72)  # La..Lu
_ACTINIDES = range(89, 104)  # Ac..Lr


def figure_png(fig: Figure, dpi: int = 100) -> bytes:
    """PNG bytes of ``fig`` (cropped to its content), as shown inline in notebooks."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return buffer.getvalue()


def enable_inline_display(shell=None) -> bool:
    """Make matplotlib Figures display as PNG images in the running IPython kernel.

    Registers :func:`figure_png` as the ``image/png`` formatter of
    :class:`~matplotlib.figure.Figure` in ``shell`` (default: the current
    IPython shell). Called when this module is imported; a no-op (returns
    ``False``) outside IPython. Figures made with ``Figure()`` are not managed by
    pyplot, so nothing piles up; pyplot's own inline backend closes its figures
    after each cell.
    """
    if shell is None:
        try:
            from IPython import get_ipython
        except ImportError:  # pragma: no cover - IPython is part of the environment
            return False
        shell = get_ipython()
    formatters = getattr(getattr(shell, "display_formatter", None), "formatters", None)
    if not formatters or "image/png" not in formatters:
        return False
    formatters["image/png"].for_type(Figure, figure_png)
    return True


enable_inline_display()


def save_figure(fig: Figure, name: str, dpi: int = 150) -> Path:
    """Save ``fig`` as ``<figures_dir>/<name>.png`` and return the path.

    ``name`` may omit ``.png``; characters other than letters, digits, ``-``,
    ``_`` and ``.`` are replaced by ``_``.
    """
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", name.removesuffix(".png")).strip("_") or "figure"
    path = config.figures_dir() / f"{stem}.png"
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return path


def ptable_position(symbol: str) -> tuple[int, int]:
    """``(row, column)`` of an element in the drawn table.

    Rows 1-7 are the periods, columns 1-18 the groups (IUPAC numbering); the
    lanthanides La-Lu are in row 9 and the actinides Ac-Lr in row 10,
    columns 3-17 (row 8 is the gap). E.g. ``Pb`` -> ``(6, 14)``, ``I`` -> ``(5, 17)``,
    ``Ce`` -> ``(9, 4)``.

    Raises:
        ValueError: if ``symbol`` is not a chemical element.
    """
    try:
        el = Element(symbol)
    except (ValueError, KeyError) as exc:
        raise ValueError(f"{symbol!r} is not a chemical element") from exc
    if el.Z in _LANTHANIDES:
        return 9, 3 + el.Z - _LANTHANIDES.start
    if el.Z in _ACTINIDES:
        return 10, 3 + el.Z - _ACTINIDES.start
    return int(el.row), int(el.group)


def _format_value(value: float) -> str:
    if not math.isfinite(value):
        return ""
    if abs(value) >= 10_000:
        return f"{value / 1000:.0f}k"
    if abs(value) >= 1000:
        return f"{value / 1000:.1f}k"
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.3g}"


def _text_color(rgba: tuple[float, float, float, float]) -> str:
    r, g, b = rgba[:3]
    return "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white"


def _new_axes(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    if ax is not None:
        return ax.figure, ax  # type: ignore[return-value]
    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.add_subplot()


def ptable_heatmap(
    values: Mapping[str, float],
    ax: Axes | None = None,
    log: bool = False,
    cmap: str = "viridis",
    title: str | None = None,
    cbar_label: str | None = None,
    fmt: Callable[[float], str] | None = None,
    show_values: bool = True,
) -> Figure:
    """Periodic table coloured by ``values`` (element symbol -> number), drawn offline with matplotlib.

    Every one of the 118 elements gets a cell with its symbol; cells with a
    value are coloured and annotated (``fmt``, default compact: ``27k``,
    ``0.53``), cells without one (missing, NaN, or <= 0 with ``log=True``)
    are grey. Group-3 cells of periods 6 and 7 point to the f-block rows.

    Args:
        values: e.g. a pandas Series indexed by element symbol.
        ax: draw into this axes (its figure is returned); a new figure otherwise.
        log: logarithmic colour scale (for counts spanning decades).
        cmap: matplotlib colormap name.
        title, cbar_label: texts of the axes title and the colour bar.
        fmt: formats a value for the cell annotation.
        show_values: annotate values below the symbols.

    Raises:
        ValueError: if a key is not a chemical element, or no value is usable.
    """
    data: dict[str, float] = {}
    for symbol, value in dict(values).items():
        ptable_position(str(symbol))  # raises for non-elements
        v = float(value) if value is not None else math.nan
        if math.isfinite(v) and (v > 0 or not log):
            data[str(symbol)] = v
    if not data:
        raise ValueError("ptable_heatmap: no finite values to show" + (" (log scale needs values > 0)" if log else ""))
    lo, hi = min(data.values()), max(data.values())
    if log:
        norm: mcolors.Normalize = mcolors.LogNorm(vmin=lo, vmax=hi if hi > lo else lo * 10)
    else:
        norm = mcolors.Normalize(vmin=lo, vmax=hi if hi > lo else lo + 1)
    colormap = matplotlib.colormaps[cmap]
    fmt = fmt or _format_value

    fig, ax = _new_axes(ax, (13, 7.5))
    for z in range(1, 119):
        symbol = Element.from_Z(z).symbol
        row, col = ptable_position(symbol)
        y = row - 0.5 if row >= 9 else row  # small gap before the f-block rows
        has = symbol in data
        face = colormap(norm(data[symbol])) if has else EMPTY_COLOR
        ax.add_patch(Rectangle((col - 0.5, y - 0.5), 0.95, 0.95, facecolor=face, edgecolor="white", lw=0.5))
        tc = _text_color(face) if has else "#9a9a9a"
        ax.text(
            col - 0.025,
            y - (0.12 if has and show_values else 0.0),
            symbol,
            ha="center",
            va="center",
            fontsize=10,
            fontweight="bold" if has else "normal",
            color=tc,
        )
        if has and show_values:
            ax.text(col - 0.025, y + 0.24, fmt(data[symbol]), ha="center", va="center", fontsize=6.5, color=tc)
    for row, label in ((6, "57-71"), (7, "89-103")):
        ax.text(3 - 0.025, row, label, ha="center", va="center", fontsize=6.5, color="#9a9a9a")

    ax.set_xlim(0.4, 18.6)
    ax.set_ylim(10.1, 0.4)
    ax.set_aspect("equal")
    ax.axis("off")
    if title:
        ax.set_title(title)
    # colour bar in the empty space above the transition metals
    cax = ax.inset_axes((3.6, 1.55, 8.8, 0.35), transform=ax.transData)
    cbar = fig.colorbar(ScalarMappable(norm=norm, cmap=colormap), cax=cax, orientation="horizontal")
    if cbar_label:
        cbar.set_label(cbar_label, fontsize=9)
    cbar.ax.tick_params(labelsize=8)
    return fig


def cooccurrence_heatmap(
    matrix: pd.DataFrame,
    ax: Axes | None = None,
    log: bool = True,
    cmap: str = "magma_r",
    title: str | None = None,
    cbar_label: str = "entries containing both",
    annotate: bool | None = None,
) -> Figure:
    """Heatmap of an element x element matrix such as :func:`helpers.elements.co_occurrence`.

    Zeros are shown grey. ``annotate`` writes the numbers in the cells
    (default: when the matrix has at most 15 elements).
    """
    if matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"co-occurrence matrix must be square, got {matrix.shape}")
    n = matrix.shape[0]
    fig, ax = _new_axes(ax, (1.2 + 0.45 * n, 0.8 + 0.45 * n))
    values = matrix.to_numpy(dtype=float)
    masked = np.ma.masked_less_equal(values, 0)
    positive = values[values > 0]
    if log and positive.size:
        norm: mcolors.Normalize = mcolors.LogNorm(vmin=positive.min(), vmax=max(positive.max(), positive.min() * 10))
    else:
        norm = mcolors.Normalize(vmin=0, vmax=max(values.max(), 1))
    colormap = matplotlib.colormaps[cmap].with_extremes(bad=EMPTY_COLOR)
    image = ax.imshow(masked, cmap=colormap, norm=norm)
    ax.set_xticks(range(n), labels=list(matrix.columns), rotation=90)
    ax.set_yticks(range(n), labels=list(matrix.index))
    if annotate if annotate is not None else n <= 15:
        for i in range(n):
            for j in range(n):
                rgba = colormap(norm(values[i, j])) if values[i, j] > 0 else mcolors.to_rgba(EMPTY_COLOR)
                ax.text(
                    j, i, _format_value(values[i, j]), ha="center", va="center", fontsize=7, color=_text_color(rgba)
                )
    fig.colorbar(image, ax=ax, label=cbar_label, shrink=0.8)
    if title:
        ax.set_title(title)
    return fig


def band_gap_histogram(
    gaps: pd.Series | Mapping[str, pd.Series],
    ax: Axes | None = None,
    bins: int | np.ndarray = 60,
    title: str | None = None,
    density: bool = True,
) -> Figure:
    """Histogram(s) of band gaps in eV; pass ``{"label": series, ...}`` to overlay several (same bins)."""
    series = {"band gap": gaps} if isinstance(gaps, pd.Series) else dict(gaps)
    fig, ax = _new_axes(ax, (7, 4))
    all_values = pd.concat([pd.Series(s, dtype=float) for s in series.values()]).dropna()
    edges = np.histogram_bin_edges(all_values, bins=bins) if np.ndim(bins) == 0 else np.asarray(bins)
    for label, s in series.items():
        values = pd.Series(s, dtype=float).dropna()
        ax.hist(values, bins=edges, density=density, alpha=0.55, label=f"{label} (n={len(values)})")
    ax.set_xlabel("band gap (eV)")
    ax.set_ylabel("density (1/eV)" if density else "count")
    ax.legend(frameon=False)
    if title:
        ax.set_title(title)
    return fig


def band_gap_boxplot(
    clean: pd.DataFrame,
    top: int = 12,
    ax: Axes | None = None,
    title: str | None = None,
    label_column: str = "formula_descriptive",
) -> Figure:
    """Box plot of the band gaps (eV) of the ``top`` most-measured formulas: the spread of repeated measurements.

    ``clean`` needs ``formula``, ``band_gap_eV`` and ``label_column`` (the most
    common value of which labels each box; falls back to ``formula``).
    """
    counts = clean["formula"].value_counts()
    order = sorted(counts.index, key=lambda f: (-counts[f], f))[:top]
    groups = [clean.loc[clean["formula"] == f, "band_gap_eV"].to_numpy() for f in order]
    labels = []
    for f in order:
        names = clean.loc[(clean["formula"] == f) & (clean[label_column].astype(str) != ""), label_column]
        name = sorted(names.value_counts().items(), key=lambda kv: (-kv[1], kv[0]))[0][0] if len(names) else f
        labels.append(f"{name} (n={counts[f]})")
    fig, ax = _new_axes(ax, (7, 0.9 + 0.4 * len(order)))
    ax.boxplot(groups, orientation="horizontal", tick_labels=labels, flierprops={"markersize": 3})
    ax.invert_yaxis()
    ax.set_xlabel("band gap (eV)")
    if title:
        ax.set_title(title)
    return fig


def efficiency_vs_band_gap(devices: pd.DataFrame, ax: Axes | None = None, title: str | None = None) -> Figure:
    """Scatter of device efficiency (%) against absorber band gap (eV), under the Shockley-Queisser limit.

    ``devices`` needs ``band_gap_eV`` and ``efficiency_pct`` (rows missing either are
    not drawn; their number is given in the legend). The line is the detailed-balance
    efficiency ceiling under AM1.5G (:func:`helpers.solar.sq_curve`), with its
    maximum marked (:func:`helpers.solar.sq_optimum`).
    """
    both = devices[["band_gap_eV", "efficiency_pct"]].apply(pd.to_numeric, errors="coerce").dropna()
    fig, ax = _new_axes(ax, (6.5, 4.2))
    lo = min(1.0, float(both["band_gap_eV"].min()) - 0.2) if len(both) else 1.0
    hi = max(2.6, float(both["band_gap_eV"].max()) + 0.2) if len(both) else 2.6
    curve = solar.sq_curve(max(0.5, round(lo, 1)), min(3.5, round(hi, 1)), 201)
    gap_opt, eff_opt = solar.sq_optimum()
    ax.plot(
        curve["band_gap_eV"],
        curve["efficiency_pct"],
        color="tab:red",
        lw=1.5,
        label="Shockley-Queisser limit (AM1.5G, 300 K)",
    )
    ax.plot([gap_opt], [eff_opt], "v", color="tab:red", ms=6, label=f"maximum {eff_opt:.1f} % at {gap_opt:.2f} eV")
    ax.scatter(
        both["band_gap_eV"],
        both["efficiency_pct"],
        s=18,
        alpha=0.7,
        label=f"devices (n={len(both)}; {len(devices) - len(both)} lack a value)",
    )
    ax.set_ylim(0, 45)
    ax.set_xlabel("absorber band gap (eV)")
    ax.set_ylabel("power conversion efficiency (%)")
    ax.legend(frameon=False, fontsize=8, loc="upper right")
    if title:
        ax.set_title(title)
    return fig


def category_shares(
    counts: Mapping[str, pd.Series], ax: Axes | None = None, title: str | None = None, xlabel: str = ""
) -> Figure:
    """Side-by-side bars of category shares (%) for several data sets, e.g. crystal systems of two sources.

    Each value of ``counts`` is a Series of counts indexed by category; shares are
    computed per data set so sets of different size compare. Category order is the
    union, in order of first appearance.
    """
    order: list[str] = []
    for s in counts.values():
        order += [c for c in s.index if c not in order]
    fig, ax = _new_axes(ax, (max(6, 0.9 * len(order)), 4))
    width = 0.8 / max(1, len(counts))
    x = np.arange(len(order))
    for i, (label, s) in enumerate(counts.items()):
        share = 100 * s.reindex(order).fillna(0) / max(1, s.sum())
        ax.bar(x + i * width - 0.4 + width / 2, share.to_numpy(), width, label=f"{label} (n={int(s.sum())})")
    ax.set_xticks(x, order, rotation=30, ha="right")
    ax.set_ylabel("share (%)")
    if xlabel:
        ax.set_xlabel(xlabel)
    ax.legend(frameon=False)
    if title:
        ax.set_title(title)
    return fig
