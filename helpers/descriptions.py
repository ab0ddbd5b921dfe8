"""Text descriptions of materials for the language-model notebooks (04, 05).

One function, :func:`describe`, turns one row of ``data/mp_computed_materials.csv``
into text in the formats of Yeh et al. (arXiv 2501.03456):

- ``"structured"``: a fixed template of ``feature: value`` pairs separated by ``"; "``;
- ``"natural"``: deterministic English sentences built from the same fields;
- ``"composition"``: the structured template restricted to what the formula alone
  gives (the ablation "what does structure in the text add?");
- ``"robocrys"``: a given robocrystallographer text (column ``robocrys_text``, as :func:`helpers.robocrys_data.load_robocrys_with_mp` gives it),
  one span covering it.

Every feature is computed with pymatgen (element names, Pauling electronegativities,
groups, atomic masses); nothing is hand-typed. Each feature comes back with its
category (:data:`CATEGORIES`) and character span, so notebook 05 can map tokens to
categories through a tokenizer's offset mapping (:func:`token_categories`).
Missing fields are left out, never written as ``nan``; the band gap never appears.

Input rules (each refusal is a ``ValueError`` naming the field):

- The formula is read by the course's one reader, :func:`helpers.formulas.element_amounts`
  (organic-cation abbreviations expanded), with the model-input check
  :func:`helpers.formulas.check_model_fractions`: a dot hydrate (``CuSO4.5H2O``), a zero
  amount (``Fe0O``), an isotope label (``D2O``), an exponent (``Pb1e300I3``), an element
  below 1e-6 of the atoms (``Pb0.000000001I3``) and a missing-value code (``NaN``) are
  refused, never described as something else. Whitespace inside a formula is ignored and
  symbols are case-sensitive (``CSPBI3`` is C, S, P, B, I): the rules of that module.
- ``n_sites`` is a whole number from 1 to :data:`MAX_SITES`; ``volume_A3`` a finite
  number > 0 whose volume per atom lies in :data:`VOLUME_PER_ATOM_RANGE` (A^3), so the
  density written is finite and physical.
- ``space_group_symbol`` is text that is a Hermann-Mauguin symbol spglib knows (any of
  its 530 settings, e.g. ``P2_1/c`` or ``P2_1/a`` for 14); with a ``space_group_number``
  it must be a symbol of that number. Free text never reaches the description.
"""

from __future__ import annotations

import math
import sys
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

import numpy as np
import pandas as pd
from pymatgen.core import Composition, Element
from scipy.constants import physical_constants

from helpers.formulas import check_model_fractions, element_amounts
from helpers.symmetry import crystal_system_from_spacegroup, space_group_settings

Format = Literal["structured", "natural", "composition", "robocrys"]

#: The description formats :func:`describe` writes.
FORMATS: tuple[str, ...] = ("structured", "natural", "composition", "robocrys")

#: Feature categories, in the order they appear in the text.
CATEGORIES: tuple[str, ...] = ("composition", "electronic", "symmetry", "geometry", "robocrys")

#: Column holding a robocrystallographer description (format ``"robocrys"``).
ROBOCRYS_COLUMN = "robocrys_text"  # the column helpers.robocrys_data.load_robocrys_with_mp gives

#: Grams per cm^3 in one atomic mass unit per cubic angstrom (u / A^3 -> g / cm^3).
_G_CM3_PER_U_A3: float = physical_constants["atomic mass constant"][0] * 1e3 / 1e-24

#: Largest accepted ``n_sites`` (atoms per cell; the course's MP table has at most 152).
MAX_SITES: int = 100_000
#: Accepted volume per atom (A^3), inclusive: the course's MP table spans 5.7-88 A^3; outside
#: these bounds a volume is a unit or typing error (and 1e-310 would print "density: inf").
VOLUME_PER_ATOM_RANGE: tuple[float, float] = (1.0, 1000.0)

