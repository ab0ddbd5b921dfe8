"""Tests for exercises.checks: every check passes the reference solution and fails typical wrong answers."""

from __future__ import annotations

import copy
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers import cleaning, composition, evaluation, formulas, nomad, schema, splits, units
from exercises import checks as check
from exercises import quiz


def _verdict_line(capsys) -> str:
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1, out  # one line per check, nothing else
    return out[0]


def assert_ok(verdict, capsys) -> str:
    line = _verdict_line(capsys)
    assert verdict is not None and bool(verdict) and verdict == True, line  # noqa: E712
    assert "✓ correct:" in line
    return line


def assert_not_yet(verdict, capsys, *fragments: str) -> str:
    line = _verdict_line(capsys)
    assert not verdict and verdict == False, line  # noqa: E712
    assert "✗ not yet:" in line and "Traceback" not in line
    for fragment in fragments:
        assert fragment in line, (fragment, line)
    return line


# ------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def clean() -> pd.DataFrame:
    """A small cleaned table built with clean_psc from raw rows (as notebook 02 does)."""
    rows = []
    groups = {
        ("CH6I3NPb", "MAPbI3"): [1.60, 1.60, 1.60, 1.61, 1.55, 2.30],
        ("Br3CsPb", "CsPbBr3"): [2.30, 2.40, 2.50, 2.20, 2.36, 1.95, 2.90],
        ("CH5I3N2Pb", "FAPbI3"): [1.48, 2.50],
        ("CsI3Sn", "CsSnI3"): [1.30],
    }
    for (reduced, descriptive), gaps in groups.items():
        for gap in gaps:
            rows.append((f"id-{len(rows):03d}", reduced, descriptive, gap))
    raw = pd.DataFrame(rows, columns=["entry_id", "formula_reduced", "formula_descriptive", "band_gap_eV"])
    for col in schema.PSC_COLUMNS:
        if col not in raw:
            raw[col] = math.nan if col in cleaning.NUMERIC_COLUMNS else ""
    raw["elements"] = raw["formula_reduced"].map(lambda f: " ".join(cleaning.elements_of(f)))
    out, report = cleaning.clean_psc(raw[list(schema.PSC_COLUMNS)])
    assert report.rows_out == len(rows)
    return out


@pytest.fixture(scope="module")
def split() -> splits.Split:
    formulas = []
    for a in ("Cs", "Rb", "K"):
        for b in ("Pb", "Sn"):
            for x in ("I3", "Br3", "I2Br", "IBr2"):
                formulas.append(f"{a}{b}{x}")
    table = pd.DataFrame({"formula": formulas, "target": np.linspace(1.2, 2.9, len(formulas))})
    table["chemical_system"] = table["formula"].map(composition.chemical_system)
    return splits.random_split(table, seed=0, fractions=(0.6, 0.2, 0.2))


@pytest.fixture(scope="module")
def rows() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    true = rng.uniform(1.0, 3.0, 200)
    sigma = rng.uniform(0.05, 0.3, 200)
    pred = true + rng.laplace(0, 1, 200) * sigma / math.sqrt(2)
    return pd.DataFrame({"true_eV": true, "pred_eV": pred, "sigma_eV": sigma})


# ------------------------------------------------------------------ registry
def test_at_least_three_exercises_per_notebook_easy_to_hard() -> None:
    for nb in ("01", "02", "03"):
        levels = [lvl for (n, lvl, _task) in check.EXERCISES.values() if n == nb]
        assert len(levels) >= 3, nb
        assert {"easy", "hard"} <= set(levels), (nb, levels)
    assert all(callable(getattr(check, name)) for name in check.EXERCISES)


# ------------------------------------------------------------------ notebook 01
def test_ex_01_joule_to_ev(capsys) -> None:
    assert_ok(check.ex_01_joule_to_ev(units.joule_to_ev), capsys)
    assert_ok(check.ex_01_joule_to_ev(lambda j: j / 1.602176634e-19), capsys)
    assert_not_yet(
        check.ex_01_joule_to_ev(lambda j: j * 6.24150974e18), capsys, "tutorial's factor (1/e from CODATA 1998)"
    )
    assert_not_yet(check.ex_01_joule_to_ev(lambda j: j * 1.602176634e-19), capsys, "do not multiply")
    assert_not_yet(check.ex_01_joule_to_ev(lambda j: j / 1.6e-19), capsys, "expected")
    assert_not_yet(check.ex_01_joule_to_ev(lambda j: "1.6 eV"), capsys, "should be a number")
    assert_not_yet(check.ex_01_joule_to_ev(1.6), capsys, "expected a function")
    assert_not_yet(check.ex_01_joule_to_ev(lambda j: 1 / 0), capsys, "ZeroDivisionError")


