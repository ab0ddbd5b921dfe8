"""helpers.crabnet: CrabNet 2.0.8's sharp edges, each pinned down by a test.

All training here uses the tiny SubCrab of ``_crab_fixtures`` (about a second
per fit on one thread).
"""

from __future__ import annotations

import json
import os
import pickle
import struct
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from _crab_fixtures import TINY, tiny_model, tiny_split
from helpers import config
from helpers import crabnet as ct
from helpers.composition import FormulaError

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def model() -> ct.CrabModel:
    return tiny_model(seed=0)


# --------------------------------------------------------------------- configuration
def test_effective_epochs_round_up_like_crabnet() -> None:
    assert ct.CrabConfig("a", epochs=40, epochs_step=5).effective_epochs == 40
    assert ct.CrabConfig("a", epochs=41, epochs_step=5).effective_epochs == 50
    assert ct.CrabConfig("a", epochs=3, epochs_step=10).effective_epochs == 20


def test_config_validation_and_round_trip() -> None:
    with pytest.raises(ValueError, match="divisible"):
        ct.CrabConfig("bad", d_model=30, heads=4)
    with pytest.raises(ValueError, match="epochs"):
        ct.CrabConfig("bad", epochs=0)
    again = ct.CrabConfig.from_dict(json.loads(json.dumps(ct.FULL_CPU.to_dict())))
    assert again == ct.FULL_CPU
    assert f"d_model={ct.FULL_CPU.d_model}" in ct.FULL_CPU.describe()


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"d_model": "16"}, "d_model"),  # was "TypeError: not all arguments converted during string formatting"
        ({"N": 2.5}, "N"),
        ({"heads": True}, "heads"),
        ({"out_hidden": 32}, "out_hidden"),
        ({"out_hidden": ("32",)}, "out_hidden"),
        ({"lr": 10**5000}, "lr"),
        ({"dropout": float("nan")}, "dropout"),
        ({"batch_size": -1}, "batch_size"),
        ({"name": None}, "name"),
    ],
)
def test_config_fields_are_type_and_range_checked(changes: dict, field: str) -> None:
    """One home for config validation: CrabConfig itself (used by load_model and the benchmark's --set)."""
    from dataclasses import replace

    with pytest.raises(ValueError, match=f"^{field} must"):
        replace(TINY, **changes)


def test_config_normalises_numpy_numbers_and_lists() -> None:
    from dataclasses import replace

    cfg = replace(TINY, d_model=np.int64(16), out_hidden=[32, 16], dropout=np.float32(0.25))
    assert cfg == replace(TINY, dropout=0.25) and type(cfg.d_model) is int and cfg.out_hidden == (32, 16)


def test_config_for_mode_and_device() -> None:
    cfg, why = ct.config_for("quick", "cuda")
    assert cfg is ct.QUICK and "quick" in why
    assert ct.config_for("full", "cuda")[0] is ct.FULL_GPU
    assert ct.config_for("full", "mps")[0] is ct.FULL_GPU
    cfg, why = ct.config_for("full", "cpu")
    assert cfg is ct.FULL_CPU and "without a GPU" in why
    assert ct.resolve_precision(ct.FULL_CPU.precision, "cpu")[1] in why, "the notebook says which arithmetic runs"
    assert ct.FULL_GPU.d_model == 512 and ct.FULL_GPU.out_hidden == (1024, 512, 256, 128)
    with pytest.raises(ValueError):
        ct.config_for("medium", "cpu")


def test_build_subcrab_honours_architecture() -> None:
    """crabnet's CrabNet(out_hidden=...) is ignored by fit; our SubCrab really has the layers asked for."""
    cfg = ct.CrabConfig("arch", d_model=24, N=2, heads=3, dim_feedforward=40, out_hidden=(20, 10))
    sub = ct.build_subcrab(cfg)
    assert sub.d_model == 24 and sub.N == 2 and sub.heads == 3
    assert [fc.out_features for fc in sub.output_nn.fcs] == [20, 10]
    assert len(sub.encoder.transformer_encoder.layers) == 2
    assert sub.encoder.transformer_encoder.layers[0].linear1.out_features == 40
    same = ct.build_subcrab(cfg)
    assert all(torch.equal(a, b) for a, b in zip(sub.state_dict().values(), same.state_dict().values()))


