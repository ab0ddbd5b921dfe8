"""Helper package of the band-gap course.

One module per concept:

- :mod:`helpers.config`   paths, quick/full switch, seeds, CPU threads
- :mod:`helpers.device`   CUDA -> MPS -> CPU choice and workload scaling
- :mod:`helpers.nomad`    NOMAD ``/entries/query`` client (cursor pagination, retries, resume)
- :mod:`helpers.nomad_standin`  local HTTP stand-in for NOMAD serving recorded entries
- :mod:`helpers.mp_dataset` Materials Project computed-materials set (built by scripts/build_mp_dataset.py)
- :mod:`helpers.robocrys_data` robocrys descriptions of a stratified MP sample (built by scripts/build_robocrys_descriptions.py)
- :mod:`helpers.cleaning` units, missing values, duplicates, formulas, outliers
- :mod:`helpers.elements` element statistics
- :mod:`helpers.plotting` periodic-table heatmap and other figures
- :mod:`helpers.composition` formulas as model inputs (fractions, chemical system, CrabNet spelling)
- :mod:`helpers.splits`   random and chemical-system-held-out splits, leakage checks
- :mod:`helpers.baselines` mean/median and random forest on Magpie/Oliynyk features
- :mod:`helpers.crabnet_tools` CrabNet wrapper: configs, guards, fit, safe checkpoints
- :mod:`helpers.evaluation` metrics, parity/residual/calibration plots
- :mod:`helpers.predictor` formula -> band gap +- uncertainty, as a function and a widget
- :mod:`helpers.datasource` live NOMAD or the recorded snapshot on the stand-in
- :mod:`helpers.fileio`   sha256 of files for manifests
- :mod:`helpers.lesson`   StopLesson: stop a notebook with a message, not a traceback
- :mod:`helpers.nbcheck`  expected outputs of ``# NBVAL_CHECK_OUTPUT`` cells
- :mod:`helpers.course`   headless course runner (``python -m helpers.course``)
"""

__all__ = ["config", "device"]
