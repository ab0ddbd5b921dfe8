"""One source for the code notebook 04 teaches (issue 18 §1).

Notebook 04 defines masked mean pooling (``mean_pool``), one training step (``train_step``), the evaluation loop
(``evaluate``) and one epoch of a head on cached vectors (``head_epoch``) in its own cells, for the student to
read and edit. ``helpers/text_models.py`` has functions of the same names that its training loops, ``predict`` and
``pooled_embeddings`` call. These tests run the notebook's cells (found by cell id; only their ``def`` blocks)
and prove that both give the same results on tiny inputs: equal pooled vectors, equal weights and learning rates
after a step, equal outputs and modes after evaluation, equal losses and weights after an epoch. A change to
either side that breaks the agreement fails here.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from helpers import text_models as tm  # noqa: E402
from _notebook_cells import cell_definitions  # noqa: E402

NOTEBOOK = "04_text_models.ipynb"


def _definitions(cell_id: str) -> dict:
    """Execute only the ``def`` blocks of notebook 04's cell ``cell_id`` (not its demo lines) and return them."""
    return cell_definitions(NOTEBOOK, cell_id, np=np, torch=torch)


def test_the_cells_define_the_four_pieces() -> None:
    assert "mean_pool" in _definitions("pool-def")
    assert "train_step" in _definitions("step-def")
    assert "evaluate" in _definitions("eval-def")
    assert "head_epoch" in _definitions("head-def")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_notebook_mean_pool_equals_the_helper(seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    hidden = torch.randn(3, 5, 4, generator=gen)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 0, 0, 0, 0]])
    mine = _definitions("pool-def")["mean_pool"](hidden, mask)
    assert torch.equal(mine, tm.mean_pool(hidden, mask))
    assert torch.allclose(mine[1], hidden[1, :2].mean(0))  # padding left out
    # an all-padding row gives zeros in both, not nan
    empty = torch.zeros(1, 5, dtype=torch.long)
    assert torch.equal(_definitions("pool-def")["mean_pool"](hidden[:1], empty), tm.mean_pool(hidden[:1], empty))


def test_the_regressor_pools_with_mean_pool() -> None:
    torch.manual_seed(0)
    model = tm.TextRegressor(tm.tiny_roberta(40, hidden=8, layers=1, heads=2, max_length=10, masked_lm=False)).eval()
    ids = torch.tensor([[0, 5, 6, 7, 2], [0, 5, 2, 1, 1]])
    mask = (ids != 1).long()
    with torch.no_grad():
        hidden = model.encoder(input_ids=ids, attention_mask=mask).last_hidden_state
        assert torch.equal(model.pooled(ids, mask), _definitions("pool-def")["mean_pool"](hidden, mask))


class _Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 1)
        self.drop = nn.Dropout(0.3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(self.drop(x)).squeeze(-1)


def _setup(seed: int):
    torch.manual_seed(seed)
    model = _Tiny()
    opt = torch.optim.AdamW(model.parameters(), lr=0.05)
    sched = torch.optim.lr_scheduler.LinearLR(opt, 1.0, 0.1, total_iters=5)
    return model, opt, sched


def test_notebook_train_step_equals_the_helper() -> None:
    step = _definitions("step-def")["train_step"]
    x, target = torch.randn(6, 3, generator=torch.Generator().manual_seed(3)), torch.linspace(-1, 1, 6)
    results = []
    for fn in (step, tm.train_step):
        model, opt, sched = _setup(0)
        for p in model.parameters():  # a gradient left over from a previous batch must be cleared
            p.grad = torch.ones_like(p)
        torch.manual_seed(5)  # the same dropout masks
        losses = [fn(model, {"x": x}, target, nn.L1Loss(), opt, sched) for _ in range(3)]
        results.append((losses, copy.deepcopy(model.state_dict()), opt.param_groups[0]["lr"]))
    (l1, w1, lr1), (l2, w2, lr2) = results
    assert all(isinstance(v, float) for v in l1) and l1 == l2 and lr1 == lr2
    assert all(torch.equal(w1[k], w2[k]) for k in w1)


def test_notebook_evaluate_equals_the_helper() -> None:
    evaluate = _definitions("eval-def")["evaluate"]
    gen = torch.Generator().manual_seed(4)
    batches = [{"x": torch.randn(n, 3, generator=gen)} for n in (4, 2, 3)]
    outs = []
    for fn in (evaluate, tm.evaluate):
        model, _, _ = _setup(1)
        model.train()
        out = fn(model, batches)
        assert not model.training and not out.requires_grad and out.shape == (9,)
        outs.append(out)
    assert torch.equal(outs[0], outs[1])


def test_notebook_head_epoch_equals_the_helper() -> None:
    ns = _definitions("head-def")
    ns["train_step"] = _definitions("step-def")["train_step"]  # the notebook's head_epoch calls the notebook's step
    gen = torch.Generator().manual_seed(7)
    vectors, targets = torch.randn(10, 4, generator=gen), torch.randn(10, 1, generator=gen)
    results = []
    for fn in (ns["head_epoch"], tm.head_epoch):
        torch.manual_seed(2)
        head = nn.Sequential(nn.Linear(4, 3), nn.GELU(), nn.Linear(3, 1))
        opt = torch.optim.AdamW(head.parameters(), lr=0.01)
        sched = torch.optim.lr_scheduler.LinearLR(opt, 1.0, 0.0, total_iters=8)
        losses = fn(head, vectors, targets, nn.L1Loss(), opt, sched, 4, np.random.default_rng(0))
        results.append((losses, copy.deepcopy(head.state_dict())))
    assert len(results[0][0]) == 3 and results[0][0] == results[1][0]  # 10 vectors in batches of 4
    assert all(torch.equal(results[0][1][k], results[1][1][k]) for k in results[0][1])
