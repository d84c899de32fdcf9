"""TensorRT path, everything that runs without a GPU: cache keys and rebuild decisions, sidecars,
calibration batches from real crops, build options, backend choice, and the clear errors when
TensorRT is not installed (it is not, here)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from edgefer.runtime import BackendUnavailableError, choose_backend, load_classifier
from edgefer.runtime.engine_cache import (
    EngineKey,
    EngineSidecar,
    cache_decision,
    cached_engine_path,
    file_sha256,
    read_sidecar,
    sidecar_path,
    write_sidecar,
)
from edgefer.runtime.errors import ModelLoadError
from edgefer.runtime.onnx_backend import read_onnx_contract
from edgefer.runtime.preprocess import Preprocessor
from edgefer.runtime.trt_build import (
    BuildOptions,
    CalibrationBatches,
    calibration_cache_path,
    default_opt_batch,
    ensure_engine,
    timing_cache_path,
)
from edgefer.runtime.trt_env import tensorrt_usable, tensorrt_version

KEY = EngineKey(onnx_sha256="a" * 64, tensorrt_version="10.3.0", device_name="Orin", precision="fp16", max_batch=8)


def _fake_engine(onnx: Path, key: EngineKey, contract) -> Path:
    """Put an engine + sidecar for `key` in the cache folder, as a previous build would have."""
    engine = cached_engine_path(onnx, key)
    engine.write_bytes(b"serialized engine for " + key.digest().encode())
    write_sidecar(engine, EngineSidecar(contract, key.tensorrt_version, key.device_name, "8.7",
                                        key.onnx_sha256, key.precision, key.max_batch, 2, onnx.name))
    return engine


@pytest.fixture()
def model_copy(tiny_onnx_model: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "model.onnx"
    dst.write_bytes(tiny_onnx_model.read_bytes())
    return dst


@pytest.mark.parametrize("field, value", [("onnx_sha256", "b" * 64), ("tensorrt_version", "10.7.0"),
                                          ("device_name", "NVIDIA GeForce RTX 4090"), ("precision", "int8"),
                                          ("max_batch", 16)])
def test_every_key_field_changes_the_engine_name(field: str, value: object, tmp_path: Path) -> None:
    other = dataclasses.replace(KEY, **{field: value})
    assert other.digest() != KEY.digest()
    onnx = tmp_path / "m.onnx"
    assert cached_engine_path(onnx, other) != cached_engine_path(onnx, KEY)
    assert cached_engine_path(onnx, KEY).name == f"m.{KEY.digest()}.engine"
    assert field in " ".join(other.differences(KEY))
    assert EngineKey(**dataclasses.asdict(KEY)).digest() == KEY.digest()  # stable


def test_decision_build_then_reuse(model_copy: Path) -> None:
    contract = read_onnx_contract(model_copy)
    key = dataclasses.replace(KEY, onnx_sha256=file_sha256(model_copy))
    first = cache_decision(model_copy, key)
    assert first.action == "build" and first.engine_path == cached_engine_path(model_copy, key)
    _fake_engine(model_copy, key, contract)
    again = cache_decision(model_copy, key)
    assert again.action == "reuse" and again.stale == ()


@pytest.mark.parametrize("field, value", [("tensorrt_version", "10.7.0"), ("device_name", "Jetson AGX Orin")])
def test_new_trt_version_or_device_triggers_rebuild(model_copy: Path, field: str, value: str) -> None:
    contract = read_onnx_contract(model_copy)
    old = dataclasses.replace(KEY, onnx_sha256=file_sha256(model_copy))
    old_engine = _fake_engine(model_copy, old, contract)
    new = dataclasses.replace(old, **{field: value})
    d = cache_decision(model_copy, new)
    assert d.action == "rebuild" and field in d.reason and value in d.reason
    assert d.engine_path != old_engine
    assert d.stale == ()  # an engine for another device/TRT is kept (shared folders)


def test_changed_onnx_triggers_rebuild_and_marks_old_engine_stale(model_copy: Path) -> None:
    contract = read_onnx_contract(model_copy)
    old = dataclasses.replace(KEY, onnx_sha256=file_sha256(model_copy))
    old_engine = _fake_engine(model_copy, old, contract)
    with open(model_copy, "ab") as f:  # the model file changes (re-export)
        f.write(b"\0")
    new = dataclasses.replace(old, onnx_sha256=file_sha256(model_copy))
    assert new.onnx_sha256 != old.onnx_sha256
    d = cache_decision(model_copy, new)
    assert d.action == "rebuild" and "onnx_sha256" in d.reason
    assert d.stale == (old_engine,)


def test_engine_with_foreign_or_broken_sidecar_is_rebuilt(model_copy: Path) -> None:
    contract = read_onnx_contract(model_copy)
    key = dataclasses.replace(KEY, onnx_sha256=file_sha256(model_copy))
    engine = _fake_engine(model_copy, key, contract)
    sidecar_path(engine).write_text("{not json")
    d = cache_decision(model_copy, key)
    assert d.action == "rebuild" and "sidecar" in d.reason


def test_ensure_engine_builds_once_and_removes_stale(model_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The cache orchestration, with the TensorRT build itself replaced (no GPU here)."""
    import edgefer.runtime.trt_build as tb

    contract = read_onnx_contract(model_copy)
    builds: list[Path] = []
    state = {"trt": "10.3.0"}

    def fake_key(onnx: Path, precision: str, max_batch: int) -> EngineKey:
        return EngineKey(file_sha256(onnx), state["trt"], "Orin", precision, max_batch)

    def fake_build(onnx: Path, engine: Path, options: BuildOptions, contract_override=None) -> EngineSidecar:
        builds.append(engine)
        key = fake_key(onnx, options.precision, options.max_batch)
        _fake_engine(onnx, key, contract)
        return read_sidecar(engine)

    monkeypatch.setattr(tb, "current_key", fake_key)
    monkeypatch.setattr(tb, "build_engine", fake_build)
    e1 = ensure_engine(model_copy)
    e2 = ensure_engine(model_copy)
    assert e1 == e2 and len(builds) == 1  # built once, then reused
    state["trt"] = "10.7.0"
    e3 = ensure_engine(model_copy)
    assert e3 != e1 and len(builds) == 2 and e1.exists()  # other TRT version: kept
    with open(model_copy, "ab") as f:
        f.write(b"\0")
    e4 = ensure_engine(model_copy)
    assert len(builds) == 3 and e4.exists()
    assert not e1.exists() and not e3.exists() and not sidecar_path(e1).exists()  # old ONNX: removed


