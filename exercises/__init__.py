"""Exercise checks and the quiz of the five lessons (imports :mod:`helpers`, never the reverse).

- :mod:`exercises.checks` one automatic check per exercise, ``checks.ex_<lesson>_<name>(answer)``: a verdict line
  computed with the course's own helpers (never a second copy of the logic)
- :mod:`exercises.quiz`   the quiz, stored as data in ``exercises/quiz/<lesson>.yaml``: ``quiz.show(id)``,
  ``quiz.answer(id, letter)``
"""
