"""Landmarks of small, tightly cropped face images (FER2013's 48x48), with a checked fallback chain.

MediaPipe's face detector was trained on faces with some context around them and at a few dozen
pixels or more; FER2013's crops cut at the forehead and chin, so the detector misses ~11% of them at
native size. Measured on 500 random FER2013 test images (seed 1; `edgefer landmarks DATA --split test
--measure-variants 500`, table in docs/tracking.md): padding the crop with a black (constant)
border of 25% then upscaling x4 finds 96.4% alone; the fallback variants below, tried only when the
first finds nothing, raise that to 99.0% unchecked, 98.0% after the plausibility check of
`StillLandmarker` (97.7% over all 35,887 FER2013 images). Reflect/replicate borders help less: they
mirror the face's features into the border, which confuses the detector.

Every variant returns landmarks in the ORIGINAL image's pixel coordinates (scaling and padding
undone), with MediaPipe's convention (x * width: 0 is the left edge of the first pixel), so the same
face gives the same numbers (within ~0.5 px at 48x48) whichever variant found it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edgefer.tracking.landmarker import convert_result, create_landmarker, to_mp_image

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Variant:
    """One way to present a small crop to MediaPipe.

    `pad` is the border on each side as a fraction of the crop's long side; the padded image is then
    upscaled (never downscaled) so its long side is at least `min_side` pixels; `border` is
    "constant" (black), "replicate" or "reflect"; `confidence` is MediaPipe's detection/presence
    threshold.
    """

    name: str
    pad: float
    min_side: int
    border: str
    confidence: float


#: Tried in order until StillLandmarker's plausibility check passes (measured, docs/tracking.md);
#: every presentation (border, padding, scale) differs, so two agreeing variants are independent.
DEFAULT_VARIANTS: tuple[Variant, ...] = (
    Variant("pad25_const_up4", 0.25, 288, "constant", 0.5),
    Variant("pad50_const_up4_c0.2", 0.50, 384, "constant", 0.2),
    Variant("native_c0.2", 0.0, 0, "constant", 0.2),
    Variant("pad100_const_up2_c0.1", 1.00, 288, "constant", 0.1),
    Variant("pad50_replicate_up4_c0.2", 0.50, 384, "replicate", 0.2),
    Variant("up4_c0.1", 0.0, 192, "constant", 0.1),
)

#: Alternatives measured against the chain (docs/tracking.md); not used by default.
ALTERNATIVE_VARIANTS: tuple[Variant, ...] = (
    Variant("native", 0.0, 0, "constant", 0.5),
    Variant("up4", 0.0, 192, "constant", 0.5),
    Variant("pad25_reflect_up4", 0.25, 288, "reflect", 0.5),
    Variant("pad25_replicate_up4", 0.25, 288, "replicate", 0.5),
    Variant("pad50_const_up4", 0.50, 384, "constant", 0.5),
)

_BORDERS = {"constant": cv2.BORDER_CONSTANT, "replicate": cv2.BORDER_REPLICATE, "reflect": cv2.BORDER_REFLECT}


def present_key(variant: Variant) -> tuple[float, int, str]:
    """What the image looks like to MediaPipe (the confidence aside): same key, same landmarks."""
    return (variant.pad, variant.min_side, variant.border if variant.pad else "-")


def present(image_rgb: np.ndarray, variant: Variant) -> tuple[np.ndarray, int, float]:
    """The image as `variant` shows it to MediaPipe, with the padding (px) and scale to undo."""
    h, w = image_rgb.shape[:2]
    pad = int(round(max(h, w) * variant.pad))
    out = image_rgb
    if pad:
        out = cv2.copyMakeBorder(out, pad, pad, pad, pad, _BORDERS[variant.border], value=(0, 0, 0))
    long_side = max(out.shape[:2])
    scale = max(1.0, variant.min_side / long_side) if variant.min_side else 1.0
    if scale != 1.0:
        out = cv2.resize(out, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    return np.ascontiguousarray(out), pad, scale


#: Defaults of the plausibility check (see StillLandmarker), as fractions of the image's long side.
CONFIRM_BELOW = 0.45
MIN_FACE = 0.2
AGREE_TOL = 0.04


class StillLandmarker:
    """IMAGE-mode FaceLandmarker(s) that try the variants in order, with a plausibility check.

    The first variant is trusted alone when the face it finds is large enough (its landmark box's
    shorter side >= `confirm_below` x the image's long side; FER2013 faces fill the crop). Anything
    else must be CONFIRMED: two variants with different presentations (border, padding, scale) must
    find landmarks that agree within `agree_tol` x the long side (mean absolute difference), and
    the higher-ranked of the two is returned. Faces smaller than `min_face` are ignored outright.
    Why: low detection thresholds and odd presentations find more faces, but on hard images
    (hands over the face, profiles, cartoons, FER2013's few non-face images) they also put meshes on
    an eye, an ear or a question mark; a wrong mesh is worse than none, because training draws AU
    maps from it, while a failure just gets cross-entropy only. A real face found two different ways
    lands in the same place (median 0.2-0.5 px apart at 48x48); garbage rarely does.

    Keeps one MediaPipe landmarker per distinct confidence (MediaPipe fixes thresholds at creation).
    Use as a context manager or call `close()`: MediaPipe's graphs hold threads and memory.
    """

    def __init__(
        self,
        face_model: str | Path | None = None,
        variants: tuple[Variant, ...] = DEFAULT_VARIANTS,
        confirm_below: float = CONFIRM_BELOW,
        min_face: float = MIN_FACE,
        agree_tol: float = AGREE_TOL,
    ):
        if not variants:
            raise ValueError("StillLandmarker needs at least one variant")
        self.variants = variants
        self.confirm_below = confirm_below
        self.min_face = min_face
        self.agree_tol = agree_tol
        self._landmarkers: dict[float, Any] = {}
        try:
            for conf in sorted({v.confidence for v in variants}, reverse=True):
                self._landmarkers[conf] = create_landmarker(
                    face_model, mode="image", max_faces=1, blendshapes=False, min_confidence=conf
                )
        except BaseException:
            self.close()
            raise

    def detect(self, image_rgb: np.ndarray) -> tuple[np.ndarray | None, int]:
        """(478, 2) float32 landmarks in the input's pixels and the index of the variant whose
        landmarks are returned, or (None, -1) when no plausible face is found (see the class doc)."""
        long_side = float(max(image_rgb.shape[:2]))
        seen: list[tuple[int, Variant, np.ndarray]] = []
        for index, variant in enumerate(self.variants):
            marks = self.detect_variant(image_rgb, variant)
            if marks is None:
                continue
            size = float(np.ptp(marks, axis=0).min()) / long_side
            if size < self.min_face:
                continue
            if index == 0 and size >= self.confirm_below:
                return marks, 0
            for j, other_variant, other in seen:
                same_presentation = present_key(other_variant) == present_key(variant)
                if not same_presentation and float(np.abs(marks - other).mean()) <= self.agree_tol * long_side:
                    return other, j
            seen.append((index, variant, marks))
        return None, -1

    def detect_variant(self, image_rgb: np.ndarray, variant: Variant) -> np.ndarray | None:
        """One variant alone (for measuring): landmarks in the input's pixels, or None."""
        landmarker = self._landmarkers.get(variant.confidence)
        if landmarker is None:
            raise ValueError(f"no landmarker for confidence {variant.confidence}: pass the variant at construction")
        shown, pad, scale = present(image_rgb, variant)
        faces = convert_result(landmarker.detect(to_mp_image(shown)), shown.shape[1], shown.shape[0])
        if not faces:
            return None
        return faces[0].landmarks / np.float32(scale) - np.float32(pad)

    def close(self) -> None:
        for landmarker in self._landmarkers.values():
            landmarker.close()
        self._landmarkers.clear()

    def __enter__(self) -> StillLandmarker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