def test_stub_in_a_notebook_is_one_line_without_traceback(capsys) -> None:
    """Variable-style stubs raise at the top of a cell: IPython shows the hint as ONE line, and the cell still fails."""
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    assert check.install_stub_display(shell)
    capsys.readouterr()
    result = shell.run_cell("raise NotImplementedError('start from nomad.dft_query()')\nmy_body = {}")
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.strip()]
    assert lines == ["✗ not yet: not attempted yet -- start from nomad.dft_query()"], lines
    assert isinstance(result.error_in_exec, NotImplementedError)  # Run All goes on only with raises-exception
    assert "my_body" not in shell.user_ns
    # a function-style stub called outside its check: one line too
    shell.run_cell("def my_f(x):\n    raise NotImplementedError('divide by e')\nmy_f(1)")
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.strip()]
    assert lines == ["✗ not yet: not attempted yet -- divide by e"], lines
    # a NotImplementedError from library code keeps its traceback
    shell.run_cell("import pandas as pd\npd.api.extensions.ExtensionArray._from_sequence([1])")
    assert "Traceback" in capsys.readouterr().out


def test_not_implemented_is_not_attempted_yet(capsys) -> None:
    def stub(value_J):
        raise NotImplementedError("divide by the elementary charge")

    verdict = check.ex_01_joule_to_ev(stub)
    line = assert_not_yet(verdict, capsys, "not attempted yet", "divide by the elementary charge")
    assert verdict.attempted is False and line.startswith("[ex_01_joule_to_ev]")


def _query_body() -> dict:
    body = nomad.dft_query(page_size=50)
    body["required"] = {"include": list(check.QUERY_EXERCISE_INCLUDE)}
    return body


def test_ex_01_query_body(capsys) -> None:
    assert_ok(check.ex_01_query_body(_query_body()), capsys)
    nested = _query_body()
    nested["required"] = {"results": {"material": {"chemical_formula_reduced": "*"}}}
    assert_not_yet(check.ex_01_query_body(nested), capsys, "nested dict")
    too_much = _query_body()
    too_much["required"]["include"].append("entry_id")
    assert_not_yet(check.ex_01_query_body(too_much), capsys, "not asked for ['entry_id']")
    page = _query_body()
    page["pagination"]["page_size"] = 1000
    assert_not_yet(check.ex_01_query_body(page), capsys, "page_size 50")
    assert_not_yet(check.ex_01_query_body(nomad.psc_query(page_size=50)), capsys, "'query' part differs")
    assert_not_yet(check.ex_01_query_body("owner=public"), capsys, "should be a dict")


def test_ex_01_band_gap_of_entry(capsys) -> None:
    def reference(entry):
        return nomad.flatten_psc_entry(entry)["band_gap_eV"]

    def solution(entry):
        el = entry["results"]["properties"]["electronic"]
        if "band_gap" in el:
            return el["band_gap"][0]["value"] / 1.602176634e-19
        if "band_structure_electronic" in el:
            return el["band_structure_electronic"][0]["band_gap"][0]["value"] / 1.602176634e-19
        return None

    def current_only(entry):
        el = entry["results"]["properties"]["electronic"]
        return el["band_gap"][0]["value"] / 1.602176634e-19 if "band_gap" in el else None

    def joules(entry):
        el = entry["results"]["properties"]["electronic"]
        return el["band_gap"][0]["value"] if "band_gap" in el else None

    assert_ok(check.ex_01_band_gap_of_entry(reference), capsys)
    assert_ok(check.ex_01_band_gap_of_entry(solution), capsys)
    assert_not_yet(check.ex_01_band_gap_of_entry(current_only), capsys, "deprecated path")
    assert_not_yet(check.ex_01_band_gap_of_entry(joules), capsys, "looks like joules")
    assert_not_yet(check.ex_01_band_gap_of_entry(lambda e: e["results"]["band_gap"]), capsys, "KeyError")


