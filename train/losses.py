"""CE + lambda * mean over samples with an AU map of (1 - cos(attention, AU map)) (method.md §4.3-4.4).

Where the cosine is taken (`loss.align_at`):
- `attention` (the reference code): the AU map, which arrives at input resolution, is brought to the
  attention's resolution: area averaging when shrinking (each attention cell sees the mean AU
  evidence of the pixels it covers), bilinear when enlarging, then clamped to [0, 1].
- `input`: the attention is upsampled to the AU map's resolution exactly as ATT-COS does it
  (bilinear, align_corners=True; `train.evaluate.upsample_attention`) and compared with the clamped
  full-resolution map, so the loss is 1 - the metric, sample by sample. This matters for coarse maps:
  with a 7x7 attention and the metric at 56 px, even a perfect area-averaged target only reaches
  ATT-COS 0.842 on FER2013 test, because align_corners=True places cell centres on a different grid
  than area averaging; the best 7x7 map for the metric reaches 0.892 (measured, see docs/training.md).
  At 28x28 (the reference's layer) both conventions give 0.99 and the choice hardly matters.
The cosine uses eps = 1e-8 on the product of norms, exactly as the reference `_AlignLoss`.

Samples without a map (neutral, no face found) contribute cross-entropy only; a batch with none
contributes a zero alignment term that is still connected to the graph (DDP needs every rank to
run the same backward).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

EPS = 1e-8


def resize_maps(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(N, H, W) -> (N, h, w): area when shrinking, bilinear when enlarging; clamped to [0, 1]."""
    if tuple(maps.shape[-2:]) == tuple(size):
        return maps.clamp(0.0, 1.0)
    shrink = size[0] <= maps.shape[-2] and size[1] <= maps.shape[-1]
    x = maps[:, None].float()
    if shrink:
        out = F.interpolate(x, size=size, mode="area")
    else:
        out = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
    return out[:, 0].clamp(0.0, 1.0)


def cosine_per_sample(a: torch.Tensor, b: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """(N, ...) x (N, ...) -> (N,) cosine over the flattened maps, <a,b> / max(|a||b|, eps)."""
    a = a.flatten(1).float()
    b = b.flatten(1).float()
    dot = (a * b).sum(1)
    norm = a.norm(dim=1) * b.norm(dim=1)
    return dot / norm.clamp_min(eps)


AlignAt = Literal["attention", "input"]


def upsample_as_att_cos(attention: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(N, h, w) -> (N, H, W), the paper's ATT-COS processing: upsample (bilinear, align_corners=True),
    clamp to each map's own [min, max], shift by -min when min < 0. Differentiable, so the
    `align_at: input` loss and `edgefer eval` share this one definition."""
    lo = attention.flatten(1).min(1).values.view(-1, 1, 1)
    hi = attention.flatten(1).max(1).values.view(-1, 1, 1)
    up = F.interpolate(attention[:, None], size=size, mode="bilinear", align_corners=True)[:, 0]
    up = torch.maximum(torch.minimum(up, hi), lo)
    return torch.where(lo < 0, up - lo, up)


def map_cosine(attention: torch.Tensor, maps: torch.Tensor, align_at: AlignAt = "attention") -> torch.Tensor:
    """(N,) cosine of each attention map with its AU map, taken where `align_at` says."""
    if align_at == "input":
        size = (int(maps.shape[-2]), int(maps.shape[-1]))
        return cosine_per_sample(upsample_as_att_cos(attention, size), maps.clamp(0.0, 1.0))
    if align_at == "attention":
        return cosine_per_sample(attention, resize_maps(maps, (int(attention.shape[-2]), int(attention.shape[-1]))))
    raise ValueError(f"loss.align_at must be 'attention' or 'input', not {align_at!r}")


def alignment_loss(attention: torch.Tensor, maps: torch.Tensor, valid: torch.Tensor,
                   align_at: AlignAt = "attention") -> tuple[torch.Tensor, torch.Tensor]:
    """(mean over valid samples of 1 - cos, mean cosine of the valid samples, detached)."""
    cos = map_cosine(attention, maps, align_at)
    valid = valid.bool()
    if not bool(valid.any()):
        zero = attention.sum() * 0.0
        return zero, torch.zeros((), device=attention.device)
    sel = cos[valid]
    return (1.0 - sel).mean(), sel.detach().mean()


@dataclass
class LossTerms:
    total: torch.Tensor
    ce: torch.Tensor
    align: torch.Tensor
    att_cos: torch.Tensor
    n_valid: int


class AUGuidedLoss:
    """L = CE(logits, y) + au_lambda * R; with au_lambda = 0 the alignment term is not even computed."""

    def __init__(self, au_lambda: float, label_smoothing: float = 0.0, align_at: AlignAt = "attention") -> None:
        self.au_lambda = float(au_lambda)
        self.label_smoothing = float(label_smoothing)
        self.align_at = align_at

    def __call__(
        self,
        logits: torch.Tensor,
        attention: torch.Tensor,
        labels: torch.Tensor,
        maps: torch.Tensor,
        valid: torch.Tensor,
        labels_b: torch.Tensor | None = None,
        lam: float = 1.0,
    ) -> LossTerms:
        """`labels_b`/`lam`: a mixed batch (`train.mixing`), CE = lam CE(labels) + (1 - lam) CE(labels_b)."""
        ce = F.cross_entropy(logits.float(), labels, label_smoothing=self.label_smoothing)
        if labels_b is not None and lam < 1.0:
            ce_b = F.cross_entropy(logits.float(), labels_b, label_smoothing=self.label_smoothing)
            ce = lam * ce + (1.0 - lam) * ce_b
        n_valid = int(valid.sum())
        if self.au_lambda > 0:
            align, att_cos = alignment_loss(attention.float(), maps, valid, self.align_at)
            total = ce + self.au_lambda * align
        else:
            with torch.no_grad():
                align, att_cos = alignment_loss(attention.detach().float(), maps, valid, self.align_at)
            total = ce
        return LossTerms(total, ce.detach(), align.detach(), att_cos, n_valid)