#: Category of each feature (structured/natural/composition formats).
FEATURE_CATEGORY: dict[str, str] = {
    "formula": "composition",
    "elements": "composition",
    "number of elements": "composition",
    "mean electronegativity": "electronic",
    "electronegativity spread": "electronic",
    "valence electrons per atom": "electronic",
    "crystal system": "symmetry",
    "space group": "symmetry",
    "atoms per cell": "geometry",
    "volume per atom": "geometry",
    "density": "geometry",
    "robocrys description": "robocrys",
}


@dataclass(frozen=True)
class Span:
    """One feature's place in a description: ``text[start:end]`` (character offsets)."""

    feature: str
    category: str
    start: int
    end: int


@dataclass(frozen=True)
class Description:
    """A material described as text, with each feature's category and span."""

    text: str
    format: str
    spans: tuple[Span, ...]

    def category_at(self, offset: int) -> str | None:
        """Category of the feature covering character ``offset`` (None between features)."""
        for span in self.spans:
            if span.start <= offset < span.end:
                return span.category
        return None


def valence_electrons(element: Element) -> int:
    """Valence electrons of an element from its periodic-table group (pymatgen).

    Groups 1-12 count ``group`` electrons (s + d), groups 13-18 count
    ``group - 10`` (s + p), helium 2; lanthanides and actinides (pymatgen group 3) 3.
    """
    if element.Z == 2:
        return 2
    group = int(element.group)
    return group if group <= 12 else group - 10


def _present(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, str):
        return value.strip() != ""  # text is given; the formula reader decides what "NaN" means (missing)
    try:
        return not math.isnan(float(value))
    except (TypeError, ValueError, OverflowError):  # OverflowError: an int with hundreds of digits is present
        return True


def composition_features(formula: str) -> dict[str, Any]:
    """Features of a formula (pymatgen): reduced formula, element fractions, electronic counts.

    Returns a dict with ``formula`` (reduced), ``fractions`` (element -> atomic
    fraction, in order of electronegativity as pymatgen writes formulas),
    ``n_elements``, ``en_mean`` and ``en_spread`` (Pauling units, fraction-weighted
    mean and standard deviation; absent when an element has no Pauling value),
    ``valence_per_atom`` (electrons per atom, :func:`valence_electrons`),
    ``mass_per_fu`` (u per reduced formula unit) and ``atoms_per_fu``.

    The formula is read by :func:`helpers.formulas.element_amounts` (see the module
    docstring). The result is computed once per formula and cached; each call returns
    a fresh copy, so changing it changes nothing else.

    Raises:
        ValueError: (a :class:`helpers.formulas.FormulaError`) the formula is refused by
            the course's reader, or an element is below 1e-6 of the atoms.
    """
    feats = _composition_features_cached(formula)
    return {k: dict(v) if isinstance(v, dict) else v for k, v in feats.items()}


@lru_cache(maxsize=200_000)
def _composition_features_cached(formula: str) -> dict[str, Any]:
    """:func:`composition_features`, computed once per formula (never hand this dict out)."""
    amounts = element_amounts(formula, expand=True)  # the course's one reader: FormulaError names the problem
    total = sum(amounts.values())
    check_model_fractions(formula.strip(), {el: a / total for el, a in amounts.items()})
    with warnings.catch_warnings():  # pymatgen warns for noble gases without a Pauling value
        warnings.simplefilter("ignore", UserWarning)
        try:
            comp = Composition(amounts)
            if comp.num_atoms <= 0 or set(comp.get_el_amt_dict()) != set(amounts):
                raise ValueError("pymatgen lost an element")
            reduced, _ = comp.get_reduced_composition_and_factor()
            frac = comp.fractional_composition
            order = [Element(str(el)) for el in Composition(comp.reduced_formula).elements]
            en = np.array([el.X for el in order], dtype=float)
        except Exception as exc:  # pymatgen raises several types for bad formulas
            raise ValueError(f"formula {formula!r} could not be read by pymatgen: {exc}") from exc
    fractions = {el.symbol: float(frac[el]) for el in order}
    weights = np.array(list(fractions.values()))
    feats: dict[str, Any] = {
        "formula": comp.reduced_formula,
        "fractions": fractions,
        "n_elements": len(fractions),
        "valence_per_atom": float(sum(w * valence_electrons(el) for w, el in zip(weights, order, strict=True))),
        "mass_per_fu": float(reduced.weight),
        "atoms_per_fu": float(reduced.num_atoms),
    }
    if np.all(np.isfinite(en)):
        mean = float(weights @ en)
        feats["en_mean"] = mean
        feats["en_spread"] = float(np.sqrt(weights @ (en - mean) ** 2))
    return feats


