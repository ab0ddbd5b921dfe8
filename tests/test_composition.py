"""helpers.composition: formulas as model inputs (parsing itself is helpers.formulas's)."""

from __future__ import annotations

import re

import pytest

from crabnet.utils.composition import _fractional_composition
from helpers import composition as comp


def test_read_formula_fractions_and_expansion() -> None:
    p = comp.atomic_fractions(" MAPbI3 ")
    assert p.text == "MAPbI3" and p.expanded == "(CH6N)PbI3"
    assert p.elements == ("C", "H", "I", "N", "Pb") and p.n_elements == 5
    assert sum(p.fractions.values()) == pytest.approx(1.0)
    assert p.fractions["I"] == pytest.approx(3 / 12)
    assert comp.atomic_fractions(p) is p


@pytest.mark.parametrize(
    "bad", ["", "Xx2O", "Pb(I", "cspbi3", None, 3.5, "Pb0I3", "CsPb0.0I3", "Cs1" + "0" * 400 + "PbI3"]
)
def test_read_formula_errors(bad) -> None:
    with pytest.raises(comp.FormulaError):
        comp.atomic_fractions(bad)


def test_keys_ignore_order_and_multiples() -> None:
    assert comp.chemical_system("PbI3Cs") == "Cs-I-Pb"
    assert comp.composition_key("CsPbI3") == comp.composition_key("I6Pb2Cs2")
    assert comp.composition_key("CsPbI3") != comp.composition_key("CsPbI2Br")


@pytest.mark.parametrize(
    "formula", ["CsPbI3", "Cs5H491Pb100C95I249(Br17N58)3", "FA0.85MA0.15PbI2.55Br0.45", "Cs0.00001Pb1I3"]
)
def test_crabnet_formula_is_read_back_exactly(formula: str) -> None:
    """CrabNet's own parser reads our spelling to the same fractions (no exponents, nothing dropped)."""
    text = comp.crabnet_formula(formula)
    assert re.search(r"\d[eE][-+]?\d", text) is None, text  # no scientific notation
    ours = comp.atomic_fractions(formula).fractions
    theirs = _fractional_composition(text)
    assert set(theirs) == set(ours)
    for el in ours:
        assert theirs[el] == pytest.approx(ours[el], rel=1e-6)


def test_zero_amounts_are_refused_but_decimal_amounts_read() -> None:
    with pytest.raises(comp.FormulaError, match="gives Pb an amount of zero"):
        comp.atomic_fractions("MAPb0I3")
    assert comp.atomic_fractions("Cs0.05FA0.95PbI3").fractions["Cs"] > 0
    assert comp.atomic_fractions("Pb10I20").fractions == comp.atomic_fractions("PbI2").fractions
