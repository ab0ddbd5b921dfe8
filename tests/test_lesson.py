"""Tests for helpers.lesson."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers.lesson import StopLesson, require_file


def test_stop_lesson_renders_message_only() -> None:
    exc = StopLesson("run notebook 01 first")
    assert isinstance(exc, RuntimeError)
    assert exc._render_traceback_() == ["", "LESSON STOPPED: run notebook 01 first", ""]


def test_require_file(tmp_path: Path) -> None:
    (tmp_path / "here.csv").write_text("x")
    require_file(tmp_path / "here.csv", "input", "fix it")
    with pytest.raises(StopLesson, match=r"cleaned data not found at .*missing.csv\. Run notebook 02 first\."):
        require_file(tmp_path / "missing.csv", "cleaned data", "Run notebook 02 first.")


def test_progress_line_final_text_outside_a_notebook(capsys) -> None:
    from helpers.lesson import ProgressLine

    bar = ProgressLine("x.csv", total=4, unit="entries")
    bar.update(3)
    bar.update(1)
    bar.close()
    assert bar.text(done=True).startswith("x.csv: 4/4 entries (100 %) in ")
    assert "4/4" in capsys.readouterr().err  # tqdm on stderr in a terminal


class _Handle:
    def __init__(self) -> None:
        self.shown: list[str] = []

    def update(self, obj) -> None:
        self.shown.append(obj.data)


def test_progress_line_in_a_notebook_updates_one_display(monkeypatch) -> None:
    """In a kernel the bar is one display updated in place; its last update is the final state."""
    import IPython.display

    from helpers import lesson

    handle = _Handle()
    monkeypatch.setattr(lesson, "in_notebook", lambda: True)
    monkeypatch.setattr(
        IPython.display, "display", lambda obj, display_id=False: (handle.shown.append(obj.data), handle)[1]
    )
    bar = lesson.ProgressLine("dft.csv", total=200, unit="entries", min_interval_s=0.0)
    bar.update(150)
    bar.update(50)
    bar.close()
    assert handle.shown[0].startswith("dft.csv: 0/200 entries (0 %)")
    assert handle.shown[-1].startswith("dft.csv: 200/200 entries (100 %) in ")


def test_claim_prints_the_sentence_filled_with_the_computed_values(capsys) -> None:
    from helpers.lesson import claim

    out = claim(0.21 < 0.25, "the forest beats CrabNet: {rf:.2f} vs {crab:.2f} eV", rf=0.2071, crab=0.2512)
    assert out is None  # nothing for IPython to echo as Out[...] when the call ends a cell
    assert capsys.readouterr().out == "the forest beats CrabNet: 0.21 vs 0.25 eV\n"


def test_a_contradicted_claim_fails_the_cell_with_the_sentence_and_the_values(capsys) -> None:
    import numpy as np

    from helpers.lesson import ClaimError, claim

    ratios = {"RoBERTa": 0.99, "frozen": 0.92, "MiniLM": 0.93}
    with pytest.raises(ClaimError) as info:
        claim(
            bool(np.all(np.array(list(ratios.values())) > 1)),
            "every learned model gets worse on the hold-out (ratios {ratios})",
            ratios=ratios,
        )
    assert isinstance(info.value, AssertionError)  # nbval / nbclient / CI fail the cell
    assert "contradicts" in str(info.value) and "every learned model gets worse" in str(info.value)
    assert "0.99" in str(info.value)
    assert capsys.readouterr().out == ""  # nothing printed: the student never reads the false sentence


def test_claim_in_a_notebook_cell_fails_the_cell() -> None:
    """The guard fails a real IPython cell (what nbval runs), not only a direct call."""
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    ok = shell.run_cell("from helpers.lesson import claim\nclaim(2 > 1, 'two is more than {x}', x=1)")
    assert ok.success
    bad = shell.run_cell("claim(0.697 > 0.693 + 0.01, 'above CrabNet: {a} vs {b}', a=0.697, b=0.693)")
    assert not bad.success and type(bad.error_in_exec).__name__ == "ClaimError"


def test_claim_refuses_an_ambiguous_condition_and_a_missing_value() -> None:
    import numpy as np

    from helpers.lesson import claim, claim_either

    with pytest.raises(TypeError, match="single True/False"):
        claim(np.array([True, False]), "x")
    claim(np.float64(1.0) > 0, "numpy bools are fine")
    with pytest.raises(KeyError, match=r"uses \{mae\}"):
        claim(True, "MAE {mae:.2f} eV")
    with pytest.raises(KeyError, match=r"uses \{b\}"):  # the sentence not chosen is checked too
        claim_either(True, "{a}", "{b}", a=1)


def test_claim_either_prints_the_sentence_the_data_support(capsys) -> None:
    from helpers.lesson import claim_either

    claim_either(0.54 >= 0.8, "they predict well (R² {r2:.2f})", "they predict only roughly (R² {r2:.2f})", r2=0.54)
    assert capsys.readouterr().out == "they predict only roughly (R² 0.54)\n"


def test_claim_values_may_use_any_name(capsys) -> None:
    from helpers.lesson import claim, claim_either

    claim(True, "ratios {text}", text="1.2x")
    claim_either(False, "{if_true}", "{if_false}", if_true="a", if_false="b")
    assert capsys.readouterr().out == "ratios 1.2x\nb\n"
