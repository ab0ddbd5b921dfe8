#!/usr/bin/env python
"""What one quick-mode text model costs: the budget notebook 04 plans with.

On the random split by formula of data/mp_computed_materials.csv (helpers.splits.split_by_formula,
seed 42), scores predict-the-mean and one fine-tune of the shipped RoBERTa
(pretrained/bandgap-roberta-tiny) on structured text with the quick preset of
configs/text_regression.yaml. Validation only (the test split is not scored here).
Prints and writes results/benchmarks/text_quick_budget.json: validation MAE (eV),
wall time (s) of the fine-tune, peak RSS of the process (MB), machine load.

    BANDGAP_MODE=quick nice .venv/bin/python benchmarks/text_quick_budget.py
"""

from __future__ import annotations

import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from helpers import splits  # noqa: E402
from helpers import text_models as tm  # noqa: E402
from helpers.descriptions import describe_rows  # noqa: E402
from helpers.mp_data import read_dataset_csv  # noqa: E402

RESULTS = REPO / "results" / "benchmarks" / "text_quick_budget.json"


def main() -> None:
    mp = read_dataset_csv()
    split = splits.split_by_formula(mp, "random")
    y_train, y_val = split.train["band_gap_eV"].to_numpy(), split.val["band_gap_eV"].to_numpy()
    mean_mae = float(np.mean(np.abs(y_val - y_train.mean())))
    print(f"{split.describe()}\npredict the mean: validation MAE {mean_mae:.3f} eV")
    cfg = tm.load_config(mode="quick", model=tm.SHIPPED_NAME, format="structured")
    t0 = time.perf_counter()
    texts = {p: [d.text for d in describe_rows(df, cfg.format)] for p, df in split.parts().items() if p != "test"}
    describe_s = time.perf_counter() - t0
    enc = tm.load_encoder(cfg.model)
    model = tm.build_regressor(enc, cfg)
    fit = tm.train_regressor(model, enc.tokenizer, texts["train"], y_train, texts["val"], y_val, cfg)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = {
        "split": split.describe(),
        "predict_mean_val_mae_eV": round(mean_mae, 4),
        "model": {
            "encoder": tm.SHIPPED_NAME,
            "format": cfg.format,
            "regime": cfg.regime,
            "params": enc.n_params,
            "best_val_mae_eV": round(fit.best_val_mae, 4),
            "best_epoch": fit.best_epoch,
            "history": fit.history,
            "fine_tune_wall_s": round(fit.wall_s, 1),
            "describe_wall_s": round(describe_s, 1),
            "ratio_to_predict_mean": round(fit.best_val_mae / mean_mae, 3),
            "n_truncated": fit.n_truncated,
        },
        "config": {
            k: getattr(cfg, k)
            for k in ("epochs", "batch_size", "lr_encoder", "lr_head", "max_length", "pooling", "threads", "seed")
        },
        "peak_rss_mb": round(peak_mb),
        "device": fit.device,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end (shared machine)",
        "command": "BANDGAP_MODE=quick nice .venv/bin/python benchmarks/text_quick_budget.py",
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "model"}, indent=1))
    print(json.dumps({k: v for k, v in result["model"].items() if k != "history"}, indent=1))


if __name__ == "__main__":
    main()
