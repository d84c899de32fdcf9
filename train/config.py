"""Training settings: one validated YAML recipe (`configs/train/*.yaml`) plus `key=value` overrides.

Every section refuses unknown keys (`edgefer.config.Settings`), so a misspelt key in a recipe stops
the run at once with the file and the dotted key named, instead of silently training with a default.
Paths may use `~` and environment variables (`${EDGEFER_DATA}/fer2013`), so one recipe works on a
laptop, a desktop GPU box and CI.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from edgefer.config import ConfigError, Settings, load_settings


def expand_path(text: str) -> Path:
    """`~` and `$VARS` expanded; an unset variable is an error (a silent literal `$X` path is worse)."""
    expanded = os.path.expanduser(os.path.expandvars(text))
    if "$" in expanded:
        raise ConfigError(f"path {text!r} uses an environment variable that is not set")
    return Path(expanded)


class DataSettings(Settings):
    """Where the images, their landmarks and the packed in-memory copy come from."""

    #: Dataset layout: `folder` = `<split>/<class>/<image>` (FER2013 images, any labelled folder),
    #: `fer2013_csv` (emotion,pixels,Usage), `rafdb` (basic), `affectnet`.
    format: Literal["folder", "fer2013_csv", "rafdb", "affectnet"] = "folder"
    #: Dataset root (for `fer2013_csv`: the CSV file). Empty: `$EDGEFER_DATA/fer2013`.
    root: str = ""
    train_split: str = "train"
    #: A split to validate on; empty = carve `val_fraction` out of the train split (stratified, seeded).
    val_split: str = ""
    val_fraction: float = Field(0.1, ge=0.0, lt=0.9)
    #: Stratified subset of the train split (before the validation carve), for quick runs and tests.
    limit: int | None = Field(None, ge=14)
    #: Landmark cache folder (`edgefer landmarks`); relpaths there are relative to `root`.
    landmarks: str = "cache/fer2013_landmarks"
    #: Compute landmarks the cache lacks (MediaPipe, slow: ~25 img/s); otherwise they count as "no face".
    compute_missing_landmarks: bool = False
    #: Where the packed split archives (`<name>-<split>-<key>.npz`) are kept.
    cache_dir: str = "cache/packed"
    #: Train from this packed archive alone (no image folder, no landmark cache): what travels to a GPU box.
    archive: str = ""
    #: Square side the images are stored at in memory (FER2013 is 48; others are resized to it).
    stored_size: int = Field(48, ge=16, le=512)
    color: Literal["gray", "rgb"] = "gray"
    #: Per-channel normalisation on [0, 1] pixels; empty = measured on the training split.
    mean: list[float] = Field(default_factory=list)
    std: list[float] = Field(default_factory=list)
    num_workers: int = Field(0, ge=0)
    #: Label of the dataset in the model contract (`trained_on`).
    name: str = "fer2013"

    def root_path(self) -> Path:
        if self.root:
            return expand_path(self.root)
        base = os.environ.get("EDGEFER_DATA")
        if not base:
            raise ConfigError("data.root is empty and EDGEFER_DATA is not set: say where the dataset is")
        return Path(base) / "fer2013"


class AugmentSettings(Settings):
    """One random affine (shared by the image and its AU map), flip, photometric jitter, erasing."""

    enabled: bool = True
    hflip: float = Field(0.5, ge=0.0, le=1.0)
    rotate_deg: float = Field(10.0, ge=0.0, le=45.0)
    scale: tuple[float, float] = (0.9, 1.1)
    #: Maximum shift as a fraction of the side.
    translate: float = Field(0.08, ge=0.0, le=0.5)
    brightness: float = Field(0.3, ge=0.0, le=1.0)
    contrast: float = Field(0.3, ge=0.0, le=1.0)
    #: Probability of one random erasing rectangle (image only), 0 = off.
    erase: float = Field(0.25, ge=0.0, le=1.0)
    #: Probability of each camera degradation (gamma, downscale-upscale, blur or sharpen, noise,
    #: JPEG; image only, `train.augment.camera_degrade`), 0 = off: faces from cameras unlike FER2013's.
    camera: float = Field(0.0, ge=0.0, le=1.0)
    #: Batch mixing (`train.mixing`): the image, the label and the AU map are mixed alike.
    mix: Literal["none", "mixup", "cutmix", "both"] = "none"
    #: Beta(alpha, alpha) of the mixing weight.
    mix_alpha: float = Field(0.4, gt=0.0)
    #: Share of batches that are mixed.
    mix_prob: float = Field(0.5, ge=0.0, le=1.0)


class ModelSettings(Settings):
    """The classifier: a timm backbone, the aligned layer, a linear head on pooled final features."""

    backbone: str = "resnet18"
    #: Extra keyword arguments for `timm.create_model` (e.g. `channels: [32, 64, 128, 256]` for a
    #: half-width ResNet, `stem_width: 32`).
    backbone_kwargs: dict[str, Any] = Field(default_factory=dict)
    pretrained: bool = False
    #: Local weights file for the backbone (timm `pretrained_cfg_overlay`), used instead of a download.
    pretrained_path: str = ""
    input_size: int = Field(64, ge=16, le=1024)
    #: Dilate the last stages so the final map keeps resolution (paper: 8).
    output_stride: Literal[8, 16, 32] = 8
    #: Which feature stage is aligned (timm `features_only` stage index; negative counts from the end).
    attention_stage: int = -1
    drop_rate: float = Field(0.0, ge=0.0, lt=1.0)


class LossSettings(Settings):
    """CE + au_lambda * mean over samples with a map of (1 - cos(attention, AU map))."""

    au_lambda: float = Field(1.0, ge=0.0)
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)
    #: Where the cosine is taken: `attention` (the reference code: the AU map shrunk to the
    #: attention's grid) or `input` (the attention upsampled as ATT-COS does; see train.losses).
    align_at: Literal["attention", "input"] = "attention"


class OptimSettings(Settings):
    name: Literal["sgd", "adamw"] = "sgd"
    lr: float = Field(0.01, gt=0.0)
    momentum: float = Field(0.9, ge=0.0, lt=1.0)
    nesterov: bool = True
    weight_decay: float = Field(5e-4, ge=0.0)
    schedule: Literal["cosine", "step", "constant"] = "cosine"
    #: Step schedule: lr * gamma ** (epoch // step_size), stepped per epoch (the paper's "mystep").
    step_size: int = Field(4, ge=1)
    gamma: float = Field(0.9, gt=0.0, le=1.0)
    #: Linear warm-up (in epochs, fractional allowed) before the schedule; cosine decays per step.
    warmup_epochs: float = Field(0.0, ge=0.0)
    min_lr: float = Field(1e-6, ge=0.0)
    epochs: int = Field(30, ge=1)
    batch_size: int = Field(128, ge=1)
    eval_batch_size: int = Field(256, ge=1)
    grad_clip: float = Field(0.0, ge=0.0)
    #: Exponential moving average of the weights (`train.ema`), 0 = off. With it on, validation,
    #: `best.pt` and export use the averaged weights.
    ema_decay: float = Field(0.0, ge=0.0, lt=1.0)


class RunSettings(Settings):
    #: Run folder (checkpoints, TensorBoard logs, the resolved config). Empty: runs/<config name>.
    out: str = ""
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    #: Autocast dtype. `auto`: bf16 on a CUDA GPU that supports it (else fp16 with a grad scaler), and
    #: bf16 on a CPU with native bf16 instructions (AVX512-BF16 or AMX: 1.5-1.8x faster per step,
    #: `edgefer bench trainstep`), else fp32 on the CPU. `off` forces fp32.
    amp: Literal["auto", "bf16", "fp16", "off"] = "auto"
    #: NHWC memory layout for convolutions (`edgefer bench trainstep` measures whether it helps).
    channels_last: bool = False
    #: torch intra-op threads on CPU (0 = torch's default).
    threads: int = Field(0, ge=0)
    log_every: int = Field(20, ge=1)
    #: Also write the `last` checkpoint every N optimizer steps (0 = only at epoch ends).
    save_every_steps: int = Field(0, ge=0)
    #: Stop an epoch after this many steps (smoke runs); 0 = the whole epoch.
    max_steps_per_epoch: int = Field(0, ge=0)
    #: Stop this invocation after N optimizer steps, saving `last.pt` (continue with --resume): for
    #: time-boxed sessions on a shared machine. 0 = run to the end.
    stop_after_steps: int = Field(0, ge=0)
    progress: bool = True
    deterministic: bool = False


class TrainConfig(Settings):
    data: DataSettings = Field(default_factory=DataSettings)
    augment: AugmentSettings = Field(default_factory=AugmentSettings)
    model: ModelSettings = Field(default_factory=ModelSettings)
    loss: LossSettings = Field(default_factory=LossSettings)
    optim: OptimSettings = Field(default_factory=OptimSettings)
    run: RunSettings = Field(default_factory=RunSettings)

    @model_validator(mode="after")
    def _check_norm(self) -> TrainConfig:
        channels = 1 if self.data.color == "gray" else 3
        for key in ("mean", "std"):
            values = getattr(self.data, key)
            if values and len(values) != channels:
                raise ValueError(f"data.{key} needs {channels} value(s) for color {self.data.color!r}")
        if self.data.std and min(self.data.std) <= 0:
            raise ValueError("data.std values must be > 0")
        return self

    @property
    def in_chans(self) -> int:
        return 1 if self.data.color == "gray" else 3


def load_train_config(path: str | Path | None, overrides: Iterable[str] = ()) -> TrainConfig:
    """The recipe at `path` with overrides applied; ConfigError names the file and the key."""
    try:
        return load_settings(TrainConfig, path, overrides)
    except ConfigError:
        raise
    except ValueError as exc:  # model_validator errors arrive wrapped by pydantic already
        raise ConfigError(f"{path}: {exc}") from exc