def _positive(row: Mapping[str, Any], field: str, whole: bool = False) -> Any:
    """``row[field]`` as a finite number > 0 (an int when ``whole``), None when missing.

    Raises:
        ValueError: naming the field, for text, zero, negative, infinite or (``whole``) fractional values.
    """
    value = row.get(field)
    if not _present(value):
        return None
    kind = f"a whole number >= 1 (at most {MAX_SITES})" if whole else "a finite number > 0"
    shown = _shown(value)
    try:
        number = float(value)
    except OverflowError:  # an int with hundreds of digits
        raise ValueError(f"{field} must be {kind}, got {shown}") from None
    except (TypeError, ValueError):
        raise ValueError(f"{field} must be a number, got {shown}") from None
    if not math.isfinite(number) or number <= 0 or (whole and not (number.is_integer() and number <= MAX_SITES)):
        raise ValueError(f"{field} must be {kind}, got {shown}")
    return int(number) if whole else number


def _shown(value: Any, limit: int = 40) -> str:
    """``repr(value)`` cut to about ``limit`` characters (a 400-digit int stays readable)."""
    try:
        text = repr(value)
    except ValueError:  # int too long to print
        return f"<an int of more than {sys.get_int_max_str_digits()} digits>"
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def _feature_values(row: Mapping[str, Any], with_structure: bool) -> dict[str, Any]:
    """Raw values (numbers/strings) of every feature present in ``row``."""
    formula = row.get("formula_reduced")
    if not _present(formula):
        raise ValueError("row has no formula_reduced; a description needs at least the formula")
    comp = composition_features(str(formula).strip())
    values: dict[str, Any] = {
        "formula": comp["formula"],
        "elements": comp["fractions"],
        "number of elements": comp["n_elements"],
    }
    if "en_mean" in comp:
        values["mean electronegativity"] = comp["en_mean"]
        values["electronegativity spread"] = comp["en_spread"]
    values["valence electrons per atom"] = comp["valence_per_atom"]
    if not with_structure:
        return values
    if _present(row.get("crystal_system")):
        values["crystal system"] = str(row["crystal_system"]).strip()
    symbol, number = row.get("space_group_symbol"), row.get("space_group_number")
    if _present(number):
        system = crystal_system_from_spacegroup(number)  # ValueError unless an integer in 1..230
        if "crystal system" in values and values["crystal system"] != system:
            raise ValueError(
                f"crystal_system {values['crystal system']!r} contradicts space_group_number {number!r} ({system})"
            )
    if _present(symbol) or _present(number):
        values["space group"] = (
            _space_group_symbol(symbol, number) if _present(symbol) else None,
            int(number) if _present(number) else None,
        )
    n_sites = _positive(row, "n_sites", whole=True)
    volume = _positive(row, "volume_A3")
    if n_sites is not None:
        values["atoms per cell"] = n_sites
    if n_sites and volume:
        low, high = VOLUME_PER_ATOM_RANGE
        if not low <= volume / n_sites <= high:
            raise ValueError(
                f"volume_A3 {volume:g} with n_sites {n_sites} gives {volume / n_sites:g} A^3 per atom, "
                f"outside the physical range {low:g}-{high:g} A^3 per atom (volume_A3 is per cell, in A^3)"
            )
        values["volume per atom"] = volume / n_sites
        mass_per_cell = comp["mass_per_fu"] * n_sites / comp["atoms_per_fu"]
        values["density"] = mass_per_cell / volume * _G_CM3_PER_U_A3
    return values


