"""Notebook conveniences: stopping a lesson with a clear message instead of a traceback."""

from __future__ import annotations


class StopLesson(RuntimeError):
    """Raised by a notebook cell when the lesson cannot go on (e.g. its input is missing).

    In Jupyter/IPython the exception is shown as its message only (IPython
    calls ``_render_traceback_``), so "Run all" stops at that cell and the
    student reads what to do, not a stack trace. In plain Python it is an
    ordinary ``RuntimeError``.
    """

    def _render_traceback_(self) -> list[str]:
        return ["", "LESSON STOPPED: " + str(self), ""]


def require_file(path: "object", what: str, how_to_fix: str) -> None:
    """Raise :class:`StopLesson` naming ``what`` and ``path`` and saying ``how_to_fix`` when ``path`` is missing."""
    from pathlib import Path

    p = Path(str(path))
    if not p.exists():
        raise StopLesson(f"{what} not found at {p}. {how_to_fix}")