def test_checks_do_not_mutate_their_reference_entries() -> None:
    before = copy.deepcopy(check.BAND_GAP_ENTRIES)

    def vandal(entry):
        entry["results"].clear()
        return None

    check.ex_01_band_gap_of_entry(vandal)
    assert check.BAND_GAP_ENTRIES == before


# ------------------------------------------------------------------ notebook 02
def test_ex_02_normalize(capsys) -> None:
    right = {f: cleaning.normalize_formula(f, expand=True) for f in check.NORMALIZE_FORMULAS}
    assert_ok(check.ex_02_normalize(right), capsys)
    assert_not_yet(check.ex_02_normalize({**right, "FAPbI3": "FAPbI3"}), capsys, "keeps the abbreviation")
    assert_not_yet(
        check.ex_02_normalize({**right, "FAPbI3": "PbI3CH5N2"}), capsys, "right composition, written differently"
    )
    assert_not_yet(check.ex_02_normalize({**right, "FAPbI3": "CH6I3NPb"}), capsys, "expected")
    missing = dict(right)
    missing.pop("PbCH3NH3I3")
    assert_not_yet(check.ex_02_normalize(missing), capsys, "no answer for 'PbCH3NH3I3'")


def test_ex_02_groupby(clean: pd.DataFrame, capsys) -> None:
    solution = clean.groupby("formula")["band_gap_eV"].agg(
        n_entries="size", band_gap_mean_eV="mean", band_gap_median_eV="median", band_gap_std_eV="std"
    )
    assert_ok(check.ex_02_groupby(solution, clean), capsys)
    assert_ok(check.ex_02_groupby(cleaning.group_by_formula(clean), clean), capsys)  # formula as a column
    population = solution.assign(band_gap_std_eV=clean.groupby("formula")["band_gap_eV"].std(ddof=0))
    assert_not_yet(check.ex_02_groupby(population, clean), capsys, "ddof=0")
    mean_only = solution.drop(columns="band_gap_median_eV")
    assert_not_yet(check.ex_02_groupby(mean_only, clean), capsys, "band_gap_median_eV")
    shifted = solution.assign(band_gap_mean_eV=solution["band_gap_mean_eV"] + 0.01)
    assert_not_yet(check.ex_02_groupby(shifted, clean), capsys, "band_gap_mean_eV of")
    by_descriptive = (
        clean.groupby("formula_descriptive")["band_gap_eV"]
        .agg(n_entries="size", band_gap_mean_eV="mean", band_gap_median_eV="median", band_gap_std_eV="std")
        .iloc[:-1]
    )
    assert_not_yet(check.ex_02_groupby(by_descriptive, clean), capsys, "groups")


def _hampel(clean: pd.DataFrame, k: float, floor: float) -> pd.Series:
    med = clean.groupby("formula")["band_gap_eV"].transform("median")
    dev = clean["band_gap_eV"] - med
    mad = dev.abs().groupby(clean["formula"]).transform("median")
    n = clean.groupby("formula")["band_gap_eV"].transform("size")
    return (n >= 3) & (dev.abs() > np.maximum(k * mad, floor))


def test_ex_02_hampel(clean: pd.DataFrame, capsys) -> None:
    right = _hampel(clean, 3 * 1.4826, 0.2)
    line = assert_ok(check.ex_02_hampel(right, clean), capsys)
    assert f"{int(right.sum())} of {len(clean)} entries flagged" in line and right.sum() >= 1
    assert_ok(check.ex_02_hampel(list(clean.loc[right, "entry_id"]), clean), capsys)
    assert_not_yet(check.ex_02_hampel(_hampel(clean, 3, 0.2), clean), capsys, "1.4826")
    assert_not_yet(check.ex_02_hampel(_hampel(clean, 3 * 1.4826, 0.0), clean), capsys, "0.2 eV floor")
    assert_not_yet(check.ex_02_hampel(set(), clean), capsys, "0 right, 0 extra, 1 missed")
    shifted = right.copy()
    shifted.index = shifted.index + 1000
    assert_not_yet(check.ex_02_hampel(shifted, clean), capsys, "not aligned")
    assert_not_yet(check.ex_02_hampel(cleaning.flag_entry_outliers(clean), clean), capsys, "whole DataFrame")


