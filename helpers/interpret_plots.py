"""Figures of notebook 05 (interpretation): embedding maps, attention heatmaps, occlusion, CrabNet attention.

Like :mod:`helpers.plotting`: matplotlib's object API, each function returns a new
:class:`~matplotlib.figure.Figure` (end a notebook cell with it to display it).
Attention values are shares of the pooled tokens' (or an element's) attention, 0-1;
band gaps in eV.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

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
    fig.suptitle(f"Attention of the pooled tokens to each feature category ({what}), mean of {first.n_samples} texts")
    return fig


def _label(token: str) -> str:
    return token.replace("Ġ", "·").replace("##", "")


def top_tokens(panels: Mapping[str, tuple[Sequence[str], np.ndarray, Sequence[str | None]]], k: int = 10) -> Figure:
    """Horizontal bars of the ``k`` tokens with the largest |score| per panel, labelled ``token (#position)``.

    ``panels``: title -> ``(tokens, scores, categories)``; bars coloured by the token's feature category
    (grey: special token or separator); a negative score (an attribution) is drawn to the left.
    """
    from matplotlib.patches import Patch

    names = list(panels)
    ncols = 2 if len(names) > 1 else 1
    nrows = -(-len(names) // ncols)
    fig = Figure(figsize=(10, 0.28 * k * nrows + 1.2 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    cats = list(dict.fromkeys(c for _t, _s, cs in panels.values() for c in cs if c is not None))
    colour = {c: f"C{i}" for i, c in enumerate(cats)}
    for ax, name in zip(axes, names):
        tokens, scores, categories = panels[name]
        scores = np.asarray(scores, dtype=float)
        top = np.argsort(-np.abs(scores), kind="stable")[:k][::-1]
        ax.barh(range(len(top)), scores[top], color=[colour.get(categories[i], "grey") for i in top])
        ax.set_yticks(range(len(top)), [f"{_label(tokens[i])} (#{i})" for i in top], fontsize=8)
        ax.axvline(0, color="black", linewidth=0.6)
        ax.set_title(name, fontsize=9)
    for ax in axes[len(names) :]:
        ax.set_visible(False)
    handles = [Patch(color=colour[c], label=c) for c in cats] + [
        Patch(color="grey", label="special / separator" if cats else "no categories (a text without character spans)")
    ]
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize=8, frameon=False)
    return fig


def method_bars(table: pd.DataFrame, title: str) -> Figure:
    """One panel per method (column of ``table``): its score per feature category (rows), the top one dark."""
    fig = Figure(figsize=(2.3 * table.shape[1] + 0.5, 3.4), layout="constrained")
    axes = fig.subplots(1, table.shape[1], squeeze=False)[0]
    for ax, col in zip(axes, table.columns):
        values = table[col].to_numpy(dtype=float)
        top = int(np.nanargmax(values))
        ax.bar(table.index, values, color=["#1f4e79" if i == top else "#9ecae1" for i in range(len(values))])
        ax.set_title(col, fontsize=8)
        ax.tick_params(axis="x", rotation=45, labelsize=8)
        ax.tick_params(axis="y", labelsize=8)
    fig.suptitle(title, fontsize=10)
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


#: Qualitative colour per element family (periodic-table blocks a chemist names), for the element map.
FAMILIES: dict[str, str] = {
    "alkali metals": "#e41a1c",
    "alkaline-earth metals": "#ff7f00",
    "transition metals": "#377eb8",
    "lanthanides / actinides": "#a65628",
    "post-transition metals": "#4daf4a",
    "metalloids": "#984ea3",
    "non-metals": "#999999",
    "halogens": "#f781bf",
    "noble gases": "#17becf",
}


def element_family(symbol: str) -> str:
    """The :data:`FAMILIES` name of an element (pymatgen's classification)."""
    from pymatgen.core import Element

    el = Element(symbol)
    checks = (
        (el.is_alkali, "alkali metals"),
        (el.is_alkaline, "alkaline-earth metals"),
        (el.is_lanthanoid or el.is_actinoid, "lanthanides / actinides"),
        (el.is_transition_metal, "transition metals"),
        (el.is_halogen, "halogens"),
        (el.is_noble_gas, "noble gases"),
        (el.is_metalloid, "metalloids"),
        (el.is_post_transition_metal, "post-transition metals"),
    )
    return next((name for hit, name in checks if hit), "non-metals")


def place_labels(xy: np.ndarray, size: tuple[float, float], step: float) -> np.ndarray:
    """Greedy non-overlapping label positions: each label (``size`` = width, height, data units) goes to the
    first of rings of candidate offsets around its point (``step`` apart) that overlaps no earlier label or
    point. Returns the label centres, shape ``(n, 2)``."""
    w, h = size
    placed: list[tuple[float, float]] = []
    out = np.zeros_like(np.asarray(xy, dtype=float))
    dirs = [(1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (-1, 1), (1, -1), (-1, -1)]
    for i, (x, y) in enumerate(np.asarray(xy, dtype=float)):
        best = None
        for ring in range(1, 12):
            for dx, dy in dirs:
                cx, cy = x + dx * (w / 2 + ring * step * 0.5), y + dy * (h / 2 + ring * step * 0.5)
                if all(abs(cx - px) >= w or abs(cy - py) >= h for px, py in placed) and not np.any(
                    (np.abs(xy[:, 0] - cx) < w / 2) & (np.abs(xy[:, 1] - cy) < h / 2)
                ):
                    best = (cx, cy)
                    break
            if best:
                break
        best = best or (x + w / 2 + step, y)
        placed.append(best)
        out[i] = best
    return out


def element_embedding_map(xy: np.ndarray, symbols: Sequence[str], seen: Sequence[bool], title: str) -> Figure:
    """2-D map of element embeddings coloured by family (:data:`FAMILIES`, qualitative); only elements seen
    in training (``seen``) are labelled, at non-overlapping positions (:func:`place_labels`) with a leader line;
    unseen elements are small open circles."""
    from matplotlib.lines import Line2D

    xy = np.asarray(xy, dtype=float)
    seen = np.asarray(seen, dtype=bool)
    fam = [element_family(s) for s in symbols]
    fig = Figure(figsize=(9, 7), layout="constrained")
    ax = fig.add_subplot()
    for name, colour in FAMILIES.items():
        sel = np.asarray([f == name for f in fam])
        ax.scatter(xy[sel & ~seen, 0], xy[sel & ~seen, 1], s=18, facecolors="none", edgecolors=colour, linewidths=0.8)
        ax.scatter(xy[sel & seen, 0], xy[sel & seen, 1], s=46, color=colour, edgecolors="black", linewidths=0.4)
    span = xy.max(axis=0) - xy.min(axis=0)
    size = (0.045 * span[0], 0.035 * span[1])
    idx = np.flatnonzero(seen)
    centres = place_labels(xy[idx], size, step=0.01 * float(span.mean()))
    for i, (cx, cy) in zip(idx, centres):
        ax.annotate(symbols[i], xy[i], xytext=(cx, cy), fontsize=8, fontweight="bold", ha="center", va="center",
                    arrowprops={"arrowstyle": "-", "color": "0.6", "linewidth": 0.5})  # fmt: skip
    present = [n for n in FAMILIES if n in fam]
    handles = [Line2D([], [], marker="o", linestyle="", color=FAMILIES[n], label=n) for n in present] + [
        Line2D(
            [],
            [],
            marker="o",
            linestyle="",
            markerfacecolor="none",
            color="black",
            label="not in training (unlabelled)",
        )
    ]
    ax.legend(handles=handles, fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.set_xlabel("component 1 (no unit)")
    ax.set_ylabel("component 2 (no unit)")
    ax.set_title(title, fontsize=10)
    return fig


def seed_rankings(
    scores: Mapping[str, Mapping[str, Mapping[str, float]]], categories: Sequence[str], title: str
) -> Figure:
    """One panel per method: the rank (1 = top) of each category in each fine-tune (one line per seed).

    ``scores``: method -> seed -> category -> score (larger = more important); lines are offset a little so
    that identical rankings stay visible.
    """
    methods = list(scores)
    fig = Figure(figsize=(2.4 * len(methods) + 0.6, 3.4), layout="constrained")
    axes = fig.subplots(1, len(methods), sharey=True, squeeze=False)[0]
    for ax, m in zip(axes, methods):
        seeds = list(scores[m])
        for k, s in enumerate(seeds):
            order = sorted(categories, key=lambda c: -scores[m][s][c])
            ranks = [order.index(c) + 1 + 0.06 * (k - (len(seeds) - 1) / 2) for c in categories]
            ax.plot(range(len(categories)), ranks, marker="o", label=s, color=f"C{k}", linewidth=1)
        ax.set_xticks(range(len(categories)), categories, rotation=45, fontsize=8)
        ax.set_title(m, fontsize=8)
    axes[0].set_yticks(range(1, len(categories) + 1))
    axes[0].set_ylim(len(categories) + 0.5, 0.5)
    axes[0].set_ylabel("rank (1 = most important)")
    axes[-1].legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.suptitle(title, fontsize=10)
    return fig
