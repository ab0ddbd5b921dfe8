"""Reading the recorded NOMAD data in ``../shared/data/nomad`` into entries shaped as NOMAD serves them.

Three recordings (see ``data/README.md``): the 43,108-row perovskite export
(:func:`psc_snapshot_entries`, one entry per row via :func:`export_row_to_entry`), the
60 genuine perovskite device entries (:func:`psc_exact_entries`) and the 200 computed
materials (:func:`dft_entries`). The NOMAD stand-in (:mod:`coursetools.nomad_standin`) serves
them; the course data release (:mod:`coursetools.course_data`) is built from them.
"""

from __future__ import annotations

import csv
import gzip
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from helpers import config
from helpers.formulas import symbols_in
from helpers.units import tutorial_ev_to_joule

#: Recordings below the NOMAD data folder (``config.nomad_data_dir()``).
PSC_EXPORT_CSV = "perovskite_solar_cells/perovskite_bandgap_devices_2025-02.csv"
PSC_EXACT_JSON = "perovskite_solar_cells/psc_60_results_sections.json.gz"
DFT_JSON = "dft_materials/dft_200_results_sections.json.gz"

#: NOMAD's section name of solar-cell results (as recorded in the ``sections`` of the 60 device entries).
SOLAR_CELL_SECTION = "nomad.datamodel.results.SolarCell"

_SECTION_CLASSES = {
    "material": "Material",
    "material.symmetry": "Symmetry",
    "method": "Method",
    "method.simulation": "Simulation",
    "properties": "Properties",
    "properties.electronic": "ElectronicProperties",
    "properties.optoelectronic": "OptoelectronicProperties",
    "properties.optoelectronic.solar_cell": "SolarCell",
    "properties.structures": "Structures",
}


class NomadDataMissingError(FileNotFoundError):
    """The recorded NOMAD data folder (or one of its files) is not where it was looked for."""


def data_file(nomad_dir: str | Path | None, relative: str) -> Path:
    base = Path(nomad_dir) if nomad_dir is not None else config.nomad_data_dir()
    path = base / relative
    if not path.is_file():
        raise NomadDataMissingError(
            f"recorded NOMAD data not found: {path} does not exist. Set BANDGAP_NOMAD_DATA to the "
            "folder that holds perovskite_solar_cells/ and dft_materials/, or place the shared "
            "folder beside the checkout (../shared/data/nomad)."
        )
    return path


def _sections_for(results: Mapping[str, Any], *extra: str) -> list[str]:
    """NOMAD-style ``sections`` list derived from which results sub-sections are present."""
    found = {"nomad.datamodel.results.Results", *extra}
    for dotted, cls in _SECTION_CLASSES.items():
        node: Any = results
        for key in dotted.split("."):
            node = node.get(key) if isinstance(node, Mapping) else None
        if node:
            found.add(f"nomad.datamodel.results.{cls}")
    return sorted(found)