def test_ex_02_hampel_accepts_every_natural_form_of_the_right_answer(clean: pd.DataFrame, capsys) -> None:
    right = _hampel(clean, 3 * 1.4826, 0.2)
    n = int(right.sum())
    forms = {
        "numpy bool array": right.to_numpy(),
        "0/1 ints": right.to_numpy().astype(int),
        "0/1 int Series": right.astype(int),
        "list of bools": right.tolist(),
        "index labels": list(clean.index[right.to_numpy()]),
        "entry_id Series": clean.loc[right, "entry_id"],
        "reordered bool Series (aligned by label)": right.iloc[::-1],
        "entry_id array": clean.loc[right, "entry_id"].to_numpy(),
    }
    for form, answer in forms.items():
        line = assert_ok(check.ex_02_hampel(answer, clean), capsys)
        assert f"{n} of {len(clean)} entries flagged" in line, form
    # wrong answers in those forms are still wrong, and a form the check cannot read names the expected ones
    wrong = _hampel(clean, 3, 0.2)
    assert_not_yet(check.ex_02_hampel(wrong.to_numpy(), clean), capsys, "1.4826")
    assert_not_yet(check.ex_02_hampel(wrong.to_numpy().astype(int), clean), capsys, "1.4826")
    assert_not_yet(check.ex_02_hampel(right.to_numpy()[:-1], clean), capsys, "flags for", "one True/False per row")
    assert_not_yet(check.ex_02_hampel(["MAPbI3", "FAPbI3"], clean), capsys, "neither entry_ids nor index labels")


def test_ex_02_hampel_accepts_floating_point_ties_at_the_threshold_only(clean: pd.DataFrame, capsys) -> None:
    # 2.50 - 2.30 = 0.20000000000000018 > 0.2 in floating point; the helper rounds to 1e-6 eV and does not flag it
    extra = clean[clean["formula"] == "CsI3Sn"].iloc[[0, 0, 0, 0]].copy()
    extra["entry_id"] = [f"tie-{i}" for i in range(4)]
    extra["band_gap_eV"] = [2.30, 2.30, 2.30, 2.50]
    with_tie = pd.concat([clean, extra], ignore_index=True)
    helper = cleaning.flag_entry_outliers(with_tie)
    assert not helper.loc[helper["entry_id"] == "tie-3", "is_outlier"].item()
    naive = _hampel(with_tie, 3 * 1.4826, 0.2)
    assert naive[with_tie["entry_id"] == "tie-3"].item()  # the by-hand rule flags the tie
    line = assert_ok(check.ex_02_hampel(naive, with_tie), capsys)
    assert "exactly on the threshold" in line
    # a real extra flag (not a tie) is still wrong
    wrong = naive | (with_tie["entry_id"] == "tie-0")
    assert_not_yet(check.ex_02_hampel(wrong, with_tie), capsys, "2 extra")  # the tie and the real extra


# ------------------------------------------------------------------ notebook 03
def test_ex_03_chemical_system(capsys) -> None:
    def solution(formula):
        return "-".join(composition.atomic_fractions(formula).elements)

    assert_ok(check.ex_03_chemical_system(solution), capsys)
    assert_not_yet(
        check.ex_03_chemical_system(lambda f: "-".join(reversed(composition.atomic_fractions(f).elements))),
        capsys,
        "not sorted",
    )

    def symbols(f):
        return re.findall(r"[A-Z][a-z]?", formulas.expand_abbreviations(f))

    assert_ok(check.ex_03_chemical_system(lambda f: "-".join(sorted(set(symbols(f))))), capsys)  # the notebook's way
    # forgetting sorted(): the symbols come in the formula's order (CsPbI3 -> Cs-Pb-I)
    assert_not_yet(
        check.ex_03_chemical_system(lambda f: "-".join(dict.fromkeys(symbols(f)))), capsys, "not sorted", "Cs-Pb-I"
    )
    # forgetting set(): the mixed perovskite repeats C, H and N
    assert_not_yet(check.ex_03_chemical_system(lambda f: "-".join(sorted(symbols(f)))), capsys, "repeats C, H, N")
    assert_not_yet(
        check.ex_03_chemical_system(lambda f: "-".join(sorted(set(formulas.symbols_in(f))))),
        capsys,
        "expand abbreviations",
    )
    assert_not_yet(
        check.ex_03_chemical_system(lambda f: composition.atomic_fractions(f).elements), capsys, "got a tuple"
    )


