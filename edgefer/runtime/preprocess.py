"""Crop preprocessing exactly as a model's contract declares it, vectorised over the batch.

The runtime never guesses: colour conversion, scaling to [0, 1] and per-channel mean/std all come
from `ModelContract`. Scaling and normalisation are folded into one multiply-add per channel
(`x * 1/(255*std) - mean/std`), written straight into a reused NCHW float32 buffer, so a frame's
batch costs no allocation once the largest batch has been seen.
"""

from __future__ import annotations

import numpy as np

from edgefer.contract import ModelContract

#: ITU-R BT.601 luma weights in BGR order: the same weights OpenCV's BGR2GRAY uses, so a gray
#: model sees what `cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)` would give (without its rounding).
BGR_TO_GRAY = np.array([0.114, 0.587, 0.299], dtype=np.float32)


def check_crops(crops: np.ndarray, input_size: tuple[int, int]) -> np.ndarray:
    """Validate crops and return them as (N, H, W, 3) uint8 (a single (H, W, 3) gets N = 1).

    Raises ValueError naming the expected and the actual shape/dtype: a wrong crop size means the
    aligner and the model disagree, which must never be silently resized away.
    """
    if not isinstance(crops, np.ndarray):
        raise ValueError(f"crops must be a NumPy array, got {type(crops).__name__}")
    h, w = input_size
    expected = f"uint8 BGR (N, {h}, {w}, 3) or ({h}, {w}, 3)"
    if crops.dtype != np.uint8:
        raise ValueError(f"crops must be {expected}; got dtype {crops.dtype} with shape {crops.shape}")
    if crops.ndim == 3 and crops.shape == (h, w, 3):
        return crops[None]
    if crops.ndim != 4 or crops.shape[1:] != (h, w, 3):
        raise ValueError(f"crops must be {expected}; got shape {crops.shape}")
    return crops


class Preprocessor:
    """Turns uint8 BGR crops into the model's normalised NCHW float32 input.

    Not re-entrant: the returned array is a view of an internal buffer that the next call
    overwrites (callers hand it to the backend before preprocessing the next batch).
    """

    def __init__(self, contract: ModelContract) -> None:
        self.contract = contract
        self.height, self.width = contract.input_size
        self.channels = contract.channels
        std = np.asarray(contract.std, dtype=np.float32)
        mean = np.asarray(contract.mean, dtype=np.float32)
        self._scale = (1.0 / (255.0 * std)).astype(np.float32)
        self._shift = (-mean / std).astype(np.float32)
        # Which BGR channel feeds each model channel.
        self._source = {"bgr": (0, 1, 2), "rgb": (2, 1, 0), "gray": ()}[contract.color]
        self._gray_weights = [BGR_TO_GRAY * s for s in self._scale] if contract.color == "gray" else []
        self._out = np.empty((0, self.channels, self.height, self.width), dtype=np.float32)
        self._stage = np.empty((0, self.height, self.width, 3), dtype=np.float32)

    def _buffers(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        if n > self._out.shape[0]:
            self._out = np.empty((n, self.channels, self.height, self.width), dtype=np.float32)
            if self.contract.color == "gray":
                self._stage = np.empty((n, self.height, self.width, 3), dtype=np.float32)
        return self._out[:n], self._stage[:n]

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        crops = check_crops(crops, (self.height, self.width))
        out, stage = self._buffers(crops.shape[0])
        if self.contract.color == "gray":
            np.copyto(stage, crops, casting="safe")
            # (N,H,W,3) @ (3,) -> (N,H,W): luma, already multiplied by 1/(255*std).
            np.matmul(stage, self._gray_weights[0], out=out[:, 0])
            out[:, 0] += self._shift[0]
        else:
            for c, src in enumerate(self._source):
                np.multiply(crops[..., src], self._scale[c], out=out[:, c], casting="unsafe")
                out[:, c] += self._shift[c]
        return out


def softmax(logits: np.ndarray) -> np.ndarray:
    """Numerically stable softmax over the last axis, float32."""
    z = logits.astype(np.float32, copy=True)
    z -= z.max(axis=-1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=-1, keepdims=True)
    return z
