"""Figures of notebook 05 draw with labelled axes on synthetic inputs."""

from __future__ import annotations

import numpy as np
import pandas as pd

from helpers import interpret as ip
from helpers import interpret_plots as ipl


def _labels(fig):
    return [ax.get_xlabel() + "|" + ax.get_ylabel() for ax in fig.axes]


def test_embedding_figures():
    rng = np.random.default_rng(0)
    systems = pd.Series(["cubic"] * 5 + ["hexagonal"] * 3)
    fig = ipl.crystal_system_bars(systems)
    assert "number of materials" in _labels(fig)[0]
    xy = rng.standard_normal((8, 2))
    fig = ipl.tsne_panels({"pre-trained": xy, "fine-tuned": xy}, rng.uniform(0, 3, 8), systems, perplexity=3)
    assert any("band gap (eV)" in lab for lab in _labels(fig))  # the colour bar
    legend = fig.axes[3].get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["cubic (5)", "hexagonal (3)"]


def test_attention_figures():
    rows = [np.full((2, 2, 4), 0.25)]
    res = ip.category_attention(rows, [[None, "a", "b", None]], ["a", "b"])
    fig = ipl.category_heatmaps({"pre": res, "fine": res}, difference=("pre", "fine"))
    assert len([ax for ax in fig.axes if ax.get_title()]) == 6  # 3 rows x 2 layers
    fig = ipl.token_heatmap(["<s>", "Ġa", "b", "</s>"], rows[0].mean(axis=1), [None, "a", "b", None], "t")
    assert "token" in fig.axes[0].get_xlabel()
    table = pd.DataFrame(
        {"occlusion |change| (eV)": [0.1, 0.2], "attention (summed)": [0.3, 0.1], "attention (per token)": [0.1, 0.1]},
        index=["a", "b"],
    )
    fig = ipl.occlusion_vs_attention(table, "t")
    assert "(eV)" in fig.axes[0].get_ylabel()


def test_crabnet_figures():
    m = pd.DataFrame([[0.7, 0.3], [0.4, 0.6]], index=["Cs", "I"], columns=["Cs", "I"])
    fig = ipl.element_attention_maps([m, m], ["a", "b"])
    assert "attended element (key)" in _labels(fig)[0]
    rec = pd.DataFrame(
        {"received": [0.5, 0.3], "sem": [0.01, 0.02], "fair share": [0.33, 0.33], "n_formulas": [9, 9]},
        index=["Pb", "I"],
    )
    ipl.received_bars(rec, 5, "t")
    fig = ipl.element_embedding_map(np.zeros((3, 2)), ["H", "La", "Pb"], [1, None, 14], [True, False, True], "t")
    assert "periodic-table group" in [ax.get_ylabel() for ax in fig.axes]