def _space_group_symbol(symbol: Any, number: Any) -> str:
    """``symbol`` stripped, if spglib knows it (and, with ``number``, as a symbol of that number).

    Raises:
        ValueError: naming ``space_group_symbol``: not text, not a Hermann-Mauguin symbol, or
            a symbol of another space group than ``number``.
    """
    if not isinstance(symbol, str):
        raise ValueError(
            f"space_group_symbol must be text (e.g. 'F-43m'), got {type(symbol).__name__} {_shown(symbol)}"
        )
    text = symbol.strip()
    settings = space_group_settings()
    known = {s: n for n, names in settings.items() for s in names}
    if text not in known:
        raise ValueError(
            f"space_group_symbol {_shown(text)} is not a space-group symbol (spglib's Hermann-Mauguin "
            "symbols, e.g. 'F-43m', 'P2_1/c', 'Pm-3m')"
        )
    if _present(number):
        n = int(number)  # checked by crystal_system_from_spacegroup before
        if text not in settings[n]:
            raise ValueError(
                f"space_group_symbol {text!r} is not the symbol of space group {n} "
                f"({', '.join(sorted(settings[n])[:6])}); it is that of {known[text]}"
            )
    return text


def numeric_features(rows: Any, with_structure: bool = True) -> pd.DataFrame:
    """The numbers a description writes, as a table (one row per material, same index).

    Columns: ``n_elements``, ``en_mean``, ``en_spread`` (Pauling), ``valence_per_atom``,
    the atomic fraction of every element present (``frac_<El>``), and with structure
    ``space_group_number``, ``atoms_per_cell``, ``volume_per_atom_A3`` (A^3),
    ``density_g_cm3`` (g/cm^3) and one-hot ``crystal_system_<name>``. Missing values
    stay NaN (a random forest needs them filled: the caller decides how). This is what a
    random forest gets when it is compared with a text model on the same information.
    """
    import pandas as pd

    out = []
    for _, row in rows.iterrows():
        v = _feature_values(row, with_structure)
        rec: dict[str, Any] = {
            "n_elements": v["number of elements"],
            "en_mean": v.get("mean electronegativity", np.nan),
            "en_spread": v.get("electronegativity spread", np.nan),
            "valence_per_atom": v["valence electrons per atom"],
        }
        rec.update({f"frac_{el}": frac for el, frac in v["elements"].items()})
        if with_structure:
            sg = v.get("space group", (None, None))[1]
            rec.update(
                {
                    "space_group_number": np.nan if sg is None else sg,
                    "atoms_per_cell": v.get("atoms per cell", np.nan),
                    "volume_per_atom_A3": v.get("volume per atom", np.nan),
                    "density_g_cm3": v.get("density", np.nan),
                }
            )
            if "crystal system" in v:
                rec[f"crystal_system_{v['crystal system']}"] = 1.0
        out.append(rec)
    table = pd.DataFrame(out, index=rows.index)
    onehot = [c for c in table.columns if c.startswith(("frac_", "crystal_system_"))]
    table[onehot] = table[onehot].fillna(0.0)
    return table


def numeric_feature_matrices(
    parts: Mapping[str, Any], with_structure: bool = True
) -> tuple[dict[str, np.ndarray], list[str]]:
    """:func:`numeric_features` of every part of a split as aligned arrays for a model.

    Args:
        parts: part name -> material table (e.g. ``split.parts()``: train, val, test).
        with_structure: as in :func:`numeric_features`.

    Returns:
        (part -> float array of shape (rows, columns), the sorted column names). The columns are
        the union over all parts, so an element seen only in the test part still gets a column;
        a feature a material does not have (an absent element, crystal system or a missing
        volume) is 0.0, as a random forest needs finite inputs.
    """
    feats = {p: numeric_features(df, with_structure) for p, df in parts.items()}
    columns = sorted(set().union(*(f.columns for f in feats.values())))
    arrays = {p: f.reindex(columns=columns).fillna(0.0).to_numpy(dtype=float) for p, f in feats.items()}
    return arrays, columns


