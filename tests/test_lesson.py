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