def test_sidecar_round_trip_and_errors(tmp_path: Path, tiny_onnx_model: Path) -> None:
    contract = read_onnx_contract(tiny_onnx_model)
    engine = tmp_path / "m.engine"
    sc = EngineSidecar(contract, "10.3.0", "Orin", "8.7", "c" * 64, "fp16", 8, 2, "m.onnx")
    path = write_sidecar(engine, sc)
    assert path == tmp_path / "m.engine.json"
    raw = json.loads(path.read_text())
    assert raw["contract"]["input_size"] == [48, 48] and raw["device_name"] == "Orin"
    assert raw["compute_capability"] == "8.7" and raw["onnx_sha256"] == "c" * 64 and raw["key"] == sc.key.digest()
    back = read_sidecar(engine)
    assert back.contract == contract and back.key == sc.key and back.built_at == sc.built_at
    del raw["tensorrt_version"]
    path.write_text(json.dumps(raw))
    with pytest.raises(ModelLoadError, match=r"m\.engine\.json.*tensorrt_version"):
        read_sidecar(engine)
    path.unlink()
    with pytest.raises(ModelLoadError, match="sidecar m.engine.json is missing"):
        read_sidecar(engine)


def test_calibration_batches_from_real_crops(fer_dir: Path, tiny_onnx_model: Path) -> None:
    from edgefer.runtime.crops import load_crops

    contract = read_onnx_contract(tiny_onnx_model)
    batches = CalibrationBatches(fer_dir / "train" / "happy", contract, batch_size=8, limit=20)
    assert len(batches.paths) == 20 and len(batches) == 2  # the partial third batch is dropped
    got = list(batches)
    assert len(got) == 2
    for b in got:
        assert b.shape == (8, 1, 48, 48) and b.dtype == np.float32 and b.flags.c_contiguous
    assert batches.nbytes == got[0].nbytes
    assert not np.shares_memory(got[0], got[1])
    want = Preprocessor(contract)(load_crops(batches.paths[8:16], (48, 48)))
    np.testing.assert_allclose(got[1], want)
    with pytest.raises(ValueError, match="need at least one batch of 8"):
        CalibrationBatches(fer_dir / "train" / "happy", contract, batch_size=8, limit=5)


def test_calibration_cache_key(tmp_path: Path, tiny_onnx_model: Path) -> None:
    contract = read_onnx_contract(tiny_onnx_model)
    engine = tmp_path / "m.engine"
    imgs = [Path(f"/d/{i}.jpg") for i in range(10)]
    base = calibration_cache_path(engine, "a" * 64, imgs, contract, 8)
    assert base.parent == tmp_path and base.name.startswith("m.") and base.suffix == ".calib"
    assert calibration_cache_path(engine, "a" * 64, list(reversed(imgs)), contract, 8) == base  # order-free
    assert calibration_cache_path(engine, "b" * 64, imgs, contract, 8) != base
    assert calibration_cache_path(engine, "a" * 64, imgs[:9], contract, 8) != base
    assert calibration_cache_path(engine, "a" * 64, imgs, contract, 4) != base
    assert calibration_cache_path(engine, "a" * 64, imgs, dataclasses.replace(contract, std=(0.2,)), 8) != base
    assert timing_cache_path(engine) == tmp_path / "m.timing.cache"