def _structured_value(feature: str, value: Any) -> str:
    if feature == "elements":
        return ", ".join(f"{el} {f:.3f}" for el, f in value.items())
    if feature == "space group":
        symbol, number = value
        return " ".join(p for p in (symbol, f"(number {number})" if number is not None else None) if p)
    if feature in ("mean electronegativity", "electronegativity spread", "valence electrons per atom"):
        return f"{value:.2f}"
    if feature == "volume per atom":
        return f"{value:.2f} A^3"
    if feature == "density":
        return f"{value:.2f} g/cm^3"
    return str(value)


_NUMBER_WORDS = {1: "an elemental", 2: "a binary", 3: "a ternary", 4: "a quaternary", 5: "a quinary"}


def _natural_pieces(values: dict[str, Any]) -> list[tuple[str | None, str]]:
    """(feature or None for glue text, text) pieces of the natural-language format."""
    p: list[tuple[str | None, str]] = [("formula", values["formula"]), (None, " is ")]
    n = values["number of elements"]
    p.append(("number of elements", _NUMBER_WORDS.get(n, f"a {n}-element") + " material"))
    names = [f"{Element(el).long_name.lower()} ({100 * f:.1f} %)" for el, f in values["elements"].items()]
    p += [
        (None, " made of "),
        ("elements", names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]),
    ]
    p.append((None, "."))
    if "mean electronegativity" in values:
        p += [
            (None, " Its "),
            ("mean electronegativity", f"mean Pauling electronegativity is {values['mean electronegativity']:.2f}"),
        ]
        p += [(None, " with "), ("electronegativity spread", f"a spread of {values['electronegativity spread']:.2f}")]
        p += [(None, ", and it has ")]
    else:
        p += [(None, " It has ")]
    p += [
        ("valence electrons per atom", f"{values['valence electrons per atom']:.2f} valence electrons per atom"),
        (None, "."),
    ]
    structure = []
    if "crystal system" in values:
        structure.append(("crystal system", f"crystallises in the {values['crystal system']} crystal system"))
    if "space group" in values:
        symbol, number = values["space group"]
        text = "in space group " + " ".join(
            x for x in (symbol, f"(number {number})" if number is not None else None) if x
        )
        structure.append(("space group", text))
    if "atoms per cell" in values:
        n_sites = values["atoms per cell"]
        structure.append(("atoms per cell", f"with {n_sites} atom{'s' if n_sites != 1 else ''} in the unit cell"))
    if "volume per atom" in values:
        structure.append(("volume per atom", f"{values['volume per atom']:.2f} cubic angstroms per atom"))
    if "density" in values:
        structure.append(("density", f"a density of {values['density']:.2f} g/cm^3"))
    if structure:
        p.append((None, " It "))
        for i, piece in enumerate(structure):
            if i:
                p.append((None, " and " if i == len(structure) - 1 else ", "))
            p.append(piece)
        p.append((None, "."))
    return p


