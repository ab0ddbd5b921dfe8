"""Robocrystallographer descriptions of a stratified sample of the Materials Project set.

`robocrys <https://github.com/hackingmaterials/robocrystallographer>`_ turns a
crystal structure into a paragraph about coordination environments,
polyhedral connectivity and bond lengths, e.g. *"Si is diamond structured ...
Si(1) is bonded to four equivalent Si(1) atoms to form corner-sharing SiSi4
tetrahedra. All Si(1)-Si(1) bond lengths are 2.37 A."* It costs seconds per
structure, so ``scripts/build_robocrys_descriptions.py`` (in a build-only
environment, ``requirements-build.txt``) runs it once on a fixed, seeded,
stratified sample of ``data/mp_computed_materials.csv`` and commits
``data/mp_robocrys_descriptions.csv.gz`` with a manifest. This module holds
the sample rule (used by the builder, tested here) and the reading side.

Sample rule (:func:`stratum_quotas`, :func:`candidate_order`): a stratum is
(crystal system, metal or not), a *metal* being a material with a band gap of
exactly 0 eV. Each of the 14 strata gets a quota of the ``target`` in
proportion to its size (largest remainders), but at least
``min(floor, stratum size)``. Candidates are visited in one seeded order that
keeps every prefix stratified: within a stratum a seeded permutation; across
strata first one candidate of each stratum, then by the fraction of the
stratum's quota a candidate would fill. The
builder describes candidates in that order and keeps, per stratum, the first
``quota`` successes; a failed candidate is replaced by the next one of its
stratum.
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import config, fileio
from .mp_data import read_dataset_csv
from .symmetry import CRYSTAL_SYSTEMS

#: Committed file name (in ``<repo>/data``) and its manifest.
ROBOCRYS_FILE = "mp_robocrys_descriptions.csv.gz"
ROBOCRYS_MANIFEST = "mp_robocrys_descriptions.manifest.json"
#: Columns of the committed file, in order.
ROBOCRYS_COLUMNS: tuple[str, ...] = ("entry_id", "formula", "robocrys_text", "n_chars")

#: Default sample size, seed and per-stratum floor of the committed build.
DEFAULT_TARGET = 1000
DEFAULT_SEED = 0
DEFAULT_FLOOR = 25


def metal_label(band_gap_eV: float) -> str:
    """``"metal"`` for a band gap of exactly 0 eV, else ``"nonmetal"``."""
    return "metal" if float(band_gap_eV) == 0.0 else "nonmetal"


def strata(frame: pd.DataFrame) -> pd.Series:
    """Stratum label ``"<crystal_system>/<metal|nonmetal>"`` of every row of an MP frame.

    Needs the columns ``crystal_system`` and ``band_gap_eV`` (eV).
    """
    return frame["crystal_system"].astype(str) + "/" + frame["band_gap_eV"].map(metal_label)


def stratum_quotas(frame: pd.DataFrame, target: int = DEFAULT_TARGET, floor: int = DEFAULT_FLOOR) -> dict[str, int]:
    """Number of materials to describe per stratum (see the module docstring).

    Proportional to stratum size by largest remainders, at least
    ``min(floor, size)`` each; the quotas sum to ``target`` (or to the number
    of rows, when there are fewer). Keys are ordered by crystal system, then
    metal before non-metal.

    Raises:
        ValueError: if ``target`` or ``floor`` is negative, or the floors
            alone exceed ``target``.
    """
    if target < 0 or floor < 0:
        raise ValueError(f"target and floor must be >= 0, got target={target}, floor={floor}")
    sizes = strata(frame).value_counts()
    order = [f"{cs}/{m}" for cs in CRYSTAL_SYSTEMS for m in ("metal", "nonmetal") if f"{cs}/{m}" in sizes.index]
    sizes = sizes[order]
    target = min(target, int(sizes.sum()))
    quotas = {name: min(floor, int(size)) for name, size in sizes.items()}
    if sum(quotas.values()) > target:
        raise ValueError(f"floors ({sum(quotas.values())} rows) exceed the target {target}")
    # Proportional shares, raised to the floor, by largest remainders until the target is met.
    share = sizes / sizes.sum() * target
    for name in order:
        quotas[name] = max(quotas[name], min(int(np.floor(share[name])), int(sizes[name])))
    while sum(quotas.values()) > target:  # floors pushed us over: take from the largest quota
        name = max(order, key=lambda n: (quotas[n] - share[n], quotas[n]))
        quotas[name] -= 1
    remainders = sorted(order, key=lambda n: (-(share[n] - np.floor(share[n])), order.index(n)))
    i = 0
    while sum(quotas.values()) < target:
        name = remainders[i % len(remainders)]
        if quotas[name] < sizes[name]:
            quotas[name] += 1
        i += 1
    return quotas


def candidate_order(frame: pd.DataFrame, quotas: dict[str, int], seed: int = DEFAULT_SEED) -> pd.DataFrame:
    """All rows of ``frame`` in the builder's visiting order, with ``stratum`` and ``rank_in_stratum``.

    Within a stratum: a permutation by ``numpy.random.default_rng(seed)``
    (strata drawn in the order of ``quotas``). Across strata: first the
    first candidate of every stratum (in ``quotas`` order), so a partial
    build covers every stratum as early as possible; then ascending
    ``(rank + 0.5) / quota``, so any prefix of the order stays close to the
    quotas' proportions. Rows of a stratum with quota 0 come last.
    """
    rng = np.random.default_rng(seed)
    labels = strata(frame)
    parts = []
    for name, quota in quotas.items():
        members = frame.index[labels == name].to_numpy()
        permuted = members[rng.permutation(len(members))]
        rank = np.arange(len(permuted))
        key = (rank + 0.5) / quota if quota > 0 else np.full(len(permuted), np.inf)
        if quota > 0 and len(key):
            key[0] = -1.0  # the first candidate of every stratum comes first: all strata after 14 successes
        parts.append(pd.DataFrame({"_row": permuted, "stratum": name, "rank_in_stratum": rank, "_key": key}))
    order = pd.concat(parts, ignore_index=True)
    order["_stratum_order"] = order["stratum"].map({n: i for i, n in enumerate(quotas)})
    order = order.sort_values(["_key", "_stratum_order"], kind="stable")
    out = frame.loc[order["_row"]].copy()
    out["stratum"] = order["stratum"].to_numpy()
    out["rank_in_stratum"] = order["rank_in_stratum"].to_numpy()
    return out.reset_index(drop=True)


# --------------------------------------------------------------------------- reading


def committed_path() -> Path:
    """The committed file: ``<repo>/data/mp_robocrys_descriptions.csv.gz`` (versioned, not under BANDGAP_DATA_DIR)."""
    return config.REPO_ROOT / "data" / ROBOCRYS_FILE


def read_manifest(path: str | Path | None = None) -> dict[str, Any]:
    """The manifest JSON beside the descriptions file (default: the committed one).

    Raises:
        FileNotFoundError: no manifest there.
        ValueError: the manifest is not UTF-8 JSON or not an object (names the file,
            and the line and column of a JSON error).
    """
    csv_path = committed_path() if path is None else Path(path)
    manifest_file = csv_path.parent / ROBOCRYS_MANIFEST
    manifest = fileio.read_json(manifest_file)
    if not isinstance(manifest, dict):
        raise ValueError(f"{manifest_file}: expected a JSON object, got {type(manifest).__name__}")
    return manifest


def read_robocrys_descriptions(path: str | Path | None = None) -> pd.DataFrame:
    """Read the descriptions file (default: :func:`committed_path`).

    Columns :data:`ROBOCRYS_COLUMNS`: ``entry_id`` (Materials Project id),
    ``formula`` (reduced formula), ``robocrys_text`` (the description) and
    ``n_chars`` (its length in characters).

    Raises:
        ValueError: on other columns, a duplicate ``entry_id``, an empty text
            or an ``n_chars`` that does not match its text (naming the row).
    """
    path = committed_path() if path is None else Path(path)
    with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
        frame = pd.read_csv(fh, dtype={"entry_id": str, "formula": str, "robocrys_text": str}, keep_default_na=False)
    if tuple(frame.columns) != ROBOCRYS_COLUMNS:
        raise ValueError(f"{path}: expected columns {list(ROBOCRYS_COLUMNS)}, got {list(frame.columns)}")
    duplicated = frame["entry_id"][frame["entry_id"].duplicated()]
    if len(duplicated):
        raise ValueError(f"{path}: duplicate entry_id {duplicated.iloc[0]!r}")
    for i, (entry_id, text, n_chars) in enumerate(zip(frame["entry_id"], frame["robocrys_text"], frame["n_chars"])):
        if not text.strip():
            raise ValueError(f"{path}: row {i} ({entry_id}) has an empty robocrys_text")
        if len(text) != int(n_chars):
            raise ValueError(f"{path}: row {i} ({entry_id}) n_chars {n_chars} != len(text) {len(text)}")
    return frame


def load_robocrys_with_mp(path: str | Path | None = None, mp_path: str | Path | None = None) -> pd.DataFrame:
    """Descriptions joined to their Materials Project rows by ``entry_id``.

    Returns the MP columns (:data:`helpers.schema.DFT_COLUMNS`, band gap in eV,
    volume in cubic angstrom) plus ``robocrys_text`` and ``n_chars``, one row
    per description, in the descriptions file's order.

    Raises:
        ValueError: if a description's ``entry_id`` is not in the MP file, or
            its formula differs from the MP row's ``formula_reduced``.
    """
    descriptions = read_robocrys_descriptions(path)
    materials = read_dataset_csv(mp_path)
    missing = descriptions.loc[~descriptions["entry_id"].isin(materials["entry_id"]), "entry_id"]
    if len(missing):
        raise ValueError(f"{len(missing)} described entry_ids are not in the MP file, e.g. {missing.iloc[0]!r}")
    joined = descriptions.merge(materials, on="entry_id", how="left", validate="one_to_one")
    mismatch = joined[joined["formula"] != joined["formula_reduced"]]
    if len(mismatch):
        row = mismatch.iloc[0]
        raise ValueError(
            f"{row['entry_id']}: formula {row['formula']!r} != MP formula_reduced {row['formula_reduced']!r}"
        )
    return joined[list(materials.columns) + ["robocrys_text", "n_chars"]]


_NUMPY_SCALAR_REPR = re.compile(r"np\.(?:int|uint|float)\d*\((-?\d+(?:\.\d+)?)\)")


def repair_numpy_reprs(text: str) -> str:
    """Undo numpy-2 scalar reprs in a robocrys text: ``np.int64(0)`` -> ``0``.

    robocrys 0.2.13 formats a layer orientation with ``str(tuple)``, which
    under numpy 2 reads ``(np.int64(0), np.int64(0), np.int64(1)) direction``;
    the intended text is ``(0, 0, 1) direction``. Nothing else is changed.
    """
    return _NUMPY_SCALAR_REPR.sub(r"\1", text)
