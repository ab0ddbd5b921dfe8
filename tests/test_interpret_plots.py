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
    tokens, cats = ["<s>", "Ġa", "b", "c", "</s>"], [None, "a", "b", "b", None]
    fig = ipl.top_tokens({"x": (tokens, np.array([0.0, 0.3, -0.5, 0.1, 0.05]), cats)}, k=3)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels == ["c (#3)", "·a (#1)", "b (#2)"]  # largest |score| on top, position shown
    table = pd.DataFrame({"substitution (eV)": [0.1, 0.2], "attention": [0.3, 0.1]}, index=["a", "b"])
    fig = ipl.method_bars(table, "t")
    assert [ax.get_title() for ax in fig.axes] == ["substitution (eV)", "attention"]


def test_crabnet_figures():
    m = pd.DataFrame([[0.7, 0.3], [0.4, 0.6]], index=["Cs", "I"], columns=["Cs", "I"])
    fig = ipl.element_attention_maps([m, m], ["a", "b"])
    assert "attended element (key)" in _labels(fig)[0]
    rec = pd.DataFrame(
        {"received": [0.5, 0.3], "sem": [0.01, 0.02], "fair share": [0.33, 0.33], "n_formulas": [9, 9]},
        index=["Pb", "I"],
    )
    ipl.received_bars(rec, 5, "t")
    xy = np.array([[0.0, 0.0], [0.01, 0.0], [1.0, 1.0], [0.02, 0.01]])
    fig = ipl.element_embedding_map(xy, ["K", "Pb", "La", "I"], [True, True, False, True], "t")
    texts = [t for t in fig.axes[0].texts]
    assert sorted(t.get_text() for t in texts) == ["I", "K", "Pb"]  # unseen La unlabelled
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert {"alkali metals", "halogens", "post-transition metals", "lanthanides / actinides"} <= set(legend)


def test_labels_do_not_overlap():
    rng = np.random.default_rng(0)
    xy = rng.normal(0, 1, (40, 2))
    w, h = 0.3, 0.15
    c = ipl.place_labels(xy, (w, h), step=0.05)
    for i in range(len(c)):
        for j in range(i):
            assert abs(c[i, 0] - c[j, 0]) >= w - 1e-9 or abs(c[i, 1] - c[j, 1]) >= h - 1e-9


def test_seed_rankings():
    scores = {"m": {"s1": {"a": 0.3, "b": 0.1}, "s2": {"a": 0.1, "b": 0.3}}}
    fig = ipl.seed_rankings(scores, ["a", "b"], "t")
    lines = fig.axes[0].get_lines()
    assert len(lines) == 2
    assert np.round(lines[0].get_ydata()).tolist() == [1, 2] and np.round(lines[1].get_ydata()).tolist() == [2, 1]
