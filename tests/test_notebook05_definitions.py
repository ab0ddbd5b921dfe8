"""One source for the code notebook 05 teaches (issue 18 §1, issue 17).

Notebook 05 defines, in cells the student reads and edits: the t-SNE call (``tsne-def``), attention averaged over
the real query tokens and attention rollout from ``output_attentions`` (``attention-def``), the substitution loop
(``intervene-def``) and the forward hooks on CrabNet's encoder (``crab-hook-def``). ``helpers.interpret`` and
``helpers.crabnet.attention`` keep the same code for benchmarks/interpretation.py and the batched calls; these
tests run only the ``def`` blocks of those cells (found by cell id) and prove both give the same results on small
inputs. A change to either side that breaks the agreement fails here.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from helpers import interpret
from _notebook_cells import cell_definitions

NOTEBOOK = "05_interpretation.ipynb"


def _definitions(cell_id: str, **namespace) -> dict:
    """Execute only the ``def`` blocks of notebook 05's cell ``cell_id`` (not its demo lines) and return them."""
    return cell_definitions(NOTEBOOK, cell_id, np=np, pd=pd, **namespace)


def test_notebook_tsne_equals_the_helper() -> None:
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    ns = _definitions("tsne-def", PCA=PCA, TSNE=TSNE)
    rng = np.random.default_rng(0)
    for X in (rng.normal(size=(40, 8)), rng.normal(size=(60, 70))):  # with and without the PCA step
        np.testing.assert_allclose(
            ns["tsne_2d"](X, perplexity=10.0, seed=3), interpret.tsne_2d(X, perplexity=10.0, seed=3)
        )


def test_notebook_attention_equals_the_helper() -> None:
    torch = pytest.importorskip("torch")
    ns = _definitions("attention-def", torch=torch)
    g = torch.Generator().manual_seed(1)
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]])
    layers = []
    for _ in range(3):
        logits = torch.randn(2, 4, 6, 6, generator=g).masked_fill(mask[:, None, None, :] == 0, float("-inf"))
        layers.append(torch.softmax(logits, dim=-1))
    assert torch.equal(ns["mean_query_attention"](layers, mask), interpret.mean_query_attention(layers, mask))
    assert torch.equal(ns["attention_rollout"](layers, mask), interpret.attention_rollout(layers, mask))
    # and the padded text gives what it gives alone
    alone = [a[1:, :, :4, :4] for a in layers]
    np.testing.assert_allclose(
        ns["attention_rollout"](alone, mask[1:, :4])[0].numpy(),
        ns["attention_rollout"](layers, mask)[1, :4].numpy(),
        atol=1e-6,
    )


def test_notebook_substitution_loop_equals_the_helper() -> None:
    from helpers import descriptions, mp_data

    ns = _definitions("intervene-def")
    descs = descriptions.describe_rows(mp_data.read_dataset_csv().head(12), "structured")
    d = descs[0]
    for c in ("composition", "symmetry", "geometry"):
        assert ns["substitute"](d, descs[3], c) == interpret.substitute(d, descs[3], c)

    def predict(texts):  # a stand-in model: a number from the text
        return np.array([len(t) % 7 + 0.1 * t.count("cubic") for t in texts], dtype=float)

    cats = ["composition", "electronic", "symmetry", "geometry"]
    mine = ns["substitution_effects"](predict, descs, cats, seed=5)
    pd.testing.assert_frame_equal(mine, interpret.substitution_effects(predict, descs, cats, seed=5))
    assert len(mine) > 0


def test_notebook_crabnet_hooks_equal_the_helper() -> None:
    torch = pytest.importorskip("torch")
    from helpers.crabnet.attention import recording_attention

    ns = _definitions("crab-hook-def")
    torch.manual_seed(0)
    layer = torch.nn.TransformerEncoderLayer(d_model=8, nhead=2, dim_feedforward=16, dropout=0.0)
    sub = SimpleNamespace(
        encoder=SimpleNamespace(
            transformer_encoder=torch.nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
        )
    )
    enc = sub.encoder.transformer_encoder.eval()
    x = torch.randn(3, 2, 8)  # (elements, batch, features): batch_first=False as in CrabNet
    recorded, handles = ns["record_encoder_attention"](sub)
    with torch.no_grad():
        out = enc(x)
    for h in handles:
        h.remove()
    with recording_attention(sub) as theirs, torch.no_grad():
        out2 = enc(x)
    assert len(recorded) == len(theirs) == 2 and recorded[0].shape == (2, 2, 3, 3)
    for a, b in zip(recorded, theirs):
        assert torch.equal(a, b)
    assert torch.equal(out, out2)  # recording changes nothing
    with torch.no_grad():
        enc(x)
    assert len(recorded) == 2  # removed hooks record nothing more
