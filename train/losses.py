"""CE + lambda * mean over samples with an AU map of (1 - cos(attention, AU map)) (method.md §4.3-4.4).

The AU map arrives at input resolution and is brought to the attention's resolution here: area
averaging when shrinking (each attention cell sees the mean AU evidence of the pixels it covers),
bilinear when enlarging, then clamped to [0, 1] as the reference code does. The cosine uses
eps = 1e-8 on the product of norms, exactly as the reference `_AlignLoss`.

Samples without a map (neutral, no face found) contribute cross-entropy only; a batch with none
contributes a zero alignment term that is still connected to the graph (DDP needs every rank to
run the same backward).
"""

from __future__ import annotations

from dataclasses import dataclass

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


def alignment_loss(attention: torch.Tensor, maps: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean over valid samples of 1 - cos, mean cosine of the valid samples, detached)."""
    target = resize_maps(maps, tuple(attention.shape[-2:]))
    cos = cosine_per_sample(attention, target)
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

    def __init__(self, au_lambda: float, label_smoothing: float = 0.0) -> None:
        self.au_lambda = float(au_lambda)
        self.label_smoothing = float(label_smoothing)

    def __call__(
        self,
        logits: torch.Tensor,
        attention: torch.Tensor,
        labels: torch.Tensor,
        maps: torch.Tensor,
        valid: torch.Tensor,
    ) -> LossTerms:
        ce = F.cross_entropy(logits.float(), labels, label_smoothing=self.label_smoothing)
        n_valid = int(valid.sum())
        if self.au_lambda > 0:
            align, att_cos = alignment_loss(attention.float(), maps, valid)
            total = ce + self.au_lambda * align
        else:
            with torch.no_grad():
                align, att_cos = alignment_loss(attention.detach().float(), maps, valid)
            total = ce
        return LossTerms(total, ce.detach(), align.detach(), att_cos, n_valid)
