"""A tiny, untrained but real FerNet-like model, exported to ONNX in a few seconds.

Used by the `tiny_onnx_model` test fixture (and smoke runs) so pipeline, UI and evaluation tests
run real ONNX Runtime inference without the shipped model. Its outputs match FerNet's contract:
`forward(x) -> (logits (N,7), attention (N,h,w))` with attention the channel mean of a stride-4
stage, and `forward_with_cam(x) -> (..., cams (N,7,h',w'))` from the final stage. The backbone is
timm's `test_resnet` (0.37 M parameters), built from scratch: no download.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgefer.classes import EXPRESSIONS, NUM_CLASSES
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
        attention_layer="stages.1",
        attention_size=(att, att),
        au_aligned=False,
        trained_on="untrained (edgefer test fixture)",
        backbone=TINY_BACKBONE,
        extra={"note": "random weights: for tests only"},
    )


def build_tiny_model(color: str = "gray", input_size: int = 48, seed: int = 0) -> tuple[Any, ModelContract]:
    """(torch module in eval mode, its contract). Seeded, so every build is identical."""
    import timm
    import torch

    torch.manual_seed(seed)
    channels = 1 if color == "gray" else 3

    class TinyFerNet(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.backbone = timm.create_model(
                TINY_BACKBONE, pretrained=False, in_chans=channels, features_only=True, out_indices=(1, 4)
            )
            self.head = torch.nn.Linear(self.backbone.feature_info.channels()[-1], NUM_CLASSES)

        def _features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            aligned, final = self.backbone(x)
            return aligned, final

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            aligned, final = self._features(x)
            return self.head(final.mean(dim=(2, 3))), aligned.mean(dim=1)

        def forward_with_cam(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            aligned, final = self._features(x)
            cams = torch.einsum("kc,nchw->nkhw", self.head.weight, final)
            return self.head(final.mean(dim=(2, 3))), aligned.mean(dim=1), cams

    model = TinyFerNet().eval()
    contract = tiny_contract(color, input_size)
    return model, contract


def write_tiny_onnx(out: str | Path, color: str = "gray", input_size: int = 48, cam: bool = True) -> Path:
    """Build the tiny model and export it with edgefer's exporter (checked, with metadata)."""
    from export.onnx_export import export_onnx

    model, contract = build_tiny_model(color, input_size)
    return export_onnx(model, contract, out, cam=cam, source="export.tiny")
