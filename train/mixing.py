"""Mixup and CutMix for AU-guided training: the image, the labels *and the AU map* are mixed.

A mixed image shows the facial evidence of two faces, so its alignment target is the AU evidence
that is actually in the picture (decision, recorded in docs/training.md):

- **mixup** (`lam * a + (1 - lam) * b`): the target is `lam * A_a + (1 - lam) * A_b`. FER2013 crops are
  roughly aligned, so both faces' AU regions land near the same places and their weighted sum is the
  evidence of the blend. A face with no map (neutral: no AU is active; no landmarks) contributes no
  evidence, so mixing a smile with a neutral face keeps the smile's map (the cosine ignores scale).
- **cutmix** (a box of `b` pasted into `a`): the target is `A_a` outside the box and `A_b` inside it,
  the same paste applied to the map. `lam` is corrected to the box's true area.

The mixed sample has a target when either source had one and some evidence is left in the frame.
Cross-entropy becomes `lam * CE(y_a) + (1 - lam) * CE(y_b)` (`train.losses.AUGuidedLoss`).

Draws come from a generator seeded by (seed, epoch, step), so a resumed run mixes exactly the
batches the uninterrupted run would have mixed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

MixMode = Literal["none", "mixup", "cutmix", "both"]


@dataclass
class MixedBatch:
    """A batch after mixing; `labels_b`/`lam` are None/1.0 when the batch was left as it was."""

    images: torch.Tensor  # (N, C, H, W) float
    labels: torch.Tensor  # (N,) the dominant-or-first labels
    maps: torch.Tensor  # (N, H, W) float in [0, 1]
    valid: torch.Tensor  # (N,) bool
    labels_b: torch.Tensor | None = None
    lam: float = 1.0


def _box(rng: np.random.Generator, lam: float, h: int, w: int) -> tuple[int, int, int, int]:
    """A box of area about (1 - lam) * h * w with a uniform centre, clipped to the frame."""
    cut = math.sqrt(max(0.0, 1.0 - lam))
    bh, bw = int(round(h * cut)), int(round(w * cut))
    cy, cx = int(rng.integers(0, h)), int(rng.integers(0, w))
    y0, y1 = max(0, cy - bh // 2), min(h, cy + (bh - bh // 2))
    x0, x1 = max(0, cx - bw // 2), min(w, cx + (bw - bw // 2))
    return y0, y1, x0, x1


def mix_batch(
    images: torch.Tensor,
    labels: torch.Tensor,
    maps: torch.Tensor,
    valid: torch.Tensor,
    mode: MixMode,
    alpha: float,
    prob: float,
    rng: np.random.Generator,
) -> MixedBatch:
    """Mix one batch with a shuffled copy of itself (one `lam` per batch, as timm's Mixup)."""
    plain = MixedBatch(images, labels, maps, valid)
    if mode == "none" or alpha <= 0 or prob <= 0 or len(labels) < 2 or rng.random() >= prob:
        return plain
    if mode == "both":
        mode = "mixup" if rng.random() < 0.5 else "cutmix"
    perm = torch.from_numpy(rng.permutation(len(labels)))
    lam = float(rng.beta(alpha, alpha))
    maps = maps * valid.view(-1, 1, 1).to(maps.dtype)  # no map = no evidence
    if mode == "mixup":
        mixed = images * lam + images[perm] * (1.0 - lam)
        mixed_maps = maps * lam + maps[perm] * (1.0 - lam)
    elif mode == "cutmix":
        h, w = images.shape[-2:]
        y0, y1, x0, x1 = _box(rng, lam, h, w)
        mixed = images.clone()
        mixed[..., y0:y1, x0:x1] = images[perm][..., y0:y1, x0:x1]
        mixed_maps = maps.clone()
        mixed_maps[:, y0:y1, x0:x1] = maps[perm][:, y0:y1, x0:x1]
        lam = 1.0 - (y1 - y0) * (x1 - x0) / float(h * w)
    else:
        raise ValueError(f"augment.mix must be none, mixup, cutmix or both, not {mode!r}")
    has = (valid | valid[perm]) & (mixed_maps.flatten(1).amax(1) > 0)
    return MixedBatch(mixed, labels, mixed_maps, has, labels[perm], lam)