def test_ex_03_metrics(capsys) -> None:
    t = np.array([1.2, 1.6, 2.3, 3.0])
    p = np.array([1.4, 1.5, 2.0, 3.3])
    err = p - t
    right = {
        "MAE_eV": np.mean(np.abs(err)),
        "RMSE_eV": np.sqrt(np.mean(err**2)),
        "R2": 1 - np.sum(err**2) / np.sum((t - t.mean()) ** 2),
    }
    assert_ok(check.ex_03_metrics(right, t, p), capsys)
    assert_ok(check.ex_03_metrics(evaluation.regression_metrics(t, p), list(t), list(p)), capsys)
    assert_not_yet(check.ex_03_metrics({**right, "RMSE_eV": np.mean(err**2)}, t, p), capsys, "square root")
    assert_not_yet(check.ex_03_metrics({**right, "MAE_eV": np.mean(err)}, t, p), capsys, "absolute errors")
    assert_not_yet(
        check.ex_03_metrics({**right, "R2": np.corrcoef(t, p)[0, 1] ** 2}, t, p), capsys, "squared correlation"
    )
    assert_not_yet(check.ex_03_metrics({"MAE_eV": right["MAE_eV"]}, t, p), capsys, "RMSE_eV is missing")
    # rounded to 3 decimals is right (tolerance 0.0005); off by more is not
    assert_ok(check.ex_03_metrics({k: round(float(v), 3) for k, v in right.items()}, t, p), capsys)
    assert_not_yet(check.ex_03_metrics({**right, "R2": right["R2"] + 0.002}, t, p), capsys, "± 0.0005")


def test_ex_03_leakage(split: splits.Split, capsys) -> None:
    report = splits.leakage_report(split)
    want = report.shared_systems["train-test"]
    assert want > 0  # the random split shares systems: the exercise has a non-trivial answer
    train = set(split.train["chemical_system"])
    test = set(split.test["chemical_system"])
    assert_ok(check.ex_03_leakage(len(train & test), split), capsys)
    assert_not_yet(check.ex_03_leakage(len(test), split), capsys, "systems in the test set")
    assert_not_yet(check.ex_03_leakage(train & test, split), capsys, "len(...)")
    assert_not_yet(check.ex_03_leakage(want + 7, split), capsys, "expected another count")


def test_ex_03_leakage_names_counting_formulas_instead_of_systems(capsys) -> None:
    # four formulas per chemical system, as in the course's table (CsPbI3, Cs2PbI4, Cs4PbI6, CsPb2I5 ...)
    formulas_ = [
        f"{a}{s}{b}{x}{n}"
        for a in ("Cs", "Rb", "K")
        for b in ("Pb", "Sn")
        for x in ("I", "Br")
        for s, n in (("", 3), ("2", 4), ("4", 6), ("", "5"))
    ]
    table = pd.DataFrame({"formula": formulas_, "target": np.linspace(1.2, 2.9, len(formulas_))})
    table["chemical_system"] = table["formula"].map(composition.chemical_system)
    split = splits.random_split(table, seed=0, fractions=(0.6, 0.2, 0.2))
    train, test = set(split.train["chemical_system"]), set(split.test["chemical_system"])
    want = len(train & test)
    rows_in_test = int(split.test["chemical_system"].isin(train).sum())
    rows_in_train = int(split.train["chemical_system"].isin(test).sum())
    assert len({want, rows_in_test, rows_in_train}) == 3, (want, rows_in_test, rows_in_train)
    assert_ok(check.ex_03_leakage(want, split), capsys)
    assert_not_yet(check.ex_03_leakage(rows_in_test, split), capsys, "counts formulas, not systems", "test formulas")
    assert_not_yet(check.ex_03_leakage(rows_in_train, split), capsys, "counts formulas, not systems", "training")


