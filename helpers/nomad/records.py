"""NOMAD entries and the course's rows: which fields the pulls transfer and how an entry becomes a CSV row.

Units: NOMAD serves bare SI numbers. Band gaps arrive in joules and are converted
to electronvolts by :func:`helpers.units.joule_to_ev` (divide by the exact elementary
charge, 1.602176634e-19 C). Cell volumes arrive in m^3 and are written in cubic
angstrom (:func:`helpers.units.m3_to_a3`, 1 m^3 = 1e30 A^3). Solar-cell quantities keep NOMAD's
units: efficiency in %, open-circuit voltage in V, short-circuit current density
in A/m^2 (10x the mA/cm^2 of most papers), fill factor as a fraction 0..1.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from typing import Any


from ..units import joule_to_ev, m3_to_a3

#: Section marker of solar-cell entries (NOMAD's ``sections`` metadata).
SOLAR_CELL_SECTION = "nomad.datamodel.results.SolarCell"

#: Band-gap value paths: current one first, deprecated fallback second.
BAND_GAP_PATH = "results.properties.electronic.band_gap"
BAND_GAP_DEPRECATED_PATH = "results.properties.electronic.band_structure_electronic"

_SOLAR = "results.properties.optoelectronic.solar_cell"

#: Dotted paths transferred for the perovskite solar-cell pull (query a).
PSC_INCLUDE: tuple[str, ...] = (
    "entry_id",
    "results.material.chemical_formula_reduced",
    "results.material.chemical_formula_descriptive",
    "results.material.elements",
    f"{BAND_GAP_PATH}.value",
    f"{BAND_GAP_DEPRECATED_PATH}.band_gap.value",
    f"{_SOLAR}.efficiency",
    f"{_SOLAR}.open_circuit_voltage",
    f"{_SOLAR}.short_circuit_current_density",
    f"{_SOLAR}.fill_factor",
    f"{_SOLAR}.device_stack",
    f"{_SOLAR}.hole_transport_layer",
    f"{_SOLAR}.electron_transport_layer",
)

_STRUCT = "results.properties.structures.structure_original"

#: Dotted paths transferred for the computed-materials pull (query b).
#: ``species_at_sites`` is only the fallback for ``n_sites`` in older entries
#: that predate ``structure_original.n_sites`` (one species label per site).
DFT_INCLUDE: tuple[str, ...] = (
    "entry_id",
    "results.material.chemical_formula_reduced",
    "results.material.elements",
    "results.material.symmetry.crystal_system",
    "results.material.symmetry.space_group_number",
    "results.material.symmetry.space_group_symbol",
    f"{_STRUCT}.n_sites",
    f"{_STRUCT}.species_at_sites",
    f"{_STRUCT}.cell_volume",
    "results.method.simulation.dft.xc_functional_type",
    f"{BAND_GAP_PATH}.value",
    f"{BAND_GAP_PATH}.type",
    f"{BAND_GAP_DEPRECATED_PATH}.band_gap.value",
    f"{BAND_GAP_DEPRECATED_PATH}.band_gap.type",
)


# --------------------------------------------------------------------------- flatteners


def _first(value: Any) -> Any:
    """First element of a list, the value itself for a dict, None otherwise/empty."""
    if isinstance(value, list):
        return value[0] if value else None
    return value if isinstance(value, Mapping) else None


def _section(obj: Any, *keys: str) -> Mapping[str, Any]:
    """Walk nested dicts (taking element 0 of lists); {} when anything is missing."""
    for key in keys:
        obj = _first(obj.get(key)) if isinstance(obj, Mapping) else None
        if obj is None:
            return {}
    return obj if isinstance(obj, Mapping) else {}


def _number(entry_id: str, field: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"entry {entry_id}: field {field} is not a number: {value!r}")
    value = float(value)
    if math.isnan(value):
        return None
    return value


def _integer(entry_id: str, field: str, value: Any) -> int | None:
    number = _number(entry_id, field, value)
    if number is None:
        return None
    if not number.is_integer():
        raise ValueError(f"entry {entry_id}: field {field} is not an integer: {value!r}")
    return int(number)


def _text(entry_id: str, field: str, value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return str(value)
    raise ValueError(f"entry {entry_id}: field {field} is not text: {value!r}")


def _joined(entry_id: str, field: str, value: Any, sep: str) -> str | None:
    """Join a list-of-strings field with ``sep``."""
    if value is None:
        return None
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return sep.join(value)
    raise ValueError(f"entry {entry_id}: field {field} is not a list of strings: {value!r}")


def _entry_id(entry: Mapping[str, Any]) -> str:
    if not isinstance(entry, Mapping):
        raise ValueError(f"entry is not a JSON object: {entry!r:.100}")
    entry_id = entry.get("entry_id")
    if not isinstance(entry_id, str) or not entry_id:
        raise ValueError(f"entry without a valid entry_id (keys: {sorted(entry)})")
    return entry_id


def _band_gap(entry_id: str, electronic: Mapping[str, Any]) -> tuple[float | None, str | None, str | None]:
    """(value in J, type, path it came from): current path first, deprecated fallback."""
    gap = _first(electronic.get("band_gap"))
    if gap is not None and gap.get("value") is not None:
        field = f"{BAND_GAP_PATH}[0].value"
        gap_type = _text(entry_id, f"{BAND_GAP_PATH}[0].type", gap.get("type"))
        return _number(entry_id, field, gap["value"]), gap_type, field
    bse = _first(electronic.get("band_structure_electronic"))
    gap = _first(bse.get("band_gap")) if bse is not None else None
    if gap is not None and gap.get("value") is not None:
        field = f"{BAND_GAP_DEPRECATED_PATH}[0].band_gap[0].value"
        type_field = f"{BAND_GAP_DEPRECATED_PATH}[0].band_gap[0].type"
        return _number(entry_id, field, gap["value"]), _text(entry_id, type_field, gap.get("type")), field
    return None, None, None


def _note_gap(notes: Counter | None, source: str | None) -> None:
    if notes is None:
        return
    if source is None:
        notes["band_gap_missing"] += 1
    elif source.startswith(BAND_GAP_DEPRECATED_PATH):
        notes["band_gap_from_deprecated_path"] += 1


def flatten_psc_entry(entry: Mapping[str, Any], notes: Counter | None = None) -> dict[str, Any]:
    """One NOMAD solar-cell entry -> one row with keys exactly ``schema.PSC_COLUMNS``.

    ``band_gap_eV`` = ``results.properties.electronic.band_gap[0].value`` (J) / e, falling
    back to ``band_structure_electronic[0].band_gap[0].value`` (either may be a list or a
    dict). Efficiency in %, Voc in V, Jsc in A/m^2, fill factor 0..1 (as NOMAD serves them).
    Layer lists are joined with ``|``; elements with a space, in NOMAD's order. Missing
    values are None (an empty CSV cell), never invented.

    Args:
        entry: one item of a response's ``data``.
        notes: optional counter; receives ``band_gap_missing`` / ``band_gap_from_deprecated_path``.

    Raises:
        ValueError: malformed entry, naming the entry_id and the field (e.g. a gap that is
            not a number).
    """
    entry_id = _entry_id(entry)
    results = entry.get("results") or {}
    material = _section(results, "material")
    electronic = _section(results, "properties", "electronic")
    solar = _section(results, "properties", "optoelectronic", "solar_cell")
    gap_J, _type, source = _band_gap(entry_id, electronic)
    _note_gap(notes, source)
    return {
        "entry_id": entry_id,
        "formula_reduced": _text(
            entry_id, "results.material.chemical_formula_reduced", material.get("chemical_formula_reduced")
        ),
        "formula_descriptive": _text(
            entry_id, "results.material.chemical_formula_descriptive", material.get("chemical_formula_descriptive")
        ),
        "elements": _joined(entry_id, "results.material.elements", material.get("elements"), " "),
        "band_gap_eV": None if gap_J is None else joule_to_ev(gap_J),
        "efficiency_pct": _number(entry_id, f"{_SOLAR}.efficiency", solar.get("efficiency")),
        "open_circuit_voltage_V": _number(
            entry_id, f"{_SOLAR}.open_circuit_voltage", solar.get("open_circuit_voltage")
        ),
        "short_circuit_current_density_A_per_m2": _number(
            entry_id, f"{_SOLAR}.short_circuit_current_density", solar.get("short_circuit_current_density")
        ),
        "fill_factor": _number(entry_id, f"{_SOLAR}.fill_factor", solar.get("fill_factor")),
        "device_stack": _joined(entry_id, f"{_SOLAR}.device_stack", solar.get("device_stack"), "|"),
        "hole_transport_layer": _joined(
            entry_id, f"{_SOLAR}.hole_transport_layer", solar.get("hole_transport_layer"), "|"
        ),
        "electron_transport_layer": _joined(
            entry_id, f"{_SOLAR}.electron_transport_layer", solar.get("electron_transport_layer"), "|"
        ),
    }


flatten_psc_entry.conversions = {  # type: ignore[attr-defined]
    "band_gap_eV": "results.properties.electronic.band_gap[0].value (J) / scipy.constants.e "
    "(1.602176634e-19 C); fallback band_structure_electronic[0].band_gap[0].value",
    "efficiency_pct, open_circuit_voltage_V, short_circuit_current_density_A_per_m2, fill_factor": (
        "unchanged (NOMAD units: %, V, A/m^2, fraction)"
    ),
    "device_stack, hole_transport_layer, electron_transport_layer": "lists joined with '|'",
    "elements": "list joined with ' ' in NOMAD's order",
}


def flatten_dft_entry(entry: Mapping[str, Any], notes: Counter | None = None) -> dict[str, Any]:
    """One NOMAD computed-material entry -> one row with keys exactly ``schema.DFT_COLUMNS``.

    ``volume_A3`` = ``structure_original.cell_volume`` (m^3) * 1e30; ``band_gap_eV`` as in
    :func:`flatten_psc_entry` (J / e), ``band_gap_type`` from the same band-gap section;
    ``n_elements`` = len(elements); ``n_sites`` = ``structure_original.n_sites``, or, for
    older entries without it, the length of ``species_at_sites`` (one label per site;
    counted in ``notes['n_sites_from_species_at_sites']``); ``source`` = ``"NOMAD"``.

    Raises:
        ValueError: malformed entry, naming the entry_id and the field.
    """
    entry_id = _entry_id(entry)
    results = entry.get("results") or {}
    material = _section(results, "material")
    symmetry = _section(results, "material", "symmetry")
    structure = _section(results, "properties", "structures", "structure_original")
    dft = _section(results, "method", "simulation", "dft")
    electronic = _section(results, "properties", "electronic")
    gap_J, gap_type, source = _band_gap(entry_id, electronic)
    _note_gap(notes, source)
    elements = material.get("elements")
    n_sites = _integer(entry_id, f"{_STRUCT}.n_sites", structure.get("n_sites"))
    if n_sites is None and isinstance(structure.get("species_at_sites"), list):
        n_sites = len(structure["species_at_sites"])
        if notes is not None:
            notes["n_sites_from_species_at_sites"] += 1
    volume_m3 = _number(entry_id, f"{_STRUCT}.cell_volume", structure.get("cell_volume"))
    return {
        "entry_id": entry_id,
        "formula_reduced": _text(
            entry_id, "results.material.chemical_formula_reduced", material.get("chemical_formula_reduced")
        ),
        "elements": _joined(entry_id, "results.material.elements", elements, " "),
        "n_elements": len(elements) if isinstance(elements, list) else None,
        "crystal_system": _text(entry_id, "results.material.symmetry.crystal_system", symmetry.get("crystal_system")),
        "space_group_number": _integer(
            entry_id, "results.material.symmetry.space_group_number", symmetry.get("space_group_number")
        ),
        "space_group_symbol": _text(
            entry_id, "results.material.symmetry.space_group_symbol", symmetry.get("space_group_symbol")
        ),
        "n_sites": n_sites,
        "volume_A3": None if volume_m3 is None else m3_to_a3(volume_m3),
        "xc_functional_type": _text(
            entry_id, "results.method.simulation.dft.xc_functional_type", dft.get("xc_functional_type")
        ),
        "band_gap_eV": None if gap_J is None else joule_to_ev(gap_J),
        "band_gap_type": gap_type,
        "source": "NOMAD",
    }


flatten_dft_entry.conversions = {  # type: ignore[attr-defined]
    "band_gap_eV": "band_gap[0].value (J) / scipy.constants.e; fallback band_structure_electronic[0].band_gap[0].value",
    "volume_A3": "structure_original.cell_volume (m^3) * 1e30",
    "n_sites": "structure_original.n_sites; fallback len(structure_original.species_at_sites)",
    "n_elements": "len(results.material.elements)",
}
