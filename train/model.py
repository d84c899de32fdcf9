"""The AU-guided classifier: any timm backbone, one aligned layer, a linear head on pooled features.

`forward(x) -> (logits, attention)`: attention (N, h, w) is the plain channel mean of the aligned
stage's features (method.md §4.2), the map the AU loss trains and the runtime shows.
`forward_with_cam(x) -> (logits, attention, cams)`: cams (N, 7, h', w') are the class activation
maps, sum_k w[c, k] * F_final[k] with the head's weights (no bias, no ReLU, as in the paper's CAM).

The backbone is built with timm `features_only` and `output_stride` (dilating the last stages), so
one recipe key picks e.g. a stride-8 resnet18 whose 64 px input gives an 8x8 attention map; a stride-32
map of a small input (2x2) would explain nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import timm
import torch
from torch import nn

from edgefer.classes import NUM_CLASSES

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to rebuild the architecture (stored in checkpoints, no weights)."""

    backbone: str
    in_chans: int = 1
    num_classes: int = NUM_CLASSES
    output_stride: int = 8
    attention_stage: int = -1
    drop_rate: float = 0.0
    backbone_kwargs: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "backbone": self.backbone,
            "in_chans": self.in_chans,
            "num_classes": self.num_classes,
            "output_stride": self.output_stride,
            "attention_stage": self.attention_stage,
            "drop_rate": self.drop_rate,
            "backbone_kwargs": dict(self.backbone_kwargs),
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ModelSpec:
        return cls(
            backbone=str(raw["backbone"]),
            in_chans=int(raw.get("in_chans", 1)),
            num_classes=int(raw.get("num_classes", NUM_CLASSES)),
            output_stride=int(raw.get("output_stride", 8)),
            attention_stage=int(raw.get("attention_stage", -1)),
            drop_rate=float(raw.get("drop_rate", 0.0)),
            backbone_kwargs=dict(raw.get("backbone_kwargs", {})),
        )


def _create_backbone(spec: ModelSpec, pretrained: bool, pretrained_path: str) -> nn.Module:
    kwargs: dict[str, Any] = dict(spec.backbone_kwargs)
    kwargs.update(in_chans=spec.in_chans, features_only=True)
    if spec.output_stride != 32:
        kwargs["output_stride"] = spec.output_stride
    if pretrained_path:
        kwargs["pretrained_cfg_overlay"] = {"file": str(pretrained_path)}
        pretrained = True
    try:
        return timm.create_model(spec.backbone, pretrained=pretrained, **kwargs)
    except RuntimeError as exc:
        if "Unknown model" in str(exc):
            raise ValueError(
                f"model.backbone {spec.backbone!r} is not a timm model (see timm.list_models())"
            ) from None
        raise
    except TypeError as exc:
        raise ValueError(f"model.backbone {spec.backbone!r} does not accept these options ({exc})") from None
    except (OSError, ValueError) as exc:
        if pretrained and not pretrained_path:
            raise RuntimeError(
                f"could not load pretrained weights for {spec.backbone!r} ({exc}); offline? "
                "set model.pretrained=false or model.pretrained_path=FILE"
            ) from exc
        raise


class AUGuidedNet(nn.Module):
    """Backbone features -> (logits, channel-mean attention of the aligned stage)."""

    def __init__(self, spec: ModelSpec, pretrained: bool = False, pretrained_path: str = "") -> None:
        super().__init__()
        self.spec = spec
        self.features = _create_backbone(spec, pretrained, pretrained_path)
        info: Any = self.features.feature_info  # timm's FeatureInfo (nn.Module attributes type as Tensor | Module)
        n_stages = len(info.channels())
        stage = spec.attention_stage if spec.attention_stage >= 0 else n_stages + spec.attention_stage
        if not 0 <= stage < n_stages:
            raise ValueError(
                f"model.attention_stage {spec.attention_stage} is outside the {n_stages} stages of {spec.backbone}"
            )
        self.attention_index = stage
        self.attention_layer = str(info.module_name(stage))
        self.attention_reduction = int(info.reduction(stage))
        self.final_channels = int(info.channels()[-1])
        self.drop = nn.Dropout(spec.drop_rate) if spec.drop_rate > 0 else nn.Identity()
        self.head = nn.Linear(self.final_channels, spec.num_classes)
        nn.init.xavier_uniform_(self.head.weight)  # as the reference code's head
        nn.init.zeros_(self.head.bias)

    def attention_size(self, input_size: int) -> tuple[int, int]:
        """(h, w) of the attention map for a square input, measured (padding rules vary by backbone)."""
        was = self.training
        self.eval()
        try:
            with torch.no_grad():
                x = torch.zeros(1, self.spec.in_chans, input_size, input_size, device=self.head.weight.device)
                _, att = self(x)
        finally:
            self.train(was)
        return int(att.shape[-2]), int(att.shape[-1])

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(aligned stage features, final features)."""
        feats = self.features(x)
        return feats[self.attention_index], feats[-1]

    def logits_from(self, final: torch.Tensor) -> torch.Tensor:
        return self.head(self.drop(final.mean(dim=(2, 3))))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        aligned, final = self.forward_features(x)
        return self.logits_from(final), aligned.mean(dim=1)

    def cams_from(self, final: torch.Tensor) -> torch.Tensor:
        """(N, classes, h, w) class activation maps from final features and the head weights."""
        return torch.einsum("kc,nchw->nkhw", self.head.weight.to(final.dtype), final)

    def forward_with_cam(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        aligned, final = self.forward_features(x)
        return self.logits_from(final), aligned.mean(dim=1), self.cams_from(final)


def build_model(spec: ModelSpec, pretrained: bool = False, pretrained_path: str = "") -> AUGuidedNet:
    return AUGuidedNet(spec, pretrained=pretrained, pretrained_path=pretrained_path)
