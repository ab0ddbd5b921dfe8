"""CrabNet element attention hook and element embeddings, on a tiny real CrabNet."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from _crab_fixtures import TINY, tiny_model

from helpers.crabnet import attention as ca


@pytest.fixture(scope="module")
def model():
    return tiny_model()


FORMULAS = ["CsPbI3", "CH6NPbI3", "CsPbI1.5Br1.5", "CH5N2SnBr3"]


def test_shapes_rows_and_padding(model):
    att = ca.element_attention(model, FORMULAS, threads=1)
    assert att.n_layers == TINY.N and att.n_heads == TINY.heads
    for layer in att.layers:
        assert layer.shape == (len(FORMULAS), TINY.heads, model.max_elements, model.max_elements)
    assert [len(e) for e in att.elements] == [3, 5, 4, 5]
    # CH6NPbI3: slots ordered by fraction, largest first (H6 of 12 atoms)
    assert att.elements[1][0] == "H"
    assert np.allclose(att.fractions[1].sum(), 1.0)
    for i, elements in enumerate(att.elements):
        n = len(elements)
        a = att.layers[-1][i]
        np.testing.assert_allclose(a[:, :n, :n].sum(axis=-1), 1.0, atol=1e-5)  # rows sum to 1
        assert np.all(a[:, n:, :] == 0) and np.all(a[:, :, n:] == 0)  # padding masked
        assert np.all(a >= 0)
    m = att.matrix(0)
    assert list(m.index) == att.elements[0] and np.allclose(m.to_numpy().sum(axis=1), 1.0, atol=1e-5)


def test_hooks_leave_predictions_unchanged(model):
    before = model.predict(FORMULAS, threads=1)["prediction_eV"].to_numpy()
    att = ca.element_attention(model, FORMULAS, threads=1)
    np.testing.assert_allclose(att.predictions_eV, before, rtol=1e-5, atol=1e-5)
    after = model.predict(FORMULAS, threads=1)["prediction_eV"].to_numpy()
    np.testing.assert_array_equal(before, after)
    for layer in model.crab.model.encoder.transformer_encoder.layers:  # hooks removed
        assert not layer.self_attn._forward_hooks and not layer.self_attn._forward_pre_hooks


def test_received_shares_sum_to_one(model):
    att = ca.element_attention(model, FORMULAS, threads=1)
    got = att.received()
    assert set(got.columns) >= {"formula", "element", "fraction", "received"}
    np.testing.assert_allclose(got.groupby("formula")["received"].sum().to_numpy(), 1.0, atol=1e-5)


def test_recording_refuses_non_crabnet():
    import torch

    with pytest.raises(TypeError, match="transformer_encoder"), ca.recording_attention(torch.nn.Linear(2, 2)):
        pass


def test_bad_formula_named(model):
    with pytest.raises(ValueError, match="Xx"):
        ca.element_attention(model, ["CsPbI3", "XxPbI3"], threads=1)


def test_symbols_match_crabnet_edm_order():
    import crabnet

    src = (Path(crabnet.__file__).parent / "utils" / "utils.py").read_text()
    block = src[src.index("def get_edm") :]
    block = block[block.index("all_symbols = [") : block.index("]", block.index("all_symbols = ["))]
    assert ca._crabnet_symbols() == re.findall(r"'(\w+)'", block)


def test_element_embeddings_and_groups(model):
    emb = ca.element_embeddings(model)
    assert emb.shape == (118, TINY.d_model) and emb.index[0] == "H"
    assert np.isfinite(emb.to_numpy()).all()
    # the same vector the encoder computes for an element
    import torch

    embed = model.crab.model.encoder.embed
    with torch.no_grad():
        z = (embed(torch.tensor([[82]])) * model.crab.model.encoder.emb_scaler).numpy()[0, 0]
    np.testing.assert_allclose(emb.loc["Pb"].to_numpy(), z, rtol=1e-4, atol=1e-6)
    assert ca.element_groups(["Na", "Pb", "I", "La", "Fe"]) == [1, 14, 17, None, 8]


def test_received_summary_known_answer():
    import pandas as pd

    rec = pd.DataFrame(
        {
            "formula": ["AB", "AB", "AC", "AC", "ABC", "ABC", "ABC"],
            "element": ["A", "B", "A", "C", "A", "B", "C"],
            "fraction": [0.5] * 4 + [1 / 3] * 3,
            "n_elements": [2, 2, 2, 2, 3, 3, 3],
            "received": [0.8, 0.2, 0.6, 0.4, 0.5, 0.25, 0.25],
        }
    )
    s = ca.received_summary(rec, min_count=2)
    assert list(s.index) == ["A", "C", "B"]  # A is over-attended most
    assert s.loc["A", "received"] == pytest.approx((0.8 + 0.6 + 0.5) / 3)
    assert s.loc["A", "fair share"] == pytest.approx((0.5 + 0.5 + 1 / 3) / 3)
    assert s.loc["B", "n_formulas"] == 2
    assert "C" not in ca.received_summary(rec, min_count=3).index


@pytest.mark.parametrize("member", [5, -2, 1.0])
def test_member_out_of_range_is_named(model, member):
    """Issue 19 item 10: element_attention(member=5) gave a raw 'list index out of range'."""
    error = TypeError if isinstance(member, float) else IndexError
    with pytest.raises(error, match=r"member .* (0 to 0|whole number)"):
        ca.element_attention(model, FORMULAS, member=member, threads=1)
    with pytest.raises(error, match=r"member .* (0 to 0|whole number)"):
        ca.element_embeddings(model, member=member)
