"""Checks of notebook 04's write-the-core exercises (issue 18 §2): the reference passes, typical slips are named."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from test_checks import assert_not_yet, assert_ok

from exercises import checks as check

torch = pytest.importorskip("torch")


# ------------------------------------------------------------------ masked mean pooling
def _pool_right(hidden, attention_mask):
    mask = attention_mask.unsqueeze(-1).float()
    return (hidden * mask).sum(1) / mask.sum(1)


def _pool_right_written_differently(hidden, attention_mask):  # a loop over texts, numpy out
    out = []
    for h, m in zip(hidden, attention_mask):
        out.append(h[m.bool()].mean(0).numpy())
    return np.stack(out)


def test_ex_04_mean_pool_accepts_right_answers(capsys) -> None:
    assert_ok(check.ex_04_mean_pool(_pool_right), capsys)
    assert_ok(check.ex_04_mean_pool(_pool_right_written_differently), capsys)


@pytest.mark.parametrize(
    ("wrong", "fragment"),
    [
        (lambda h, m: h.mean(1), "averaged over the padding"),
        (lambda h, m: (h * m.unsqueeze(-1)).sum(1), "did not divide"),
        (lambda h, m: (h * m.unsqueeze(-1)).sum(1) / h.shape[1], "divided by all positions"),
        (lambda h, m: h[:, 0], "first token"),
        (lambda h, m: h.mean(2), "wrong axis"),
        (lambda h, m: h.mul_(m.unsqueeze(-1)).sum(1) / m.sum(1, keepdim=True), "in place"),
        (lambda h, m: "a vector", "expected a (2, 3) tensor"),
        (lambda h, m: (h * m).sum(1) / m.sum(1, keepdim=True), "needs a last axis"),  # unsqueeze forgotten
    ],
)
def test_ex_04_mean_pool_names_the_slip(wrong, fragment, capsys) -> None:
    assert_not_yet(check.ex_04_mean_pool(wrong), capsys, fragment)


def test_ex_04_mean_pool_stub_is_not_attempted(capsys) -> None:
    def stub(hidden, attention_mask):
        raise NotImplementedError("write the pooling")

    line = assert_not_yet(check.ex_04_mean_pool(stub), capsys, "not attempted yet")
    assert "write the pooling" in line


# ------------------------------------------------------------------ one training step
def _step_right(model, inputs, target, loss_fn, optimizer, scheduler):
    loss = loss_fn(model(**inputs), target)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    scheduler.step()
    return loss.item()


def _step_right_zero_first(model, inputs, target, loss_fn, optimizer, scheduler):
    optimizer.zero_grad(set_to_none=False)
    prediction = model(**inputs)
    loss = loss_fn(prediction, target)
    loss.backward()
    optimizer.step()
    scheduler.step()
    return float(loss.detach())


def _step_no_zero_grad(model, inputs, target, loss_fn, optimizer, scheduler):
    loss = loss_fn(model(**inputs), target)
    loss.backward()
    optimizer.step()
    scheduler.step()
    return loss.item()


def _step_zero_after_backward(model, inputs, target, loss_fn, optimizer, scheduler):
    loss = loss_fn(model(**inputs), target)
    loss.backward()
    optimizer.zero_grad()
    optimizer.step()
    scheduler.step()
    return loss.item()


def _step_no_step(model, inputs, target, loss_fn, optimizer, scheduler):
    loss = loss_fn(model(**inputs), target)
    optimizer.zero_grad()
    loss.backward()
    scheduler.step()
    return loss.item()


def _step_no_schedule(model, inputs, target, loss_fn, optimizer, scheduler):
    loss = loss_fn(model(**inputs), target)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


def _step_schedule_first(model, inputs, target, loss_fn, optimizer, scheduler):
    loss = loss_fn(model(**inputs), target)
    optimizer.zero_grad()
    loss.backward()
    scheduler.step()
    optimizer.step()
    return loss.item()


def _step_not_detached(model, inputs, target, loss_fn, optimizer, scheduler):
    loss = loss_fn(model(**inputs), target)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    scheduler.step()
    return loss


def _step_dict_not_unpacked(model, inputs, target, loss_fn, optimizer, scheduler):
    loss = loss_fn(model(inputs), target)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    scheduler.step()
    return loss.item()


def _step_returns_nothing(model, inputs, target, loss_fn, optimizer, scheduler):
    _step_right(model, inputs, target, loss_fn, optimizer, scheduler)


def test_ex_04_train_step_accepts_right_answers(capsys) -> None:
    assert_ok(check.ex_04_train_step(_step_right), capsys)
    assert_ok(check.ex_04_train_step(_step_right_zero_first), capsys)


@pytest.mark.parametrize(
    ("wrong", "fragment"),
    [
        (_step_no_zero_grad, "zero_grad is missing"),
        (_step_zero_after_backward, "zero_grad() ran after backward()"),
        (_step_no_step, "did not move"),
        (_step_no_schedule, "schedule was not advanced"),
        (_step_schedule_first, "before the optimizer's step"),
        (_step_not_detached, "graph attached"),
        (_step_returns_nothing, "returns nothing"),
        (_step_dict_not_unpacked, "model(inputs) instead of model(**inputs)"),
    ],
)
def test_ex_04_train_step_names_the_slip(wrong, fragment, capsys) -> None:
    with warnings.catch_warnings():  # torch warns when the schedule moves before the optimizer
        warnings.simplefilter("ignore")
        assert_not_yet(check.ex_04_train_step(wrong), capsys, fragment)


# ------------------------------------------------------------------ evaluation loop
def _eval_right(model, batches):
    model.eval()
    with torch.no_grad():
        return torch.cat([model(**b) for b in batches])


def _eval_right_numpy(model, batches):
    model.eval()
    out = []
    with torch.inference_mode():
        for batch in batches:
            out.extend(model(**batch).tolist())
    return np.array(out)


def _eval_restores_mode(model, batches):  # right, and polite: leaves the model in the mode it found
    was_training = model.training
    model.eval()
    with torch.no_grad():
        out = torch.cat([model(**b) for b in batches])
    model.train(was_training)
    return out


def _eval_no_eval(model, batches):
    with torch.no_grad():
        return torch.cat([model(**b) for b in batches])


def _eval_no_grad_missing(model, batches):
    model.eval()
    return torch.cat([model(**b) for b in batches]).detach()


def _eval_list(model, batches):
    model.eval()
    with torch.no_grad():
        return [model(**b) for b in batches]


def _eval_last_batch(model, batches):
    model.eval()
    with torch.no_grad():
        for b in batches:
            out = model(**b)
    return out


def test_ex_04_evaluate_accepts_right_answers(capsys) -> None:
    assert_ok(check.ex_04_evaluate(_eval_right), capsys)
    assert_ok(check.ex_04_evaluate(_eval_right_numpy), capsys)
    assert_ok(check.ex_04_evaluate(_eval_restores_mode), capsys)


@pytest.mark.parametrize(
    ("wrong", "fragment"),
    [
        (_eval_no_eval, "ran in training mode"),
        (_eval_no_grad_missing, "gradients on"),
        (_eval_list, "list of 3 tensors"),
        (_eval_last_batch, "expected 9 outputs"),
    ],
)
def test_ex_04_evaluate_names_the_slip(wrong, fragment, capsys) -> None:
    assert_not_yet(check.ex_04_evaluate(wrong), capsys, fragment)


def test_notebook_04_has_the_write_the_core_exercises() -> None:
    ids = {name for name, (nb, _lvl, _task) in check.EXERCISES.items() if nb == "04"}
    assert {"ex_04_mean_pool", "ex_04_train_step", "ex_04_evaluate"} <= ids


# ------------------------------------------------------------------ template (exercise 1) and freeze (exercise 6)
def _template_right(row):
    parts = [f"formula: {row['formula_reduced']}"]
    if not pd.isna(row.get("crystal_system")):
        parts.append(f"crystal system: {row['crystal_system']}")
    if not pd.isna(row.get("space_group_number")):
        parts.append(f"space group number: {int(row['space_group_number'])}")
    return "; ".join(parts)


def _template_attributes(row):  # attribute access, as on a row of mp from itertuples / iterrows
    text = f"formula: {row.formula_reduced}"
    if isinstance(row.crystal_system, str):
        text += f", {row.crystal_system}, space group {int(row.space_group_number)}"
    return text


def test_ex_04_template_accepts_right_answers(capsys) -> None:
    assert_ok(check.ex_04_template(_template_right), capsys)
    assert_ok(check.ex_04_template(_template_attributes), capsys)


@pytest.mark.parametrize(
    "leak",
    [
        lambda r: f"band gap: {r['band_gap_eV']:.1f} eV",  # 0.19 -> 0.2
        lambda r: f"band gap: {r['band_gap_eV']:.3f} eV",  # 0.190
        lambda r: f"gap = {r['band_gap_eV']:.0f}",  # a number right after "gap"
        lambda r: f"({r['band_gap_eV']:.2f})",  # no word, the number itself
    ],
)
def test_ex_04_template_finds_the_gap_at_any_rounding(leak, capsys) -> None:
    assert_not_yet(check.ex_04_template(lambda r: _template_right(r) + "; " + leak(r)), capsys, "band gap")


def test_writes_gap_leaves_other_numbers_alone() -> None:
    assert not check._writes_gap("formula: GaAs; volume 47.05; Ga 0.500, As 0.500; space group 216", 0.19)
    assert check._writes_gap("formula: GaAs; 0.2 eV", 0.19)
    assert check._writes_gap("band gap 0 eV", 0.0)


def test_ex_04_freeze_names_eval(capsys) -> None:
    def freeze(model):
        for p in model.encoder.parameters():
            p.requires_grad_(False)

    assert_ok(check.ex_04_freeze(freeze), capsys)
    assert_not_yet(check.ex_04_freeze(lambda m: m.encoder.eval()), capsys, "eval() only switches dropout off")
