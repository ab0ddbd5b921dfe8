"""Checks of notebook 05's exercises: the reference solution passes, typical wrong answers get a hint."""

from __future__ import annotations

import numpy as np
from test_checks import assert_not_yet, assert_ok

from exercises import checks as check
from exercises import quiz


def test_registered_easy_to_hard_with_quiz() -> None:
    levels = [lvl for (nb, lvl, _task) in check.EXERCISES.values() if nb == "05"]
    assert len(levels) >= 3 and {"easy", "hard"} <= set(levels)


def test_levels_match_the_notebook_headers() -> None:
    """The level a student reads in the exercise header is the one EXERCISES registers."""
    import json
    import re
    from pathlib import Path

    nb = json.loads((Path(__file__).resolve().parent.parent / "notebooks" / "05_interpretation.ipynb").read_text())
    text = "\n".join("".join(c["source"]) for c in nb["cells"])
    headers = re.findall(r"### Exercise \d+ \((easy|medium|hard)\)", text)
    calls = re.findall(r"checks\.(ex_05_\w+)\(", text)
    assert len(headers) == len(calls) == 5
    assert headers == [check.EXERCISES[name][1] for name in calls]
    assert sum(q.startswith("05.") for q in quiz.questions()) >= 3


def test_ex_05_knn_mae(capsys) -> None:
    def right(X, y, k):
        d = np.linalg.norm(X[:, None] - X[None], axis=-1)
        np.fill_diagonal(d, np.inf)
        return float(np.mean(np.abs(y[np.argsort(d, axis=1)[:, :k]].mean(axis=1) - y)))

    def with_self(X, y, k):
        d = np.linalg.norm(X[:, None] - X[None], axis=-1)
        return float(np.mean(np.abs(y[np.argsort(d, axis=1)[:, :k]].mean(axis=1) - y)))

    assert_ok(check.ex_05_knn_mae(right), capsys)
    assert_not_yet(check.ex_05_knn_mae(with_self), capsys, "counts itself")
    assert_not_yet(check.ex_05_knn_mae(lambda X, y, k: 0.5), capsys, "expected")
    assert_ok(check.ex_05_knn_mae(lambda X, y, k: round(right(X, y, k), 3)), capsys)  # tolerance 0.0005 eV
    assert_not_yet(check.ex_05_knn_mae(lambda X, y, k: right(X, y, k) + 0.002), capsys, "expected")


def test_ex_05_token_categories(capsys) -> None:
    def right(spans, offsets):
        out = []
        for a, b in offsets:
            best, most = None, 0
            for c, s, e in spans:
                if b > a and min(b, e) - max(a, s) > most:
                    best, most = c, min(b, e) - max(a, s)
            out.append(best)
        return out

    def by_start_inclusive(spans, offsets):  # glue and special tokens land in a category
        return [next((c for c, s, e in spans if s <= a <= e), None) for a, b in offsets]

    assert_ok(check.ex_05_token_categories(right), capsys)
    assert_not_yet(check.ex_05_token_categories(by_start_inclusive), capsys, "token 0")
    assert_not_yet(check.ex_05_token_categories(lambda s, o: right(s, o)[1:]), capsys, "entries for")
    # a numpy object array of categories is a list of categories too
    assert_ok(check.ex_05_token_categories(lambda s, o: np.array(right(s, o), dtype=object)), capsys)
    assert_not_yet(
        check.ex_05_token_categories(lambda s, o: np.array(by_start_inclusive(s, o), dtype=object)), capsys, "token 0"
    )


def test_ex_05_category_attention(capsys) -> None:
    def right(row, cats):
        out = {}
        for c in dict.fromkeys(x for x in cats if x is not None):
            sel = [i for i, x in enumerate(cats) if x == c]
            out[c] = (float(np.sum(row[sel])), float(np.sum(row[sel])) / len(sel))
        return out

    def no_division(row, cats):
        return {c: (s, s) for c, (s, _p) in right(row, cats).items()}

    assert_ok(check.ex_05_category_attention(right), capsys)
    assert_not_yet(check.ex_05_category_attention(no_division), capsys, "divide the sum")
    assert_not_yet(check.ex_05_category_attention(lambda r, c: [1, 2]), capsys, "expected a dict")
    # a numpy pair and 3-decimal rounding are right
    assert_ok(check.ex_05_category_attention(lambda r, c: {k: np.array(v) for k, v in right(r, c).items()}), capsys)
    assert_ok(
        check.ex_05_category_attention(
            lambda r, c: {k: (round(a, 3), round(b, 3)) for k, (a, b) in right(r, c).items()}
        ),
        capsys,
    )
    assert_not_yet(
        check.ex_05_category_attention(lambda r, c: {k: (a,) for k, (a, _b) in right(r, c).items()}),
        capsys,
        "a pair (summed, per_token)",
    )
    # None (separators, special tokens) as a category is refused, and named
    with_none = lambda r, c: {**right(r, c), None: (0.1, 0.1)}  # noqa: E731
    assert_not_yet(check.ex_05_category_attention(with_none), capsys, "None")
    assert_not_yet(check.ex_05_category_attention(lambda r, c: {**right(r, c), "other": (0.0, 0.0)}), capsys, "'other'")


