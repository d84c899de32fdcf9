"""INT8 for CPU targets: ONNX Runtime static quantization calibrated on real face crops.

QDQ format with per-channel weights (what ONNX Runtime's CPU kernels and TensorRT's explicit
quantization both read), MinMax calibration over real crops, weights S8 with a 7-bit range
(`reduce_range`). Two layouts, measured on the shipped model (FER2013 test, 7,178 crops, ONNX Runtime
on an AVX2-only x86 CPU):

- `symmetric=False` (default, the CPU file shipped as `*.int8.onnx`): U8 activations with a zero
  point, ONNX Runtime's x86 pairing. Accuracy 0.666 against fp32's 0.664, 1.6x faster per face.
  Without `reduce_range` the same layout scored 0.501 on this CPU: without VNNI, ONNX Runtime's int8
  kernels add products in 16 bits and saturate with full-range weights.
- `symmetric=True`: signed activations with zero point 0, the only Q/DQ TensorRT builds as an
  explicitly quantized network (its documented rule). Accuracy 0.662, but 1.5x slower than fp32 under
  ONNX Runtime on that CPU, so it is for TensorRT (`edgefer export tensorrt --precision int8` also
  builds INT8 from the fp32 file with calibration). The accuracy change is measured, never
assumed: the fp32 and int8 files are run side by side through `edgefer.runtime` on a labelled
folder, and the report gives both accuracies, their difference, how often the two agree, and how
similar their attention maps stay (the explanation must survive quantization too).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgefer.contract import ModelContract

log = logging.getLogger(__name__)


def _reader_class():  # imported lazily: onnxruntime.quantization pulls in onnx
    from onnxruntime.quantization import CalibrationDataReader

    class CropReader(CalibrationDataReader):
        """Feeds preprocessed real crops to the calibrator, one batch per call."""

        def __init__(self, batches: list[np.ndarray], input_name: str) -> None:
            self._it: Iterator[np.ndarray] = iter(batches)
            self._input = input_name

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self._it, None)
            return None if batch is None else {self._input: batch}

    return CropReader


def calibration_batches(folder: str | Path, contract: ModelContract, count: int, batch: int = 16,
                        seed: int = 0) -> list[np.ndarray]:
    """Normalised NCHW float32 batches of `count` real crops from `folder`."""
    from edgefer.runtime.crops import list_images, load_crops
    from edgefer.runtime.preprocess import Preprocessor

    paths = list_images(folder, limit=count, seed=seed)
    crops = load_crops(paths, contract.input_size)
    pre = Preprocessor(contract)
    return [pre(crops[i : i + batch]).copy() for i in range(0, len(crops), batch)]


def _pre_process(fp32_path: Path, prep: Path) -> Path:
    """ORT's pre-pass (ONNX shape inference + graph optimisation), or none when it fails (logged).

    Symbolic shape inference is skipped on purpose: these CNNs have fully static shapes apart from
    the batch axis, and ORT's symbolic pass, when it fails, leaves `sym_shape_infer_temp.onnx` and
    its weights in the current directory.
    """
    from onnxruntime.quantization.shape_inference import quant_pre_process

    try:
        quant_pre_process(str(fp32_path), str(prep), skip_symbolic_shape=True)
        return prep
    except Exception as exc:  # noqa: BLE001 - ORT raises bare Exception here
        log.warning("quantizing %s without ORT's pre-processing pass (it failed: %s)", fp32_path.name, exc)
        return fp32_path


def quantize_int8(fp32_path: str | Path, out_path: str | Path, calib_dir: str | Path, *, count: int = 256,
                  per_channel: bool = True, symmetric: bool = False, reduce_range: bool = True) -> Path:
    """Write a QDQ INT8 copy of `fp32_path` calibrated on `count` crops from `calib_dir`."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    from edgefer.runtime.onnx_backend import read_onnx_contract
    from export.metadata import set_metadata
    from export.onnx_export import save_atomically

    fp32_path, out_path = Path(fp32_path), Path(out_path)
    contract = read_onnx_contract(fp32_path)
    batches = calibration_batches(calib_dir, contract, count)
    n = sum(len(b) for b in batches)
    source = onnx.load(str(fp32_path))
    input_name = source.graph.input[0].name
    tmp = out_path.with_name(f".{out_path.name}.q.tmp")
    prep = out_path.with_name(f".{out_path.name}.prep.tmp")
    log.info("calibrating INT8 on %d crops from %s", n, calib_dir)
    try:
        # ONNX Runtime's recommended pre-pass: shape inference + graph optimisation, so Q/DQ pairs
        # land on fused Conv+BN+ReLU nodes rather than on ops that vanish later.
        source_for_q = _pre_process(fp32_path, prep)
        quantize_static(
            source_for_q,
            tmp,
            _reader_class()(batches, input_name),
            quant_format=QuantFormat.QDQ,
            per_channel=per_channel,
            activation_type=QuantType.QInt8 if symmetric else QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
            extra_options={"ActivationSymmetric": symmetric, "WeightSymmetric": True},
            reduce_range=reduce_range,  # 7-bit weights: no 16-bit saturation without VNNI (module doc)
        )
        quant = onnx.load(str(tmp))
    finally:
        tmp.unlink(missing_ok=True)
        prep.unlink(missing_ok=True)
    meta = {p.key: p.value for p in source.metadata_props}
    meta["edgefer.quantization"] = (
        f"int8 static, QDQ, per-channel={per_channel}, "
        f"{'symmetric S8 activations' if symmetric else 'U8 activations'} / symmetric S8 weights"
        f"{' (7-bit range)' if reduce_range else ''}, MinMax calibration on "
        f"{n} crops from {Path(calib_dir).name}"
    )
    set_metadata(quant, meta)
    quant.producer_name = "edgefer"
    onnx.checker.check_model(quant)
    return save_atomically(quant.SerializeToString(), out_path)


