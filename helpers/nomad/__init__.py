"""NOMAD for the lesson: query bodies, the client, entries flattened into rows, resumable pulls.

What a notebook calls::

    from helpers import nomad, schema
    client = nomad.NomadClient(nomad.NOMAD_BASE_URL)
    result = nomad.pull_to_csv(client, nomad.psc_query(), out_csv,
                               nomad.flatten_psc_entry, schema.PSC_COLUMNS)

Three modules, one job each; every name a notebook uses is importable from here:

- :mod:`helpers.nomad.client`  ``POST /entries/query``: query bodies (:func:`psc_query`, :func:`dft_query`),
  :class:`NomadClient` (paging, retries, NOMAD's errors), :func:`nomad_reachable`, :func:`include_cost`
- :mod:`helpers.nomad.records` the fields a pull transfers (:data:`PSC_INCLUDE`, :data:`DFT_INCLUDE`) and
  :func:`flatten_psc_entry` / :func:`flatten_dft_entry` (one entry -> one row, SI -> course units)
- :mod:`helpers.nomad.pull`    :func:`pull_to_csv`: the locked, resumable download engine with its manifest
"""

from __future__ import annotations

from .client import (
    NOMAD_BASE_URL,
    NOMAD_MAX_PAGE_SIZE,
    DEFAULT_PAGE_SIZE,
    RETRY_STATUSES,
    NomadError,
    NomadAPIError,
    NomadRetryError,
    NomadProtocolError,
    psc_query,
    dft_query,
    DEFAULT_MAX_RETRY_AFTER,
    NomadClient,
    nomad_reachable,
    include_cost,
)
from .records import (
    SOLAR_CELL_SECTION,
    BAND_GAP_PATH,
    BAND_GAP_DEPRECATED_PATH,
    PSC_INCLUDE,
    DFT_INCLUDE,
    flatten_psc_entry,
    flatten_dft_entry,
)
from .pull import (
    body_sha256,
    pull_paths,
    PullResult,
    PullLockedError,
    Flattener,
    PullState,
    pull_to_csv,
)
