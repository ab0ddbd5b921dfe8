"""Interpreting the text models of notebook 04: embedding maps, attention per feature category, occlusion.

Four questions, one section each:

1. **What does the embedding space look like?** :func:`helpers.text_models.pooled_embeddings` gives one
   vector per text with exactly the pooling of the regression head
   (:meth:`helpers.text_models.TextRegressor.pooled`); :func:`tsne_2d` projects them
   to 2-D (seeded, perplexity stated); :func:`embedding_scores` puts numbers on it:
   cross-validated kNN regression MAE of the band gap (eV), kNN accuracy of the
   crystal system and the silhouette of crystal systems, each with an interval over
   the CV folds.
2. **Which tokens belong to which feature?** :func:`tokenize_with_categories`
   maps a description's character spans (``helpers.descriptions``) onto the tokens
   through the tokenizer's offset mapping (never by re-tokenising substrings).
3. **Where does the pooled vector look?** :func:`pooled_attention` runs an
   encoder with ``output_attentions=True`` (it must be loaded with
   ``attn_implementation="eager"``; SDPA returns no attentions in transformers 5.x)
   and averages the rows of the query tokens mean pooling averages
   (:func:`mean_query_attention`), plus :func:`attention_rollout` across layers;
   :func:`category_attention` sums it per category (and divides by the category's
   token count), per layer and head, averaged over samples.
4. **Is attention an explanation?** :func:`integrated_gradients` attributes the prediction to
   tokens; :func:`substitution_effects` gives a category another material's values and
   :func:`occlusion_effects` masks its tokens, measuring how far the prediction moves (eV); :func:`rank_agreement`
   compares that ranking with the attention ranking (Spearman).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import config

# --------------------------------------------------------------------------- models


def fine_tuned_checkpoint(name: str) -> Path:
    """Folder where notebook 04 saves its fully fine-tuned text model for encoder ``name``.

    The structured-format, full-fine-tuning checkpoint of :func:`helpers.config.default_checkpoint` (kind ``"text"``)
    (``models/text/<encoder>_structured_full``, git-ignored; written by
    :func:`helpers.text_models.save_regressor`).
    """
    from . import text_models as tm

    return config.default_checkpoint("text", tm.checkpoint_name(name, "structured", "full"))


def load_or_train_regressor(
    folder: Any,
    name: str,
    train_texts: Sequence[str],
    train_y: Sequence[float],
    val_texts: Sequence[str],
    val_y: Sequence[float],
    **overrides: Any,
) -> tuple[Any, Any, Any, str]:
    """The fine-tuned text model saved in ``folder`` (the shipped one or notebook 04's), or, when it is missing, a quick one trained now.

    The model is loaded with ``attn_implementation="eager"`` (attention weights available).
    Training uses :func:`helpers.text_models.train_regressor` with the quick preset of
    ``configs/text_regression.yaml`` (``model=name`` plus ``overrides``); nothing is written.

    Returns:
        ``(model, tokenizer, config, message)``; ``message`` says in one line which it was.
    """
    from . import text_models as tm

    folder = Path(folder)
    if (folder / "regressor.json").exists():
        model, tokenizer, cfg = tm.load_regressor(folder, attn_implementation="eager")
        return (
            model,
            tokenizer,
            cfg,
            f"{name}: loaded the fine-tuned model in {config.shown_path(folder)}",
        )
    cfg = tm.load_config(mode="quick", model=name, **overrides)
    enc = tm.load_encoder(name, attn_implementation="eager", verbose=False)
    model = tm.build_regressor(enc, cfg)
    fit = tm.train_regressor(model, enc.tokenizer, train_texts, train_y, val_texts, val_y, cfg, progress=False)
    message = (
        f"{name}: no saved model in {config.shown_path(folder)}, so the quick version was trained here with the same helpers "
        f"({cfg.epochs} epochs, {fit.wall_s:.0f} s, validation MAE {fit.best_val_mae:.3f} eV)"
    )
    return model.eval(), enc.tokenizer, cfg, message


# --------------------------------------------------------------------------- embeddings


def _encoder_of(model: Any) -> Any:
    """The bare encoder of a ``TextRegressor`` (``.encoder``) or the model itself."""
    return getattr(model, "encoder", model) if hasattr(model, "head") else model


def tsne_2d(X: np.ndarray, perplexity: float = 30.0, seed: int = config.DEFAULT_SEED) -> np.ndarray:
    """2-D t-SNE of ``X`` (rows = samples), seeded; PCA to 50 dimensions first when wider.

    ``perplexity`` (roughly the number of neighbours each point "sees") must be
    below the number of samples. Returns ``(n, 2)`` coordinates without a unit:
    only neighbourhoods are meaningful, not distances between clusters or their sizes.

    Degenerate input is refused *before* sklearn sees it (on all-identical rows sklearn's
    t-SNE crashed the whole process with a segmentation fault): a non-finite value, all
    rows identical (zero variance: e.g. a broken tokenizer that maps every text to the
    same vector), or no more distinct rows than ``perplexity`` (each point cannot have
    that many distinct neighbours).

    Raises:
        ValueError: naming the problem (the first non-finite row, the number of distinct rows).
    """
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or len(X) < 3 or X.shape[1] < 1:
        raise ValueError(f"t-SNE needs a 2-D array with at least 3 rows, got shape {X.shape}")
    if not (isinstance(perplexity, (int, float)) and 0 < perplexity < len(X)):
        raise ValueError(f"perplexity must be between 0 and the number of samples ({len(X)}), got {perplexity}")
    bad = np.flatnonzero(~np.isfinite(X).all(axis=1))
    if len(bad):
        raise ValueError(
            f"row {int(bad[0])} of X is not finite (nan or inf; {len(bad)} such rows): t-SNE needs numbers"
        )
    distinct = len(np.unique(X, axis=0))
    if distinct == 1:
        raise ValueError(
            f"all {len(X)} rows of X are identical (zero variance): there is nothing to lay out; "
            "every text got the same vector (check the tokenizer and the model)"
        )
    if distinct <= perplexity:
        raise ValueError(
            f"X has only {distinct} distinct rows, not more than the perplexity {perplexity}: "
            "lower the perplexity below the number of distinct rows"
        )
    if X.shape[1] > 50 and len(X) > 50:
        X = PCA(n_components=50, random_state=seed).fit_transform(X)
    return TSNE(
        n_components=2, perplexity=perplexity, init="pca", learning_rate="auto", random_state=seed
    ).fit_transform(X)


@dataclass
class FoldScores:
    """One metric measured on each CV fold; :meth:`interval` summarises them."""

    name: str
    values: np.ndarray

    @property
    def mean(self) -> float:
        """Mean over folds."""
        return float(np.mean(self.values))

    def interval(self, level: float = 0.95) -> tuple[float, float]:
        """Student-t interval of the mean over folds (folds are not independent: read it as a spread)."""
        from scipy import stats

        n = len(self.values)
        if n < 2:
            return (self.mean, self.mean)
        half = stats.t.ppf(0.5 + level / 2, n - 1) * float(np.std(self.values, ddof=1)) / math.sqrt(n)
        return (self.mean - half, self.mean + half)

    def text(self, digits: int = 3) -> str:
        """E.g. ``0.512 [0.48, 0.54]``."""
        lo, hi = self.interval()
        return f"{self.mean:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


@dataclass
class EmbeddingScores:
    """How well an embedding space predicts the band gap and separates crystal systems.

    Attributes:
        knn_mae_eV: kNN-regression MAE of the band gap on each held-out fold (eV).
        knn_accuracy: kNN classification accuracy of the crystal system per fold (0-1).
        silhouette: silhouette score of the crystal-system labels on each held-out fold
            (-1 to 1; 0 = classes overlap).
        baseline_mae_eV: MAE of predicting the training-fold mean gap (eV), per fold.
        majority_accuracy: accuracy of always guessing the training fold's most common system.
    """

    knn_mae_eV: FoldScores
    knn_accuracy: FoldScores
    silhouette: FoldScores
    baseline_mae_eV: FoldScores
    majority_accuracy: FoldScores
    k: int
    folds: int
    n: int

    def row(self) -> dict[str, Any]:
        """One table row: means with 95 % intervals over folds as text, plus the plain means."""
        return {
            "kNN MAE (eV)": self.knn_mae_eV.text(),
            "kNN accuracy, crystal system": self.knn_accuracy.text(),
            "silhouette, crystal system": self.silhouette.text(),
            "mae_eV": self.knn_mae_eV.mean,
            "accuracy": self.knn_accuracy.mean,
            "silhouette": self.silhouette.mean,
        }


def embedding_scores(
    X: np.ndarray,
    band_gap_eV: Sequence[float],
    labels: Sequence[Any],
    k: int = 10,
    folds: int = 5,
    seed: int = config.DEFAULT_SEED,
) -> EmbeddingScores:
    """Cross-validated kNN scores of an embedding space (Euclidean distance, uniform weights).

    The same shuffled ``KFold`` split (``folds`` parts, ``seed``) is used for all three
    metrics, so spaces scored with the same seed are compared on the same folds.

    Args:
        X: ``(n, d)`` embeddings.
        band_gap_eV: the target (eV), length n.
        labels: a class per sample (crystal system), length n.
        k: neighbours.

    Raises:
        ValueError: mismatched lengths, non-finite values (naming the first bad row),
            or fewer samples than ``folds * (k + 1)``.
    """
    from sklearn.metrics import silhouette_score
    from sklearn.model_selection import KFold
    from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor

    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(band_gap_eV, dtype=np.float64)
    lab = np.asarray([str(v) for v in labels])
    if not (len(X) == len(y) == len(lab)):
        raise ValueError(f"X, band_gap_eV and labels differ in length: {len(X)}, {len(y)}, {len(lab)}")
    bad = np.flatnonzero(~np.isfinite(X).all(axis=1) | ~np.isfinite(y))
    if len(bad):
        raise ValueError(f"row {int(bad[0])} has a non-finite embedding or band gap ({len(bad)} such rows)")
    if len(X) < folds * (k + 1):
        raise ValueError(f"{len(X)} samples are too few for {folds}-fold CV with k={k} (need {folds * (k + 1)})")
    maes, accs, sils, base, major = [], [], [], [], []
    for train, test in KFold(folds, shuffle=True, random_state=seed).split(X):
        reg = KNeighborsRegressor(n_neighbors=k).fit(X[train], y[train])
        maes.append(np.mean(np.abs(reg.predict(X[test]) - y[test])))
        base.append(np.mean(np.abs(y[train].mean() - y[test])))
        clf = KNeighborsClassifier(n_neighbors=k).fit(X[train], lab[train])
        accs.append(np.mean(clf.predict(X[test]) == lab[test]))
        values, counts = np.unique(lab[train], return_counts=True)
        major.append(np.mean(lab[test] == values[np.argmax(counts)]))
        sils.append(silhouette_score(X[test], lab[test]) if len(np.unique(lab[test])) > 1 else np.nan)

    def f(name: str, values: list[float]) -> FoldScores:
        return FoldScores(name, np.asarray(values, dtype=float))

    return EmbeddingScores(
        f("kNN MAE (eV)", maes),
        f("kNN accuracy", accs),
        f("silhouette", sils),
        f("mean-predictor MAE (eV)", base),
        f("majority accuracy", major),
        k,
        folds,
        len(X),
    )


#: Most float64 values :func:`knn_loo_mae` holds in its difference block at once (8 M = 64 MB).
KNN_BLOCK_VALUES: int = 8_000_000


def knn_loo_mae(
    X: np.ndarray, band_gap_eV: Sequence[float], k: int, include_self: bool = False, chunk_rows: int | None = None
) -> float:
    """Leave-one-out kNN MAE (eV): each row predicted by the mean gap of its ``k`` nearest *other* rows.

    Euclidean distance; ``include_self=True`` (a classic mistake) lets every row be its
    own nearest neighbour, which makes the error look smaller. Ties are broken by row order.

    Memory is bounded: the distances are computed for ``chunk_rows`` query rows at a time
    (default: as many as keep the ``chunk x n x d`` difference block within
    :data:`KNN_BLOCK_VALUES` doubles, 64 MB), so 3000 x 128 peaks at about 125 MB (the block
    and its square; measured with tracemalloc, 3.8 s), not the 8.6 GiB of all pairs at once. The result does not depend on ``chunk_rows`` (tested).

    Raises:
        ValueError: X not 2-D, lengths differ, a non-finite row (named), ``k`` out of range.
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(band_gap_eV, dtype=np.float64)
    if X.ndim != 2 or y.ndim != 1 or len(X) != len(y):
        raise ValueError(f"X must be (n, d) and band_gap_eV of length n; got shapes {X.shape} and {y.shape} (length)")
    bad = np.flatnonzero(~np.isfinite(X).all(axis=1) | ~np.isfinite(y))
    if len(bad):
        raise ValueError(f"row {int(bad[0])} has a non-finite embedding or band gap ({len(bad)} such rows)")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k < len(X):
        raise ValueError(f"k must be between 1 and {len(X) - 1}, got {k}")
    n, dims = X.shape
    if chunk_rows is None:
        chunk_rows = max(1, KNN_BLOCK_VALUES // max(1, n * dims))
    if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, (int, np.integer)) or chunk_rows < 1:
        raise ValueError(f"chunk_rows must be a whole number >= 1, got {chunk_rows!r}")
    errors = np.empty(n)
    for start in range(0, n, chunk_rows):
        rows = np.arange(start, min(start + chunk_rows, n))
        d = np.linalg.norm(X[rows, None, :] - X[None, :, :], axis=-1)  # (chunk, n): the same numbers as all at once
        if not include_self:
            d[np.arange(len(rows)), rows] = np.inf
        nearest = np.argsort(d, axis=1, kind="stable")[:, :k]
        errors[rows] = np.abs(y[nearest].mean(axis=1) - y[rows])
    return float(np.mean(errors))


# --------------------------------------------------------------------------- tokens <-> categories


def category_token_ranges(token_categories: Sequence[str | None]) -> dict[str, list[int]]:
    """Token indices of each category, in text order (categories without tokens are absent)."""
    out: dict[str, list[int]] = {}
    for i, c in enumerate(token_categories):
        if c is not None:
            out.setdefault(c, []).append(i)
    return out


@dataclass
class TokenizedDescription:
    """A text as the model sees it: ids, tokens, offsets and each token's category (``None`` without spans)."""

    text: str
    input_ids: list[int]
    tokens: list[str]
    offsets: list[tuple[int, int]]
    categories: list[str | None]
    truncated: bool


def tokenize_with_categories(tokenizer: Any, text: Any, max_length: int = 128) -> TokenizedDescription:
    """Tokenise a description as for training (special tokens, truncation to ``max_length``) with offsets and categories.

    Args:
        text: a :class:`helpers.descriptions.Description` (its character spans give each
            token a category through the tokenizer's offset mapping, by
            :func:`helpers.descriptions.token_categories`) or a plain string (a user's own
            text: no spans, so every category is ``None`` and only token-level maps are possible).

    The ids equal :func:`helpers.text_models.encode_texts`' (tested); features cut off
    by truncation have no tokens.

    Raises:
        ValueError: ``max_length`` above the tokenizer's ``model_max_length`` (the model's
            positions), naming both.
    """
    from . import descriptions

    limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(max_length, bool) or not isinstance(max_length, (int, np.integer)) or max_length < 1:
        raise ValueError(f"max_length must be a whole number >= 1, got {max_length!r}")
    if isinstance(limit, int) and limit < 1_000_000 and max_length > limit:  # transformers' "no limit" is ~1e30
        raise ValueError(
            f"max_length {max_length} is more than the tokenizer's model_max_length {limit} "
            f"(the model's position embeddings); use max_length <= {limit}"
        )

    desc = text if isinstance(text, descriptions.Description) else None
    raw = desc.text if desc is not None else str(text)
    enc = tokenizer(raw, add_special_tokens=True, truncation=True, max_length=max_length, return_offsets_mapping=True)
    full = len(tokenizer(raw, add_special_tokens=True, truncation=False)["input_ids"])
    special = set(tokenizer.all_special_ids)
    offsets = [
        (0, 0) if tid in special else (int(a), int(b)) for tid, (a, b) in zip(enc["input_ids"], enc["offset_mapping"])
    ]
    cats = descriptions.token_categories(desc, offsets) if desc is not None else [None] * len(offsets)
    return TokenizedDescription(
        raw, list(enc["input_ids"]), tokenizer.convert_ids_to_tokens(enc["input_ids"]), offsets, cats, full > max_length
    )


# --------------------------------------------------------------------------- attention


def _check_eager(encoder: Any) -> None:
    impl = getattr(encoder.config, "_attn_implementation", None)
    if impl not in (None, "eager"):
        raise ValueError(
            f"the encoder uses attn_implementation={impl!r}, which returns no attention weights; "
            "load it with attn_implementation='eager'"
        )


def mean_query_attention(attentions: Sequence[Any], attention_mask: Any) -> Any:
    """Attention averaged over the query tokens that mean pooling averages: ``(batch, layers, heads, tokens)``.

    ``attentions`` is an encoder's ``output_attentions`` (one ``(batch, heads, query, key)`` tensor per layer),
    ``attention_mask`` ``(batch, tokens)`` with 1 for real tokens. Each query row is a softmax over keys; the
    pooled vector is the mean of the *real* tokens' outputs, so their rows are averaged (padding rows left out).
    The same definition is a cell of notebook 05 (tested identical). Rows sum to 1 over the real keys.
    """
    att = torch_stack(attentions)  # (batch, layers, heads, query, key)
    q = attention_mask[:, None, None, :, None].to(att.dtype)  # real query tokens only
    return (att * q).sum(dim=3) / q.sum(dim=3)


def attention_rollout(attentions: Sequence[Any], attention_mask: Any) -> Any:
    """Attention rollout (Abnar & Zuidema 2020) read by the mean-pooled vector: ``(batch, tokens)``, rows sum to 1.

    Per layer: heads averaged, the residual connection added as ``0.5 A + 0.5 I``, rows renormalised;
    the layers multiplied from the first to the last; then the rows of the real query tokens averaged, as mean
    pooling does. The same definition is a cell of notebook 05 (tested identical).
    """
    att = torch_stack(attentions).mean(dim=2)  # (batch, layers, query, key): heads averaged
    eye = _torch().eye(att.shape[-1], dtype=att.dtype)
    mixed = 0.5 * att + 0.5 * eye
    mixed = mixed / mixed.sum(dim=-1, keepdim=True)
    rollout = mixed[:, 0]
    for layer in range(1, mixed.shape[1]):
        rollout = mixed[:, layer] @ rollout  # what layer l reads, traced back to the input tokens
    q = attention_mask[:, :, None].to(att.dtype)
    return (rollout * q).sum(dim=1) / q.sum(dim=1)


def _torch() -> Any:
    import torch

    return torch


def torch_stack(attentions: Sequence[Any]) -> Any:
    """Stack per-layer ``(batch, heads, query, key)`` attentions to ``(batch, layers, heads, query, key)``.

    Raises:
        ValueError: no attentions (an encoder loaded with SDPA attention returns none).
    """
    if not attentions or attentions[0] is None:
        raise ValueError("the encoder returned no attentions; load it with attn_implementation='eager'")
    return _torch().stack([a.detach().float() for a in attentions], dim=1)


@dataclass
class PooledAttention:
    """Attention as the pooled vector reads it, per text (its real tokens only).

    Attributes:
        per_layer: per text ``(layers, heads, n_tokens)``: mean over the real query tokens (mean pooling)
            or the first token's row (first-token pooling); each row sums to 1.
        rollout: per text ``(n_tokens,)``: attention rollout across all layers, read the same way.
        pooling: ``"mean"`` or ``"first"``.
    """

    per_layer: list[np.ndarray]
    rollout: list[np.ndarray]
    pooling: str


def pooled_attention(
    model: Any, tokenizer: Any, input_ids: Sequence[Sequence[int]], pooling: str | None = None, batch_size: int = 32
) -> PooledAttention:
    """Attention per layer and head, and rollout, *from the tokens the pooled vector uses* to every token.

    Args:
        model: a ``TextRegressor`` (its encoder and pooling are used) or an ``AutoModel`` encoder, loaded with
            ``attn_implementation="eager"``.
        input_ids: token ids per text (e.g. :attr:`TokenizedDescription.input_ids`).
        pooling: ``"mean"`` (real query tokens averaged: :func:`mean_query_attention`) or ``"first"`` (the
            ``<s>`` row, for a first-token-pooled model); default: the model's own pooling, else ``"mean"``.

    Raises:
        ValueError: the encoder was not loaded with eager attention, an unknown pooling, or a text longer than
            its position embeddings (naming the text; see :func:`helpers.text_models.max_positions`).
    """
    import torch

    from . import text_models as tm

    pooling = pooling or getattr(model, "pooling", "mean")
    if pooling not in ("mean", "first"):
        raise ValueError(f"pooling must be 'mean' or 'first', got {pooling!r}")
    encoder = _encoder_of(model)
    _check_eager(encoder)
    limit = tm.max_positions(encoder)
    for i, ids in enumerate(input_ids):
        if len(ids) > limit:
            raise ValueError(
                f"text {i} has {len(ids)} tokens, more than the {limit} the encoder's position embeddings cover: "
                f"tokenise with max_length <= {limit}"
            )
    device = next(encoder.parameters()).device
    encoder.eval()
    per_layer: list[np.ndarray] = []
    rollout: list[np.ndarray] = []
    with torch.no_grad():
        for i in range(0, len(input_ids), batch_size):
            chunk = [list(x) for x in input_ids[i : i + batch_size]]
            batch = tm.pad_batch(chunk, tokenizer.pad_token_id, "cpu")
            ids, mask = batch["input_ids"], batch["attention_mask"]
            res = encoder(input_ids=ids.to(device), attention_mask=mask.to(device), output_attentions=True)
            atts = [a.cpu() for a in torch_stack(res.attentions).unbind(dim=1)]
            reads = mask.clone()
            if pooling == "first":
                reads[:, 1:] = 0  # only the first token's row
            layer_rows = mean_query_attention(atts, reads).numpy()
            roll = attention_rollout(atts, reads).numpy()
            for r, x in enumerate(chunk):
                per_layer.append(layer_rows[r, :, :, : len(x)])
                rollout.append(roll[r, : len(x)])
    return PooledAttention(per_layer, rollout, pooling)


@dataclass
class CategoryAttention:
    """Pooled attention per layer, head and category, averaged over samples.

    Attributes:
        categories: category names (columns of the last axis).
        summed: ``(layers, heads, categories)``: total attention the pooled tokens give
            the category's tokens (a share, 0-1), mean over the samples that have the category.
        per_token: same, divided by the category's number of tokens in each sample
            (long fields no longer win by length alone).
        n_samples: samples averaged; ``n_with``: samples that have each category.
    """

    categories: list[str]
    summed: np.ndarray
    per_token: np.ndarray
    n_samples: int
    n_with: dict[str, int] = field(default_factory=dict)

    def table(self, layer: int = -1, kind: str = "summed") -> pd.DataFrame:
        """Heads x categories of one layer as a DataFrame (``kind``: summed or per_token)."""
        arr = {"summed": self.summed, "per_token": self.per_token}[kind][layer]
        return pd.DataFrame(
            arr, index=pd.Index([f"head {h}" for h in range(arr.shape[0])], name="head"), columns=self.categories
        )


def category_attention(
    rows: Sequence[np.ndarray],
    token_categories: Sequence[Sequence[str | None]],
    categories: Sequence[str] | None = None,
) -> CategoryAttention:
    """Aggregate pooled attention rows by feature category.

    Args:
        rows: per sample ``(layers, heads, n_tokens)`` (from :func:`pooled_attention`).
        token_categories: per sample, the category of each token (``None``: special/glue).
        categories: category order; default: in order of first appearance.

    Returns:
        :class:`CategoryAttention`. A category absent from a sample (e.g. cut off by
        truncation) does not enter that sample's average.

    Raises:
        ValueError: a sample whose token count differs between ``rows`` and
            ``token_categories`` (naming it), or no sample at all.
    """
    if not rows:
        raise ValueError("no samples")
    if len(rows) != len(token_categories):
        raise ValueError(f"{len(rows)} attention rows but {len(token_categories)} category lists")
    if categories is None:
        categories = list(dict.fromkeys(c for cats in token_categories for c in cats if c is not None))
    categories = list(categories)
    L, H = rows[0].shape[:2]
    total = np.zeros((L, H, len(categories)))
    per_tok = np.zeros((L, H, len(categories)))
    count = np.zeros(len(categories))
    for s, (att, cats) in enumerate(zip(rows, token_categories)):
        if att.shape[-1] != len(cats):
            raise ValueError(f"sample {s}: {att.shape[-1]} attention columns but {len(cats)} token categories")
        cats = np.asarray([c if c is not None else "" for c in cats])
        for j, c in enumerate(categories):
            sel = cats == c
            n = int(sel.sum())
            if n:
                got = att[:, :, sel].sum(axis=-1)
                total[:, :, j] += got
                per_tok[:, :, j] += got / n
                count[j] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        total /= np.where(count > 0, count, np.nan)
        per_tok /= np.where(count > 0, count, np.nan)
    return CategoryAttention(categories, total, per_tok, len(rows), {c: int(n) for c, n in zip(categories, count)})


# --------------------------------------------------------------------------- occlusion


def regressor_predict_fn(model: Any) -> Callable[[Any, Any], np.ndarray]:
    """``f(input_ids, attention_mask) -> band gaps (eV)`` for a ``TextRegressor``."""
    import torch

    def predict(input_ids: Any, attention_mask: Any) -> np.ndarray:
        model.eval()
        with torch.no_grad():
            return (
                (model(input_ids=input_ids, attention_mask=attention_mask) * model.y_std + model.y_mean)
                .float()
                .cpu()
                .numpy()
            )

    return predict


def occlude(
    input_ids: Sequence[int], positions: Sequence[int], replace_id: int, mode: str = "mask"
) -> tuple[list[int], list[int]]:
    """Occlude tokens: returns ``(ids, attention_mask)`` with ``positions`` replaced by ``replace_id``.

    ``mode="mask"``: the token becomes ``replace_id`` (the mask token) and stays visible
    (mask 1), so sequence length and positions are unchanged. ``mode="pad"``: it becomes
    ``replace_id`` (the pad token) and its attention-mask entry is 0, so no token attends to it.
    """
    if mode not in ("mask", "pad"):
        raise ValueError(f"mode must be 'mask' or 'pad', got {mode!r}")
    ids, mask = list(input_ids), [1] * len(input_ids)
    for p in positions:
        ids[p] = replace_id
        if mode == "pad":
            mask[p] = 0
    return ids, mask


def occlusion_effects(
    predict_fn: Callable[[Any, Any], np.ndarray],
    input_ids: Sequence[Sequence[int]],
    token_categories: Sequence[Sequence[str | None]],
    categories: Sequence[str],
    replace_id: int,
    pad_id: int,
    mode: str = "mask",
    batch_size: int = 64,
) -> pd.DataFrame:
    """How far the prediction moves when each category's tokens are occluded.

    Args:
        predict_fn: ``f(input_ids, attention_mask)`` on padded ``torch.long`` batches -> eV.
        input_ids, token_categories: per sample, as the model sees it.
        replace_id: the mask token (``mode="mask"``) or pad token (``mode="pad"``).
        pad_id: id used to pad batches.

    Returns:
        Long table ``sample, category, n_tokens, prediction_eV, occluded_eV, change_eV``
        (``change_eV`` = occluded - original; categories absent from a sample are skipped).
    """
    import torch

    variants: list[tuple[int, str | None, int, list[int], list[int]]] = []
    for s, (ids, cats) in enumerate(zip(input_ids, token_categories)):
        variants.append((s, None, 0, list(ids), [1] * len(ids)))
        for c in categories:
            pos = [i for i, t in enumerate(cats) if t == c]
            if pos:
                variants.append((s, c, len(pos), *occlude(ids, pos, replace_id, mode)))
    preds = []
    for i in range(0, len(variants), batch_size):
        chunk = variants[i : i + batch_size]
        width = max(len(v[3]) for v in chunk)
        ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for r, v in enumerate(chunk):
            ids[r, : len(v[3])] = torch.tensor(v[3])
            mask[r, : len(v[4])] = torch.tensor(v[4])
        preds.append(np.asarray(predict_fn(ids, mask), dtype=float).reshape(-1))
    pred = np.concatenate(preds)
    base = {v[0]: p for v, p in zip(variants, pred) if v[1] is None}
    rows = [
        {
            "sample": v[0],
            "category": v[1],
            "n_tokens": v[2],
            "prediction_eV": base[v[0]],
            "occluded_eV": p,
            "change_eV": p - base[v[0]],
        }
        for v, p in zip(variants, pred)
        if v[1] is not None
    ]
    return pd.DataFrame(rows)


def substitute(description: Any, donor: Any, category: str) -> str:
    """``description``'s text with every feature of ``category`` replaced by ``donor``'s text for the same feature.

    Both are :class:`helpers.descriptions.Description`; a feature the donor lacks is left as it is. The result
    is a text of the training format with values that occur in the data (unlike a ``<mask>`` token). The same
    definition is a cell of notebook 05 (tested identical).
    """
    theirs = {s.feature: donor.text[s.start : s.end] for s in donor.spans}
    text = description.text
    for span in sorted(description.spans, key=lambda s: -s.start):  # from the end: earlier offsets stay valid
        if span.category == category and span.feature in theirs:
            text = text[: span.start] + theirs[span.feature] + text[span.end :]
    return text


def substitution_effects(
    predict: Callable[[list[str]], np.ndarray], descs: Sequence[Any], categories: Sequence[str], seed: int = 0
) -> pd.DataFrame:
    """How far each prediction moves when one category takes the values of another test material (eV).

    For each text and category the donor is the first material of a seeded permutation (not the text
    itself) whose text for that category differs; ``predict(texts) -> eV`` (unclipped). Categories a text
    lacks are skipped. The same definition is a cell of notebook 05 (tested identical).

    Returns:
        Long table ``sample, category, donor, prediction_eV, substituted_eV, change_eV``.
    """
    rng = np.random.default_rng(seed)
    base = np.asarray(predict([d.text for d in descs]), dtype=float)
    rows = []
    for c in categories:
        texts, who = [], []
        for s, d in enumerate(descs):
            mine = substitute(d, d, c)
            for donor in rng.permutation(len(descs)):
                if donor != s and substitute(d, descs[donor], c) != mine:
                    texts.append(substitute(d, descs[donor], c))
                    who.append((s, int(donor)))
                    break
        new = np.asarray(predict(texts), dtype=float) if texts else np.zeros(0)
        for (s, donor), p in zip(who, new):
            rows.append({"sample": s, "category": c, "donor": donor, "prediction_eV": base[s],
                         "substituted_eV": p, "change_eV": p - base[s]})  # fmt: skip
    return pd.DataFrame(rows, columns=["sample", "category", "donor", "prediction_eV", "substituted_eV", "change_eV"])


@dataclass
class Attributions:
    """Integrated gradients of a text regressor's prediction (eV) on its word embeddings, per text.

    Attributes:
        per_token: per text ``(n_tokens,)``: attribution of each token (eV), summed over embedding dimensions.
        prediction_eV, baseline_eV: the model's output for the text and for its baseline (eV, unclipped).
        delta_eV: completeness gap ``sum(per_token) - (prediction - baseline)`` per text (eV).
        baseline: the baseline in words.
        output: what was attributed: the whole model's output, or (two-part head) its gap regressor alone.
    """

    per_token: list[np.ndarray]
    prediction_eV: np.ndarray
    baseline_eV: np.ndarray
    delta_eV: np.ndarray
    baseline: str = "every token except <s> and </s> replaced by <mask> (same length, positions and attention mask)"
    output: str = "the model's output (eV)"


def integrated_gradients(
    model: Any, tokenizer: Any, input_ids: Sequence[Sequence[int]], n_steps: int = 32, batch_size: int = 2
) -> Attributions:
    """Integrated gradients (captum ``LayerIntegratedGradients``) of a ``TextRegressor``'s eV output on its word embeddings.

    Regression output: no target. Baseline: :attr:`Attributions.baseline` (``<mask>`` keeps RoBERTa's position
    ids, which ``<pad>`` would change). ``n_steps`` points of the Gauss-Legendre rule; the completeness gap
    :attr:`Attributions.delta_eV` shrinks as ``n_steps`` grows. Memory grows with ``batch_size * n_steps`` sequences
    held with their gradients at once (8 x 32 texts of ~90 tokens took the notebook kernel past 2 GB; 2 x 32 stays
    well under 1 GB).

    A two-part model (``head_kind == "two_part"``) sets its output to 0 eV where its metal classifier says metal: a
    step along the path that has no gradient, so completeness cannot hold for it. For such a model the gap
    regressor alone (classifier switched off for the call, restored after) is attributed, and
    :attr:`Attributions.output` says so; the classifier's decision is left to interventions (substitution).

    Raises:
        ValueError: a tokenizer without a mask token, or ``n_steps < 2``.
    """
    import torch
    from captum.attr import LayerIntegratedGradients

    if tokenizer.mask_token_id is None:
        raise ValueError("the tokenizer has no mask token, which the baseline needs")
    if n_steps < 2:
        raise ValueError(f"n_steps must be >= 2, got {n_steps}")
    from . import text_models as tm

    special = set(tokenizer.all_special_ids)
    model.eval()
    switch = getattr(model, "head_kind", "linear") == "two_part" and bool(model.classifier_fitted)
    if switch:
        model.classifier_fitted.fill_(False)
        try:
            found = integrated_gradients(model, tokenizer, input_ids, n_steps=n_steps, batch_size=batch_size)
        finally:
            model.classifier_fitted.fill_(True)
        return replace(found, output="the gap regressor of the two-part model (eV; classifier off)")

    def forward(ids: Any, mask: Any) -> Any:
        return model(input_ids=ids, attention_mask=mask) * model.y_std + model.y_mean  # eV

    lig = LayerIntegratedGradients(forward, model.encoder.get_input_embeddings())
    out: list[np.ndarray] = []
    pred, base, delta = [], [], []
    for i in range(0, len(input_ids), batch_size):
        chunk = [list(x) for x in input_ids[i : i + batch_size]]
        batch = tm.pad_batch(chunk, tokenizer.pad_token_id, "cpu")
        ids, mask = batch["input_ids"], batch["attention_mask"]
        keep = mask.bool() & ~torch.isin(ids, torch.tensor(sorted(special)))
        ref = torch.where(keep, torch.full_like(ids, tokenizer.mask_token_id), ids)
        att, d = lig.attribute(ids, ref, additional_forward_args=(mask,), n_steps=n_steps,
                               return_convergence_delta=True)  # fmt: skip
        tok = att.sum(dim=-1).detach().numpy()
        with torch.no_grad():
            pred.append(forward(ids, mask).numpy())
            base.append(forward(ref, mask).numpy())
        delta.append(d.detach().numpy())
        out.extend(tok[r, : len(x)] for r, x in enumerate(chunk))
    return Attributions(out, np.concatenate(pred), np.concatenate(base), np.concatenate(delta))


def category_scores(
    per_token: Sequence[np.ndarray], token_categories: Sequence[Sequence[str | None]], categories: Sequence[str]
) -> pd.DataFrame:
    """Per text and category: the token scores summed and per token (e.g. attention, rollout or attributions).

    Returns:
        Long table ``sample, category, n_tokens, summed, per_token``; categories a text lacks are skipped.

    Raises:
        ValueError: a text whose number of scores differs from its number of token categories (naming it).
    """
    rows = []
    for s, (score, cats) in enumerate(zip(per_token, token_categories, strict=True)):
        score = np.asarray(score, dtype=float)
        if score.shape[-1] != len(cats):
            raise ValueError(f"text {s}: {score.shape[-1]} token scores but {len(cats)} token categories")
        for c in categories:
            sel = [i for i, t in enumerate(cats) if t == c]
            if sel:
                total = float(score[sel].sum())
                rows.append({"sample": s, "category": c, "n_tokens": len(sel), "summed": total,
                             "per_token": total / len(sel)})  # fmt: skip
    return pd.DataFrame(rows, columns=["sample", "category", "n_tokens", "summed", "per_token"])


def rank_agreement(effects: Mapping[str, float], attention: Mapping[str, float]) -> tuple[float, float]:
    """Spearman rank correlation between two per-category scores (same keys).

    Returns ``(rho, p_value)``; with few categories the p-value is large: read rho
    as a description, not a test.

    Raises:
        ValueError: fewer than 3 shared categories; a score that is not finite (named);
            or one side giving every category the same value, for which a rank correlation
            is undefined (scipy would return ``(nan, nan)`` without saying why): the
            message says which side.
    """
    from scipy.stats import spearmanr

    keys = [k for k in effects if k in attention]
    if len(keys) < 3:
        raise ValueError(f"need at least 3 shared categories for a rank correlation, got {keys}")
    for side, scores in (("effects", effects), ("attention", attention)):
        values = [scores[k] for k in keys]
        bad = [k for k, v in zip(keys, values) if not np.isfinite(v)]
        if bad:
            raise ValueError(f"{side}: the score of {bad[0]!r} is not finite ({scores[bad[0]]!r})")
        if len(set(values)) == 1:
            raise ValueError(
                f"{side}: every category has the same value ({values[0]!r}), so there is no ranking "
                "and a rank correlation is undefined"
            )
    res = spearmanr([effects[k] for k in keys], [attention[k] for k in keys])
    return float(res.statistic), float(res.pvalue)


# --------------------------------------------------------------------------- choosing examples


#: The anions of a halide perovskite ABX3 (the solar-cell family: CsPbI3, CsSnI3, MAPbBr3, ...).
HALIDES: frozenset[str] = frozenset({"Cl", "Br", "I"})


def is_perovskite_like(formula: str, space_group_number: int | None, anions: frozenset[str] | None = None) -> bool:
    """True for an ABX3 composition (three elements in ratio 1:1:3) in space group Pm-3m (221), the ideal perovskite.

    ``anions``: when given, X (the element with 3) must be one of them (:data:`HALIDES` for a halide perovskite;
    Co3AlC, an antiperovskite carbide, is ABX3 by numbers but not a halide). A missing space group (``None`` or
    NaN) is not 221: False.

    Raises:
        ValueError: a space group that is present but not an integer in 1..230.
    """
    from pymatgen.core import Composition

    from .symmetry import crystal_system_from_spacegroup

    if space_group_number is None or (isinstance(space_group_number, float) and math.isnan(space_group_number)):
        return False
    crystal_system_from_spacegroup(space_group_number)  # ValueError unless an integer in 1..230
    if int(space_group_number) != 221:
        return False
    amounts = Composition(formula).get_el_amt_dict()
    values = sorted(amounts.values())
    if not (len(values) == 3 and np.allclose(np.asarray(values) / values[0], [1, 1, 3])):
        return False
    x = max(amounts, key=amounts.get)
    return anions is None or x in anions


def pick_examples(rows: pd.DataFrame) -> dict[str, Any]:
    """Row labels of up to three teaching examples, chosen by rule (not by how well a model does).

    - ``"metal"``: a binary compound with band gap 0 eV (the first by formula);
    - ``"wide-gap insulator"``: the largest band gap (eV);
    - ``"halide perovskite"``: the first ABX3 halide (X in :data:`HALIDES`) in Pm-3m (:func:`is_perovskite_like`), if any.

    ``rows`` needs ``formula_reduced``, ``band_gap_eV``, ``n_elements`` and
    ``space_group_number``. Missing kinds are left out of the result; a row without a
    space group (NaN) is never the perovskite.

    Raises:
        ValueError: naming the row whose space group is present but not an integer in 1..230.
    """
    out: dict[str, Any] = {}
    metals = rows[(rows["band_gap_eV"] == 0) & (rows["n_elements"] == 2)].sort_values("formula_reduced")
    if len(metals):
        out["metal"] = metals.index[0]
    if len(rows):
        out["wide-gap insulator"] = rows["band_gap_eV"].idxmax()
    perov = []
    for i, f, sg in zip(rows.index, rows["formula_reduced"], rows["space_group_number"]):
        try:
            if is_perovskite_like(f, sg, HALIDES):
                perov.append(i)
        except ValueError as exc:
            raise ValueError(f"row {i!r}: {exc}") from None
    if perov:
        out["halide perovskite"] = min(perov, key=lambda i: rows.at[i, "formula_reduced"])
    return out
