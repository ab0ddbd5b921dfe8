"""Notebook conveniences: stopping a lesson with a clear message instead of a traceback, and sentences
about this run's results that the run itself checks (:func:`claim`, :func:`claim_either`)."""

from __future__ import annotations

from collections.abc import Mapping
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
    """A sentence of the lesson is contradicted by the numbers of this run.

    An ``AssertionError`` so that nbval, nbclient and CI fail the cell; the message quotes the
    sentence and the values that contradict it, so the author knows what to reword.
    """


def _fill(text: str, values: Mapping[str, Any]) -> str:
    """``text.format(**values)``; a placeholder without a value is a ``KeyError`` naming it."""
    try:
        return text.format(**values)
    except KeyError as exc:
        raise KeyError(f"the sentence {text!r} uses {{{exc.args[0]}}}, but no value of that name was given") from None


def _shown(values: Mapping[str, Any]) -> str:
    def one(v: Any) -> str:
        return f"{v:.4g}" if isinstance(v, float) else repr(v)

    return ", ".join(f"{k}={one(v)}" for k, v in values.items()) or "no values given"


def _is_bool(value: Any) -> bool:
    import numpy as np

    return isinstance(value, (bool, np.bool_))


def claim(condition: bool, text: str, /, **values: Any) -> str:
    """Print a sentence about this run's results -- only if the run supports it.

    ``text`` is a ``str.format`` template filled with ``values`` (numbers computed in the notebook,
    e.g. ``"{ratio:.2f}"``); ``condition`` is the test that makes the sentence true, computed from
    the same values. When it holds, the filled sentence is printed (and returned); when the data
    contradict it, :class:`ClaimError` is raised, so the notebook's cell -- and nbval in CI -- fails
    instead of the lesson telling the student something their own run does not show.

    Example::

        claim(rf_mae < crab_mae, "On the hold-out the forest beats CrabNet: {rf:.2f} vs {crab:.2f} eV.",
              rf=rf_mae, crab=crab_mae)

    Raises:
        ClaimError: ``condition`` is false; the message quotes the filled sentence and every value.
        TypeError: ``condition`` is not a bool (a numpy bool is fine) -- e.g. a Series, whose truth is ambiguous.
        KeyError: the sentence uses a placeholder that has no value.
    """
    if not _is_bool(condition):
        raise TypeError(f"claim() needs a single True/False condition, got {type(condition).__name__}")
    sentence = _fill(text, values)
    if not condition:
        raise ClaimError(
            f"this run contradicts the lesson's sentence: {sentence!r} ({_shown(values)}). "
            "Reword the sentence so it states only what the data show, or print the alternative with claim_either()."
        )
    print(sentence)
    return sentence


def claim_either(condition: bool, if_true: str, if_false: str, /, **values: Any) -> str:
    """Print the one of two sentences that this run's ``values`` support (both are ``str.format`` templates).

    For results whose *direction* may change from run to run (which model wins, whether a score
    improves): the lesson states both outcomes and the run picks -- nothing to contradict. Returns
    the printed sentence.

    Raises:
        TypeError: ``condition`` is not a bool (a numpy bool is fine).
        KeyError: a sentence uses a placeholder that has no value.
    """
    if not _is_bool(condition):
        raise TypeError(f"claim_either() needs a single True/False condition, got {type(condition).__name__}")
    sentences = (_fill(if_true, values), _fill(if_false, values))  # both filled: a typo fails on every run
    sentence = sentences[0] if condition else sentences[1]
    print(sentence)
    return sentence


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
