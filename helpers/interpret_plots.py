"""Figures of notebook 05 (interpretation): embedding maps, attention heatmaps, occlusion, CrabNet attention.

Like :mod:`helpers.plotting`: matplotlib's object API, each function returns a new
:class:`~matplotlib.figure.Figure` (end a notebook cell with it to display it).
Attention values are shares of the first token's (or an element's) attention, 0-1;
band gaps in eV.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib
import numpy as np
import pandas as pd
from matplotlib import colors as mcolors
from matplotlib.figure import Figure

from .interpret import CategoryAttention


def crystal_system_bars(systems: pd.Series, title: str = "") -> Figure:
    """Bar chart of how many materials each crystal system has (count on the y axis)."""
    counts = systems.value_counts()
    fig = Figure(figsize=(7, 3.6), layout="constrained")
    ax = fig.add_subplot()
    bars = ax.bar(counts.index.astype(str), counts.to_numpy(), color="#4c72b0")
    ax.bar_label(bars, fontsize=8)
    ax.set_xlabel("crystal system")
    ax.set_ylabel("number of materials")
    ax.tick_params(axis="x", rotation=30)
    ax.set_title(title or f"Crystal systems of {int(counts.sum())} materials")
    return fig


def tsne_panels(
    coords: Mapping[str, np.ndarray], band_gap_eV: Sequence[float], systems: Sequence[str], perplexity: float
) -> Figure:
    """t-SNE maps side by side (one column per embedding space): by band gap (top) and crystal system (bottom)."""
    gap = np.asarray(band_gap_eV, dtype=float)
    sys_arr = np.asarray([str(s) for s in systems])
    order = pd.Series(sys_arr).value_counts()
    palette = dict(zip(order.index, [f"C{i}" for i in range(len(order))]))
    names = list(coords)
    fig = Figure(figsize=(5.2 * len(names), 9), layout="constrained")
    axes = fig.subplots(2, len(names), squeeze=False)
    norm = mcolors.Normalize(vmin=0, vmax=float(np.nanmax(gap)))
    for j, name in enumerate(names):
        xy = coords[name]
        ax = axes[0, j]
        sc = ax.scatter(xy[:, 0], xy[:, 1], c=gap, cmap="viridis", norm=norm, s=9, linewidths=0)
        ax.set_title(f"{name}\ncoloured by band gap", fontsize=10)
        ax = axes[1, j]
        for system in order.index:
            sel = sys_arr == system
            ax.scatter(
                xy[sel, 0], xy[sel, 1], s=9, color=palette[system], label=f"{system} ({int(sel.sum())})", linewidths=0
            )
        ax.set_title(f"{name}\ncoloured by crystal system", fontsize=10)
        for ax in axes[:, j]:
            ax.set_xlabel("t-SNE 1 (no unit)")
            ax.set_ylabel("t-SNE 2 (no unit)")
    fig.colorbar(sc, ax=axes[0, :].tolist(), label="band gap (eV)", shrink=0.9)
    axes[1, -1].legend(
        title="crystal system (count)",
        fontsize=7,
        title_fontsize=8,
        loc="center left",
        bbox_to_anchor=(1.01, 0.5),
        frameon=False,
    )
    fig.suptitle(f"t-SNE of {len(gap)} pooled embeddings (perplexity {perplexity:g}, seeded)")
    return fig


def category_heatmaps(
    results: Mapping[str, CategoryAttention],
    layers: Sequence[int] = (0, -1),
    kind: str = "summed",
    difference: tuple[str, str] | None = None,
) -> Figure:
    """Heads x categories heatmaps of first-token attention: one row per model (+ a difference row), one column per layer.

    ``difference=(a, b)`` adds a row ``b - a`` on a diverging colour scale.
    """
    names = list(results)
    rows = names + ([f"{difference[1]} - {difference[0]}"] if difference else [])
    first = results[names[0]]
    n_layers = first.summed.shape[0]
    fig = Figure(figsize=(3.3 + 3.1 * len(layers), 2.0 + 1.9 * len(rows)), layout="constrained")
    axes = fig.subplots(len(rows), len(layers), squeeze=False)
    values = {n: getattr(results[n], kind) for n in names}
    vmax = max(float(np.nanmax(v)) for v in values.values())
    if difference:
        values[rows[-1]] = values[difference[1]] - values[difference[0]]
    dmax = float(np.nanmax(np.abs(values[rows[-1]]))) if difference else 1.0
    for i, row in enumerate(rows):
        is_diff = difference is not None and i == len(rows) - 1
        for j, layer in enumerate(layers):
            arr = values[row][layer]
            ax = axes[i, j]
            im = ax.imshow(
                arr,
                cmap="RdBu_r" if is_diff else "viridis",
                vmin=-dmax if is_diff else 0,
                vmax=dmax if is_diff else vmax,
                aspect="auto",
            )
            for (h, c), v in np.ndenumerate(arr):
                if np.isfinite(v):
                    digits = 2 if (dmax if is_diff else vmax) >= 0.1 else 3
                    ax.text(
                        c,
                        h,
                        f"{v:.{digits}f}",
                        ha="center",
                        va="center",
                        fontsize=7,
                        color="black" if is_diff or v > 0.6 * vmax else "white",
                    )
            ax.set_xticks(range(len(first.categories)), first.categories, rotation=30, ha="right", fontsize=8)
            ax.set_yticks(range(arr.shape[0]), [f"head {h}" for h in range(arr.shape[0])], fontsize=8)
            ax.set_title(f"{row}, layer {layer % n_layers + 1} of {n_layers}", fontsize=9)
        fig.colorbar(
            im,
            ax=axes[i, :].tolist(),
            label=("difference" if is_diff else "attention share") + (" per token" if kind == "per_token" else ""),
            shrink=0.85,
        )
    what = "summed over the category's tokens" if kind == "summed" else "per token of the category"
    fig.suptitle(
        f"Attention from the first token to each feature category ({what}), mean of {first.n_samples} test texts"
    )
    return fig


def token_heatmap(tokens: Sequence[str], rows: np.ndarray, categories: Sequence[str | None], title: str) -> Figure:
    """Layers x tokens heatmap of first-token attention (heads averaged); token labels coloured by feature category."""
    from matplotlib.patches import Patch

    rows = np.asarray(rows)
    n = len(tokens)
    fig = Figure(figsize=(min(18, 2.5 + 0.15 * n), 3.0 + 0.25 * rows.shape[0]), layout="constrained")
    ax = fig.add_subplot()
    im = ax.imshow(rows, aspect="auto", cmap="magma")
    labels = [t.replace("Ġ", "·").replace("##", "") for t in tokens]
    ax.set_xticks(range(n), labels, rotation=90, fontsize=7)
    cats = [c for c in dict.fromkeys(categories) if c is not None]
    colour = {c: f"C{i}" for i, c in enumerate(cats)}
    for tick, c in zip(ax.get_xticklabels(), categories):
        tick.set_color(colour.get(c, "grey"))
    ax.set_yticks(range(rows.shape[0]), [f"layer {i + 1}" for i in range(rows.shape[0])], fontsize=8)
    ax.set_xlabel("token (· = preceded by a space)")
    handles = [Patch(color=colour[c], label=c) for c in cats] + [
        Patch(color="grey", label="special / separator" if cats else "no categories (no spans)")
    ]
    ax.legend(
        handles=handles,
        title="token label colour",
        fontsize=7,
        title_fontsize=7,
        loc="upper left",
        bbox_to_anchor=(1.06, 1.0),
        frameon=False,
    )
    fig.colorbar(im, ax=ax, label="attention share", pad=0.01)
    ax.set_title(title, fontsize=10)
    return fig


def occlusion_vs_attention(table: pd.DataFrame, title: str) -> Figure:
    """Per category: mean |prediction change| when occluded (eV, left) next to attention (share, right)."""
    fig = Figure(figsize=(11, 3.6), layout="constrained")
    ax1, ax2, ax3 = fig.subplots(1, 3)
    cats = list(table.index)
    ax1.bar(cats, table["occlusion |change| (eV)"], color="#c44e52")
    ax1.set_ylabel("mean |prediction change| (eV)")
    ax1.set_title("prediction change when the\ncategory is masked", fontsize=9)
    ax2.bar(cats, table["attention (summed)"], color="#4c72b0")
    ax2.set_ylabel("attention share")
    ax2.set_title("attention from the first token\n(last layer, heads averaged)", fontsize=9)
    ax3.bar(cats, table["attention (per token)"], color="#55a868")
    ax3.set_ylabel("attention share per token")
    ax3.set_title("attention per token of the category\n(last layer, heads averaged)", fontsize=9)
    for ax in (ax1, ax2, ax3):
        ax.tick_params(axis="x", rotation=30)
        ax.set_xlabel("feature category")
    fig.suptitle(title)
    return fig


def element_attention_maps(maps: Sequence[pd.DataFrame], titles: Sequence[str]) -> Figure:
    """Element-to-element attention heatmaps (rows: attending element, columns: attended element)."""
    fig = Figure(figsize=(4.0 * len(maps) + 1, 4.0), layout="constrained")
    axes = fig.subplots(1, len(maps), squeeze=False)[0]
    for ax, m, title in zip(axes, maps, titles):
        im = ax.imshow(m.to_numpy(), cmap="viridis", vmin=0, vmax=1)
        for (r, c), v in np.ndenumerate(m.to_numpy()):
            ax.text(c, r, f"{v:.2f}", ha="center", va="center", fontsize=8, color="white" if v < 0.6 else "black")
        ax.set_xticks(range(m.shape[1]), m.columns)
        ax.set_yticks(range(m.shape[0]), m.index)
        ax.set_xlabel("attended element (key)")
        ax.set_ylabel("attending element (query)")
        ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=list(axes), label="attention share (row sums to 1)", shrink=0.85)
    return fig


def received_bars(received: pd.DataFrame, min_count: int, title: str) -> Figure:
    """Mean attention share each element receives (over the formulas it is in), with its formula count."""
    fig = Figure(figsize=(max(6, 0.42 * len(received) + 2), 3.8), layout="constrained")
    ax = fig.add_subplot()
    ax.bar(received.index, received["received"], yerr=received["sem"], color="#4c72b0", capsize=2)
    ax.bar(
        received.index,
        received["fair share"],
        fill=False,
        edgecolor="black",
        linewidth=0.8,
        label="1 / number of elements (uniform attention)",
    )
    ax.set_ylabel("mean attention share received")
    ax.set_xlabel(f"element (in at least {min_count} formulas; error bar = standard error)")
    ax.legend(frameon=False, fontsize=8)
    ax.set_title(title, fontsize=10)
    return fig


def element_embedding_map(
    xy: np.ndarray, symbols: Sequence[str], groups: Sequence[int | None], seen: Sequence[bool], title: str
) -> Figure:
    """2-D map of element embeddings, coloured by periodic-table group (f-block grey); seen elements labelled in bold."""
    fig = Figure(figsize=(8.5, 6.5), layout="constrained")
    ax = fig.add_subplot()
    g = np.array([np.nan if x is None else x for x in groups], dtype=float)
    f_block = np.isnan(g)
    ax.scatter(xy[f_block, 0], xy[f_block, 1], facecolors="none", edgecolors="grey", s=30, label="f-block (no group)")
    cmap = matplotlib.colormaps["turbo"].resampled(18)
    sc = ax.scatter(
        xy[~f_block, 0],
        xy[~f_block, 1],
        c=g[~f_block],
        cmap=cmap,
        vmin=0.5,
        vmax=18.5,
        s=40,
        edgecolors="black",
        linewidths=0.3,
    )
    for (x, y), s, is_seen in zip(xy, symbols, seen):
        ax.annotate(
            s,
            (x, y),
            fontsize=7 if not is_seen else 8,
            fontweight="bold" if is_seen else "normal",
            xytext=(2, 2),
            textcoords="offset points",
        )
    fig.colorbar(sc, ax=ax, label="periodic-table group", ticks=range(1, 19))
    ax.set_xlabel("component 1 (no unit)")
    ax.set_ylabel("component 2 (no unit)")
    ax.legend(frameon=False, fontsize=8, loc="best")
    ax.set_title(title, fontsize=10)
    return fig
