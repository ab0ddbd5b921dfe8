"""Course tooling: what builds, checks, serves and presents the course (not what a student reads).

Imports :mod:`helpers` (the lesson API); :mod:`helpers` never imports this package.

- :mod:`coursetools.nomad_standin`   local HTTP stand-in for NOMAD serving recorded entries
- :mod:`coursetools.nomad_recordings` reading the recorded NOMAD data (../shared/data/nomad) into entries
- :mod:`coursetools.nomad_quantities.json` (data) the NOMAD fields the stand-in knows, recorded, never from the client
- :mod:`coursetools.nomad_faults`    fault injection for the stand-in (tests only)
- :mod:`coursetools.course_data`     the frozen course data release in data/release/ (built by scripts/build_course_data.py)
- :mod:`coursetools.datasource`      live NOMAD or the recorded snapshot on the stand-in (notebook 01)
- :mod:`coursetools.mp_build`        building the committed Materials Project set (scripts/build_mp_dataset.py)
- :mod:`coursetools.readiness`       the first cell of every notebook: one-line environment check with the fix
- :mod:`coursetools.expected_outputs` expected outputs of cells tagged ``nbval-check-output``
- :mod:`coursetools.slides`          slide metadata and offline reveal.js export (``python -m coursetools.slides``)
- :mod:`coursetools.assignments`     student/instructor versions (``python -m coursetools.assignments``)
- :mod:`coursetools.pretraining`     tokenizer training and masking for the shipped small RoBERTa (scripts/pretrain_text_encoder.py)
- :mod:`coursetools.course`          headless course runner (``python -m coursetools.course``)
"""
