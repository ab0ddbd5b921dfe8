"""The model store: one layout for every saved model and one checked loader that dispatches per kind.

Every model the notebooks save lives in ``<store>/<kind>/<name>/`` (the store is
``BANDGAP_MODELS_DIR``, default ``<repo>/models``; the folder is
:func:`helpers.config.default_checkpoint`):

========  =============================================  ==============================================
kind      what the folder holds                          checked loader
========  =============================================  ==============================================
crabnet   ``model.safetensors`` (weights, scalers and    :func:`helpers.crabnet.load_model`: every
          metadata of one CrabNet or an ensemble)        field, tensor shape and weight checked first
text      ``model.safetensors``, the encoder's config,   :func:`helpers.text_models.load_regressor`
          the tokenizer and ``regressor.json``
========  =============================================  ==============================================

:func:`load_checkpoint` is the one entry point: ``load_checkpoint("crabnet", "03_crabnet_random_split")``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import config

#: File whose presence makes a folder of the store a saved model, per kind.
MARKER_FILE: dict[str, str] = {"crabnet": "model.safetensors", "text": "regressor.json"}

#: Models committed with the course (``pretrained/``), found by name when the store has no folder of
#: that name: the shipped RoBERTa fine-tuned on band gaps (scripts/finetune_text_model.py), so
#: notebook 05 can read it without notebook 04 having run.
SHIPPED_CHECKPOINTS: dict[str, dict[str, Path]] = {
    "text": {"bandgap-roberta-tiny-bandgap": config.REPO_ROOT / "pretrained" / "bandgap-roberta-tiny-bandgap"},
}


def checkpoint_folder(kind: str, name_or_path: str | Path) -> Path:
    """The folder of a saved model: a plain name is looked up in the store, a path is taken as is.

    A name of :data:`SHIPPED_CHECKPOINTS` that the store does not hold gives the committed folder.

    Raises:
        ValueError: unknown ``kind`` or a name that is not a plain folder name (see
            :func:`helpers.config.default_checkpoint`).
    """
    if isinstance(name_or_path, Path) or any(sep in str(name_or_path) for sep in ("/", "\\")):
        if kind not in config.MODEL_KINDS:
            raise ValueError(f"model kind must be one of {config.MODEL_KINDS}, got {kind!r}")
        return Path(name_or_path)
    folder = config.default_checkpoint(kind, name_or_path)
    shipped = SHIPPED_CHECKPOINTS.get(kind, {}).get(str(name_or_path))
    if shipped is not None and not (folder / MARKER_FILE[kind]).is_file():
        return shipped
    return folder


def saved_checkpoints(kind: str) -> list[str]:
    """Names of the models of ``kind`` saved in the store so far (folders holding :data:`MARKER_FILE`), sorted."""
    folder = config.default_checkpoint(kind, "_").parent
    marker = MARKER_FILE[kind]
    return sorted(p.name for p in folder.iterdir() if (p / marker).is_file()) if folder.is_dir() else []


def load_checkpoint(kind: str, name_or_path: str | Path, **options: Any) -> Any:
    """Load a saved model of ``kind`` through its checked loader.

    Args:
        kind: ``"crabnet"`` or ``"text"`` (:data:`helpers.config.MODEL_KINDS`).
        name_or_path: a name in the store (``<store>/<kind>/<name>/``) or a folder path.
        options: passed to the loader (``device=`` for CrabNet, ``attn_implementation=`` for text).

    Returns:
        ``crabnet``: a :class:`helpers.crabnet.CrabModel`; ``text``: ``(model, tokenizer, config)``
        from :func:`helpers.text_models.load_regressor`.

    Raises:
        ValueError: unknown kind or bad name; FileNotFoundError: no saved model of that kind in
            the folder (the message names the folder and the file it looked for);
            :class:`helpers.crabnet.CheckpointError`: a CrabNet checkpoint fails a check.
    """
    folder = checkpoint_folder(kind, name_or_path)
    marker = folder / MARKER_FILE[kind]
    if not marker.is_file():
        raise FileNotFoundError(
            f"no saved {kind} model in {folder} ({MARKER_FILE[kind]} is missing); "
            f"saved so far: {', '.join(saved_checkpoints(kind)) or 'none'}"
        )
    if kind == "crabnet":
        from . import crabnet

        return crabnet.load_model(folder, **options)
    from . import text_models

    return text_models.load_regressor(folder, **options)
