"""Ask a trained CrabNet about any formula -- as a function and as a widget.

:func:`predict_formula` (or a reusable :class:`Predictor`) turns a typed formula
into a :class:`PredictionResult`: the predicted band gap with its uncertainty,
the measured mean if the formula is in the dataset, and notes (abbreviations
read, elements never seen in training, formula was a training example). Bad
input -- anything but text, unparsable text, unknown element symbols, more
elements than the model was trained on -- a network answer that is not a finite
number, and any unexpected error (described in words) give a result with
``ok=False`` and a clear ``message``, never an exception. A network answer below
0 eV is shown as 0 eV with a note giving the raw answer (a band gap cannot be
negative; the same rule as :func:`helpers.text_models.predict`). :meth:`Predictor.widget` wraps the same call in ipywidgets
(no ``input()``, so headless runs never block).
"""

from __future__ import annotations

import html
import math
import threading
from dataclasses import dataclass, field
from typing import Any, Iterable

import pandas as pd

from .composition import FormulaError, composition_key, atomic_fractions
from .crabnet import CrabModel, InvalidPredictionError, TooManyElementsError

#: Example formulas shown in the widget's placeholder and docs.
EXAMPLES: tuple[str, ...] = ("CsPbI3", "MAPbI3", "FA0.85MA0.15PbI2.55Br0.45", "CsSnBr3")

#: What went wrong, in words, for exceptions nobody expected (most specific class first).
_ERROR_WORDS: tuple[tuple[type[BaseException], str], ...] = (
    (ZeroDivisionError, "a division by zero"),
    (OverflowError, "a number too large to compute with"),
    (IndexError, "an index out of range"),
    (KeyError, "a missing entry"),
    (MemoryError, "not enough memory"),
    (RecursionError, "a structure nested too deeply"),
    (TypeError, "a value of the wrong type"),
    (ValueError, "an invalid value"),
    (ArithmeticError, "an arithmetic error"),
)


def _shorten(text: str, limit: int = 40) -> str:
    """``text`` for a message: at most ``limit`` characters, then ``... (N characters)``."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def _describe_error(exc: BaseException) -> str:
    """An unexpected exception in words, with its detail (cut to 200 characters) but not its class name.

    ``ZeroDivisionError('float division by zero')`` -> ``"a division by zero (float division by zero)"``.
    """
    words = next((w for cls, w in _ERROR_WORDS if isinstance(exc, cls)), "an unexpected error")
    detail = str(exc).strip().replace(type(exc).__name__, "").strip(" :")
    if detail and detail not in words:
        words += f" ({_shorten(detail, 200)})"
    return words


@dataclass(frozen=True)
class PredictionResult:
    """What the predictor says about one formula.

    Attributes:
        query: the text as typed.
        ok: False when no prediction could be made; ``message`` says why.
        message: one line for a human (the prediction or the problem).
        band_gap_eV, uncertainty_eV: CrabNet's prediction and its sigma (eV).
        measured_eV: mean measured gap in the dataset for the same composition, else None.
        measured_n: number of measurements behind ``measured_eV`` (None if unknown).
        matched_formula: how the matching dataset formula is written there.
        notes: extra remarks (abbreviations read, unseen elements, training example).
    """

    query: str
    ok: bool
    message: str
    band_gap_eV: float | None = None
    uncertainty_eV: float | None = None
    measured_eV: float | None = None
    measured_n: int | None = None
    matched_formula: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    def __str__(self) -> str:
        return "\n".join([self.message, *(f"  - {n}" for n in self.notes)])

    def to_html(self) -> str:
        """Small HTML block for the widget."""
        color = "#1a7f37" if self.ok else "#b42318"
        body = f"<b style='color:{color}'>{html.escape(self.message)}</b>"
        if self.notes:
            body += "<ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in self.notes) + "</ul>"
        return f"<div style='font-family:sans-serif'>{body}</div>"


def _finite_or_none(value: Any) -> float | None:
    """``value`` as a finite float, or None (None, NaN, inf, text that is not a number)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


