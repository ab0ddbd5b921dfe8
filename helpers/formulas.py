"""Chemical formulas: the one place where formula text is read, checked and written.

Every module that reads a formula uses this one (cleaning in notebook 02, the
model-input layer :mod:`helpers.composition`, the Materials Project builder,
the NOMAD stand-in). pymatgen's :class:`~pymatgen.core.Composition` does the
chemistry (amounts of bracketed groups); in front of it sits a hand-written,
**linear-time tokenizer** (:func:`tokenize`, no regular expression with nested
quantifiers), so that every input is refused or parsed in well under a
millisecond per character, whatever it contains. Inputs longer than
:data:`MAX_FORMULA_LENGTH` characters are refused before anything else.

Rules (each refusal is a :class:`FormulaError` whose message says what is wrong):

* Allowed characters: element symbols (``[A-Z][a-z]*``, then checked against
  the 118 elements), amounts (``12``, ``0.5``, ``.5``, ``2.``; at most
  :data:`MAX_AMOUNT_DIGITS` digits), brackets ``()`` and ``[]`` (properly
  nested and matched; an unmatched ``]`` is named as such) and spaces.
* Amounts are positive and at most :data:`MAX_AMOUNT`. A normalized (integer)
  formula never rounds an amount to zero (:func:`integer_amounts` refuses
  instead), and a model input never holds an element below
  :data:`MIN_RELATIVE_AMOUNT` of the atoms (:func:`check_model_fractions`:
  CrabNet silently drops fractions below 1e-6; a 1e-40 trace is a typo).
* A missing-value code (``NaN``, ``nan``, ``None``, ``null``, ``N/A``...) is a
  *missing* formula, never sodium nitride: see :data:`MISSING_CODES`.
* Whitespace (spaces, tabs, line breaks) anywhere inside a formula is ignored:
  ``Cs Pb I3`` is ``CsPbI3`` (tables and papers often write a space between
  parts). Brackets, not spaces, group atoms.
* Symbols are case-sensitive and never re-cased: an element symbol is one capital
  letter, optionally followed by lower-case letters. All-caps text is read
  literally -- ``CSPBI3`` is C + S + P + B + I3 (five elements), not CsPbI3 --
  because no rule can tell ``CO`` (carbon monoxide) from ``Co``; the reader never
  guesses, and every user of a formula shows the elements it read.
* No isotope labels: deuterium ``D`` and tritium ``T`` are not among the 118
  element symbols and are refused ("non-element symbol"); write ``H``.
* The amounts are read here, token by token, with brackets multiplied out, and
  they are the result; pymatgen parses the same text as a cross-check. pymatgen
  silently drops an amount below 1e-8 (``Pb0.000000001I3`` becomes ``{I: 3}``), so
  its result alone would lose an element; here such an amount is kept (and then
  refused by :func:`check_model_fractions` for a model input and by
  :func:`integer_amounts` for a normalized formula).
* A ``.`` is always a decimal point. A hydrate written with a dot
  (``CuSO4.5H2O``) would silently read as CuS(O4.5)H2O, so ``.<digits>H2O``
  is refused: write the total composition (``CuH10O9S``).
* Abbreviations of organic cations (:data:`ORGANIC_CATIONS`) are expanded as
  whole tokens only (:func:`expand_abbreviations`): a bracketed name is one
  token (``(F3EA)``, ``(pF1PEA)``, ``(ThMA)`` are never partly expanded; an
  unknown one is then reported as a non-element symbol or unparsable), and a
  known abbreviation glued to an element symbol without an amount
  (``PMA2PbI4``, ``NMAPbI3``, ``CMAPbI3``, ``FPEA2PbI4``, ``PDMAPbI4``,
  ``ThMAPbI3``) is refused as ambiguous: it is far more likely an unknown
  cation name (PMA, NMA, ...) than P + MA. The alkali metals Li, Na, K, Rb,
  Cs are the exception (``CsFAPbI3`` is Cs + FA: no cation name starts so).

Element order: :func:`elements_of` returns element symbols **alphabetically**
(as NOMAD's ``elements`` and the ``elements`` columns of the course's tables);
:mod:`helpers.elements` re-sorts by atomic number only for display.

Normalized formula convention
-----------------------------
:func:`normalize_formula` returns the *reduced integer formula with the
element symbols in alphabetical order and counts of 1 omitted*, e.g.
``MAPbI3`` -> ``CH6I3NPb`` and ``Cs0.05FA0.79MA0.16PbBr0.51I2.49`` ->
``Br51C95Cs5H491I249N174Pb100``. This is the convention of NOMAD's
``chemical_formula_reduced``, so for well-formed entries the normalized
formula *is* NOMAD's reduced formula; it is independent of the order in
which the elements were written, contains only element symbols and integer
counts (CrabNet and pymatgen parse it), and avoids the special cases of
pymatgen's ``Composition.reduced_formula`` (which orders by
electronegativity and rewrites e.g. ``CsO`` as ``CsO2``).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from fractions import Fraction
from functools import lru_cache
from typing import Any, NamedTuple

import pandas as pd
from pymatgen.core import Composition, Element

__all__ = [
    "MAX_FORMULA_LENGTH",
    "MAX_AMOUNT",
    "MAX_AMOUNT_DIGITS",
    "MIN_RELATIVE_AMOUNT",
    "MISSING_CODES",
    "ELEMENT_SYMBOLS",
    "ORGANIC_CATIONS",
    "FormulaError",
    "Token",
    "tokenize",
    "expand_abbreviations",
    "abbreviations_table",
    "element_amounts",
    "integer_amounts",
    "format_formula",
    "normalize_formula",
    "elements_of",
    "symbols_in",
    "check_model_fractions",
    "same_composition",
    "cell_formula",
]

#: Longest formula text accepted (characters, before abbreviations are expanded). The longest
#: formula in the 43,108-row Perovskite Database export has 46 characters.
MAX_FORMULA_LENGTH: int = 200
#: Largest amount of one element (in any bracket level) that is accepted.
MAX_AMOUNT: float = 1e6
#: Most digits (integer and decimal part together) in one written amount.
MAX_AMOUNT_DIGITS: int = 20
#: Smallest atomic fraction of an element in a *model input* (CrabNet silently drops fractions
#: below 1e-6); enforced by :func:`check_model_fractions`, not by the parser (a 1e-6 trace of Sn is
#: chemistry that cleaning should compare, not an unreadable formula).
MIN_RELATIVE_AMOUNT: float = 1e-6
#: Texts that mean "no formula" (compared case-insensitively after stripping), never Na + N.
MISSING_CODES: frozenset[str] = frozenset({"nan", "none", "null", "n/a", "-", "?"})

#: Symbols of the 118 chemical elements (no D/T isotope labels, no placeholder X).
ELEMENT_SYMBOLS: frozenset[str] = frozenset(Element.from_Z(z).symbol for z in range(1, 119))

#: Organic cations of hybrid perovskites, written as the *protonated* cation
#: (the species in the crystal), as the Perovskite Database writes them. Only
#: abbreviations with one unambiguous meaning whose composition agrees with the
#: database's reduced formulas are listed; others (HA, PA, TBA, BDA, PMA, ...)
#: mean different molecules in different papers and are left unexpanded, so
#: formulas using them are reported, not guessed.
ORGANIC_CATIONS: dict[str, tuple[str, str]] = {
    "MA": ("CH6N", "methylammonium CH3NH3+"),
    "FA": ("CH5N2", "formamidinium HC(NH2)2+"),
    "GA": ("CH6N3", "guanidinium C(NH2)3+"),
    "GU": ("CH6N3", "guanidinium C(NH2)3+ (the database's spelling)"),
    "EA": ("C2H8N", "ethylammonium CH3CH2NH3+"),
    "DMA": ("C2H8N", "dimethylammonium (CH3)2NH2+"),
    "BA": ("C4H12N", "n-butylammonium CH3(CH2)3NH3+"),
    "PEA": ("C8H12N", "phenethylammonium C6H5(CH2)2NH3+"),
    "BZA": ("C7H10N", "benzylammonium C6H5CH2NH3+"),
    "Ace": ("C2H7N2", "acetamidinium CH3C(NH2)2+"),
}
#: Longest first, so PEA wins over P + EA and DMA over D + MA.
_ABBREVIATIONS_LONGEST_FIRST: tuple[str, ...] = tuple(sorted(ORGANIC_CATIONS, key=len, reverse=True))

#: Alkali metals: glued to an abbreviation (``CsFAPbI3``, ``KBABiTeO6``) they are the A-site metal,
#: never the start of an organic cation's name, so they are not ambiguous.
_A_SITE_METALS: frozenset[str] = frozenset({"Li", "Na", "K", "Rb", "Cs"})

_OPEN = {"(": ")", "[": "]"}
_CLOSE = {")": "(", "]": "["}


class FormulaError(ValueError):
    """A formula cannot be turned into a composition of real elements.

    Attributes:
        reason: ``"missing formula"``, ``"unparsable formula"`` or
            ``"non-element symbol"`` (the drop reasons of :func:`helpers.cleaning.clean_psc`).
    """

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def _shown(text: str, limit: int = 60) -> str:
    """``repr`` of ``text``, shortened in the middle when long (messages stay readable)."""
    if len(text) <= limit:
        return repr(text)
    return repr(text[: limit // 2]) + f" ... ({len(text)} characters) ... " + repr(text[-limit // 4 :])


def _as_text(formula: Any) -> str:
    """Formula input -> text; ``None``/NaN -> ``""``; anything but text or a NaN float is refused."""
    if isinstance(formula, str):
        return formula
    if formula is None or (isinstance(formula, float) and math.isnan(formula)):
        return ""
    raise FormulaError(f"a formula must be text, got {type(formula).__name__}", "unparsable formula")


def _check_length_and_missing(text: str) -> str:
    """Strip; refuse empty, missing-value codes and over-long text (before any scanning)."""
    if len(text) > MAX_FORMULA_LENGTH:
        raise FormulaError(
            f"formula of {len(text)} characters refused: at most {MAX_FORMULA_LENGTH} are accepted",
            "unparsable formula",
        )
    stripped = text.strip()
    if not stripped:
        raise FormulaError("empty formula", "missing formula")
    if stripped.lower() in MISSING_CODES:
        raise FormulaError(
            f"{stripped!r} is a missing-value code, not a formula (write e.g. Na3N for sodium nitride)",
            "missing formula",
        )
    return stripped


class Token(NamedTuple):
    """One token of a formula: ``kind`` is ``"symbol"``, ``"amount"``, ``"open"`` or ``"close"``."""

    kind: str
    text: str
    position: int


def tokenize(formula: str) -> list[Token]:
    """Split formula text into tokens in one left-to-right pass (linear time, no regular expressions).

    Symbols are ``[A-Z][a-z]*`` (membership in the 118 elements is checked by
    :func:`element_amounts`), amounts are ``12``, ``0.5``, ``.5`` or ``2.``,
    brackets ``()``/``[]`` must match; spaces are skipped.

    Raises:
        FormulaError: ("unparsable formula") naming the first character that is
            not allowed, an unmatched or mismatched bracket, an amount with too
            many digits, or text longer than :data:`MAX_FORMULA_LENGTH`.
    """
    return _tokens(_check_length_and_missing(_as_text(formula)))


def _tokens(text: str) -> list[Token]:
    """:func:`tokenize` without the length/missing checks (for text already checked, or expanded from it)."""
    tokens: list[Token] = []
    stack: list[tuple[str, int]] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
        elif "A" <= c <= "Z":
            j = i + 1
            while j < n and "a" <= text[j] <= "z":
                j += 1
            tokens.append(Token("symbol", text[i:j], i))
            i = j
        elif "0" <= c <= "9" or c == ".":
            j = i
            while j < n and "0" <= text[j] <= "9":
                j += 1
            if j < n and text[j] == ".":
                j += 1
                while j < n and "0" <= text[j] <= "9":
                    j += 1
            number = text[i:j]
            if number == ".":
                raise FormulaError(f"{_shown(text)}: a '.' at position {i} without digits", "unparsable formula")
            if sum(ch.isdigit() for ch in number) > MAX_AMOUNT_DIGITS:
                raise FormulaError(
                    f"{_shown(text)}: the amount at position {i} has more than {MAX_AMOUNT_DIGITS} digits",
                    "unparsable formula",
                )
            tokens.append(Token("amount", number, i))
            i = j
        elif c in _OPEN:
            stack.append((c, i))
            tokens.append(Token("open", c, i))
            i += 1
        elif c in _CLOSE:
            if not stack:
                raise FormulaError(f"{_shown(text)}: unmatched {c!r} at position {i}", "unparsable formula")
            opener, at = stack.pop()
            if _OPEN[opener] != c:
                raise FormulaError(
                    f"{_shown(text)}: {c!r} at position {i} closes the {opener!r} opened at position {at}",
                    "unparsable formula",
                )
            if tokens[-1].kind == "open":
                raise FormulaError(f"{_shown(text)}: empty brackets at position {at}", "unparsable formula")
            tokens.append(Token("close", c, i))
            i += 1
        else:
            raise FormulaError(
                f"{_shown(text)} is not a chemical formula: {c!r} at position {i} "
                "(only element symbols, numbers, brackets and spaces are allowed)",
                "unparsable formula",
            )
    if stack:
        opener, at = stack[-1]
        raise FormulaError(f"{_shown(text)}: unmatched {opener!r} at position {at}", "unparsable formula")
    return tokens


def expand_abbreviations(formula: str) -> str:
    """Replace the organic-cation abbreviations of :data:`ORGANIC_CATIONS` by their element formulas.

    ``MAPbI3`` -> ``(CH6N)PbI3``; ``Cs0.05FA0.79MA0.16PbI2.5Br0.5`` ->
    ``Cs0.05(CH5N2)0.79(CH6N)0.16PbI2.5Br0.5``; ``(PEA)2PbI4`` ->
    ``(C8H12N)2PbI4``.

    Whole tokens only, in one linear scan:

    * A bracketed name -- letters and digits that start and end with a letter,
      e.g. ``(PEA)``, ``(ThMA)``, ``(F3EA)``, ``(pF1PEA)`` -- is one token,
      expanded only when the whole name is known; otherwise it is left as it
      is, and :func:`element_amounts` reports it (``(F3EA)`` -> non-element
      symbol, ``(pF1PEA)`` -> unparsable). A bracket whose content ends with an
      amount, ``(FA0.83MA0.17)``, is a mixture and its parts are expanded.
    * Outside such names a known abbreviation (longest first; never followed by
      a lower-case letter, so BA is not Ba) is expanded, unless it is glued to
      an element symbol written without an amount (``PMA2PbI4``, ``NMAPbI3``,
      ``ThMAPbI3``, ``FPEA2PbI4``, ``PDMAPbI4``): that is ambiguous -- most
      likely an unknown cation name -- and refused (an alkali metal before it,
      ``CsFAPbI3``, is read as the metal).

    Raises:
        FormulaError: for an ambiguous abbreviation ("non-element symbol"),
            text longer than :data:`MAX_FORMULA_LENGTH`, or a non-text input.
    """
    text = _as_text(formula)
    if len(text) > MAX_FORMULA_LENGTH:
        _check_length_and_missing(text)
    out: list[str] = []
    i, n = 0, len(text)
    bare_element: str | None = None  # element symbol just read, with no amount after it (yet)
    while i < n:
        c = text[i]
        if c in "([":
            j = i + 1
            while j < n and text[j].isascii() and text[j].isalnum():
                j += 1
            close = _OPEN[c]
            if j < n and text[j] == close and j > i + 1 and text[i + 1].isalpha() and text[j - 1].isalpha():
                name = text[i + 1 : j]
                out.append(f"({ORGANIC_CATIONS[name][0]})" if name in ORGANIC_CATIONS else text[i : j + 1])
                i = j + 1
            else:
                out.append(c)
                i += 1
            bare_element = None
            continue
        if "A" <= c <= "Z":
            abbr = next(
                (
                    a
                    for a in _ABBREVIATIONS_LONGEST_FIRST
                    if text.startswith(a, i) and not (i + len(a) < n and "a" <= text[i + len(a)] <= "z")
                ),
                None,
            )
            if abbr is not None:
                if bare_element is not None and bare_element not in _A_SITE_METALS:
                    raise FormulaError(
                        f"{_shown(text)}: {bare_element + abbr!r} is ambiguous -- {bare_element} + {abbr} "
                        f"({ORGANIC_CATIONS[abbr][1]}) or an unknown cation name? Write the cation's "
                        f"formula in brackets, or {bare_element}1{abbr} if you mean {bare_element} + {abbr}",
                        "non-element symbol",
                    )
                out.append(f"({ORGANIC_CATIONS[abbr][0]})")
                i += len(abbr)
                bare_element = None
                continue
            j = i + 1
            if j < n and "a" <= text[j] <= "z":
                j += 1
            out.append(text[i:j])
            bare_element = text[i:j]
            i = j
            continue
        out.append(c)
        bare_element = None
        i += 1
    return "".join(out)


def abbreviations_table() -> pd.DataFrame:
    """The organic-cation abbreviations that :func:`expand_abbreviations` knows (abbreviation, formula, cation)."""
    table = pd.DataFrame(
        [(abbr, formula, name) for abbr, (formula, name) in ORGANIC_CATIONS.items()],
        columns=["abbreviation", "formula", "cation"],
    )
    return table.set_index("abbreviation")


def _looks_like_hydrate(text: str) -> bool:
    """True for a dot-written adduct such as ``CuSO4.5H2O`` (``.<digits>H2O``), scanned linearly."""
    start = 0
    while (k := text.find("H2O", start)) != -1:
        j = k
        while j > 0 and text[j - 1].isdigit():
            j -= 1
        if j < k and j > 0 and text[j - 1] == "." and not (k + 3 < len(text) and "a" <= text[k + 3] <= "z"):
            return True
        start = k + 1
    return False


@lru_cache(maxsize=8192)
def _parse_cached(stripped: str) -> tuple[tuple[str, float], ...]:
    tokens = _tokens(stripped)
    unknown = sorted({t.text for t in tokens if t.kind == "symbol" and t.text not in ELEMENT_SYMBOLS})
    if unknown:
        raise FormulaError(
            f"{_shown(stripped)} contains {', '.join(map(repr, unknown))}, not chemical element(s) "
            "(a placeholder such as X, or an abbreviation that was not expanded)",
            "non-element symbol",
        )
    for before, t in zip([None, *tokens], tokens):
        if t.kind == "amount" and (before is None or before.kind not in ("symbol", "close")):
            raise FormulaError(
                f"{_shown(stripped)}: the amount {t.text!r} at position {t.position} does not follow "
                "an element or a closing bracket",
                "unparsable formula",
            )
    if _looks_like_hydrate(stripped):
        raise FormulaError(
            f"{_shown(stripped)} reads like a hydrate written with a dot (e.g. CuSO4.5H2O = CuSO4 + 5 H2O), "
            "but a '.' here is a decimal point; write the total composition instead (CuH10O9S)",
            "unparsable formula",
        )
    for before, t in zip([None, *tokens], tokens):
        if t.kind == "amount" and not 0 < float(t.text) <= MAX_AMOUNT:
            owner = before.text if before is not None and before.kind == "symbol" else "a bracketed group"
            if float(t.text) == 0:
                problem = f"gives {owner} an amount of zero; leave it out or give it a positive amount"
            else:
                problem = f"gives {owner} the amount {t.text}, above the maximum {MAX_AMOUNT:g}"
            raise FormulaError(f"{_shown(stripped)} {problem} (position {t.position})", "unparsable formula")
    amounts = _token_amounts(tokens)
    try:
        comp = Composition("".join(stripped.split()))
    except Exception as exc:  # pymatgen raises ValueError and friends
        raise FormulaError(f"{_shown(stripped)} could not be parsed: {exc}", "unparsable formula") from exc
    if not amounts or any(not (math.isfinite(a) and a > 0) for a in amounts.values()):
        raise FormulaError(f"{_shown(stripped)} has no element with a positive, finite amount", "unparsable formula")
    # cross-check: pymatgen must agree on every element it keeps (it drops amounts below 1e-8)
    for el, amount in comp.get_el_amt_dict().items():
        if el not in amounts or not math.isclose(amount, amounts[el], rel_tol=1e-9):
            raise FormulaError(
                f"{_shown(stripped)}: pymatgen reads {el} {amount:g}, the course's reader "
                f"{amounts.get(el, 0):g}; write the formula without ambiguity",
                "unparsable formula",
            )
    return tuple(sorted(amounts.items()))


def _token_amounts(tokens: list[Token]) -> dict[str, float]:
    """Element amounts of checked tokens, brackets multiplied out (one pass, a stack of groups).

    Every amount token follows a symbol or a closing bracket (checked by the caller).
    """
    stack: list[dict[str, float]] = [{}]
    i, n = 0, len(tokens)
    while i < n:
        t = tokens[i]
        has_amount = i + 1 < n and tokens[i + 1].kind == "amount"
        factor = float(tokens[i + 1].text) if has_amount else 1.0
        if t.kind == "symbol":
            stack[-1][t.text] = stack[-1].get(t.text, 0.0) + factor
        elif t.kind == "open":
            stack.append({})
        elif t.kind == "close":
            group = stack.pop()
            for el, amount in group.items():
                stack[-1][el] = stack[-1].get(el, 0.0) + amount * factor
        i += 2 if has_amount and t.kind in ("symbol", "close") else 1
    return stack[0]


def check_model_fractions(text: str, fractions: Mapping[str, float]) -> None:
    """Refuse atomic fractions a composition model cannot use: below :data:`MIN_RELATIVE_AMOUNT` (1e-6).

    Raises:
        FormulaError: ("unparsable formula") naming the element(s), e.g. ``H1`` + 40 zeros + ``Pb``.
    """
    tiny = sorted(el for el, f in fractions.items() if f < MIN_RELATIVE_AMOUNT)
    if tiny:
        raise FormulaError(
            f"{_shown(text)}: {', '.join(tiny)} would be less than {MIN_RELATIVE_AMOUNT:g} of the atoms, "
            "which the model cannot see (a trace this small is a typo or below any measurement; leave it out)",
            "unparsable formula",
        )


def element_amounts(formula: str, expand: bool = False) -> dict[str, float]:
    """Element amounts of a formula, e.g. ``"CH6I3NPb"`` -> ``{"C": 1, "H": 6, "I": 3, "N": 1, "Pb": 1}``.

    Args:
        formula: a chemical formula; brackets and decimal amounts are allowed
            (see the module docstring for the full rules).
        expand: first replace organic-cation abbreviations (:func:`expand_abbreviations`),
            for descriptive formulas such as ``MAPbI3``.

    Returns:
        Element -> amount (number of atoms, float), alphabetical.

    Raises:
        FormulaError: with ``reason`` "missing formula" (empty or a missing-value
            code such as ``NaN``), "unparsable formula" (not a formula: a
            character that is not allowed, unmatched brackets, an amount that is
            zero, too large or too small, a dot hydrate, too long) or
            "non-element symbol" (a symbol such as ``X`` that is not one of the
            118 elements -- pymatgen itself would silently accept it -- or an
            ambiguous abbreviation).
    """
    text = _check_length_and_missing(_as_text(formula))
    expanded = expand_abbreviations(text) if expand else text
    if expanded == text:
        return dict(_parse_cached(text))
    try:
        return dict(_parse_cached(expanded))
    except FormulaError as exc:  # say what the user wrote, then how it was read
        raise FormulaError(f"{_shown(text)}, read as {exc}", exc.reason) from None


def _check_amounts(amounts: Mapping[str, float], what: str) -> None:
    """FormulaError naming the element unless every amount is a finite number > 0 (and there is one)."""
    if not amounts:
        raise FormulaError(f"{what}: no elements given", "missing formula")
    for el, a in amounts.items():
        number = a if isinstance(a, numbers.Real) and not isinstance(a, bool) else None
        if number is None or not math.isfinite(number) or number <= 0:
            raise FormulaError(
                f"{what}: the amount of {el!r} must be a finite number > 0, got {a!r}", "unparsable formula"
            )


def integer_amounts(amounts: Mapping[str, float], max_denominator: int = 10_000) -> dict[str, int]:
    """Smallest whole-number element counts with the same ratios.

    E.g. ``{"Cs": 0.05, "Pb": 1}`` -> ``{"Cs": 1, "Pb": 20}``.

    Decimal amounts are read as fractions with denominators up to
    ``max_denominator`` (4 decimals are exact), as NOMAD does for its reduced
    formulas. An amount is never rounded to zero: one too small for that
    resolution raises :class:`FormulaError` (``{"Cs": 0.00001, "Pb": 1}``), and so does
    an empty mapping or an amount that is not a finite number > 0 (NaN, inf, 0, -1, True).
    """
    _check_amounts(amounts, "integer_amounts")
    fracs = {el: Fraction(a).limit_denominator(max_denominator) for el, a in amounts.items()}
    zero = sorted(el for el, f in fracs.items() if f == 0 and amounts[el] > 0)
    if zero:
        raise FormulaError(
            f"amount(s) of {', '.join(f'{el} ({amounts[el]:g})' for el in zero)} below the resolution "
            f"1/{max_denominator} of an integer formula; a trace this small cannot be written "
            "as a reduced formula -- leave it out or scale all amounts up",
            "unparsable formula",
        )
    lcm = math.lcm(*(f.denominator for f in fracs.values()))
    ints = {el: int(f * lcm) for el, f in fracs.items()}
    gcd = math.gcd(*ints.values())
    return {el: n // gcd for el, n in ints.items()}


def format_formula(counts: Mapping[str, int]) -> str:
    """Alphabetical formula string with counts of 1 omitted, e.g. ``{"Pb": 1, "I": 3}`` -> ``"I3Pb"``."""
    return "".join(f"{el}{'' if n == 1 else n}" for el, n in sorted(counts.items()))


def normalize_formula(formula: str, expand: bool = False) -> str:
    """Order-independent canonical formula: reduced integer counts, elements alphabetical.

    ``"PbCH3NH3I3"``, ``"CH6I3NPb"`` and (with ``expand=True``) ``"MAPbI3"``
    all give ``"CH6I3NPb"``; ``"Cs0.05FA0.79MA0.16PbI2.5Br0.5"`` (expand)
    gives ``"Br10C19CsH98I50N35Pb20"``. See the module docstring for why
    this convention (NOMAD's) and not pymatgen's ``reduced_formula``.

    Raises:
        FormulaError: see :func:`element_amounts` and :func:`integer_amounts`
            (``"Cs0.00001Pb"`` is refused, never ``"Cs0Pb"``).
    """
    amounts = element_amounts(formula, expand=expand)
    try:
        return format_formula(integer_amounts(amounts))
    except FormulaError as exc:
        raise FormulaError(f"{_shown(str(formula).strip())}: {exc}", exc.reason) from None


def elements_of(formula: str, expand: bool = False) -> list[str]:
    """Element symbols of a formula, **alphabetical** (``"MAPbI3"``, expand -> ``["C", "H", "I", "N", "Pb"]``).

    Raises:
        FormulaError: see :func:`element_amounts`.
    """
    return sorted(element_amounts(formula, expand=expand))


def symbols_in(text: str) -> list[str]:
    """Distinct symbol-like names (``[A-Z][a-z]*``) in ``text``, alphabetical, *without* any validation.

    For describing text that may not be a valid formula (``"XPb2I5"`` ->
    ``["I", "Pb", "X"]``); use :func:`elements_of` for chemistry. Linear scan.

    Raises:
        TypeError: ``text`` is not a string (e.g. bytes or NaN).
    """
    if not isinstance(text, str):
        raise TypeError(f"symbols_in expects text, got {type(text).__name__} {text!r:.40}")
    found: set[str] = set()
    i, n = 0, len(text)
    while i < n:
        if "A" <= text[i] <= "Z":
            j = i + 1
            while j < n and "a" <= text[j] <= "z":
                j += 1
            found.add(text[i:j])
            i = j
        else:
            i += 1
    return sorted(found)


def same_composition(a: Mapping[str, float], b: Mapping[str, float], tol: float = 1e-4) -> bool:
    """True when two element-amount mappings have the same atomic fractions (within ``tol``).

    Raises:
        FormulaError: an empty mapping or an amount that is not a finite number > 0.
    """
    _check_amounts(a, "same_composition")
    _check_amounts(b, "same_composition")
    if set(a) != set(b):
        return False
    ta, tb = sum(a.values()), sum(b.values())
    return all(abs(a[el] / ta - b[el] / tb) <= tol for el in a)


def cell_formula(obj: Any) -> str:
    """Unreduced formula of a cell with every count explicit, elements alphabetical: ``"Al1Co2Fe1"``.

    Accepts a pymatgen ``Structure``/``Composition``, a mapping element ->
    count, or formula text (``"Mn4K4O8"`` -> ``"K4Mn4O8"``, ``"Rb2 Te"`` ->
    ``"Rb2Te1"``; repeated elements are summed). This is the join key of
    matbench's ``mp_gap`` (see :mod:`coursetools.mp_build`).

    Raises:
        FormulaError: for text that is not a formula (see :func:`element_amounts`).
        ValueError: for fractional (disordered) or non-positive amounts.
        TypeError: for any other input.
    """
    if isinstance(obj, str):
        obj = element_amounts(obj)
    if hasattr(obj, "composition"):  # Structure / Molecule
        obj = obj.composition
    if hasattr(obj, "get_el_amt_dict"):  # Composition
        obj = obj.get_el_amt_dict()
    if not isinstance(obj, Mapping):
        raise TypeError(f"expected a Structure, Composition, mapping or formula text, got {type(obj).__name__}")
    counts: dict[str, int] = {}
    for element, amount in obj.items():
        value = float(amount)
        if value <= 0 or abs(value - round(value)) > 1e-6:
            raise ValueError(f"non-integer or non-positive amount {amount!r} of {element} (disordered cell?)")
        counts[str(element)] = counts.get(str(element), 0) + int(round(value))
    if not counts:
        raise ValueError("empty composition")
    return "".join(f"{el}{counts[el]}" for el in sorted(counts))
