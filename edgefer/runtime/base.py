"""What every backend returns and the shared half of every classifier.

Backends only implement `_infer` (normalised NCHW float32 in, raw named outputs out). Validation,
preprocessing, batch splitting, class reordering, softmax and the CAM of the predicted class live
here once, so ONNX Runtime and TensorRT cannot differ in anything but the arithmetic.
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from edgefer.classes import EXPRESSIONS, NUM_CLASSES, class_index
from edgefer.contract import ModelContract
from edgefer.runtime.errors import ModelLoadError
from edgefer.runtime.preprocess import Preprocessor, check_crops, softmax

log = logging.getLogger(__name__)


@dataclass
class ClassifierOutput:
    """One batched prediction, in the project's class order (`edgefer.classes.EXPRESSIONS`).

    `probs`, `logits`: (N, 7) float32. `attention`: (N, h, w) float32, the channel mean of the
    aligned layer, in crop space. `cam`: (N, h', w') float32, the class activation map of each
    face's predicted class, or None when the model has no `cam` output. `cams`: (N, 7, h', w') all
    classes' CAMs when the model exports them (evaluation uses the ground-truth class's map).
    """

    probs: np.ndarray
    logits: np.ndarray
    attention: np.ndarray
    cam: np.ndarray | None = None
    cams: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.probs.shape[0])


def class_permutation(classes: tuple[str, ...], source: str | Path) -> np.ndarray | None:
    """Column order that maps a model's class order onto the project's, or None if identical.

    A model trained with another order (e.g. FER2013's CSV order) is reordered rather than
    refused, as long as its names are the same seven expressions in any spelling edgefer knows.
    Anything else (missing, extra or unknown classes) is refused: the probabilities would lie.
    """
    if tuple(classes) == EXPRESSIONS:
        return None
    try:
        idx = [class_index(c) for c in classes]
    except ValueError as exc:
        raise ModelLoadError(
            f"{source}: model classes {list(classes)} cannot be mapped onto edgefer's "
            f"{list(EXPRESSIONS)}: {exc}"
        ) from None
    if sorted(idx) != list(range(NUM_CLASSES)):
        raise ModelLoadError(
            f"{source}: model classes {list(classes)} are not a reordering of edgefer's "
            f"{list(EXPRESSIONS)} (each must appear exactly once); refusing to guess"
        )
    perm = np.argsort(np.asarray(idx))
    if np.array_equal(perm, np.arange(NUM_CLASSES)):
        return None
    log.info("%s: model class order differs from the project's; outputs are reordered", source)
    return perm


class Classifier(ABC):
    """A loaded expression classifier. Use `edgefer.runtime.load_classifier` to get one.

    `contract` describes what `predict` returns (its `classes` are always the project order);
    `model_contract` is the contract exactly as stored in the model file. `predict` is
    thread-safe (serialised by a lock: one backend context, one set of buffers).
    """

    backend_name: str = "?"

    def __init__(self, contract: ModelContract, source: Path, max_batch: int | None = None) -> None:
        self.source = Path(source)
        self.model_contract = contract
        self._perm = class_permutation(contract.classes, source)
        self.contract = replace(contract, classes=EXPRESSIONS) if self._perm is not None else contract
        self.max_batch = max_batch
        self._pre = Preprocessor(contract)
        self._lock = threading.Lock()

    # --- what a backend provides -------------------------------------------------------------
    @abstractmethod
    def _infer(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Run the model on normalised NCHW float32 `x`; return owned arrays by output name."""

    @property
    @abstractmethod
    def attention_shape(self) -> tuple[int, int]:
        """(h, w) of the attention output."""

    @property
    def cam_shape(self) -> tuple[int, ...] | None:
        """Per-face shape of the raw `cam` output ((7, h, w) or (h, w)), None without one."""
        return None

    def close(self) -> None:  # noqa: B027 - a hook: a backend holding nothing to release keeps it empty
        """Release backend resources (device memory, sessions)."""

    def __enter__(self) -> Classifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        c = self.contract
        return (
            f"{type(self).__name__}({str(self.source)!r}, backend={self.backend_name!r}, "
            f"input={c.input_size[0]}x{c.input_size[1]} {c.color}, backbone={c.backbone!r})"
        )

    # --- the shared half ---------------------------------------------------------------------
    @property
    def has_cam(self) -> bool:
        return self.cam_shape is not None

    def predict(self, crops: np.ndarray) -> ClassifierOutput:
        """Classify uint8 BGR crops (N, H, W, 3) at `contract.input_size` (or one (H, W, 3)).

        Wrong shape or dtype raises ValueError naming both; N = 0 returns empty arrays. Batches
        larger than the backend's maximum are split transparently.
        """
        crops = check_crops(crops, self.model_contract.input_size)
        n = crops.shape[0]
        if n == 0:
            return self._empty()
        step = self.max_batch or n
        parts: list[dict[str, np.ndarray]] = []
        with self._lock:
            for start in range(0, n, step):
                x = self._pre(crops[start : start + step])
                parts.append(self._infer(x))
        raw = parts[0] if len(parts) == 1 else {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        return self._finish(raw)

    def _finish(self, raw: dict[str, np.ndarray]) -> ClassifierOutput:
        logits = np.asarray(raw["logits"], dtype=np.float32)
        attention = np.asarray(raw["attention"], dtype=np.float32)
        if attention.ndim == 4 and attention.shape[1] == 1:  # (N,1,h,w) exports: drop the channel
            attention = attention[:, 0]
        cams = raw.get("cam")
        if self._perm is not None:
            logits = logits[:, self._perm]
            if cams is not None and cams.ndim == 4:
                cams = cams[:, self._perm]
        probs = softmax(logits)
        cam = None
        if cams is not None:
            cams = np.asarray(cams, dtype=np.float32)
            if cams.ndim == 4:  # all classes: pick each face's predicted class
                cam = cams[np.arange(len(probs)), probs.argmax(axis=1)]
            else:
                cam, cams = cams, None
        return ClassifierOutput(probs=probs, logits=logits, attention=attention, cam=cam, cams=cams)

    def _empty(self) -> ClassifierOutput:
        h, w = self.attention_shape
        cam = cams = None
        if self.cam_shape is not None:
            cam = np.zeros((0, *self.cam_shape[-2:]), dtype=np.float32)
            if len(self.cam_shape) == 3:
                cams = np.zeros((0, *self.cam_shape), dtype=np.float32)
        return ClassifierOutput(
            probs=np.zeros((0, NUM_CLASSES), dtype=np.float32),
            logits=np.zeros((0, NUM_CLASSES), dtype=np.float32),
            attention=np.zeros((0, h, w), dtype=np.float32),
            cam=cam,
            cams=cams,
        )