def describe(row: Mapping[str, Any], format: Format = "structured", text: str | None = None) -> Description:
    """Describe one material (a row of the MP dataset) as text, with feature spans.

    Args:
        row: mapping with at least ``formula_reduced``; optional ``crystal_system``,
            ``space_group_symbol``, ``space_group_number``, ``n_sites``,
            ``volume_A3`` (A^3 per cell) and, for ``"robocrys"``,
            :data:`ROBOCRYS_COLUMN`. Other keys (e.g. ``band_gap_eV``) are ignored.
        format: one of :data:`FORMATS`.
        text: for ``"robocrys"``, the description text (overrides the row's column).

    Returns:
        :class:`Description`. Units in the text: volume per atom in A^3,
        density in g/cm^3, electronegativity in Pauling units. Fields missing
        from the row are left out.

    Raises:
        ValueError: unknown format, no formula, an unreadable formula, or an empty
            robocrys text.
    """
    if format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {format!r}")
    if format == "robocrys":
        body = text if text is not None else row.get(ROBOCRYS_COLUMN)
        if not _present(body):
            raise ValueError(f"format 'robocrys' needs a text (column {ROBOCRYS_COLUMN!r} is missing or empty)")
        body = str(body).strip()
        return Description(body, format, (Span("robocrys description", "robocrys", 0, len(body)),))
    values = _feature_values(row, with_structure=format != "composition")
    if format == "natural":
        pieces = _natural_pieces(values)
    else:
        pieces = []
        for i, (feature, value) in enumerate(values.items()):
            if i:
                pieces.append((None, "; "))
            pieces.append((feature, f"{feature}: {_structured_value(feature, value)}"))
    out, spans, pos = [], [], 0
    for feature, piece in pieces:
        if feature is not None:
            spans.append(Span(feature, FEATURE_CATEGORY[feature], pos, pos + len(piece)))
        out.append(piece)
        pos += len(piece)
    return Description("".join(out), format, tuple(spans))


def describe_rows(rows: Any, format: Format = "structured") -> list[Description]:
    """:func:`describe` for every row of a DataFrame (or a sequence of mappings).

    Raises:
        TypeError: ``rows`` is not a DataFrame or a sequence of mappings (a list of
            formula strings, a single row as a dict or a Series, ...), naming what was given.
        ValueError: naming the row (``entry_id`` when present, else its position)
            whose description failed.
    """
    expected = "describe_rows expects a DataFrame or a sequence of mappings (one per material)"
    if isinstance(rows, pd.DataFrame):
        records = rows.to_dict("records")
    elif isinstance(rows, pd.Series):
        raise TypeError(f"{expected}, got a pandas Series (one row?): use describe(row) or describe_rows(frame)")
    elif isinstance(rows, Sequence) and not isinstance(rows, (str, bytes)):
        records = list(rows)
        bad = next((i for i, r in enumerate(records) if not isinstance(r, Mapping)), None)
        if bad is not None:
            got = type(records[bad]).__name__
            raise TypeError(
                f"{expected}, got a {type(rows).__name__} whose item {bad} is a {got} {_shown(records[bad])}"
            )
    else:
        raise TypeError(f"{expected}, got {type(rows).__name__} {_shown(rows)}")
    out = []
    for i, row in enumerate(records):
        try:
            out.append(describe(row, format))
        except ValueError as exc:
            raise ValueError(f"row {row.get('entry_id', i)!r}: {exc}") from exc
    return out


def texts_by_part(parts: Mapping[str, Any], format: Format = "structured") -> dict[str, list[str]]:
    """The description text of every row of every part (e.g. ``split.parts()``) in ``format``.

    Raises:
        ValueError: naming the part and row whose description failed (see :func:`describe_rows`).
    """
    out = {}
    for part, rows in parts.items():
        try:
            out[part] = [d.text for d in describe_rows(rows, format)]
        except ValueError as exc:
            raise ValueError(f"{part}: {exc}") from exc
    return out


def token_categories(description: Description, offsets: Sequence[tuple[int, int]]) -> list[str | None]:
    """Category of each token, from a tokenizer's ``offset_mapping`` (character spans).

    A token takes the category of the feature its first non-space character lies in;
    special tokens (offsets ``(0, 0)``) and glue text get None.

    Raises:
        ValueError: an offset outside ``0..len(text)`` (the offsets belong to another text),
            naming the token.
    """
    cats: list[str | None] = []
    n = len(description.text)
    for i, (start, end) in enumerate(offsets):
        if not (0 <= start <= n and 0 <= end <= n):
            raise ValueError(
                f"token {i} has offsets ({start}, {end}) outside the description of {n} characters: "
                "the offsets belong to another text (or a truncated/other tokenizer call)"
            )
        if end <= start:
            cats.append(None)
            continue
        while start < end - 1 and description.text[start].isspace():
            start += 1
        cats.append(description.category_at(start))
    return cats
