"""Notebook conveniences: stopping a lesson with a clear message instead of a traceback, and sentences
about this run's results that the run itself checks (:func:`claim`, :func:`claim_either`)."""

from __future__ import annotations

from typing import Any


class StopLesson(RuntimeError):
    """Raised by a notebook cell when the lesson cannot go on (e.g. its input is missing).

    In Jupyter/IPython the exception is shown as its message only (IPython
    calls ``_render_traceback_``), so "Run all" stops at that cell and the
    student reads what to do, not a stack trace. In plain Python it is an
    ordinary ``RuntimeError``.
    """

    def _render_traceback_(self) -> list[str]:
        return ["", "LESSON STOPPED: " + str(self), ""]


class ClaimError(AssertionError):
    """This run's numbers contradict a sentence of the lesson (an ``AssertionError``: nbval and CI fail the cell)."""


def _sentences(condition: Any, fn: str, templates: tuple[str, ...], values: dict[str, Any]) -> list[str]:
    """Every template filled with ``values``; TypeError for a non-bool condition, KeyError for a missing value."""
    import numpy as np

    if not isinstance(condition, (bool, np.bool_)):
        raise TypeError(f"{fn}() needs a single True/False condition, got {type(condition).__name__}")
    try:
        return [t.format(**values) for t in templates]
    except KeyError as exc:
        raise KeyError(f"a sentence of {fn}() uses {{{exc.args[0]}}}, but no value of that name was given") from None


def claim(condition: bool, text: str, /, **values: Any) -> None:
    """Print ``text.format(**values)`` -- a sentence about this run -- when ``condition`` (computed from the
    same values) holds; otherwise raise :class:`ClaimError` quoting the sentence and the values, so the cell,
    and nbval in CI, fails instead of the lesson stating what the run contradicts. Returns None (no ``Out[...]`` echo).

    Example: ``claim(rf < crab, "The forest beats CrabNet: {rf:.2f} vs {crab:.2f} eV.", rf=rf, crab=crab)``.

    Raises:
        ClaimError: ``condition`` is false.
        TypeError: ``condition`` is not a bool or numpy bool (e.g. a Series, whose truth is ambiguous).
        KeyError: the sentence uses a placeholder that has no value.
    """
    (sentence,) = _sentences(condition, "claim", (text,), values)
    if not condition:
        shown = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v!r}" for k, v in values.items())
        raise ClaimError(
            f"this run contradicts the lesson's sentence: {sentence!r} ({shown or 'no values'}). Reword it to state "
            "only what the data show, or let the run pick the sentence with claim_either()."
        )
    print(sentence)


def claim_either(condition: bool, if_true: str, if_false: str, /, **values: Any) -> None:
    """Print the one of two ``str.format`` sentences that this run supports, for results whose direction may
    change between runs (which model wins); both are filled, so a typo fails on every run.

    Raises:
        TypeError: ``condition`` is not a bool or numpy bool.
        KeyError: a sentence uses a placeholder that has no value.
    """
    sentences = _sentences(condition, "claim_either", (if_true, if_false), values)
    print(sentences[0] if condition else sentences[1])


def require_file(path: "object", what: str, how_to_fix: str) -> None:
    """Raise :class:`StopLesson` naming ``what`` and ``path`` and saying ``how_to_fix`` when ``path`` is missing."""
    from pathlib import Path

    p = Path(str(path))
    if not p.exists():
        raise StopLesson(f"{what} not found at {p}. {how_to_fix}")


def in_notebook() -> bool:
    """True inside a Jupyter kernel (an IPython shell with a kernel), False in a terminal or plain Python."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython is part of the environment
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


class ProgressLine:
    """A progress bar whose *final* state is what a saved notebook shows.

    In a Jupyter kernel it is one text line updated in place through an IPython
    display handle (``display(..., display_id=True)``); executors such as
    nbclient apply the updates to the stored output, so an executed notebook
    shows ``name: 32454/32454 entries (100 %) in 5.0 s``, never a widget frozen
    at 0 %. Elsewhere it is a ``tqdm`` bar on stderr. The API is the part of
    tqdm's that the helpers use: ``update(n)`` and ``close()``.

    Args:
        desc: what is progressing (e.g. the output file name).
        total: expected number of items (``None`` if unknown).
        initial: items already done (a resumed pull).
        unit: plural name of an item, e.g. ``"entries"``.
        min_interval_s: least time between two in-place updates (seconds).
    """

    def __init__(
        self, desc: str, total: int | None, initial: int = 0, unit: str = "items", min_interval_s: float = 0.5
    ) -> None:
        import time

        self.desc, self.total, self.n, self.unit = desc, total, int(initial), unit
        self.min_interval_s = min_interval_s
        self._clock = time.monotonic
        self._start = self._last = self._clock()
        self._handle = None
        self._bar = None
        if in_notebook():
            from IPython.display import Pretty, display

            self._handle = display(Pretty(self.text()), display_id=True)
        else:
            from tqdm.std import tqdm

            self._bar = tqdm(total=total, initial=initial, unit=unit.rstrip("s") or unit, desc=desc)

    def text(self, done: bool = False) -> str:
        """The line as shown: ``desc: n/total unit (pct %) in s``."""
        elapsed = self._clock() - self._start
        of = f"/{self.total}" if self.total is not None else ""
        pct = f" ({100 * self.n / self.total:.0f} %)" if self.total else ""
        return f"{self.desc}: {self.n}{of} {self.unit}{pct} {'in' if done else 'after'} {elapsed:.1f} s"

    def update(self, n: int = 1) -> None:
        """Count ``n`` more items done."""
        self.n += int(n)
        if self._bar is not None:
            self._bar.update(n)
        elif self._handle is not None and self._clock() - self._last >= self.min_interval_s:
            from IPython.display import Pretty

            self._handle.update(Pretty(self.text()))
            self._last = self._clock()

    def close(self) -> None:
        """Show the final state."""
        if self._bar is not None:
            self._bar.close()
        elif self._handle is not None:
            from IPython.display import Pretty

            self._handle.update(Pretty(self.text(done=True)))