@dataclass
class AccuracyComparison:
    """fp32 vs int8 on the same labelled crops."""

    n: int
    fp32_accuracy: float
    int8_accuracy: float
    agreement: float
    attention_cos_mean: float
    max_prob_diff: float
    folder: str

    @property
    def change(self) -> float:
        return self.int8_accuracy - self.fp32_accuracy

    def table(self) -> str:
        return "\n".join(
            [
                f"INT8 vs FP32 on {self.n} labelled crops from {self.folder}",
                f"  {'':22s}{'fp32':>10s}{'int8':>10s}{'change':>10s}",
                f"  {'top-1 accuracy':22s}{self.fp32_accuracy:10.4f}{self.int8_accuracy:10.4f}{self.change:+10.4f}",
                f"  {'same prediction':22s}{'':10s}{self.agreement:10.4f}",
                f"  {'attention cosine':22s}{'':10s}{self.attention_cos_mean:10.4f}",
                f"  {'max |prob diff|':22s}{'':10s}{self.max_prob_diff:10.4f}",
            ]
        )


def compare_accuracy(fp32_path: str | Path, int8_path: str | Path, eval_dir: str | Path, *,
                     per_class: int | None = 100, batch: int = 64) -> AccuracyComparison:
    """Run both files through edgefer.runtime (ORT CPU) on a labelled folder, side by side."""
    from edgefer.runtime import load_classifier
    from edgefer.runtime.crops import list_labelled_images, load_crops
    from export.parity import cosine_rows

    a = load_classifier(fp32_path, backend="onnxruntime-cpu")
    b = load_classifier(int8_path, backend="onnxruntime-cpu")
    images = list_labelled_images(eval_dir, per_class=per_class)
    pa, pb, cos, diff = [], [], [], []
    for i in range(0, len(images), batch):
        crops = load_crops(images.paths[i : i + batch], a.contract.input_size)
        oa, ob = a.predict(crops), b.predict(crops)
        pa.append(oa.probs.argmax(1))
        pb.append(ob.probs.argmax(1))
        cos.append(cosine_rows(oa.attention, ob.attention))
        diff.append(np.abs(oa.probs - ob.probs).max(1))
    ya, yb = np.concatenate(pa), np.concatenate(pb)
    return AccuracyComparison(
        n=len(images),
        fp32_accuracy=float((ya == images.labels).mean()),
        int8_accuracy=float((yb == images.labels).mean()),
        agreement=float((ya == yb).mean()),
        attention_cos_mean=float(np.concatenate(cos).mean()),
        max_prob_diff=float(np.concatenate(diff).max()),
        folder=str(eval_dir),
    )
