"""Helper package of the band-gap course.

One module per concept:

- :mod:`helpers.config`   paths, quick/full switch, seeds, CPU threads
- :mod:`helpers.device`   CUDA -> MPS -> CPU choice and workload scaling
- :mod:`helpers.nomad`    NOMAD ``/entries/query`` client (cursor pagination, retries, resume)
- :mod:`helpers.nomad_standin`  local HTTP stand-in for NOMAD serving recorded entries
- :mod:`helpers.mp_dataset` Materials Project computed-materials set (built by scripts/build_mp_dataset.py)
- :mod:`helpers.cleaning` units, missing values, duplicates, formulas, outliers
- :mod:`helpers.elements` element statistics
- :mod:`helpers.plotting` periodic-table heatmap and other figures
- :mod:`helpers.crabnet_tools` CrabNet wrapper, baselines, splits, predictor
- :mod:`helpers.course`   headless course runner (``python -m helpers.course``)
"""

__all__ = ["config", "device"]
