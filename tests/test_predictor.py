"""helpers.predictor: the plain function, its error paths, and the ipywidgets UI."""

from __future__ import annotations

import ast
import json
import warnings

import pandas as pd
import pytest

from _crab_fixtures import tiny_model, tiny_split
from helpers import config
from helpers import crabnet as ct
from helpers import predictor

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def model() -> ct.CrabModel:
    return tiny_model(seed=0)


@pytest.fixture(scope="module")
def dataset() -> pd.DataFrame:
    train, val, test = tiny_split()
    return pd.concat([train, val, test]).assign(n_entries=3)


@pytest.mark.parametrize(
    "query, expected",
    [
        ("", "empty formula"),
        ("   ", "empty formula"),
        (None, "must be text"),
        (42, "must be text"),
        ("Xx2PbI3", "'Xx', not chemical element"),
        ("Pb(I3", "unmatched '(' at position 2"),
        ("cspbi3", "not a chemical formula"),
        ("CsPbI3!", "not a chemical formula"),
        ("LiNaKRbCsFrPbI3", "has 8 elements; this model was trained on formulas with at most 6"),
        ("CsPb0I3", "gives Pb an amount of zero"),
        ("Cs1" + "0" * 400 + "PbI3", "at most 200 are accepted"),
        ("Cs1" + "0" * 30 + "PbI3", "more than 20 digits"),
    ],
)
def test_bad_input_gives_a_message_never_an_exception(model: ct.CrabModel, query, expected: str) -> None:
    result = predictor.predict_formula(model, query)
    assert not result.ok
    assert expected in result.message
    assert result.band_gap_eV is None and result.uncertainty_eV is None
    assert "Traceback" not in str(result)


def test_prediction_with_measured_value_in_any_spelling(model: ct.CrabModel, dataset: pd.DataFrame) -> None:
    p = predictor.Predictor(model, dataset)
    result = p("I3PbCs")  # the dataset writes CsPbI3
    assert result.ok and result.matched_formula == "CsPbI3"
    assert result.measured_eV == pytest.approx(1.60) and result.measured_n == 3
    assert result.band_gap_eV == pytest.approx(float(model.predict(["CsPbI3"])["prediction_eV"][0]))
    assert result.uncertainty_eV > 0
    assert "predicted band gap" in result.message and "measured mean 1.60 eV" in result.message
    assert "± " in result.message and "eV" in result.message


def test_notes_for_abbreviations_unseen_elements_and_training_examples(
    model: ct.CrabModel, dataset: pd.DataFrame
) -> None:
    train, _, _ = tiny_split()
    p = predictor.Predictor(model, dataset, train_formulas=train["formula"])
    ma = p("MAPbI3")
    assert ma.ok and any("read as (CH6N)PbI3" in n for n in ma.notes)
    assert ma.matched_formula is None or ma.measured_eV is not None
    ge = p("CsGeI3")
    assert ge.ok and ge.measured_eV is None and "not in the dataset" in ge.message
    assert any("Ge never appeared in the training data" in n for n in ge.notes)
    seen = p(train["formula"].iloc[0])
    assert any("training example" in n for n in seen.notes)


def test_widget_runs_the_same_function(model: ct.CrabModel, dataset: pd.DataFrame) -> None:
    box = predictor.Predictor(model, dataset).widget(initial="CsPbI3")
    assert "predicted band gap" in box.output.value
    box.text.value = "Xx"
    assert "Cannot read this formula" in box.output.value
    box.text.value = "CsSnI3"
    box.output.value = ""
    box.button.click()
    assert "CsSnI3: predicted band gap" in box.output.value


