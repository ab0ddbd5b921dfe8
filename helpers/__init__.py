"""The lesson API of the band-gap course: the tested functions the notebooks call, and what a student reads.

Import the module you need (``from helpers import nomad, cleaning``); importing the
package itself loads nothing else, so a notebook pays only for what it uses.

Two packages sit beside this one and may import it, never the reverse
(``tests/test_architecture.py`` enforces it):

- :mod:`exercises`   the exercise checks (``exercises.checks``) and the quiz, stored as data (``exercises.quiz``)
- :mod:`coursetools` what builds, serves, checks and presents the course: the NOMAD stand-in and the
  data release notebook 01 replays offline, the first cell's environment check, dataset builders,
  expected outputs, slides, student/instructor versions, the headless course runner

One home per concept:

Runtime settings
- :mod:`helpers.config`   every ``BANDGAP_*`` variable: paths, quick/full mode, seeds, the validated CPU thread
  count, the one device probe (CUDA -> MPS -> CPU, ``select_device``), NOMAD offline switch, model store layout
- :mod:`helpers.model_store` the one checked loader of every saved model, by kind (``load_checkpoint``)
- :mod:`helpers.checkpoint_checks` the checks every checkpoint loader shares (``CheckpointError``, finite weights, target scale > 0)
- :mod:`helpers.fileio`   atomic file writes, the file lock, sha256, CSV reading with clear errors
- :mod:`helpers.lesson`   StopLesson (stop a notebook with a message), ``require_file``, ``ProgressLine``, ``claim``/``claim_either`` (sentences about this run, checked on the run)

Data (lessons 01-02)
- :mod:`helpers.nomad`    NOMAD: client and query bodies, entries -> rows, resumable pulls (sub-package)
- :mod:`helpers.schema`   column names and file names of the course's CSVs
- :mod:`helpers.mp_data`  the committed Materials Project set: path, manifest, columns, reader
- :mod:`helpers.robocrys_data` robocrys descriptions of a stratified MP sample (reader and sampling rule)
- :mod:`helpers.formulas` the one formula parser: abbreviations, element amounts, normalized formulas
- :mod:`helpers.composition` formulas as model inputs: validated atomic fractions, chemical system, CrabNet spelling
- :mod:`helpers.units`    every unit conversion (J <-> eV, A/m^2 <-> mA/cm^2, m^3 <-> A^3)
- :mod:`helpers.symmetry` crystal system and symbol from a space-group number, spglib space groups
- :mod:`helpers.cleaning` lesson 02: loading, missing values, duplicates, formula checks, outliers
- :mod:`helpers.elements` element statistics
- :mod:`helpers.solar`    Shockley-Queisser efficiency limit from the ASTM G173-03 AM1.5G spectrum (pvlib)

Models (lessons 03-05)
- :mod:`helpers.splits`   random and chemical-system-held-out splits, leakage checks
- :mod:`helpers.baselines` mean/median and random forest on Magpie/Oliynyk features
- :mod:`helpers.crabnet`  CrabNet: configs, model (fit, predict, save, load), checkpoint checks, crabnet 2.0.8
  guards, element attention (sub-package)
- :mod:`helpers.predictor` formula -> band gap +- uncertainty, as a function and a widget
- :mod:`helpers.descriptions` materials as text (structured, natural, composition, robocrys) with feature spans
- :mod:`helpers.text_models` encoders by name, shipped RoBERTa, regression head, YAML config, training loop,
  pooled embeddings
- :mod:`helpers.interpret` lesson 05: t-SNE, kNN scores, attention per feature category, occlusion

Figures live beside the numbers they show, and every one is saved with ``plotting.save_figure``:
- :mod:`helpers.plotting` data figures of lessons 01-02 (histograms, periodic-table and co-occurrence heatmaps)
- :mod:`helpers.evaluation` model scores and their figures (metrics, parity/residual/calibration plots, tables)
- :mod:`helpers.interpret_plots` lesson 05's figures (embedding maps, attention heatmaps, CrabNet attention)
"""
