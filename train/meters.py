"""The numbers one epoch produces, as typed records, and the meter that averages them over batches.

The records are written out under fixed names that other code reads back: the lines of
`history.jsonl` (`train.curves`, `train.ablation`: `epoch`, `train_acc`, `val_accuracy`,
`val_att_cos`, ...) and the `metrics`, `history` and `best` entries of `last.pt`, which a resumed
run reloads. `as_dict` keeps those names and their order, so the files read exactly as before the
records existed; a new field here is a new key in both files.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Mean:
    """A running mean: the sum of the values added and how many there were (0 averages to 0)."""

    total: float = 0.0
    count: int = 0

    def add(self, value: float) -> None:
        self.total += value
        self.count += 1

    @property
    def value(self) -> float:
        return self.total / max(1, self.count)


@dataclass
class TrainStats:
    """One epoch of training, averaged over its batches (augmented, mixed batches: not a clean accuracy)."""

    loss: float
    ce: float
    align: float
    acc: float
    #: over the batches that held at least one AU map
    att_cos: float
    seconds: float
    images_per_s: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass
class EpochMeter:
    """Sums of the per-batch loss terms and accuracy. `att_cos` counts only batches with an AU map
    (a batch of neutral faces has no alignment to measure)."""

    loss: Mean = field(default_factory=Mean)
    ce: Mean = field(default_factory=Mean)
    align: Mean = field(default_factory=Mean)
    acc: Mean = field(default_factory=Mean)
    att_cos: Mean = field(default_factory=Mean)

    @property
    def batches(self) -> int:
        return self.loss.count

    def add(self, loss: float, ce: float, align: float, acc: float, att_cos: float | None) -> None:
        self.loss.add(loss)
        self.ce.add(ce)
        self.align.add(align)
        self.acc.add(acc)
        if att_cos is not None:
            self.att_cos.add(att_cos)

    def postfix(self) -> dict[str, str]:
        """The running means, for the progress bar."""
        return {"loss": f"{self.loss.value:.3f}", "acc": f"{self.acc.value:.3f}", "cos": f"{self.att_cos.value:.3f}"}

    def stats(self, seconds: float, images: int) -> TrainStats:
        return TrainStats(
            loss=self.loss.value,
            ce=self.ce.value,
            align=self.align.value,
            acc=self.acc.value,
            att_cos=self.att_cos.value,
            seconds=seconds,
            images_per_s=images / max(seconds, 1e-9),
        )


@dataclass
class ValStats:
    """One validation pass (on the split carved from train; never the test split)."""

    accuracy: float
    macro_f1: float
    #: mean cross-entropy per image
    loss: float
    #: attention vs AU map cosine, macro over the non-neutral classes
    att_cos: float
    n: int
    #: images that have an AU map (the ones `att_cos` is measured on)
    n_with_map: int
    per_class_recall: dict[str, float | None]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class BestEpoch:
    """The epoch with the best validation accuracy so far (the one saved as `best.pt`)."""

    epoch: int
    val_accuracy: float
    val_macro_f1: float
    val_att_cos: float

    @classmethod
    def of(cls, epoch: int, val: ValStats) -> BestEpoch:
        return cls(epoch, val.accuracy, val.macro_f1, val.att_cos)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> BestEpoch | None:
        """From `last.pt`'s `best` entry; None for a run that has not finished an epoch (`{}`)."""
        if not raw:
            return None
        return cls(int(raw["epoch"]), raw["val_accuracy"], raw["val_macro_f1"], raw["val_att_cos"])

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def history_record(epoch: int, step: int, lr: float, train: TrainStats, val: ValStats) -> dict[str, Any]:
    """One line of `history.jsonl` (and one entry of `last.pt`'s history): `train_*` and `val_*`
    columns beside the epoch, the step and the learning rate (per-class recall stays in `metrics`)."""
    return {
        "epoch": epoch,
        "step": step,
        "lr": lr,
        **{f"train_{k}": v for k, v in train.as_dict().items()},
        **{f"val_{k}": v for k, v in val.as_dict().items() if k != "per_class_recall"},
    }