# --------------------------------------------------------------------- environment guards
def test_working_directory_restores_cwd_even_on_error(tmp_path: Path) -> None:
    before = Path.cwd()
    with pytest.raises(RuntimeError):
        with ct.working_directory() as wd:
            assert Path.cwd() == wd != before
            raise RuntimeError("boom")
    assert Path.cwd() == before
    assert not wd.exists(), "the temporary folder is removed"
    with ct.working_directory(tmp_path / "kept") as wd:
        Path("x.txt").write_text("1")
    assert (tmp_path / "kept" / "x.txt").exists() and Path.cwd() == before


def test_torch_threads_sets_and_restores() -> None:
    before = torch.get_num_threads()
    with ct.torch_threads(1) as n:
        assert n == 1 and torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError):
        with ct.torch_threads(0):
            pass


def test_fit_leaves_working_directory_clean_and_is_quiet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """crabnet's fit writes figures/lc_data/*.csv into the cwd; ours writes nothing here and warns nothing noisy."""
    monkeypatch.chdir(tmp_path)
    train, val, _ = tiny_split()
    train_before, val_before = train.copy(), val.copy()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ct.fit_crabnet(train, val, TINY, seed=1, threads=1, progress=False)
    assert list(tmp_path.iterdir()) == []
    assert Path.cwd() == tmp_path
    noisy = [str(w.message) for w in caught if "pin_memory" in str(w.message) or "nested_tensor" in str(w.message)]
    assert noisy == []
    pd.testing.assert_frame_equal(train, train_before)
    pd.testing.assert_frame_equal(val, val_before)


def test_two_fits_in_one_process_are_identical(model: ct.CrabModel) -> None:
    """The second fit used to die with "'SWA' object has no attribute '_optimizer_step_pre_hooks'"."""
    again = tiny_model(seed=0)
    _, _, test = tiny_split()
    a, b = model.predict(test["formula"]), again.predict(test["formula"])
    pd.testing.assert_frame_equal(a, b)
    other = tiny_model(seed=5)
    assert not np.allclose(other.predict(test["formula"])["prediction_eV"], a["prediction_eV"])


def test_patch_swa_repairs_a_wrapped_step() -> None:
    """After a failed fit torch has wrapped SWA.step; patch_swa unwraps it and fitting works again."""
    from crabnet.utils.optim import SWA
    from torch.optim import Optimizer

    original = SWA.step
    SWA.step = Optimizer.profile_hook_step(original)  # the state torch leaves behind
    SWA.step.hooked = True
    ct.patch_swa()
    assert SWA.step is original and SWA.step.hooked
    tiny_model(seed=2)  # would raise AttributeError without the repair


def test_import_crabnet_restores_rng_and_rcparams() -> None:
    """Importing crabnet reseeds torch/numpy with 42 and sets font.size 16; import_crabnet undoes both."""
    code = (
        "import numpy as np, torch, matplotlib\n"
        "torch.manual_seed(7); np.random.seed(7)\n"
        "t = torch.random.get_rng_state().clone(); n = np.random.get_state()[1].copy()\n"
        "font = matplotlib.rcParams['font.size']\n"
        "from helpers.crabnet import import_crabnet\n"
        "import_crabnet()\n"
        "assert torch.equal(t, torch.random.get_rng_state()), 'torch RNG changed'\n"
        "assert (n == np.random.get_state()[1]).all(), 'numpy RNG changed'\n"
        "assert matplotlib.rcParams['font.size'] == font, matplotlib.rcParams['font.size']\n"
        "print('ok')\n"
    )
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=config.REPO_ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "ok"