def test_widget_reads_as_a_line_of_text_in_static_copies(model: ct.CrabModel, dataset: pd.DataFrame) -> None:
    """A static copy (nbconvert, a website) shows text/plain: the answer, not ``VBox(children=...)``."""
    box = predictor.Predictor(model, dataset).widget(initial="CsPbI3")
    plain = box._repr_mimebundle_()["text/plain"]
    assert plain.startswith("Band-gap predictor (interactive") and "VBox" not in plain
    assert "CsPbI3: predicted band gap" in plain and "\n" not in plain
    assert "application/vnd.jupyter.widget-view+json" in box._repr_mimebundle_()  # still a live widget in Jupyter
    box.text.value = "CsSnI3"
    assert "CsSnI3: predicted band gap" in repr(box)


def test_dataset_without_the_column_is_refused(model: ct.CrabModel) -> None:
    with pytest.raises(ValueError, match="no column"):
        predictor.Predictor(model, pd.DataFrame({"formula": ["CsPbI3"]}))


def _calls_input(source: str) -> bool:
    tree = ast.parse(source)
    return any(
        isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "input" for n in ast.walk(tree)
    )


def test_no_input_calls_in_notebook_03_or_its_helpers() -> None:
    """input() blocks headless runs (CI, nbval)."""
    root = config.REPO_ROOT
    paths = [root / "helpers" / f"{m}.py" for m in ("splits", "baselines", "predictor", "evaluation", "composition")]
    for path in paths + sorted((root / "helpers" / "crabnet").glob("*.py")):
        assert not _calls_input(path.read_text()), path.name
    nb = json.loads((root / "notebooks" / "03_crabnet.ipynb").read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            src = "".join(cell["source"])
            clean = "\n".join(line for line in src.splitlines() if not line.lstrip().startswith(("%", "!")))
            assert not _calls_input(clean), src


# --------------------------------------------------------------------- hostile input (issue 11, defects 6 and 8)
@pytest.mark.parametrize(
    "query",
    [10**5000, float("nan"), b"CsPbI3", ["CsPbI3"], {"formula": "CsPbI3"}],
    ids=["int", "float", "bytes", "list", "dict"],
)
def test_non_text_input_is_refused_never_raised(model: ct.CrabModel, query) -> None:
    """``Predictor(...)(10**5000)`` raised ValueError (repr of a 5000-digit int exceeds Python's limit)."""
    result = predictor.Predictor(model)(query)
    assert not result.ok and result.band_gap_eV is None
    assert "must be text" in result.message and type(query).__name__ in result.message
    assert len(result.query) < 100, "the query shown is short, whatever was passed"


@pytest.mark.parametrize("query", ["Pb" + "9" * 308 + "I" + "9" * 308, "H1" + "0" * 40 + "Pb"], ids=["huge", "zeros"])
def test_absurd_amounts_give_a_readable_refusal(model: ct.CrabModel, query: str) -> None:
    """These gave 'Prediction failed: ZeroDivisionError' and 'IndexError: index 9223372036854775807 ...'."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = predictor.Predictor(model)(query)
    assert [str(w.message) for w in caught] == [], "the refusal says it all; no numpy warnings under the widget"
    assert not result.ok and result.band_gap_eV is None
    for raw in ("ZeroDivisionError", "IndexError", "OverflowError", "Prediction failed", "Traceback"):
        assert raw not in result.message
    assert len(result.message) < 400


@pytest.mark.parametrize(
    "error, words",
    [
        (ZeroDivisionError("division by zero"), "division by zero"),
        (IndexError("index 9223372036854775807 is out of bounds for dimension 0 with size 6"), "index out of range"),
        (OverflowError("cannot convert float infinity to integer"), "too large"),
        (MemoryError(), "not enough memory"),
        (RuntimeError("mat1 and mat2 shapes cannot be multiplied"), "mat1 and mat2 shapes cannot be multiplied"),
    ],
)
def test_unexpected_errors_become_refusals_in_words(
    model: ct.CrabModel, monkeypatch: pytest.MonkeyPatch, error: Exception, words: str
) -> None:
    def boom(*args, **kwargs):
        raise error

    p = predictor.Predictor(model)
    monkeypatch.setattr(p.model, "predict", boom)
    result = p("CsPbI3")
    assert not result.ok and result.band_gap_eV is None
    assert words in result.message and "CsPbI3" in result.message
    assert type(error).__name__ not in result.message and "Prediction failed" not in result.message


def test_non_finite_predictions_are_never_ok(model: ct.CrabModel, tmp_path) -> None:
    """A model answering nan (e.g. a weight became nan) gave 'nan ± nan eV' with ok=True."""
    broken = ct.load_model(model.save(tmp_path / "m.safetensors"))
    import torch

    with torch.no_grad():
        broken.crab.model.output_nn.fc_out.weight.fill_(float("nan"))
    result = predictor.Predictor(broken)("CsPbI3")
    assert not result.ok and result.band_gap_eV is None and result.uncertainty_eV is None
    assert "not a finite number" in result.message and "nan ±" not in result.message


def test_predictor_checks_the_numbers_it_is_given(model: ct.CrabModel, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever model object answers, nan or a negative sigma (``± -0.27 eV``) is never shown as ok."""
    p = predictor.Predictor(model)
    for gap, sigma in ((1.5, -0.27), (float("nan"), 0.1), (1.5, float("inf"))):
        frame = pd.DataFrame({"formula": ["CsPbI3"], "prediction_eV": [gap], "uncertainty_eV": [sigma]})
        monkeypatch.setattr(p.model, "predict", lambda formulas, frame=frame: frame)
        result = p("CsPbI3")
        assert not result.ok and result.band_gap_eV is None and "not a finite number" in result.message


def test_non_finite_measured_values_are_never_shown(model: ct.CrabModel) -> None:
    """Issue 11 sibling: a NaN/inf measured value was shown as 'measured mean nan eV' with ok=True,
    and a NaN n_entries made the Predictor raise ValueError when built."""
    table = pd.DataFrame(
        {
            "formula": ["CsPbI3", "CsPbBr3", "CsSnI3", "CsPbCl3"],
            "target": [1.73, float("nan"), float("inf"), "n/a"],
            "n_entries": [float("nan"), 2, 1, 1],
        }
    )
    p = predictor.Predictor(model, table)
    assert p.n_measured_skipped == 3
    first = p("CsPbI3")
    assert first.ok and "measured mean 1.73 eV" in str(first) and "nan" not in str(first)
    for formula in ("CsPbBr3", "CsSnI3", "CsPbCl3"):
        result = p(formula)
        assert result.ok and "not in the dataset" in str(result), str(result)
        assert "nan" not in str(result) and "inf" not in str(result)


def test_negative_predictions_are_shown_as_zero_with_a_note(
    model: ct.CrabModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 19 item 8 (the rule of helpers.text_models.predict): a band gap cannot be negative, so a network
    answer below 0 eV is reported as 0 eV, and a note gives the raw answer -- never '-0.31 eV' as a band gap."""
    p = predictor.Predictor(model)
    frame = pd.DataFrame({"formula": ["CsPbI3"], "prediction_eV": [-0.31], "uncertainty_eV": [0.2]})
    monkeypatch.setattr(p.model, "predict", lambda formulas: frame)
    result = p("CsPbI3")
    assert result.ok and result.band_gap_eV == 0.0 and result.uncertainty_eV == pytest.approx(0.2)
    assert "predicted band gap 0.00 ± 0.20 eV" in result.message and "-0.31" not in result.message
    assert any("answered -0.31 eV" in n and "cannot be negative" in n for n in result.notes), result.notes


def test_an_amount_pymatgen_drops_is_refused_not_predicted(model: ct.CrabModel) -> None:
    """Issue 19 item 5: Pb0.000000001I3 was read as {I: 1} and predicted '1.68 eV'."""
    result = predictor.Predictor(model)("Pb0.000000001I3")
    assert not result.ok and result.band_gap_eV is None
    assert "Pb" in result.message and "cannot see" in result.message
