"""Checks of notebook 04's write-the-core exercises (issue 18 §2): the reference passes, typical slips are named."""

from __future__ import annotations

import warnings

import numpy as np
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


@pytest.mark.parametrize(
    ("wrong", "fragment"),
    [
        (_eval_no_eval, "still in training mode"),
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