class Predictor:
    """A trained model plus (optionally) the dataset to compare against.

    Args:
        model: a fitted or loaded :class:`CrabModel`.
        dataset: table with ``formula`` and a measured gap column (the modelling
            table from :func:`helpers.splits.load_formula_table`), or None.
        measured_column: which column of ``dataset`` holds the measured gap.
        train_formulas: formulas the model was trained on (to warn that a match
            is not a fair test).

    Rows of ``dataset`` whose measured value is missing, not a number or not finite are
    never shown as a measurement; their number is ``n_measured_skipped``. A missing or
    non-finite ``n_entries`` is shown as an unknown count.
    """

    def __init__(
        self,
        model: CrabModel,
        dataset: pd.DataFrame | None = None,
        measured_column: str = "target",
        train_formulas: Iterable[str] | None = None,
    ):
        self.model = model
        self._measured: dict[tuple, tuple[str, float, int | None]] = {}
        self.n_measured_skipped = 0
        if dataset is not None:
            if measured_column not in dataset.columns:
                raise ValueError(f"dataset has no column {measured_column!r}")
            counts = dataset["n_entries"] if "n_entries" in dataset.columns else [None] * len(dataset)
            for formula, value, n in zip(dataset["formula"], dataset[measured_column], counts):
                try:
                    key = composition_key(str(formula))
                except FormulaError:
                    continue
                gap, count = _finite_or_none(value), _finite_or_none(n)
                if gap is None:  # NaN/inf/text: not a measurement to compare with
                    self.n_measured_skipped += 1
                    continue
                self._measured.setdefault(key, (str(formula), gap, None if count is None else int(count)))
        self._train_keys: set[tuple] = set()
        for formula in () if train_formulas is None else train_formulas:
            try:
                self._train_keys.add(composition_key(str(formula)))
            except FormulaError:
                continue

    def __call__(self, formula: Any) -> PredictionResult:
        """Predict one formula; never raises (see :class:`PredictionResult`).

        Refusals (``ok=False``, a message saying why): input that is not text,
        an unreadable formula, more elements than the model knows, a network answer
        that is not a finite number, and any unexpected error, described in words.
        """
        if not isinstance(formula, str):
            kind = "None" if formula is None else type(formula).__name__
            return PredictionResult(
                query=f"<{kind}>",
                ok=False,
                message=f"Cannot read this formula: a formula must be text (a str), not {kind}.",
            )
        try:
            return self._predict(formula)
        except Exception as exc:  # a UI must not show a traceback; say what failed, in words
            return PredictionResult(
                query=formula,
                ok=False,
                message=(
                    f"No prediction for {_shorten(formula)!r}: the calculation failed with {_describe_error(exc)}. "
                    "This input is outside what the model can handle; try another formula."
                ),
            )

    def _predict(self, formula: str) -> PredictionResult:
        query = formula
        try:
            parsed = atomic_fractions(formula)
        except FormulaError as exc:
            return PredictionResult(query=query, ok=False, message=f"Cannot read this formula: {exc}")
        try:
            row = self.model.predict([parsed]).iloc[0]
        except TooManyElementsError:
            return PredictionResult(
                query=query,
                ok=False,
                message=(
                    f"{_shorten(parsed.text)!r} has {parsed.n_elements} elements; this model was trained on formulas "
                    f"with at most {self.model.max_elements}, so it cannot predict it."
                ),
            )
        except InvalidPredictionError as exc:
            return PredictionResult(
                query=query, ok=False, message=f"No prediction for {_shorten(parsed.text)!r}: {exc}"
            )

        notes: list[str] = []
        if parsed.expanded != parsed.text:
            notes.append(f"read as {parsed.expanded} (organic-cation abbreviations expanded)")
        unseen = sorted(set(parsed.fractions) - set(self.model.train_elements))
        if unseen and self.model.train_elements:
            notes.append(
                f"{', '.join(unseen)} never appeared in the training data: this is an extrapolation, "
                "trust it (and its uncertainty) less"
            )
        key = composition_key(parsed)
        measured = self._measured.get(key)
        if key in self._train_keys:
            notes.append("this composition was a training example, so agreement with the measurement is not a test")
        gap, sigma = float(row["prediction_eV"]), float(row["uncertainty_eV"])
        if not (math.isfinite(gap) and math.isfinite(sigma) and sigma >= 0):  # CrabModel.predict refuses these too
            return PredictionResult(
                query=query,
                ok=False,
                message=(
                    f"No prediction for {_shorten(parsed.text)!r}: the model answered {gap} ± {sigma} eV, which is not a "
                    "finite number with a non-negative uncertainty; its weights are broken, so nothing is reported."
                ),
            )
        if gap < 0:  # the rule of helpers.text_models.predict: a band gap cannot be negative
            notes.append(
                f"the network answered {gap:.2f} eV; a band gap cannot be negative, so 0 eV is shown "
                "(the model says: a metal or a very small gap)"
            )
            gap = 0.0
        message = f"{parsed.text}: predicted band gap {gap:.2f} ± {sigma:.2f} eV"
        if measured is not None:
            written, value, n = measured
            count = f", {n} measurement{'s' if n != 1 else ''}" if n is not None else ""
            message += f"; measured mean {value:.2f} eV (dataset formula {written}{count})"
        else:
            message += "; not in the dataset"
        return PredictionResult(
            query=query,
            ok=True,
            message=message,
            band_gap_eV=gap,
            uncertainty_eV=sigma,
            measured_eV=None if measured is None else measured[1],
            measured_n=None if measured is None else measured[2],
            matched_formula=None if measured is None else measured[0],
            notes=tuple(notes),
        )

    def widget(self, initial: str = "CsPbI3"):
        """An ipywidgets box: a text field, a *Predict* button and the answer below.

        Pressing Enter in the field or clicking the button runs :meth:`__call__`
        (serialised; a text change whose answer is already shown is not recomputed).
        The returned box has ``.text``, ``.button`` and ``.output`` attributes so
        tests (and curious students) can drive it without a browser. Where widgets do not
        render (a static copy of the notebook, a terminal) its ``text/plain`` form is the
        answer shown last, e.g. ``Band-gap predictor (interactive; ...): CsPbI3: predicted ...``.
        """
        import ipywidgets as widgets

        shown: dict[str, Any] = {"value": None, "text": ""}

        class PredictorBox(widgets.VBox):
            """The widget's box; its plain-text form is the last answer, not ``VBox(children=...)``."""

            def __repr__(self) -> str:
                return f"Band-gap predictor (interactive; run the notebook to try a formula): {shown['text']}"

            def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
                data = super()._repr_mimebundle_(**kwargs)
                data["text/plain"] = repr(self)  # whole, not cut at 110 characters
                return data

        text = widgets.Text(
            value=initial,
            placeholder="e.g. " + ", ".join(EXAMPLES),
            description="Formula:",
            continuous_update=False,
            layout=widgets.Layout(width="28em"),
        )
        button = widgets.Button(description="Predict", button_style="primary", icon="flask")
        output = widgets.HTML()
        # JupyterLab 4 may deliver the text change (on a comm subshell thread) and the
        # button click (main thread) concurrently: answer one at a time. A text change
        # whose answer is already shown is not recomputed; a click always is.
        lock = threading.Lock()

        def _run(*_: Any, force: bool = True) -> None:
            with lock:
                value = text.value
                if not force and value == shown["value"]:
                    return
                answer = self(value)
                output.value = answer.to_html()
                shown["value"], shown["text"] = value, str(answer).replace("\n", " ")

        text.observe(lambda change: _run(force=False), names="value")
        button.on_click(_run)
        box = PredictorBox([widgets.HBox([text, button]), output])
        box.text, box.button, box.output = text, button, output  # type: ignore[attr-defined]
        _run()
        return box


def predict_formula(
    model: CrabModel,
    formula: Any,
    dataset: pd.DataFrame | None = None,
    measured_column: str = "target",
) -> PredictionResult:
    """One-shot :class:`Predictor` call: predict ``formula`` and compare with ``dataset``.

    For many calls build a :class:`Predictor` once (it indexes the dataset).
    """
    return Predictor(model, dataset, measured_column=measured_column)(formula)
