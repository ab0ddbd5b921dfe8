"""Helper package of the band-gap course.

Import the module you need (``from helpers import nomad, schema``); importing the
package itself loads nothing else, so a notebook pays only for what it uses.
One module per concept:

- :mod:`helpers.config`   paths, quick/full switch, seeds, CPU threads
- :mod:`helpers.device`   the GPU probe and the CUDA -> MPS -> CPU choice
- :mod:`helpers.fileio`   atomic file writes, the file lock, sha256, CSV reading with clear errors
- :mod:`helpers.schema`   column names and file names of the course's CSVs
- :mod:`helpers.nomad`    NOMAD ``/entries/query`` client (cursor pagination, retries, locked resumable pulls)
- :mod:`coursetools.nomad_standin`  local HTTP stand-in for NOMAD serving recorded entries
- :mod:`coursetools.nomad_faults`   fault injection for the stand-in (tests only)
- :mod:`coursetools.datasource` live NOMAD or the recorded snapshot on the stand-in
- :mod:`coursetools.course_data` the frozen course data release in data/release/ (built by scripts/build_course_data.py)
- :mod:`helpers.mp_data`  the committed Materials Project set: path, manifest, columns, reader
- :mod:`coursetools.mp_build` building that set (scripts/build_mp_dataset.py and tests only)
- :mod:`helpers.formulas` formula parsing, abbreviations, normalized formulas (the one formula parser)
- :mod:`helpers.units`    every unit conversion (J <-> eV, A/m^2 <-> mA/cm^2, m^3 <-> A^3)
- :mod:`helpers.symmetry` crystal system and symbol from a space-group number, spglib space groups
- :mod:`helpers.robocrys_data` robocrys descriptions of a stratified MP sample (built by scripts/build_robocrys_descriptions.py)
- :mod:`helpers.cleaning` lesson 02: loading, missing values, duplicates, formula checks, outliers
- :mod:`helpers.elements` element statistics
- :mod:`helpers.plotting` periodic-table heatmap and other figures (inline display of Figures)
- :mod:`helpers.solar`    Shockley-Queisser efficiency limit from the ASTM G173-03 AM1.5G spectrum (pvlib)
- :mod:`helpers.composition` formulas as model inputs (fractions, chemical system, CrabNet spelling)
- :mod:`helpers.splits`   random and chemical-system-held-out splits, leakage checks
- :mod:`helpers.descriptions` materials as text (structured, natural, composition, robocrys) with feature spans
- :mod:`helpers.text_models` encoders by name, shipped RoBERTa, regression head, YAML config, training loop
- :mod:`helpers.baselines` mean/median and random forest on Magpie/Oliynyk features
- :mod:`helpers.crabnet` CrabNet wrapper: configs, guards, fit, safe checkpoints
- :mod:`helpers.evaluation` metrics, parity/residual/calibration plots
- :mod:`helpers.interpret` lesson 05: pooled embeddings, t-SNE, kNN scores, attention per feature category, occlusion
- :mod:`helpers.interpret_plots` lesson 05's figures (embedding maps, attention heatmaps, CrabNet attention)
- :mod:`helpers.crabnet.attention` CrabNet's element-to-element attention (hooks) and learned element embeddings
- :mod:`helpers.predictor` formula -> band gap +- uncertainty, as a function and a widget
- :mod:`helpers.lesson`   StopLesson: stop a notebook with a message, not a traceback
- :mod:`coursetools.readiness` the first cell: one-line environment check with the fix
- :mod:`exercises.checks`    automatic checks of the exercises, and the quiz
- :mod:`coursetools.assignments` student/instructor versions (``python -m coursetools.assignments``)
- :mod:`coursetools.slides`   slide metadata and offline reveal.js export (``python -m coursetools.slides``)
- :mod:`coursetools.expected_outputs`  expected outputs of ``# NBVAL_CHECK_OUTPUT`` cells
- :mod:`coursetools.course`   headless course runner (``python -m coursetools.course``)
"""
