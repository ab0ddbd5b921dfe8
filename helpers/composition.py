"""Formulas as *model inputs*: validated element fractions and the keys built from them.

Parsing itself lives in :mod:`helpers.formulas` (:func:`~helpers.formulas.element_amounts`,
:func:`~helpers.formulas.expand_abbreviations`, :class:`~helpers.formulas.FormulaError`,
the rules for what is refused); this thin layer adds what the modelling code needs on
top. It is a separate module so that modelling code (helpers.crabnet, baselines, splits,
predictor) depends on a small, stable interface rather than on the parser's internals:

- :func:`atomic_fractions` -> :class:`ParsedFormula` (atomic fractions, elements,
  and how the text was read, e.g. ``MAPbI3`` -> ``(CH6N)PbI3``);
- :func:`chemical_system` (``"Br-Cs-I-Pb"``) and :func:`composition_key`, the keys
  used to group formulas and to match ``PbI3CH6N`` with ``CH6I3NPb``;
- :func:`crabnet_formula`, the spelling CrabNet's own (simpler) parser reads
  without silently dropping anything.
"""

from __future__ import annotations

from dataclasses import dataclass

from .formulas import FormulaError, check_model_fractions, expand_abbreviations, element_amounts

__all__ = ["FormulaError", "ParsedFormula", "atomic_fractions", "chemical_system", "composition_key", "crabnet_formula"]


@dataclass(frozen=True)
class ParsedFormula:
    """A validated formula.

    Attributes:
        text: the string as given (stripped).
        expanded: the string after organic-cation abbreviations were expanded
            (equal to ``text`` when there were none).
        fractions: element -> atomic fraction (sums to 1), elements alphabetical.
    """

    text: str
    expanded: str
    fractions: dict[str, float]

    @property
    def elements(self) -> tuple[str, ...]:
        """Element symbols, alphabetical."""
        return tuple(self.fractions)

    @property
    def n_elements(self) -> int:
        """Number of distinct elements."""
        return len(self.fractions)


def atomic_fractions(formula: str | ParsedFormula) -> ParsedFormula:
    """Validate a formula and return its atomic fractions.

    Abbreviations such as ``MA``/``FA`` are expanded (see
    :data:`helpers.formulas.ORGANIC_CATIONS`).

    Raises:
        FormulaError: not text, empty or a missing-value code such as ``NaN``,
            unparsable, a symbol that is not one of the 118 elements, an ambiguous
            abbreviation (``PMA2PbI4``), an amount that is zero or too large, or an
            element below 1e-6 of the atoms, which CrabNet would drop (see :mod:`helpers.formulas`; the message is written for a student).
    """
    if isinstance(formula, ParsedFormula):
        return formula
    if not isinstance(formula, str):
        raise FormulaError(f"a formula must be text, got {type(formula).__name__}", "unparsable formula")
    amounts = element_amounts(formula, expand=True)  # checks length first, then expands
    text = formula.strip()
    expanded = expand_abbreviations(text)
    total = sum(amounts.values())
    fractions = {el: amounts[el] / total for el in sorted(amounts)}
    check_model_fractions(text, fractions)
    return ParsedFormula(text=text, expanded=expanded, fractions=fractions)


def chemical_system(formula: str | ParsedFormula) -> str:
    """Alphabetically sorted element set joined by dashes, e.g. ``"Br-Cs-I-Pb"``."""
    return "-".join(atomic_fractions(formula).elements)


def composition_key(formula: str | ParsedFormula, decimals: int = 4) -> tuple[tuple[str, float], ...]:
    """Order- and multiple-independent key: sorted (element, atomic fraction rounded to ``decimals``)."""
    return tuple((el, round(frac, decimals)) for el, frac in atomic_fractions(formula).fractions.items())


def crabnet_formula(formula: str | ParsedFormula) -> str:
    """The formula as CrabNet's regex parser reads it safely: ``El<amount>`` pairs.

    CrabNet parses with a simple regex (no exponents, no abbreviations) and
    silently drops symbols it does not know and amounts below 1e-6. We feed it
    validated elements, alphabetically, with amounts relative to the rarest
    element in fixed-point notation (``CsPbI3`` -> ``Cs1.000000I3.000000Pb1.000000``),
    so equal compositions are byte-identical inputs.
    """
    fractions = atomic_fractions(formula).fractions
    smallest = min(fractions.values())
    return "".join(f"{el}{frac / smallest:.6f}" for el, frac in fractions.items())
