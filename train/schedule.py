"""The optimizer and its learning-rate schedule, from the recipe's `optim` section.

`lr_factor` is a pure function of the optimizer step, so the schedule of a resumed run continues
exactly (the LambdaLR's step count travels in `last.pt`; the function itself is not saved).
"""

from __future__ import annotations

import math

import torch

from train.config import TrainConfig


def lr_factor(step: int, steps_per_epoch: int, cfg: TrainConfig) -> float:
    """Multiplier of the base lr after `step` optimizer steps (warm-up, then cosine/step/constant)."""
    o = cfg.optim
    epoch_f = step / max(1, steps_per_epoch)
    floor = o.min_lr / o.lr
    if o.warmup_epochs > 0 and epoch_f < o.warmup_epochs:
        return max(floor, (epoch_f + 1.0 / max(1, steps_per_epoch)) / o.warmup_epochs)
    if o.schedule == "cosine":
        span = max(1e-9, o.epochs - o.warmup_epochs)
        progress = min(1.0, (epoch_f - o.warmup_epochs) / span)
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))
    if o.schedule == "step":
        return max(floor, o.gamma ** (int(epoch_f) // o.step_size))
    return 1.0


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """Weight decay on weights only (not on BatchNorm/bias), the usual choice for small CNNs.

    The two parameter groups, in this order, are part of the checkpoint format: a resumed run loads
    the optimizer state group by group."""
    o = cfg.optim
    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
    for _name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim <= 1 else decay).append(p)
    groups = [{"params": decay, "weight_decay": o.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if o.name == "sgd":
        return torch.optim.SGD(groups, lr=o.lr, momentum=o.momentum, nesterov=o.nesterov and o.momentum > 0)
    return torch.optim.AdamW(groups, lr=o.lr)