# --------------------------------------------------------------------- predict
def test_predict_keeps_input_and_order(model: ct.CrabModel) -> None:
    _, _, test = tiny_split()
    formulas = test["formula"].copy()
    frame = test.copy()
    out = model.predict(formulas)
    pd.testing.assert_series_equal(formulas, test["formula"])
    pd.testing.assert_frame_equal(frame, test)
    assert list(out.columns) == ["formula", "prediction_eV", "uncertainty_eV"]
    assert list(out["formula"]) == list(test["formula"])
    assert (out["uncertainty_eV"] > 0).all()
    # same composition, other spelling and order -> the same number
    single = model.predict(["CsPbI3", "I3PbCs", "Cs2Pb2I6"])
    assert single["prediction_eV"].nunique() == 1
    assert model.predict([]).empty


def test_predict_refuses_more_elements_than_trained(model: ct.CrabModel) -> None:
    assert model.max_elements == 6  # FA/MA mixtures: C H N Pb I Br
    with pytest.raises(ct.TooManyElementsError, match="more than 6 elements"):
        model.predict(["CsPbI3", "LiNaKRbCsPbI3"])


def test_predict_refuses_unknown_elements(model: ct.CrabModel) -> None:
    with pytest.raises(FormulaError, match="Xx"):
        model.predict(["Xx2PbI3"])
    with pytest.raises(FormulaError):
        model.predict(["Pb(I3"])


def test_fit_input_errors() -> None:
    train, val, _ = tiny_split()
    with pytest.raises(ValueError, match="target"):
        ct.fit_crabnet(train.rename(columns={"target": "gap"}), val, TINY, progress=False)
    with pytest.raises(ValueError, match="empty"):
        ct.fit_crabnet(train, val.iloc[:0], TINY, progress=False)


