"""An exponential moving average of the model's weights (validated, saved as `best.pt`, exported).

Why: FER2013's labels are noisy (about 10% disputed) and a small network's weights wander from step
to step; the average of the last few thousand steps generalises better than the last step, at the
cost of one copy of the weights (2.8M parameters here) and one fused multiply-add per step.

Floating-point state (weights and BatchNorm running statistics) is averaged; integer buffers
(BatchNorm's step counter) are copied. The decay warms up as `min(decay, (1 + n) / (10 + n))`
after `n` updates, so the average is not dragged towards the random initialisation early on.
"""

from __future__ import annotations

import copy

import torch


class WeightEMA:
    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"optim.ema_decay must be in (0, 1), not {decay}")
        self.decay = float(decay)
        self.updates = 0
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        self.updates += 1
        d = min(self.decay, (1.0 + self.updates) / (10.0 + self.updates))
        live = model.state_dict()
        for name, avg in self.module.state_dict().items():
            src = live[name].detach()
            if avg.dtype.is_floating_point:
                avg.mul_(d).add_(src.to(avg.dtype), alpha=1.0 - d)
            else:
                avg.copy_(src)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().cpu() for k, v in self.module.state_dict().items()}

    def load_state_dict(self, state: dict[str, torch.Tensor], updates: int) -> None:
        self.module.load_state_dict(state)
        self.updates = int(updates)