def export_row_to_entry(row: Mapping[str, str], index: int) -> dict[str, Any]:
    """Map one row of the tutorial's CSV export back to NOMAD's entry shape.

    ``row`` has the export's columns ``reduced_formulas``, ``descriptive_formulas``,
    ``bandgap`` (eV, converted by the tutorial with 6.24150974e18; empty = no gap).

    * ``entry_id`` = ``psc-export-{index:05d}`` (deterministic; sorts like the rows).
    * ``results.material.{chemical_formula_reduced, chemical_formula_descriptive,
      elements}``, elements read from the reduced formula by :func:`helpers.formulas.symbols_in`
      (alphabetical, as NOMAD lists them).
    * The gap goes back to joules with the export's *own* factor,
      ``J = bandgap / 6.24150974e18`` (:func:`helpers.units.tutorial_ev_to_joule`), i.e. exactly the joule value NOMAD served.
      The client's exact conversion (J / e) then yields the clean value: 1.6000001706
      in the export -> 1.6 eV. It is stored at ``results.properties.electronic.band_gap[0].value``
      and at the deprecated ``band_structure_electronic[0].band_gap[0].value``;
      no gap -> no electronic section at all.
    * ``sections`` includes ``nomad.datamodel.results.SolarCell`` (the export came from
      the solar-cell query). The export has no device fields (efficiency, Voc, Jsc, FF,
      layers): they are left absent, not invented.
    """
    material: dict[str, Any] = {}
    reduced = (row.get("reduced_formulas") or "").strip()
    descriptive = (row.get("descriptive_formulas") or "").strip()
    if reduced:
        material["elements"] = symbols_in(reduced)  # as written, even for a formula NOMAD could not parse
        material["chemical_formula_reduced"] = reduced
    if descriptive:
        material["chemical_formula_descriptive"] = descriptive
    results: dict[str, Any] = {"material": material} if material else {}
    gap = (row.get("bandgap") or "").strip()
    if gap:
        value_J = tutorial_ev_to_joule(float(gap))
        results["properties"] = {
            "electronic": {
                "band_gap": [{"value": value_J}],
                "band_structure_electronic": [{"band_gap": [{"value": value_J}]}],
            }
        }
    return {
        "entry_id": f"psc-export-{index:05d}",
        "results": results,
        "sections": _sections_for(results, SOLAR_CELL_SECTION),
    }


def psc_snapshot_entries(nomad_dir: str | Path | None = None) -> list[dict[str, Any]]:
    """All 43,108 rows of the tutorial's perovskite export as NOMAD entries (see
    :func:`export_row_to_entry`). ``nomad_dir`` defaults to ``config.nomad_data_dir()``.

    Raises:
        NomadDataMissingError: the export is not there (message says where and what to do).
    """
    path = data_file(nomad_dir, PSC_EXPORT_CSV)
    with open(path, newline="", encoding="utf-8") as fh:
        return [export_row_to_entry(row, i) for i, row in enumerate(csv.DictReader(fh))]


def psc_exact_entries(nomad_dir: str | Path | None = None) -> list[dict[str, Any]]:
    """The 60 genuine NOMAD solar-cell entries (with device fields), plus ``sections``.

    Entry ids are the recording's local ids (``local-<ID>``); ``results`` is untouched.
    """
    path = data_file(nomad_dir, PSC_EXACT_JSON)
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        raw = json.load(fh)
    return [
        {
            "entry_id": item["entry_id"],
            "mainfile": item.get("mainfile"),
            "results": item["results"],
            "sections": _sections_for(item["results"], SOLAR_CELL_SECTION),
        }
        for item in raw
    ]


def dft_entries(nomad_dir: str | Path | None = None) -> list[dict[str, Any]]:
    """The 200 recorded computed-material results sections as NOMAD entries.

    Each becomes ``{entry_id: "local-dft-<key:03d>", results, sections}``. ``results``
    keeps NOMAD's ``material``, ``method`` and ``properties``; the recording's extra
    top-level keys added by matsciml (``energies``, ``reference_energy``,
    ``reference_structure``, ``relative_energy``) are not part of NOMAD's results and
    are dropped. ``properties.electronic.band_structure_electronic`` and
    ``dos_electronic`` are dicts in the recording and become one-element lists, the
    shape ``/entries/query`` returns.
    """
    path = data_file(nomad_dir, DFT_JSON)
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        raw = json.load(fh)
    entries = []
    for key in sorted(raw, key=int):
        results = {k: raw[key][k] for k in ("material", "method", "properties") if k in raw[key]}
        electronic = results.get("properties", {}).get("electronic", {})
        for name in ("band_structure_electronic", "dos_electronic"):
            if isinstance(electronic.get(name), dict):
                electronic[name] = [electronic[name]]
        entries.append(
            {"entry_id": f"local-dft-{int(key):03d}", "results": results, "sections": _sections_for(results)}
        )
    return entries