def test_ex_03_coverage(rows: pd.DataFrame, capsys) -> None:
    err = (rows["pred_eV"] - rows["true_eV"]).abs()
    right = (float(np.mean(err <= rows["sigma_eV"])), float(np.mean(err <= 2 * rows["sigma_eV"])))
    assert_ok(check.ex_03_coverage(right, rows), capsys)
    assert_ok(check.ex_03_coverage({"within_1sigma": right[0], "within_2sigma": right[1]}, rows), capsys)
    assert_not_yet(check.ex_03_coverage((100 * right[0], 100 * right[1]), rows), capsys, "percentages")
    signed = rows["pred_eV"] - rows["true_eV"]
    wrong = (float(np.mean(signed <= rows["sigma_eV"])), float(np.mean(signed <= 2 * rows["sigma_eV"])))
    assert_not_yet(check.ex_03_coverage(wrong, rows), capsys, "absolute error")
    assert_not_yet(check.ex_03_coverage(0.75, rows), capsys, "expected a pair")
    # a numpy array or a list is a pair too; rounding to 3 decimals is right
    assert_ok(check.ex_03_coverage(np.array(right), rows), capsys)
    assert_ok(check.ex_03_coverage([round(right[0], 3), round(right[1], 3)], rows), capsys)
    assert_not_yet(check.ex_03_coverage(np.array(right + (0.5,)), rows), capsys, "ndarray of length 3")


# ------------------------------------------------------------------ quiz
def test_quiz_reveals_answer_only_after_trying(capsys) -> None:
    quiz._tries.clear()
    q = quiz.questions()["03.2"]
    wrong = next(letter for letter in q.options if letter != q.answer)
    line = assert_not_yet(quiz.answer("03.2", wrong), capsys, "try another option")
    assert q.why[q.answer] not in line  # first wrong try: no reveal
    line = assert_not_yet(quiz.answer("03.2", wrong), capsys, f"The answer is ({q.answer})")
    assert_ok(quiz.answer("03.2", f"({q.answer.upper()})"), capsys)
    assert_not_yet(quiz.answer("03.2", "z"), capsys, "not one of the options")
    assert_not_yet(quiz.answer("99.9", "a"), capsys, "no question '99.9'")


def test_every_quiz_question_is_well_formed() -> None:
    per_notebook: dict[str, int] = {}
    for qid, q in quiz.questions().items():
        assert q.answer in q.options and set(q.why) == set(q.options), qid
        per_notebook[qid.split(".")[0]] = per_notebook.get(qid.split(".")[0], 0) + 1
    assert all(per_notebook.get(nb, 0) >= 3 for nb in ("01", "02", "03", "04", "05")), per_notebook


def test_quiz_is_data_one_yaml_file_per_lesson() -> None:
    assert sorted(p.name for p in quiz.QUIZ_DIR.glob("*.yaml")) == [f"0{i}.yaml" for i in range(1, 6)]
    assert "QuizQuestion(" not in Path(check.__file__).read_text()  # no questions as Python literals


@pytest.mark.parametrize(
    "text, problem",
    [
        ("'03.1': {question: Q, options: {a: x, b: y}, answer: c, why: {a: r, b: s}}", "answer 'c' is not one of"),
        ("'03.1': {question: Q, options: {a: x, b: y}, answer: a, why: {a: r, c: s}}", "why explains"),
        ("'03.1': {question: Q, options: {a: x, b: y}, answer: a}", "needs exactly the fields"),
        ("'04.1': {question: Q, options: {a: x, b: y}, answer: a, why: {a: r, b: s}}", "ids in 03.yaml"),
        ("'03.1': {question: '', options: {a: x, b: y}, answer: a, why: {a: r, b: s}}", "non-empty text"),
        ("'03.1': [unclosed", "not valid YAML"),
        ("- just a list", "must map question ids"),
    ],
)
def test_quiz_loader_names_file_and_question(tmp_path: Path, text: str, problem: str) -> None:
    (tmp_path / "03.yaml").write_text(text + "\n")
    with pytest.raises(ValueError, match="03.yaml") as info:
        quiz.load_quiz(tmp_path)
    assert problem in str(info.value)
    with pytest.raises(FileNotFoundError, match="no quiz files"):
        quiz.load_quiz(tmp_path / "empty")


def test_quiz_html_hides_answer_in_details_and_show_quiz(capsys) -> None:
    text = quiz.as_html("02.1")
    why = quiz.questions()["02.1"].why["b"]
    assert text.index("<details>") < text.index(why.split(":")[0].replace("'", "&#x27;"))
    assert "<summary>" in text and text.count("<li>") == 3
    quiz.show("02.1")
    out = capsys.readouterr().out
    assert "Quiz 02.1" in out and "(b)" in out and why not in out


