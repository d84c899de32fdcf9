"""One call that seeds every random generator a run draws from before its first step.

Python's and NumPy's global generators and torch's (the weight initialisation). The per-sample
augmentation and the batch mixing have their own generators seeded by (seed, epoch, index), so a
resumed run draws the same numbers without replaying these; torch's state travels in `last.pt`.
"""

from __future__ import annotations

import random

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
