"""ONNX export: checker, dynamic batch, metadata round trip, parity vs torch on real FER2013 crops, INT8."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import json
from pathlib import Path

import pytest
import torch

from edgefer.contract import METADATA_KEY, ModelContract
from edgefer.runtime import load_classifier
from edgefer.runtime.onnx_backend import read_onnx_contract
from export.metadata import read_metadata
from export.onnx_export import export_onnx
from export.parity import check_parity, real_crops
from export.pipeline import ParityError, export_model
from export.tiny import build_tiny_model


@pytest.fixture(scope="module")
def tiny():
    return build_tiny_model("gray", 48)


@pytest.fixture(scope="module")
def fer_test(fer_dir: Path) -> Path:
    return fer_dir / "test"


@pytest.fixture(scope="module")
def exported(tiny, tmp_path_factory) -> Path:
    model, contract = tiny
    return export_onnx(model, contract, tmp_path_factory.mktemp("exp") / "m.onnx", cam=True, opset=17)


def test_checker_opset_and_dynamic_batch(exported: Path) -> None:
    import onnx

    model = onnx.load(str(exported))
    onnx.checker.check_model(model, full_check=True)
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= 17
    inp = model.graph.input[0]
    assert inp.name == "input"
    dims = inp.type.tensor_type.shape.dim
    assert dims[0].dim_param and not dims[0].dim_value  # symbolic batch
    assert [d.dim_value for d in dims[1:]] == [1, 48, 48]
    assert [o.name for o in model.graph.output] == ["logits", "attention", "cam"]
    for out in model.graph.output:
        assert out.type.tensor_type.shape.dim[0].dim_param


def test_metadata_round_trip(exported: Path, tiny) -> None:
    _, contract = tiny
    meta = read_metadata(exported)
    stored = ModelContract.from_json(meta[METADATA_KEY])
    assert stored.outputs == ("logits", "attention", "cam")
    assert stored.classes == contract.classes and stored.input_size == contract.input_size
    assert stored.framing == contract.framing and stored.mean == contract.mean
    assert read_onnx_contract(exported) == stored  # the runtime reads the same thing through ORT
    assert meta["edgefer.classes"].split(",") == list(contract.classes)
    assert meta["torch.version"] == importlib.metadata.version("torch")
    assert meta["timm.version"] not in ("", "not installed")
    assert meta["edgefer.version"]
    assert "cam" in meta["edgefer.cam"]
    assert dt.datetime.fromisoformat(meta["export.date"]).tzinfo is not None


def test_dynamic_batch_runs_any_size(exported: Path, fer_test: Path, tiny) -> None:
    crops = real_crops(fer_test, tiny[1], 11)
    clf = load_classifier(exported, backend="onnxruntime-cpu")
    for n in (1, 3, 11):
        assert clf.predict(crops[:n]).probs.shape == (n, 7)


def test_parity_on_real_fer2013_crops(exported: Path, fer_test: Path, tiny) -> None:
    model, contract = tiny
    crops = real_crops(fer_test, contract, 48)
    assert crops.shape == (48, 48, 48, 3) and crops.std() > 10  # real faces, not blank images
    report = check_parity(model, exported, crops)
    assert report.passed, str(report)
    assert report.max_prob_diff <= 1e-4 and report.min_attention_cos >= 0.9999
    assert report.min_cam_cos is not None and report.min_cam_cos >= 0.9999
    assert "PASS" in str(report)


def test_parity_catches_a_model_that_does_not_trace(tiny, fer_test: Path, tmp_path: Path) -> None:
    """A data-dependent Python value is frozen by the tracer: the check must see it and refuse."""
    base, contract = tiny

    class Frozen(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.base = base

        def forward(self, x):  # noqa: ANN001, ANN202
            logits, att = self.base(x)
            scale = float(x.abs().mean())  # a Python float: a constant in the traced graph
            return logits * scale * 50, att * scale

    out = tmp_path / "model.onnx"
    out.write_bytes(b"previous model")
    with pytest.raises(ParityError) as err:
        export_model(Frozen().eval(), contract, out, check_data=fer_test, check_count=16)
    assert "FAIL" in str(err.value) and "model.onnx" in str(err.value)
    assert out.read_bytes() == b"previous model"  # nothing already written is lost
    assert not list(tmp_path.glob(".model.onnx.tmp*"))


def test_export_model_with_simplify_passes_its_checks(tiny, fer_test: Path, tmp_path: Path) -> None:
    model, contract = tiny
    result = export_model(model, contract, tmp_path / "s.onnx", simplify=True, check_data=fer_test, check_count=16)
    assert result.parity is not None and result.parity.passed and result.parity.n == 16
    assert result.onnx_path.is_file()
    assert read_onnx_contract(result.onnx_path).outputs == ("logits", "attention")


def test_bad_export_arguments(tiny, tmp_path: Path) -> None:
    model, contract = tiny
    with pytest.raises(ValueError, match="opset >= 17"):
        export_onnx(model, contract, tmp_path / "x.onnx", opset=13)
    with pytest.raises(ValueError, match="forward_with_cam"):
        export_onnx(torch.nn.Identity(), contract, tmp_path / "x.onnx", cam=True)
    with pytest.raises(ValueError, match="--calib"):
        export_model(model, contract, tmp_path / "x.onnx", quantize="int8")
    with pytest.raises(FileNotFoundError, match="--check-data"):
        export_model(model, contract, tmp_path / "x.onnx", check_data=tmp_path / "nowhere")
    assert not (tmp_path / "x.onnx").exists()


def test_int8_quantization_reports_accuracy_change(tiny, fer_dir: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import onnx

    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)  # ORT's quantization helpers like to drop temp files in the working directory
    model, contract = tiny
    result = export_model(
        model, contract, tmp_path / "f.onnx", cam=True,
        check_data=fer_dir / "test", check_count=16,
        quantize="int8", calib=fer_dir / "train", calib_count=32,
        eval_data=fer_dir / "test", eval_per_class=5,
    )
    assert result.int8_path == tmp_path / "f.int8.onnx" and result.int8_path.is_file()
    q = onnx.load(str(result.int8_path))
    ops = {n.op_type for n in q.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    # 7-bit weights (no 16-bit saturation on CPUs without VNNI); TensorRT's layout on request:
    # symmetric signed INT8, every activation zero point int8 0
    import numpy
    from onnx import numpy_helper

    from export.quantize import quantize_int8

    def zero_points(model) -> list:
        inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
        return [inits[n.input[2]] for n in model.graph.node if n.op_type == "QuantizeLinear" and len(n.input) > 2]

    weights = [numpy_helper.to_array(i) for i in q.graph.initializer if i.data_type == onnx.TensorProto.INT8
               and numpy_helper.to_array(i).size > 16]
    assert weights and max(int(numpy.abs(w.astype(numpy.int16)).max()) for w in weights) <= 64
    assert any(z.dtype == numpy.uint8 for z in zero_points(q))
    trt = onnx.load(str(quantize_int8(result.onnx_path, tmp_path / "t.int8.onnx", fer_dir / "train", count=16,
                                      symmetric=True)))
    assert zero_points(trt) and all(z.dtype == numpy.int8 and not z.any() for z in zero_points(trt))
    meta = {p.key: p.value for p in q.metadata_props}
    assert "int8" in meta["edgefer.quantization"] and "32 crops" in meta["edgefer.quantization"]
    assert ModelContract.from_json(meta[METADATA_KEY]) == read_onnx_contract(result.onnx_path)
    acc = result.accuracy
    assert acc is not None and acc.n == 35
    assert 0 <= acc.fp32_accuracy <= 1 and 0 <= acc.int8_accuracy <= 1
    assert acc.change == pytest.approx(acc.int8_accuracy - acc.fp32_accuracy)
    assert 0 < acc.max_prob_diff < 0.5  # really a different (quantized) computation
    table = acc.table()
    assert "fp32" in table and "int8" in table and "change" in table
    assert result.int8_parity is not None and not result.int8_parity.enforced
    assert list(cwd.iterdir()) == []  # nothing left behind
    # The int8 file runs through the normal runtime path.
    out = load_classifier(result.int8_path).predict(real_crops(fer_dir / "test", contract, 4))
    assert out.probs.shape == (4, 7) and out.cam is not None


def test_export_cli_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from edgefer.cli import main

    rc = main(["export", "onnx", "--checkpoint", str(tmp_path / "missing.pt"), "--out", str(tmp_path / "m.onnx"),
               "--skip-check"])
    assert rc == 1
    assert "missing.pt" in capsys.readouterr().err


def test_tiny_fixture_is_a_valid_model(tiny_onnx_model: Path) -> None:
    meta = read_metadata(tiny_onnx_model)
    assert json.loads(meta[METADATA_KEY])["input_size"] == [48, 48]
    clf = load_classifier(tiny_onnx_model)
    assert clf.backend_name == "onnxruntime-cpu" and clf.has_cam


def test_export_cli_on_a_real_training_checkpoint(tiny, fer_dir: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """`edgefer export onnx` end to end from a checkpoint in train/'s own format."""
    from edgefer.cli import main
    from train.checkpoint import checkpoint_payload, save_payload
    from train.model import ModelSpec

    model, contract = tiny
    spec = ModelSpec(backbone="test_resnet", in_chans=1, output_stride=8, attention_stage=1)
    ckpt = tmp_path / "best.pt"
    save_payload(checkpoint_payload(model, spec, contract, config={}, epoch=3, step=30, metrics={"acc": 0.1}), ckpt)
    out = tmp_path / "fer.onnx"
    rc = main(["export", "onnx", "--checkpoint", str(ckpt), "--out", str(out), "--cam",
               "--check-data", str(fer_dir / "test"), "--check-count", "16"])
    text = capsys.readouterr().out
    assert rc == 0, text
    assert f"wrote {out}" in text and "PASS" in text
    meta = read_metadata(out)
    assert meta["edgefer.source"] == "best.pt"
    stored = ModelContract.from_json(meta[METADATA_KEY])
    assert stored.outputs == ("logits", "attention", "cam")
    assert ModelSpec.from_dict(stored.extra["model_spec"]) == spec  # exact architecture travels with the file
    out_cam = load_classifier(out).predict(real_crops(fer_dir / "test", contract, 2))
    assert out_cam.cams is not None and out_cam.cams.shape == (2, 7, 6, 6)


def test_committed_tiny_model_is_export_tiny(tiny, tiny_onnx_model: Path) -> None:
    """`tests/data/tiny_fernet.onnx`, the model the runtime tests use without torch, is still what
    `python -m export.tiny` builds: the same contract, and the seeded torch model's outputs.
    When the model or the exporter changes on purpose, rebuild the file with that command."""
    from dataclasses import replace

    import numpy as np
    import onnxruntime as ort

    model, contract = tiny
    stored = read_onnx_contract(tiny_onnx_model)
    assert tuple(stored.outputs) == ("logits", "attention", "cam")
    assert replace(stored, outputs=contract.outputs).to_json() == contract.to_json()
    assert read_metadata(tiny_onnx_model)["edgefer.source"] == "export.tiny"
    x = torch.rand(4, 1, 48, 48, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        logits, attention, cam = model.forward_with_cam(x)
    sess = ort.InferenceSession(str(tiny_onnx_model), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    got = dict(zip(names, sess.run(None, {sess.get_inputs()[0].name: x.numpy()}), strict=True))
    for name, ref in (("logits", logits), ("attention", attention), ("cam", cam)):
        np.testing.assert_allclose(got[name], ref.numpy(), rtol=1e-4, atol=1e-5, err_msg=name)