# --------------------------------------------------------------------- save / load
def test_save_load_round_trip_is_identical_and_never_unpickles(
    model: ct.CrabModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = model.save(tmp_path / "m.safetensors")
    # a safetensors file is an 8-byte header length + a JSON header + raw bytes; no pickle opcodes
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    assert header["__metadata__"]["format"] == ct.CHECKPOINT_FORMAT

    def forbidden(*args, **kwargs):
        raise AssertionError("a checkpoint load must not unpickle")

    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(pickle, "Unpickler", forbidden)
    monkeypatch.setattr(torch, "load", forbidden)
    loaded = ct.load_model(path)
    monkeypatch.undo()

    _, _, test = tiny_split()
    a = model.predict(test["formula"])
    b = loaded.predict(test["formula"])
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert loaded.config == model.config
    assert loaded.max_elements == model.max_elements
    assert loaded.train_elements == model.train_elements
    assert loaded.history == model.history


def test_save_requires_safetensors_suffix(model: ct.CrabModel, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="safetensors"):
        model.save(tmp_path / "m.pth")


class _Exploit:
    """Unpickling this would create a marker file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "pwned"))


def test_load_rejects_pickles_without_running_them(tmp_path: Path) -> None:
    marker = tmp_path / "marker.txt"
    evil = tmp_path / "evil.safetensors"
    evil.write_bytes(pickle.dumps(_Exploit(marker)))
    with pytest.raises(Exception):
        ct.load_model(evil)
    assert not marker.exists()


def test_load_rejects_foreign_safetensors(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    path = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(2)}, str(path), metadata={"format": "pt"})
    with pytest.raises(ValueError, match="not a band-gap course CrabNet checkpoint"):
        ct.load_model(path)


def test_progress_prints_sparingly(capsys: pytest.CaptureFixture[str]) -> None:
    bar = ct.EpochProgress("demo", 100, max_lines=5)
    for epoch in range(1, 101):
        bar.update(epoch, "info")
    bar.update(100, "done", final=True)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) <= 6 and lines[-1].startswith("demo: 100/100 epochs | done")
    silent = ct.EpochProgress("quiet", 10, enabled=False)
    silent.update(10, "x", final=True)
    assert capsys.readouterr().out == "" and "10/10" in silent.last_text


# --------------------------------------------------------------------- seed ensembles
def test_member_seeds_and_config_members() -> None:
    assert ct.member_seeds(42, 1) == [42]
    assert ct.member_seeds(42, 3) == [42, 43, 44]
    with pytest.raises(ValueError, match="members"):
        ct.member_seeds(42, 0)
    with pytest.raises(ValueError, match="members"):
        ct.CrabConfig("bad", members=0)
    two = ct.CrabConfig("two", members=2)
    assert "ensemble of 2 seeds" in two.describe() and "ensemble" not in ct.QUICK.describe()
    assert ct.CrabConfig.from_dict(two.to_dict()) == two


def test_combine_members_is_a_gaussian_mixture() -> None:
    mean, sigma, spread = ct.combine_members([[1.0, 2.0], [3.0, 2.0]], [[0.3, 0.1], [0.4, 0.1]])
    np.testing.assert_allclose(mean, [2.0, 2.0])
    np.testing.assert_allclose(spread, [1.0, 0.0])
    np.testing.assert_allclose(sigma, [np.sqrt((0.09 + 0.16) / 2 + 1.0), 0.1])
    one_mean, one_sigma, one_spread = ct.combine_members([[1.5, 2.5]], [[0.2, 0.3]])
    np.testing.assert_allclose(one_mean, [1.5, 2.5])
    np.testing.assert_allclose(one_sigma, [0.2, 0.3])
    np.testing.assert_array_equal(one_sigma, [0.2, 0.3])  # bit for bit: a single model is not rescaled
    assert (one_spread == 0).all()
    with pytest.raises(ValueError, match="shapes"):
        ct.combine_members([[1.0, 2.0], [1.0]], [[0.1, 0.1], [0.1]])
    with pytest.raises(ValueError, match="same positive number"):
        ct.combine_members([], [])


@pytest.fixture(scope="module")
def ensemble() -> ct.CrabModel:
    from dataclasses import replace

    train, val, _ = tiny_split()
    return ct.fit_crabnet(train, val, replace(TINY, members=2), seed=5, threads=1, progress=False)


def test_ensemble_is_the_mean_of_separately_trained_members(ensemble: ct.CrabModel, tmp_path: Path) -> None:
    """The benchmark trains members in separate processes; this is what makes that equivalent."""
    train, val, test = tiny_split()
    assert ensemble.members == 2 and ensemble.info["member_seeds"] == [5, 6]
    singles = [ct.fit_crabnet(train, val, TINY, seed=s, threads=1, progress=False) for s in (5, 6)]
    assert ensemble.n_parameters == sum(m.n_parameters for m in singles)
    parts = [m.predict(test["formula"]) for m in singles]
    combined = ensemble.predict(test["formula"])
    assert list(combined.columns) == ["formula", "prediction_eV", "uncertainty_eV", "member_spread_eV"]
    mean, sigma, spread = ct.combine_members([p["prediction_eV"] for p in parts], [p["uncertainty_eV"] for p in parts])
    np.testing.assert_array_equal(combined["prediction_eV"], mean)
    np.testing.assert_array_equal(combined["uncertainty_eV"], sigma)
    assert (combined["member_spread_eV"] > 0).all(), "two seeds never agree to the last bit"
    assert {h["member"] for h in ensemble.history} == {0, 1}
    assert [h for h in ensemble.history if h["member"] == 1] == [{**h, "member": 1} for h in singles[1].history]


def test_ensemble_checkpoint_round_trip(ensemble: ct.CrabModel, tmp_path: Path) -> None:
    path = ensemble.save(tmp_path / "ens.safetensors")
    loaded = ct.load_model(path)
    _, _, test = tiny_split()
    assert loaded.members == 2 and loaded.config == ensemble.config
    pd.testing.assert_frame_equal(loaded.predict(test["formula"]), ensemble.predict(test["formula"]), check_exact=True)
    assert loaded.history == ensemble.history


def test_load_rejects_a_checkpoint_missing_a_member(ensemble: ct.CrabModel, tmp_path: Path) -> None:
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    path = ensemble.save(tmp_path / "ens.safetensors")
    with safe_open(str(path), framework="pt") as handle:
        meta = handle.metadata()
    tensors = load_file(str(path))
    save_file(
        {k: v for k, v in tensors.items() if not k.startswith("member1.")},
        str(tmp_path / "cut.safetensors"),
        metadata=meta,
    )
    with pytest.raises(ValueError, match="no tensors for member 1"):
        ct.load_model(tmp_path / "cut.safetensors")
    save_file(tensors, str(tmp_path / "one.safetensors"), metadata={**meta, "members": "1"})
    with pytest.raises(ValueError, match="belong to no member"):
        ct.load_model(tmp_path / "one.safetensors")


def test_describe_single_and_ensemble(model: ct.CrabModel, ensemble: ct.CrabModel) -> None:
    assert model.describe().startswith(f"{model.n_parameters:,} parameters, {model.info['epochs_run']} epochs in ")
    per = ensemble.n_parameters // 2
    epochs = "+".join(str(e) for e in ensemble.info["epochs_run_per_member"])
    assert len(ensemble.info["epochs_run_per_member"]) == 2
    assert ensemble.describe().startswith(f"ensemble of 2 x {per:,} parameters, {epochs} epochs in ")


# --------------------------------------------------------------------- precision
def test_cpu_bf16_detection_reads_cpuinfo_flags(tmp_path: Path) -> None:
    zen4 = tmp_path / "zen4"
    zen4.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 avx512_vnni\n")
    old = tmp_path / "old"
    old.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 fma\n")
    assert ct.cpu_has_native_bf16(zen4) is True
    assert ct.cpu_has_native_bf16(old) is False
    assert ct.cpu_has_native_bf16(tmp_path / "missing") is False


def test_resolve_precision(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ct.resolve_precision("float32")[0] == "float32"
    assert ct.resolve_precision("bfloat16", "cpu")[0] == "bfloat16"
    assert ct.resolve_precision("auto", "cuda")[0] == "float32"
    monkeypatch.setattr(ct.configs, "cpu_has_native_bf16", lambda: True)
    assert ct.resolve_precision("auto", "cpu")[0] == "bfloat16"
    monkeypatch.setattr(ct.configs, "cpu_has_native_bf16", lambda: False)
    precision, why = ct.resolve_precision("auto", "cpu")
    assert precision == "float32" and "no native bfloat16" in why
    with pytest.raises(ValueError, match="precision"):
        ct.resolve_precision("float16")
    with pytest.raises(ValueError, match="precision"):
        ct.CrabConfig("bad", precision="half")


def test_bfloat16_model_same_weights_bf16_products_float32_output(tmp_path: Path) -> None:
    from dataclasses import replace

    bf16_cfg = replace(TINY, precision="bfloat16")
    fp32 = ct.build_subcrab(TINY, seed=3)
    bf16 = ct.build_subcrab(bf16_cfg, seed=3)
    assert type(bf16).__name__ == "AutocastSubCrab" and type(fp32).__name__ == "SubCrab"
    for (ka, a), (kb, b) in zip(fp32.state_dict().items(), bf16.state_dict().items()):
        assert ka == kb and torch.equal(a, b), "same initial weights"
    src = torch.tensor([[5, 82, 53, 0]])
    frac = torch.tensor([[0.2, 0.2, 0.6, 0.0]])
    fp32.eval(), bf16.eval()
    with torch.no_grad():
        out32, out16 = fp32(src, frac), bf16(src, frac)
    assert out16.dtype == torch.float32 and out32.dtype == torch.float32
    assert not torch.equal(out32, out16), "bfloat16 products round differently"
    torch.testing.assert_close(out16, out32, atol=0.1, rtol=0.1)

    train, val, test = tiny_split()
    model = ct.fit_crabnet(train, val, bf16_cfg, seed=0, threads=1, progress=False)
    assert model.info["precision"] == "bfloat16" and "bfloat16" in model.describe()
    assert all(p.dtype == torch.float32 for p in model.crab.model.parameters())
    loaded = ct.load_model(model.save(tmp_path / "bf16.safetensors"))
    pd.testing.assert_frame_equal(loaded.predict(test["formula"]), model.predict(test["formula"]), check_exact=True)


# --------------------------------------------------------------------- hostile checkpoints
# Each case below once loaded (and then predicted nan, divided by zero or tried to allocate
# tens of GB) or died with a library error that did not name the file (issue 11, defects 6, 7, 12).
@pytest.fixture(scope="module")
def checkpoint(model: ct.CrabModel, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return model.save(tmp_path_factory.mktemp("ckpt") / "good.safetensors")


def _rewrite(src: Path, dst: Path, meta: dict | None = None, drop: tuple[str, ...] = (), edit=None) -> Path:
    """Copy a checkpoint with metadata fields replaced (``None`` deletes one) and tensors edited."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    with safe_open(str(src), framework="pt") as handle:
        old = dict(handle.metadata())
    for key, value in (meta or {}).items():
        if value is None:
            old.pop(key, None)
        else:
            old[key] = value
    tensors = {k: v.clone() for k, v in load_file(str(src)).items() if k not in drop}
    if edit is not None:
        edit(tensors)
    save_file(tensors, str(dst), metadata=old)
    return dst


def _config_with(checkpoint: Path, **changes) -> str:
    from safetensors import safe_open

    with safe_open(str(checkpoint), framework="pt") as handle:
        cfg = json.loads(handle.metadata()["config"])
    cfg.update(changes)
    return json.dumps(cfg)


def _set(key: str, value: float, index=None):
    def edit(tensors: dict) -> None:
        if index is None:
            tensors[key][...] = value
        else:
            tensors[key].view(-1)[index] = value

    return edit


def _all_weights(value: float):
    def edit(tensors: dict) -> None:
        for k, t in tensors.items():
            if "__scaler__" not in k and t.is_floating_point():
                t[...] = value

    return edit


@pytest.mark.parametrize(
    "edit, expected",
    [
        (_set("member0.output_nn.fc_out.weight", float("nan"), index=3), "member0.output_nn.fc_out.weight"),
        (_all_weights(float("inf")), "not finite"),
        (_set("member0.__scaler__.std", float("nan")), "scaler std"),
        (_set("member0.__scaler__.std", -0.27), "scaler std"),
        (_set("member0.__scaler__.std", 0.0), "scaler std"),
        (_set("member0.__scaler__.mean", float("inf")), "scaler mean"),
    ],
    ids=["nan-weight", "all-inf", "nan-std", "negative-std", "zero-std", "inf-mean"],
)
def test_load_refuses_non_finite_weights_and_bad_scalers(checkpoint: Path, tmp_path: Path, edit, expected: str) -> None:
    """Defect 6: these loaded and predicted 'nan ± nan eV' (or '± -0.27 eV') as if all were well."""
    bad = _rewrite(checkpoint, tmp_path / "bad.safetensors", edit=edit)
    with pytest.raises(ct.CheckpointError, match=expected) as info:
        ct.load_model(bad)
    assert "bad.safetensors" in str(info.value)


@pytest.mark.parametrize(
    "field, value, expected",
    [
        ("members", "0", "members"),
        ("members", "-1", "members"),
        ("members", "two", "members"),
        ("members", "1.5", "members"),
        ("members", "--2", "members"),
        ("members", "²", "members"),
        ("members", "100000", "members"),
        ("max_elements", "100000", "max_elements"),
        ("max_elements", "0", "max_elements"),
        ("max_elements", "six", "max_elements"),
        ("max_elements", None, "max_elements"),
        ("batch_size", "0", "batch_size"),
        ("batch_size", "-3", "batch_size"),
        ("batch_size", "1e9", "batch_size"),
        ("batch_size", "10000000000", "batch_size"),
        ("config", None, "config"),
        ("config", "{not json", "config"),
        ("config", "[1, 2]", "config"),
        ("config", '"text"', "config"),
        ("train_elements", "Cs Xx Pb", "train_elements"),
        ("history", "{not json", "history"),
        ("history", '{"a": 1}', "history"),
        ("history", "[1, 2]", "history"),
        ("info", "[1]", "info"),
        ("info", '{"epochs_run": "many"}', "info"),
        ("info", '{"epochs_run_per_member": 7}', "info"),
    ],
)
def test_load_refuses_bad_metadata_naming_file_and_field(
    checkpoint: Path, tmp_path: Path, field: str, value, expected: str
) -> None:
    """Defect 7: e.g. members "0" loaded (then ZeroDivisionError), max_elements "100000" allocated 40 GB."""
    bad = _rewrite(checkpoint, tmp_path / "meta.safetensors", meta={field: value})
    with pytest.raises(ct.CheckpointError, match=expected) as info:
        ct.load_model(bad)
    assert isinstance(info.value, ValueError)
    assert "meta.safetensors" in str(info.value)


@pytest.mark.parametrize(
    "changes, expected",
    [
        ({"d_model": "16"}, "d_model"),
        ({"d_model": True}, "d_model"),
        ({"d_model": 65536}, "d_model"),
        ({"d_model": 15}, "d_model"),
        ({"heads": 0}, "heads"),
        ({"heads": 3}, "heads"),
        ({"N": -1}, "N"),
        ({"dim_feedforward": 10**9}, "dim_feedforward"),
        ({"out_hidden": "32,16"}, "out_hidden"),
        ({"out_hidden": []}, "out_hidden"),
        ({"out_hidden": [32, 0]}, "out_hidden"),
        ({"dropout": 1.5}, "dropout"),
        ({"dropout": "0.1"}, "dropout"),
        ({"members": 0}, "members"),
        ({"precision": "half"}, "precision"),
        ({"name": 7}, "name"),
        ({"epochs": 0}, "epochs"),
        ({"batch_size": 0}, "batch_size"),
        ({"max_lr": float("nan")}, "max_lr"),
    ],
)
def test_load_refuses_bad_config_fields(checkpoint: Path, tmp_path: Path, changes: dict, expected: str) -> None:
    """A non-numeric d_model gave 'TypeError: not all arguments converted during string formatting'."""
    bad = _rewrite(checkpoint, tmp_path / "cfg.safetensors", meta={"config": _config_with(checkpoint, **changes)})
    with pytest.raises(ct.CheckpointError, match=f"config.*{expected}") as info:
        ct.load_model(bad)
    assert "cfg.safetensors" in str(info.value)


def test_a_lying_config_is_caught_from_the_tensor_shapes_before_building(
    checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A config claiming a bigger network than the tensors hold must not allocate that network first."""
    lying = _config_with(checkpoint, d_model=1024, dim_feedforward=8192)
    bad = _rewrite(checkpoint, tmp_path / "lying.safetensors", meta={"config": lying})
    built: list[str] = []
    real = ct.build_subcrab

    def spy(cfg, device="cpu", seed=None):
        built.append(device)
        return real(cfg, device=device, seed=seed)

    for module in (ct.model, ct.checkpoint):  # where load_model and the checks build networks
        monkeypatch.setattr(module, "build_subcrab", spy)
    with pytest.raises(ct.CheckpointError, match="shape") as info:
        ct.load_model(bad)
    assert "lying.safetensors" in str(info.value) and "d_model=1024" in str(info.value)
    deeper = _rewrite(checkpoint, tmp_path / "deeper.safetensors", meta={"config": _config_with(checkpoint, N=8)})
    with pytest.raises(ct.CheckpointError, match="deeper.safetensors: member0 does not match .*N=8.*missing"):
        ct.load_model(deeper)
    assert [d for d in built if d != "meta"] == [], "no real model may be built from a config the tensors contradict"
    # a tensor missing from, or added to, a member is named too
    cut = _rewrite(checkpoint, tmp_path / "cut.safetensors", drop=("member0.output_nn.fc_out.bias",))
    with pytest.raises(ct.CheckpointError, match="member0.*missing.*output_nn.fc_out.bias"):
        ct.load_model(cut)

    def extra(tensors: dict) -> None:
        tensors["member0.surprise"] = torch.zeros(3)

    plus = _rewrite(checkpoint, tmp_path / "plus.safetensors", edit=extra)
    with pytest.raises(ct.CheckpointError, match="surprise"):
        ct.load_model(plus)


def test_unreadable_checkpoint_files_are_named(checkpoint: Path, tmp_path: Path) -> None:
    """Defect 7/12: a directory gave 'OSError: No such device', a corrupt header a bare library error."""
    raw = checkpoint.read_bytes()
    cases = {
        "missing.safetensors": None,
        "empty.safetensors": b"",
        "short.safetensors": raw[:5],
        "truncated.safetensors": raw[: len(raw) // 2],
        "huge-header.safetensors": struct.pack("<Q", 2**60) + raw[8:],
        "garbage-header.safetensors": raw[:8] + b"\x00" * (len(raw) - 8),
        "not-json.safetensors": struct.pack("<Q", 5) + b"{abc}" + raw[8:],
    }
    for name, content in cases.items():
        path = tmp_path / name
        if content is not None:
            path.write_bytes(content)
        with pytest.raises(ct.CheckpointError) as info:
            ct.load_model(path)
        assert name in str(info.value), (name, str(info.value))
    folder = tmp_path / "folder.safetensors"
    folder.mkdir()
    with pytest.raises(ct.CheckpointError, match="folder.safetensors.*directory"):
        ct.load_model(folder)


def test_predict_never_returns_non_finite_numbers(checkpoint: Path) -> None:
    """Defect 6 on predict: a model whose weights become nan in memory refuses instead of answering nan."""
    broken = ct.load_model(checkpoint)
    with torch.no_grad():
        broken.crab.model.output_nn.fc_out.weight.fill_(float("nan"))
    with pytest.raises(ct.InvalidPredictionError, match="not a finite number.*CsPbI3"):
        broken.predict(["CsSnI3", "CsPbI3"])
    negative = ct.load_model(checkpoint)
    negative.crab.scaler.std = -negative.crab.scaler.std
    with pytest.raises(ct.InvalidPredictionError, match="negative"):
        negative.predict(["CsPbI3"])


def test_save_refuses_what_load_would_refuse(checkpoint: Path, tmp_path: Path) -> None:
    """A model whose weights became nan (or that breaks a limit) is not written for a later load to reject."""
    broken = ct.load_model(checkpoint)
    with torch.no_grad():
        broken.crab.model.output_nn.fc_out.bias.fill_(float("inf"))
    with pytest.raises(ct.CheckpointError, match="refusing to save.*output_nn.fc_out.bias.*not finite"):
        broken.save(tmp_path / "broken.safetensors")
    assert not (tmp_path / "broken.safetensors").exists()
    wide = ct.load_model(checkpoint)
    wide.max_elements = 40
    with pytest.raises(ct.CheckpointError, match="max_elements"):
        wide.save(tmp_path / "wide.safetensors")


def test_load_refuses_a_fifo_instead_of_hanging(tmp_path: Path) -> None:
    """Issue 19 item 10: a named pipe at the checkpoint path made load_model wait forever (run in a child)."""
    fifo = tmp_path / "pipe.safetensors"
    os.mkfifo(fifo)
    code = (
        "from helpers import crabnet as ct\n"
        "try:\n"
        f"    ct.load_model({str(fifo)!r})\n"
        "except ct.CheckpointError as exc:\n"
        "    print('CheckpointError:', exc)\n"
    )
    try:
        run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("load_model hung on a FIFO for 60 s (the child was killed)")
    assert run.returncode == 0, run.stderr[-800:]
    assert run.stdout.startswith("CheckpointError:") and "pipe.safetensors" in run.stdout
    assert "not a regular file" in run.stdout
