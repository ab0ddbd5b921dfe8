"""Exercise checks and the quiz of the five lessons (imports :mod:`helpers`, never the reverse).

- :mod:`exercises.checks` automatic checks of the exercises, and the quiz
"""