def test_verdict_displays_nothing_extra_in_ipython() -> None:
    verdict = check.Verdict(ok=True, exercise="x", message="m")
    assert verdict._ipython_display_() is None
    assert verdict == True and verdict != False  # noqa: E712


# --------------------------------------------------------------------------- notebook 04


def _template_ok(row):
    parts = [f"formula: {row['formula_reduced']}"]
    if isinstance(row.get("crystal_system"), str):
        parts += [f"crystal system: {row['crystal_system']}", f"space group number: {int(row['space_group_number'])}"]
    return "; ".join(parts)


def test_ex_04_template(capsys) -> None:
    assert_ok(check.ex_04_template(_template_ok), capsys)
    assert_not_yet(
        check.ex_04_template(
            lambda r: (
                f"formula: {r['formula_reduced']}; crystal system: {r['crystal_system']}; number {r['space_group_number']}"
            )
        ),
        capsys,
        "missing value",
    )
    assert_not_yet(check.ex_04_template(lambda r: _template_ok(r) + f"; gap {r['band_gap_eV']}"), capsys, "band gap")
    assert_not_yet(check.ex_04_template(lambda r: f"formula: {r['formula_reduced']}"), capsys, "crystal system")
    assert_not_yet(check.ex_04_template(lambda r: ""), capsys, "non-empty")


def test_ex_04_truncated_and_freeze(capsys) -> None:
    from helpers import text_models as tm

    tok = tm.load_encoder(tm.SHIPPED_NAME, verbose=False).tokenizer
    texts = ["formula: GaAs", "formula: GaAs; " * 20, "crystal system: cubic; " * 30, "formula: NaCl; " * 3]
    # all but the first text are longer than 8 tokens with or without <s> and </s>: the count at the
    # model's limit cannot tell the slip, so the check also tries limits around a text's length

    def right(texts, max_length):
        return sum(len(ids) > max_length for ids in tok(list(texts))["input_ids"])

    def no_specials(texts, max_length):
        return sum(len(ids) > max_length for ids in tok(list(texts), add_special_tokens=False)["input_ids"])

    def at_least(texts, max_length):
        return sum(len(ids) >= max_length for ids in tok(list(texts))["input_ids"])

    assert no_specials(texts, 8) == right(texts, 8)  # the slip the old count-only exercise could not see
    line = assert_ok(check.ex_04_truncated(right, tok, texts, 8), capsys)
    assert f"{right(texts, 8)} of 4 texts are cut at 8 tokens" in line
    assert_not_yet(check.ex_04_truncated(no_specials, tok, texts, 8), capsys, "leaves out the special tokens")
    assert_not_yet(check.ex_04_truncated(at_least, tok, texts, 8), capsys, "exactly max_length tokens fits")
    assert_not_yet(check.ex_04_truncated(lambda t, m: right(t, 8), tok, texts, 8), capsys, "ignores its max_length")
    assert_not_yet(check.ex_04_truncated(right(texts, 8), tok, texts, 8), capsys, "expected a function")

    def freeze(model):
        for p in model.encoder.parameters():
            p.requires_grad_(False)

    def freeze_all(model):
        for p in model.parameters():
            p.requires_grad_(False)

    assert_ok(check.ex_04_freeze(freeze), capsys)
    assert_not_yet(check.ex_04_freeze(freeze_all), capsys, "head")
    assert_not_yet(check.ex_04_freeze(lambda m: None), capsys, "encoder tensors")


def test_ex_03_leakage_check(capsys) -> None:
    def solution(part_a, part_b, key):
        return set(part_a[key]) & set(part_b[key])

    assert_ok(check.ex_03_leakage_check(solution), capsys)
    # written differently: a numpy array, a sorted list, a pandas Index
    assert_ok(check.ex_03_leakage_check(lambda a, b, key: np.intersect1d(a[key], b[key])), capsys)
    assert_ok(check.ex_03_leakage_check(lambda a, b, key: sorted(a[key][a[key].isin(b[key])])), capsys)
    assert_ok(check.ex_03_leakage_check(lambda a, b, key: pd.Index(a[key]).intersection(b[key])), capsys)
    # the typical mistakes, each named
    rows = check.ex_03_leakage_check(lambda a, b, key: set(a.index) & set(b.index))
    assert_not_yet(rows, capsys, "index labels", "row numbers")
    positions = check.ex_03_leakage_check(lambda a, b, key: {x for x, y in zip(a[key], b[key], strict=False) if x == y})
    assert_not_yet(positions, capsys, "position by position")
    whole_rows = check.ex_03_leakage_check(lambda a, b, key: set(a.merge(b)[key]))
    assert_not_yet(whole_rows, capsys, "whole rows")
    assert_not_yet(
        check.ex_03_leakage_check(lambda a, b, key: set(a["formula"]) & set(b["formula"])), capsys, "formula column"
    )
    assert_not_yet(check.ex_03_leakage_check(lambda a, b, key: set(a[key]) | set(b[key])), capsys, "union")
    assert_not_yet(check.ex_03_leakage_check(lambda a, b, key: len(solution(a, b, key))), capsys, "len()")
    assert_not_yet(check.ex_03_leakage_check(lambda a, b, key: bool(solution(a, b, key))), capsys, "WHICH keys")


