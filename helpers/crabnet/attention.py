"""What CrabNet attends to: element-to-element attention and its learned element embeddings.

CrabNet 2.0.8 stores no attention. Its encoder is a stock ``nn.TransformerEncoder``
(``model.encoder.transformer_encoder.layers[i].self_attn``) that calls each
``nn.MultiheadAttention`` with ``need_weights=False`` and ``batch_first=False``.
:func:`element_attention` runs the model once with a forward pre-hook on every
``self_attn`` that forces ``need_weights=True, average_attn_weights=False`` and a
forward hook that records the weights: one array ``(batch, heads, n_elements,
n_elements)`` per layer. Row ``i`` of a map is how element ``i`` (query) spreads its
attention over the elements of the formula (keys); rows sum to 1 over real elements.
Padding slots (formulas have fewer elements than the model's ``max_elements``) get
exactly zero in their rows and columns. The hooks are removed when the call returns,
so predictions are unchanged (tested).

:func:`element_embeddings` gives the learned element vectors the encoder starts from:
the fixed mat2vec vector of each element mapped into model space by the trained
``fc_mat2vec`` layer (times ``emb_scaler``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .compat import CRABNET_LOCK, quiet_crabnet, torch_threads, working_directory
from .model import CrabModel, _crab_frame


@dataclass
class ElementAttention:
    """Attention maps of CrabNet for a list of formulas.

    Attributes:
        formulas: the formulas as given.
        elements: per formula, its element symbols in CrabNet's slot order
            (largest fraction first, as crabnet's ``get_edm`` orders them).
        fractions: per formula, the molar fractions of those elements (sum 1).
        layers: one array per encoder layer, shape ``(n_formulas, heads,
            max_elements, max_elements)``; query slot = row, key slot = column;
            padding rows and columns are 0.
        predictions_eV: the model's band-gap prediction for each formula (eV),
            from the same forward pass.
    """

    formulas: list[str]
    elements: list[list[str]]
    fractions: list[np.ndarray]
    layers: list[np.ndarray]
    predictions_eV: np.ndarray

    @property
    def n_layers(self) -> int:
        """Number of encoder layers."""
        return len(self.layers)

    @property
    def n_heads(self) -> int:
        """Attention heads per layer."""
        return int(self.layers[0].shape[1])

    def matrix(self, index: int, layer: int = -1, head: int | None = None) -> pd.DataFrame:
        """Element-by-element map of formula ``index`` (real elements only).

        ``head=None`` averages the heads. Rows: the attending element; columns:
        the element attended to; each row sums to 1.
        """
        att = self.layers[layer][index]
        att = att.mean(axis=0) if head is None else att[head]
        n = len(self.elements[index])
        labels = self.elements[index]
        return pd.DataFrame(
            att[:n, :n],
            index=pd.Index(labels, name="query (attending)"),
            columns=pd.Index(labels, name="key (attended to)"),
        )

    def received(self, layer: int = -1) -> pd.DataFrame:
        """Attention each element *receives*, per formula it occurs in (heads averaged).

        For every formula and element: the mean over the formula's real query rows of
        the attention that goes to that element (a share between 0 and 1; the shares of
        one formula sum to 1). Returns a long table ``formula, element, fraction,
        n_elements, received``.
        """
        rows = []
        for i, (formula, elements) in enumerate(zip(self.formulas, self.elements)):
            n = len(elements)
            att = self.layers[layer][i].mean(axis=0)[:n, :n]
            got = att.mean(axis=0)
            for j, el in enumerate(elements):
                rows.append(
                    {
                        "formula": formula,
                        "element": el,
                        "fraction": float(self.fractions[i][j]),
                        "n_elements": n,
                        "received": float(got[j]),
                    }
                )
        return pd.DataFrame(rows)


@contextlib.contextmanager
def recording_attention(subcrab: Any) -> Iterator[list[Any]]:
    """Record every encoder layer's attention weights while the block runs.

    Yields a list that fills with one tensor ``(batch, heads, L, L)`` per layer and
    forward call (in call order). The hooks force ``need_weights=True`` and
    ``average_attn_weights=False`` on ``subcrab.encoder.transformer_encoder.layers[i].self_attn``
    and are removed on exit.

    Raises:
        TypeError: ``subcrab`` has no stock ``nn.TransformerEncoder`` at
            ``encoder.transformer_encoder`` (e.g. CrabNet built with ``attention=False``).
    """
    import torch

    encoder = getattr(getattr(subcrab, "encoder", None), "transformer_encoder", None)
    if not isinstance(encoder, torch.nn.TransformerEncoder):
        raise TypeError("expected a CrabNet SubCrab whose encoder.transformer_encoder is an nn.TransformerEncoder")
    recorded: list[Any] = []

    def force_weights(module, args, kwargs):
        kwargs = dict(kwargs)
        kwargs["need_weights"] = True
        kwargs["average_attn_weights"] = False
        return args, kwargs

    def keep(module, args, kwargs, output):
        recorded.append(output[1].detach())

    handles = []
    try:
        for layer in encoder.layers:
            handles.append(layer.self_attn.register_forward_pre_hook(force_weights, with_kwargs=True))
            handles.append(layer.self_attn.register_forward_hook(keep, with_kwargs=True))
        yield recorded
    finally:
        for h in handles:
            h.remove()


def _loader_tensors(crab: Any, formulas: Sequence[str], parsed: Sequence[Any]) -> Iterator[tuple[Any, Any]]:
    """(src, frac) batches exactly as crabnet's own ``predict`` builds them."""
    import torch

    crab.load_data(_crab_frame(parsed))
    for X, _y, _formula, _extra in crab.data_loader:
        src, frac = X.squeeze(-1).chunk(2, dim=1)
        yield src.to(crab.compute_device, dtype=torch.long), frac.to(crab.compute_device, dtype=crab.data_type_torch)


def element_attention(
    model: CrabModel, formulas: Sequence[str], member: int = 0, threads: int | None = None
) -> ElementAttention:
    """Element-to-element attention of a trained CrabNet for ``formulas``.

    Args:
        model: a :class:`helpers.crabnet.CrabModel` (e.g. from ``load_model``).
        formulas: formulas in any spelling :func:`helpers.composition.atomic_fractions` reads.
        member: which ensemble member to look into (0 for a single model).
        threads: torch CPU threads for the call.

    Returns:
        :class:`ElementAttention` (weights are probabilities, no unit; predictions in eV).

    Raises:
        FormulaError, TooManyElementsError: as :meth:`CrabModel.check_formulas`.
    """
    import torch

    crab = model.crabs[_member_index(model, member)]
    given = [str(f) for f in formulas]
    parsed = model.check_formulas(given)
    sub = crab.model
    sub.eval()
    layer_parts: list[list[np.ndarray]] = [[] for _ in sub.encoder.transformer_encoder.layers]
    srcs, fracs, preds = [], [], []
    with CRABNET_LOCK, torch_threads(threads), quiet_crabnet(), working_directory(), torch.no_grad():
        for src, frac in _loader_tensors(crab, given, parsed):
            with recording_attention(sub) as rec:
                out = sub.forward(src, frac)
            pred = crab.scaler.unscale(out.chunk(2, dim=-1)[0]).reshape(-1)
            real = (frac > 0).float()  # (batch, L)
            for i, att in enumerate(rec):
                att = att.float() * real[:, None, :, None] * real[:, None, None, :]  # zero padding rows and columns
                layer_parts[i].append(att.cpu().numpy())
            srcs.append(src.cpu().numpy())
            fracs.append(frac.cpu().numpy())
            preds.append(pred.float().cpu().numpy())
    src_all, frac_all = np.concatenate(srcs), np.concatenate(fracs)
    symbols = _crabnet_symbols()
    elements = [[symbols[int(z) - 1] for z in row if z > 0] for row in src_all]
    fractions = [row[row > 0] / row[row > 0].sum() for row in frac_all]
    return ElementAttention(given, elements, fractions, [np.concatenate(p) for p in layer_parts], np.concatenate(preds))


def _member_index(model: CrabModel, member: Any) -> int:
    """``member`` checked against the ensemble: a whole number from 0 to ``model.members - 1``.

    Raises:
        TypeError: not a whole number (``1.0``, ``"0"``, ``True``).
        IndexError: outside the valid range, which the message states.
    """
    import numbers

    n = len(model.crabs)
    if isinstance(member, bool) or not isinstance(member, numbers.Integral):
        raise TypeError(f"member must be a whole number from 0 to {n - 1}, got {type(member).__name__} {member!r}")
    if not 0 <= member < n:
        raise IndexError(f"member {member} does not exist: this model has {n} member(s), valid: 0 to {n - 1}")
    return int(member)


def _crabnet_symbols() -> list[str]:
    """CrabNet's element list (index + 1 = the id in its ``src`` tensors).

    It is the row order of crabnet's mat2vec table, which is also the order of the
    ``all_symbols`` list in crabnet's ``get_edm`` (checked in the tests).
    """
    return list(_mat2vec_table().index)


def _mat2vec_table() -> pd.DataFrame:
    """crabnet's mat2vec element table (200 features per element, index = symbol)."""
    from pathlib import Path

    import crabnet

    return pd.read_csv(Path(crabnet.__file__).parent / "data" / "element_properties" / "mat2vec.csv", index_col=0)


def element_embeddings(model: CrabModel, member: int = 0) -> pd.DataFrame:
    """Learned element vectors of a trained CrabNet: ``emb_scaler * fc_mat2vec(mat2vec[el])``.

    Returns a DataFrame indexed by element symbol with ``d_model`` columns (model
    units, no physical unit) for every element of crabnet's mat2vec table.
    """
    import torch

    sub = model.crabs[_member_index(model, member)].model
    embed = sub.encoder.embed
    with torch.no_grad():
        vectors = embed.fc_mat2vec(embed.cbfv.weight[1:].to(next(embed.parameters()).device)) * sub.encoder.emb_scaler
    return pd.DataFrame(vectors.float().cpu().numpy(), index=pd.Index(_crabnet_symbols(), name="element"))


def element_groups(symbols: Sequence[str]) -> list[int | None]:
    """Periodic-table group (1-18) of each element symbol, from pymatgen (``None`` for f-block)."""
    from pymatgen.core import Element

    out: list[int | None] = []
    for s in symbols:
        el = Element(s)
        out.append(None if (el.is_lanthanoid or el.is_actinoid) else int(el.group))
    return out


def received_summary(received: pd.DataFrame, min_count: int = 5) -> pd.DataFrame:
    """Per element: mean attention share received over the formulas it occurs in (from :meth:`ElementAttention.received`).

    Columns ``received`` (mean share), ``sem`` (standard error over formulas),
    ``fair share`` (mean of 1 / number of elements: what uniform attention would
    give) and ``n_formulas``; elements in fewer than ``min_count`` formulas are left
    out. Sorted by ``received - fair share`` (most over-attended first).
    """
    g = received.assign(fair=1.0 / received["n_elements"]).groupby("element")
    out = pd.DataFrame(
        {
            "received": g["received"].mean(),
            "sem": g["received"].sem().fillna(0.0),
            "fair share": g["fair"].mean(),
            "n_formulas": g.size(),
        }
    )
    out = out[out["n_formulas"] >= min_count]
    return out.loc[(out["received"] - out["fair share"]).sort_values(ascending=False).index]
