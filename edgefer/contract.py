"""The model contract: what an exported model says about itself so the runtime never guesses.

An ONNX file carries it as `metadata_props` (key `edgefer.contract`, JSON); a TensorRT engine as a
JSON sidecar (`MODEL.engine.json`); a training checkpoint in its metadata. The same dataclass reads
and writes all three, so training, export and runtime cannot drift apart.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

METADATA_KEY = "edgefer.contract"
CONTRACT_VERSION = 1


@dataclass(frozen=True)
class Framing:
    """Where chosen mesh landmarks sit in the model's input crop.

    `landmark_indices` are MediaPipe 478-mesh indices; `template` their (x, y) positions as
    fractions of the crop width/height. The aligner fits a similarity transform from a face's
    landmarks to this template, so runtime crops reproduce the framing the model was trained on
    (for FER2013 this template is the mean landmark layout of its 48x48 crops).
    """

    landmark_indices: tuple[int, ...]
    template: tuple[tuple[float, float], ...]

    def __post_init__(self) -> None:
        if len(self.landmark_indices) != len(self.template) or len(self.template) < 2:
            raise ValueError("framing needs as many template points as landmark indices (>= 2)")


@dataclass(frozen=True)
class ModelContract:
    """Preprocessing and output description of an exported model.

    Pixels are scaled to [0, 1], then `(x - mean) / std` per channel. `color` is `gray` (one
    channel), `rgb` or `bgr`. `input_size` is (height, width).
    """

    classes: tuple[str, ...]
    input_size: tuple[int, int]
    color: str
    mean: tuple[float, ...]
    std: tuple[float, ...]
    framing: Framing
    attention_layer: str
    attention_size: tuple[int, int]
    au_aligned: bool
    trained_on: str
    backbone: str
    outputs: tuple[str, ...] = ("logits", "attention")
    extra: dict[str, Any] = field(default_factory=dict)
    version: int = CONTRACT_VERSION

    def __post_init__(self) -> None:
        if self.color not in ("gray", "rgb", "bgr"):
            raise ValueError(f"contract color must be gray, rgb or bgr, not {self.color!r}")
        channels = 1 if self.color == "gray" else 3
        if len(self.mean) != channels or len(self.std) != channels:
            raise ValueError(f"contract mean/std need {channels} value(s) for color {self.color!r}")
        if len(self.input_size) != 2 or min(self.input_size) <= 0:
            raise ValueError(f"contract input_size must be (height, width), got {self.input_size!r}")

    @property
    def channels(self) -> int:
        return 1 if self.color == "gray" else 3

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str, source: str = "<contract>") -> ModelContract:
        """Parse a contract; errors name `source` (the file) and the offending field."""
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{source}: model contract is not valid JSON ({exc})") from exc
        return cls.from_dict(raw, source)

    @classmethod
    def from_dict(cls, raw: dict[str, Any], source: str = "<contract>") -> ModelContract:
        try:
            fr = raw["framing"]
            framing = Framing(
                landmark_indices=tuple(int(i) for i in fr["landmark_indices"]),
                template=tuple((float(x), float(y)) for x, y in fr["template"]),
            )
            return cls(
                classes=tuple(raw["classes"]),
                input_size=(int(raw["input_size"][0]), int(raw["input_size"][1])),
                color=str(raw["color"]),
                mean=tuple(float(v) for v in raw["mean"]),
                std=tuple(float(v) for v in raw["std"]),
                framing=framing,
                attention_layer=str(raw["attention_layer"]),
                attention_size=(int(raw["attention_size"][0]), int(raw["attention_size"][1])),
                au_aligned=bool(raw["au_aligned"]),
                trained_on=str(raw["trained_on"]),
                backbone=str(raw["backbone"]),
                outputs=tuple(raw.get("outputs", ("logits", "attention"))),
                extra=dict(raw.get("extra", {})),
                version=int(raw.get("version", CONTRACT_VERSION)),
            )
        except KeyError as exc:
            raise ValueError(f"{source}: model contract lacks field {exc.args[0]!r}") from exc
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{source}: model contract is malformed: {exc}") from exc