def test_ex_05_pooled_attention(capsys) -> None:
    import torch

    def right(attentions, attention_mask):
        att = torch.stack([a.detach() for a in attentions], dim=1)
        q = attention_mask[:, None, None, :, None].to(att.dtype)
        return (att * q).sum(dim=3) / q.sum(dim=3)

    def loop_version(attentions, attention_mask):  # right, written differently: numpy and a loop
        out = []
        for b in range(attention_mask.shape[0]):
            real = attention_mask[b].bool().numpy()
            out.append(np.stack([a[b].detach().numpy()[:, real, :].mean(axis=1) for a in attentions]))
        return np.stack(out)

    assert_ok(check.ex_05_pooled_attention(right), capsys)
    assert_ok(check.ex_05_pooled_attention(loop_version), capsys)
    first = lambda a, m: torch.stack([x.detach() for x in a], dim=1)[:, :, :, 0, :]  # noqa: E731
    assert_not_yet(check.ex_05_pooled_attention(first), capsys, "first token")
    padded = lambda a, m: torch.stack([x.detach() for x in a], dim=1).mean(dim=3)  # noqa: E731
    assert_not_yet(check.ex_05_pooled_attention(padded), capsys, "padding query rows")
    attached = lambda a, m: right(a, m) + 0 * torch.stack(list(a), dim=1).sum(dim=3)  # noqa: E731
    assert_not_yet(check.ex_05_pooled_attention(attached), capsys, "autograd graph")
    keys = lambda a, m: torch.stack([x.detach() for x in a], dim=1).mean(dim=4)  # noqa: E731
    assert_not_yet(check.ex_05_pooled_attention(keys), capsys, "keys")
    # the layers stacked on the wrong axis: the message names the axes (batch, layers, heads have distinct sizes)
    for dim, order in ((0, "(layers, batch, heads, tokens)"), (2, "(batch, heads, layers, tokens)")):
        wrong_axis = lambda a, m, dim=dim: torch.movedim(right(a, m), 1, dim)  # noqa: E731
        assert_not_yet(check.ex_05_pooled_attention(wrong_axis), capsys, f"your axes are {order}")


def test_tiny_attentions_have_distinct_axis_sizes() -> None:
    layers, mask = check._tiny_attentions()
    shape = (mask.shape[0], len(layers), layers[0].shape[1], mask.shape[1])
    assert len(set(shape)) == 4, shape


def test_ex_05_recorder(capsys) -> None:
    def right(module, store):
        return module.register_forward_hook(lambda mod, inp, out: store.append(out.detach()))

    def not_detached(module, store):
        return module.register_forward_hook(lambda mod, inp, out: store.append(out))

    def no_handle(module, store):
        module.register_forward_hook(lambda mod, inp, out: store.append(out.detach()))

    def inputs(module, store):
        return module.register_forward_hook(lambda mod, inp, out: store.append(inp[0].detach()))

    def overwrite(module, store):
        def hook(mod, inp, out):
            store[:] = [out.detach()]

        return module.register_forward_hook(hook)

    assert_ok(check.ex_05_recorder(right), capsys)
    assert_not_yet(check.ex_05_recorder(not_detached), capsys, "autograd graph")
    assert_not_yet(check.ex_05_recorder(no_handle), capsys, "handle")
    assert_not_yet(check.ex_05_recorder(inputs), capsys, "expected the output")
    assert_not_yet(check.ex_05_recorder(overwrite), capsys, "append")

    def as_numpy(module, store):
        return module.register_forward_hook(lambda mod, inp, out: store.append(out.detach().numpy()))

    assert_not_yet(check.ex_05_recorder(as_numpy), capsys, "not a numpy array")
