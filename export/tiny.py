"""A tiny, untrained but real model, exported to ONNX in a few seconds.

The `tiny_onnx_model` test fixture is this model, exported once and committed as
`tests/data/tiny_fernet.onnx` (`python -m export.tiny tests/data/tiny_fernet.onnx` rebuilds it), so the
pipeline, UI, runtime and evaluation tests run real ONNX Runtime inference without the shipped model,
and the runtime tests run on the torch-free install they guard; `tests/test_export.py` checks that the
committed file still is this model. It IS the project's classifier
(`train.model.AUGuidedNet`) on timm's `test_resnet` backbone (0.37 M parameters, built from scratch:
no download) at output stride 8: `forward(x) -> (logits (N,7), attention (N,12,12))` with attention
the channel mean of the stride-4 stage, `forward_with_cam(x)` adds cams (N,7,6,6) at 48x48 input.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from edgefer.classes import EXPRESSIONS
from edgefer.contract import Framing, ModelContract

TINY_BACKBONE = "test_resnet"
#: A plausible FER2013-like framing: outer eye corners, nose tip and mouth corners (MediaPipe mesh
#: indices) at fixed fractions of the crop. Only the tiny test model uses it.
TINY_FRAMING = Framing(
    landmark_indices=(33, 263, 1, 61, 291),
    template=((0.27, 0.38), (0.73, 0.38), (0.50, 0.60), (0.33, 0.78), (0.67, 0.78)),
)


def tiny_contract(color: str = "gray", input_size: int = 48, attention_size: int | None = None) -> ModelContract:
    channels = 1 if color == "gray" else 3
    att = attention_size or input_size // 4
    return ModelContract(
        classes=EXPRESSIONS,
        input_size=(input_size, input_size),
        color=color,
        mean=(0.5,) * channels,
        std=(0.25,) * channels,
        framing=TINY_FRAMING,
        attention_layer="layer1",
        attention_size=(att, att),
        au_aligned=False,
        trained_on="untrained (edgefer test fixture)",
        backbone=TINY_BACKBONE,
        extra={"note": "random weights: for tests only"},
    )


def build_tiny_model(color: str = "gray", input_size: int = 48, seed: int = 0) -> tuple[Any, ModelContract]:
    """(the project's own AUGuidedNet on `test_resnet`, in eval mode; its contract). Seeded: every
    build has identical weights, so a torch twin of the exported file can be rebuilt at will."""
    import torch

    from train.model import ModelSpec, build_model

    torch.manual_seed(seed)
    spec = ModelSpec(backbone=TINY_BACKBONE, in_chans=1 if color == "gray" else 3, output_stride=8, attention_stage=1)
    model = build_model(spec, pretrained=False).eval()
    contract = replace(
        tiny_contract(color, input_size, attention_size=model.attention_size(input_size)[0]),
        attention_layer=model.attention_layer,
        extra={"note": "random weights: for tests only", "output_stride": spec.output_stride,
               "model_spec": spec.to_dict()},
    )
    return model, contract


def write_tiny_onnx(out: str | Path, color: str = "gray", input_size: int = 48, cam: bool = True) -> Path:
    """Build the tiny model and export it with edgefer's exporter (checked, with metadata)."""
    from export.onnx_export import export_onnx

    model, contract = build_tiny_model(color, input_size)
    return export_onnx(model, contract, out, cam=cam, source="export.tiny")


def main(argv: list[str] | None = None) -> int:
    """`python -m export.tiny OUT.onnx`: (re)build the committed test model."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m export.tiny", description=main.__doc__)
    parser.add_argument("out", help="where to write the ONNX file, e.g. tests/data/tiny_fernet.onnx")
    args = parser.parse_args(argv)
    print(write_tiny_onnx(args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