def test_build_options() -> None:
    assert BuildOptions(max_batch=8).opt == 2 and BuildOptions(max_batch=1).opt == 1
    assert BuildOptions(max_batch=8, opt_batch=4).opt == 4
    assert default_opt_batch(16) == 2
    with pytest.raises(ValueError, match="precision"):
        BuildOptions(precision="int4")
    with pytest.raises(ValueError, match="opt batch 9"):
        BuildOptions(max_batch=8, opt_batch=9)
    with pytest.raises(ValueError, match=">= 1"):
        BuildOptions(max_batch=0)


def test_choose_backend() -> None:
    ort = ["onnxruntime-cuda", "onnxruntime-cpu"]
    assert choose_backend(Path("m.engine"), False, ort) == "tensorrt"
    assert choose_backend(Path("m.onnx"), True, ort) == "tensorrt"
    assert choose_backend(Path("m.onnx"), False, ort) == "onnxruntime-cuda"
    assert choose_backend(Path("m.onnx"), False, ["onnxruntime-cpu"]) == "onnxruntime-cpu"
    with pytest.raises(BackendUnavailableError):
        choose_backend(Path("m.onnx"), False, [])


def test_no_tensorrt_here_means_clear_errors(tiny_onnx_model: Path, tmp_path: Path) -> None:
    assert tensorrt_version() is None and not tensorrt_usable()
    # auto quietly takes ONNX Runtime...
    assert load_classifier(tiny_onnx_model, backend="auto").backend_name == "onnxruntime-cpu"
    # ...an explicit TensorRT request says what is missing.
    with pytest.raises(BackendUnavailableError, match="TensorRT is not installed"):
        load_classifier(tiny_onnx_model, backend="tensorrt")
    engine = tmp_path / "m.engine"
    engine.write_bytes(b"x")
    with pytest.raises(BackendUnavailableError, match=r"m\.engine is a TensorRT engine and cannot run here: TensorRT is not installed"):
        load_classifier(engine)
    with pytest.raises(ValueError, match="only backend 'tensorrt'"):
        load_classifier(engine, backend="onnxruntime-cpu")
    with pytest.raises(BackendUnavailableError):
        ensure_engine(tiny_onnx_model)


def _cli(args: list[str]) -> tuple[int, str]:
    import subprocess
    import sys

    res = subprocess.run([sys.executable, "-m", "edgefer.cli", *args], capture_output=True, text=True, timeout=120)
    return res.returncode, res.stdout + res.stderr


def test_tensorrt_command_errors(tiny_onnx_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "m.engine"
    rc, text = _cli(["export", "tensorrt", "--onnx", str(tiny_onnx_model), "--out", str(out)])
    assert rc == 3 and "TensorRT is not installed" in text and "edgefer[tensorrt]" in text
    rc, text = _cli(["export", "tensorrt", "--onnx", str(tmp_path / "nope.onnx"), "--out", str(out)])
    assert rc == 2 and "nope.onnx" in text
    rc, text = _cli(["export", "tensorrt", "--onnx", str(tiny_onnx_model), "--out", str(out), "--precision", "int8"])
    assert rc == 2 and "--calib" in text
    rc, text = _cli(["export", "tensorrt", "--help"])
    assert rc == 0 and "device" in text and "--max-batch" in text and "--workspace-mb" in text
    assert not out.exists()


def test_int8_qdq_onnx_needs_no_calibration_folder(tiny_onnx_model: Path, tmp_path: Path) -> None:
    import onnx

    from edgefer.runtime.onnx_backend import read_onnx_metadata
    from edgefer.runtime.trt_build import is_explicitly_quantized
    from export.metadata import set_metadata

    assert not is_explicitly_quantized(read_onnx_metadata(tiny_onnx_model))
    model = onnx.load(str(tiny_onnx_model))
    set_metadata(model, {"edgefer.quantization": "int8 static, QDQ"})
    q = tmp_path / "m.int8.onnx"
    onnx.save(model, str(q))
    assert is_explicitly_quantized(read_onnx_metadata(q))
    rc, text = _cli(["export", "tensorrt", "--onnx", str(q), "--out", str(tmp_path / "q.engine"), "--precision", "int8"])
    assert rc == 3 and "TensorRT is not installed" in text  # argument checks passed; only TensorRT is missing


def test_engines_of_a_read_only_model_go_to_the_user_cache(model_copy: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from edgefer.runtime.engine_cache import engine_folder

    assert engine_folder(model_copy) == model_copy.parent
    monkeypatch.setenv("EDGEFER_CACHE_DIR", str(tmp_path / "usercache"))
    folder = engine_folder(model_copy, writable=lambda p: False)  # as for a system-wide install
    assert folder == tmp_path / "usercache" / "engines" and folder.is_dir()
    key = dataclasses.replace(KEY, onnx_sha256=file_sha256(model_copy))
    d = cache_decision(model_copy, key, folder)
    assert d.action == "build" and d.engine_path.parent == folder
    assert d.engine_path.name == cached_engine_path(model_copy, key).name