def _reference_cluster_bootstrap(err_a, err_b, clusters, n_boot, seed):
    """The notebook's way (a loop over draws, written for reading)."""
    rng = np.random.default_rng(seed)
    diff = pd.Series(np.asarray(err_a) - np.asarray(err_b))
    groups = pd.Series(np.asarray(clusters))
    names = groups.unique()
    out = []
    for _ in range(n_boot):
        drawn = rng.choice(names, size=len(names), replace=True)
        out.append(np.concatenate([diff[groups == c].to_numpy() for c in drawn]).mean())
    return np.array(out)


def test_ex_03_cluster_bootstrap(capsys) -> None:
    from helpers import evaluation

    assert_ok(check.ex_03_cluster_bootstrap(_reference_cluster_bootstrap), capsys)

    def vectorised(err_a, err_b, clusters, n_boot, seed):  # written differently: bincount, like the lesson cell
        names, which = np.unique(clusters, return_inverse=True)
        total, count = np.bincount(which, weights=err_a - err_b), np.bincount(which)
        draws = np.random.default_rng(seed).integers(0, len(names), size=(n_boot, len(names)))
        return total[draws].sum(axis=1) / count[draws].sum(axis=1)

    assert_ok(check.ex_03_cluster_bootstrap(vectorised), capsys)

    def rows(err_a, err_b, clusters, n_boot, seed):
        diff = err_a - err_b
        idx = np.random.default_rng(seed).integers(0, len(diff), size=(n_boot, len(diff)))
        return diff[idx].mean(axis=1)

    assert_not_yet(check.ex_03_cluster_bootstrap(rows), capsys, "resampled rows", "too narrow")

    def cluster_means(err_a, err_b, clusters, n_boot, seed):
        means = pd.Series(err_a - err_b).groupby(np.asarray(clusters)).mean().to_numpy()
        idx = np.random.default_rng(seed).integers(0, len(means), size=(n_boot, len(means)))
        return means[idx].mean(axis=1)

    assert_not_yet(check.ex_03_cluster_bootstrap(cluster_means), capsys, "cluster of 1 material")

    def unpaired(err_a, err_b, clusters, n_boot, seed):
        rng = np.random.default_rng(seed)
        one = vectorised(err_a, np.zeros_like(err_b), clusters, n_boot, int(rng.integers(1000)))
        two = vectorised(err_b, np.zeros_like(err_a), clusters, n_boot, int(rng.integers(1000)))
        return one - two

    assert_not_yet(check.ex_03_cluster_bootstrap(unpaired), capsys, "separately", "paired")

    def no_replacement(err_a, err_b, clusters, n_boot, seed):
        rng = np.random.default_rng(seed)
        names = np.unique(clusters)
        return np.array(
            [
                np.mean(np.concatenate([(err_a - err_b)[clusters == c] for c in rng.permutation(names)]))
                for _ in range(n_boot)
            ]
        )

    assert_not_yet(check.ex_03_cluster_bootstrap(no_replacement), capsys, "WITH replacement")
    unseeded = check.ex_03_cluster_bootstrap(lambda a, b, c, n, seed: vectorised(a, b, c, n, None))
    assert_not_yet(unseeded, capsys, "seed=0")
    interval = check.ex_03_cluster_bootstrap(
        lambda a, b, c, n, seed: evaluation.paired_bootstrap_mae_delta(np.zeros_like(a), a, b, n_boot=n, clusters=c)
    )
    assert_not_yet(interval, capsys, "three numbers")
