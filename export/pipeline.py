"""The whole `edgefer export onnx` job: checkpoint -> checked ONNX file (-> INT8 copy).

Order matters for safety: the ONNX file is written under a temporary name, checked with
`onnx.checker` and against the torch model on real crops, and only then moved to `--out`; a
failed check leaves any previous model at `--out` untouched and says what failed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from edgefer.atomic_write import atomic_path
from edgefer.contract import ModelContract
from export.onnx_export import MIN_OPSET, to_onnx_model
from export.parity import ParityReport, check_parity, real_crops
from export.quantize import AccuracyComparison, compare_accuracy, quantize_int8

log = logging.getLogger(__name__)


class ParityError(RuntimeError):
    """The exported model does not reproduce the torch model within tolerance."""

    def __init__(self, report: ParityReport, out: Path) -> None:
        super().__init__(f"{out}: export rejected, {report}")
        self.report = report


@dataclass
class ExportResult:
    onnx_path: Path
    parity: ParityReport | None
    int8_path: Path | None = None
    int8_parity: ParityReport | None = None
    accuracy: AccuracyComparison | None = None


def default_check_data() -> Path | None:
    """FER2013's test split under EDGEFER_DATA, when present."""
    from edgefer.paths import data_root

    root = data_root()
    candidate = root / "fer2013" / "test" if root else None
    return candidate if candidate is not None and candidate.is_dir() else None


def int8_path_for(out: Path) -> Path:
    return out.with_name(f"{out.stem}.int8{out.suffix}")


def export_model(
    model: Any,
    contract: ModelContract,
    out: str | Path,
    *,
    cam: bool = False,
    opset: int = MIN_OPSET,
    simplify: bool = False,
    check_data: str | Path | None = None,
    check_count: int = 64,
    source: str | None = None,
    quantize: str | None = None,
    calib: str | Path | None = None,
    calib_count: int = 256,
    eval_data: str | Path | None = None,
    eval_per_class: int | None = 100,
    int8_out: str | Path | None = None,
) -> ExportResult:
    """Export `model` to `out`, verified on real crops from `check_data` (None: no parity check)."""
    out = Path(out)
    if quantize not in (None, "int8"):
        raise ValueError(f"--quantize {quantize!r}: only 'int8' is supported")
    if quantize and calib is None:
        raise ValueError("--quantize int8 needs --calib DIR (a folder of real face crops)")
    for name, folder in (("--check-data", check_data), ("--calib", calib), ("--eval-data", eval_data)):
        if folder is not None and not Path(folder).is_dir():
            raise FileNotFoundError(f"{name} {folder}: folder not found")

    proto = to_onnx_model(model, contract, cam=cam, opset=opset, simplify=simplify, source=source)
    parity = None
    with atomic_path(out, suffix=".onnx") as tmp:  # replaced only once the parity check passed
        tmp.write_bytes(proto.SerializeToString())
        if check_data is not None:
            crops = real_crops(check_data, contract, check_count)
            parity = check_parity(model, tmp, crops)
            log.info("%s", parity)
            if not parity.passed:
                raise ParityError(parity, out)
    result = ExportResult(onnx_path=out, parity=parity)

    if quantize == "int8":
        assert calib is not None
        q = Path(int8_out) if int8_out else int8_path_for(out)
        result.int8_path = quantize_int8(out, q, calib, count=calib_count)
        if check_data is not None:
            # Reported, not enforced: INT8 is expected to differ; the accuracy table is the judge.
            result.int8_parity = check_parity(model, q, real_crops(check_data, contract, check_count))
            result.int8_parity.label, result.int8_parity.enforced = "int8 vs torch", False
        if eval_data is not None:
            result.accuracy = compare_accuracy(out, q, eval_data, per_class=eval_per_class)
    return result


def export_checkpoint(checkpoint: str | Path, out: str | Path, **kwargs: Any) -> ExportResult:
    """Load a training checkpoint (train.checkpoint.load_checkpoint) and export it."""
    from train.checkpoint import load_checkpoint

    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise FileNotFoundError(f"{checkpoint}: checkpoint not found")
    ckpt = load_checkpoint(checkpoint, map_location="cpu")
    model = ckpt.model.eval()
    contract = ckpt.contract
    if ckpt.spec is not None and "model_spec" not in contract.extra:
        # The exact architecture (timm kwargs included), so tools holding only the ONNX file can
        # rebuild a torch twin (e.g. `edgefer bench model`'s torch column).
        contract = replace(contract, extra={**contract.extra, "model_spec": ckpt.spec.to_dict()})
    return export_model(model, contract, out, source=checkpoint.name, **kwargs)
