"""CrabNet in the course (Wang et al., npj Comput. Mater. 7, 77 (2021)), crabnet 2.0.8 without its sharp edges.

What a notebook calls::

    from helpers import config, crabnet
    cfg, why = crabnet.config_for(settings.mode, config.select_device().name)
    model = crabnet.fit_crabnet(train, val, cfg)          # eV in, eV out
    model.save(config.default_checkpoint("crabnet", "03_crabnet_random_split"))

Four modules, one job each; every name a notebook uses is importable from here:

- :mod:`helpers.crabnet.configs`    :class:`CrabConfig`, its limits, the quick/full presets, :func:`config_for`, precision
- :mod:`helpers.crabnet.model`      :func:`fit_crabnet`, :class:`CrabModel` (predict with uncertainty, save), :func:`load_model`
- :mod:`helpers.crabnet.checkpoint` safetensors checkpoints and every check made before one is loaded
- :mod:`helpers.crabnet.compat`     crabnet 2.0.8's habits absorbed once (working directory, threads, warnings, RNG, SWA)
- :mod:`helpers.crabnet.attention`  element-to-element attention and element embeddings (lesson 05; import it by name)
"""

from __future__ import annotations

from .configs import (
    FIELD_LIMITS,
    CrabConfig,
    PRECISIONS,
    cpu_has_native_bf16,
    resolve_precision,
    QUICK,
    FULL_CPU,
    FULL_GPU,
    config_for,
)
from .compat import (
    CRABNET_LOCK,
    working_directory,
    torch_threads,
    NOISY_WARNINGS,
    quiet_crabnet,
    import_crabnet,
    patch_swa,
    build_subcrab,
    count_parameters,
    EpochProgress,
)
from .checkpoint import CHECKPOINT_FORMAT, CHECKPOINT_FILE, CheckpointError, checkpoint_file
from .model import (
    member_seeds,
    combine_members,
    TooManyElementsError,
    InvalidPredictionError,
    CrabModel,
    fit_crabnet,
    load_model,
    FormulaError,
)
